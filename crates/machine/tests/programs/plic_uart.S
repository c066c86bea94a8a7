/* Waits in WFI for a byte on the UART, delivered through the PLIC as a machine external
 * interrupt; powers off with code 0 if the byte is 'x' and PLIC claimed source 10. */
#define PLIC 0x0c000000
#define UART 0x10000000
#define SYSCON 0x100000
    .section .text.init, "ax"
    .globl _start
_start:
    la t0, handler
    csrw mtvec, t0
    li t0, PLIC + 4 * 10
    li t1, 1
    sw t1, 0(t0)            /* priority of source 10 */
    li t0, PLIC + 0x2000
    li t1, 1 << 10
    sw t1, 0(t0)            /* context 0 (M) enables source 10 */
    li t0, PLIC + 0x200000
    sw zero, 0(t0)          /* threshold 0 */
    li t0, UART
    li t1, 1
    sb t1, 1(t0)            /* IER: received data available */
    li t0, 1 << 11
    csrw mie, t0
    csrsi mstatus, 8
1:  wfi
    j 1b

    .balign 4
handler:
    li t0, PLIC + 0x200004
    lw s0, 0(t0)            /* claim */
    li t1, UART
    lbu s1, 0(t1)
    sw s0, 0(t0)            /* complete */
    li t2, 10
    bne s0, t2, bad
    li t2, 'x'
    bne s1, t2, bad
    li t0, SYSCON
    li t1, 0x5555
    sw t1, 0(t0)
bad:
    li t0, SYSCON
    li t1, 0x13333
    sw t1, 0(t0)
1:  j 1b
