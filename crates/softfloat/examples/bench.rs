//! Micro benchmark: ns per operation of the soft-float core next to the host FPU doing the same
//! operation (the anchor), over arrays of typical operands (normal numbers around 1.0, mixed
//! signs; positive for sqrt), measured as throughput of independent operations.
//!
//! `cargo run -p doppel-softfloat --release --example bench [-- ITERATIONS]`

// Bit-pattern plumbing and timing arithmetic; precision loss in the printed ratios is fine.
#![allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]

use std::hint::black_box;
use std::time::Instant;

use doppel_softfloat::{f32 as s, f64 as d, Flags, Rounding};

const N: usize = 4096;
/// Timed repetitions per figure; the best one is reported.
const REPS: usize = 60;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn inputs32(r: &mut Rng, positive: bool) -> Vec<u32> {
    (0..N)
        .map(|_| {
            let x = r.next();
            let sign = if positive { 0 } else { (x >> 63) as u32 };
            let exp = 127 - 20 + (x >> 40) as u32 % 40;
            (sign << 31) | (exp << 23) | (x as u32 & 0x007f_ffff)
        })
        .collect()
}

fn inputs64(r: &mut Rng, positive: bool) -> Vec<u64> {
    (0..N)
        .map(|_| {
            let x = r.next();
            let sign = if positive { 0 } else { x >> 63 };
            let exp = 1023 - 40 + (r.next() % 80);
            (sign << 63) | (exp << 52) | (x & 0x000f_ffff_ffff_ffff)
        })
        .collect()
}

/// Runs `f` over every index `iters` times, `REPS` times over; returns the best ns per call
/// (the machine is shared, so the minimum is the least disturbed figure).
fn time(iters: usize, mut f: impl FnMut(usize) -> u64) -> f64 {
    let mut acc = 0u64;
    for i in 0..N {
        acc ^= f(i); // warm-up
    }
    let mut best = f64::INFINITY;
    for _ in 0..REPS {
        let start = Instant::now();
        for _ in 0..iters {
            for i in 0..N {
                acc = acc.wrapping_add(f(i));
            }
        }
        best = best.min(start.elapsed().as_nanos() as f64 / (iters * N) as f64);
    }
    black_box(acc);
    best
}

fn row(name: &str, soft: f64, host: f64) {
    println!("{name:<10} {soft:>9.2} {host:>9.2} {:>8.1}x", soft / host);
}

fn main() {
    let iters: usize = std::env::args()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut r = Rng(42);
    let (a, b, c) = (
        inputs32(&mut r, false),
        inputs32(&mut r, false),
        inputs32(&mut r, false),
    );
    let p = inputs32(&mut r, true);
    let (x, y, z) = (
        inputs64(&mut r, false),
        inputs64(&mut r, false),
        inputs64(&mut r, false),
    );
    let q = inputs64(&mut r, true);
    let rm = Rounding::Rne;
    let hf = |v: &[u32], i: usize| f32::from_bits(black_box(v[i]));
    let hd = |v: &[u64], i: usize| f64::from_bits(black_box(v[i]));

    println!(
        "{:<10} {:>9} {:>9} {:>9}",
        "op", "soft ns", "host ns", "ratio"
    );
    let mut fl = Flags::default();
    row(
        "f32 add",
        time(iters, |i| u64::from(s::add(a[i], b[i], rm, &mut fl))),
        time(iters, |i| u64::from((hf(&a, i) + hf(&b, i)).to_bits())),
    );
    row(
        "f32 mul",
        time(iters, |i| u64::from(s::mul(a[i], b[i], rm, &mut fl))),
        time(iters, |i| u64::from((hf(&a, i) * hf(&b, i)).to_bits())),
    );
    row(
        "f32 div",
        time(iters, |i| u64::from(s::div(a[i], b[i], rm, &mut fl))),
        time(iters, |i| u64::from((hf(&a, i) / hf(&b, i)).to_bits())),
    );
    row(
        "f32 sqrt",
        time(iters, |i| u64::from(s::sqrt(p[i], rm, &mut fl))),
        time(iters, |i| u64::from(hf(&p, i).sqrt().to_bits())),
    );
    row(
        "f32 fma",
        time(iters, |i| u64::from(s::fma(a[i], b[i], c[i], rm, &mut fl))),
        time(iters, |i| {
            u64::from(hf(&a, i).mul_add(hf(&b, i), hf(&c, i)).to_bits())
        }),
    );
    row(
        "f64 add",
        time(iters, |i| d::add(x[i], y[i], rm, &mut fl)),
        time(iters, |i| (hd(&x, i) + hd(&y, i)).to_bits()),
    );
    row(
        "f64 mul",
        time(iters, |i| d::mul(x[i], y[i], rm, &mut fl)),
        time(iters, |i| (hd(&x, i) * hd(&y, i)).to_bits()),
    );
    row(
        "f64 div",
        time(iters, |i| d::div(x[i], y[i], rm, &mut fl)),
        time(iters, |i| (hd(&x, i) / hd(&y, i)).to_bits()),
    );
    row(
        "f64 sqrt",
        time(iters, |i| d::sqrt(q[i], rm, &mut fl)),
        time(iters, |i| hd(&q, i).sqrt().to_bits()),
    );
    row(
        "f64 fma",
        time(iters, |i| d::fma(x[i], y[i], z[i], rm, &mut fl)),
        time(iters, |i| hd(&x, i).mul_add(hd(&y, i), hd(&z, i)).to_bits()),
    );
    black_box(fl);
}
