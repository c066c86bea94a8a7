//! The format-generic core: every operation works on raw bit patterns widened to `u64`,
//! parameterised by a [`Format`] whose constants the compiler folds in.
//!
//! Internally a finite non-zero value is *unpacked* to `(sign, exp, sig)` where `sig` is a
//! `u64` with its most significant set bit at bit 62 (bit 63 is headroom for a carry) and `exp`
//! is the biased exponent, so the value is `sig / 2^62 * 2^(exp - BIAS)`. Subnormal inputs
//! are normalised on unpacking (their `exp` is then `<= 0`), so the arithmetic never sees
//! them. Bits below the format's precision are rounding bits; anything shifted out further is
//! OR-ed ("jammed") into bit 0 as a sticky bit. [`round_pack`] turns such a triple back into
//! bits, applying the rounding mode, subnormal denormalisation, overflow and the flags.

// Bit manipulation is the semantics here: every narrowing cast below takes a value already
// known to fit (masked fields, shifted significands), and exponents are small signed numbers.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

use crate::{Flags, Rounding};

/// An IEEE 754 binary interchange format, described by its field widths.
pub(crate) trait Format {
    /// Width of the biased exponent field.
    const EXP_BITS: u32;
    /// Width of the stored fraction (precision minus the implicit bit).
    const FRAC_BITS: u32;
    /// The all-ones exponent field (infinities and NaNs).
    const EXP_MAX: i32 = (1 << Self::EXP_BITS) - 1;
    const BIAS: i32 = (1 << (Self::EXP_BITS - 1)) - 1;
    /// Rounding bits below the precision when the significand's top bit sits at bit 62.
    const EXTRA: u32 = 62 - Self::FRAC_BITS;
    const SIGN: u64 = 1 << (Self::EXP_BITS + Self::FRAC_BITS);
    const FRAC_MASK: u64 = (1 << Self::FRAC_BITS) - 1;
    const QUIET: u64 = 1 << (Self::FRAC_BITS - 1);
    const INF: u64 = (Self::EXP_MAX as u64) << Self::FRAC_BITS;
    const NAN: u64 = Self::INF | Self::QUIET;
    const MAX_FINITE: u64 = Self::INF - 1;
}

/// binary32.
pub(crate) struct F32;
/// binary64.
pub(crate) struct F64;

impl Format for F32 {
    const EXP_BITS: u32 = 8;
    const FRAC_BITS: u32 = 23;
}

impl Format for F64 {
    const EXP_BITS: u32 = 11;
    const FRAC_BITS: u32 = 52;
}

const TOP: u64 = 1 << 62;

// ---------------------------------------------------------------------------------------------
// Classification helpers on raw bits

#[inline(always)]
fn sign_of<F: Format>(a: u64) -> bool {
    a & F::SIGN != 0
}

#[inline(always)]
fn exp_field<F: Format>(a: u64) -> i32 {
    ((a >> F::FRAC_BITS) as i32) & F::EXP_MAX
}

#[inline(always)]
pub(crate) fn is_nan<F: Format>(a: u64) -> bool {
    a & !F::SIGN > F::INF
}

#[inline(always)]
pub(crate) fn is_snan<F: Format>(a: u64) -> bool {
    is_nan::<F>(a) && a & F::QUIET == 0
}

#[inline(always)]
fn is_inf<F: Format>(a: u64) -> bool {
    a & !F::SIGN == F::INF
}

#[inline(always)]
fn is_zero<F: Format>(a: u64) -> bool {
    a & !F::SIGN == 0
}

/// True for infinities and NaNs (exponent field all ones).
#[inline(always)]
fn is_special<F: Format>(a: u64) -> bool {
    a & F::INF == F::INF
}

#[inline(always)]
fn sign_bit<F: Format>(sign: bool) -> u64 {
    if sign {
        F::SIGN
    } else {
        0
    }
}

