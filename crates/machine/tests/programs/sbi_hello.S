/* A stand-in "kernel" with a RISC-V Linux Image header, entered in S-mode with the host SBI:
 * prints through legacy putchar and DBCN, checks a0/a1 and the SBI base calls, arms the SBI
 * timer and waits for it in WFI, then shuts down through SRST. */
    .section .text.init, "ax"
    .globl _start
_start:
    j start                 /* code0/code1 */
    .balign 8
    .dword 0x200000         /* text_offset */
    .dword image_end - _start /* image_size */
    .dword 0                /* flags */
    .word 2                 /* version */
    .word 0
    .dword 0
    .ascii "RISCV\0\0\0"    /* magic (deprecated) */
    .ascii "RSC\x05"        /* magic2 at 0x38 */
    .word 0
start:
    bnez a0, fail           /* hart id 0 */
    mv s0, a1               /* DTB address */
    lwu t0, 0(s0)
    li t1, 0xedfe0dd0       /* FDT magic, big-endian */
    bne t0, t1, fail
    /* base: spec version, probe TIME */
    li a7, 0x10
    li a6, 0
    ecall
    bnez a0, fail
    li a7, 0x10
    li a6, 3
    li a0, 0x54494D45
    ecall
    li t0, 1
    bne a1, t0, fail
    /* legacy putchar 'h', 'i' */
    li a7, 1
    li a0, 'h'
    ecall
    li a7, 1
    li a0, 'i'
    ecall
    /* DBCN write of "!\n" */
    la a1, bang
    li a7, 0x4442434E
    li a6, 0
    li a0, 2
    li a2, 0
    ecall
    bnez a0, fail
    /* TIME: fire in 100 ticks; wait in WFI with STIE */
    la t0, stvec_handler
    csrw stvec, t0
    li t0, 1 << 5
    csrw sie, t0
    rdtime a0
    addi a0, a0, 100
    mv s2, a0
    li a7, 0x54494D45
    li a6, 0
    ecall
    li s1, 0
    csrsi sstatus, 2        /* SIE */
1:  wfi
    beqz s1, 1b
    rdtime t0
    bltu t0, s2, fail
    /* SRST shutdown, reason 0 */
    li a7, 0x53525354
    li a6, 0
    li a0, 0
    li a1, 0
    ecall
fail:
    li a7, 0x53525354
    li a6, 0
    li a0, 0
    li a1, 1                /* system failure: power off with code 1 */
    ecall
2:  j 2b

    .balign 4
stvec_handler:
    li s1, 1
    li a0, -1               /* disarm */
    li a7, 0x54494D45
    li a6, 0
    ecall
    sret
bang: .ascii "!\n"
    .balign 8
image_end:
