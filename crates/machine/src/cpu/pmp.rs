//! Physical memory protection (PMP).
//!
//! 64 entries (`pmpcfg0..14` even, `pmpaddr0..63`), grain 4 bytes, address matching OFF, TOR,
//! NA4 and NAPOT, permissions R/W/X, and the lock bit L (a locked entry also binds M-mode and
//! ignores writes to its configuration and address, and to the address below it when it is TOR).
//! The lowest-numbered entry that matches any byte of an access decides it; an access only partly
//! inside that entry fails. With no matching entry, M-mode accesses succeed and S/U accesses fail
//! (so an S/U guest needs at least one entry, as OpenSBI and `setup_for_supervisor` provide).
//! The reserved combination W without R is stored as no permission.
//!
//! Checks happen where translations are made, not on every access: the TLB caches a page only
//! when one entry (or none, for M-mode) governs the whole 4 KiB page, so a page split by a region
//! boundary is checked access by access on the slow path. Any PMP CSR write drops the TLB.
//! Instruction fetch is checked for the first halfword of each block; a block never extends past
//! its page, but could extend past a region boundary inside a split page (a documented limit).

use super::mmu::Access;
use super::{Cpu, Priv};

const CFG_R: u8 = 1;
const CFG_W: u8 = 2;
const CFG_X: u8 = 4;
const CFG_A: u8 = 3 << 3;
const CFG_L: u8 = 1 << 7;
const A_TOR: u8 = 1 << 3;
const A_NA4: u8 = 2 << 3;
const A_NAPOT: u8 = 3 << 3;

/// One active entry, as a byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmpRegion {
    pub lo: u64,
    /// Exclusive.
    pub hi: u64,
    /// `CFG_R | CFG_W | CFG_X` bits.
    pub perm: u8,
    pub locked: bool,
}

impl Cpu {
    /// Configuration byte of entry `i`.
    fn pmp_cfg(&self, i: usize) -> u8 {
        (self.pmpcfg[i / 8] >> (8 * (i % 8))).to_le_bytes()[0]
    }

    /// Rebuild the active region list from the CSRs (after a write or a restore).
    pub(crate) fn pmp_rebuild(&mut self) {
        let mut regions = Vec::new();
        for i in 0..64 {
            let cfg = self.pmp_cfg(i);
            let addr = self.pmpaddr[i];
            let (lo, hi) = match cfg & CFG_A {
                A_TOR => {
                    let lo = if i == 0 { 0 } else { self.pmpaddr[i - 1] << 2 };
                    (lo, addr << 2)
                }
                A_NA4 => (addr << 2, (addr << 2) + 4),
                A_NAPOT => {
                    let t = addr.trailing_ones();
                    if t >= 54 {
                        (0, 1 << 56)
                    } else {
                        let base = (addr & !((1u64 << t) - 1)) << 2;
                        (base, base + (1u64 << (t + 3)))
                    }
                }
                _ => continue,
            };
            if lo >= hi {
                continue; // a TOR entry whose bottom is not below its top matches nothing
            }
            let perm = cfg & (CFG_R | CFG_W | CFG_X);
            regions.push(PmpRegion { lo, hi, perm, locked: cfg & CFG_L != 0 });
        }
        self.pmp_regions = regions;
    }

    /// Whether privilege `prv` may make access `acc` to `[pa, pa + size)`.
    pub(crate) fn pmp_ok(&self, pa: u64, size: u64, acc: Access, prv: Priv) -> bool {
        let end = pa.saturating_add(size);
        for r in &self.pmp_regions {
            if pa < r.hi && end > r.lo {
                if pa < r.lo || end > r.hi {
                    return false;
                }
                if prv == Priv::M && !r.locked {
                    return true;
                }
                let need = match acc {
                    Access::Load => CFG_R,
                    Access::Store => CFG_W,
                    Access::Fetch => CFG_X,
                };
                return r.perm & need != 0;
            }
        }
        prv == Priv::M
    }

    /// Whether the whole 4 KiB page at `pa` is allowed for `acc` by one entry (or by none, for
    /// M-mode): only then may the TLB cache it.
    #[inline]
    pub(crate) fn pmp_page_ok(&self, pa: u64, acc: Access, prv: Priv) -> bool {
        if prv == Priv::M && self.pmp_regions.iter().all(|r| !r.locked) {
            return true;
        }
        self.pmp_ok(pa & !0xfff, 0x1000, acc, prv)
    }

    /// Write `pmpcfg` register `n` (0, 2, .., 14), keeping locked entries and the W-without-R
    /// rule.
    pub(crate) fn pmpcfg_write(&mut self, n: usize, v: u64) {
        let old = self.pmpcfg[n].to_le_bytes();
        let mut new = v.to_le_bytes();
        for (b, o) in new.iter_mut().zip(old) {
            if o & CFG_L != 0 {
                *b = o;
            } else if *b & (CFG_R | CFG_W) == CFG_W {
                *b &= !CFG_W;
            }
            *b &= !0x60; // bits 5 and 6 are reserved
        }
        self.pmpcfg[n] = u64::from_le_bytes(new);
        self.pmp_changed();
    }

