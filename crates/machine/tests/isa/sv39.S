#include "test.h"
/* Sv39: S-mode code runs from an identity-mapped gigapage; test pages live at 0x4000_0000. */
.macro PTE dst, pa, flags
    srli \dst, \pa, 12
    slli \dst, \dst, 10
    ori \dst, \dst, \flags
.endm

/* Run `insn` in S-mode at label \l; afterwards s1 = mcause (9 if no trap: the ecall). */
.macro IN_S l, insn:vararg
    la s5, 9001f
    GOTO_S \l
\l:
    \insn
    ecall
9001:
.endm

START
    la t0, mtrap
    csrw mtvec, t0
    la s0, pt2
    li t0, 0x80000000
    PTE t1, t0, 0xcf        /* gigapage RWX, A, D */
    sd t1, 16(s0)
    la t0, pt1
    PTE t1, t0, 1
    sd t1, 8(s0)            /* VPN2 = 1 -> pt1 */
    la s6, pt1
    la t0, pt0
    PTE t1, t0, 1
    sd t1, 0(s6)            /* pt1[0] -> pt0 */
    la s7, pt0
    la t0, page_a
    PTE t1, t0, 0x07        /* [0] RW, A = D = 0 */
    sd t1, 0(s7)
    PTE t1, t0, 0x43        /* [1] R */
    sd t1, 8(s7)
    PTE t1, t0, 0x49        /* [2] X only */
    sd t1, 16(s7)
    PTE t1, t0, 0xd7        /* [3] U, RW */
    sd t1, 24(s7)
    PTE t1, t0, 0x01        /* [5] pointer at level 0 */
    sd t1, 40(s7)
    PTE t1, t0, 0xc5        /* [6] W without R: reserved */
    sd t1, 48(s7)
    li t0, 0x80200000
    PTE t1, t0, 0xc7        /* pt1[1]: 2 MiB superpage at 0x4020_0000 */
    sd t1, 8(s6)
    li t0, 0x80201000
    PTE t1, t0, 0xc7        /* pt1[2]: misaligned superpage */
    sd t1, 16(s6)
    li t0, 0x1234
    la t1, page_a
    sd t0, 0(t1)
    li t0, 0x5678
    li t1, 0x80200010
    sd t0, 0(t1)
    li t0, 0x9abc
    la t1, page_b
    sd t0, 0(t1)
    la t0, pt2
    srli t0, t0, 12
    li t1, 8 << 60
    or t0, t0, t1
    csrw satp, t0
    sfence.vma
    li a1, 0x40000000

    CASE 1  /* load through a 4 KiB page sets A, not D */
    IN_S s1l, ld a0, 0(a1)
    EXPECT s1, 9
    EXPECT a0, 0x1234
    ld t0, 0(s7)
    andi t1, t0, 0xc0
    EXPECT t1, 0x40
    CASE 2  /* store sets D */
    li a2, 0x4321
    IN_S s2l, sd a2, 8(a1)
    EXPECT s1, 9
    ld t0, 0(s7)
    andi t1, t0, 0xc0
    EXPECT t1, 0xc0
    la t0, page_a
    ld t1, 8(t0)
    EXPECT t1, 0x4321
    CASE 3  /* store to a read-only page: store page fault with tval */
    li a1, 0x40001000
    IN_S s3l, sd a2, 0(a1)
    EXPECT s1, 15
    EXPECT_EQ s2, a1
    IN_S s3m, ld a0, 0(a1)
    EXPECT s1, 9
    EXPECT a0, 0x1234
    CASE 4  /* execute-only page: loads fault unless MXR */
    li a1, 0x40002000
    IN_S s4l, ld a0, 0(a1)
    EXPECT s1, 13
    li t0, 1 << 19
    csrs mstatus, t0
    IN_S s4m, ld a0, 0(a1)
    EXPECT s1, 9
    EXPECT a0, 0x1234
    li t0, 1 << 19
    csrc mstatus, t0
    CASE 5  /* U page from S: faults unless SUM; never executable from S */
    li a1, 0x40003000
    IN_S s5l, ld a0, 0(a1)
    EXPECT s1, 13
    li t0, 1 << 18
    csrs mstatus, t0
    IN_S s5m, ld a0, 0(a1)
    EXPECT s1, 9
    la s5, 1f
    GOTO_S s5n
s5n:
    jr a1
1:  EXPECT s1, 12
    EXPECT_EQ s2, a1
    EXPECT_EQ s3, a1
    li t0, 1 << 18
    csrc mstatus, t0
    CASE 6  /* U-mode cannot fetch from a non-U page */
    la s5, 1f
    GOTO_U u6
u6:
    nop
1:  EXPECT s1, 12
    la t0, u6
    EXPECT_EQ s2, t0
    CASE 7  /* invalid PTE, pointer at level 0, W without R */
    li a1, 0x40004000
    IN_S s7a, ld a0, 0(a1)
    EXPECT s1, 13
    li a1, 0x40005000
    IN_S s7b, ld a0, 0(a1)
    EXPECT s1, 13
    li a1, 0x40006000
    IN_S s7c, sd a0, 0(a1)
    EXPECT s1, 15
    CASE 8  /* superpages: aligned works, misaligned faults */
    li a1, 0x40200010
    IN_S s8a, ld a0, 0(a1)
    EXPECT s1, 9
    EXPECT a0, 0x5678
    li a1, 0x40400000
    IN_S s8b, ld a0, 0(a1)
    EXPECT s1, 13
    CASE 9  /* non-canonical address */
    li a1, 0x0000008000000000
    IN_S s9a, ld a0, 0(a1)
    EXPECT s1, 13
    EXPECT_EQ s2, a1
    CASE 10 /* fetch from a page without X */
    li a1, 0x40000000
    la s5, 1f
    GOTO_S s10
s10:
    jr a1
1:  EXPECT s1, 12
    EXPECT_EQ s3, a1
    CASE 11 /* MPRV: M-mode loads translate with MPP = S */
    li t0, 0x1800
    csrc mstatus, t0
    li t0, 0x800 | (1 << 17)
    csrs mstatus, t0
    li a1, 0x40000000
    ld a0, 0(a1)
    li t0, 1 << 17
    csrc mstatus, t0
    EXPECT a0, 0x1234
    CASE 12 /* remapping takes effect after sfence.vma */
    IN_S s12a, ld a0, 0(a1)
    EXPECT a0, 0x1234
    la t0, page_b
    PTE t1, t0, 0xc7
    sd t1, 0(s7)
    la s5, 1f
    GOTO_S s12b
s12b:
    sfence.vma
    ld a0, 0(a1)
    ecall
1:
    EXPECT a0, 0x9abc
    CASE 13 /* a page-crossing misaligned load whose second page faults reports that page */
    li a1, 0x40003ffc       /* U page followed by the invalid page [4] */
    li t0, 1 << 18
    csrs mstatus, t0
    IN_S s13, ld a0, 0(a1)
    EXPECT s1, 13
    li t0, 0x40004000
    EXPECT_EQ s2, t0
    PASS

RECORDING_MTRAP

    .data
    .balign 4096
pt2: .fill 512, 8, 0
pt1: .fill 512, 8, 0
pt0: .fill 512, 8, 0
page_a: .fill 512, 8, 0
page_b: .fill 512, 8, 0
