//! Platform devices, one folder each with the same files: `device.rs` (registers and behaviour),
//! `persist.rs` (snapshot state). `syscon` is the small template new devices copy.

pub mod syscon;

use crate::bus::{BusFault, MachineRequest, MmioCtx, SYSCON_BASE, SYSCON_SIZE};
use crate::ram::GuestRam;

/// Every device on the bus.
#[derive(Debug, Default)]
pub struct Devices {
    pub syscon: syscon::Syscon,
}

impl Devices {
    pub(crate) fn read(
        &mut self,
        addr: u64,
        size: u8,
        _ram: &mut GuestRam,
        _ctx: &mut MmioCtx<'_>,
    ) -> Result<u64, BusFault> {
        if (SYSCON_BASE..SYSCON_BASE + SYSCON_SIZE).contains(&addr) {
            return self.syscon.read(addr - SYSCON_BASE, size);
        }
        Err(BusFault)
    }

    pub(crate) fn write(
        &mut self,
        addr: u64,
        size: u8,
        value: u64,
        _ram: &mut GuestRam,
        _ctx: &mut MmioCtx<'_>,
    ) -> Result<MachineRequest, BusFault> {
        if (SYSCON_BASE..SYSCON_BASE + SYSCON_SIZE).contains(&addr) {
            return self.syscon.write(addr - SYSCON_BASE, size, value);
        }
        Err(BusFault)
    }
}
