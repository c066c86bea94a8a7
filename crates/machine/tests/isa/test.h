/* Shared macros for the ISA tests. Each test is a bare-metal M-mode program at 0x80000000 that
 * reports through the syscon finisher: PASS writes 0x5555, a failure writes
 * (case << 16) | 0x3333 where `case` is the number last set with CASE (kept in gp). Any trap
 * not expected by the test lands in `unexpected_trap`, which fails with case 0xfff. PMP entry 0
 * grants S and U all of memory (tests of PMP itself reprogram it). */
#define SYSCON 0x100000

.macro CASE n
    li gp, \n
.endm

/* Fail unless register \reg equals the constant \val. Clobbers t6. */
.macro EXPECT reg, val
    li t6, \val
    beq \reg, t6, 1001f
    j fail
1001:
.endm

/* Fail unless registers \a and \b are equal. */
.macro EXPECT_EQ a, b
    beq \a, \b, 1002f
    j fail
1002:
.endm

.macro PASS
    j pass
.endm

/* Start of every test: install the default trap handler, then fall into `main`. */
.macro START
    .section .text.init, "ax"
    .globl _start
_start:
    la t0, unexpected_trap
    csrw mtvec, t0
    /* PMP: one NAPOT entry granting S and U everything (as OpenSBI leaves it). */
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x1f
    csrw pmpcfg0, t0
    li gp, 0
    j main

    .balign 4
unexpected_trap:
    li gp, 0xfff
fail:
    li t6, SYSCON
    slli t5, gp, 16
    li t4, 0x3333
    or t5, t5, t4
    sw t5, 0(t6)
1003: j 1003b
pass:
    li t6, SYSCON
    li t5, 0x5555
    sw t5, 0(t6)
1004: j 1004b
main:
.endm

/* Privilege helpers. `mtrap` records mcause/mtval/mepc/mstatus in s1..s4 and continues in
 * M-mode at the address in s5. */
.macro GOTO_S label
    li t0, 0x1800
    csrc mstatus, t0
    li t0, 0x800
    csrs mstatus, t0
    la t0, \label
    csrw mepc, t0
    mret
.endm

.macro GOTO_U label
    li t0, 0x1800
    csrc mstatus, t0
    la t0, \label
    csrw mepc, t0
    mret
.endm

.macro RECORDING_MTRAP
    .balign 4
mtrap:
    csrr s1, mcause
    csrr s2, mtval
    csrr s3, mepc
    csrr s4, mstatus
    jr s5
.endm
