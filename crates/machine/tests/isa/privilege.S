#include "test.h"
START
    la t0, mtrap
    csrw mtvec, t0
    CASE 1  /* ecall from M: cause 11, mepc = the ecall */
    la s5, 1f
ecall_m:
    ecall
    j fail
1:  EXPECT s1, 11
    la t0, ecall_m
    EXPECT_EQ s3, t0
    EXPECT s2, 0

    CASE 2  /* ecall from S, not delegated: cause 9 in M, MPP = S */
    la s5, 2f
    GOTO_S s2code
s2code:
    ecall
    j fail
2:  EXPECT s1, 9
    srli t0, s4, 11
    andi t0, t0, 3
    EXPECT t0, 1

    CASE 3  /* ecall from U delegated to S; sret to U; S handler escalates to M */
    li t0, 1 << 8
    csrw medeleg, t0
    la t0, strap
    csrw stvec, t0
    la s5, 3f
    GOTO_S s3code
s3code:
    li t0, 0x100
    csrc sstatus, t0        /* SPP = U */
    la t0, u3code
    csrw sepc, t0
    sret
u3code:
    ecall
    j fail
3:  EXPECT s1, 9            /* the S handler's ecall */
    EXPECT s6, 8            /* scause: ecall from U */
    la t0, u3code
    EXPECT_EQ s7, t0
    andi t0, s8, 0x100      /* SPP = U */
    EXPECT t0, 0
    csrw medeleg, zero

    CASE 4  /* CSR privilege: U cannot read sstatus, S cannot read mstatus */
    la s5, 4f
    GOTO_U u4code
u4code:
    csrr a0, sstatus
    j fail
4:  EXPECT s1, 2
    EXPECT s2, 0x10002573   /* mtval = the instruction */
    la s5, 5f
    GOTO_S s4code
s4code:
    csrr a0, mstatus
    j fail
5:  EXPECT s1, 2

    CASE 5  /* counters: mcounteren gates S and U, scounteren gates U */
    csrw mcounteren, zero
    csrw scounteren, zero
    la s5, 1f
    GOTO_S s5a
s5a:
    rdcycle a0
    j fail
1:  EXPECT s1, 2
    li t0, 7
    csrw mcounteren, t0
    li s1, 0
    la s5, 1f
    GOTO_S s5b
s5b:
    rdtime a0
    rdcycle a0
    ecall
1:  EXPECT s1, 9            /* reached the ecall: no trap before */
    la s5, 1f
    GOTO_U u5a
u5a:
    rdinstret a0
    j fail
1:  EXPECT s1, 2
    li t0, 7
    csrw scounteren, t0
    la s5, 1f
    GOTO_U u5b
u5b:
    rdinstret a0
    ecall
1:  EXPECT s1, 8

    CASE 6  /* vectored mtvec: an interrupt goes to base + 4 * cause, taken right after the csrs */
    la t0, vectors
    ori t0, t0, 1
    csrw mtvec, t0
    li t0, 2
    csrw mie, t0            /* SSIE */
    csrsi mstatus, 8        /* MIE */
    li s1, 0
    csrsi mip, 2            /* SSIP: pending, enabled, not delegated -> M */
after_ssip:
    li t0, 0x8000000000000001
    EXPECT_EQ s1, t0
    la t0, after_ssip
    EXPECT_EQ s3, t0
    csrci mstatus, 8
    csrw mie, zero
    la t0, mtrap
    csrw mtvec, t0

    CASE 7  /* delegated S interrupt: masked in S with SIE=0, taken from U regardless */
    li t0, 2
    csrw mideleg, t0
    csrw mie, t0
    la t0, strap_ssi
    csrw stvec, t0
    li s6, 0
    la s5, 1f
    GOTO_S s7code
s7code:
    csrsi sip, 2            /* SSIP pending, SIE = 0: nothing happens in S */
    nop
    EXPECT s6, 0
    li t0, 0x100
    csrc sstatus, t0
    la t0, u7code
    csrw sepc, t0
    sret                    /* to U: the interrupt is taken at once */
u7code:
    j fail
1:  EXPECT s1, 9            /* strap_ssi escalated with an ecall from S */
    li t0, 0x8000000000000001
    EXPECT_EQ s6, t0
    la t0, u7code
    EXPECT_EQ s7, t0
    csrw mideleg, zero
    csrw mie, zero
    csrci mip, 2

    CASE 8  /* mret to U clears MPRV */
    li t0, 1 << 17
    csrs mstatus, t0
    la s5, 1f
    GOTO_U u8code
u8code:
    ecall
1:  li t0, 1 << 17
    and t0, s4, t0
    EXPECT t0, 0

    CASE 9  /* TSR makes sret illegal in S, TW makes wfi illegal in S; wfi in U is illegal */
    li t0, 1 << 22
    csrs mstatus, t0
    la s5, 1f
    GOTO_S s9a
s9a:
    sret
1:  EXPECT s1, 2
    li t0, 1 << 22
    csrc mstatus, t0
    li t0, 1 << 21
    csrs mstatus, t0
    la s5, 1f
    GOTO_S s9b
s9b:
    wfi
1:  EXPECT s1, 2
    li t0, 1 << 21
    csrc mstatus, t0
    la s5, 1f
    GOTO_U u9
u9:
    wfi
1:  EXPECT s1, 2

    CASE 10 /* mstatus WARL: MPP=2 reads as U; SD follows FS; sstatus cannot touch MIE */
    li t0, 0x1800
    csrc mstatus, t0
    li t0, 0x1000
    csrs mstatus, t0
    csrr t1, mstatus
    li t0, 0x1800
    and t1, t1, t0
    EXPECT t1, 0
    li t0, 0x6000
    csrs mstatus, t0
    csrr t1, mstatus
    bltz t1, 1f
    j fail
1:  csrr t1, sstatus
    bltz t1, 1f
    j fail
1:  csrsi sstatus, 8
    csrr t1, mstatus
    andi t1, t1, 8
    EXPECT t1, 0

    CASE 11 /* medeleg cannot delegate ecall from M */
    li t0, -1
    csrw medeleg, t0
    csrr t1, medeleg
    li t0, 1 << 11
    and t1, t1, t0
    EXPECT t1, 0
    csrw medeleg, zero

    CASE 12 /* ebreak: cause 3, mtval = pc */
    la s5, 1f
brk:
    ebreak
1:  EXPECT s1, 3
    la t0, brk
    EXPECT_EQ s2, t0

    CASE 13 /* misaligned loads and stores are handled, not trapped */
    la t0, scratch
    li t1, 0x1122334455667788
    sd t1, 1(t0)
    ld t2, 1(t0)
    EXPECT_EQ t1, t2
    lw t2, 3(t0)
    EXPECT t2, 0x33445566
    PASS

RECORDING_MTRAP

    .balign 4
strap:
    csrr s6, scause
    csrr s7, sepc
    csrr s8, sstatus
    ecall

    .balign 4
strap_ssi:
    csrr s6, scause
    csrr s7, sepc
    csrci sip, 2
    ecall

    .balign 4
    .option push
    .option norvc           /* vector entries are 4 bytes apart */
vectors:
    j mtrap                 /* exceptions */
    j ssi                   /* cause 1 */
    j fail
    j fail
    .option pop
ssi:
    csrr s1, mcause
    csrr s3, mepc
    csrci mip, 2
    mret

    .data
    .balign 8
scratch: .fill 4, 8, 0
