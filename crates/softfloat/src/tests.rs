//! Hand-written edge cases, each with an expected result worked out by hand from the IEEE 754
//! and RISC-V rules (host float literals only build the bit patterns).

use crate::{
    f32 as s, f64 as d, Flags, Rounding, Rounding::*, F32_CANONICAL_NAN as QN32,
    F64_CANONICAL_NAN as QN64,
};

const NV: u8 = 0x10;
const DZ: u8 = 0x08;
const OF: u8 = 0x04;
const UF: u8 = 0x02;
const NX: u8 = 0x01;

fn b32(x: f32) -> u32 {
    x.to_bits()
}
fn b64(x: f64) -> u64 {
    x.to_bits()
}

const SNAN32: u32 = 0x7f80_0001;
const QNAN32_PAYLOAD: u32 = 0xffc1_2345;
const MIN_SUB32: u32 = 0x0000_0001;
const MAX_SUB32: u32 = 0x007f_ffff;
const MIN_NORM32: u32 = 0x0080_0000;
const MAX32: u32 = 0x7f7f_ffff;
const INF32: u32 = 0x7f80_0000;
const NEG32: u32 = 0x8000_0000;

const SNAN64: u64 = 0x7ff0_0000_0000_0001;
const MIN_SUB64: u64 = 1;
const MIN_NORM64: u64 = 0x0010_0000_0000_0000;
const MAX64: u64 = 0x7fef_ffff_ffff_ffff;
const INF64: u64 = 0x7ff0_0000_0000_0000;
const NEG64: u64 = 1 << 63;

/// Runs `op` and checks result bits and flags, naming the case on failure.
#[track_caller]
fn check<T: PartialEq + std::fmt::Debug>(
    what: &str,
    op: impl FnOnce(&mut Flags) -> T,
    want: T,
    want_flags: u8,
) {
    let mut fl = Flags::default();
    let got = op(&mut fl);
    assert_eq!(
        (&got, fl.bits()),
        (&want, want_flags),
        "{what}: got {got:?} flags {:#04x}, want {want:?} flags {want_flags:#04x}",
        fl.bits()
    );
}

#[test]
fn flags_and_rounding_encodings() {
    assert_eq!(
        (Flags::NV | Flags::DZ | Flags::OF | Flags::UF | Flags::NX).bits(),
        0x1f
    );
    let mut f = Flags::default();
    f.set(Flags::UF);
    f |= Flags::NX;
    assert!(f.contains(Flags::UF | Flags::NX) && !f.contains(Flags::NV));
    for (i, rm) in Rounding::ALL.iter().enumerate() {
        assert_eq!(Rounding::from_bits(u8::try_from(i).unwrap()), Some(*rm));
        assert_eq!(usize::from(rm.bits()), i);
    }
    assert_eq!(Rounding::from_bits(5), None);
    assert_eq!(Rounding::from_bits(7), None);
    assert_eq!(s::CANONICAL_NAN, 0x7fc0_0000);
    assert_eq!(d::CANONICAL_NAN, 0x7ff8_0000_0000_0000);
}

#[test]
fn add_signed_zeros_and_cancellation() {
    for rm in Rounding::ALL {
        let zero = if rm == Rdn { NEG32 } else { 0 };
        check("1 + -1", |f| s::add(b32(1.0), b32(-1.0), rm, f), zero, 0);
        check("+0 + -0", |f| s::add(0, NEG32, rm, f), zero, 0);
        check("-0 + -0", |f| s::add(NEG32, NEG32, rm, f), NEG32, 0);
        check("+0 - +0", |f| s::sub(0, 0, rm, f), zero, 0);
        check("x - x", |f| s::sub(MAX_SUB32, MAX_SUB32, rm, f), zero, 0);
        let zero64 = if rm == Rdn { NEG64 } else { 0 };
        check(
            "1 - 1 (f64)",
            |f| d::sub(b64(1.0), b64(1.0), rm, f),
            zero64,
            0,
        );
        check("-0 + +0 (f64)", |f| d::add(NEG64, 0, rm, f), zero64, 0);
        check("-0 - +0 (f64)", |f| d::sub(NEG64, 0, rm, f), NEG64, 0);
        // x + 0 is x exactly, even subnormal.
        check("sub + 0", |f| s::add(MIN_SUB32, NEG32, rm, f), MIN_SUB32, 0);
    }
}

#[test]
fn add_nan_and_infinity() {
    check(
        "inf - inf",
        |f| s::add(INF32, INF32 | NEG32, Rne, f),
        QN32,
        NV,
    );
    check(
        "inf - inf (sub)",
        |f| d::sub(INF64, INF64, Rne, f),
        QN64,
        NV,
    );
    check("inf + inf", |f| s::add(INF32, INF32, Rne, f), INF32, 0);
    check(
        "inf + 1",
        |f| d::add(INF64 | NEG64, b64(1.0), Rne, f),
        INF64 | NEG64,
        0,
    );
    check(
        "qNaN + 1",
        |f| s::add(QNAN32_PAYLOAD, b32(1.0), Rne, f),
        QN32,
        0,
    );
    check("1 + sNaN", |f| s::add(b32(1.0), SNAN32, Rne, f), QN32, NV);
    check("sNaN - inf", |f| d::sub(SNAN64, INF64, Rne, f), QN64, NV);
}

