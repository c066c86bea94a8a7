//! The RV64GC hart: I, M, A, F, D, C, Zicsr, Zifencei; M/S/U privilege; Sv39 with a TLB.
//!
//! # Execution model
//!
//! Instructions are decoded once into basic blocks cached by physical address (`block.rs`) and
//! executed from there. A block ends at control flow and at every instruction that can change
//! privilege, translation or interrupt state (CSR access, xRET, WFI, fences, ECALL) and after any
//! MMIO access or any store that hits a page holding decoded code. Pending interrupts are checked
//! before every block, which is therefore equivalent to checking before every instruction.
//! [`Cpu::run_block`] executes at most a given number of instructions, so the caller can stop at
//! an exact instruction count.
//!
//! # Counting
//!
//! `icount` counts *steps*: every instruction that completes and every instruction that raises
//! an exception (a trap loop therefore still advances the count and can be stopped). Taking an
//! interrupt is not a step. `cycle`, `instret` and `time` derive from it.
//!
//! # PMP
//!
//! Enforced (`pmp.rs`): 64 entries, TOR/NA4/NAPOT, R/W/X and the lock bit.

pub mod block;
pub mod csr;
pub mod decode;
mod exec;
mod fp;
pub mod mmu;
pub mod persist;
mod pmp;

pub use persist::CpuState;

use csr::*;

/// Privilege level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[repr(u8)]
pub enum Priv {
    U = 0,
    S = 1,
    M = 3,
}

impl Priv {
    fn from_bits(b: u64) -> Priv {
        match b & 3 {
            0 => Priv::U,
            1 => Priv::S,
            _ => Priv::M,
        }
    }
    /// One-letter name.
    pub fn letter(self) -> char {
        match self {
            Priv::U => 'U',
            Priv::S => 'S',
            Priv::M => 'M',
        }
    }
}

/// Exception causes.
pub mod cause {
    pub const INSN_MISALIGNED: u64 = 0;
    pub const INSN_ACCESS: u64 = 1;
    pub const ILLEGAL: u64 = 2;
    pub const BREAKPOINT: u64 = 3;
    pub const LOAD_MISALIGNED: u64 = 4;
    pub const LOAD_ACCESS: u64 = 5;
    pub const STORE_MISALIGNED: u64 = 6;
    pub const STORE_ACCESS: u64 = 7;
    pub const ECALL_U: u64 = 8;
    pub const ECALL_S: u64 = 9;
    pub const ECALL_M: u64 = 11;
    pub const INSN_PAGE: u64 = 12;
    pub const LOAD_PAGE: u64 = 13;
    pub const STORE_PAGE: u64 = 15;
}

/// A synchronous exception about to be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub cause: u64,
    pub tval: u64,
}

impl Exception {
    pub fn illegal(raw: u32) -> Self {
        Exception { cause: cause::ILLEGAL, tval: u64::from(raw) }
    }
}

/// The last trap taken, for diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrapRecord {
    pub cause: u64,
    pub interrupt: bool,
    pub epc: u64,
    pub tval: u64,
    pub icount: u64,
}

/// One executed instruction, as recorded when tracing is on ([`Cpu::trace`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceEntry {
    /// Instruction count before the instruction.
    pub icount: u64,
    pub pc: u64,
    /// The encoding (16-bit ones zero-extended).
    pub raw: u32,
    pub prv: Priv,
}

/// Why [`Cpu::run_block`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockExit {
    /// Instructions ran (possibly a trap was taken); carry on.
    Ran,
    /// ECALL from S-mode with the host SBI enabled: the call is for the machine (`sbi.rs`).
    /// It was counted; the machine handles it and advances `pc`.
    Sbi,
    /// The hart is waiting in WFI.
    Wfi,
    /// An MMIO access happened or a timer comparator was written: device interrupt lines or the
    /// next timer deadline may have changed, or a device asked the machine to stop.
    Resync,
}

/// Architectural state of the hart plus its caches.
pub struct Cpu {
    /// Integer registers; index 32 is the sink for writes to `x0`. 64 entries so that a masked
    /// index needs no bounds check.
    pub x: [u64; 64],
    pub f: [u64; 32],
    pub pc: u64,
    pub prv: Priv,
    /// Steps taken since reset (see the module docs).
    pub icount: u64,
    /// Instructions per timer tick.
    pub ipt: u64,
    /// Ticks added by idling.
    pub warp: u64,
    /// Waiting in WFI.
    pub wfi: bool,
    /// Handle ECALL from S-mode in the host (Linux boot) instead of trapping to M.
    pub host_sbi: bool,

