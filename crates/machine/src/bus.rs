//! The physical address space: RAM plus memory-mapped devices, laid out like QEMU's `virt`.
//!
//! | range                      | what                                   | IRQ (PLIC) |
//! |----------------------------|----------------------------------------|------------|
//! | `0x0010_0000` + `0x1000`   | syscon (`sifive,test0`: power-off, reset) |         |
//! | `0x0200_0000` + `0x1_0000` | CLINT (msip, mtimecmp, mtime)          |            |
//! | `0x0c00_0000` + `0x60_0000`| PLIC                                   |            |
//! | `0x1000_0000` + `0x100`    | 16550 UART                             | 10         |
//! | `0x1000_1000` + n·`0x1000` | virtio-mmio slot n (n < 8)             | 1 + n      |
//! | `0x8000_0000` + RAM size   | RAM (the framebuffer is carved from its top) |      |
//!
//! The CPU reaches RAM through its own fast path and calls [`Bus::mmio_read`] /
//! [`Bus::mmio_write`] for everything else. MMIO accesses happen at exact instruction counts:
//! the CPU passes the count of the accessing instruction in [`MmioCtx`].

use crate::devices::Devices;
use crate::env::{Environment, InstructionCount, Ticks};
use crate::ram::GuestRam;

pub const SYSCON_BASE: u64 = 0x0010_0000;
pub const SYSCON_SIZE: u64 = 0x1000;
pub const CLINT_BASE: u64 = 0x0200_0000;
pub const CLINT_SIZE: u64 = 0x1_0000;
pub const PLIC_BASE: u64 = 0x0c00_0000;
pub const PLIC_SIZE: u64 = 0x60_0000;
pub const UART_BASE: u64 = 0x1000_0000;
pub const UART_SIZE: u64 = 0x100;
pub const UART_IRQ: u32 = 10;
pub const VIRTIO_BASE: u64 = 0x1000_1000;
pub const VIRTIO_STRIDE: u64 = 0x1000;
pub const VIRTIO_SLOTS: u64 = 8;
pub const VIRTIO_IRQ_BASE: u32 = 1;
pub const RAM_BASE: u64 = 0x8000_0000;

/// What an MMIO access knows about the moment it happens.
pub struct MmioCtx<'a> {
    /// Instructions retired before the accessing instruction.
    pub icount: InstructionCount,
    /// Guest time at the access.
    pub now: Ticks,
    /// The environment, for device outputs and entropy.
    pub env: &'a mut dyn Environment,
}

/// An access the bus cannot serve; the CPU turns it into an access-fault exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusFault;

/// What a device asks of the machine after an access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MachineRequest {
    #[default]
    None,
    /// The guest asked to power off, with an exit code (0 = success).
    PowerOff(u32),
    /// The guest asked for a reset.
    Reset,
}

/// RAM and the devices.
#[derive(Debug)]
pub struct Bus {
    pub ram: GuestRam,
    pub devices: Devices,
    /// Set by a device (syscon, SBI reset) when the machine must stop; read and cleared by the
    /// run loop.
    pub request: MachineRequest,
}

impl Bus {
    pub fn new(ram: GuestRam, devices: Devices) -> Self {
        Bus {
            ram,
            devices,
            request: MachineRequest::None,
        }
    }

    /// Read `size` (1, 2, 4 or 8) bytes from a device register at physical `addr`.
    pub fn mmio_read(
        &mut self,
        addr: u64,
        size: u8,
        ctx: &mut MmioCtx<'_>,
    ) -> Result<u64, BusFault> {
        self.devices.read(addr, size, &mut self.ram, ctx)
    }

    /// Write `size` (1, 2, 4 or 8) bytes to a device register at physical `addr`.
    pub fn mmio_write(
        &mut self,
        addr: u64,
        size: u8,
        value: u64,
        ctx: &mut MmioCtx<'_>,
    ) -> Result<(), BusFault> {
        let request = self.devices.write(addr, size, value, &mut self.ram, ctx)?;
        if request != MachineRequest::None {
            self.request = request;
        }
        Ok(())
    }
}