/// Unpacks a finite non-zero value to `(exp, sig)` with `sig`'s top bit at bit 62.
#[inline(always)]
fn unpack<F: Format>(a: u64) -> (i32, u64) {
    let e = exp_field::<F>(a);
    let frac = a & F::FRAC_MASK;
    if e != 0 {
        (e, (frac | (1 << F::FRAC_BITS)) << F::EXTRA)
    } else {
        let s = frac.leading_zeros() - 1;
        (1 + F::EXTRA as i32 - s as i32, frac << s)
    }
}

/// Shifts right by `n`, OR-ing every bit shifted out into bit 0.
#[inline(always)]
fn shr_jam64(x: u64, n: u32) -> u64 {
    if n == 0 {
        x
    } else if n < 64 {
        (x >> n) | u64::from(x << (64 - n) != 0)
    } else {
        u64::from(x != 0)
    }
}

/// [`shr_jam64`] for `x < 2^63` and `n <= 63`, without branches.
#[inline(always)]
fn shr_jam64_small(x: u64, n: u32) -> u64 {
    (x >> n) | u64::from(x & ((1u64 << n) - 1) != 0)
}

#[inline(always)]
fn shr_jam128(x: u128, n: u32) -> u128 {
    if n == 0 {
        x
    } else if n < 128 {
        (x >> n) | u128::from(x << (128 - n) != 0)
    } else {
        u128::from(x != 0)
    }
}

/// The sign of an exact zero result of `x + y` with `x = -y` (IEEE 754 6.3): `+0` except in
/// round-down, where it is `-0`.
#[inline(always)]
fn cancel_zero<F: Format>(rm: Rounding) -> u64 {
    sign_bit::<F>(rm == Rounding::Rdn)
}

/// Whether an overflowing result of this sign becomes infinity (else the largest finite).
#[inline(always)]
fn overflow_to_inf(rm: Rounding, sign: bool) -> bool {
    match rm {
        Rounding::Rne | Rounding::Rmm => true,
        Rounding::Rtz => false,
        Rounding::Rdn => sign,
        Rounding::Rup => !sign,
    }
}

// ---------------------------------------------------------------------------------------------
// Rounding

/// Rounds `sig / 2^62 * 2^(exp - BIAS)` (with `sig < 2^63`; normalised unless exact) to the
/// format under `rm`, raising NX, UF (tiny after rounding and inexact) and OF.
#[inline]
pub(crate) fn round_pack<F: Format>(
    sign: bool,
    mut exp: i32,
    mut sig: u64,
    rm: Rounding,
    fl: &mut Flags,
) -> u64 {
    let extra = F::EXTRA;
    let half = 1u64 << (extra - 1);
    let mask = (1u64 << extra) - 1;
    let inc = match rm {
        Rounding::Rne | Rounding::Rmm => half,
        Rounding::Rtz => 0,
        Rounding::Rdn => {
            if sign {
                mask
            } else {
                0
            }
        }
        Rounding::Rup => {
            if sign {
                0
            } else {
                mask
            }
        }
    };
    if exp <= 0 {
        // Tininess after rounding: the result is tiny unless rounding to the precision with an
        // unbounded exponent carries the significand up to 2^63 (i.e. to the smallest normal).
        let tiny = exp < 0 || sig + inc < (1 << 63);
        sig = shr_jam64(sig, (1 - exp) as u32);
        exp = 1;
        if tiny && sig & mask != 0 {
            fl.set(Flags::UF);
        }
    } else if exp >= F::EXP_MAX - 1 && (exp >= F::EXP_MAX || sig + inc >= (1 << 63)) {
        fl.set(Flags::OF);
        fl.set(Flags::NX);
        let mag = if overflow_to_inf(rm, sign) {
            F::INF
        } else {
            F::MAX_FINITE
        };
        return sign_bit::<F>(sign) | mag;
    }
    let r = sig & mask;
    if r != 0 {
        fl.set(Flags::NX);
    }
    let mut q = (sig + inc) >> extra;
    if rm == Rounding::Rne && r == half {
        q &= !1;
    }
    // The implicit bit in `q` carries into the exponent field; a subnormal (`exp` forced to
    // 1) has no implicit bit unless it rounded up to the smallest normal.
    sign_bit::<F>(sign) | ((((exp - 1) as u64) << F::FRAC_BITS) + q)
}