#[test]
fn add_ties_rne_and_rmm() {
    let one = b32(1.0);
    let half_ulp = b32(2f32.powi(-24));
    check(
        "1 + ulp/2 RNE (to even, down)",
        |f| s::add(one, half_ulp, Rne, f),
        one,
        NX,
    );
    check(
        "1 + ulp/2 RMM (away)",
        |f| s::add(one, half_ulp, Rmm, f),
        one + 1,
        NX,
    );
    check(
        "1 + ulp/2 RUP",
        |f| s::add(one, half_ulp, Rup, f),
        one + 1,
        NX,
    );
    check("1 + ulp/2 RTZ", |f| s::add(one, half_ulp, Rtz, f), one, NX);
    // (1 + ulp) + ulp/2: tie between an odd and an even significand, RNE goes up.
    check(
        "odd + ulp/2 RNE",
        |f| s::add(one + 1, half_ulp, Rne, f),
        one + 2,
        NX,
    );
    // Negative tie: -1 - ulp/2 rounds away in RDN and RMM, towards zero in RUP.
    check(
        "-1 - ulp/2 RDN",
        |f| s::sub(b32(-1.0), half_ulp, Rdn, f),
        b32(-1.0) + 1,
        NX,
    );
    check(
        "-1 - ulp/2 RUP",
        |f| s::sub(b32(-1.0), half_ulp, Rup, f),
        b32(-1.0),
        NX,
    );
    check(
        "-1 - ulp/2 RMM",
        |f| s::sub(b32(-1.0), half_ulp, Rmm, f),
        b32(-1.0) + 1,
        NX,
    );
    let one64 = b64(1.0);
    let half_ulp64 = b64(2f64.powi(-53));
    check(
        "f64 1 + ulp/2 RNE",
        |f| d::add(one64, half_ulp64, Rne, f),
        one64,
        NX,
    );
    check(
        "f64 1 + ulp/2 RMM",
        |f| d::add(one64, half_ulp64, Rmm, f),
        one64 + 1,
        NX,
    );
    check(
        "f64 odd + ulp/2 RNE",
        |f| d::add(one64 + 1, half_ulp64, Rne, f),
        one64 + 2,
        NX,
    );
    // Far-apart operands: only the sticky bit of the smaller one survives.
    check(
        "1 + tiny RUP",
        |f| d::add(one64, MIN_SUB64, Rup, f),
        one64 + 1,
        NX,
    );
    check(
        "1 - tiny RTZ",
        |f| d::sub(one64, MIN_SUB64, Rtz, f),
        one64 - 1,
        NX,
    );
    check(
        "1 - tiny RNE",
        |f| d::sub(one64, MIN_SUB64, Rne, f),
        one64,
        NX,
    );
}

#[test]
fn subnormals_in_and_out() {
    check(
        "min_sub + min_sub",
        |f| s::add(MIN_SUB32, MIN_SUB32, Rne, f),
        2,
        0,
    );
    check(
        "min_norm - min_sub",
        |f| s::sub(MIN_NORM32, MIN_SUB32, Rne, f),
        MAX_SUB32,
        0,
    );
    check(
        "max_sub + min_sub",
        |f| s::add(MAX_SUB32, MIN_SUB32, Rne, f),
        MIN_NORM32,
        0,
    );
    check(
        "min_norm / 2 is exact",
        |f| s::mul(MIN_NORM32, b32(0.5), Rne, f),
        0x0040_0000,
        0,
    );
    check(
        "sub * 2^100",
        |f| s::mul(MIN_SUB32, b32(2f32.powi(100)), Rne, f),
        b32(2f32.powi(-49)),
        0,
    );
    check(
        "f64 min_norm / 4",
        |f| d::div(MIN_NORM64, b64(4.0), Rne, f),
        0x0004_0000_0000_0000,
        0,
    );
    // min_sub / 2: exactly half the smallest subnormal.
    for (rm, want) in [
        (Rne, 0),
        (Rtz, 0),
        (Rdn, 0),
        (Rup, MIN_SUB32),
        (Rmm, MIN_SUB32),
    ] {
        check(
            "min_sub * 0.5",
            |f| s::mul(MIN_SUB32, b32(0.5), rm, f),
            want,
            UF | NX,
        );
    }
    for (rm, want) in [
        (Rne, NEG64),
        (Rtz, NEG64),
        (Rdn, NEG64 | 1),
        (Rup, NEG64),
        (Rmm, NEG64 | 1),
    ] {
        check(
            "-min_sub64 / 2",
            |f| d::mul(MIN_SUB64 | NEG64, b64(0.5), rm, f),
            want,
            UF | NX,
        );
    }
    check(
        "tiny * tiny underflows to 0",
        |f| d::mul(MIN_NORM64, MIN_NORM64, Rne, f),
        0,
        UF | NX,
    );
    check(
        "tiny * tiny RUP",
        |f| d::mul(MIN_NORM64, MIN_NORM64, Rup, f),
        MIN_SUB64,
        UF | NX,
    );
}