    pub(crate) mstatus: u64,
    pub(crate) medeleg: u64,
    pub(crate) mideleg: u64,
    pub(crate) mie: u64,
    /// Effective mip: `mip_sw | ext_irq | Sstc STIP`.
    pub(crate) mip: u64,
    /// Software-writable pending bits (SSIP, STIP without Sstc, SEIP).
    pub(crate) mip_sw: u64,
    /// Lines driven by devices (MSIP, MTIP from the CLINT; MEIP, SEIP from the PLIC).
    pub(crate) ext_irq: u64,
    pub(crate) mtvec: u64,
    pub(crate) stvec: u64,
    pub(crate) mepc: u64,
    pub(crate) sepc: u64,
    pub(crate) mcause: u64,
    pub(crate) scause: u64,
    pub(crate) mtval: u64,
    pub(crate) stval: u64,
    pub(crate) mscratch: u64,
    pub(crate) sscratch: u64,
    pub(crate) satp: u64,
    pub(crate) mcounteren: u64,
    pub(crate) scounteren: u64,
    pub(crate) menvcfg: u64,
    pub(crate) senvcfg: u64,
    pub(crate) stimecmp: u64,
    pub(crate) mcycle_offset: u64,
    pub(crate) minstret_offset: u64,
    pub(crate) pmpcfg: [u64; 8],
    pub(crate) pmpaddr: [u64; 64],
    /// Active PMP entries, derived from `pmpcfg`/`pmpaddr` (see `pmp.rs`).
    pub(crate) pmp_regions: Vec<pmp::PmpRegion>,
    pub(crate) fflags: u8,
    pub(crate) frm: u8,
    /// LR reservation (physical address).
    pub(crate) reservation: Option<u64>,
    pub last_trap: Option<TrapRecord>,

    pub(crate) mmu: mmu::Mmu,
    pub(crate) blocks: block::BlockCache,
    /// Reused buffer for decoding a block.
    scratch: Vec<decode::Insn>,
    /// Set by the memory slow paths when the current block must end after this instruction.
    pub(crate) end_block: bool,
    pub(crate) resync: bool,
    /// When set, instructions run one per block and each is appended here before it executes
    /// (the caller drains it). Untraced runs pay one test per block.
    pub trace: Option<Vec<TraceEntry>>,
}

impl std::fmt::Debug for Cpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cpu")
            .field("pc", &format_args!("{:#x}", self.pc))
            .field("prv", &self.prv)
            .field("icount", &self.icount)
            .finish_non_exhaustive()
    }
}

impl Cpu {
    /// A hart at reset: M-mode, `pc = reset_pc`, everything else zero.
    pub fn new(reset_pc: u64, ipt: u64) -> Cpu {
        Cpu {
            x: [0; 64],
            f: [0; 32],
            pc: reset_pc,
            prv: Priv::M,
            icount: 0,
            ipt: ipt.max(1),
            warp: 0,
            wfi: false,
            host_sbi: false,
            mstatus: 0,
            medeleg: 0,
            mideleg: 0,
            mie: 0,
            mip: 0,
            mip_sw: 0,
            ext_irq: 0,
            mtvec: 0,
            stvec: 0,
            mepc: 0,
            sepc: 0,
            mcause: 0,
            scause: 0,
            mtval: 0,
            stval: 0,
            mscratch: 0,
            sscratch: 0,
            satp: 0,
            mcounteren: 0,
            scounteren: 0,
            menvcfg: 0,
            senvcfg: 0,
            stimecmp: u64::MAX,
            mcycle_offset: 0,
            minstret_offset: 0,
            pmpcfg: [0; 8],
            pmpaddr: [0; 64],
            pmp_regions: Vec::new(),
            fflags: 0,
            frm: 0,
            reservation: None,
            last_trap: None,
            mmu: mmu::Mmu::new(),
            blocks: block::BlockCache::new(),
            scratch: Vec::with_capacity(block::MAX_BLOCK),
            end_block: false,
            resync: false,
            trace: None,
        }
    }

    /// Guest time in ticks at the current instruction.
    #[inline]
    pub fn now(&self) -> u64 {
        self.icount / self.ipt + self.warp
    }

    /// The instruction count at which guest time first reaches `ticks` (now if it has).
    pub fn icount_at_tick(&self, ticks: u64) -> u64 {
        match ticks.checked_sub(self.warp) {
            Some(d) if d > 0 => d.saturating_mul(self.ipt).max(self.icount),
            _ => self.icount,
        }
    }

