#include "test.h"
/* Timer, software and idle behaviour (instructions_per_tick = 10, the test default). */
#define CLINT 0x2000000
#define MTIMECMP (CLINT + 0x4000)
#define MTIME (CLINT + 0xbff8)
START
    la t0, mtrap
    csrw mtvec, t0

    CASE 1  /* the timer interrupt is taken exactly at instruction 10 * mtimecmp */
    li t0, MTIMECMP
    li t1, 100
    sd t1, 0(t0)
    la t0, irq
    csrw mtvec, t0
    li t0, 1 << 7
    csrw mie, t0
    li s1, 0
    csrsi mstatus, 8
1:  beqz s1, 1b            /* spin until the handler ran */
    li t0, 0x8000000000000007
    EXPECT_EQ s1, t0
    EXPECT s2, 1000         /* minstret at the handler's first instruction */
    CASE 2  /* WFI with the timer armed: the idle warp skips to the deadline */
    csrci mstatus, 8
    li t0, MTIME
    ld t1, 0(t0)
    li t2, 1000000
    add t1, t1, t2          /* one guest second ahead */
    li t0, MTIMECMP
    sd t1, 0(t0)
    csrr s6, minstret
    wfi                     /* MIE = 0: wakes without taking the interrupt */
    csrr s7, minstret
    sub s7, s7, s6
    EXPECT s7, 2            /* only the wfi retired in between */
    rdtime t2
    bgeu t2, t1, 2f
    j fail
2:  csrr t0, mip
    andi t0, t0, 1 << 7
    EXPECT t0, 1 << 7
    CASE 3  /* writing mtimecmp ahead clears MTIP */
    li t0, MTIMECMP
    li t1, -1
    sd t1, 0(t0)
    csrr t0, mip
    andi t0, t0, 1 << 7
    EXPECT t0, 0
    CASE 4  /* CLINT msip: the software interrupt is taken right after the store */
    li t0, 1 << 3
    csrw mie, t0
    csrsi mstatus, 8
    li s1, 0
    li t0, CLINT
    li t1, 1
    sw t1, 0(t0)
after_msip:
    li t0, 0x8000000000000003
    EXPECT_EQ s1, t0
    la t0, after_msip
    EXPECT_EQ s3, t0
    CASE 5  /* Sstc: stimecmp drives STIP once menvcfg.STCE is set; delegated to S */
    csrci mstatus, 8
    la t0, mtrap
    csrw mtvec, t0
    li t0, 1 << 63
    csrs menvcfg, t0
    csrsi mcounteren, 2     /* TM: S may access stimecmp */
    li t0, 1 << 5
    csrw mideleg, t0
    csrw mie, t0
    la t0, s_irq
    csrw stvec, t0
    csrr t0, time
    addi t0, t0, 50
    csrw stimecmp, t0
    csrr t1, mip
    andi t1, t1, 1 << 5
    EXPECT t1, 0
    li s6, 0
    la s5, 5f
    GOTO_S s5code
s5code:
    csrsi sstatus, 2        /* SIE */
1:  beqz s6, 1b
    ecall
5:  li t0, 0x8000000000000005
    EXPECT_EQ s6, t0
    EXPECT s1, 9
    CASE 6  /* STIP is read-only in mip while Sstc is on */
    csrw stimecmp, zero
    li t0, 1 << 5
    csrc mip, t0
    csrr t1, mip
    and t1, t1, t0
    EXPECT_EQ t1, t0
    PASS

    .balign 4
irq:
    csrr s2, minstret
    csrr s1, mcause
    csrr s3, mepc
    li t0, MTIMECMP
    li t1, -1
    sd t1, 0(t0)
    li t0, CLINT
    sw zero, 0(t0)
    mret

    .balign 4
s_irq:
    csrr s6, scause
    li t0, -1
    csrw stimecmp, t0
    sret

RECORDING_MTRAP