#[test]
fn tininess_is_detected_after_rounding() {
    // (1 - 2^-25) * 2^-126 needs 25 bits: with an unbounded exponent it rounds (RNE, RUP, RMM)
    // to 2^-126, so it is not tiny: NX without UF. RTZ/RDN keep it below 2^-126: tiny.
    let x = b64((1.0 - 2f64.powi(-25)) * 2f64.powi(-126));
    for (rm, want, flags) in [
        (Rne, MIN_NORM32, NX),
        (Rmm, MIN_NORM32, NX),
        (Rup, MIN_NORM32, NX),
        (Rtz, MAX_SUB32, UF | NX),
        (Rdn, MAX_SUB32, UF | NX),
    ] {
        check(
            "f64->f32 just below min normal",
            |f| d::to_f32(x, rm, f),
            want,
            flags,
        );
    }
    // (1 - 2^-24) * 2^-126 has 24 bits: exactly representable at unbounded exponent, so tiny,
    // yet as a subnormal it is a tie that RNE rounds up to 2^-126: UF and NX with a normal result.
    let a = b32(1.0 - 2f32.powi(-24));
    check(
        "mul to min normal, tiny",
        |f| s::mul(a, MIN_NORM32, Rne, f),
        MIN_NORM32,
        UF | NX,
    );
    check(
        "mul to max sub, RTZ",
        |f| s::mul(a, MIN_NORM32, Rtz, f),
        MAX_SUB32,
        UF | NX,
    );
    // The same in binary64 through fma: (1 - 2^-54) * 2^-1022 via a * b + 0.
    let a64 = b64(1.0 - 2f64.powi(-53));
    check(
        "f64 mul tiny tie",
        |f| d::mul(a64, MIN_NORM64, Rne, f),
        MIN_NORM64,
        UF | NX,
    );
    // (1 - 2^-52) * (1 + 2^-52) * 2^-1022 = (1 - 2^-104) * 2^-1022: with an unbounded
    // exponent it rounds (RNE, RUP) to 2^-1022, so it is not tiny: NX only. RTZ keeps it tiny.
    let (p, q) = (0x3fef_ffff_ffff_fffe, MIN_NORM64 + 1);
    check(
        "f64 mul not tiny after rounding",
        |f| d::mul(p, q, Rne, f),
        MIN_NORM64,
        NX,
    );
    check(
        "f64 mul not tiny after rounding RUP",
        |f| d::mul(p, q, Rup, f),
        MIN_NORM64,
        NX,
    );
    check(
        "f64 fma not tiny after rounding",
        |f| d::fma(p, q, NEG64, Rne, f),
        MIN_NORM64,
        NX,
    );
    check(
        "f64 mul tiny in RTZ",
        |f| d::mul(p, q, Rtz, f),
        MIN_NORM64 - 1,
        UF | NX,
    );
    check(
        "f64 fma tiny in RDN",
        |f| d::fma(p, q, 0, Rdn, f),
        MIN_NORM64 - 1,
        UF | NX,
    );
}

#[test]
fn overflow_in_every_mode() {
    let neg_max = MAX32 | NEG32;
    let neg_inf = INF32 | NEG32;
    for (rm, pos, neg) in [
        (Rne, INF32, neg_inf),
        (Rmm, INF32, neg_inf),
        (Rtz, MAX32, neg_max),
        (Rdn, MAX32, neg_inf),
        (Rup, INF32, neg_max),
    ] {
        check("max + max", |f| s::add(MAX32, MAX32, rm, f), pos, OF | NX);
        check(
            "-max * 2",
            |f| s::mul(neg_max, b32(2.0), rm, f),
            neg,
            OF | NX,
        );
        check(
            "max / 0.5",
            |f| s::div(MAX32, b32(0.5), rm, f),
            pos,
            OF | NX,
        );
    }
    for (rm, pos) in [
        (Rne, INF64),
        (Rmm, INF64),
        (Rtz, MAX64),
        (Rdn, MAX64),
        (Rup, INF64),
    ] {
        check(
            "f64 max * 1.5",
            |f| d::mul(MAX64, b64(1.5), rm, f),
            pos,
            OF | NX,
        );
        check(
            "f64 1e300 -> f32",
            |f| d::to_f32(b64(1e300), rm, f),
            if pos == INF64 { INF32 } else { MAX32 },
            OF | NX,
        );
    }
    // max + half an ulp of max: a tie that RNE rounds to even (the odd max goes up: overflow),
    // while a quarter ulp stays at max with NX only.
    let half_ulp = b32(2f32.powi(127 - 24));
    check(
        "max + ulp/2 RNE",
        |f| s::add(MAX32, half_ulp, Rne, f),
        INF32,
        OF | NX,
    );
    check(
        "max + ulp/4 RNE",
        |f| s::add(MAX32, b32(2f32.powi(127 - 25)), Rne, f),
        MAX32,
        NX,
    );
    check(
        "max + ulp/4 RUP",
        |f| s::add(MAX32, b32(2f32.powi(127 - 25)), Rup, f),
        INF32,
        OF | NX,
    );
}

