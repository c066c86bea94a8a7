//! Snapshot state of the hart. Caches (TLB, decoded blocks) are not state: they start empty.

use serde::{Deserialize, Serialize};

use super::{Cpu, Priv};
use crate::persist::Persist;

/// Everything architectural about the hart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuState {
    pub x: Vec<u64>,
    pub f: Vec<u64>,
    pub pc: u64,
    pub prv: Priv,
    pub icount: u64,
    pub ipt: u64,
    pub warp: u64,
    pub wfi: bool,
    pub host_sbi: bool,
    pub csrs: Vec<u64>,
    pub pmpcfg: Vec<u64>,
    pub pmpaddr: Vec<u64>,
    pub fflags: u8,
    pub frm: u8,
    pub reservation: Option<u64>,
}

/// Why a saved hart state was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CpuStateError {
    #[error("CPU state field {field} has {found} entries, expected {expected}")]
    Length { field: &'static str, found: usize, expected: usize },
    #[error("CPU state has instructions_per_tick 0")]
    ZeroIpt,
}

impl Persist for Cpu {
    type State = CpuState;
    type ConstructorArgs = ();
    type Error = CpuStateError;

    fn save(&self) -> CpuState {
        CpuState {
            x: self.x[..32].to_vec(),
            f: self.f.to_vec(),
            pc: self.pc,
            prv: self.prv,
            icount: self.icount,
            ipt: self.ipt,
            warp: self.warp,
            wfi: self.wfi,
            host_sbi: self.host_sbi,
            csrs: vec![
                self.mstatus,
                self.medeleg,
                self.mideleg,
                self.mie,
                self.mip_sw,
                self.ext_irq,
                self.mtvec,
                self.stvec,
                self.mepc,
                self.sepc,
                self.mcause,
                self.scause,
                self.mtval,
                self.stval,
                self.mscratch,
                self.sscratch,
                self.satp,
                self.mcounteren,
                self.scounteren,
                self.menvcfg,
                self.senvcfg,
                self.stimecmp,
                self.mcycle_offset,
                self.minstret_offset,
            ],
            pmpcfg: self.pmpcfg.to_vec(),
            pmpaddr: self.pmpaddr.to_vec(),
            fflags: self.fflags,
            frm: self.frm,
            reservation: self.reservation,
        }
    }

    fn restore(_args: (), s: &CpuState) -> Result<Cpu, CpuStateError> {
        let check = |field: &'static str, v: &Vec<u64>, expected: usize| {
            if v.len() == expected {
                Ok(())
            } else {
                Err(CpuStateError::Length { field, found: v.len(), expected })
            }
        };
        check("x", &s.x, 32)?;
        check("f", &s.f, 32)?;
        check("csrs", &s.csrs, 24)?;
        check("pmpcfg", &s.pmpcfg, 8)?;
        check("pmpaddr", &s.pmpaddr, 64)?;
        if s.ipt == 0 {
            return Err(CpuStateError::ZeroIpt);
        }
        let mut c = Cpu::new(s.pc, s.ipt);
        c.x[..32].copy_from_slice(&s.x);
        c.x[0] = 0;
        c.f.copy_from_slice(&s.f);
        c.prv = s.prv;
        c.icount = s.icount;
        c.warp = s.warp;
        c.wfi = s.wfi;
        c.host_sbi = s.host_sbi;
        let r = &s.csrs;
        c.mstatus = r[0];
        c.medeleg = r[1];
        c.mideleg = r[2];
        c.mie = r[3];
        c.mip_sw = r[4];
        c.ext_irq = r[5];
        c.mtvec = r[6];
        c.stvec = r[7];
        c.mepc = r[8];
        c.sepc = r[9];
        c.mcause = r[10];
        c.scause = r[11];
        c.mtval = r[12];
        c.stval = r[13];
        c.mscratch = r[14];
        c.sscratch = r[15];
        c.satp = r[16];
        c.mcounteren = r[17];
        c.scounteren = r[18];
        c.menvcfg = r[19];
        c.senvcfg = r[20];
        c.stimecmp = r[21];
        c.mcycle_offset = r[22];
        c.minstret_offset = r[23];
        c.pmpcfg.copy_from_slice(&s.pmpcfg);
        c.pmpaddr.copy_from_slice(&s.pmpaddr);
        c.pmp_rebuild();
        c.fflags = s.fflags & 0x1f;
        c.frm = s.frm & 7;
        c.reservation = s.reservation;
        c.tlb_flush();
        c.recompute_mip();
        Ok(c)
    }
}
