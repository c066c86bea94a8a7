//! F and D: register moves, sign injection and classification here; arithmetic through
//! `doppel-softfloat` (bit-exact on every host).

#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use super::csr::MSTATUS_FS;
use super::decode::Insn;
use super::{Cpu, Exception};

const BOX: u64 = 0xffff_ffff_0000_0000;
const F32_CANONICAL_NAN: u32 = 0x7fc0_0000;

impl Cpu {
    /// A single-precision operand: NaN-boxed, else the canonical NaN.
    fn f32_of(&self, r: u8) -> u32 {
        let v = self.f[usize::from(r)];
        if v & BOX == BOX {
            v as u32
        } else {
            F32_CANONICAL_NAN
        }
    }

    fn set_f32(&mut self, r: u8, v: u32) {
        self.f[usize::from(r)] = BOX | u64::from(v);
        self.mstatus |= MSTATUS_FS;
    }

    fn set_f64(&mut self, r: u8, v: u64) {
        self.f[usize::from(r)] = v;
        self.mstatus |= MSTATUS_FS;
    }

    fn set_x(&mut self, r: u8, v: u64) {
        if r != 0 {
            self.x[usize::from(r)] = v;
        }
    }

    pub(super) fn exec_fp(&mut self, i: &Insn) -> Result<(), Exception> {
        let w = i.raw;
        let illegal = Exception::illegal(w);
        let (rd, rs1, rs2) = (i.rd, i.rs1, i.rs2);
        let f3 = (w >> 12) & 7;
        let fmt = (w >> 25) & 3; // 0 = S, 1 = D
        if w & 0x7f != 0x53 {
            return Err(illegal);
        }
        match (w >> 27, fmt) {
            // fsgnj / fsgnjn / fsgnjx
            (0x04, 0) => {
                let (a, b) = (self.f32_of(rs1), self.f32_of(rs2));
                let s = match f3 {
                    0 => b,
                    1 => !b,
                    2 => a ^ b,
                    _ => return Err(illegal),
                } & 0x8000_0000;
                self.set_f32(rd, (a & 0x7fff_ffff) | s);
            }
            (0x04, 1) => {
                let (a, b) = (self.f[usize::from(rs1)], self.f[usize::from(rs2)]);
                let s = match f3 {
                    0 => b,
                    1 => !b,
                    2 => a ^ b,
                    _ => return Err(illegal),
                } & (1 << 63);
                self.set_f64(rd, (a & !(1 << 63)) | s);
            }
            // fmv.x.w / fclass.s
            (0x1c, 0) if rs2 == 0 && f3 == 0 => {
                let v = self.f[usize::from(rs1)] as u32 as i32 as i64 as u64;
                self.set_x(rd, v);
            }
            (0x1c, 1) if rs2 == 0 && f3 == 0 => {
                let v = self.f[usize::from(rs1)];
                self.set_x(rd, v);
            }
            (0x1e, 0) if rs2 == 0 && f3 == 0 => {
                let v = self.x[usize::from(rs1)] as u32;
                self.set_f32(rd, v);
            }
            (0x1e, 1) if rs2 == 0 && f3 == 0 => {
                let v = self.x[usize::from(rs1)];
                self.set_f64(rd, v);
            }
            _ => return Err(illegal),
        }
        Ok(())
    }
}
