//! Arbitrary bytes as a kernel Image (Linux boot) and as an ELF (bare metal): every malformed
//! header must be a clear error, never a panic.
#![no_main]

use doppel_machine::{BootMode, Machine, MachineConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for boot in [BootMode::Linux, BootMode::BareMetal] {
        let config = MachineConfig {
            ram_size: 8 << 20,
            kernel: data.to_vec(),
            initrd: Some(data.iter().rev().copied().collect()),
            framebuffer: Some((64, 48)),
            boot,
            ..MachineConfig::default()
        };
        let _ = Machine::new(config);
    }
});