/// Normalises a non-zero `sig` (any position) and rounds it.
#[inline]
fn norm_round_pack<F: Format>(sign: bool, exp: i32, sig: u64, rm: Rounding, fl: &mut Flags) -> u64 {
    let lz = sig.leading_zeros();
    if lz == 0 {
        round_pack::<F>(sign, exp + 1, shr_jam64(sig, 1), rm, fl)
    } else {
        round_pack::<F>(sign, exp - (lz as i32 - 1), sig << (lz - 1), rm, fl)
    }
}

/// The NaN result of an operation with a NaN input: canonical, NV if any input signals.
#[inline(always)]
fn nan_result<F: Format>(a: u64, b: u64, fl: &mut Flags) -> u64 {
    if is_snan::<F>(a) || is_snan::<F>(b) {
        fl.set(Flags::NV);
    }
    F::NAN
}

#[inline(always)]
fn invalid<F: Format>(fl: &mut Flags) -> u64 {
    fl.set(Flags::NV);
    F::NAN
}

// ---------------------------------------------------------------------------------------------
// Arithmetic

#[inline]
pub(crate) fn add<F: Format>(a: u64, b: u64, rm: Rounding, fl: &mut Flags) -> u64 {
    let sa = sign_of::<F>(a);
    let sb = sign_of::<F>(b);
    if is_special::<F>(a) || is_special::<F>(b) {
        if is_nan::<F>(a) || is_nan::<F>(b) {
            return nan_result::<F>(a, b, fl);
        }
        if is_inf::<F>(a) {
            if is_inf::<F>(b) && sa != sb {
                return invalid::<F>(fl);
            }
            return a;
        }
        return b;
    }
    if is_zero::<F>(b) {
        if is_zero::<F>(a) && sa != sb {
            return cancel_zero::<F>(rm);
        }
        return a;
    }
    if is_zero::<F>(a) {
        return b;
    }
    // Order by magnitude (the raw bits order finite magnitudes), so `x >= y` below and the
    // result takes the sign of `a`. Written to compile to selects rather than branches.
    let (a, b) = if b & !F::SIGN > a & !F::SIGN {
        (b, a)
    } else {
        (a, b)
    };
    let (ea, x) = unpack::<F>(a);
    let (eb, mb) = unpack::<F>(b);
    let y = shr_jam64_small(mb, ((ea - eb) as u32).min(63));
    let r = if sa == sb { x + y } else { x - y };
    if r == 0 {
        return cancel_zero::<F>(rm);
    }
    norm_round_pack::<F>(sign_of::<F>(a), ea, r, rm, fl)
}

#[inline]
pub(crate) fn sub<F: Format>(a: u64, b: u64, rm: Rounding, fl: &mut Flags) -> u64 {
    // Negating a NaN keeps it a NaN of the same kind, so flags and results are unchanged.
    add::<F>(a, b ^ F::SIGN, rm, fl)
}

/// The product of two unpacked significands, as `(carry, sig)`: `sig` has its top bit at 62
/// and `carry` says the true product was `>= 2` (and `sig` was shifted right by one).
#[inline(always)]
fn mul_sig<F: Format>(ma: u64, mb: u64) -> (bool, u64) {
    let p = if 2 * F::EXTRA >= 62 {
        // Narrow formats: the exact product fits in 64 bits at the right scale.
        ((ma >> F::EXTRA) * (mb >> F::EXTRA)) << (2 * F::EXTRA - 62)
    } else {
        let p = u128::from(ma) * u128::from(mb);
        ((p >> 62) as u64) | u64::from(p as u64 & (TOP - 1) != 0)
    };
    if p >= 1 << 63 {
        (true, shr_jam64(p, 1))
    } else {
        (false, p)
    }
}

