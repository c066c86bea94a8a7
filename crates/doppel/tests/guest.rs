//! The real guest on the real machine: Linux built from Debian's sources (guest/build.sh) boots,
//! draws on the framebuffer, reads keys from virtio-input, writes to the virtio disk, and does so
//! identically every time. The guest is found in `$DOPPEL_GUEST_DIR`, else
//! `$DOPPEL_CACHE/guest/current`, else `~/.cache/doppel/guest/current`; `scripts/test.sh` builds
//! it first. A missing guest fails the tests (it never skips them).

use std::path::Path;
use std::process::Command;

use doppel_host::disk::FileDisk;
use doppel_machine::devices::DevicesConfig;
use doppel_machine::machine::{Exit, Machine, MachineConfig};
use doppel_machine::InputEvent;
use doppel_testkit::{guest_config, guest_file, Scripted};

fn config(cmdline: &str) -> MachineConfig {
    guest_config(cmdline)
}

/// Guest instructions a test may spend before it is declared stuck.
const BUDGET: u64 = 1_500_000_000;
const SLICE: u64 = 1_000_000;

/// Run until `done(console)` holds or the guest stops; returns the exit if it stopped.
fn run_until(m: &mut Machine, env: &mut Scripted, done: impl Fn(&str) -> bool) -> Option<Exit> {
    while m.icount() < BUDGET {
        if done(&env.console()) {
            return None;
        }
        match m.run(env, m.icount() + SLICE) {
            Exit::Limit => {}
            other => return Some(other),
        }
    }
    panic!(
        "guest did not get there in {BUDGET} instructions; at {}\nconsole:\n{}",
        m.location(),
        env.console()
    );
}

fn power_off_code(m: &mut Machine, env: &mut Scripted) -> u32 {
    match run_until(m, env, |_| false) {
        Some(Exit::PowerOff(code)) => code,
        other => panic!(
            "expected power-off, got {other:?} at {}\nconsole:\n{}",
            m.location(),
            env.console()
        ),
    }
}

#[test]
fn linux_boots_to_init_and_powers_off() {
    let mut m = Machine::new(config("doppel.run=poweroff")).unwrap();
    let mut env = Scripted::default();
    assert_eq!(power_off_code(&mut m, &mut env), 0);
    let console = env.console();
    assert!(console.contains("Linux version 6.1"), "{console}");
    assert!(console.contains("doppel-init: reached"), "{console}");
    assert!(console.contains("doppel-run: poweroff exit=0"), "{console}");
}

#[test]
fn a_guest_program_draws_on_dev_fb0_and_the_host_reads_the_same_pixels() {
    let mut m = Machine::new(config("doppel.run=fbpattern doppel.hold=5")).unwrap();
    let mut env = Scripted::default();
    run_until(&mut m, &mut env, |c| c.contains("fbpattern: done"));
    assert!(
        env.console().contains("fbpattern: done 640x480"),
        "{}",
        env.console()
    );
    let fb = m.framebuffer().expect("the machine has a framebuffer");
    assert_eq!((fb.width, fb.height), (640, 480));
    let mut wrong = 0;
    for y in 0..fb.height {
        for x in 0..fb.width {
            let at = (y * fb.stride + x * 4) as usize;
            let got = u32::from_le_bytes(fb.pixels[at..at + 4].try_into().unwrap()) & 0x00ff_ffff;
            let want = ((x & 255) << 16) | ((y & 255) << 8) | ((x ^ y) & 255);
            if got != want {
                wrong += 1;
                assert!(wrong < 5, "pixel ({x},{y}) is {got:#08x}, want {want:#08x}");
            }
        }
    }
    assert_eq!(wrong, 0);
}

#[test]
fn a_key_injected_through_the_environment_reaches_dev_input() {
    let mut m = Machine::new(config("doppel.run=evread doppel.args=4")).unwrap();
    let mut env = Scripted::default();
    run_until(&mut m, &mut env, |c| c.contains("evread: ready"));
    // KEY_A down and up, then a tablet click.
    env.queue.extend([
        InputEvent::Key {
            code: 30,
            down: true,
        },
        InputEvent::Key {
            code: 30,
            down: false,
        },
        InputEvent::PointerButton {
            code: 0x110,
            down: true,
        },
        InputEvent::PointerButton {
            code: 0x110,
            down: false,
        },
    ]);
    assert_eq!(power_off_code(&mut m, &mut env), 0);
    let console = env.console();
    let events: Vec<&str> = console
        .lines()
        .filter(|l| l.starts_with("key ") || l.starts_with("btn "))
        .collect();
    assert_eq!(
        events,
        ["key 30 1", "key 30 0", "btn 272 1", "btn 272 0"],
        "{console}"
    );
    assert!(console.contains("doppel-run: evread exit=0"), "{console}");
}

fn file_hash(path: &Path) -> [u8; 32] {
    *blake3::hash(&std::fs::read(path).unwrap()).as_bytes()
}

