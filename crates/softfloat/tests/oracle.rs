//! Randomised differential tests: every operation, both formats, all five rounding modes,
//! compared on result bits AND flags with Berkeley SoftFloat (RISC-V specialisation), and RNE
//! arithmetic compared with the host FPU as a second oracle.
//!
//! Inputs are biased to where bugs live: exponents at the ends of the range and around the
//! bias, subnormals, zeros, infinities, quiet and signalling NaNs, significands with long runs of
//! ones or zeros (ties and carries), and related operand pairs (near-cancellation, exact
//! quotients and squares, fma addends that nearly cancel the product, integers at the limits).
//!
//! Default run: a few thousand cases per operation and mode. Soak:
//! `SOFTFLOAT_SOAK_N=2000000 cargo test -p doppel-softfloat --release --test oracle -- --ignored`

// Bit-pattern plumbing between integer widths is the point of these tests.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

#[path = "support/reference.rs"]
mod reference;

use doppel_softfloat::{f32 as s, f64 as d, Flags, Rounding};
use reference::{ours32, ours64, reference32, reference64, Op, OPS};

/// splitmix64: small, seedable, good enough to spread test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Field widths of a format, so one generator serves both.
#[derive(Clone, Copy)]
struct Fmt {
    exp_bits: u32,
    frac_bits: u32,
}

const F32: Fmt = Fmt {
    exp_bits: 8,
    frac_bits: 23,
};
const F64: Fmt = Fmt {
    exp_bits: 11,
    frac_bits: 52,
};

impl Fmt {
    fn exp_max(self) -> u64 {
        (1 << self.exp_bits) - 1
    }
    fn bias(self) -> u64 {
        (1 << (self.exp_bits - 1)) - 1
    }
    fn frac_mask(self) -> u64 {
        (1 << self.frac_bits) - 1
    }
    fn pack(self, sign: bool, exp: u64, frac: u64) -> u64 {
        (u64::from(sign) << (self.exp_bits + self.frac_bits))
            | (exp << self.frac_bits)
            | (frac & self.frac_mask())
    }

    /// A fraction with structure: random, sparse, runs of ones at the top or bottom, etc.
    fn frac(self, r: &mut Rng) -> u64 {
        let m = self.frac_mask();
        match r.below(8) {
            0..=2 => r.next() & m,
            3 => 0,
            4 => m,
            5 => (m >> r.below(u64::from(self.frac_bits))) & m, // low run of ones
            6 => (m << r.below(u64::from(self.frac_bits))) & m, // high run of ones
            _ => (1u64 << r.below(u64::from(self.frac_bits))) | (r.next() & 3), // sparse
        }
    }

    /// An exponent field biased to the interesting places.
    fn exp(self, r: &mut Rng) -> u64 {
        let max = self.exp_max();
        let bias = self.bias();
        match r.below(8) {
            0 => r.below(4),                                // subnormal / smallest normals
            1 => max - 1 - r.below(3),                      // largest finite
            2 => max,                                       // inf / NaN
            3 | 4 => bias - 40 + r.below(80),               // around 1.0
            5 => bias + 28 + r.below(40),                   // around the integer limits
            6 => (bias / 2).saturating_sub(3) + r.below(6), // squares and products near underflow
            _ => r.below(max + 1),
        }
    }

    fn value(self, r: &mut Rng) -> u64 {
        if r.chance(10) {
            return r.next() & (u64::MAX >> (64 - 1 - self.exp_bits - self.frac_bits));
        }
        let sign = r.chance(50);
        let exp = self.exp(r);
        let mut frac = self.frac(r);
        if exp == self.exp_max() && frac != 0 && r.chance(50) {
            // Keep NaNs half quiet, half signalling.
            frac ^= 1 << (self.frac_bits - 1);
        }
        self.pack(sign, exp, frac)
    }

    /// A neighbour of `v`: a few ulps away, maybe the other sign, maybe the next binade.
    fn near(self, r: &mut Rng, v: u64) -> u64 {
        let delta = r.below(5);
        let w = if r.chance(50) {
            v.wrapping_add(delta)
        } else {
            v.wrapping_sub(delta)
        };
        let sign = 1u64 << (self.exp_bits + self.frac_bits);
        let w = if r.chance(50) { w ^ sign } else { w };
        w & (u64::MAX >> (63 - self.exp_bits - self.frac_bits))
    }
}

