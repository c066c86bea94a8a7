/* PMP: TOR, NA4 and NAPOT matching, R/W/X per entry, priority of the lowest entry, partial
 * matches, the default for S/U (deny) and M (allow), and the lock bit binding M-mode. */
#include "test.h"
START
    la t0, mtrap
    csrw mtvec, t0

    /* entry 0: NAPOT 4 KiB at `page` (R only); entry 1: NA4 at `word` (no access);
     * entry 2: off, address 0 (the bottom of entry 3); entry 3: TOR [0, `data_end`) RWX.
     * Addresses are >> 2. */
    la t0, page
    srli t0, t0, 2
    ori t0, t0, 0x1ff          /* 4 KiB: 9 trailing ones */
    csrw pmpaddr0, t0
    la t0, word
    srli t0, t0, 2
    csrw pmpaddr1, t0
    la t0, data_end
    srli t0, t0, 2
    csrw pmpaddr3, t0
    csrw pmpaddr2, zero
    li t0, (0x0f << 24) | (0x10 << 8) | 0x19   /* TOR|RWX, off, NA4|---, NAPOT|R */
    csrw pmpcfg0, t0

    CASE 1  /* S reads the R-only page */
    la s5, 1f
    li s1, -1
    GOTO_S s1code
s1code:
    la t0, page
    ld a0, 0(t0)
    ecall
1:  EXPECT s1, 9            /* the ecall, no fault before it */

    CASE 2  /* S store to the R-only page: store access fault, mtval = address */
    la s5, 2f
    GOTO_S s2code
s2code:
    la t0, page
    sd zero, 8(t0)
    j fail
2:  EXPECT s1, 7
    la t0, page + 8
    EXPECT_EQ s2, t0

    CASE 3  /* U load from the NA4 word: load access fault; the word next to it is fine */
    la s5, 3f
    GOTO_U u3code
u3code:
    la t0, word
    lw a0, 4(t0)
    lw a0, 0(t0)
    j fail
3:  EXPECT s1, 5
    la t0, word
    EXPECT_EQ s2, t0

    CASE 4  /* an 8-byte load overlapping the NA4 word only partly fails */
    la s5, 4f
    GOTO_S s4code
s4code:
    la t0, word
    ld a0, -4(t0)
    j fail
4:  EXPECT s1, 5

    CASE 5  /* M is not bound by unlocked entries */
    la t0, word
    lw a0, 0(t0)
    la t0, page
    sd zero, 8(t0)

    CASE 6  /* S fetch above the TOR top (no entry matches): instruction access fault */
    la s5, 6f
    la t0, data_end
    csrw mepc, t0
    li t0, 0x1800
    csrc mstatus, t0
    li t0, 0x800
    csrs mstatus, t0
    mret
6:  EXPECT s1, 1
    la t0, data_end
    EXPECT_EQ s2, t0

    CASE 7  /* X only in the TOR entry: S executes code below data_end but not in the R page */
    la t0, page_code
    li t1, 0x00008067       /* ret */
    sw t1, 0(t0)
    fence.i
    la s5, 7f
    GOTO_S s7code
s7code:
    la t0, page_code
    jalr t0
    j fail
7:  EXPECT s1, 1
    la t0, page_code
    EXPECT_EQ s2, t0

    CASE 8  /* a locked entry binds M: lock the R-only page entry, then an M store faults */
    li t0, 0x80
    csrs pmpcfg0, t0
    la s5, 8f
    la t0, page
    sd zero, 16(t0)
    j fail
8:  EXPECT s1, 7
    /* and the locked entry ignores writes */
    csrw pmpaddr0, zero
    csrr t0, pmpaddr0
    la t1, page
    srli t1, t1, 2
    ori t1, t1, 0x1ff
    EXPECT_EQ t0, t1
    csrr t0, pmpcfg0
    andi t0, t0, 0xff
    EXPECT t0, 0x99

    CASE 9  /* M may still read it */
    la t0, page
    ld a0, 0(t0)
    PASS

RECORDING_MTRAP

    .data
    .balign 4096
page:
page_code:
    .fill 512, 8, 0
    .balign 64
    .word 0
word:
    .word 0
    .word 0
    .balign 4096
data_end:
    .fill 4, 8, 0
