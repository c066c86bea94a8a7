/* A never-ending workload for determinism tests: a memory-mixing loop interrupted by a timer
 * every 37 ticks; the handler prints a letter on the UART and re-arms the timer. */
#define CLINT 0x2000000
#define UART 0x10000000
    .section .text.init, "ax"
    .globl _start
_start:
    la t0, handler
    csrw mtvec, t0
    li t0, CLINT + 0x4000
    li t1, 37
    sd t1, 0(t0)
    li t0, 1 << 7
    csrw mie, t0
    csrsi mstatus, 8
    la s0, buf
    li s1, 0x9e3779b97f4a7c15
    li s2, 0
loop:
    andi t0, s2, 1023
    slli t0, t0, 3
    add t0, t0, s0
    ld t1, 0(t0)
    xor t1, t1, s1
    mul t1, t1, s1
    srli t2, t1, 29
    xor t1, t1, t2
    sd t1, 0(t0)
    add s1, s1, t1
    addi s2, s2, 1
    j loop

    .balign 4
handler:
    li t3, CLINT + 0xbff8
    ld t4, 0(t3)
    addi t4, t4, 37
    li t3, CLINT + 0x4000
    sd t4, 0(t3)
    addi s3, s3, 1
    andi t5, s3, 15
    addi t5, t5, 'a'
    li t3, UART
    sb t5, 0(t3)
    mret

    .data
    .balign 4096
buf: .fill 1024, 8, 0