/// Operands for one case. `ours`/`reference` take integers from `a` for the from-int ops.
fn operands(fmt: Fmt, op: Op, r: &mut Rng, mul: impl Fn(u64, u64) -> u64) -> (u64, u64, u64) {
    let mut a = fmt.value(r);
    let mut b = fmt.value(r);
    let mut c = fmt.value(r);
    match op {
        Op::Add | Op::Sub | Op::Min | Op::Max | Op::Eq | Op::Lt | Op::Le if r.chance(40) => {
            b = fmt.near(r, a)
        }
        Op::Div if r.chance(30) => {
            // An exact quotient: a = b * small.
            let small = fmt.pack(
                false,
                fmt.bias() + r.below(8),
                r.next() & (0xf << (fmt.frac_bits - 4)),
            );
            a = mul(b, small);
        }
        Op::Sqrt if r.chance(40) => {
            let sq = mul(
                a & !(1 << (fmt.exp_bits + fmt.frac_bits)),
                a & !(1 << (fmt.exp_bits + fmt.frac_bits)),
            );
            a = fmt.near(r, sq) & !(1 << (fmt.exp_bits + fmt.frac_bits));
        }
        Op::Fma if r.chance(40) => {
            // Addend close to minus the rounded product: deep cancellation, exact zeros.
            c = fmt.near(r, mul(a, b) ^ (1 << (fmt.exp_bits + fmt.frac_bits)));
        }
        Op::FromI32 | Op::FromU32 | Op::FromI64 | Op::FromU64 => {
            a = match r.below(4) {
                0 => r.next(),
                1 => r.next() >> r.below(64),
                2 => (r.next() >> r.below(64)).wrapping_neg(),
                _ => {
                    // Around powers of two and the type limits.
                    let p = 1u64 << r.below(64);
                    p.wrapping_add(r.below(9)).wrapping_sub(4)
                }
            };
        }
        Op::ToI32 | Op::ToU32 | Op::ToI64 | Op::ToU64 if r.chance(40) => {
            // Within a few ulps of +-2^k for k near 31, 32, 63, 64, and of small halves.
            let k = [0, 1, 2, 30, 31, 32, 33, 62, 63, 64, 65][r.below(11) as usize];
            let p = fmt.pack(r.chance(50), fmt.bias() + k, 0);
            a = fmt.near(r, p);
            if r.chance(30) {
                // x.5 values
                let half = fmt.pack(false, fmt.bias() - 1, 0);
                a = mul(
                    fmt.near(r, p) & !(1 << (fmt.exp_bits + fmt.frac_bits)),
                    half,
                );
                a ^= u64::from(r.chance(50)) << (fmt.exp_bits + fmt.frac_bits);
            }
        }
        _ => {}
    }
    (a, b, c)
}

