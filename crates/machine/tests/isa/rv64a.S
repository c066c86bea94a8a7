#include "test.h"
START
    la s0, data
    CASE 1  /* LR/SC success */
    li a1, 5
    sd a1, 0(s0)
    lr.d a0, (s0)
    EXPECT a0, 5
    li a2, 9
    sc.d a3, a2, (s0)
    EXPECT a3, 0
    ld a4, 0(s0)
    EXPECT a4, 9
    CASE 2  /* SC without reservation fails and stores nothing */
    li a2, 11
    sc.d a3, a2, (s0)
    EXPECT a3, 1
    ld a4, 0(s0)
    EXPECT a4, 9
    CASE 3  /* SC to another address than reserved fails */
    lr.d a0, (s0)
    addi t0, s0, 8
    sc.d a3, a2, (t0)
    bnez a3, 1f
    j fail
1:  sc.d a3, a2, (s0)      /* the failed SC cleared the reservation */
    EXPECT a3, 1
    CASE 4  /* word forms sign-extend */
    li a1, 0x80000000
    sw a1, 16(s0)
    lr.w a0, (s0)
    addi t0, s0, 16
    lr.w a0, (t0)
    EXPECT a0, -2147483648
    li a2, 0x7fffffff
    sc.w a3, a2, (t0)
    EXPECT a3, 0
    lw a4, 16(s0)
    EXPECT a4, 0x7fffffff
    CASE 5  /* every AMO, doubleword */
    li a1, 10
    sd a1, 0(s0)
    li a2, 3
    amoadd.d a0, a2, (s0)
    EXPECT a0, 10
    ld a4, 0(s0)
    EXPECT a4, 13
    amoswap.d a0, a2, (s0)
    EXPECT a0, 13
    li a2, 6
    amoxor.d a0, a2, (s0)   /* 3 ^ 6 = 5 */
    ld a4, 0(s0)
    EXPECT a4, 5
    li a2, 12
    amoor.d a0, a2, (s0)    /* 5 | 12 = 13 */
    ld a4, 0(s0)
    EXPECT a4, 13
    li a2, 6
    amoand.d a0, a2, (s0)   /* 13 & 6 = 4 */
    ld a4, 0(s0)
    EXPECT a4, 4
    li a2, -1
    amomin.d a0, a2, (s0)
    ld a4, 0(s0)
    EXPECT a4, -1
    li a2, 7
    amomax.d a0, a2, (s0)
    ld a4, 0(s0)
    EXPECT a4, 7
    li a2, -1
    amominu.d a0, a2, (s0)
    ld a4, 0(s0)
    EXPECT a4, 7
    amomaxu.d a0, a2, (s0)
    ld a4, 0(s0)
    EXPECT a4, -1
    CASE 6  /* every AMO, word: results sign-extended, min/max compare 32 bits */
    li a1, 0x7fffffff
    sw a1, 0(s0)
    li a2, 1
    amoadd.w a0, a2, (s0)
    EXPECT a0, 0x7fffffff
    lw a4, 0(s0)
    EXPECT a4, -2147483648
    amoswap.w a0, a2, (s0)
    EXPECT a0, -2147483648
    li a2, 3
    amoxor.w a0, a2, (s0)
    lw a4, 0(s0)
    EXPECT a4, 2
    amoor.w a0, a2, (s0)
    lw a4, 0(s0)
    EXPECT a4, 3
    li a2, 1
    amoand.w a0, a2, (s0)
    lw a4, 0(s0)
    EXPECT a4, 1
    li a2, 0xffffffff          /* -1 as a word */
    amomin.w a0, a2, (s0)
    lw a4, 0(s0)
    EXPECT a4, -1
    li a2, 5
    amomax.w a0, a2, (s0)
    lw a4, 0(s0)
    EXPECT a4, 5
    li a2, -1
    amominu.w a0, a2, (s0)
    lw a4, 0(s0)
    EXPECT a4, 5
    amomaxu.w a0, a2, (s0)
    EXPECT a0, 5
    lw a4, 0(s0)
    EXPECT a4, -1
    CASE 7  /* misaligned AMO raises store/AMO address misaligned (6), LR load misaligned (4) */
    la t0, trap
    csrw mtvec, t0
    addi a5, s0, 4
    li s1, 0
    amoadd.d a0, a2, (a5)
    EXPECT s1, 6
    li s1, 0
    lr.d a0, (a5)
    EXPECT s1, 4
    li s1, 0
    sc.d a0, a2, (a5)
    EXPECT s1, 6
    PASS

    .balign 4
trap:
    csrr s1, mcause
    csrr t1, mtval
    EXPECT_EQ t1, a5
    csrr t1, mepc
    addi t1, t1, 4
    csrw mepc, t1
    mret

    .data
    .balign 8
data: .dword 0, 0, 0, 0
