//! Record/replay figures (issue 3), run by `bench/replay.sh`; every test here is `#[ignore]`d
//! (they take minutes). Run one with
//! `cargo test -p doppel-replay --test figures -- --ignored --nocapture --test-threads 1 NAME`.
//!
//! * `log_growth`: log growth in KB per guest second for the paper's Table 1 workloads on the real
//!   guest: idle, a CPU loop, a fork-heavy loop, a 100 MB file copy on ext2 (snapshotted and
//!   output-replayed disk), network receive in 4-byte reads over libslirp, typing, framebuffer
//!   animation. Each row boots the guest to its shell, types one command line whose output marks
//!   the start and end of the workload, and measures the log between the marks. Every recording
//!   is then replayed in full (all checkpoints verified) and its replay time reported.
//! * `record_overhead`: the same scripted run (boot, then cpuloop) recorded and unrecorded,
//!   alternating, best of three.
//! * `idle_replay_speed`: a guest that boots and sleeps, recorded on the real-time live
//!   environment, then replayed (idle time skipped).
//! * The fork-loop row of `log_growth` also takes an asynchronous snapshot of the running guest
//!   (256 MiB) and prints its rounds, total time and stall.
//!
//! Lines starting with `|` are Markdown table rows; `bench/replay.sh` prints them.

// Figures are printed as rounded floats and test patterns truncate to bytes on purpose.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss
)]

use std::io::Write;
use std::net::TcpListener;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use doppel_host::disk::FileDisk;
use doppel_host::live::{InputSender, LiveEnvironment, OutputSink};
use doppel_host::net::{self, NetMode, UserNetConfig};
use doppel_machine::devices::{DevicesConfig, DiskBase, EnvDisk};
use doppel_machine::{
    EnvError, Environment, Exit, IdleState, InputEvent, InstructionCount, Machine, MachineConfig,
    Output, Ticks, TIMEBASE_HZ,
};
use doppel_replay::snapshot::Step;
use doppel_replay::{
    fingerprint, AsyncOptions, AsyncSnapshot, LogStats, MachineInfo, RecordOptions, Recorder,
    ReplayStop, Replayer,
};
use doppel_testkit::{guest_config, Scripted};

const SLICE: u64 = 100_000;
const WALL_LIMIT: Duration = Duration::from_secs(600);

#[derive(Clone, Default)]
struct Console(Arc<Mutex<Vec<u8>>>);

impl OutputSink for Console {
    fn console(&mut self, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }
    fn net_tx(&mut self, _frame: &[u8]) {}
}

/// The environment of a row: scripted (idle time skipped to the next timer) or live (real time,
/// real network), plus the disk image the output-replayed disk reads from.
enum Kind {
    Scripted(Scripted),
    Live {
        live: LiveEnvironment,
        input: InputSender,
        console: Console,
    },
}

struct Env {
    kind: Kind,
    disk: Option<std::fs::File>,
    /// Instructions per tick of the machine (guest time = icount / ipt + warp).
    ipt: u64,
    /// Sum of the idle time handed out so far.
    warp: Ticks,
    /// Keys due at guest times (ticks), delivered by `poll` and woken for by `idle`.
    keys: std::collections::VecDeque<(Ticks, InputEvent)>,
    /// The console as seen by `output`, for the marks.
    seen: Vec<u8>,
    /// Guest time (ticks) at which the console printed BEGIN and END.
    begin_at: Option<Ticks>,
    end_at: Option<Ticks>,
}

impl Env {
    fn console(&self) -> String {
        match &self.kind {
            Kind::Scripted(s) => s.console(),
            Kind::Live { console, .. } => {
                String::from_utf8_lossy(&console.0.lock().unwrap()).into_owned()
            }
        }
    }

    fn send(&mut self, event: InputEvent) {
        match &mut self.kind {
            Kind::Scripted(s) => s.push([event]),
            Kind::Live { input, .. } => {
                input.send(event);
            }
        }
    }
}

