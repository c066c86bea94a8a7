#include "test.h"
START
    CASE 1
    li a0, -3
    li a1, 7
    mul a2, a0, a1
    EXPECT a2, -21
    mulw a2, a0, a1
    EXPECT a2, -21
    CASE 2
    li a0, -1
    li a1, -1
    mulh a2, a0, a1       /* (-1 * -1) >> 64 = 0 */
    EXPECT a2, 0
    mulhu a2, a0, a1      /* (2^64-1)^2 >> 64 = 2^64-2 */
    EXPECT a2, -2
    mulhsu a2, a0, a1     /* -1 * (2^64-1) >> 64 = -1 */
    EXPECT a2, -1
    li a0, 0x8000000000000000
    li a1, 2
    mulh a2, a0, a1
    EXPECT a2, -1
    CASE 3  /* division by zero */
    li a0, 42
    div a2, a0, zero
    EXPECT a2, -1
    divu a2, a0, zero
    EXPECT a2, -1
    rem a2, a0, zero
    EXPECT a2, 42
    remu a2, a0, zero
    EXPECT a2, 42
    divw a2, a0, zero
    EXPECT a2, -1
    divuw a2, a0, zero
    EXPECT a2, -1
    li a0, -42
    remw a2, a0, zero
    EXPECT a2, -42
    remuw a2, a0, zero
    EXPECT a2, -42          /* 32-bit remainder, sign-extended */
    CASE 4  /* signed overflow */
    li a0, 0x8000000000000000
    li a1, -1
    div a2, a0, a1
    EXPECT_EQ a2, a0
    rem a2, a0, a1
    EXPECT a2, 0
    li a0, -2147483648
    divw a2, a0, a1
    EXPECT a2, -2147483648
    remw a2, a0, a1
    EXPECT a2, 0
    CASE 5  /* rounding toward zero, sign of remainder follows dividend */
    li a0, -7
    li a1, 2
    div a2, a0, a1
    EXPECT a2, -3
    rem a2, a0, a1
    EXPECT a2, -1
    divu a2, a0, a1
    EXPECT a2, 0x7ffffffffffffffc
    CASE 6
    li a0, 0xffffffff00000007
    li a1, 2
    divuw a2, a0, a1
    EXPECT a2, 3
    remuw a2, a0, a1
    EXPECT a2, 1
    li a0, 0x00000000fffffff9   /* -7 as 32 bits */
    divw a2, a0, a1
    EXPECT a2, -3
    PASS
