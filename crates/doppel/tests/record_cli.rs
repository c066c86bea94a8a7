//! `doppel record` / `doppel replay` and `doppel host` / `doppel replica`, run as the built binary
//! on the real guest (found like in `guest.rs`: `$DOPPEL_GUEST_DIR`, else
//! `$DOPPEL_CACHE/guest/current`, else `~/.cache/doppel/guest/current`).
//!
//! * A scripted recording (a shell command typed on the UART, a disk write, two keys) with the
//!   snapshotted disk replays with exit 0 given the base image, and is refused without it.
//! * The same with the output-replayed disk, starting at an asynchronous snapshot of the running
//!   VM, replays with no disk image at all.
//! * A truncated snapshot, a snapshot from another version, a flipped bit in the log, and a log
//!   whose key event was changed each give a clear message and the documented exit status (1 for
//!   unreadable input, 4 for a divergence), never a panic or a hang.
//! * A replica follows a running host over TCP and matches its checkpoints and framebuffer hashes.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use doppel_machine::InputEvent;
use doppel_replay::wire::{self, Record};
use doppel_testkit::guest_file;

const WALL_LIMIT: Duration = Duration::from_secs(600);

fn doppel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_doppel"))
}

/// Run to completion with a wall-clock limit; returns (exit code, stderr).
fn run(cmd: &mut Command) -> (i32, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).unwrap();
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > WALL_LIMIT {
            let _ = child.kill();
            panic!("{cmd:?} still running after {WALL_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status.code().unwrap_or(-1), reader.join().unwrap())
}

fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("doppel-record-cli-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

fn disk() -> PathBuf {
    let path = dir().join("disk.img");
    if !path.exists() {
        let bytes: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        let tmp = dir().join("disk.img.tmp");
        std::fs::write(&tmp, bytes).unwrap();
        std::fs::rename(tmp, &path).unwrap();
    }
    path
}

const SCRIPT: &str = r##"# boot to the shell, write a disk block, type two keys
wait "starting a shell"
wait "# "
uart "diskwrite 8 && evread 2 && poweroff -f\n"
wait "evread: ready"
key 30 down
key 30 up
"##;

/// `doppel record` of the scripted run; returns the log path.
fn record(name: &str, extra: &[&str]) -> PathBuf {
    let script = dir().join("inputs.txt");
    std::fs::write(&script, SCRIPT).unwrap();
    let log = dir().join(name);
    let (code, err) = run(doppel()
        .args(["record", "-q", "--kernel"])
        .arg(guest_file("Image"))
        .arg("--initrd")
        .arg(guest_file("initramfs.cpio"))
        .args(["--memory", "128M", "--append", "console=ttyS0 panic=-1"])
        .arg("--disk")
        .arg(disk())
        .arg("--script")
        .arg(&script)
        .args(["--checkpoint-every", "20000000", "--full-every", "2"])
        .args(extra)
        .arg(&log));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("doppel: recorded"), "{err}");
    log
}

/// The snapshotted-disk recording, made once for every test that needs it.
fn snapshot_disk_log() -> &'static Path {
    static LOG: OnceLock<PathBuf> = OnceLock::new();
    LOG.get_or_init(|| record("snap.drr", &["--disk-mode", "snapshot"]))
}

fn replay(log: &Path, extra: &[&str]) -> (i32, String) {
    run(doppel().arg("replay").arg(log).args(extra))
}

#[test]
fn a_recording_with_the_snapshotted_disk_replays_with_the_base_image_and_is_refused_without_it() {
    let log = snapshot_disk_log();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(with_ext(log, ".json")).unwrap()).unwrap();
    assert_eq!(
        summary["exit"], "guest powered off with code 0",
        "{summary}"
    );
    assert_eq!(
        summary["kinds"]["events"]["records"], 3,
        "one UART line and two keys: {summary}"
    );
    assert_eq!(summary["kinds"]["disk_reads"]["records"], 0, "{summary}");

    let (code, err) = replay(log, &["--disk", disk().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("replay ok: the guest powered off with code 0, as recorded"),
        "{err}"
    );
    assert!(err.contains("replay is"), "no speed comparison: {err}");

    let (code, err) = replay(log, &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("base disk image"), "{err}");
}

