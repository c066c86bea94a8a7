//! Random programs must never panic the host: whatever the bytes decode to (illegal encodings,
//! CSR writes, privilege changes, wild jumps, stray page tables), the machine turns it into
//! guest exceptions. A cheap, deterministic stand-in for `fuzz/fuzz_targets/guest_code.rs`.

use doppel_machine::{BootMode, Exit, Machine, MachineConfig, NullEnvironment};

/// xorshift64*: a fixed stream, so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_programs_never_panic_and_always_stop_at_until() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for case in 0..300 {
        // Half the programs start by turning on the FPU so F/D encodings execute too.
        let mut code: Vec<u8> = if case % 2 == 0 {
            // lui t0, 0x6; csrs mstatus, t0
            [0x0000_62b7u32, 0x3002_a073].iter().flat_map(|w| w.to_le_bytes()).collect()
        } else {
            Vec::new()
        };
        for _ in 0..256 {
            code.extend_from_slice(&rng.next().to_le_bytes());
        }
        let config = MachineConfig {
            ram_size: 1 << 20,
            kernel: code,
            framebuffer: None,
            boot: BootMode::BareMetal,
            ..MachineConfig::default()
        };
        let mut m = Machine::new(config).expect("raw binary loads");
        let mut env = NullEnvironment::default();
        match m.run(&mut env, 20_000) {
            Exit::Limit => assert_eq!(m.icount(), 20_000, "case {case}"),
            // A random store may hit the syscon finisher, or the hart may idle with no timer.
            Exit::PowerOff(_) | Exit::Reset | Exit::Environment(_) => {}
        }
        assert!(m.location().starts_with("pc="), "case {case}");
    }
}
