//! The reference: Berkeley SoftFloat 3 built with its RISC-V specialisation (`softfloat-sys`
//! with the `riscv` feature; the code the Spike ISA simulator uses), driven through one `Op`
//! enum so the differential tests and the fuzz target can run any operation on both sides.
//!
//! Shared by `tests/oracle.rs` and `fuzz/fuzz_targets/ops.rs` (included with `#[path]`).

// FFI calls into the C library; SoftFloat's rounding mode and flag globals are thread-local.
#![allow(unsafe_code)]
#![allow(dead_code)]
// Bit-pattern plumbing between integer widths is the point of this module.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use doppel_softfloat::{f32 as s, f64 as d, Flags, Rounding};
use softfloat_sys as sf;

/// Every operation of the API; the `D`-suffixed ones are binary64.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Sqrt,
    Fma,
    Min,
    Max,
    Eq,
    Lt,
    Le,
    Classify,
    ToI32,
    ToU32,
    ToI64,
    ToU64,
    FromI32,
    FromU32,
    FromI64,
    FromU64,
    /// `f32::to_f64` / `f64::to_f32`.
    Convert,
}

pub const OPS: [Op; 21] = [
    Op::Add,
    Op::Sub,
    Op::Mul,
    Op::Div,
    Op::Sqrt,
    Op::Fma,
    Op::Min,
    Op::Max,
    Op::Eq,
    Op::Lt,
    Op::Le,
    Op::Classify,
    Op::ToI32,
    Op::ToU32,
    Op::ToI64,
    Op::ToU64,
    Op::FromI32,
    Op::FromU32,
    Op::FromI64,
    Op::FromU64,
    Op::Convert,
];

impl Op {
    /// Whether the result depends on the rounding mode.
    pub fn rounds(self) -> bool {
        !matches!(
            self,
            Op::Min | Op::Max | Op::Eq | Op::Lt | Op::Le | Op::Classify
        )
    }

    /// Whether the operands are integers (in `a`) rather than floats.
    pub fn takes_int(self) -> bool {
        matches!(self, Op::FromI32 | Op::FromU32 | Op::FromI64 | Op::FromU64)
    }
}

/// Results as `u64`: floats as bits, booleans as 0/1, integers sign- or zero-extended.
pub type Outcome = (u64, Flags);

fn sext32(v: i32) -> u64 {
    i64::from(v) as u64
}

/// Our binary32 implementation. Integer operands are taken from `a` (truncated as the op needs).
pub fn ours32(op: Op, a: u32, b: u32, c: u32, ai: u64, rm: Rounding) -> Outcome {
    let mut fl = Flags::default();
    let r = match op {
        Op::Add => u64::from(s::add(a, b, rm, &mut fl)),
        Op::Sub => u64::from(s::sub(a, b, rm, &mut fl)),
        Op::Mul => u64::from(s::mul(a, b, rm, &mut fl)),
        Op::Div => u64::from(s::div(a, b, rm, &mut fl)),
        Op::Sqrt => u64::from(s::sqrt(a, rm, &mut fl)),
        Op::Fma => u64::from(s::fma(a, b, c, rm, &mut fl)),
        Op::Min => u64::from(s::min(a, b, &mut fl)),
        Op::Max => u64::from(s::max(a, b, &mut fl)),
        Op::Eq => u64::from(s::eq(a, b, &mut fl)),
        Op::Lt => u64::from(s::lt(a, b, &mut fl)),
        Op::Le => u64::from(s::le(a, b, &mut fl)),
        Op::Classify => u64::from(s::classify(a)),
        Op::ToI32 => sext32(s::to_i32(a, rm, &mut fl)),
        Op::ToU32 => u64::from(s::to_u32(a, rm, &mut fl)),
        Op::ToI64 => s::to_i64(a, rm, &mut fl) as u64,
        Op::ToU64 => s::to_u64(a, rm, &mut fl),
        Op::FromI32 => u64::from(s::from_i32(ai as i32, rm, &mut fl)),
        Op::FromU32 => u64::from(s::from_u32(ai as u32, rm, &mut fl)),
        Op::FromI64 => u64::from(s::from_i64(ai as i64, rm, &mut fl)),
        Op::FromU64 => u64::from(s::from_u64(ai, rm, &mut fl)),
        Op::Convert => s::to_f64(a, &mut fl),
    };
    (r, fl)
}

