//! Arbitrary guest RAM under a virtqueue: the descriptor-chain parser and the device-side ring
//! handling must never panic, hang or touch memory outside RAM.
//!
//! Input layout: byte 0 picks the queue size (2^(b % 9)), byte 1 picks where the rings sit; the
//! rest is the first bytes of a 64 KiB guest RAM (the remainder zero).
#![no_main]

use doppel_machine::devices::virtio::queue::parse_all;
use doppel_machine::GuestRam;
use libfuzzer_sys::fuzz_target;

const RAM_BASE: u64 = 0x8000_0000;
const RAM_SIZE: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let size = 1u16 << (data[0] % 9);
    // Ring placement: usually sane, sometimes misaligned or near the end of RAM.
    let shift = u64::from(data[1]) * 0x101;
    let mut ram = GuestRam::new(RAM_BASE, RAM_SIZE);
    let body = &data[2..data.len().min(RAM_SIZE + 2)];
    let _ = ram.write(RAM_BASE, body);
    let desc = RAM_BASE + (shift % 0x1000);
    let avail = RAM_BASE + 0x1000 + (shift % 0x800);
    let used = RAM_BASE + 0x2000 + shift;
    let _ = parse_all(&mut ram, size, desc, avail, used);
});