#[inline]
pub(crate) fn mul<F: Format>(a: u64, b: u64, rm: Rounding, fl: &mut Flags) -> u64 {
    let sign = sign_of::<F>(a) != sign_of::<F>(b);
    if is_special::<F>(a) || is_special::<F>(b) {
        if is_nan::<F>(a) || is_nan::<F>(b) {
            return nan_result::<F>(a, b, fl);
        }
        if is_zero::<F>(a) || is_zero::<F>(b) {
            return invalid::<F>(fl);
        }
        return sign_bit::<F>(sign) | F::INF;
    }
    if is_zero::<F>(a) || is_zero::<F>(b) {
        return sign_bit::<F>(sign);
    }
    let (ea, ma) = unpack::<F>(a);
    let (eb, mb) = unpack::<F>(b);
    let (carry, m) = mul_sig::<F>(ma, mb);
    round_pack::<F>(sign, ea + eb - F::BIAS + i32::from(carry), m, rm, fl)
}

#[inline]
pub(crate) fn div<F: Format>(a: u64, b: u64, rm: Rounding, fl: &mut Flags) -> u64 {
    let sign = sign_of::<F>(a) != sign_of::<F>(b);
    if is_special::<F>(a) || is_special::<F>(b) {
        if is_nan::<F>(a) || is_nan::<F>(b) {
            return nan_result::<F>(a, b, fl);
        }
        if is_inf::<F>(a) {
            if is_inf::<F>(b) {
                return invalid::<F>(fl);
            }
            return sign_bit::<F>(sign) | F::INF;
        }
        // finite / inf
        return sign_bit::<F>(sign);
    }
    if is_zero::<F>(b) {
        if is_zero::<F>(a) {
            return invalid::<F>(fl);
        }
        fl.set(Flags::DZ);
        return sign_bit::<F>(sign) | F::INF;
    }
    if is_zero::<F>(a) {
        return sign_bit::<F>(sign);
    }
    let (ea, ma) = unpack::<F>(a);
    let (eb, mb) = unpack::<F>(b);
    // q = ma / mb * 2^62, in (2^61, 2^63), with a sticky bit for a non-zero remainder.
    let q = if 2 * F::EXTRA >= 62 {
        let x = (ma >> F::EXTRA) << 40;
        let y = mb >> F::EXTRA;
        let q = x / y;
        (q << 22) | u64::from(x % y != 0) // 40 + 22 = 62
    } else {
        let x = u128::from(ma) << 62;
        let y = u128::from(mb);
        let q = x / y;
        (q as u64) | u64::from(x % y != 0)
    };
    let e = ea - eb + F::BIAS;
    if q < TOP {
        round_pack::<F>(sign, e - 1, q << 1, rm, fl)
    } else {
        round_pack::<F>(sign, e, q, rm, fl)
    }
}

#[inline]
pub(crate) fn sqrt<F: Format>(a: u64, rm: Rounding, fl: &mut Flags) -> u64 {
    if is_nan::<F>(a) {
        return nan_result::<F>(a, a, fl);
    }
    if is_zero::<F>(a) {
        return a; // sqrt(-0) = -0
    }
    if sign_of::<F>(a) {
        return invalid::<F>(fl);
    }
    if is_inf::<F>(a) {
        return a;
    }
    let (ea, ma) = unpack::<F>(a);
    let e = ea - F::BIAS;
    let odd = (e & 1) as u32;
    // root = sqrt(ma / 2^62 * 2^odd) * 2^62, in [2^62, 2^63), sticky if inexact.
    let root = if 2 * F::EXTRA >= 62 {
        let r = (ma >> F::EXTRA) << (F::EXTRA + odd);
        let s = isqrt64(r);
        (s << (62 - 31)) | u64::from(s * s != r)
    } else {
        let r = u128::from(ma) << (62 + odd);
        let s = isqrt128(r);
        s | u64::from(u128::from(s) * u128::from(s) != r)
    };
    round_pack::<F>(false, (e >> 1) + F::BIAS, root, rm, fl)
}