/// Our binary64 implementation.
pub fn ours64(op: Op, a: u64, b: u64, c: u64, rm: Rounding) -> Outcome {
    let mut fl = Flags::default();
    let r = match op {
        Op::Add => d::add(a, b, rm, &mut fl),
        Op::Sub => d::sub(a, b, rm, &mut fl),
        Op::Mul => d::mul(a, b, rm, &mut fl),
        Op::Div => d::div(a, b, rm, &mut fl),
        Op::Sqrt => d::sqrt(a, rm, &mut fl),
        Op::Fma => d::fma(a, b, c, rm, &mut fl),
        Op::Min => d::min(a, b, &mut fl),
        Op::Max => d::max(a, b, &mut fl),
        Op::Eq => u64::from(d::eq(a, b, &mut fl)),
        Op::Lt => u64::from(d::lt(a, b, &mut fl)),
        Op::Le => u64::from(d::le(a, b, &mut fl)),
        Op::Classify => u64::from(d::classify(a)),
        Op::ToI32 => sext32(d::to_i32(a, rm, &mut fl)),
        Op::ToU32 => u64::from(d::to_u32(a, rm, &mut fl)),
        Op::ToI64 => d::to_i64(a, rm, &mut fl) as u64,
        Op::ToU64 => d::to_u64(a, rm, &mut fl),
        Op::FromI32 => d::from_i32(a as i32, rm, &mut fl),
        Op::FromU32 => d::from_u32(a as u32, rm, &mut fl),
        Op::FromI64 => d::from_i64(a as i64, rm, &mut fl),
        Op::FromU64 => d::from_u64(a, rm, &mut fl),
        Op::Convert => u64::from(d::to_f32(a, rm, &mut fl)),
    };
    (r, fl)
}

/// Runs `f` with SoftFloat's rounding mode set and its flags cleared, returning its flags.
fn run<R>(rm: Rounding, f: impl FnOnce() -> R) -> (R, Flags) {
    // SAFETY: the helpers only write SoftFloat's thread-local rounding mode and flags; the
    // RISC-V `rm` encodings 0..=4 are SoftFloat's `softfloat_round_*` values.
    unsafe {
        sf::softfloat_roundingMode_write_helper(rm.bits());
        sf::softfloat_exceptionFlags_write_helper(0);
    }
    let r = f();
    // SAFETY: reads the thread-local flags; SoftFloat's flag bits are the fflags layout.
    let fl = unsafe { sf::softfloat_exceptionFlags_read_helper() };
    (r, Flags(fl))
}

fn f32t(v: u32) -> sf::float32_t {
    sf::float32_t { v }
}

fn f64t(v: u64) -> sf::float64_t {
    sf::float64_t { v }
}

fn is_nan32(a: u32) -> bool {
    a & 0x7fff_ffff > 0x7f80_0000
}

fn is_nan64(a: u64) -> bool {
    a & !(1 << 63) > 0x7ff0_0000_0000_0000
}

/// The `fclass` mask computed from the host's classification (independent of our code).
fn class_mask(neg: bool, cat: std::num::FpCategory, snan: bool) -> u64 {
    use std::num::FpCategory as C;
    let bit = match (cat, neg) {
        (C::Infinite, true) => 0,
        (C::Normal, true) => 1,
        (C::Subnormal, true) => 2,
        (C::Zero, true) => 3,
        (C::Zero, false) => 4,
        (C::Subnormal, false) => 5,
        (C::Normal, false) => 6,
        (C::Infinite, false) => 7,
        (C::Nan, _) => {
            if snan {
                8
            } else {
                9
            }
        }
    };
    1 << bit
}

