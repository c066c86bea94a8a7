//! The host SBI: what OpenSBI would provide to an S-mode kernel, implemented in the machine.
//!
//! ECALL from S-mode (when booted for Linux) lands here instead of in an M-mode handler. The
//! ECALL counts as one instruction; its effects happen at that instruction's count.
//!
//! Extensions: base, legacy (set_timer, console putchar/getchar, shutdown), TIME, IPI, RFENCE,
//! HSM (the single hart is always started), SRST (shutdown → [`SbiRequest::PowerOff`], reboot →
//! [`SbiRequest::Reset`]) and DBCN (debug console write). Timers are programmed through the
//! hart's Sstc comparator (`stimecmp`), which is how OpenSBI implements them on Sstc hardware.

use crate::cpu::csr::IRQ_SSI;
use crate::cpu::Cpu;
use crate::env::{Environment, Output};
use crate::ram::GuestRam;

const EXT_BASE: u64 = 0x10;
const EXT_TIME: u64 = 0x5449_4d45;
const EXT_IPI: u64 = 0x73_5049;
const EXT_RFENCE: u64 = 0x5246_4e43;
const EXT_HSM: u64 = 0x48_534d;
const EXT_SRST: u64 = 0x5352_5354;
const EXT_DBCN: u64 = 0x4442_434e;

const SBI_SUCCESS: i64 = 0;
const SBI_ERR_NOT_SUPPORTED: i64 = -2;
const SBI_ERR_INVALID_PARAM: i64 = -3;
const SBI_ERR_ALREADY_AVAILABLE: i64 = -6;

/// SBI implementation id reported by `sbi_get_impl_id` (not one of the registered ids).
pub const IMPL_ID: u64 = 0xd0_99e1;

/// What an SBI call asks of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SbiRequest {
    PowerOff(u32),
    Reset,
}

/// Handle the ECALL at `cpu.pc` (already counted) and step past it.
pub fn handle(cpu: &mut Cpu, ram: &mut GuestRam, env: &mut dyn Environment) -> Option<SbiRequest> {
    let icount = cpu.icount - 1; // the ECALL's own count
    let (eid, fid) = (cpu.reg(17), cpu.reg(16));
    let a = [cpu.reg(10), cpu.reg(11), cpu.reg(12)];
    cpu.pc += 4;
    let mut request = None;
    let ret = |cpu: &mut Cpu, err: i64, val: u64| {
        cpu.set_reg(10, err.cast_unsigned());
        cpu.set_reg(11, val);
    };
    match eid {
        // Legacy extensions return in a0 only.
        0x00 => {
            set_timer(cpu, a[0]);
            cpu.set_reg(10, 0);
        }
        0x01 => {
            env.output(icount, Output::Console(&[(a[0] & 0xff) as u8]));
            cpu.set_reg(10, 0);
        }
        0x02 => cpu.set_reg(10, u64::MAX), // no input through the SBI console
        0x03 | 0x04 => {
            // clear_ipi / send_ipi (to ourselves).
            if eid == 0x04 {
                cpu.raise_ssip();
            } else {
                cpu.clear_ssip();
            }
            cpu.set_reg(10, 0);
        }
        0x05..=0x07 => {
            cpu.tlb_flush();
            cpu.set_reg(10, 0);
        }
        0x08 => request = Some(SbiRequest::PowerOff(0)),
        EXT_BASE => match fid {
            0 => ret(cpu, SBI_SUCCESS, 0x0100_0000), // spec v1.0
            1 => ret(cpu, SBI_SUCCESS, IMPL_ID),
            2 => ret(cpu, SBI_SUCCESS, 1),
            3 => {
                let supported = matches!(
                    a[0],
                    EXT_BASE | EXT_TIME | EXT_IPI | EXT_RFENCE | EXT_HSM | EXT_SRST | EXT_DBCN | 0x00..=0x08
                );
                ret(cpu, SBI_SUCCESS, u64::from(supported));
            }
            4..=6 => ret(cpu, SBI_SUCCESS, 0),
            _ => ret(cpu, SBI_ERR_NOT_SUPPORTED, 0),
        },
        EXT_TIME if fid == 0 => {
            set_timer(cpu, a[0]);
            ret(cpu, SBI_SUCCESS, 0);
        }
        EXT_IPI if fid == 0 => {
            if targets_hart0(a[0], a[1]) {
                cpu.raise_ssip();
            }
            ret(cpu, SBI_SUCCESS, 0);
        }
        EXT_RFENCE if fid <= 6 => {
            if targets_hart0(a[0], a[1]) {
                cpu.tlb_flush();
            }
            ret(cpu, SBI_SUCCESS, 0);
        }
        EXT_HSM => match fid {
            0 if a[0] == 0 => ret(cpu, SBI_ERR_ALREADY_AVAILABLE, 0),
            0 | 2 if a[0] != 0 => ret(cpu, SBI_ERR_INVALID_PARAM, 0),
            2 => ret(cpu, SBI_SUCCESS, 0), // started
            _ => ret(cpu, SBI_ERR_NOT_SUPPORTED, 0),
        },
        EXT_SRST if fid == 0 => match a[0] {
            0 => request = Some(SbiRequest::PowerOff(if a[1] == 0 { 0 } else { 1 })),
            1 | 2 => request = Some(SbiRequest::Reset),
            _ => ret(cpu, SBI_ERR_INVALID_PARAM, 0),
        },
        EXT_DBCN => match fid {
            0 => {
                // write(num_bytes, base_lo, base_hi): physical address.
                let len = usize::try_from(a[0].min(4096)).unwrap_or(0);
                let mut buf = vec![0u8; len];
                if ram.read(a[1], &mut buf).is_some() {
                    env.output(icount, Output::Console(&buf));
                    ret(cpu, SBI_SUCCESS, len as u64);
                } else {
                    ret(cpu, SBI_ERR_INVALID_PARAM, 0);
                }
            }
            1 => ret(cpu, SBI_SUCCESS, 0), // read: nothing available
            2 => {
                env.output(icount, Output::Console(&[(a[0] & 0xff) as u8]));
                ret(cpu, SBI_SUCCESS, 0);
            }
            _ => ret(cpu, SBI_ERR_NOT_SUPPORTED, 0),
        },
        _ => ret(cpu, SBI_ERR_NOT_SUPPORTED, 0),
    }
    request
}

/// Whether (hart_mask, hart_mask_base) includes hart 0 (base `-1` means all harts).
fn targets_hart0(mask: u64, base: u64) -> bool {
    base == u64::MAX || (base == 0 && mask & 1 != 0)
}

fn set_timer(cpu: &mut Cpu, when: u64) {
    cpu.set_stimecmp(when);
}

impl Cpu {
    fn raise_ssip(&mut self) {
        self.mip_sw |= IRQ_SSI;
        self.recompute_mip();
    }
    fn clear_ssip(&mut self) {
        self.mip_sw &= !IRQ_SSI;
        self.recompute_mip();
    }
    fn set_stimecmp(&mut self, when: u64) {
        self.stimecmp = when;
        self.recompute_mip();
    }
}
