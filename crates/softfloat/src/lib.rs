//! IEEE 754 binary32/binary64 arithmetic in integer software, with RISC-V semantics.
//!
//! The deterministic RISC-V machine computes every F and D instruction through this crate, so
//! that a VM recorded on one host replays bit-exactly on another: nothing here touches the host
//! FPU (no `f32`/`f64` arithmetic in the implementation, only integer operations on bit
//! patterns), there is no heap allocation and no global state.
//!
//! # API
//!
//! [`f32`](mod@f32) and [`f64`](mod@f64) hold the same set of functions; operands and results are raw bit patterns
//! (`u32` / `u64`), the rounding mode is a [`Rounding`] (the CPU resolves `rm = DYN` from `frm`
//! before calling), and exception flags are OR-ed into a [`Flags`] (the `fflags` layout, so the
//! CPU ORs `fl.bits()` into `fflags`). Flags are only ever set, never cleared.
//!
//! ```
//! use doppel_softfloat::{f32, f64, Flags, Rounding};
//!
//! let mut fflags = Flags::default();
//! let (one, three) = (0x3f80_0000, 0x4040_0000); // 1.0f32, 3.0f32
//! assert_eq!(f32::div(one, three, Rounding::Rne, &mut fflags), 0x3eaa_aaab);
//! assert_eq!(f32::div(one, three, Rounding::Rtz, &mut fflags), 0x3eaa_aaaa);
//! assert_eq!(fflags, Flags::NX);
//!
//! // inf - inf: invalid, and the result is the canonical NaN whatever the inputs' payloads.
//! let inf = 0x7ff0_0000_0000_0000;
//! assert_eq!(f64::sub(inf, inf, Rounding::Rne, &mut fflags), doppel_softfloat::F64_CANONICAL_NAN);
//! assert_eq!(fflags.bits(), 0x11); // NV | NX, accrued
//! ```
//!
//! # Representation
//!
//! All the arithmetic lives in one format-generic core (`soft.rs`), monomorphised for the two
//! formats; `f32` bits are widened to `u64` on the way in. A finite non-zero operand is unpacked
//! to a sign, a biased exponent and a 63-bit significand whose leading one sits at bit 62, so the
//! value is `sig / 2^62 * 2^(exp - bias)`; subnormals are normalised on unpacking (their exponent
//! goes to zero or below), so the operations never special-case them. Results are exact or carry
//! a *sticky* bit: bits shifted out below the working precision are OR-ed into bit 0. The
//! working precision is wide enough (at least 10 bits below the last kept bit of binary64, 39
//! for binary32) that the guard bit, the rest and the sticky bit decide rounding correctly.
//!
//! - `add`/`sub`: align the smaller operand with a sticky shift, add or subtract the 63-bit
//!   significands, renormalise.
//! - `mul`: the exact 48-bit (binary32, `u64`) or 106-bit (binary64, `u128`) product.
//! - `div`: one integer division (`u64` for binary32, `u128 / u64` for binary64) giving at least
//!   40 quotient bits, sticky if the remainder is non-zero.
//! - `sqrt`: an exact integer square root (table estimate, Newton steps, exact correction) of the
//!   significand scaled to an even exponent, sticky if the root is not exact.
//! - `fma`: the exact product in a `u128` with its top bit at 125, the addend aligned to it with a
//!   sticky shift, one rounding at the end.
//!
//! # Rounding and flags
//!
//! One function, `round_pack`, turns `(sign, exp, sig)` into bits for every operation and
//! conversion. It adds a mode-dependent increment below the last kept bit (half an ulp for RNE
//! and RMM, all-ones for the directed mode that rounds away from zero, zero otherwise), clears the
//! last bit on an exact RNE tie, and raises:
//!
//! - **NX** when any discarded bit is non-zero;
//! - **OF** (with NX) when the rounded exponent exceeds the format; the result is infinity
//!   (RNE, RMM, and RUP/RDN towards that infinity) or the largest finite number (RTZ, and
//!   RUP/RDN away from it);
//! - **UF** when the result is tiny *and* inexact. Tininess is detected **after rounding**, as
//!   RISC-V specifies: a result is tiny if rounding it to the format's precision with an unbounded
//!   exponent would still be below the smallest normal. So a value just below `2^emin` that
//!   rounds up to `2^emin` raises NX but not UF;
//! - **NV** for invalid operations (below), **DZ** for a finite non-zero number divided by zero.
//!
//! # RISC-V specific choices
//!
//! - **Canonical NaNs.** Every NaN result is [`F32_CANONICAL_NAN`] / [`F64_CANONICAL_NAN`];
//!   payloads are never propagated. NaN boxing of single-precision values in 64-bit registers
//!   is the CPU's job.
//! - **NV** is raised by a signalling NaN input to any arithmetic operation, conversion, `min`,
//!   `max` and `eq`; by any NaN input to `lt`/`le` (signalling comparisons); by `inf - inf`,
//!   `0 * inf`, `0 / 0`, `inf / inf`, the square root of a negative non-zero number (including
//!   `-inf`), and an out-of-range or NaN float-to-integer conversion. `fma(inf, 0, c)` raises NV
//!   even when `c` is a quiet NaN (RISC-V leaves this implementation-defined case to NV).
//! - **Signed zeros.** An exact zero sum of operands with opposite signs (including `fma` with
//!   an exact product) is `+0`, except in round-down where it is `-0`; `sqrt(-0) = -0`.
//! - **min/max** are IEEE 754-2019 `minimumNumber`/`maximumNumber` (RISC-V F 2.2): `-0 < +0`, a
//!   single NaN operand yields the other operand, two NaNs yield the canonical NaN, NV only for a
//!   signalling NaN input.
//! - **Float to integer.** Out-of-range and NaN inputs raise NV (and not NX) and give: NaN and
//!   positive overflow the largest integer of the type, negative overflow the smallest (0 for
//!   unsigned). A negative number that rounds to 0 converts to unsigned 0 with NX only (so
//!   `-0.5` in RTZ is 0 with NX, while `-1.0` is invalid). In-range inexact results raise NX.
//!   `to_u32` returns the `u32`; the CPU sign-extends it for `fcvt.wu.*`.
//! - **Integer to float** zero is `+0`; `f64::to_f32` rounds; `f32::to_f64` is exact.
//!
//! # Testing
//!
//! - Hand-written edge cases beside the code (`src/tests.rs`).
//! - `tests/oracle.rs`: randomised differential tests against Berkeley SoftFloat 3 built with its
//!   RISC-V specialisation (the `softfloat-sys` crate, the same code the Spike ISA simulator uses),
//!   comparing bits and flags in all five rounding modes on inputs biased to boundary
//!   exponents, subnormals, zeros, infinities and NaNs; and RNE results against the host FPU.
//!   A longer soak: `cargo test -p doppel-softfloat --release --test oracle -- --ignored`
//!   (`SOFTFLOAT_SOAK_N` sets the number of cases per operation and mode).
//! - `fuzz/softfloat/` (repository root): a `cargo fuzz` target comparing every operation on
//!   arbitrary bits with the oracle:
//!   `cargo +nightly fuzz run --fuzz-dir fuzz/softfloat ops` (see `fuzz/softfloat/README.md`).
//! - Benchmark: `cargo run -p doppel-softfloat --release --example bench`.