/// The reference binary32 result.
pub fn reference32(op: Op, a: u32, b: u32, c: u32, ai: u64, rm: Rounding) -> Outcome {
    let (x, y, z) = (f32t(a), f32t(b), f32t(c));
    let rmb = rm.bits();
    run(rm, || {
        // SAFETY: pure SoftFloat functions on plain-old-data arguments, no pointers.
        unsafe {
            match op {
                Op::Add => u64::from(sf::f32_add(x, y).v),
                Op::Sub => u64::from(sf::f32_sub(x, y).v),
                Op::Mul => u64::from(sf::f32_mul(x, y).v),
                Op::Div => u64::from(sf::f32_div(x, y).v),
                Op::Sqrt => u64::from(sf::f32_sqrt(x).v),
                Op::Fma => u64::from(sf::f32_mulAdd(x, y, z).v),
                // Spike's fmin/fmax, built from SoftFloat's quiet comparisons.
                Op::Min => {
                    let less =
                        sf::f32_lt_quiet(x, y) || (sf::f32_eq(x, y) && x.v & 0x8000_0000 != 0);
                    if is_nan32(a) && is_nan32(b) {
                        0x7fc0_0000
                    } else if less || is_nan32(b) {
                        u64::from(x.v)
                    } else {
                        u64::from(y.v)
                    }
                }
                Op::Max => {
                    let greater =
                        sf::f32_lt_quiet(y, x) || (sf::f32_eq(y, x) && y.v & 0x8000_0000 != 0);
                    if is_nan32(a) && is_nan32(b) {
                        0x7fc0_0000
                    } else if greater || is_nan32(b) {
                        u64::from(x.v)
                    } else {
                        u64::from(y.v)
                    }
                }
                Op::Eq => u64::from(sf::f32_eq(x, y)),
                Op::Lt => u64::from(sf::f32_lt(x, y)),
                Op::Le => u64::from(sf::f32_le(x, y)),
                Op::Classify => {
                    let h = f32::from_bits(a);
                    class_mask(
                        h.is_sign_negative(),
                        h.classify(),
                        sf::f32_isSignalingNaN(x),
                    )
                }
                Op::ToI32 => sext32(sf::f32_to_i32(x, rmb, true) as i32),
                Op::ToU32 => u64::from(sf::f32_to_ui32(x, rmb, true) as u32),
                Op::ToI64 => sf::f32_to_i64(x, rmb, true) as u64,
                Op::ToU64 => sf::f32_to_ui64(x, rmb, true),
                Op::FromI32 => u64::from(sf::i32_to_f32(ai as i32).v),
                Op::FromU32 => u64::from(sf::ui32_to_f32(ai as u32).v),
                Op::FromI64 => u64::from(sf::i64_to_f32(ai as i64).v),
                Op::FromU64 => u64::from(sf::ui64_to_f32(ai).v),
                Op::Convert => sf::f32_to_f64(x).v,
            }
        }
    })
}

/// The reference binary64 result.
pub fn reference64(op: Op, a: u64, b: u64, c: u64, rm: Rounding) -> Outcome {
    let (x, y, z) = (f64t(a), f64t(b), f64t(c));
    let rmb = rm.bits();
    run(rm, || {
        // SAFETY: pure SoftFloat functions on plain-old-data arguments, no pointers.
        unsafe {
            match op {
                Op::Add => sf::f64_add(x, y).v,
                Op::Sub => sf::f64_sub(x, y).v,
                Op::Mul => sf::f64_mul(x, y).v,
                Op::Div => sf::f64_div(x, y).v,
                Op::Sqrt => sf::f64_sqrt(x).v,
                Op::Fma => sf::f64_mulAdd(x, y, z).v,
                // Spike's fmin/fmax, built from SoftFloat's quiet comparisons.
                Op::Min => {
                    let less = sf::f64_lt_quiet(x, y) || (sf::f64_eq(x, y) && x.v & (1 << 63) != 0);
                    if is_nan64(a) && is_nan64(b) {
                        0x7ff8_0000_0000_0000
                    } else if less || is_nan64(b) {
                        x.v
                    } else {
                        y.v
                    }
                }
                Op::Max => {
                    let greater =
                        sf::f64_lt_quiet(y, x) || (sf::f64_eq(y, x) && y.v & (1 << 63) != 0);
                    if is_nan64(a) && is_nan64(b) {
                        0x7ff8_0000_0000_0000
                    } else if greater || is_nan64(b) {
                        x.v
                    } else {
                        y.v
                    }
                }
                Op::Eq => u64::from(sf::f64_eq(x, y)),
                Op::Lt => u64::from(sf::f64_lt(x, y)),
                Op::Le => u64::from(sf::f64_le(x, y)),
                Op::Classify => {
                    let h = f64::from_bits(a);
                    class_mask(
                        h.is_sign_negative(),
                        h.classify(),
                        sf::f64_isSignalingNaN(x),
                    )
                }
                Op::ToI32 => sext32(sf::f64_to_i32(x, rmb, true) as i32),
                Op::ToU32 => u64::from(sf::f64_to_ui32(x, rmb, true) as u32),
                Op::ToI64 => sf::f64_to_i64(x, rmb, true) as u64,
                Op::ToU64 => sf::f64_to_ui64(x, rmb, true),
                Op::FromI32 => sf::i32_to_f64(a as i32).v,
                Op::FromU32 => sf::ui32_to_f64(a as u32).v,
                Op::FromI64 => sf::i64_to_f64(a as i64).v,
                Op::FromU64 => sf::ui64_to_f64(a).v,
                Op::Convert => u64::from(sf::f64_to_f32(x).v),
            }
        }
    })
}
