//! Shared helpers for the machine's integration tests: assembling test programs and running them.
#![allow(clippy::disallowed_methods, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use doppel_machine::{BootMode, Exit, Machine, MachineConfig, NullEnvironment};

pub const CC: &str = "riscv64-linux-gnu-gcc";

/// Assemble `tests/isa/<name>.S` (or any source path) into an ELF; returns its bytes.
pub fn assemble(src: &Path) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("doppel-isa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let stem = src.file_stem().expect("source has a name").to_string_lossy().to_string();
    let out: PathBuf = dir.join(format!("{stem}.elf"));
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/isa");
    let result = Command::new(CC)
        .args(["-nostdlib", "-static", "-march=rv64gc", "-mabi=lp64d", "-Wl,-Ttext=0x80000000", "-Wl,--build-id=none", "-Wl,-n", "-fno-pie", "-no-pie"])
        .arg("-I")
        .arg(&include)
        .arg("-o")
        .arg(&out)
        .arg(src)
        .output();
    let output = match result {
        Ok(o) => o,
        Err(e) => panic!("cannot run {CC} ({e}): install the RISC-V cross compiler with `bash scripts/setup.sh`"),
    };
    assert!(
        output.status.success(),
        "{CC} failed on {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::read(&out).expect("read assembled ELF")
}

pub fn isa_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/isa").join(format!("{name}.S"))
}

/// A bare-metal machine running `elf`.
pub fn bare_machine(elf: Vec<u8>) -> Machine {
    let config = MachineConfig {
        ram_size: 4 << 20,
        kernel: elf,
        framebuffer: None,
        boot: BootMode::BareMetal,
        ..MachineConfig::default()
    };
    Machine::new(config).expect("machine builds")
}

/// Assemble and run an ISA test; it must power off with code 0.
pub fn run_isa_test(name: &str) {
    let elf = assemble(&isa_source(name));
    let mut m = bare_machine(elf);
    let mut env = NullEnvironment::default();
    match m.run(&mut env, 50_000_000) {
        Exit::PowerOff(0) => {}
        Exit::PowerOff(code) => panic!("{name}: failed case {code:#x} at {}", m.location()),
        other => panic!("{name}: ended with {other:?} at {}", m.location()),
    }
}
