/* Jumps to an address with no memory behind it, with mtvec pointing there too: every fetch
 * faults, forever. */
    .section .text.init, "ax"
    .globl _start
_start:
    li t0, 0x1000
    csrw mtvec, t0
    jr t0