#[test]
fn mul_and_div_specials() {
    check("0 * inf", |f| s::mul(0, INF32, Rne, f), QN32, NV);
    check("inf * -0", |f| d::mul(INF64, NEG64, Rne, f), QN64, NV);
    check("-0 * 5", |f| s::mul(NEG32, b32(5.0), Rne, f), NEG32, 0);
    check(
        "-inf * -2",
        |f| s::mul(INF32 | NEG32, b32(-2.0), Rne, f),
        INF32,
        0,
    );
    check("0 / 0", |f| s::div(0, NEG32, Rne, f), QN32, NV);
    check(
        "inf / inf",
        |f| d::div(INF64, INF64 | NEG64, Rne, f),
        QN64,
        NV,
    );
    check("1 / 0", |f| s::div(b32(1.0), 0, Rne, f), INF32, DZ);
    check(
        "-1 / +0",
        |f| d::div(b64(-1.0), 0, Rne, f),
        INF64 | NEG64,
        DZ,
    );
    check(
        "1 / -0",
        |f| s::div(b32(1.0), NEG32, Rne, f),
        INF32 | NEG32,
        DZ,
    );
    check("min_sub / 0", |f| s::div(MIN_SUB32, 0, Rne, f), INF32, DZ);
    check("inf / 0 has no DZ", |f| s::div(INF32, 0, Rne, f), INF32, 0);
    check("qNaN / 0", |f| s::div(QNAN32_PAYLOAD, 0, Rne, f), QN32, 0);
    check("sNaN / 0", |f| d::div(SNAN64, 0, Rne, f), QN64, NV);
    check(
        "1 / inf",
        |f| s::div(b32(1.0), INF32 | NEG32, Rne, f),
        NEG32,
        0,
    );
    check(
        "1/3 RNE",
        |f| s::div(b32(1.0), b32(3.0), Rne, f),
        0x3eaa_aaab,
        NX,
    );
    check(
        "1/3 RTZ",
        |f| s::div(b32(1.0), b32(3.0), Rtz, f),
        0x3eaa_aaaa,
        NX,
    );
    check(
        "1/3 f64 RNE",
        |f| d::div(b64(1.0), b64(3.0), Rne, f),
        0x3fd5_5555_5555_5555,
        NX,
    );
    check(
        "1/3 f64 RUP",
        |f| d::div(b64(1.0), b64(3.0), Rup, f),
        0x3fd5_5555_5555_5556,
        NX,
    );
    check(
        "6/3 exact",
        |f| d::div(b64(6.0), b64(3.0), Rup, f),
        b64(2.0),
        0,
    );
    check(
        "max sub / max sub",
        |f| s::div(MAX_SUB32, MAX_SUB32, Rne, f),
        b32(1.0),
        0,
    );
}

#[test]
fn sqrt_cases() {
    check("sqrt 4", |f| s::sqrt(b32(4.0), Rne, f), b32(2.0), 0);
    check("sqrt -0", |f| s::sqrt(NEG32, Rne, f), NEG32, 0);
    check("sqrt +0", |f| d::sqrt(0, Rne, f), 0, 0);
    check("sqrt -1", |f| s::sqrt(b32(-1.0), Rne, f), QN32, NV);
    check(
        "sqrt -min_sub",
        |f| d::sqrt(MIN_SUB64 | NEG64, Rne, f),
        QN64,
        NV,
    );
    check("sqrt -inf", |f| s::sqrt(INF32 | NEG32, Rne, f), QN32, NV);
    check("sqrt inf", |f| d::sqrt(INF64, Rne, f), INF64, 0);
    check("sqrt sNaN", |f| s::sqrt(SNAN32, Rne, f), QN32, NV);
    check("sqrt -qNaN", |f| s::sqrt(QNAN32_PAYLOAD, Rne, f), QN32, 0);
    check("sqrt 2 RNE", |f| s::sqrt(b32(2.0), Rne, f), 0x3fb5_04f3, NX);
    check("sqrt 2 RUP", |f| s::sqrt(b32(2.0), Rup, f), 0x3fb5_04f4, NX);
    check(
        "sqrt 2 f64 RNE",
        |f| d::sqrt(b64(2.0), Rne, f),
        0x3ff6_a09e_667f_3bcd,
        NX,
    );
    check(
        "sqrt 2 f64 RTZ",
        |f| d::sqrt(b64(2.0), Rtz, f),
        0x3ff6_a09e_667f_3bcc,
        NX,
    );
    // 2^-149 = 2^-150 * 2: the root is 2^-75 * sqrt(2)... check the exact odd-exponent square.
    check(
        "sqrt min_sub32 * 4 = 2^-73.5?",
        |f| s::sqrt(b32(2f32.powi(-148)), Rne, f),
        b32(2f32.powi(-74)),
        0,
    );
    check(
        "sqrt min_sub64 (2^-1074)",
        |f| d::sqrt(MIN_SUB64, Rne, f),
        b64(2f64.powi(-537)),
        0,
    );
    check(
        "sqrt max64",
        |f| d::sqrt(MAX64, Rne, f),
        0x5fef_ffff_ffff_ffff,
        NX,
    );
}

