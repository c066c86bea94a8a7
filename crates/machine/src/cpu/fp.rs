//! F and D. Register moves, sign injection and classification are bit operations; arithmetic,
//! comparisons and conversions go through `doppel-softfloat`, so results and `fflags` are
//! bit-exact on every host. Single-precision values live NaN-boxed in the 64-bit registers; a
//! single operand that is not properly boxed reads as the canonical NaN.

// Register fields and integer conversions truncate and reinterpret by definition.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_possible_wrap)]

use doppel_softfloat::{self as sf, Flags, Rounding, F32_CANONICAL_NAN};

use super::csr::MSTATUS_FS;
use super::decode::Insn;
use super::{Cpu, Exception};

const BOX: u64 = 0xffff_ffff_0000_0000;
const SIGN32: u32 = 0x8000_0000;
const SIGN64: u64 = 1 << 63;

impl Cpu {
    /// A single-precision operand: NaN-boxed, else the canonical NaN.
    fn f32_of(&self, r: u8) -> u32 {
        let v = self.f[usize::from(r & 31)];
        if v & BOX == BOX {
            v as u32
        } else {
            F32_CANONICAL_NAN
        }
    }

    fn f64_of(&self, r: u8) -> u64 {
        self.f[usize::from(r & 31)]
    }

    fn set_f32(&mut self, r: u8, v: u32) {
        self.f[usize::from(r & 31)] = BOX | u64::from(v);
        self.mstatus |= MSTATUS_FS;
    }

    fn set_f64(&mut self, r: u8, v: u64) {
        self.f[usize::from(r & 31)] = v;
        self.mstatus |= MSTATUS_FS;
    }

    fn set_x(&mut self, r: u8, v: u64) {
        if r != 0 && r < 32 {
            self.x[usize::from(r)] = v;
        }
    }

    fn accrue(&mut self, fl: Flags) {
        if !fl.is_empty() {
            self.fflags |= fl.bits();
            self.mstatus |= MSTATUS_FS;
        }
    }

    /// The rounding mode of an instruction's `rm` field (7 = dynamic, from `frm`).
    fn rounding(&self, rm: u32, raw: u32) -> Result<Rounding, Exception> {
        let rm = if rm == 7 { u32::from(self.frm) } else { rm };
        Rounding::from_bits(rm as u8).ok_or(Exception::illegal(raw))
    }