mod soft;
#[cfg(test)]
mod tests;

/// Accrued exception flags in the RISC-V `fflags` layout: NV=0x10, DZ=0x08, OF=0x04, UF=0x02,
/// NX=0x01.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Flags(pub u8);

impl Flags {
    /// Invalid operation.
    pub const NV: Flags = Flags(0x10);
    /// Divide by zero.
    pub const DZ: Flags = Flags(0x08);
    /// Overflow.
    pub const OF: Flags = Flags(0x04);
    /// Underflow.
    pub const UF: Flags = Flags(0x02);
    /// Inexact.
    pub const NX: Flags = Flags(0x01);
    /// No flag.
    pub const NONE: Flags = Flags(0);

    /// The flags as the low five bits of `fflags`.
    #[inline]
    #[must_use]
    pub fn bits(self) -> u8 {
        self.0
    }

    /// Raises every flag in `f`.
    #[inline]
    pub fn set(&mut self, f: Flags) {
        self.0 |= f.0;
    }

    /// True when every flag in `f` is raised.
    #[inline]
    #[must_use]
    pub fn contains(self, f: Flags) -> bool {
        self.0 & f.0 == f.0
    }

    /// True when no flag is raised.
    #[inline]
    #[must_use]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    #[inline]
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl core::ops::BitOrAssign for Flags {
    #[inline]
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

/// A static rounding mode (the RISC-V `rm` encodings 0 to 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// Round to nearest, ties to even (`rm = 0`).
    Rne,
    /// Round towards zero (`rm = 1`).
    Rtz,
    /// Round down, towards negative infinity (`rm = 2`).
    Rdn,
    /// Round up, towards positive infinity (`rm = 3`).
    Rup,
    /// Round to nearest, ties to max magnitude (`rm = 4`).
    Rmm,
}

impl Rounding {
    /// All five modes, in encoding order.
    pub const ALL: [Rounding; 5] = [
        Rounding::Rne,
        Rounding::Rtz,
        Rounding::Rdn,
        Rounding::Rup,
        Rounding::Rmm,
    ];