/// `floor(sqrt(i * 2^16))` for the top byte of a radicand, built at compile time.
const SQRT_TABLE: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    let mut r: u64 = 0;
    while i < 256 {
        let n = (i as u64) << 16;
        while (r + 1) * (r + 1) <= n {
            r += 1;
        }
        t[i] = r as u16;
        i += 1;
    }
    t
};

/// `floor(sqrt(n))` for `n` in `[2^62, 2^64)`: a table estimate, two Newton steps, an exact
/// correction. (Our own rather than `u64::isqrt`, so no host floating point is involved.)
#[inline(always)]
fn isqrt64(n: u64) -> u64 {
    debug_assert!(n >= 1 << 62);
    // sqrt(n) ~ sqrt(top byte * 2^16) * 2^20, good to about 7 bits; never zero.
    let mut s = u64::from(SQRT_TABLE[(n >> 56) as usize]) << 20;
    s = (s + n / s) >> 1;
    s = (s + n / s) >> 1;
    // Newton from any start lands within a few units; make it exact.
    while u128::from(s) * u128::from(s) > u128::from(n) {
        s -= 1;
    }
    while u128::from(s + 1) * u128::from(s + 1) <= u128::from(n) {
        s += 1;
    }
    s
}

/// `floor(sqrt(n))` for `n` in `[2^124, 2^126)`: the root of the top 64 bits, one Newton step
/// (one `u128 / u64` division), an exact correction.
#[inline(always)]
fn isqrt128(n: u128) -> u64 {
    debug_assert!(n >> 124 != 0 && n >> 126 == 0);
    let mut s = isqrt64((n >> 62) as u64) << 31; // within 2^31 of the root, from below
    s = ((u128::from(s) + n / u128::from(s)) >> 1) as u64;
    while u128::from(s) * u128::from(s) > n {
        s -= 1;
    }
    while u128::from(s + 1) * u128::from(s + 1) <= n {
        s += 1;
    }
    s
}

#[inline]
pub(crate) fn fma<F: Format>(a: u64, b: u64, c: u64, rm: Rounding, fl: &mut Flags) -> u64 {
    let ps = sign_of::<F>(a) != sign_of::<F>(b);
    let sc = sign_of::<F>(c);
    if is_special::<F>(a) || is_special::<F>(b) || is_special::<F>(c) {
        let inf_times_zero =
            (is_inf::<F>(a) && is_zero::<F>(b)) || (is_zero::<F>(a) && is_inf::<F>(b));
        if is_nan::<F>(a) || is_nan::<F>(b) || is_nan::<F>(c) {
            if inf_times_zero || is_snan::<F>(a) || is_snan::<F>(b) || is_snan::<F>(c) {
                fl.set(Flags::NV);
            }
            return F::NAN;
        }
        if inf_times_zero {
            return invalid::<F>(fl);
        }
        if is_inf::<F>(a) || is_inf::<F>(b) {
            if is_inf::<F>(c) && sc != ps {
                return invalid::<F>(fl);
            }
            return sign_bit::<F>(ps) | F::INF;
        }
        return c; // c is infinite, the product finite
    }
    if is_zero::<F>(a) || is_zero::<F>(b) {
        if is_zero::<F>(c) {
            return if ps == sc { c } else { cancel_zero::<F>(rm) };
        }
        return c;
    }
    let (ea, ma) = unpack::<F>(a);
    let (eb, mb) = unpack::<F>(b);
    if is_zero::<F>(c) {
        // The exact result is the non-zero product: one rounding, as in mul.
        let (carry, m) = mul_sig::<F>(ma, mb);
        return round_pack::<F>(ps, ea + eb - F::BIAS + i32::from(carry), m, rm, fl);
    }
    let (ec, mc) = unpack::<F>(c);
    // Exact product scaled so that its top bit sits at bit 125: value = p / 2^125 * 2^(ep-BIAS).
    let mut p = u128::from(ma) * u128::from(mb);
    let mut ep = ea + eb - F::BIAS;
    if p >= 1 << 125 {
        ep += 1;
    } else {
        p <<= 1;
    }
    let cc = u128::from(mc) << 63;
    let (sign, e, sum) = if ps == sc {
        let (e, x, y) = if ep >= ec {
            (ep, p, shr_jam128(cc, (ep - ec) as u32))
        } else {
            (ec, cc, shr_jam128(p, (ec - ep) as u32))
        };
        (ps, e, x + y)
    } else {
        let (sign, e, x, y) = if ep > ec || (ep == ec && p >= cc) {
            (ps, ep, p, shr_jam128(cc, (ep - ec) as u32))
        } else {
            (sc, ec, cc, shr_jam128(p, (ec - ep) as u32))
        };
        (sign, e, x - y)
    };
    if sum == 0 {
        return cancel_zero::<F>(rm);
    }
    // Normalise the top bit to 125 (the sum may reach bit 126), then narrow to bit 62.
    let lz = sum.leading_zeros() as i32; // 2 when the top bit is at 125
    let (e, sum) = if lz < 2 {
        (e + 1, shr_jam128(sum, 1))
    } else {
        (e - (lz - 2), sum << (lz - 2))
    };
    let m = shr_jam128(sum, 63) as u64;
    round_pack::<F>(sign, e, m, rm, fl)
}