    /// Set the lines devices drive (a mask of MSIP, MTIP, MEIP and SEIP bits).
    pub fn set_ext_irq(&mut self, lines: u64) {
        self.ext_irq = lines & (IRQ_MSI | IRQ_MTI | IRQ_MEI | IRQ_SEI);
        self.recompute_mip();
    }

    /// The Sstc comparator, when enabled.
    pub fn stimecmp_deadline(&self) -> Option<u64> {
        (self.menvcfg & MENVCFG_STCE != 0 && self.stimecmp != u64::MAX).then_some(self.stimecmp)
    }

    /// Recompute the effective mip from its sources at the current time.
    pub fn recompute_mip(&mut self) {
        let mut mip = self.mip_sw | self.ext_irq;
        if self.menvcfg & MENVCFG_STCE != 0 {
            mip &= !IRQ_STI;
            if self.now() >= self.stimecmp {
                mip |= IRQ_STI;
            }
        }
        self.mip = mip;
    }

    /// Effective mip.
    pub fn mip(&self) -> u64 {
        self.mip
    }

    /// Whether an interrupt is pending and enabled (ignoring global enables): what wakes WFI.
    #[inline]
    pub fn wake_pending(&self) -> bool {
        self.mip & self.mie != 0
    }

    /// The interrupt to take now, if any (priority order of the privileged spec).
    fn pending_interrupt(&self) -> Option<u64> {
        let pending = self.mip & self.mie;
        if pending == 0 {
            return None;
        }
        let m_enabled = self.prv < Priv::M || self.mstatus & MSTATUS_MIE != 0;
        let s_enabled = self.prv < Priv::S || (self.prv == Priv::S && self.mstatus & MSTATUS_SIE != 0);
        let m_pending = if m_enabled { pending & !self.mideleg } else { 0 };
        let s_pending = if s_enabled { pending & self.mideleg } else { 0 };
        let set = if m_pending != 0 { m_pending } else { s_pending };
        if set == 0 {
            return None;
        }
        [11u64, 3, 7, 9, 1, 5].into_iter().find(|bit| set & (1 << bit) != 0)
    }

    /// Take a pending, enabled interrupt if there is one. Returns whether one was taken.
    pub fn check_interrupts(&mut self) -> bool {
        match self.pending_interrupt() {
            Some(bit) => {
                self.wfi = false;
                self.trap(bit, true, 0);
                true
            }
            None => false,
        }
    }

    /// Enter the trap handler for `cause` from the current `pc`.
    pub(crate) fn trap(&mut self, cause: u64, interrupt: bool, tval: u64) {
        self.last_trap = Some(TrapRecord { cause, interrupt, epc: self.pc, tval, icount: self.icount });
        self.reservation = None;
        let deleg = if interrupt { self.mideleg } else { self.medeleg };
        let to_s = self.prv <= Priv::S && (deleg >> cause) & 1 != 0;
        let cause_val = cause | if interrupt { 1 << 63 } else { 0 };
        let old_prv = self.prv;
        if to_s {
            self.sepc = self.pc;
            self.scause = cause_val;
            self.stval = tval;
            let sie = self.mstatus & MSTATUS_SIE != 0;
            self.mstatus &= !(MSTATUS_SPIE | MSTATUS_SIE | MSTATUS_SPP);
            if sie {
                self.mstatus |= MSTATUS_SPIE;
            }
            if old_prv == Priv::S {
                self.mstatus |= MSTATUS_SPP;
            }
            self.prv = Priv::S;
            self.pc = vector(self.stvec, cause, interrupt);
        } else {
            self.mepc = self.pc;
            self.mcause = cause_val;
            self.mtval = tval;
            let mie = self.mstatus & MSTATUS_MIE != 0;
            self.mstatus &= !(MSTATUS_MPIE | MSTATUS_MIE | MSTATUS_MPP);
            if mie {
                self.mstatus |= MSTATUS_MPIE;
            }
            self.mstatus |= (old_prv as u64) << 11;
            self.prv = Priv::M;
            self.pc = vector(self.mtvec, cause, interrupt);
        }
        self.mmu.set_priv(self.prv, self.mstatus);
    }

    /// Return from an M-mode trap.
    pub(crate) fn mret(&mut self) {
        let mpp = Priv::from_bits(self.mstatus >> 11);
        let mpie = self.mstatus & MSTATUS_MPIE != 0;
        self.mstatus &= !(MSTATUS_MIE | MSTATUS_MPP);
        if mpie {
            self.mstatus |= MSTATUS_MIE;
        }
        self.mstatus |= MSTATUS_MPIE;
        if mpp != Priv::M {
            self.mstatus &= !MSTATUS_MPRV;
        }
        self.prv = mpp;
        self.pc = self.mepc;
        self.mmu.set_priv(self.prv, self.mstatus);
    }