impl Environment for Env {
    fn poll(&mut self, icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        let now = icount / self.ipt + self.warp;
        if self.keys.front().is_some_and(|k| k.0 <= now) {
            return Ok(self.keys.pop_front().map(|k| k.1));
        }
        match &mut self.kind {
            Kind::Scripted(s) => s.poll(icount),
            Kind::Live { live, .. } => live.poll(icount),
        }
    }
    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError> {
        let due = self.keys.front().map(|k| k.0);
        if due.is_some_and(|d| d <= state.now) {
            return Ok(0);
        }
        let ticks = match &mut self.kind {
            Kind::Scripted(s) => s.idle(state),
            Kind::Live { live, .. } => live.idle(state),
        };
        let ticks = match (ticks, due) {
            (Ok(t), Some(d)) => t.min(d - state.now),
            (Err(_), Some(d)) => d - state.now,
            (t, None) => t?,
        };
        self.warp += ticks;
        Ok(ticks)
    }
    fn entropy(&mut self, icount: InstructionCount, buf: &mut [u8]) {
        match &mut self.kind {
            Kind::Scripted(s) => s.entropy(icount, buf),
            Kind::Live { live, .. } => live.entropy(icount, buf),
        }
    }
    fn output(&mut self, icount: InstructionCount, output: Output<'_>) {
        if let Output::Console(bytes) = output {
            self.seen.extend_from_slice(bytes);
            let now = icount / self.ipt + self.warp;
            let tail = &self.seen[self.seen.len().saturating_sub(bytes.len() + 8)..];
            let has = |m: &[u8]| tail.windows(m.len()).any(|w| w == m);
            if self.begin_at.is_none() && has(b"\nBEGIN") {
                self.begin_at = Some(now);
            } else if self.begin_at.is_some() && self.end_at.is_none() && has(b"\nEND") {
                self.end_at = Some(now);
            }
        }
        match &mut self.kind {
            Kind::Scripted(s) => {
                s.output(icount, output);
                s.inner.net_tx.clear();
            }
            Kind::Live { live, .. } => live.output(icount, output),
        }
    }
    fn disk_read(
        &mut self,
        _icount: InstructionCount,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), EnvError> {
        let f = self
            .disk
            .as_ref()
            .ok_or_else(|| EnvError::msg("no disk image"))?;
        f.read_exact_at(buf, offset)
            .map_err(|e| EnvError(Box::new(e)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Disk {
    None,
    Snapshotted,
    Logged,
}

/// One row of the table.
struct Row {
    name: &'static str,
    /// The shell command between the start and end marks.
    command: String,
    disk: Disk,
    live_net: bool,
    /// Send a key press every this many guest seconds between the marks.
    typing: Option<f64>,
    /// Run an asynchronous snapshot right after the start mark.
    async_snapshot: bool,
    ram: usize,
}

impl Row {
    fn new(name: &'static str, command: impl Into<String>) -> Row {
        Row {
            name,
            command: command.into(),
            disk: Disk::None,
            live_net: false,
            typing: None,
            async_snapshot: false,
            ram: 128 << 20,
        }
    }
}

/// What one recorded row measured.
struct Measured {
    guest_s: f64,
    log_bytes: u64,
    stats: LogStats,
    record_wall: f64,
    replay_wall: f64,
    row_wall: f64,
    instructions: u64,
}

fn secs(ticks: Ticks) -> f64 {
    ticks as f64 / TIMEBASE_HZ as f64
}

fn big_disk() -> PathBuf {
    let dir = std::env::temp_dir().join("doppel-replay-figures");
    let image = dir.join("ext2.img");
    if image.exists() {
        return image;
    }
    std::fs::create_dir_all(dir.join("root")).unwrap();
    let mut data = vec![0u8; 100 << 20];
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(dir.join("root/big"), &data).unwrap();
    let tmp = dir.join("ext2.img.tmp");
    let _ = std::fs::remove_file(&tmp);
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-b", "4096", "-d"])
        .arg(dir.join("root"))
        .arg(&tmp)
        .arg("256M")
        .output()
        .expect("mke2fs runs (e2fsprogs, scripts/setup.sh)");
    assert!(
        out.status.success(),
        "mke2fs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::rename(&tmp, &image).unwrap();
    image
}

fn record_row(row: &Row) -> Measured {
    let (listener, payload_port) = if row.live_net {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        (Some(l), p)
    } else {
        (None, 0)
    };
    let server = listener.map(|l| {
        thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let data: Vec<u8> = (0..256usize << 10)
                .map(|i| (i * 13 + i / 251) as u8)
                .collect();
            s.write_all(&data).unwrap();
        })
    });
    let command = row.command.replace("PORT", &payload_port.to_string());
    let image = (row.disk != Disk::None).then(big_disk);
    let disk: Option<Box<dyn DiskBase>> = match (row.disk, &image) {
        (Disk::Snapshotted, Some(p)) => Some(Box::new(FileDisk::open(p).unwrap())),
        (Disk::Logged, Some(p)) => Some(Box::new(EnvDisk {
            len: std::fs::metadata(p).unwrap().len(),
        })),
        _ => None,
    };
    let served = match (row.disk, &image) {
        (Disk::Logged, Some(p)) => Some(std::fs::File::open(p).unwrap()),
        _ => None,
    };
    let config = MachineConfig {
        ram_size: row.ram,
        devices: DevicesConfig {
            disk,
            ..DevicesConfig::default()
        },
        ..guest_config("")
    };
    let replay_config = |image: &Option<PathBuf>| MachineConfig {
        ram_size: row.ram,
        devices: DevicesConfig {
            disk: match (row.disk, image) {
                (Disk::Snapshotted, Some(p)) => {
                    Some(Box::new(FileDisk::open(p).unwrap()) as Box<dyn DiskBase>)
                }
                (Disk::Logged, Some(p)) => Some(Box::new(EnvDisk {
                    len: std::fs::metadata(p).unwrap().len(),
                }) as _),
                _ => None,
            },
            ..DevicesConfig::default()
        },
        ..guest_config("")
    };
    let info = MachineInfo::of(&config);
    let fp = fingerprint(&config);
    let mut m = Machine::new(config).unwrap();
    let kind = if row.live_net {
        let console = Console::default();
        let (mut live, input) = LiveEnvironment::new(Box::new(console.clone()));
        live.set_network(
            net::start(NetMode::User, UserNetConfig::default(), &input)
                .unwrap()
                .unwrap(),
        );
        Kind::Live {
            live,
            input,
            console,
        }
    } else {
        Kind::Scripted(Scripted::default())
    };
    let env = Env {
        kind,
        disk: served,
        ipt: 10,
        warp: 0,
        keys: Default::default(),
        seen: Vec::new(),
        begin_at: None,
        end_at: None,
    };
    let mut rec = Recorder::new(env, Vec::new(), &m, fp, RecordOptions::default()).unwrap();
    let started = Instant::now();
    let mut typed = false;
    let mut keys_queued = false;
    let mut begin: Option<(Ticks, u64, LogStats, Instant, u64)> = None;
    let mut snap: Option<(AsyncSnapshot, Instant)> = None;
    let end = loop {
        assert!(
            started.elapsed() < WALL_LIMIT,
            "{}: stuck at {}\n{}",
            row.name,
            m.location(),
            rec.inner().console()
        );
        let console = rec.inner().console();
        if !typed && shell_prompt(&console) {
            typed = true;
            let line = format!("echo B\"\"EGIN; {command}; echo E\"\"ND\n");
            rec.inner_mut().send(InputEvent::UartRx(line.into_bytes()));
        }
        if begin.is_none() && console.contains("\nBEGIN") {
            begin = Some((
                m.now(),
                rec.log_len(),
                *rec.stats(),
                Instant::now(),
                m.icount(),
            ));
            if row.async_snapshot {
                snap = Some((
                    AsyncSnapshot::begin(&mut m, &info, AsyncOptions::default()),
                    Instant::now(),
                ));
            }
        }
        if let (Some(every), false) = (row.typing, keys_queued) {
            if console.contains("evread: ready") {
                // Down and up half a period apart, for the 100 events evread waits for.
                keys_queued = true;
                let half = (every / 2.0 * TIMEBASE_HZ as f64) as u64;
                let start = m.now();
                rec.inner_mut().keys = (0..100u64)
                    .map(|i| {
                        (
                            start + i * half,
                            InputEvent::Key {
                                code: 30,
                                down: i % 2 == 0,
                            },
                        )
                    })
                    .collect();
            }
        }
        if begin.is_some() && console.contains("\nEND") {
            break (
                m.now(),
                rec.log_len(),
                *rec.stats(),
                Instant::now(),
                m.icount(),
            );
        }
        let ready = match &mut snap {
            Some((s, _)) => s.step(&mut m, 1024) == Step::Ready,
            None => false,
        };
        if ready {
            let (s, t0) = snap.take().unwrap();
            let rounds: Vec<usize> = s.rounds().iter().map(|r| r.pages).collect();
            // The stall: the machine stopped for the final copy, then the state hash of the copy
            // (the CLI computes it before recording starts, so it stalls there too; it could run
            // beside the machine).
            let stall = Instant::now();
            let (frozen, last) = s.freeze(&mut m);
            let frozen_at = stall.elapsed();
            let snap = frozen.seal();
            let stall = stall.elapsed();
            assert_eq!(snap.state_hash(), m.state_hash(), "the async snapshot differs from the machine");
            let total = t0.elapsed().as_secs_f64();
            println!(
                "| asynchronous snapshot ({} MiB guest, during the fork loop, 1024 pages copied per 100 000-instruction slice) | {} rounds {rounds:?} + final {last} pages | total {total:.3} s | stall {:.1} ms = final copy {:.2} ms + state hash {:.1} ms | paper: stall 0.31–0.35 s |",
                row.ram >> 20,
                rounds.len(),
                stall.as_secs_f64() * 1e3,
                frozen_at.as_secs_f64() * 1e3,
                (stall - frozen_at).as_secs_f64() * 1e3
            );
        }
        let until = m.icount() + SLICE;
        match rec.run(&mut m, until).unwrap() {
            Exit::Limit => {}
            other => panic!(
                "{}: guest stopped with {other:?}\n{}",
                row.name,
                rec.inner().console()
            ),
        }
    };
    let record_wall = started.elapsed().as_secs_f64();
    let (b, e) = (begin.unwrap(), end);
    let (env_begin, env_end) = (rec.inner().begin_at.unwrap(), rec.inner().end_at.unwrap());
    let mut stats = e.2;
    for (k, k0) in [
        (&mut stats.events, b.2.events),
        (&mut stats.warps, b.2.warps),
        (&mut stats.entropy, b.2.entropy),
        (&mut stats.disk_reads, b.2.disk_reads),
        (&mut stats.checkpoints, b.2.checkpoints),
    ] {
        k.records -= k0.records;
        k.bytes -= k0.bytes;
    }
    let (env, log) = rec.finish(&m).unwrap();
    drop(env);
    if let Some(s) = server {
        let _ = s.join();
    }
    // Replay the whole recording: no network; the disk image only in snapshotted mode.
    let cfg = replay_config(&image);
    let mut r_m = Machine::new(cfg).unwrap();
    let mut r = Replayer::new(log.as_slice()).unwrap();
    r.check_start(&r_m, &fp).unwrap();
    let t = Instant::now();
    assert_eq!(
        r.run(&mut r_m, u64::MAX).unwrap(),
        ReplayStop::End,
        "{}",
        row.name
    );
    let replay_wall = t.elapsed().as_secs_f64();
    assert_eq!(
        r_m.state_hash(),
        m.state_hash(),
        "{}: replay ends elsewhere",
        row.name
    );
    Measured {
        // From the instants the marks were printed (the slice that printed END may idle on).
        guest_s: secs(env_end - env_begin),
        log_bytes: e.1 - b.1,
        stats,
        record_wall,
        replay_wall,
        row_wall: (e.3 - b.3).as_secs_f64(),
        instructions: e.4 - b.4,
    }
}

#[test]
#[ignore = "minutes; run by bench/replay.sh"]
fn log_growth() {
    let mut disk_snap = Row::new(
        "cp 100 MB on ext2, snapshotted disk",
        "mount -t ext2 /dev/vda /mnt && cp /mnt/big /mnt/copy && sync",
    );
    disk_snap.disk = Disk::Snapshotted;
    let mut disk_log = Row::new(
        "cp 100 MB on ext2, output-replayed disk",
        "mount -t ext2 /dev/vda /mnt && cp /mnt/big /mnt/copy && sync",
    );
    disk_log.disk = Disk::Logged;
    let mut inet = Row::new(
        "inet: TCP receive in 4-byte reads (256 KB, libslirp, real time)",
        "inet 10.0.2.2 PORT 262144",
    );
    inet.live_net = true;
    let mut typing = Row::new("typing: 10 keys/s into evread", "evread 100");
    typing.typing = Some(0.1);
    let mut fork = Row::new(
        "fork loop: 300 × fork+exec /bin/true",
        "i=0; while [ $i -lt 300 ]; do /bin/true; i=$((i+1)); done",
    );
    fork.async_snapshot = true;
    fork.ram = 256 << 20;
    let rows = [
        (Row::new("idle: sleep 10", "sleep 10"), "sleep: 1.7 / 2.9"),
        (Row::new("CPU loop: cpuloop, 3·10^8 instructions", "cpuloop 30000000"), "emptyloop: 32.3 / 36.3"),
        (fork, "forkbomb: 65.8 / 89.2"),
        (disk_snap, "cp: 10.6"),
        (disk_log, "cp: 58.3"),
        (inet, "inet: 793 / 791"),
        (typing, "(supertux: 48.6 / 82.75)"),
        (
            Row::new(
                "framebuffer animation: 8 full frames from /dev/urandom",
                "for i in 1 2 3 4 5 6 7 8; do dd if=/dev/urandom of=/dev/fb0 bs=4096 count=300 2>/dev/null; done",
            ),
            "(tuxfootball: 148.5 / 171.2)",
        ),
    ];
    let mut table = vec![
        "| workload | guest s | instructions | log bytes | log KB/s (guest) | paper KB/s (snapshotted / output-replayed) | events / warps / entropy / disk / checkpoint bytes | record wall s (whole run) | replay wall s (whole run) | replay speed |".to_string(),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |".to_string(),
    ];
    for (row, paper) in &rows {
        let r = record_row(row);
        let s = r.stats;
        let line = format!(
            "| {} | {:.2} | {} | {} | {:.2} | {} | {} / {} / {} / {} / {} | {:.1} | {:.1} | {:.1}× |",
            row.name,
            r.guest_s,
            r.instructions,
            r.log_bytes,
            r.log_bytes as f64 / 1e3 / r.guest_s.max(1e-9),
            paper,
            s.events.bytes,
            s.warps.bytes,
            s.entropy.bytes,
            s.disk_reads.bytes,
            s.checkpoints.bytes,
            r.record_wall,
            r.replay_wall,
            r.record_wall / r.replay_wall.max(1e-9),
        );
        eprintln!("{line} (row wall {:.1} s)", r.row_wall);
        table.push(line);
    }
    println!("\nlog growth:");
    for l in table {
        println!("{l}");
    }
}

/// CPU time of this thread, in seconds (less sensitive than wall time to other load).
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec to the pointer it is given, which is valid.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0);
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Boot to cpuloop's end, recorded (into memory, default checkpoints) or not: (wall s, thread
/// CPU s, instructions, log bytes).
fn overhead_run(recorded: bool) -> (f64, f64, u64, u64) {
    let cfg = MachineConfig {
        ram_size: 128 << 20,
        ..guest_config("doppel.run=cpuloop doppel.args=20000000")
    };
    let fp = fingerprint(&cfg);
    let mut m = Machine::new(cfg).unwrap();
    let t = Instant::now();
    let cpu = thread_cpu();
    let mut log_len = 0;
    if recorded {
        let mut rec = Recorder::new(
            Scripted::default(),
            Vec::new(),
            &m,
            fp,
            RecordOptions::default(),
        )
        .unwrap();
        assert!(matches!(
            rec.run(&mut m, u64::MAX).unwrap(),
            Exit::PowerOff(0)
        ));
        let (_, log) = rec.finish(&m).unwrap();
        log_len = log.len() as u64;
    } else {
        let mut env = Scripted::default();
        assert!(matches!(m.run(&mut env, u64::MAX), Exit::PowerOff(0)));
    }
    (
        t.elapsed().as_secs_f64(),
        thread_cpu() - cpu,
        m.icount(),
        log_len,
    )
}

#[test]
#[ignore = "minutes; run by bench/replay.sh"]
fn record_overhead() {
    let (mut plain, mut recorded) = ((f64::MAX, f64::MAX), (f64::MAX, f64::MAX));
    let mut shape = (0, 0);
    for _ in 0..5 {
        let (w, c, n, _) = overhead_run(false);
        plain = (plain.0.min(w), plain.1.min(c));
        let (w, c, n2, len) = overhead_run(true);
        recorded = (recorded.0.min(w), recorded.1.min(c));
        assert_eq!(
            n, n2,
            "the recorded run retired another number of instructions"
        );
        shape = (n, len);
    }
    println!(
        "| record overhead: boot + cpuloop (2·10^8 loop instructions), scripted input, best of 5 | {} instructions | unrecorded {:.2} s wall, {:.2} s CPU | recorded {:.2} s wall, {:.2} s CPU | wall {:+.1}%, CPU {:+.1}% | log {} bytes | target ≤ 5% |",
        shape.0,
        plain.0,
        plain.1,
        recorded.0,
        recorded.1,
        (recorded.0 / plain.0 - 1.0) * 100.0,
        (recorded.1 / plain.1 - 1.0) * 100.0,
        shape.1
    );
}

#[test]
#[ignore = "real time; run by bench/replay.sh"]
fn idle_replay_speed() {
    // Boots, then the init sleeps 10 s (doppel.hold) and powers off, on the real-time environment.
    let cfg = MachineConfig {
        ram_size: 128 << 20,
        ..guest_config("doppel.run=poweroff doppel.hold=10")
    };
    let fp = fingerprint(&cfg);
    let mut m = Machine::new(cfg).unwrap();
    let (live, _input) = LiveEnvironment::new(Box::new(Console::default()));
    let mut rec = Recorder::new(live, Vec::new(), &m, fp, RecordOptions::default()).unwrap();
    let t = Instant::now();
    loop {
        let until = m.icount() + SLICE;
        match rec.run(&mut m, until).unwrap() {
            Exit::Limit => {}
            Exit::PowerOff(0) => break,
            other => panic!("{other:?}"),
        }
    }
    let record_wall = t.elapsed().as_secs_f64();
    let guest = secs(m.now());
    let (_, log) = rec.finish(&m).unwrap();
    let cfg = MachineConfig {
        ram_size: 128 << 20,
        ..guest_config("doppel.run=poweroff doppel.hold=10")
    };
    let mut r_m = Machine::new(cfg).unwrap();
    let mut r = Replayer::new(log.as_slice()).unwrap();
    r.check_start(&r_m, &fp).unwrap();
    let t = Instant::now();
    assert!(matches!(
        r.run(&mut r_m, u64::MAX).unwrap(),
        ReplayStop::PowerOff(0)
    ));
    r.finish(&r_m).unwrap();
    let replay_wall = t.elapsed().as_secs_f64();
    assert_eq!(r_m.state_hash(), m.state_hash());
    println!(
        "| replay vs record, idle guest (boot, sleep 10, power-off; live environment) | {guest:.2} guest s, {} instructions | record {record_wall:.2} s | replay {replay_wall:.2} s | {:.1}× | log {} bytes | target ≥ 2× |",
        m.icount(),
        record_wall / replay_wall,
        log.len()
    );
}

/// The shell has printed its prompt after init's "starting a shell" line (kernel messages may
/// follow the prompt, so it need not be the last thing on the console).
fn shell_prompt(console: &str) -> bool {
    console
        .split_once("starting a shell")
        .is_some_and(|(_, after)| after.contains("# "))
}