// ---------------------------------------------------------------------------------------------
// Comparisons, min/max, classify

#[inline]
pub(crate) fn eq<F: Format>(a: u64, b: u64, fl: &mut Flags) -> bool {
    if is_nan::<F>(a) || is_nan::<F>(b) {
        if is_snan::<F>(a) || is_snan::<F>(b) {
            fl.set(Flags::NV);
        }
        return false;
    }
    a == b || (is_zero::<F>(a) && is_zero::<F>(b))
}

/// `a < b` for non-NaN inputs, with `-0` and `+0` equal.
#[inline(always)]
fn lt_ordered<F: Format>(a: u64, b: u64) -> bool {
    let sa = sign_of::<F>(a);
    if sa != sign_of::<F>(b) {
        sa && !(is_zero::<F>(a) && is_zero::<F>(b))
    } else if sa {
        a > b
    } else {
        a < b
    }
}

#[inline]
pub(crate) fn lt<F: Format>(a: u64, b: u64, fl: &mut Flags) -> bool {
    if is_nan::<F>(a) || is_nan::<F>(b) {
        fl.set(Flags::NV);
        return false;
    }
    lt_ordered::<F>(a, b)
}

#[inline]
pub(crate) fn le<F: Format>(a: u64, b: u64, fl: &mut Flags) -> bool {
    if is_nan::<F>(a) || is_nan::<F>(b) {
        fl.set(Flags::NV);
        return false;
    }
    !lt_ordered::<F>(b, a)
}

/// `a < b` in the total order of non-NaN values where `-0 < +0`.
#[inline(always)]
fn lt_total<F: Format>(a: u64, b: u64) -> bool {
    let sa = sign_of::<F>(a);
    if sa != sign_of::<F>(b) {
        sa
    } else if sa {
        a > b
    } else {
        a < b
    }
}

/// Shared NaN handling of min and max: `Some(result)` when an input is a NaN.
#[inline(always)]
fn minmax_nan<F: Format>(a: u64, b: u64, fl: &mut Flags) -> Option<u64> {
    let na = is_nan::<F>(a);
    let nb = is_nan::<F>(b);
    if !na && !nb {
        return None;
    }
    if is_snan::<F>(a) || is_snan::<F>(b) {
        fl.set(Flags::NV);
    }
    Some(match (na, nb) {
        (true, true) => F::NAN,
        (true, false) => b,
        _ => a,
    })
}

#[inline]
pub(crate) fn min<F: Format>(a: u64, b: u64, fl: &mut Flags) -> u64 {
    if let Some(r) = minmax_nan::<F>(a, b, fl) {
        return r;
    }
    if lt_total::<F>(b, a) {
        b
    } else {
        a
    }
}