    /// Return from an S-mode trap.
    pub(crate) fn sret(&mut self) {
        let spp = if self.mstatus & MSTATUS_SPP != 0 { Priv::S } else { Priv::U };
        let spie = self.mstatus & MSTATUS_SPIE != 0;
        self.mstatus &= !(MSTATUS_SIE | MSTATUS_SPP | MSTATUS_MPRV);
        if spie {
            self.mstatus |= MSTATUS_SIE;
        }
        self.mstatus |= MSTATUS_SPIE;
        self.prv = spp;
        self.pc = self.sepc;
        self.mmu.set_priv(self.prv, self.mstatus);
    }

    /// Drop every cached translation.
    pub fn tlb_flush(&mut self) {
        self.mmu.set_context(self.translation_context());
        self.mmu.flush();
        self.mmu.set_priv(self.prv, self.mstatus);
    }

    /// The TLB context `satp` selects: its ASID, or [`mmu::CTX_BARE`].
    pub(crate) fn translation_context(&self) -> u32 {
        if self.satp >> 60 == 0 {
            mmu::CTX_BARE
        } else {
            u32::try_from((self.satp >> 44) & 0xffff).unwrap_or(0)
        }
    }

    /// Drop the TLB's write entries, so that the next store to each page marks it dirty again.
    pub fn flush_write_entries(&mut self) {
        self.mmu.flush_writes();
    }

    /// Drop every decoded block.
    pub fn flush_blocks(&mut self) {
        self.blocks.clear();
    }

    /// Put the hart into the state OpenSBI leaves for an S-mode kernel.
    pub fn setup_for_supervisor(&mut self, entry: u64, a0: u64, a1: u64) {
        self.medeleg = (1 << cause::INSN_MISALIGNED)
            | (1 << cause::BREAKPOINT)
            | (1 << cause::ECALL_U)
            | (1 << cause::INSN_PAGE)
            | (1 << cause::LOAD_PAGE)
            | (1 << cause::STORE_PAGE)
            | (1 << cause::LOAD_MISALIGNED)
            | (1 << cause::STORE_MISALIGNED)
            | (1 << cause::INSN_ACCESS)
            | (1 << cause::LOAD_ACCESS)
            | (1 << cause::STORE_ACCESS)
            | (1 << cause::ILLEGAL);
        self.mideleg = S_IRQS;
        self.mcounteren = 0xffff_ffff;
        // OpenSBI also opens cycle, time and instret to U-mode (the vDSO reads `time`).
        self.scounteren = 7;
        self.menvcfg = MENVCFG_STCE;
        self.pmpcfg[0] = 0x1f; // NAPOT RWX over everything, as OpenSBI leaves the last entry
        self.pmpaddr[0] = (1 << 54) - 1;
        self.pmp_rebuild();
        self.mstatus = 0;
        self.prv = Priv::S;
        self.pc = entry;
        self.x[10] = a0;
        self.x[11] = a1;
        self.host_sbi = true;
        self.tlb_flush();
        self.recompute_mip();
    }

    /// The 32-bit (or 16-bit) encoding at `pc`, if it can be read without side effects.
    pub fn peek_insn(&self, ram: &crate::ram::GuestRam) -> Option<u32> {
        let pa = self.peek_translate(self.pc, ram)?;
        let mut b = [0u8; 2];
        ram.read(pa, &mut b)?;
        let lo = u16::from_le_bytes(b);
        if decode::insn_len(lo) == 2 {
            return Some(u32::from(lo));
        }
        let pa2 = self.peek_translate(self.pc + 2, ram)?;
        ram.read(pa2, &mut b)?;
        Some(u32::from(lo) | (u32::from(u16::from_le_bytes(b)) << 16))
    }

    /// Integer register `i` (0..32).
    pub fn reg(&self, i: usize) -> u64 {
        self.x.get(i).copied().unwrap_or(0)
    }

    /// Write integer register `i`; writes to x0 are ignored.
    pub fn set_reg(&mut self, i: usize, v: u64) {
        if (1..32).contains(&i) {
            self.x[i] = v;
        }
    }
}

fn vector(tvec: u64, cause: u64, interrupt: bool) -> u64 {
    let base = tvec & !3;
    if interrupt && tvec & 1 != 0 {
        base + 4 * cause
    } else {
        base
    }
}
