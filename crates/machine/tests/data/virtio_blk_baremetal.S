# Bare-metal M-mode program for tests/devices_e2e.rs: drives the UART, a virtio-blk device in
# virtio-mmio slot 0 (polling, no interrupts) and the syscon, the way a driver would.
# Rebuild the binary with:
#   riscv64-linux-gnu-as -march=rv64imac -o /tmp/t.o virtio_blk_baremetal.S &&
#   riscv64-linux-gnu-ld -Ttext=0x80000000 -o /tmp/t.elf /tmp/t.o &&
#   riscv64-linux-gnu-objcopy -O binary /tmp/t.elf virtio_blk_baremetal.bin
    .equ UART, 0x10000000
    .equ VIO, 0x10001000
    .equ RAMB, 0x80000000
    .equ DESC, RAMB + 0x10000
    .equ AVAIL, RAMB + 0x10100
    .equ USED, RAMB + 0x10200
    .equ HDR, RAMB + 0x11000
    .equ DATA, RAMB + 0x12000
    .equ STAT, RAMB + 0x13000

    .text
    .globl _start
_start:
    li s0, UART
    li t1, 'U'
    sb t1, 0(s0)

    li s1, VIO
    sw zero, 0x70(s1)          # status: reset
    li t1, 1
    sw t1, 0x70(s1)            # ACKNOWLEDGE
    li t1, 3
    sw t1, 0x70(s1)            # DRIVER
    li t1, 1
    sw t1, 0x24(s1)            # DriverFeaturesSel = 1
    sw t1, 0x20(s1)            # VIRTIO_F_VERSION_1 (bit 32)
    sw zero, 0x24(s1)
    sw zero, 0x20(s1)
    li t1, 11
    sw t1, 0x70(s1)            # FEATURES_OK
    lw t2, 0x70(s1)
    andi t2, t2, 8
    beqz t2, fail
    sw zero, 0x30(s1)          # QueueSel 0
    li t1, 8
    sw t1, 0x38(s1)            # QueueNum 8
    li t1, DESC
    sw t1, 0x80(s1)
    sw zero, 0x84(s1)
    li t1, AVAIL
    sw t1, 0x90(s1)
    sw zero, 0x94(s1)
    li t1, USED
    sw t1, 0xa0(s1)
    sw zero, 0xa4(s1)
    li t1, 1
    sw t1, 0x44(s1)            # QueueReady
    li t1, 15
    sw t1, 0x70(s1)            # DRIVER_OK

    # Request 1: read sector 0 into DATA.
    li a0, 0                   # type IN
    li a1, 0                   # sector
    li a2, 2                   # data descriptor flags: WRITE
    li a3, 1                   # expected used idx
    call submit
    li t0, DATA
    lbu t1, 0(t0)
    sb t1, 0(s0)               # echo the first byte of the disk

    # Request 2: write 512 bytes of 'W' to sector 1.
    li t0, DATA
    li t1, 'W'
    li t2, 512
1:  sb t1, 0(t0)
    addi t0, t0, 1
    addi t2, t2, -1
    bnez t2, 1b
    li a0, 1                   # type OUT
    li a1, 1
    li a2, 0                   # data descriptor is device-readable
    li a3, 2
    call submit

    # Power off with success.
    li t0, 0x100000
    li t1, 0x5555
    sw t1, 0(t0)
hang:
    j hang

fail:
    li t0, 0x100000
    li t1, 0x13333             # exit code 1
    sw t1, 0(t0)
    j hang

# submit(a0 = type, a1 = sector, a2 = data flags, a3 = expected used idx): one 3-descriptor
# request (header, 512-byte data, status); returns when the used index reaches a3 and the
# status byte is 0, else fails.
submit:
    li t0, HDR
    sw a0, 0(t0)
    sw zero, 4(t0)
    sd a1, 8(t0)
    li t0, STAT
    li t1, 0xff
    sb t1, 0(t0)
    li t0, DESC
    li t1, HDR                 # desc 0: header, NEXT, next = 1
    sd t1, 0(t0)
    li t1, 16
    sw t1, 8(t0)
    li t1, 0x00010001
    sw t1, 12(t0)
    li t1, DATA                # desc 1: data, NEXT | flags, next = 2
    sd t1, 16(t0)
    li t1, 512
    sw t1, 24(t0)
    ori t1, a2, 1
    li t2, 0x00020000
    or t1, t1, t2
    sw t1, 28(t0)
    li t1, STAT                # desc 2: status, WRITE
    sd t1, 32(t0)
    li t1, 1
    sw t1, 40(t0)
    li t1, 2
    sw t1, 44(t0)
    li t0, AVAIL               # ring[(a3 - 1) % 8] = 0; idx = a3
    addi t1, a3, -1
    andi t1, t1, 7
    slli t1, t1, 1
    add t1, t1, t0
    sh zero, 4(t1)
    fence
    sh a3, 2(t0)
    fence
    sw zero, 0x50(s1)          # QueueNotify 0: served during this store
    li t0, USED
    lhu t1, 2(t0)
    bne t1, a3, fail
    li t0, STAT
    lbu t1, 0(t0)
    bnez t1, fail
    ret