#[test]
fn a_file_the_guest_writes_lands_in_the_overlay_and_the_base_image_is_untouched() {
    let dir = std::env::temp_dir().join(format!("doppel-guest-disk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let image = dir.join("base.img");
    let base: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
    std::fs::write(&image, &base).unwrap();
    let before = file_hash(&image);

    let mut cfg = config("doppel.run=diskwrite doppel.args=8");
    cfg.devices = DevicesConfig {
        disk: Some(Box::new(FileDisk::open(&image).unwrap())),
        ..DevicesConfig::default()
    };
    let mut m = Machine::new(cfg).unwrap();
    let mut env = Scripted::default();
    assert_eq!(power_off_code(&mut m, &mut env), 0, "{}", env.console());
    assert!(env.console().contains("read back ok"), "{}", env.console());

    // Sector 8 is byte 4096: the start of overlay page 1.
    let overlay = m.bus.devices.block().expect("a block device").overlay();
    let page = overlay
        .page(1)
        .expect("the guest's write is in the overlay");
    assert!(page.starts_with(b"doppel-disk-test"));
    assert!(page[16..].iter().all(|&b| b == 0));
    assert_eq!(file_hash(&image), before, "the base image was modified");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn two_boots_with_the_same_inputs_have_equal_state_at_every_checkpoint() {
    // Keys arrive at fixed instruction counts; the second run is sliced differently.
    let checkpoints = [30_000_000u64, 60_000_000, 90_000_000, 140_000_000];
    let keys_at = 100_000_000u64;
    let run = |slice: u64| {
        let mut m = Machine::new(config("doppel.run=evread doppel.args=2")).unwrap();
        let mut env = Scripted::default();
        let mut hashes = Vec::new();
        for &stop in &checkpoints {
            while m.icount() < stop {
                if m.icount() == keys_at {
                    env.queue.extend([
                        InputEvent::Key {
                            code: 44,
                            down: true,
                        },
                        InputEvent::Key {
                            code: 44,
                            down: false,
                        },
                    ]);
                }
                let mut next = (m.icount() + slice).min(stop);
                if m.icount() < keys_at {
                    next = next.min(keys_at);
                }
                match m.run(&mut env, next) {
                    Exit::Limit => {}
                    other => panic!("stopped early: {other:?} at {}", m.location()),
                }
            }
            hashes.push((m.icount(), m.state_hash(), m.now()));
        }
        (hashes, env.console())
    };
    let (a, console_a) = run(1_000_000);
    let (b, console_b) = run(777_777);
    assert_eq!(console_a, console_b);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "state differs at instruction {}", x.0);
    }
    assert!(
        console_a.contains("evread: ready"),
        "the run did not get far enough:\n{console_a}"
    );
}

fn doppel(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_doppel"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// `doppel vm run` with the test guest's kernel and initramfs, and `extra` options.
fn vm_run_guest(extra: &[&str]) -> (i32, String) {
    let kernel = guest_file("Image");
    let initrd = guest_file("initramfs.cpio");
    let mut args = vec!["vm", "run", "--kernel", kernel.to_str().unwrap(), "--initrd", initrd.to_str().unwrap()];
    args.extend_from_slice(extra);
    doppel(&args)
}

#[test]
fn vm_run_names_a_missing_or_corrupt_image() {
    let (code, text) = doppel(&["vm", "run", "--kernel", "/nonexistent/Image"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("kernel") && text.contains("/nonexistent/Image"),
        "{text}"
    );

    let dir = std::env::temp_dir().join(format!("doppel-bad-kernel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let junk = dir.join("junk");
    std::fs::write(&junk, vec![0xa5u8; 4096]).unwrap();
    let (code, text) = doppel(&["vm", "run", "--kernel", junk.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.to_lowercase().contains("image"), "{text}");

    let kernel = guest_file("Image");
    let (code, text) = doppel(&[
        "vm",
        "run",
        "--kernel",
        kernel.to_str().unwrap(),
        "--disk",
        "/nonexistent/disk.img",
    ]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("/nonexistent/disk.img"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn vm_run_stops_at_max_instructions_and_says_where() {
    let (code, text) = vm_run_guest(&[
        "--max-instructions",
        "5000000",
    ]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.contains("stopped after 5000000 instructions") && text.contains("pc="),
        "{text}"
    );
}

#[test]
fn vm_run_boots_the_guest_and_exits_with_its_power_off() {
    let (code, text) = vm_run_guest(&[
        "--append",
        "console=ttyS0 doppel.run=poweroff",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("doppel-init: reached"), "{text}");
}

#[test]
fn vm_run_restarts_the_machine_when_the_guest_reboots() {
    // An init that cannot start makes the kernel panic; with panic=-1 it reboots at once
    // (SBI system reset), and `vm run` boots it again, until --max-instructions.
    let (code, text) = vm_run_guest(&[
        "--append",
        "console=ttyS0 rdinit=/nonexistent init=/nonexistent panic=-1",
        "--max-instructions",
        "250000000",
    ]);
    assert_eq!(code, 3, "{text}");
    assert!(
        text.matches("restarting the machine").count() >= 1,
        "{text}"
    );
    assert!(text.matches("Linux version").count() >= 2, "{text}");
}

#[test]
fn vm_run_traces_every_instruction_it_runs() {
    let kernel = guest_file("Image");
    let dir = std::env::temp_dir().join(format!("doppel-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trace = dir.join("trace.txt");
    let (code, text) = doppel(&[
        "vm",
        "run",
        "--kernel",
        kernel.to_str().unwrap(),
        "--max-instructions",
        "20000",
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(code, 3, "{text}");
    let lines: Vec<String> = std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    // One line per instruction, counted from 0, the first at the kernel's entry in S-mode.
    assert_eq!(lines.len(), 20_000);
    assert!(
        lines[0].starts_with("0 S 0000000080200000 "),
        "{}",
        lines[0]
    );
    for (n, line) in lines.iter().enumerate() {
        let icount: usize = line.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(icount, n, "{line}");
    }
    assert!(lines.iter().any(|l| l.contains(" auipc ") || l.contains(" jal ")));
    std::fs::remove_dir_all(&dir).unwrap();
}