#[test]
fn an_output_replayed_disk_recording_from_an_async_snapshot_replays_without_the_disk() {
    let log = record(
        "logged.drr",
        &["--disk-mode", "log", "--start-at", "60000000"],
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(with_ext(&log, ".json")).unwrap()).unwrap();
    assert!(
        summary["start_icount"].as_u64().unwrap() >= 60_000_000,
        "{summary}"
    );
    assert!(
        summary["kinds"]["disk_reads"]["records"].as_u64().unwrap() > 0,
        "{summary}"
    );
    let rounds = summary["async_snapshot"]["rounds"].as_u64().unwrap();
    assert!((1..=30).contains(&rounds), "{summary}");
    let (code, err) = replay(&log, &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("replay ok: the guest powered off with code 0"),
        "{err}"
    );
}

fn with_ext(p: &Path, ext: &str) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(ext);
    PathBuf::from(s)
}

#[test]
fn bad_snapshots_and_logs_give_clear_errors_and_documented_exit_codes() {
    let log = snapshot_disk_log();
    let disk_arg = disk();
    let disk_arg = disk_arg.to_str().unwrap();
    let snap = std::fs::read(with_ext(log, ".snap")).unwrap();

    // A truncated snapshot.
    let cut = dir().join("cut.snap");
    std::fs::write(&cut, &snap[..snap.len() / 2]).unwrap();
    let (code, err) = replay(
        log,
        &["--disk", disk_arg, "--snapshot", cut.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("truncated"), "{err}");

    // A snapshot from another version.
    let mut other = snap.clone();
    other[8] = other[8].wrapping_add(1);
    let other_path = dir().join("other.snap");
    std::fs::write(&other_path, &other).unwrap();
    let (code, err) = replay(
        log,
        &[
            "--disk",
            disk_arg,
            "--snapshot",
            other_path.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("version"), "{err}");

    // A flipped bit in the middle of the log.
    let bytes = std::fs::read(log).unwrap();
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x04;
    let (code, err) = replay_bytes("flipped.drr", log, &flipped, disk_arg);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("checksum") || err.contains("invalid"), "{err}");

    // Another key: a divergence, exit 4, with the instruction count.
    let (header, mut records) = wire::decode_all(&bytes).unwrap();
    let key = records.iter_mut().find_map(|r| match r {
        Record::Event {
            event: InputEvent::Key { code, .. },
            ..
        } => Some(code),
        _ => None,
    });
    *key.expect("the log has a key event") = 31;
    let tampered = wire::encode_all(&header, &records).unwrap();
    let (code, err) = replay_bytes("tampered.drr", log, &tampered, disk_arg);
    assert_eq!(code, 4, "{err}");
    assert!(
        err.contains("replay diverged") && err.contains("instruction"),
        "{err}"
    );
}

/// Replay `bytes` as a log beside `log`'s snapshot.
fn replay_bytes(name: &str, log: &Path, bytes: &[u8], disk: &str) -> (i32, String) {
    let path = dir().join(name);
    std::fs::write(&path, bytes).unwrap();
    let snap = with_ext(log, ".snap");
    replay(
        &path,
        &["--disk", disk, "--snapshot", snap.to_str().unwrap()],
    )
}

#[test]
fn a_replica_follows_a_running_host_and_matches_its_framebuffer_hashes() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut host = doppel()
        .args(["host", "--listen", &addr, "--kernel"])
        .arg(guest_file("Image"))
        .arg("--initrd")
        .arg(guest_file("initramfs.cpio"))
        .args(["--memory", "128M", "--checkpoint-every", "5000000"])
        .args([
            "--append",
            "console=ttyS0 doppel.run=cpuloop doppel.args=2000000000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = host.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    let mut console = String::new();
    while !console.contains("cpuloop: start") {
        match rx.recv_timeout(WALL_LIMIT.saturating_sub(started.elapsed())) {
            Ok(line) => {
                console.push_str(&line);
                console.push('\n');
            }
            Err(_) => {
                let _ = host.kill();
                panic!("the host's guest did not start cpuloop:\n{console}");
            }
        }
    }
    let (code, err) =
        run(doppel().args(["replica", &addr, "--no-cache", "--seconds", "20", "--stats"]));
    let host_alive = host.try_wait().unwrap().is_none();
    let _ = host.kill();
    let _ = host.wait();
    assert_eq!(code, 0, "{err}");
    assert!(host_alive, "the host stopped while the replica ran");
    let line = err
        .lines()
        .find(|l| l.contains("framebuffer hashes matched"))
        .unwrap_or_else(|| panic!("{err}"));
    // "... N checkpoints and M framebuffer hashes matched"
    let words: Vec<&str> = line.split_whitespace().collect();
    let fb = words[words.len() - 4].parse::<u64>().unwrap();
    let checkpoints = words[words.len() - 7].parse::<u64>().unwrap();
    assert!(fb >= 1 && checkpoints >= 1, "{line}");
}
