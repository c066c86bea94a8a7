//! Guest speed on a CPU-bound bare-metal loop, in millions of guest instructions per second.
//!
//! Run: `cargo run -p doppel-machine --release --example mips [-- <instructions>]`
//!
//! The guest program (assembled from the source below, embedded as bytes so the example needs no
//! cross compiler) mixes ALU work, a load and a store per 12-instruction iteration:
//!
//! ```text
//! _start: li s0, 0x80010000; li s1, 0x7f4a7c15; li s2, 0; li s3, -1
//! loop:   andi t0, s2, 1023; slli t0, t0, 3; add t0, t0, s0; ld t1, 0(t0)
//!         xor t1, t1, s1; add t1, t1, s2; srli t2, t1, 7; xor t1, t1, t2
//!         sd t1, 0(t0); add s1, s1, t1; addi s2, s2, 1; bne s2, s3, loop
//!         j _start
//! ```

// A benchmark is host code: it reads the wall clock to measure.
#![allow(clippy::disallowed_methods)]

use std::time::Instant;

use doppel_machine::{BootMode, Exit, Machine, MachineConfig, NullEnvironment};

const LOOP: [u8; 58] = [
    0x21, 0x64, 0x05, 0x24, 0x42, 0x04, 0xb7, 0x84, 0x4a, 0x7f, 0x9b, 0x84, 0x54, 0xc1, 0x01, 0x49, 0xfd, 0x59,
    0x93, 0x72, 0xf9, 0x3f, 0x8e, 0x02, 0xa2, 0x92, 0x03, 0xb3, 0x02, 0x00, 0x33, 0x43, 0x93, 0x00, 0x4a, 0x93,
    0x93, 0x53, 0x73, 0x00, 0x33, 0x43, 0x73, 0x00, 0x23, 0xb0, 0x62, 0x00, 0x9a, 0x94, 0x05, 0x09, 0xe3, 0x1f,
    0x39, 0xfd, 0xe1, 0xb7,
];

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(500_000_000);
    let config = MachineConfig {
        ram_size: 16 << 20,
        kernel: LOOP.to_vec(),
        framebuffer: None,
        boot: BootMode::BareMetal,
        ..MachineConfig::default()
    };
    let mut m = Machine::new(config).expect("machine builds");
    let mut env = NullEnvironment::default();
    let start = Instant::now();
    let exit = m.run(&mut env, n);
    let secs = start.elapsed().as_secs_f64();
    assert!(matches!(exit, Exit::Limit), "{exit:?} at {}", m.location());
    #[allow(clippy::cast_precision_loss)] // a rate for humans
    let mips = m.icount() as f64 / secs / 1e6;
    println!("{} instructions in {secs:.3} s: {mips:.0} M instructions/s", m.icount());
}