#[test]
fn fma_cases() {
    let one = b32(1.0);
    for rm in Rounding::ALL {
        let zero = if rm == Rdn { NEG32 } else { 0 };
        check("1*1 - 1", |f| s::fma(one, one, b32(-1.0), rm, f), zero, 0);
        check("-0*1 + +0", |f| s::fma(NEG32, one, 0, rm, f), zero, 0);
        check("+0*1 + -0", |f| s::fma(0, one, NEG32, rm, f), zero, 0);
        check("-0*1 + -0", |f| s::fma(NEG32, one, NEG32, rm, f), NEG32, 0);
        check(
            "+0*-1 + -0",
            |f| s::fma(0, b32(-1.0), NEG32, rm, f),
            NEG32,
            0,
        );
        let zero64 = if rm == Rdn { NEG64 } else { 0 };
        check(
            "f64 2*3 - 6",
            |f| d::fma(b64(2.0), b64(3.0), b64(-6.0), rm, f),
            zero64,
            0,
        );
        // A non-zero product that rounds to zero keeps its own sign: no exact zero sum.
        let want = if matches!(rm, Rup | Rmm) {
            MIN_SUB64
        } else {
            0
        };
        check(
            "tiny product + -0",
            |f| d::fma(MIN_SUB64, b64(0.5), NEG64, rm, f),
            want,
            UF | NX,
        );
    }
    check(
        "inf * 0 + qNaN",
        |f| s::fma(INF32, 0, QN32, Rne, f),
        QN32,
        NV,
    );
    check(
        "0 * inf + qNaN (f64)",
        |f| d::fma(0, INF64, QN64, Rne, f),
        QN64,
        NV,
    );
    check("0 * inf + 1", |f| s::fma(0, INF32, one, Rne, f), QN32, NV);
    check("qNaN * 0 + 1", |f| s::fma(QN32, 0, one, Rne, f), QN32, 0);
    check(
        "1 * 1 + sNaN",
        |f| s::fma(one, one, SNAN32, Rne, f),
        QN32,
        NV,
    );
    check(
        "inf * 1 - inf",
        |f| d::fma(INF64, b64(1.0), INF64 | NEG64, Rne, f),
        QN64,
        NV,
    );
    check(
        "inf * 1 + inf",
        |f| d::fma(INF64, b64(1.0), INF64, Rne, f),
        INF64,
        0,
    );
    check(
        "1 * 1 + inf",
        |f| s::fma(one, one, INF32 | NEG32, Rne, f),
        INF32 | NEG32,
        0,
    );
    check(
        "0 * 1 + 5 is exact",
        |f| s::fma(0, one, b32(5.0), Rne, f),
        b32(5.0),
        0,
    );
    // One rounding: (1 + 2^-23)(1 - 2^-23) - 1 = -2^-46 exactly; two roundings would give 0.
    check(
        "fused",
        |f| s::fma(one + 1, b32(1.0 - 2f32.powi(-23)), b32(-1.0), Rne, f),
        b32(-(2f32.powi(-46))),
        0,
    );
    let one64 = b64(1.0);
    check(
        "fused f64",
        |f| d::fma(one64 + 1, b64(1.0 - 2f64.powi(-52)), b64(-1.0), Rne, f),
        b64(-(2f64.powi(-104))),
        0,
    );
    check(
        "fma overflow RTZ",
        |f| d::fma(MAX64, b64(2.0), b64(-1.0), Rtz, f),
        MAX64,
        OF | NX,
    );
}

