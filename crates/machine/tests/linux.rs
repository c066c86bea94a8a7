//! Linux on the machine. Needs the guest built by `guest/build.sh`,
//! found in `$DOPPEL_GUEST_DIR` (exported by `scripts/test.sh`), else
//! `$DOPPEL_CACHE/guest/current` (default `~/.cache/doppel/guest/current`):
//!
//! ```sh
//! cargo test -p doppel-machine --test linux
//! ```

#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;

use doppel_machine::{Exit, Machine, MachineConfig, NullEnvironment};

fn guest_dir() -> PathBuf {
    // scripts/test.sh exports the directory of the guest it built.
    if let Some(dir) = std::env::var_os("DOPPEL_GUEST_DIR") {
        return PathBuf::from(dir);
    }
    let cache = std::env::var_os("DOPPEL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/doppel")))
        .expect("DOPPEL_CACHE or HOME is set");
    cache.join("guest/current")
}

fn machine() -> Machine {
    let dir = guest_dir();
    let read = |name: &str| {
        std::fs::read(dir.join(name)).unwrap_or_else(|e| {
            panic!("cannot read {} ({e}): build the guest first (guest/build.sh)", dir.join(name).display())
        })
    };
    let config = MachineConfig {
        kernel: read("Image"),
        initrd: Some(read("initramfs.cpio")),
        cmdline: "console=ttyS0 panic=-1".into(),
        ..MachineConfig::default()
    };
    Machine::new(config).expect("machine builds")
}

#[test]
fn linux_boots_to_init_identically_however_the_run_is_sliced() {
    const END: u64 = 120_000_000;
    let mut a = machine();
    let mut ea = NullEnvironment::default();
    let mut hashes_a = Vec::new();
    for stop in [END / 4, END / 2, END] {
        assert!(matches!(a.run(&mut ea, stop), Exit::Limit), "{}", a.location());
        hashes_a.push(a.state_hash());
    }
    let console = String::from_utf8_lossy(&ea.console).to_string();
    assert!(console.contains("Run /init as init process"), "console so far:\n{console}");

    let mut b = machine();
    let mut eb = NullEnvironment::default();
    let mut hashes_b = Vec::new();
    for stop in [END / 4, END / 2, END] {
        while b.icount() < stop {
            let next = (b.icount() + 999_983).min(stop);
            assert!(matches!(b.run(&mut eb, next), Exit::Limit), "{}", b.location());
        }
        hashes_b.push(b.state_hash());
    }
    assert_eq!(hashes_a, hashes_b);
    assert_eq!(ea.console, eb.console);
}

/// Boot with `doppel.run=<program>` and return the console once the guest powers off.
fn run_program(program: &str, iterations: u64) -> String {
    let dir = guest_dir();
    let read = |name: &str| std::fs::read(dir.join(name)).expect("guest built (guest/build.sh)");
    let config = MachineConfig {
        kernel: read("Image"),
        initrd: Some(read("initramfs.cpio")),
        cmdline: format!("console=ttyS0 panic=-1 doppel.run={program} doppel.args={iterations}"),
        ..MachineConfig::default()
    };
    let mut m = Machine::new(config).expect("machine builds");
    let mut env = NullEnvironment::default();
    let exit = m.run(&mut env, 2_000_000_000);
    let console = String::from_utf8_lossy(&env.console).to_string();
    assert!(matches!(exit, Exit::PowerOff(0)), "{exit:?} at {}\n{console}", m.location());
    console
}

/// What `guest/tools/reference.py` computes on the host for the same program.
fn reference(program: &str, iterations: u64) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guest/tools/reference.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args([program, &iterations.to_string()])
        .output()
        .expect("python3 runs guest/tools/reference.py");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Regression: user programs died with SIGILL in the vDSO's `rdtime` because scounteren was 0
/// (OpenSBI leaves 7). Also checks integer and F/D results bit for bit against the host.
#[test]
fn user_programs_compute_what_the_host_reference_computes() {
    for program in ["cpuloop", "fpuloop"] {
        let console = run_program(program, 200_000);
        let want = format!("result={}", reference(program, 200_000));
        assert!(console.contains(&want), "{program}: expected {want} in\n{console}");
        assert!(console.contains(&format!("doppel-run: {program} exit=0")), "{console}");
    }
}
