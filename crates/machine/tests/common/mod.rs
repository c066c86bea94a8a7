//! Shared helpers for the machine's integration tests: assembling test programs and running them.
#![allow(clippy::disallowed_methods, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use doppel_machine::{BootMode, Exit, Machine, MachineConfig, NullEnvironment};

pub const CC: &str = "riscv64-linux-gnu-gcc";

/// Assemble `tests/isa/<name>.S` (or any source path) into an ELF; returns its bytes.
pub fn assemble(src: &Path) -> Vec<u8> {
    std::fs::read(assemble_at(src, 0x8000_0000)).expect("read assembled ELF")
}

/// Assemble `src` as a raw binary whose text starts at `text`.
pub fn assemble_raw(src: &Path, text: u64) -> Vec<u8> {
    let elf = assemble_at(src, text);
    let bin = elf.with_extension("bin");
    let status = Command::new("riscv64-linux-gnu-objcopy")
        .args(["-O", "binary"])
        .arg(&elf)
        .arg(&bin)
        .status()
        .expect("run riscv64-linux-gnu-objcopy (install with `bash scripts/setup.sh`)");
    assert!(status.success(), "objcopy failed on {}", elf.display());
    std::fs::read(bin).expect("read raw binary")
}

fn assemble_at(src: &Path, text: u64) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("doppel-isa-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create temp dir");
    let stem = src.file_stem().expect("source has a name").to_string_lossy().to_string();
    // Tests run in parallel and may assemble the same source at once: one file per call.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out: PathBuf = dir.join(format!("{stem}-{n}.elf"));
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/isa");
    let result = Command::new(CC)
        .args(["-nostdlib", "-static", "-march=rv64gc", "-mabi=lp64d", "-Wl,--build-id=none", "-Wl,-n", "-fno-pie", "-no-pie"])
        .arg(format!("-Wl,-Ttext={text:#x}"))
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
    out
}

pub fn program_source(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/programs").join(format!("{name}.S"))
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
        Exit::PowerOff(code) => panic!(
            "{name}: failed case {code:#x} with a0={:#x} t1={:#x} at {}",
            m.cpu.reg(10),
            m.cpu.reg(6),
            m.location()
        ),
        other => panic!("{name}: ended with {other:?} at {}", m.location()),
    }
}
