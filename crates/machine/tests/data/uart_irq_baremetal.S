# Bare-metal M-mode program for tests/devices_e2e.rs: interrupt-driven UART receive through the
# PLIC's M-mode context. Each received byte is echoed plus one ('a' -> 'b'); 'q' powers off.
# Rebuild the binary with:
#   riscv64-linux-gnu-as -march=rv64imac_zicsr -o /tmp/u.o uart_irq_baremetal.S &&
#   riscv64-linux-gnu-ld -Ttext=0x80000000 -o /tmp/u.elf /tmp/u.o &&
#   riscv64-linux-gnu-objcopy -O binary /tmp/u.elf uart_irq_baremetal.bin
    .equ UART, 0x10000000
    .equ PLIC, 0x0c000000
    .equ SYSCON, 0x100000

    .text
    .globl _start
_start:
    la t0, trap
    csrw mtvec, t0
    li s0, UART
    li s1, PLIC
    li t1, 1
    sw t1, 40(s1)              # priority of source 10 = 1
    li t1, 1 << 10
    li t0, PLIC + 0x2000
    sw t1, 0(t0)               # enable source 10 for context 0 (M)
    li t0, PLIC + 0x200000
    sw zero, 0(t0)             # threshold 0
    li t1, 1
    sb t1, 1(s0)               # IER: receive data available
    li t1, 1 << 11
    csrw mie, t1               # MEIE
    csrsi mstatus, 8           # MIE
idle:
    wfi
    j idle

    .align 2
trap:
    li t0, PLIC + 0x200004
    lw t1, 0(t0)               # claim
    li t2, 10
    bne t1, t2, bad
    lbu t3, 0(s0)              # RBR
    addi t4, t3, 1
    sb t4, 0(s0)               # THR
    sw t1, 0(t0)               # complete
    li t2, 'q'
    beq t3, t2, done
    mret
done:
    li t0, SYSCON
    li t1, 0x5555
    sw t1, 0(t0)
1:  j 1b
bad:
    li t0, SYSCON
    li t1, 0x23333             # exit code 2
    sw t1, 0(t0)
    j 1b
