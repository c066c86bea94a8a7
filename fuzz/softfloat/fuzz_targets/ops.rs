//! Runs one soft-float operation on arbitrary bits and compares result bits and flags with
//! Berkeley SoftFloat (RISC-V specialisation).
//!
//! Input: byte 0 picks the operation, byte 1 the rounding mode (mod 5), byte 2 the format
//! (even: binary32, odd: binary64), then up to three little-endian 8-byte operands (missing
//! bytes are zero; binary32 uses the low 32 bits). Integer conversions take their integer from
//! the first operand.
#![no_main]
#![allow(clippy::cast_possible_truncation)]

use doppel_softfloat::Rounding;
use libfuzzer_sys::fuzz_target;

#[path = "../../../crates/softfloat/tests/support/reference.rs"]
mod reference;

use reference::{ours32, ours64, reference32, reference64, OPS};

fn operand(data: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    let start = 3 + 8 * i;
    if start < data.len() {
        let end = data.len().min(start + 8);
        b[..end - start].copy_from_slice(&data[start..end]);
    }
    u64::from_le_bytes(b)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let op = OPS[usize::from(data[0]) % OPS.len()];
    let rm = Rounding::ALL[usize::from(data[1]) % 5];
    let (a, b, c) = (operand(data, 0), operand(data, 1), operand(data, 2));
    if data[2] & 1 == 0 {
        let (a32, b32, c32) = (a as u32, b as u32, c as u32);
        let ours = ours32(op, a32, b32, c32, a, rm);
        let want = reference32(op, a32, b32, c32, a, rm);
        assert_eq!(ours, want, "f32 {op:?} {rm:?} a={a32:#x} b={b32:#x} c={c32:#x} (int {a:#x})");
    } else {
        let ours = ours64(op, a, b, c, rm);
        let want = reference64(op, a, b, c, rm);
        assert_eq!(ours, want, "f64 {op:?} {rm:?} a={a:#x} b={b:#x} c={c:#x}");
    }
});
