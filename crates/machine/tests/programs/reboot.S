/* Counts in memory how often it has run, then asks for a reboot through the syscon; the count
 * lives in RAM, which a reset clears, so every boot sees 0 and writes 1. */
    .section .text.init, "ax"
    .globl _start
_start:
    la t0, counter
    ld t1, 0(t0)
    addi t1, t1, 1
    sd t1, 0(t0)
    li t0, 0x100000
    li t1, 0x7777
    sw t1, 0(t0)
1:  j 1b
    .data
    .balign 8
counter: .dword 0