#[test]
fn min_max() {
    let one = b32(1.0);
    check("min(-0, +0)", |f| s::min(NEG32, 0, f), NEG32, 0);
    check("min(+0, -0)", |f| s::min(0, NEG32, f), NEG32, 0);
    check("max(-0, +0)", |f| s::max(NEG32, 0, f), 0, 0);
    check("max(+0, -0)", |f| d::max(0, NEG64, f), 0, 0);
    check("min(qNaN, 1)", |f| s::min(QNAN32_PAYLOAD, one, f), one, 0);
    check("max(1, qNaN)", |f| s::max(one, QNAN32_PAYLOAD, f), one, 0);
    check("min(sNaN, 1)", |f| s::min(SNAN32, one, f), one, NV);
    check(
        "max(1, sNaN) f64",
        |f| d::max(b64(1.0), SNAN64, f),
        b64(1.0),
        NV,
    );
    check(
        "min(qNaN, qNaN)",
        |f| s::min(QNAN32_PAYLOAD, QNAN32_PAYLOAD, f),
        QN32,
        0,
    );
    check("max(sNaN, qNaN)", |f| d::max(SNAN64, QN64, f), QN64, NV);
    check(
        "min(-1, 2)",
        |f| s::min(b32(-1.0), b32(2.0), f),
        b32(-1.0),
        0,
    );
    check(
        "max(-1, -2)",
        |f| d::max(b64(-1.0), b64(-2.0), f),
        b64(-1.0),
        0,
    );
    check(
        "min(-inf, -max)",
        |f| s::min(MAX32 | NEG32, INF32 | NEG32, f),
        INF32 | NEG32,
        0,
    );
    check("max(min_sub, 0)", |f| s::max(0, MIN_SUB32, f), MIN_SUB32, 0);
}

#[test]
fn comparisons() {
    let one = b32(1.0);
    check("eq(+0, -0)", |f| s::eq(0, NEG32, f), true, 0);
    check("le(-0, +0)", |f| s::le(NEG32, 0, f), true, 0);
    check("lt(-0, +0)", |f| s::lt(NEG32, 0, f), false, 0);
    check("lt(+0, -0)", |f| d::lt(0, NEG64, f), false, 0);
    check("eq(qNaN, qNaN)", |f| s::eq(QN32, QN32, f), false, 0);
    check("eq(sNaN, 1)", |f| s::eq(SNAN32, one, f), false, NV);
    check("lt(qNaN, 1)", |f| s::lt(QN32, one, f), false, NV);
    check("le(1, qNaN) f64", |f| d::le(b64(1.0), QN64, f), false, NV);
    check("lt(-2, -1)", |f| s::lt(b32(-2.0), b32(-1.0), f), true, 0);
    check("lt(-1, -2)", |f| s::lt(b32(-1.0), b32(-2.0), f), false, 0);
    check("lt(-1, 1)", |f| d::lt(b64(-1.0), b64(1.0), f), true, 0);
    check("le(1, 1)", |f| s::le(one, one, f), true, 0);
    check("lt(1, 1)", |f| s::lt(one, one, f), false, 0);
    check(
        "lt(-inf, -max)",
        |f| s::lt(INF32 | NEG32, MAX32 | NEG32, f),
        true,
        0,
    );
    check("le(inf, inf)", |f| d::le(INF64, INF64, f), true, 0);
    check(
        "lt(min_sub, min_norm)",
        |f| s::lt(MIN_SUB32, MIN_NORM32, f),
        true,
        0,
    );
}

#[test]
fn classify_every_class() {
    let cases32 = [
        (INF32 | NEG32, 0),
        (b32(-1.5), 1),
        (MAX_SUB32 | NEG32, 2),
        (NEG32, 3),
        (0, 4),
        (MIN_SUB32, 5),
        (MIN_NORM32, 6),
        (INF32, 7),
        (SNAN32, 8),
        (0xff80_0001, 8),
        (QN32, 9),
        (QNAN32_PAYLOAD, 9),
    ];
    for (x, bit) in cases32 {
        assert_eq!(s::classify(x), 1 << bit, "fclass.s {x:#x}");
    }
    let cases64 = [
        (INF64 | NEG64, 0),
        (MAX64 | NEG64, 1),
        (MIN_SUB64 | NEG64, 2),
        (NEG64, 3),
        (0, 4),
        (0x000f_ffff_ffff_ffff, 5),
        (b64(1.0), 6),
        (INF64, 7),
        (SNAN64, 8),
        (QN64, 9),
    ];
    for (x, bit) in cases64 {
        assert_eq!(d::classify(x), 1 << bit, "fclass.d {x:#x}");
    }
}

