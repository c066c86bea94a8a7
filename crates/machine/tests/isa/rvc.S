#include "test.h"
/* Every compressed form, written with explicit c. mnemonics. */
START
    .option push
    .option rvc
    la s0, data
    mv sp, s0
    CASE 1
    c.li a0, -3
    EXPECT a0, -3
    c.addi a0, 5
    EXPECT a0, 2
    c.lui a1, 0x1f
    EXPECT a1, 0x1f000
    c.lui a1, 0xfffe1     /* negative: sign-extended */
    EXPECT a1, 0xfffffffffffe1000
    CASE 2
    li a0, 0x7fffffff
    c.addiw a0, 1
    EXPECT a0, -2147483648
    mv sp, s0
    c.addi16sp sp, 64
    addi t0, s0, 64
    EXPECT_EQ sp, t0
    c.addi16sp sp, -64
    EXPECT_EQ sp, s0
    c.addi4spn a2, sp, 16
    addi t0, s0, 16
    EXPECT_EQ a2, t0
    CASE 3  /* shifts and logic */
    li a0, -16
    c.srli a0, 60
    EXPECT a0, 15
    li a0, -16
    c.srai a0, 2
    EXPECT a0, -4
    c.slli a0, 4
    EXPECT a0, -64
    li a0, 0xff
    c.andi a0, -16
    EXPECT a0, 0xf0
    li a0, 12
    li a1, 10
    c.sub a0, a1
    EXPECT a0, 2
    li a0, 12
    c.xor a0, a1
    EXPECT a0, 6
    li a0, 12
    c.or a0, a1
    EXPECT a0, 14
    li a0, 12
    c.and a0, a1
    EXPECT a0, 8
    li a0, 0x7fffffff
    li a1, 1
    c.addw a0, a1
    EXPECT a0, -2147483648
    li a0, 0
    c.subw a0, a1
    EXPECT a0, -1
    c.mv a2, a1
    EXPECT a2, 1
    c.add a2, a1
    EXPECT a2, 2
    CASE 4  /* loads and stores, register-based and sp-based */
    li a0, 0x1122334455667788
    c.sd a0, 8(s0)
    c.ld a1, 8(s0)
    EXPECT_EQ a1, a0
    c.sw a0, 16(s0)
    c.lw a1, 16(s0)
    EXPECT a1, 0x55667788
    c.sdsp a0, 24(sp)
    c.ldsp a2, 24(sp)
    EXPECT_EQ a2, a0
    li a0, -5
    c.swsp a0, 32(sp)
    c.lwsp a2, 32(sp)
    EXPECT a2, -5
    CASE 5  /* FP loads and stores */
    li t0, 0x6000
    csrs mstatus, t0        /* FS = dirty */
    li a0, 0x400921fb54442d18
    sd a0, 40(s0)
    c.fld fa0, 40(s0)
    c.fsd fa0, 48(s0)
    ld a1, 48(s0)
    EXPECT_EQ a1, a0
    c.fldsp fa1, 48(sp)
    c.fsdsp fa1, 56(sp)
    ld a1, 56(s0)
    EXPECT_EQ a1, a0
    CASE 6  /* control flow */
    c.j 1f
    j fail
1:  la t0, 2f
    c.jr t0
    j fail
2:  la t0, 3f
    c.jalr t0
3:  la t1, 3b
    EXPECT_EQ ra, t1
    li a0, 0
    c.beqz a0, 4f
    j fail
4:  li a0, 1
    c.bnez a0, 5f
    j fail
5:  c.beqz a0, fail_far
    c.nop
    CASE 7  /* c.ebreak traps with cause 3 and mtval = pc */
    la t0, trap
    csrw mtvec, t0
    li s1, 0
brk: c.ebreak
    EXPECT s1, 3
    CASE 8  /* reserved encoding is illegal, mtval holds the 16-bit pattern */
    li s1, 0
    .2byte 0x0000
    EXPECT s1, 2
    EXPECT s2, 0
    li s1, 0
    .2byte 0x6101           /* c.addi16sp with zero immediate */
    EXPECT s1, 2
    EXPECT s2, 0x6101
    PASS
fail_far:
    j fail
    .balign 4
trap:
    csrr s1, mcause
    csrr s2, mtval
    csrr t1, mepc
    addi t1, t1, 2
    csrw mepc, t1
    mret
    .option pop
    .data
    .balign 8
data: .fill 16, 8, 0
