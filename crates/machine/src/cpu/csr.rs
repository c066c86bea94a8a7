//! Control and status registers: numbers, field masks, and the access rules of the privileged
//! spec (privilege level encoded in the number, read-only ranges, counter enables, TVM, Sstc).

use super::{Cpu, Exception, Priv};

pub const FFLAGS: u16 = 0x001;
pub const FRM: u16 = 0x002;
pub const FCSR: u16 = 0x003;
pub const CYCLE: u16 = 0xc00;
pub const TIME: u16 = 0xc01;
pub const INSTRET: u16 = 0xc02;
pub const SSTATUS: u16 = 0x100;
pub const SIE: u16 = 0x104;
pub const STVEC: u16 = 0x105;
pub const SCOUNTEREN: u16 = 0x106;
pub const SENVCFG: u16 = 0x10a;
pub const SSCRATCH: u16 = 0x140;
pub const SEPC: u16 = 0x141;
pub const SCAUSE: u16 = 0x142;
pub const STVAL: u16 = 0x143;
pub const SIP: u16 = 0x144;
pub const STIMECMP: u16 = 0x14d;
pub const SATP: u16 = 0x180;
pub const MVENDORID: u16 = 0xf11;
pub const MARCHID: u16 = 0xf12;
pub const MIMPID: u16 = 0xf13;
pub const MHARTID: u16 = 0xf14;
pub const MCONFIGPTR: u16 = 0xf15;
pub const MSTATUS: u16 = 0x300;
pub const MISA: u16 = 0x301;
pub const MEDELEG: u16 = 0x302;
pub const MIDELEG: u16 = 0x303;
pub const MIE: u16 = 0x304;
pub const MTVEC: u16 = 0x305;
pub const MCOUNTEREN: u16 = 0x306;
pub const MENVCFG: u16 = 0x30a;
pub const MCOUNTINHIBIT: u16 = 0x320;
pub const MSCRATCH: u16 = 0x340;
pub const MEPC: u16 = 0x341;
pub const MCAUSE: u16 = 0x342;
pub const MTVAL: u16 = 0x343;
pub const MIP: u16 = 0x344;
pub const MTINST: u16 = 0x34a;
pub const MTVAL2: u16 = 0x34b;
pub const MCYCLE: u16 = 0xb00;
pub const MINSTRET: u16 = 0xb02;

// mstatus fields.
pub const MSTATUS_SIE: u64 = 1 << 1;
pub const MSTATUS_MIE: u64 = 1 << 3;
pub const MSTATUS_SPIE: u64 = 1 << 5;
pub const MSTATUS_MPIE: u64 = 1 << 7;
pub const MSTATUS_SPP: u64 = 1 << 8;
pub const MSTATUS_MPP: u64 = 3 << 11;
pub const MSTATUS_FS: u64 = 3 << 13;
pub const MSTATUS_MPRV: u64 = 1 << 17;
pub const MSTATUS_SUM: u64 = 1 << 18;
pub const MSTATUS_MXR: u64 = 1 << 19;
pub const MSTATUS_TVM: u64 = 1 << 20;
pub const MSTATUS_TW: u64 = 1 << 21;
pub const MSTATUS_TSR: u64 = 1 << 22;
pub const MSTATUS_UXL_SXL: u64 = (2 << 32) | (2 << 34);
pub const MSTATUS_SD: u64 = 1 << 63;
const MSTATUS_WRITABLE: u64 = MSTATUS_SIE
    | MSTATUS_MIE
    | MSTATUS_SPIE
    | MSTATUS_MPIE
    | MSTATUS_SPP
    | MSTATUS_MPP
    | MSTATUS_FS
    | MSTATUS_MPRV
    | MSTATUS_SUM
    | MSTATUS_MXR
    | MSTATUS_TVM
    | MSTATUS_TW
    | MSTATUS_TSR;
const SSTATUS_MASK: u64 =
    MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR | MSTATUS_UXL_SXL | MSTATUS_SD;
const SSTATUS_WRITABLE: u64 = MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR;

// Interrupt bits (mip/mie).
pub const IRQ_SSI: u64 = 1 << 1;
pub const IRQ_MSI: u64 = 1 << 3;
pub const IRQ_STI: u64 = 1 << 5;
pub const IRQ_MTI: u64 = 1 << 7;
pub const IRQ_SEI: u64 = 1 << 9;
pub const IRQ_MEI: u64 = 1 << 11;
pub const S_IRQS: u64 = IRQ_SSI | IRQ_STI | IRQ_SEI;
const M_IRQS: u64 = S_IRQS | IRQ_MSI | IRQ_MTI | IRQ_MEI;