    pub(super) fn exec_fp(&mut self, i: &Insn) -> Result<(), Exception> {
        let w = i.raw;
        let illegal = Exception::illegal(w);
        let (rd, rs1, rs2) = (i.rd, i.rs1, i.rs2);
        let rm = (w >> 12) & 7;
        let fmt = (w >> 25) & 3; // 0 = S, 1 = D
        if fmt > 1 {
            return Err(illegal);
        }
        let double = fmt == 1;
        let mut fl = Flags::NONE;
        match w & 0x7f {
            0x43 | 0x47 | 0x4b | 0x4f => {
                let r = self.rounding(rm, w)?;
                let rs3 = (w >> 27) as u8;
                let (neg_prod, neg_add) = match w & 0x7f {
                    0x43 => (false, false), // fmadd
                    0x47 => (false, true),  // fmsub
                    0x4b => (true, false),  // fnmsub
                    _ => (true, true),      // fnmadd
                };
                if double {
                    let a = self.f64_of(rs1) ^ if neg_prod { SIGN64 } else { 0 };
                    let c = self.f64_of(rs3) ^ if neg_add { SIGN64 } else { 0 };
                    let v = sf::f64::fma(a, self.f64_of(rs2), c, r, &mut fl);
                    self.set_f64(rd, v);
                } else {
                    let a = self.f32_of(rs1) ^ if neg_prod { SIGN32 } else { 0 };
                    let c = self.f32_of(rs3) ^ if neg_add { SIGN32 } else { 0 };
                    let v = sf::f32::fma(a, self.f32_of(rs2), c, r, &mut fl);
                    self.set_f32(rd, v);
                }
            }
            0x53 => self.op_fp(w, rd, rs1, rs2, rm, double, &mut fl)?,
            _ => return Err(illegal),
        }
        self.accrue(fl);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn op_fp(&mut self, w: u32, rd: u8, rs1: u8, rs2: u8, rm: u32, double: bool, fl: &mut Flags) -> Result<(), Exception> {
        let illegal = Exception::illegal(w);
        let funct5 = w >> 27;
        match funct5 {
            0x00..=0x03 => {
                let r = self.rounding(rm, w)?;
                if double {
                    let (a, b) = (self.f64_of(rs1), self.f64_of(rs2));
                    let v = match funct5 {
                        0 => sf::f64::add(a, b, r, fl),
                        1 => sf::f64::sub(a, b, r, fl),
                        2 => sf::f64::mul(a, b, r, fl),
                        _ => sf::f64::div(a, b, r, fl),
                    };
                    self.set_f64(rd, v);
                } else {
                    let (a, b) = (self.f32_of(rs1), self.f32_of(rs2));
                    let v = match funct5 {
                        0 => sf::f32::add(a, b, r, fl),
                        1 => sf::f32::sub(a, b, r, fl),
                        2 => sf::f32::mul(a, b, r, fl),
                        _ => sf::f32::div(a, b, r, fl),
                    };
                    self.set_f32(rd, v);
                }
            }
            0x0b if rs2 == 0 => {
                let r = self.rounding(rm, w)?;
                if double {
                    let v = sf::f64::sqrt(self.f64_of(rs1), r, fl);
                    self.set_f64(rd, v);
                } else {
                    let v = sf::f32::sqrt(self.f32_of(rs1), r, fl);
                    self.set_f32(rd, v);
                }
            }
            0x04 => {
                if double {
                    let (a, b) = (self.f64_of(rs1), self.f64_of(rs2));
                    let s = match rm {
                        0 => b,
                        1 => !b,
                        2 => a ^ b,
                        _ => return Err(illegal),
                    } & SIGN64;
                    self.set_f64(rd, (a & !SIGN64) | s);
                } else {
                    let (a, b) = (self.f32_of(rs1), self.f32_of(rs2));
                    let s = match rm {
                        0 => b,
                        1 => !b,
                        2 => a ^ b,
                        _ => return Err(illegal),
                    } & SIGN32;
                    self.set_f32(rd, (a & !SIGN32) | s);
                }
            }
            0x05 => {
                if rm > 1 {
                    return Err(illegal);
                }
                if double {
                    let (a, b) = (self.f64_of(rs1), self.f64_of(rs2));
                    let v = if rm == 0 { sf::f64::min(a, b, fl) } else { sf::f64::max(a, b, fl) };
                    self.set_f64(rd, v);
                } else {
                    let (a, b) = (self.f32_of(rs1), self.f32_of(rs2));
                    let v = if rm == 0 { sf::f32::min(a, b, fl) } else { sf::f32::max(a, b, fl) };
                    self.set_f32(rd, v);
                }
            }
            0x08 => {
                // fcvt.s.d (fmt S, rs2 = 1) / fcvt.d.s (fmt D, rs2 = 0)
                match (double, rs2) {
                    (false, 1) => {
                        let r = self.rounding(rm, w)?;
                        let v = sf::f64::to_f32(self.f64_of(rs1), r, fl);
                        self.set_f32(rd, v);
                    }
                    (true, 0) => {
                        self.rounding(rm, w)?;
                        let v = sf::f32::to_f64(self.f32_of(rs1), fl);
                        self.set_f64(rd, v);
                    }
                    _ => return Err(illegal),
                }
            }
            0x14 => {
                let v = if double {
                    let (a, b) = (self.f64_of(rs1), self.f64_of(rs2));
                    match rm {
                        0 => sf::f64::le(a, b, fl),
                        1 => sf::f64::lt(a, b, fl),
                        2 => sf::f64::eq(a, b, fl),
                        _ => return Err(illegal),
                    }
                } else {
                    let (a, b) = (self.f32_of(rs1), self.f32_of(rs2));
                    match rm {
                        0 => sf::f32::le(a, b, fl),
                        1 => sf::f32::lt(a, b, fl),
                        2 => sf::f32::eq(a, b, fl),
                        _ => return Err(illegal),
                    }
                };
                self.set_x(rd, u64::from(v));
            }
            0x18 => {
                let r = self.rounding(rm, w)?;
                let v = if double {
                    let a = self.f64_of(rs1);
                    match rs2 {
                        0 => i64::from(sf::f64::to_i32(a, r, fl)) as u64,
                        1 => sf::f64::to_u32(a, r, fl) as i32 as i64 as u64,
                        2 => sf::f64::to_i64(a, r, fl) as u64,
                        3 => sf::f64::to_u64(a, r, fl),
                        _ => return Err(illegal),
                    }
                } else {
                    let a = self.f32_of(rs1);
                    match rs2 {
                        0 => i64::from(sf::f32::to_i32(a, r, fl)) as u64,
                        1 => sf::f32::to_u32(a, r, fl) as i32 as i64 as u64,
                        2 => sf::f32::to_i64(a, r, fl) as u64,
                        3 => sf::f32::to_u64(a, r, fl),
                        _ => return Err(illegal),
                    }
                };
                self.set_x(rd, v);
            }
            0x1a => {
                let r = self.rounding(rm, w)?;
                let x = self.x[usize::from(rs1 & 31)];
                if double {
                    let v = match rs2 {
                        0 => sf::f64::from_i32(x as i32, r, fl),
                        1 => sf::f64::from_u32(x as u32, r, fl),
                        2 => sf::f64::from_i64(x as i64, r, fl),
                        3 => sf::f64::from_u64(x, r, fl),
                        _ => return Err(illegal),
                    };
                    self.set_f64(rd, v);
                } else {
                    let v = match rs2 {
                        0 => sf::f32::from_i32(x as i32, r, fl),
                        1 => sf::f32::from_u32(x as u32, r, fl),
                        2 => sf::f32::from_i64(x as i64, r, fl),
                        3 => sf::f32::from_u64(x, r, fl),
                        _ => return Err(illegal),
                    };
                    self.set_f32(rd, v);
                }
            }
            0x1c if rs2 == 0 => {
                let v = match (rm, double) {
                    (0, false) => self.f64_of(rs1) as u32 as i32 as i64 as u64, // fmv.x.w
                    (0, true) => self.f64_of(rs1),                              // fmv.x.d
                    (1, false) => u64::from(sf::f32::classify(self.f32_of(rs1))),
                    (1, true) => u64::from(sf::f64::classify(self.f64_of(rs1))),
                    _ => return Err(illegal),
                };
                self.set_x(rd, v);
            }
            0x1e if rs2 == 0 && rm == 0 => {
                let x = self.x[usize::from(rs1 & 31)];
                if double {
                    self.set_f64(rd, x);
                } else {
                    self.set_f32(rd, x as u32);
                }
            }
            _ => return Err(illegal),
        }
        Ok(())
    }
}