    /// Write `pmpaddr` register `i`, unless it is locked (by its own entry, or by the next entry
    /// being a locked TOR).
    pub(crate) fn pmpaddr_write(&mut self, i: usize, v: u64) {
        let locked = self.pmp_cfg(i) & CFG_L != 0
            || (i + 1 < 64 && self.pmp_cfg(i + 1) & (CFG_L | CFG_A) == CFG_L | A_TOR);
        if !locked {
            self.pmpaddr[i] = v & ((1 << 54) - 1);
            self.pmp_changed();
        }
    }

    fn pmp_changed(&mut self) {
        self.pmp_rebuild();
        self.tlb_flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpu() -> Cpu {
        Cpu::new(0x8000_0000, 1)
    }

    #[test]
    fn no_entries_allow_m_only() {
        let c = cpu();
        assert!(c.pmp_ok(0x8000_0000, 8, Access::Load, Priv::M));
        assert!(!c.pmp_ok(0x8000_0000, 8, Access::Load, Priv::S));
    }

    #[test]
    fn napot_tor_na4_and_priority() {
        let mut c = cpu();
        // entry 0: NA4 at 0x8000_1000, no permissions; entry 1: TOR [0, 0x9000_0000) R/X;
        // entry 2: NAPOT everything RWX.
        c.pmpaddr_write(0, 0x8000_1000 >> 2);
        c.pmpaddr_write(1, 0x9000_0000 >> 2);
        c.pmpaddr_write(2, (1 << 54) - 1);
        c.pmpcfg_write(0, u64::from_le_bytes([A_NA4, A_TOR | CFG_R | CFG_X, A_NAPOT | 7, 0, 0, 0, 0, 0]));
        assert!(!c.pmp_ok(0x8000_1000, 4, Access::Load, Priv::S));
        assert!(c.pmp_ok(0x8000_1000, 4, Access::Load, Priv::M)); // unlocked: M unaffected
        assert!(!c.pmp_ok(0x8000_0ffe, 4, Access::Load, Priv::S)); // straddles the NA4 entry
        assert!(c.pmp_ok(0x8000_2000, 8, Access::Load, Priv::S));
        assert!(!c.pmp_ok(0x8000_2000, 8, Access::Store, Priv::U));
        assert!(c.pmp_ok(0x9000_0000, 8, Access::Store, Priv::U)); // entry 2
        assert!(!c.pmp_ok(0x8fff_fffc, 8, Access::Load, Priv::S)); // straddles the TOR top
        // The page holding the NA4 entry is split: not cacheable; its neighbour is.
        assert!(!c.pmp_page_ok(0x8000_1000, Access::Load, Priv::S));
        assert!(c.pmp_page_ok(0x8000_2000, Access::Load, Priv::S));
    }

    #[test]
    fn lock_binds_m_mode_and_freezes_the_entry() {
        let mut c = cpu();
        c.pmpaddr_write(0, (0x8000_0000 >> 2) | 0x3fff); // NAPOT 128 KiB at 0x8000_0000
        c.pmpcfg_write(0, u64::from(A_NAPOT | CFG_L | CFG_R));
        assert!(!c.pmp_ok(0x8000_0000, 8, Access::Store, Priv::M));
        assert!(c.pmp_ok(0x8000_0000, 8, Access::Load, Priv::M));
        assert!(c.pmp_ok(0x8004_0000, 8, Access::Store, Priv::M)); // outside: M passes
        c.pmpcfg_write(0, 0);
        c.pmpaddr_write(0, 0);
        assert_eq!(c.pmp_cfg(0), A_NAPOT | CFG_L | CFG_R);
        assert_eq!(c.pmpaddr[0], (0x8000_0000 >> 2) | 0x3fff);
    }

    #[test]
    fn an_empty_tor_range_matches_nothing() {
        let mut c = cpu();
        c.pmpaddr_write(0, 0x9000_0000 >> 2);
        c.pmpaddr_write(1, 0x8000_0000 >> 2); // top below bottom
        c.pmpaddr_write(2, (1 << 54) - 1);
        c.pmpcfg_write(0, u64::from_le_bytes([0, A_TOR, A_NAPOT | 7, 0, 0, 0, 0, 0]));
        assert!(c.pmp_ok(0x7fff_fff0, 0x40, Access::Store, Priv::U)); // falls to entry 2
    }

    #[test]
    fn write_without_read_is_stored_as_no_permission() {
        let mut c = cpu();
        c.pmpcfg_write(0, u64::from(A_NAPOT | CFG_W));
        assert_eq!(c.pmp_cfg(0), A_NAPOT);
    }
}