/// Exceptions that may be delegated to S-mode (all but ecall from M and the reserved ones).
const MEDELEG_WRITABLE: u64 = 0xb3ff;

pub const MENVCFG_STCE: u64 = 1 << 63;
const MENVCFG_WRITABLE: u64 = MENVCFG_STCE | 1; // STCE, FIOM

/// misa: RV64 with A, C, D, F, I, M, S, U.
pub const MISA_VALUE: u64 = (2 << 62) | (1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20);

impl Cpu {
    /// Read CSR `csr` at the current privilege, with the access checks. `write` says whether the
    /// instruction will also write it (read-only CSRs then trap).
    pub(super) fn csr_read(&mut self, csr: u16, write: bool, raw: u32) -> Result<u64, Exception> {
        let illegal = Exception::illegal(raw);
        let min_priv = (csr >> 8) & 3;
        if u16::from(self.prv as u8) < min_priv || (write && csr >> 10 == 3) {
            return Err(illegal);
        }
        let v = match csr {
            FFLAGS | FRM | FCSR => {
                if self.mstatus & MSTATUS_FS == 0 {
                    return Err(illegal);
                }
                match csr {
                    FFLAGS => u64::from(self.fflags),
                    FRM => u64::from(self.frm),
                    _ => u64::from(self.fflags) | (u64::from(self.frm) << 5),
                }
            }
            0xc00..=0xc1f => {
                self.counter_check(u32::from(csr - 0xc00), raw)?;
                match csr {
                    CYCLE => self.icount.wrapping_add(self.mcycle_offset),
                    TIME => self.now(),
                    INSTRET => self.icount.wrapping_add(self.minstret_offset),
                    _ => 0,
                }
            }
            SSTATUS => self.read_mstatus() & SSTATUS_MASK,
            SIE => self.mie & self.mideleg,
            STVEC => self.stvec,
            SCOUNTEREN => self.scounteren,
            SENVCFG => self.senvcfg,
            SSCRATCH => self.sscratch,
            SEPC => self.sepc,
            SCAUSE => self.scause,
            STVAL => self.stval,
            SIP => self.mip & self.mideleg,
            STIMECMP => {
                self.stimecmp_check(raw)?;
                self.stimecmp
            }
            SATP => {
                if self.prv == Priv::S && self.mstatus & MSTATUS_TVM != 0 {
                    return Err(illegal);
                }
                self.satp
            }
            MVENDORID | MARCHID | MIMPID | MHARTID | MCONFIGPTR => 0,
            MSTATUS => self.read_mstatus(),
            MISA => MISA_VALUE,
            MEDELEG => self.medeleg,
            MIDELEG => self.mideleg,
            MIE => self.mie,
            MTVEC => self.mtvec,
            MCOUNTEREN => self.mcounteren,
            MENVCFG => self.menvcfg,
            MCOUNTINHIBIT => 0,
            0x323..=0x33f => 0, // mhpmevent3..31
            MSCRATCH => self.mscratch,
            MEPC => self.mepc,
            MCAUSE => self.mcause,
            MTVAL => self.mtval,
            MIP => self.mip,
            MTINST | MTVAL2 => 0,
            0x3a0..=0x3af => {
                // pmpcfg: odd numbers do not exist on RV64.
                if csr & 1 != 0 {
                    return Err(illegal);
                }
                self.pmpcfg[usize::from((csr - 0x3a0) / 2)]
            }
            0x3b0..=0x3ef => self.pmpaddr[usize::from(csr - 0x3b0)],
            0x747 => 0, // mseccfg
            MCYCLE => self.icount.wrapping_add(self.mcycle_offset),
            MINSTRET => self.icount.wrapping_add(self.minstret_offset),
            0xb03..=0xb1f => 0, // mhpmcounter3..31
            _ => return Err(illegal),
        };
        Ok(v)
    }