#[inline]
pub(crate) fn max<F: Format>(a: u64, b: u64, fl: &mut Flags) -> u64 {
    if let Some(r) = minmax_nan::<F>(a, b, fl) {
        return r;
    }
    if lt_total::<F>(a, b) {
        b
    } else {
        a
    }
}

#[inline]
pub(crate) fn classify<F: Format>(a: u64) -> u32 {
    let neg = sign_of::<F>(a);
    let e = exp_field::<F>(a);
    let frac = a & F::FRAC_MASK;
    let bit = if e == F::EXP_MAX {
        if frac == 0 {
            if neg {
                0
            } else {
                7
            }
        } else if a & F::QUIET == 0 {
            8
        } else {
            9
        }
    } else if e == 0 {
        match (frac == 0, neg) {
            (true, true) => 3,
            (true, false) => 4,
            (false, true) => 2,
            (false, false) => 5,
        }
    } else if neg {
        1
    } else {
        6
    };
    1 << bit
}

// ---------------------------------------------------------------------------------------------
// Conversions

/// A float rounded to an integer magnitude, before the range check of the target type.
enum Rounded {
    /// NaN input.
    Nan,
    /// `|a| >= 2^64` after rounding (or infinite), with the sign.
    Huge(bool),
    /// Sign, rounded magnitude and whether rounding was inexact.
    Int(bool, u64, bool),
}

#[inline(always)]
fn round_to_int<F: Format>(a: u64, rm: Rounding) -> Rounded {
    let sign = sign_of::<F>(a);
    if is_special::<F>(a) {
        return if is_nan::<F>(a) {
            Rounded::Nan
        } else {
            Rounded::Huge(sign)
        };
    }
    if is_zero::<F>(a) {
        return Rounded::Int(sign, 0, false);
    }
    let (e, m) = unpack::<F>(a);
    let ue = e - F::BIAS; // value = m / 2^62 * 2^ue
    if ue >= 64 {
        return Rounded::Huge(sign);
    }
    if ue >= 62 {
        return Rounded::Int(sign, m << (ue - 62), false);
    }
    let shift = (62 - ue) as u32; // >= 1
    let (int, frac) = if shift <= 64 {
        let x = (u128::from(m) << 64) >> shift;
        ((x >> 64) as u64, x as u64)
    } else {
        (0, 1) // below a quarter: only its non-zero-ness matters
    };
    const HALF: u64 = 1 << 63;
    let up = match rm {
        Rounding::Rne => frac > HALF || (frac == HALF && int & 1 != 0),
        Rounding::Rmm => frac >= HALF,
        Rounding::Rtz => false,
        Rounding::Rdn => sign && frac != 0,
        Rounding::Rup => !sign && frac != 0,
    };
    match int.checked_add(u64::from(up)) {
        Some(v) => Rounded::Int(sign, v, frac != 0),
        None => Rounded::Huge(sign),
    }
}

/// Float to a signed integer of `BITS` bits (32 or 64), RISC-V style: NaN and positive
/// overflow give the maximum, negative overflow the minimum, both with NV only.
#[inline]
pub(crate) fn to_signed<F: Format, const BITS: u32>(a: u64, rm: Rounding, fl: &mut Flags) -> i64 {
    let max = (1u64 << (BITS - 1)) - 1;
    let min = -(1i128 << (BITS - 1)) as i64;
    match round_to_int::<F>(a, rm) {
        Rounded::Nan => {
            fl.set(Flags::NV);
            max as i64
        }
        Rounded::Huge(sign) => {
            fl.set(Flags::NV);
            if sign {
                min
            } else {
                max as i64
            }
        }
        Rounded::Int(sign, mag, inexact) => {
            if (sign && mag > max + 1) || (!sign && mag > max) {
                fl.set(Flags::NV);
                return if sign { min } else { max as i64 };
            }
            if inexact {
                fl.set(Flags::NX);
            }
            if sign {
                (mag as i64).wrapping_neg()
            } else {
                mag as i64
            }
        }
    }
}