#[test]
fn float_to_int_limits() {
    let two31 = b64(2147483648.0);
    let max_half = b64(2147483647.5);
    let min_minus_1 = b64(-2147483649.0);
    let min_minus_half = b64(-2147483648.5);
    for rm in Rounding::ALL {
        check("2^31 -> i32", |f| d::to_i32(two31, rm, f), i32::MAX, NV);
        check(
            "f32 2^31 -> i32",
            |f| s::to_i32(b32(2147483648.0), rm, f),
            i32::MAX,
            NV,
        );
        check(
            "-2^31 -> i32",
            |f| s::to_i32(b32(-2147483648.0), rm, f),
            i32::MIN,
            0,
        );
        check(
            "-2^31-1 -> i32",
            |f| d::to_i32(min_minus_1, rm, f),
            i32::MIN,
            NV,
        );
        check(
            "NaN -> i32",
            |f| s::to_i32(QNAN32_PAYLOAD, rm, f),
            i32::MAX,
            NV,
        );
        check(
            "-NaN -> i64",
            |f| d::to_i64(QN64 | NEG64, rm, f),
            i64::MAX,
            NV,
        );
        check(
            "-inf -> i32",
            |f| s::to_i32(INF32 | NEG32, rm, f),
            i32::MIN,
            NV,
        );
        check("-inf -> u64", |f| d::to_u64(INF64 | NEG64, rm, f), 0, NV);
        check("NaN -> u32", |f| d::to_u32(SNAN64, rm, f), u32::MAX, NV);
        check("-1 -> u32", |f| s::to_u32(b32(-1.0), rm, f), 0, NV);
        check("-0 -> u32", |f| s::to_u32(NEG32, rm, f), 0, 0);
        check(
            "2^32 -> u32",
            |f| d::to_u32(b64(4294967296.0), rm, f),
            u32::MAX,
            NV,
        );
        check(
            "u32 max -> u32",
            |f| d::to_u32(b64(4294967295.0), rm, f),
            u32::MAX,
            0,
        );
        check(
            "2^63 -> i64",
            |f| d::to_i64(b64(9223372036854775808.0), rm, f),
            i64::MAX,
            NV,
        );
        check(
            "-2^63 -> i64",
            |f| d::to_i64(b64(-9223372036854775808.0), rm, f),
            i64::MIN,
            0,
        );
        check(
            "2^63 -> u64",
            |f| s::to_u64(b32(9223372036854775808.0), rm, f),
            1 << 63,
            0,
        );
        check(
            "2^64 (u64 max as f64) -> u64",
            |f| d::to_u64(b64(18446744073709551615.0), rm, f),
            u64::MAX,
            NV,
        );
        check(
            "2^64 - 2048 -> u64",
            |f| d::to_u64(0x43ef_ffff_ffff_ffff, rm, f),
            u64::MAX - 2047,
            0,
        );
        check("max f64 -> i64", |f| d::to_i64(MAX64, rm, f), i64::MAX, NV);
        check(
            "min_sub -> i64 sign",
            |f| d::to_i64(MIN_SUB64 | NEG64, rm, f),
            if rm == Rdn { -1 } else { 0 },
            NX,
        );
    }
    // 2^31 - 0.5: a tie between 2^31 - 1 (odd) and 2^31 (out of range).
    for (rm, want, flags) in [
        (Rne, i32::MAX, NV),
        (Rmm, i32::MAX, NV),
        (Rup, i32::MAX, NV),
        (Rtz, i32::MAX, NX),
        (Rdn, i32::MAX, NX),
    ] {
        check(
            "2^31-0.5 -> i32",
            |f| d::to_i32(max_half, rm, f),
            want,
            flags,
        );
    }
    // -2^31 - 0.5: RNE ties to the even -2^31, RMM away to -2^31-1 (out of range).
    for (rm, want, flags) in [
        (Rne, i32::MIN, NX),
        (Rmm, i32::MIN, NV),
        (Rup, i32::MIN, NX),
        (Rtz, i32::MIN, NX),
        (Rdn, i32::MIN, NV),
    ] {
        check(
            "-2^31-0.5 -> i32",
            |f| d::to_i32(min_minus_half, rm, f),
            want,
            flags,
        );
    }
    // Negative to unsigned: fine (NX only) if it rounds to zero, invalid otherwise.
    for (rm, want_flags) in [(Rne, NX), (Rtz, NX), (Rup, NX), (Rdn, NV), (Rmm, NV)] {
        check(
            "-0.5 -> u32",
            |f| s::to_u32(b32(-0.5), rm, f),
            0,
            want_flags,
        );
        check(
            "-0.5 -> u64",
            |f| d::to_u64(b64(-0.5), rm, f),
            0,
            want_flags,
        );
    }
    for (rm, want) in [(Rne, 2), (Rtz, 2), (Rdn, 2), (Rup, 3), (Rmm, 3)] {
        check("2.5 -> i32", |f| s::to_i32(b32(2.5), rm, f), want, NX);
    }
    for (rm, want) in [(Rne, -2), (Rtz, -2), (Rdn, -3), (Rup, -2), (Rmm, -3)] {
        check("-2.5 -> i64", |f| d::to_i64(b64(-2.5), rm, f), want, NX);
    }
    for (rm, want) in [(Rne, 4), (Rtz, 3), (Rdn, 3), (Rup, 4), (Rmm, 4)] {
        check("3.5 -> u64", |f| s::to_u64(b32(3.5), rm, f), want, NX);
    }
}