    /// Write CSR `csr` (the access was checked by [`Cpu::csr_read`]).
    pub(super) fn csr_write(&mut self, csr: u16, v: u64, raw: u32) -> Result<(), Exception> {
        match csr {
            FFLAGS => {
                self.fflags = (v & 0x1f) as u8;
                self.mstatus |= MSTATUS_FS;
            }
            FRM => {
                self.frm = (v & 7) as u8;
                self.mstatus |= MSTATUS_FS;
            }
            FCSR => {
                self.fflags = (v & 0x1f) as u8;
                self.frm = ((v >> 5) & 7) as u8;
                self.mstatus |= MSTATUS_FS;
            }
            SSTATUS => {
                let old = self.mstatus;
                self.mstatus = (self.mstatus & !SSTATUS_WRITABLE) | (v & SSTATUS_WRITABLE);
                self.mstatus_changed(old);
            }
            SIE => self.mie = (self.mie & !self.mideleg) | (v & self.mideleg & S_IRQS),
            STVEC => self.stvec = v & !2,
            SCOUNTEREN => self.scounteren = v & 0xffff_ffff,
            SENVCFG => self.senvcfg = v & 1,
            SSCRATCH => self.sscratch = v,
            SEPC => self.sepc = v & !1,
            SCAUSE => self.scause = v,
            STVAL => self.stval = v,
            SIP => {
                // Only SSIP is writable through sip.
                let mask = self.mideleg & IRQ_SSI;
                self.mip_sw = (self.mip_sw & !mask) | (v & mask);
                self.recompute_mip();
            }
            STIMECMP => {
                self.stimecmp = v;
                self.recompute_mip();
                self.resync = true;
            }
            SATP => {
                let mode = v >> 60;
                if mode == 0 || mode == 8 {
                    // ASIDLEN = 16: all ASID bits are writable.
                    self.satp = v;
                    self.mmu.set_context(self.translation_context());
                }
            }
            MSTATUS => {
                let old = self.mstatus;
                let mut nv = (self.mstatus & !MSTATUS_WRITABLE) | (v & MSTATUS_WRITABLE);
                if nv & MSTATUS_MPP == 2 << 11 {
                    nv &= !MSTATUS_MPP; // reserved encoding: WARL to U
                }
                self.mstatus = nv;
                self.mstatus_changed(old);
            }
            MISA => {}
            MEDELEG => self.medeleg = v & MEDELEG_WRITABLE,
            MIDELEG => self.mideleg = v & S_IRQS,
            MIE => self.mie = v & M_IRQS,
            MTVEC => self.mtvec = v & !2,
            MCOUNTEREN => self.mcounteren = v & 0xffff_ffff,
            MENVCFG => {
                self.menvcfg = v & MENVCFG_WRITABLE;
                self.recompute_mip();
                self.resync = true;
            }
            MCOUNTINHIBIT | 0x323..=0x33f | MTINST | MTVAL2 | 0x747 | 0xb03..=0xb1f => {}
            MSCRATCH => self.mscratch = v,
            MEPC => self.mepc = v & !1,
            MCAUSE => self.mcause = v,
            MTVAL => self.mtval = v,
            MIP => {
                // SSIP, STIP (unless Sstc drives it) and SEIP are writable by M-mode.
                let mut mask = IRQ_SSI | IRQ_SEI;
                if self.menvcfg & MENVCFG_STCE == 0 {
                    mask |= IRQ_STI;
                }
                self.mip_sw = (self.mip_sw & !mask) | (v & mask);
                self.recompute_mip();
            }
            0x3a0..=0x3af => self.pmpcfg_write(usize::from((csr - 0x3a0) / 2), v),
            0x3b0..=0x3ef => self.pmpaddr_write(usize::from(csr - 0x3b0), v),
            MCYCLE => self.mcycle_offset = v.wrapping_sub(self.icount).wrapping_sub(1),
            MINSTRET => self.minstret_offset = v.wrapping_sub(self.icount).wrapping_sub(1),
            _ => return Err(Exception::illegal(raw)),
        }
        Ok(())
    }

    fn read_mstatus(&self) -> u64 {
        let mut v = self.mstatus | MSTATUS_UXL_SXL;
        if v & MSTATUS_FS == MSTATUS_FS {
            v |= MSTATUS_SD;
        }
        v
    }

    fn mstatus_changed(&mut self, old: u64) {
        let changed = old ^ self.mstatus;
        if changed & MSTATUS_MXR != 0 {
            self.mmu.flush_data_us();
        }
        if changed & (MSTATUS_MPRV | MSTATUS_MPP | MSTATUS_SUM) != 0 {
            self.mmu.set_priv(self.prv, self.mstatus);
        }
    }

    /// `cycle`/`time`/`instret`/`hpmcounterN` from S or U: allowed by mcounteren (and, from U,
    /// scounteren) bit `n`.
    fn counter_check(&self, n: u32, raw: u32) -> Result<(), Exception> {
        let bit = 1u64 << n;
        let ok = match self.prv {
            Priv::M => true,
            Priv::S => self.mcounteren & bit != 0,
            Priv::U => self.mcounteren & bit != 0 && self.scounteren & bit != 0,
        };
        if ok {
            Ok(())
        } else {
            Err(Exception::illegal(raw))
        }
    }

    /// `stimecmp` from S needs menvcfg.STCE and mcounteren.TM.
    fn stimecmp_check(&self, raw: u32) -> Result<(), Exception> {
        if self.prv == Priv::S && (self.menvcfg & MENVCFG_STCE == 0 || self.mcounteren & 2 == 0) {
            return Err(Exception::illegal(raw));
        }
        Ok(())
    }
}
