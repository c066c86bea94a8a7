#include "test.h"
START
    CASE 1  /* csrrw/csrrs/csrrc and immediate forms on mscratch */
    li a0, 0xf0
    csrw mscratch, a0
    csrrs a1, mscratch, 0x0f
    EXPECT a1, 0xf0
    li t0, 0x30
    csrrc a1, mscratch, t0
    EXPECT a1, 0xff
    csrr a1, mscratch
    EXPECT a1, 0xcf
    csrrwi a1, mscratch, 7
    EXPECT a1, 0xcf
    csrrsi a1, mscratch, 8
    csrrci a1, mscratch, 1
    csrr a1, mscratch
    EXPECT a1, 14
    CASE 2  /* misa reports RV64 IMAFDC SU */
    csrr a0, misa
    li a1, 0x800000000014112d
    EXPECT_EQ a0, a1
    CASE 3  /* writing a read-only CSR is illegal; reading it is fine */
    la t0, trap
    csrw mtvec, t0
    li s1, 0
    csrr a0, mhartid
    EXPECT s1, 0
    csrw mhartid, a0
    EXPECT s1, 2
    CASE 4  /* csrrs with rs1 = x0 on a read-only CSR does not write, so it does not trap */
    li s1, 0
    csrrs a0, mvendorid, x0
    EXPECT s1, 0
    CASE 5  /* unknown CSR traps */
    csrr a0, 0x7ff
    EXPECT s1, 2
    CASE 6  /* instret and cycle advance by one per instruction */
    csrr a0, minstret
    csrr a1, minstret
    sub a2, a1, a0
    EXPECT a2, 1
    csrr a0, cycle
    nop
    nop
    csrr a1, cycle
    sub a2, a1, a0
    EXPECT a2, 3
    CASE 7  /* mepc clears bit 0; mtvec mode 2 is not kept */
    li a0, 0x80000003
    csrw mepc, a0
    csrr a1, mepc
    EXPECT a1, 0x80000002
    CASE 8  /* self-modifying code: patch an instruction after executing it, fence.i, run again */
    li s3, 0
    call patchme
    EXPECT s3, 1
    la t0, patchme
    li t1, 0x00298993      /* addi s3, s3, 2 */
    sw t1, 0(t0)
    fence.i
    call patchme
    EXPECT s3, 3
    CASE 9  /* a store to the code of the running block takes effect at the next instruction */
    .option push
    .option norvc
    la t0, 1f
    li t1, 0x00500a13      /* addi s4, x0, 5 */
    li s4, 0
    sw t1, 0(t0)
1:  addi s4, x0, 1
    .option pop
    EXPECT s4, 5
    PASS

    .balign 4
    .option push
    .option norvc
patchme:
    addi s3, s3, 1
    ret
    .option pop

    .balign 4
trap:
    csrr s1, mcause
    csrr t1, mepc
    addi t1, t1, 4
    csrw mepc, t1
    mret