fn cases() -> usize {
    std::env::var("SOFTFLOAT_SOAK_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000)
}

fn describe(
    rm: Rounding,
    a: u64,
    b: u64,
    c: u64,
    ours: (u64, Flags),
    want: (u64, Flags),
) -> String {
    format!(
        "{rm:?} a={a:#x} b={b:#x} c={c:#x}: ours {:#x} flags {:#04x}, reference {:#x} flags {:#04x}",
        ours.0,
        ours.1.bits(),
        want.0,
        want.1.bits()
    )
}

fn diff32(seed: u64, n: usize) {
    let mut failures = Vec::new();
    for (i, op) in OPS.iter().copied().enumerate() {
        let mut r = Rng(seed ^ (i as u64) << 32);
        for rm in Rounding::ALL {
            if !op.rounds() && rm != Rounding::Rne {
                continue;
            }
            for _ in 0..n {
                let mul = |x: u64, y: u64| {
                    u64::from(s::mul(
                        x as u32,
                        y as u32,
                        Rounding::Rne,
                        &mut Flags::default(),
                    ))
                };
                let (a, b, c) = operands(F32, op, &mut r, mul);
                let (a32, b32, c32) = (a as u32, b as u32, c as u32);
                let ours = ours32(op, a32, b32, c32, a, rm);
                let want = reference32(op, a32, b32, c32, a, rm);
                if ours != want && failures.len() < 20 {
                    failures.push(format!("f32 {op:?} {}", describe(rm, a, b, c, ours, want)));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn diff64(seed: u64, n: usize) {
    let mut failures = Vec::new();
    for (i, op) in OPS.iter().copied().enumerate() {
        let mut r = Rng(seed ^ (i as u64) << 32);
        for rm in Rounding::ALL {
            if !op.rounds() && rm != Rounding::Rne {
                continue;
            }
            for _ in 0..n {
                let mul = |x: u64, y: u64| d::mul(x, y, Rounding::Rne, &mut Flags::default());
                let (a, b, c) = operands(F64, op, &mut r, mul);
                let ours = ours64(op, a, b, c, rm);
                let want = reference64(op, a, b, c, rm);
                if ours != want && failures.len() < 20 {
                    failures.push(format!("f64 {op:?} {}", describe(rm, a, b, c, ours, want)));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn f32_matches_softfloat_riscv() {
    diff32(0x5eed_0001, cases());
}

#[test]
fn f64_matches_softfloat_riscv() {
    diff64(0x5eed_0002, cases());
}

#[test]
#[ignore = "soak: SOFTFLOAT_SOAK_N=2000000 cargo test -p doppel-softfloat --release --test oracle -- --ignored"]
fn soak_f32() {
    let n = std::env::var("SOFTFLOAT_SOAK_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    diff32(0x50a4_0001 ^ n as u64, n);
}

#[test]
#[ignore = "soak: SOFTFLOAT_SOAK_N=2000000 cargo test -p doppel-softfloat --release --test oracle -- --ignored"]
fn soak_f64() {
    let n = std::env::var("SOFTFLOAT_SOAK_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    diff64(0x50a4_0002 ^ n as u64, n);
}

/// The host FPU (IEEE 754, RNE, no flush-to-zero in Rust) as a second, independent oracle for
/// the values of the basic operations. NaN results only need to be NaNs on the host side.
#[test]
fn rne_matches_host_fpu() {
    let n = cases() * 5;
    let mut failures = Vec::new();
    let mut r = Rng(0x0057_f00d);
    let rm = Rounding::Rne;
    for _ in 0..n {
        let mul32 =
            |x: u64, y: u64| u64::from(s::mul(x as u32, y as u32, rm, &mut Flags::default()));
        let (a, b, c) = operands(F32, Op::Fma, &mut r, mul32);
        let (a, b, c) = (a as u32, b as u32, c as u32);
        let (x, y, z) = (f32::from_bits(a), f32::from_bits(b), f32::from_bits(c));
        let fl = &mut Flags::default();
        let checks: [(&str, u32, f32); 6] = [
            ("add", s::add(a, b, rm, fl), x + y),
            ("sub", s::sub(a, b, rm, fl), x - y),
            ("mul", s::mul(a, b, rm, fl), x * y),
            ("div", s::div(a, b, rm, fl), x / y),
            ("sqrt", s::sqrt(a, rm, fl), x.sqrt()),
            ("fma", s::fma(a, b, c, rm, fl), x.mul_add(y, z)),
        ];
        for (name, ours, host) in checks {
            let ok = if host.is_nan() {
                ours == doppel_softfloat::F32_CANONICAL_NAN
            } else {
                ours == host.to_bits()
            };
            if !ok && failures.len() < 20 {
                failures.push(format!(
                    "f32 {name} a={a:#x} b={b:#x} c={c:#x}: ours {ours:#x} host {:#x}",
                    host.to_bits()
                ));
            }
        }

        let mul64 = |x: u64, y: u64| d::mul(x, y, rm, &mut Flags::default());
        let (a, b, c) = operands(F64, Op::Fma, &mut r, mul64);
        let (x, y, z) = (f64::from_bits(a), f64::from_bits(b), f64::from_bits(c));
        let checks: [(&str, u64, f64); 6] = [
            ("add", d::add(a, b, rm, fl), x + y),
            ("sub", d::sub(a, b, rm, fl), x - y),
            ("mul", d::mul(a, b, rm, fl), x * y),
            ("div", d::div(a, b, rm, fl), x / y),
            ("sqrt", d::sqrt(a, rm, fl), x.sqrt()),
            ("fma", d::fma(a, b, c, rm, fl), x.mul_add(y, z)),
        ];
        for (name, ours, host) in checks {
            let ok = if host.is_nan() {
                ours == doppel_softfloat::F64_CANONICAL_NAN
            } else {
                ours == host.to_bits()
            };
            if !ok && failures.len() < 20 {
                failures.push(format!(
                    "f64 {name} a={a:#x} b={b:#x} c={c:#x}: ours {ours:#x} host {:#x}",
                    host.to_bits()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// A strided sweep of every binary32 bit pattern through the unary operations in all modes.
#[test]
#[ignore = "soak: cargo test -p doppel-softfloat --release --test oracle -- --ignored sweep"]
fn sweep_f32_unary() {
    let stride: u64 = std::env::var("SOFTFLOAT_SWEEP_STRIDE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1021);
    let unary = [
        Op::Sqrt,
        Op::ToI32,
        Op::ToU32,
        Op::ToI64,
        Op::ToU64,
        Op::Convert,
        Op::Classify,
    ];
    let mut failures = Vec::new();
    let mut bits = 0u64;
    while bits <= u64::from(u32::MAX) {
        let a = bits as u32;
        for op in unary {
            for rm in Rounding::ALL {
                if !op.rounds() && rm != Rounding::Rne {
                    continue;
                }
                let ours = ours32(op, a, 0, 0, 0, rm);
                let want = reference32(op, a, 0, 0, 0, rm);
                if ours != want && failures.len() < 20 {
                    failures.push(format!(
                        "f32 {op:?} {}",
                        describe(rm, u64::from(a), 0, 0, ours, want)
                    ));
                }
            }
        }
        bits += stride;
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
