//! Linux on the machine (heavy; ignored by default). Needs the guest built by the project's guest
//! scripts into `$DOPPEL_CACHE/guest/current` (default `~/.cache/doppel/guest/current`):
//!
//! ```sh
//! cargo test -p doppel-machine --release --test linux -- --ignored
//! ```

#![allow(clippy::disallowed_methods)]

use std::path::PathBuf;

use doppel_machine::{Exit, Machine, MachineConfig, NullEnvironment};

fn guest_dir() -> PathBuf {
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
#[ignore = "boots Linux: run with --ignored (see the module docs)"]
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
