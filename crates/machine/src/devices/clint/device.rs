use crate::bus::{BusFault, MmioCtx};

/// Offset of hart 0's `msip` word.
pub const MSIP_OFFSET: u64 = 0x0;
/// Offset of hart 0's 64-bit `mtimecmp`.
pub const MTIMECMP_OFFSET: u64 = 0x4000;
/// Offset of the 64-bit `mtime`.
pub const MTIME_OFFSET: u64 = 0xbff8;

/// CLINT state. `mtime` is not state: it is guest time, derived from the instruction count and
/// read from [`MmioCtx::now`].
///
/// Writes to `mtime` are ignored: guest time is a function of the instruction count (and of the
/// logged idle warps), so letting the guest move it would make it a second, guest-controlled
/// clock. Neither OpenSBI nor Linux writes `mtime` on this platform.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clint {
    pub(super) msip: bool,
    pub(super) mtimecmp: u64,
}

impl Default for Clint {
    fn default() -> Self {
        // No timer armed at reset.
        Clint { msip: false, mtimecmp: u64::MAX }
    }
}

/// Read `size` bytes at byte `shift` of a 64-bit register.
fn read_part(reg: u64, shift: u64, size: u8) -> u64 {
    let v = reg >> (shift * 8);
    match size {
        8 => v,
        _ => v & ((1u64 << (u32::from(size) * 8)) - 1),
    }
}

/// Replace `size` bytes at byte `shift` of a 64-bit register with `value`.
fn write_part(reg: u64, shift: u64, size: u8, value: u64) -> u64 {
    if size == 8 {
        return value;
    }
    let mask = ((1u64 << (u32::from(size) * 8)) - 1) << (shift * 8);
    (reg & !mask) | ((value << (shift * 8)) & mask)
}

fn aligned(offset: u64, size: u8) -> bool {
    matches!(size, 1 | 2 | 4 | 8) && offset.is_multiple_of(u64::from(size))
}

impl Clint {
    /// The hart's timer compare value; the timer interrupt is pending while `mtime >= mtimecmp`.
    pub fn mtimecmp(&self) -> u64 {
        self.mtimecmp
    }

    /// Whether the machine software interrupt is raised.
    pub fn msip(&self) -> bool {
        self.msip
    }

    pub fn read(&mut self, offset: u64, size: u8, ctx: &MmioCtx<'_>) -> Result<u64, BusFault> {
        if !aligned(offset, size) {
            return Err(BusFault);
        }
        Ok(match offset {
            o if (MSIP_OFFSET..MSIP_OFFSET + 4).contains(&o) => {
                read_part(u64::from(self.msip), o - MSIP_OFFSET, size.min(4))
            }
            o if (MTIMECMP_OFFSET..MTIMECMP_OFFSET + 8).contains(&o) => {
                read_part(self.mtimecmp, o - MTIMECMP_OFFSET, size)
            }
            o if (MTIME_OFFSET..MTIME_OFFSET + 8).contains(&o) => read_part(ctx.now, o - MTIME_OFFSET, size),
            // Other harts' registers and reserved space read as zero, as on QEMU.
            _ => 0,
        })
    }

    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), BusFault> {
        if !aligned(offset, size) {
            return Err(BusFault);
        }
        match offset {
            MSIP_OFFSET => self.msip = value & 1 != 0,
            o if (MTIMECMP_OFFSET..MTIMECMP_OFFSET + 8).contains(&o) => {
                self.mtimecmp = write_part(self.mtimecmp, o - MTIMECMP_OFFSET, size, value);
            }
            // mtime writes are ignored (see the type docs); everything else is reserved.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::NullEnvironment;

    #[test]
    fn mtime_is_guest_time_and_writes_to_it_are_ignored() {
        let mut env = NullEnvironment::default();
        let ctx = MmioCtx { icount: 10, now: 0x1_2345_6789, env: &mut env };
        let mut c = Clint::default();
        assert_eq!(c.read(MTIME_OFFSET, 8, &ctx).unwrap(), 0x1_2345_6789);
        assert_eq!(c.read(MTIME_OFFSET, 4, &ctx).unwrap(), 0x2345_6789);
        assert_eq!(c.read(MTIME_OFFSET + 4, 4, &ctx).unwrap(), 1);
        c.write(MTIME_OFFSET, 8, 5).unwrap();
        assert_eq!(c.read(MTIME_OFFSET, 8, &ctx).unwrap(), 0x1_2345_6789);
    }

    #[test]
    fn mtimecmp_halves_and_msip() {
        let mut env = NullEnvironment::default();
        let ctx = MmioCtx { icount: 0, now: 0, env: &mut env };
        let mut c = Clint::default();
        assert_eq!(c.mtimecmp(), u64::MAX);
        c.write(MTIMECMP_OFFSET, 4, 0xdead_beef).unwrap();
        c.write(MTIMECMP_OFFSET + 4, 4, 0x1).unwrap();
        assert_eq!(c.mtimecmp(), 0x1_dead_beef);
        assert_eq!(c.read(MTIMECMP_OFFSET + 4, 4, &ctx).unwrap(), 1);
        c.write(MTIMECMP_OFFSET, 8, 42).unwrap();
        assert_eq!(c.mtimecmp(), 42);
        assert!(!c.msip());
        c.write(MSIP_OFFSET, 4, 1).unwrap();
        assert!(c.msip());
        assert_eq!(c.read(MSIP_OFFSET, 4, &ctx).unwrap(), 1);
        c.write(MSIP_OFFSET, 4, 0).unwrap();
        assert!(!c.msip());
        assert_eq!(c.write(MTIMECMP_OFFSET + 2, 4, 0), Err(BusFault));
    }
}