    /// Decodes a RISC-V `rm` field or `frm` value; 5, 6 (reserved) and 7 (`DYN`, which the CPU
    /// resolves from `frm`) give `None`.
    #[inline]
    #[must_use]
    pub fn from_bits(rm: u8) -> Option<Rounding> {
        match rm {
            0 => Some(Rounding::Rne),
            1 => Some(Rounding::Rtz),
            2 => Some(Rounding::Rdn),
            3 => Some(Rounding::Rup),
            4 => Some(Rounding::Rmm),
            _ => None,
        }
    }

    /// The RISC-V encoding of this mode.
    #[inline]
    #[must_use]
    pub fn bits(self) -> u8 {
        self as u8
    }
}

/// The canonical binary32 NaN (`0x7fc0_0000`), the result of every NaN-producing operation.
pub const F32_CANONICAL_NAN: u32 = 0x7fc0_0000;
/// The canonical binary64 NaN (`0x7ff8_0000_0000_0000`).
pub const F64_CANONICAL_NAN: u64 = 0x7ff8_0000_0000_0000;

/// Generates the public API of one format; `$narrow` turns the core's `u64` into `$T`.
macro_rules! format_api {
    ($F:ty, $T:ty, $narrow:expr) => {
        use crate::soft::{self, Format as _};
        use crate::{Flags, Rounding};

        #[inline(always)]
        fn narrow(x: u64) -> $T {
            $narrow(x)
        }

        /// `a + b`, rounded.
        #[inline]
        pub fn add(a: $T, b: $T, rm: Rounding, fl: &mut Flags) -> $T {
            narrow(soft::add::<$F>(u64::from(a), u64::from(b), rm, fl))
        }

        /// `a - b`, rounded.
        #[inline]
        pub fn sub(a: $T, b: $T, rm: Rounding, fl: &mut Flags) -> $T {
            narrow(soft::sub::<$F>(u64::from(a), u64::from(b), rm, fl))
        }

        /// `a * b`, rounded.
        #[inline]
        pub fn mul(a: $T, b: $T, rm: Rounding, fl: &mut Flags) -> $T {
            narrow(soft::mul::<$F>(u64::from(a), u64::from(b), rm, fl))
        }

        /// `a / b`, rounded; DZ and a signed infinity for a finite non-zero `a` over zero.
        #[inline]
        pub fn div(a: $T, b: $T, rm: Rounding, fl: &mut Flags) -> $T {
            narrow(soft::div::<$F>(u64::from(a), u64::from(b), rm, fl))
        }

        /// The square root, rounded; `sqrt(-0) = -0`, NV for negative non-zero inputs.
        #[inline]
        pub fn sqrt(a: $T, rm: Rounding, fl: &mut Flags) -> $T {
            narrow(soft::sqrt::<$F>(u64::from(a), rm, fl))
        }

        /// `a * b + c` with one rounding. NV for `inf * 0` even when `c` is a quiet NaN.
        /// (`fmsub`, `fnmadd`, `fnmsub` are this with operand signs flipped by the CPU.)
        #[inline]
        pub fn fma(a: $T, b: $T, c: $T, rm: Rounding, fl: &mut Flags) -> $T {
            narrow(soft::fma::<$F>(
                u64::from(a),
                u64::from(b),
                u64::from(c),
                rm,
                fl,
            ))
        }

        /// `minimumNumber`: `-0 < +0`; one NaN gives the other operand, two the canonical
        /// NaN; NV only for a signalling NaN.
        #[inline]
        pub fn min(a: $T, b: $T, fl: &mut Flags) -> $T {
            narrow(soft::min::<$F>(u64::from(a), u64::from(b), fl))
        }

        /// `maximumNumber`, the mirror of [`min`].
        #[inline]
        pub fn max(a: $T, b: $T, fl: &mut Flags) -> $T {
            narrow(soft::max::<$F>(u64::from(a), u64::from(b), fl))
        }

        /// Quiet equality (`feq`): false with any NaN, NV only for a signalling NaN.
        #[inline]
        pub fn eq(a: $T, b: $T, fl: &mut Flags) -> bool {
            soft::eq::<$F>(u64::from(a), u64::from(b), fl)
        }

        /// Signalling less-than (`flt`): false and NV with any NaN.
        #[inline]
        pub fn lt(a: $T, b: $T, fl: &mut Flags) -> bool {
            soft::lt::<$F>(u64::from(a), u64::from(b), fl)
        }

        /// Signalling less-or-equal (`fle`): false and NV with any NaN.
        #[inline]
        pub fn le(a: $T, b: $T, fl: &mut Flags) -> bool {
            soft::le::<$F>(u64::from(a), u64::from(b), fl)
        }

        /// The `fclass` mask: bit 0 `-inf`, 1 negative normal, 2 negative subnormal, 3 `-0`,
        /// 4 `+0`, 5 positive subnormal, 6 positive normal, 7 `+inf`, 8 sNaN, 9 qNaN.
        #[inline]
        #[must_use]
        pub fn classify(a: $T) -> u32 {
            soft::classify::<$F>(u64::from(a))
        }

        /// To `i32` (`fcvt.w`): NaN and positive overflow give `i32::MAX`, negative overflow
        /// `i32::MIN`, with NV; NX when inexact and in range.
        #[inline]
        pub fn to_i32(a: $T, rm: Rounding, fl: &mut Flags) -> i32 {
            let v = soft::to_signed::<$F, 32>(u64::from(a), rm, fl);
            i32::try_from(v).unwrap_or(i32::MAX) // always in range
        }

        /// To `u32` (`fcvt.wu`): NaN and overflow give `u32::MAX`, negative results 0, with NV.
        #[inline]
        pub fn to_u32(a: $T, rm: Rounding, fl: &mut Flags) -> u32 {
            let v = soft::to_unsigned::<$F, 32>(u64::from(a), rm, fl);
            u32::try_from(v).unwrap_or(u32::MAX) // always in range
        }

        /// To `i64` (`fcvt.l`), as [`to_i32`].
        #[inline]
        pub fn to_i64(a: $T, rm: Rounding, fl: &mut Flags) -> i64 {
            soft::to_signed::<$F, 64>(u64::from(a), rm, fl)
        }

        /// To `u64` (`fcvt.lu`), as [`to_u32`].
        #[inline]
        pub fn to_u64(a: $T, rm: Rounding, fl: &mut Flags) -> u64 {
            soft::to_unsigned::<$F, 64>(u64::from(a), rm, fl)
        }

        /// From `i32` (`fcvt.*.w`), rounded.
        #[inline]
        pub fn from_i32(v: i32, rm: Rounding, fl: &mut Flags) -> $T {
            narrow(soft::from_int::<$F>(
                v < 0,
                u64::from(v.unsigned_abs()),
                rm,
                fl,
            ))
        }

        /// From `u32` (`fcvt.*.wu`), rounded.
        #[inline]
        pub fn from_u32(v: u32, rm: Rounding, fl: &mut Flags) -> $T {
            narrow(soft::from_int::<$F>(false, u64::from(v), rm, fl))
        }

        /// From `i64` (`fcvt.*.l`), rounded.
        #[inline]
        pub fn from_i64(v: i64, rm: Rounding, fl: &mut Flags) -> $T {
            narrow(soft::from_int::<$F>(v < 0, v.unsigned_abs(), rm, fl))
        }

        /// From `u64` (`fcvt.*.lu`), rounded.
        #[inline]
        pub fn from_u64(v: u64, rm: Rounding, fl: &mut Flags) -> $T {
            narrow(soft::from_int::<$F>(false, v, rm, fl))
        }

        /// True for any NaN.
        #[inline]
        #[must_use]
        pub fn is_nan(a: $T) -> bool {
            soft::is_nan::<$F>(u64::from(a))
        }

        /// True for a signalling NaN.
        #[inline]
        #[must_use]
        pub fn is_snan(a: $T) -> bool {
            soft::is_snan::<$F>(u64::from(a))
        }

        /// The canonical NaN of this format.
        #[allow(clippy::cast_possible_truncation)]
        pub const CANONICAL_NAN: $T = <$F>::NAN as $T;
    };
}

/// binary32 operations on `u32` bit patterns.
pub mod f32 {
    // The core works on u64; binary32 results always fit the low 32 bits.
    #[allow(clippy::cast_possible_truncation)]
    fn low32(x: u64) -> u32 {
        x as u32
    }

    format_api!(soft::F32, u32, low32);

    /// Widens to binary64 (`fcvt.d.s`): exact; a signalling NaN raises NV; NaNs become the
    /// canonical binary64 NaN.
    #[inline]
    pub fn to_f64(a: u32, fl: &mut Flags) -> u64 {
        soft::convert::<soft::F32, soft::F64>(u64::from(a), Rounding::Rne, fl)
    }
}

/// binary64 operations on `u64` bit patterns.
pub mod f64 {
    format_api!(soft::F64, u64, core::convert::identity);

    /// Narrows to binary32 (`fcvt.s.d`), rounded; NaNs become the canonical binary32 NaN.
    #[inline]
    pub fn to_f32(a: u64, rm: Rounding, fl: &mut Flags) -> u32 {
        let r = soft::convert::<soft::F64, soft::F32>(a, rm, fl);
        u32::try_from(r).unwrap_or(crate::F32_CANONICAL_NAN) // always fits
    }
}