/// Float to an unsigned integer of `BITS` bits (32 or 64), RISC-V style: NaN and positive
/// overflow give the maximum, anything that rounds to a negative integer gives 0, with NV.
#[inline]
pub(crate) fn to_unsigned<F: Format, const BITS: u32>(a: u64, rm: Rounding, fl: &mut Flags) -> u64 {
    let max = u64::MAX >> (64 - BITS);
    match round_to_int::<F>(a, rm) {
        Rounded::Nan => {
            fl.set(Flags::NV);
            max
        }
        Rounded::Huge(sign) => {
            fl.set(Flags::NV);
            if sign {
                0
            } else {
                max
            }
        }
        Rounded::Int(sign, mag, inexact) => {
            if (sign && mag != 0) || mag > max {
                fl.set(Flags::NV);
                return if sign { 0 } else { max };
            }
            if inexact {
                fl.set(Flags::NX);
            }
            mag
        }
    }
}

/// An integer `(-1)^neg * mag` to the format.
#[inline]
pub(crate) fn from_int<F: Format>(neg: bool, mag: u64, rm: Rounding, fl: &mut Flags) -> u64 {
    if mag == 0 {
        return 0;
    }
    norm_round_pack::<F>(neg, F::BIAS + 62, mag, rm, fl)
}

/// Converts between formats (`S` source, `D` destination); exact when widening.
#[inline]
pub(crate) fn convert<S: Format, D: Format>(a: u64, rm: Rounding, fl: &mut Flags) -> u64 {
    let sign = sign_of::<S>(a);
    if is_special::<S>(a) {
        if is_nan::<S>(a) {
            if is_snan::<S>(a) {
                fl.set(Flags::NV);
            }
            return D::NAN;
        }
        return sign_bit::<D>(sign) | D::INF;
    }
    if is_zero::<S>(a) {
        return sign_bit::<D>(sign);
    }
    let (e, m) = unpack::<S>(a);
    round_pack::<D>(sign, e - S::BIAS + D::BIAS, m, rm, fl)
}

#[cfg(test)]
mod isqrt_tests {
    use super::{isqrt128, isqrt64};

    #[test]
    fn isqrt_exact_at_square_boundaries() {
        // Roots across the whole input range, including both ends.
        let roots64 = [
            1u64 << 31,
            (1 << 31) + 1,
            3_037_000_499,
            3_037_000_500,
            (1 << 32) - 1,
        ];
        for r in roots64
            .into_iter()
            .chain((0..2000).map(|i| (1u64 << 31) + i * 1_073_741))
        {
            let sq = u128::from(r) * u128::from(r);
            for n in [sq.saturating_sub(1), sq, sq + 1, sq + 2 * u128::from(r)] {
                if let Ok(n) = u64::try_from(n) {
                    if n >= 1 << 62 {
                        let s = isqrt64(n);
                        assert!(
                            u128::from(s) * u128::from(s) <= u128::from(n),
                            "isqrt64({n}) = {s}"
                        );
                        assert!(
                            u128::from(s + 1) * u128::from(s + 1) > u128::from(n),
                            "isqrt64({n}) = {s}"
                        );
                    }
                }
            }
        }
        assert_eq!(isqrt64(u64::MAX), (1 << 32) - 1);
        assert_eq!(isqrt64(1 << 62), 1 << 31);
        let roots128 = [
            1u64 << 62,
            (1 << 62) + 1,
            (1 << 63) - 1,
            6_521_908_912_666_391_106,
        ];
        for r in roots128
            .into_iter()
            .chain((0..2000).map(|i| (1u64 << 62) + i * 2_305_843_009_213_693))
        {
            let sq = u128::from(r) * u128::from(r);
            for n in [sq - 1, sq, sq + 1, sq + 2 * u128::from(r)] {
                if n >> 124 != 0 && n >> 126 == 0 {
                    let s = u128::from(isqrt128(n));
                    assert!(s * s <= n && (s + 1) * (s + 1) > n, "isqrt128({n}) = {s}");
                }
            }
        }
    }
}
