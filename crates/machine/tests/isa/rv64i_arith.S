#include "test.h"
START
    CASE 1
    li a0, 5
    addi a1, a0, -7
    EXPECT a1, -2
    CASE 2
    li a0, 0x7fffffff
    addiw a1, a0, 1
    EXPECT a1, -2147483648
    CASE 3
    li a0, -1
    srli a1, a0, 63
    EXPECT a1, 1
    srai a2, a0, 63
    EXPECT a2, -1
    CASE 4
    li a0, 0x80000000
    sraiw a1, a0, 31
    EXPECT a1, -1
    srliw a2, a0, 31
    EXPECT a2, 1
    CASE 5
    li a0, 1
    li a1, 64
    sll a2, a0, a1        /* shift amount uses the low 6 bits: 64 -> 0 */
    EXPECT a2, 1
    li a1, 32
    sllw a2, a0, a1       /* W shifts use 5 bits: 32 -> 0 */
    EXPECT a2, 1
    li a1, 31
    sllw a2, a0, a1
    EXPECT a2, -2147483648
    CASE 6
    li a0, -5
    li a1, 3
    slt a2, a0, a1
    EXPECT a2, 1
    sltu a2, a0, a1
    EXPECT a2, 0
    slti a2, a0, -4
    EXPECT a2, 1
    sltiu a2, a1, -1      /* immediate sign-extended then compared unsigned */
    EXPECT a2, 1
    CASE 7
    lui a0, 0xfffff
    EXPECT a0, 0xfffffffffffff000
    auipc a1, 0
    la a2, 1f
1:  addi a2, a2, -0
    EXPECT_EQ a1, a1
    CASE 8
    li a0, 0x123456789abcdef0
    xori a1, a0, -1
    not a2, a0
    EXPECT_EQ a1, a2
    andi a3, a0, 0x7f0
    EXPECT a3, 0x6f0
    ori a3, a0, 0xf
    EXPECT a3, 0x123456789abcdeff
    CASE 9
    li a0, 0x7fffffff
    li a1, 1
    addw a2, a0, a1
    EXPECT a2, -2147483648
    subw a2, x0, a0
    EXPECT a2, -2147483647
    li a1, 4
    sraw a2, a2, a1
    EXPECT a2, -134217728
    srlw a2, a0, a1
    EXPECT a2, 0x7ffffff
    CASE 10
    li x0, 5              /* writes to x0 are discarded */
    EXPECT x0, 0
    CASE 11
    /* jal / jalr link values and targets */
    jal ra, 2f
    j fail
2:  la t0, 3f
    jalr t1, 0(t0)
    j fail
3:  la t2, 3b
    addi t2, t2, 0
    CASE 12
    li a0, 3
    li a1, 0
4:  addi a1, a1, 2
    addi a0, a0, -1
    bnez a0, 4b
    EXPECT a1, 6
    li a0, -1
    li a1, 1
    bltu a1, a0, 5f
    j fail
5:  bge a1, a0, 6f
    j fail
6:  blt a0, a1, 7f
    j fail
7:  bgeu a0, a1, 8f
    j fail
8:  beq a0, a0, 9f
    j fail
9:  PASS
