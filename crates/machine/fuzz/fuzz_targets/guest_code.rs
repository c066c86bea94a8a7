//! Arbitrary bytes as a bare-metal program: decoding and executing whatever the guest throws at
//! the CPU (any instruction, CSR, privilege change, page table) must never panic the host.
#![no_main]

use doppel_machine::{BootMode, Machine, MachineConfig, NullEnvironment};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() || data.starts_with(b"\x7fELF") {
        return;
    }
    let config = MachineConfig {
        ram_size: 1 << 20,
        kernel: data.to_vec(),
        framebuffer: None,
        boot: BootMode::BareMetal,
        ..MachineConfig::default()
    };
    if let Ok(mut m) = Machine::new(config) {
        let mut env = NullEnvironment::default();
        let _ = m.run(&mut env, 20_000);
        let _ = m.location();
    }
});