#[test]
fn int_to_float() {
    for rm in Rounding::ALL {
        check("0 -> +0", |f| s::from_i32(0, rm, f), 0, 0);
        check("0 -> +0 (u64)", |f| d::from_u64(0, rm, f), 0, 0);
        check(
            "i64::MIN",
            |f| d::from_i64(i64::MIN, rm, f),
            b64(-9223372036854775808.0),
            0,
        );
        check(
            "i32::MIN -> f32",
            |f| s::from_i32(i32::MIN, rm, f),
            b32(-2147483648.0),
            0,
        );
        check(
            "i32::MAX -> f64",
            |f| d::from_i32(i32::MAX, rm, f),
            b64(2147483647.0),
            0,
        );
        check(
            "u32::MAX -> f64",
            |f| d::from_u32(u32::MAX, rm, f),
            b64(4294967295.0),
            0,
        );
    }
    let two64 = b32(18446744073709551616.0);
    for (rm, want) in [
        (Rne, two64),
        (Rmm, two64),
        (Rup, two64),
        (Rtz, two64 - 1),
        (Rdn, two64 - 1),
    ] {
        check(
            "u64::MAX -> f32",
            |f| s::from_u64(u64::MAX, rm, f),
            want,
            NX,
        );
    }
    let two53 = b64(9007199254740992.0);
    for (rm, want) in [
        (Rne, two53),
        (Rtz, two53),
        (Rdn, two53),
        (Rup, two53 + 1),
        (Rmm, two53 + 1),
    ] {
        check(
            "2^53 + 1 -> f64",
            |f| d::from_u64((1 << 53) + 1, rm, f),
            want,
            NX,
        );
    }
    for (rm, want) in [
        (Rne, two53),
        (Rtz, two53),
        (Rdn, two53 + 1),
        (Rup, two53),
        (Rmm, two53 + 1),
    ] {
        check(
            "-(2^53 + 1) -> f64",
            |f| d::from_i64(-(1 << 53) - 1, rm, f),
            want | NEG64,
            NX,
        );
    }
    // i32::MAX needs 31 bits: f32 rounds it to 2^31.
    check(
        "i32::MAX -> f32 RNE",
        |f| s::from_i32(i32::MAX, Rne, f),
        b32(2147483648.0),
        NX,
    );
    check(
        "i32::MAX -> f32 RTZ",
        |f| s::from_i32(i32::MAX, Rtz, f),
        b32(2147483520.0),
        NX,
    );
}

#[test]
fn format_conversions() {
    check("f32 sNaN -> f64", |f| s::to_f64(SNAN32, f), QN64, NV);
    check(
        "f32 qNaN payload -> f64",
        |f| s::to_f64(QNAN32_PAYLOAD, f),
        QN64,
        0,
    );
    check(
        "f32 min_sub -> f64",
        |f| s::to_f64(MIN_SUB32, f),
        b64(2f64.powi(-149)),
        0,
    );
    check(
        "f32 -max_sub -> f64",
        |f| s::to_f64(MAX_SUB32 | NEG32, f),
        b64(-(2f64.powi(-126) - 2f64.powi(-149))),
        0,
    );
    check(
        "f32 -inf -> f64",
        |f| s::to_f64(INF32 | NEG32, f),
        INF64 | NEG64,
        0,
    );
    check("f32 -0 -> f64", |f| s::to_f64(NEG32, f), NEG64, 0);
    check(
        "f32 max -> f64",
        |f| s::to_f64(MAX32, f),
        b64(f64::from(f32::MAX)),
        0,
    );
    check("f64 sNaN -> f32", |f| d::to_f32(SNAN64, Rne, f), QN32, NV);
    check("f64 -0 -> f32", |f| d::to_f32(NEG64, Rup, f), NEG32, 0);
    check(
        "f64 min_sub -> f32 RNE",
        |f| d::to_f32(MIN_SUB64, Rne, f),
        0,
        UF | NX,
    );
    check(
        "f64 min_sub -> f32 RUP",
        |f| d::to_f32(MIN_SUB64, Rup, f),
        MIN_SUB32,
        UF | NX,
    );
    check(
        "f64 -min_sub -> f32 RDN",
        |f| d::to_f32(MIN_SUB64 | NEG64, Rdn, f),
        MIN_SUB32 | NEG32,
        UF | NX,
    );
    check(
        "f64 0.1 -> f32 RNE",
        |f| d::to_f32(b64(0.1), Rne, f),
        b32(0.1),
        NX,
    );
    check(
        "f64 2^-149 -> f32 exact",
        |f| d::to_f32(b64(2f64.powi(-149)), Rne, f),
        MIN_SUB32,
        0,
    );
    check(
        "f64 2^-150 -> f32 tie RNE",
        |f| d::to_f32(b64(2f64.powi(-150)), Rne, f),
        0,
        UF | NX,
    );
    check(
        "f64 2^-150 -> f32 tie RMM",
        |f| d::to_f32(b64(2f64.powi(-150)), Rmm, f),
        MIN_SUB32,
        UF | NX,
    );
}
