//! Record/replay of a real Linux run that exercises every kind of input at once (issue 3, "done
//! means"): keyboard keys on virtio-input, a typed shell command on the UART, TCP data received
//! from a host server through libslirp, disk reads and writes on virtio-blk, and framebuffer
//! drawing. The run is recorded on the real live environment (real time, real network) with the
//! *output-replayed* disk (every base-image read goes into the log), and an *asynchronous
//! snapshot* of the running VM is taken in the middle of the network transfer. Then:
//!
//! * a replay from the start, with no network and no disk image, reaches equal full state hashes
//!   (RAM included) and equal framebuffers at every sampled instruction count, start to end;
//! * a replay from the asynchronous snapshot (written to a snapshot file and read back) does the
//!   same from the snapshot point on.
//!
//! The guest is found like in `crates/doppel/tests/guest.rs` (`$DOPPEL_GUEST_DIR`, else `$DOPPEL_CACHE/guest/current`,
//! else `~/.cache/doppel/guest/current`); a missing guest fails the test.

// Test patterns truncate to bytes on purpose.
#![allow(clippy::cast_possible_truncation)]

use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use doppel_host::live::{LiveEnvironment, OutputSink};
use doppel_host::net::{self, NetMode, UserNetConfig};
use doppel_machine::devices::{DevicesConfig, EnvDisk};
use doppel_machine::{
    EnvError, Environment, Exit, IdleState, InputEvent, InstructionCount, Machine, MachineConfig,
    Output, Ticks,
};
use doppel_replay::snapshot::Step;
use doppel_replay::wire::{self, Record};
use doppel_replay::{
    fingerprint, AsyncOptions, AsyncSnapshot, MachineInfo, RecordOptions, Recorder, ReplayStop,
    Replayer, Snapshot,
};
use doppel_testkit::guest_config;

const RAM: usize = 128 << 20;
/// Instructions per run slice while recording.
const SLICE: u64 = 100_000;
/// State and framebuffer are sampled at every multiple of this instruction count.
const SAMPLE: u64 = 8_000_000;
/// Checkpoints in the log (full hashes at every one).
const PERIOD: u64 = 40_000_000;
/// The disk: 4 MiB of a fixed pattern.
const DISK_LEN: usize = 4 << 20;
/// Bytes the host server sends to `inet`.
const NET_BYTES: usize = 24 << 10;
const WALL_LIMIT: Duration = Duration::from_secs(900);

/// The shell command typed on the serial console.
fn command(port: u16) -> String {
    format!(
        "fbpattern && diskwrite 8 && inet 10.0.2.2 {port} {NET_BYTES} && evread 4 && \
         dd if=/dev/vda bs=4096 skip=16 count=64 2>/dev/null | sha256sum && poweroff -f\n"
    )
}

fn disk_image() -> Vec<u8> {
    (0..DISK_LEN)
        .map(|i| ((i / 4096) as u8).wrapping_mul(31) ^ (i as u8))
        .collect()
}

fn config(disk_len: usize) -> MachineConfig {
    // No doppel.run: the guest's init starts a shell on the console.
    MachineConfig {
        ram_size: RAM,
        devices: DevicesConfig {
            disk: Some(Box::new(EnvDisk {
                len: disk_len as u64,
            })),
            ..DevicesConfig::default()
        },
        ..guest_config("")
    }
}

#[derive(Clone, Default)]
struct Console(Arc<Mutex<Vec<u8>>>);

impl Console {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl OutputSink for Console {
    fn console(&mut self, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }
    fn net_tx(&mut self, _frame: &[u8]) {}
}

/// The live environment plus the base image the output-replayed disk reads from.
struct World {
    live: LiveEnvironment,
    disk: Vec<u8>,
}

impl Environment for World {
    fn poll(&mut self, icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        self.live.poll(icount)
    }
    fn next_event_at(&self) -> Option<InstructionCount> {
        self.live.next_event_at()
    }
    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError> {
        self.live.idle(state)
    }
    fn entropy(&mut self, icount: InstructionCount, buf: &mut [u8]) {
        self.live.entropy(icount, buf);
    }
    fn output(&mut self, icount: InstructionCount, output: Output<'_>) {
        self.live.output(icount, output);
    }
    fn disk_read(
        &mut self,
        _icount: InstructionCount,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<(), EnvError> {
        let at = usize::try_from(offset)
            .ok()
            .filter(|a| a + buf.len() <= self.disk.len());
        let at =
            at.ok_or_else(|| EnvError::msg(format!("disk read beyond the image at {offset}")))?;
        buf.copy_from_slice(&self.disk[at..at + buf.len()]);
        Ok(())
    }
}

/// Full state hash and framebuffer hash of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sample {
    icount: InstructionCount,
    state: [u8; 32],
    fb: [u8; 32],
}

fn sample(m: &Machine) -> Sample {
    let fb = m.framebuffer().unwrap();
    Sample {
        icount: m.icount(),
        state: m.state_hash(),
        fb: *blake3::hash(fb.pixels).as_bytes(),
    }
}

struct Recording {
    log: Vec<u8>,
    console: String,
    samples: Vec<Sample>,
    end: Sample,
    snapshot_file: Vec<u8>,
    snapshot_icount: InstructionCount,
}

fn record() -> Recording {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let payload: Vec<u8> = (0..NET_BYTES).map(|i| (i * 7 + i / 253) as u8).collect();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(&payload).unwrap();
    });

    let cfg = config(DISK_LEN);
    let info = MachineInfo::of(&cfg);
    let fp = fingerprint(&cfg);
    let mut m = Machine::new(cfg).unwrap();
    let console = Console::default();
    let (mut live, input) = LiveEnvironment::new(Box::new(console.clone()));
    live.set_network(
        net::start(NetMode::User, UserNetConfig::default(), &input)
            .unwrap()
            .unwrap(),
    );
    let world = World {
        live,
        disk: disk_image(),
    };
    let options = RecordOptions {
        checkpoint_period: PERIOD,
        full_every: 1,
    };
    let mut rec = Recorder::new(world, Vec::new(), &m, fp, options).unwrap();

    let mut samples = vec![sample(&m)];
    let (mut typed, mut keyed) = (false, false);
    let mut async_snap: Option<AsyncSnapshot> = None;
    let mut snapshot: Option<Snapshot> = None;
    let started = Instant::now();
    loop {
        let text = console.text();
        assert!(
            started.elapsed() < WALL_LIMIT,
            "guest still running at {}\nconsole:\n{text}",
            m.location()
        );
        if !typed && shell_prompt(&text) {
            typed = true;
            input.send(InputEvent::UartRx(command(port).into_bytes()));
        }
        if !keyed && text.contains("evread: ready") {
            keyed = true;
            for (code, down) in [(30, true), (30, false), (48, true), (48, false)] {
                input.send(InputEvent::Key { code, down });
            }
        }
        // The asynchronous snapshot starts once the transfer is under way and copies while the
        // recording goes on.
        if async_snap.is_none() && snapshot.is_none() && text.contains("inet: connected") {
            async_snap = Some(AsyncSnapshot::begin(&mut m, &info, AsyncOptions::default()));
        }
        if let Some(a) = &mut async_snap {
            if a.step(&mut m, 1024) == Step::Ready {
                let a = async_snap.take().unwrap();
                let rounds: Vec<usize> = a.rounds().iter().map(|r| r.pages).collect();
                let (snap, last) = a.finish(&mut m);
                eprintln!("asynchronous snapshot at instruction {}: rounds {rounds:?}, final copy {last} pages", m.icount());
                assert_eq!(snap.state_hash(), m.state_hash());
                // A checkpoint at the snapshot point, for the replay from it to start at.
                rec.checkpoint(&m).unwrap();
                snapshot = Some(snap);
            }
        }
        let next_sample = (m.icount() / SAMPLE + 1) * SAMPLE;
        let until = (m.icount() + SLICE).min(next_sample);
        match rec.run(&mut m, until).unwrap() {
            Exit::Limit => {
                if m.icount().is_multiple_of(SAMPLE) {
                    samples.push(sample(&m));
                }
            }
            Exit::PowerOff(0) => break,
            other => panic!(
                "guest stopped with {other:?} at {}\nconsole:\n{}",
                m.location(),
                console.text()
            ),
        }
    }
    server.join().unwrap();
    let end = sample(&m);
    let (world, log) = rec.finish(&m).unwrap();
    drop(world); // the network and the disk image are gone from here on

    let console = console.text();
    let disk = disk_image();
    let want_sha = sha256_hex(&disk[16 * 4096..80 * 4096]);
    for want in [
        "fbpattern: done 640x480",
        "diskwrite: wrote",
        "read back ok",
        &format!("inet: received {NET_BYTES} bytes"),
        "key 30 1",
        "key 48 0",
        "evread: done 4",
        want_sha.as_str(),
    ] {
        assert!(
            console.contains(want),
            "`{want}` missing from the console:\n{console}"
        );
    }
    // The log holds every kind of input this test is about.
    let (_, records) = wire::decode_all(&log).unwrap();
    let count = |f: &dyn Fn(&Record) -> bool| records.iter().filter(|r| f(r)).count();
    let keys = count(&|r| {
        matches!(
            r,
            Record::Event {
                event: InputEvent::Key { .. },
                ..
            }
        )
    });
    let rx = count(&|r| {
        matches!(
            r,
            Record::Event {
                event: InputEvent::NetRx(_),
                ..
            }
        )
    });
    let uart = count(&|r| {
        matches!(
            r,
            Record::Event {
                event: InputEvent::UartRx(_),
                ..
            }
        )
    });
    let disk_reads = count(&|r| matches!(r, Record::DiskRead { .. }));
    eprintln!(
        "recorded {} instructions in {:.1} s: log {} bytes, {keys} keys, {rx} received frames, {uart} UART inputs, \
         {disk_reads} disk reads, {} samples",
        m.icount(),
        started.elapsed().as_secs_f64(),
        log.len(),
        samples.len()
    );
    assert_eq!(keys, 4);
    assert!(
        rx > 10 && uart == 1 && disk_reads > 0,
        "rx {rx} uart {uart} disk {disk_reads}"
    );
    assert!(samples.len() >= 10, "only {} samples", samples.len());

    let snapshot = snapshot.expect("the asynchronous snapshot finished");
    let mut snapshot_file = Vec::new();
    snapshot.write_to(&mut snapshot_file).unwrap();
    Recording {
        log,
        console,
        samples,
        end,
        snapshot_file,
        snapshot_icount: snapshot.meta.icount,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(bytes))
}

/// Replay `log` on `m` (already where the replay starts) through every sample after its
/// instruction count, then to the end; every sample and the end must be equal.
fn replay_and_compare(m: &mut Machine, r: &mut Replayer<&[u8]>, rec: &Recording) {
    let from = m.icount();
    let mut compared = 0;
    for want in rec.samples.iter().filter(|s| s.icount > from) {
        assert_eq!(r.run(m, want.icount).unwrap(), ReplayStop::Limit);
        let got = sample(m);
        assert_eq!(got.icount, want.icount);
        assert!(
            got.fb == want.fb,
            "framebuffers differ at instruction {}",
            want.icount
        );
        assert!(
            got.state == want.state,
            "state hashes differ at instruction {}",
            want.icount
        );
        compared += 1;
    }
    assert!(
        compared >= 3,
        "only {compared} samples after instruction {from}"
    );
    match r.run(m, u64::MAX).unwrap() {
        ReplayStop::PowerOff(0) => r.finish(m).unwrap(),
        other => panic!("replay ended with {other:?} at {}", m.location()),
    }
    assert_eq!(sample(m), rec.end, "the replay ends elsewhere");
    let console = String::from_utf8_lossy(&r.console);
    assert!(
        rec.console.ends_with(&*console),
        "replayed console differs:\n{console}"
    );
    assert!(console.contains("evread: done 4"), "{console}");
}

#[test]
fn keyboard_network_disk_and_framebuffer_replay_equal_from_the_start_and_from_an_async_snapshot() {
    let rec = record();

    // From the start: no network, no disk image (the output-replayed disk is in the log).
    let cfg = config(DISK_LEN);
    let fp = fingerprint(&cfg);
    let mut m = Machine::new(cfg).unwrap();
    let mut r = Replayer::new(rec.log.as_slice()).unwrap();
    r.check_start(&m, &fp).unwrap();
    let started = Instant::now();
    replay_and_compare(&mut m, &mut r, &rec);
    assert_eq!(String::from_utf8_lossy(&r.console), rec.console);
    eprintln!(
        "replayed from the start in {:.1} s, {} checkpoints equal",
        started.elapsed().as_secs_f64(),
        r.checkpoints_verified()
    );

    // From the asynchronous snapshot, through its file format.
    let snap = Snapshot::read_from(rec.snapshot_file.as_slice()).unwrap();
    assert_eq!(snap.meta.icount, rec.snapshot_icount);
    let mut m = snap.restore(None).unwrap();
    let mut r = Replayer::new(rec.log.as_slice()).unwrap();
    r.skip_to_checkpoint(rec.snapshot_icount).unwrap();
    r.verify(&m).unwrap();
    replay_and_compare(&mut m, &mut r, &rec);
    eprintln!(
        "replayed from the asynchronous snapshot at instruction {} ({} byte file), {} checkpoints equal",
        rec.snapshot_icount,
        rec.snapshot_file.len(),
        r.checkpoints_verified()
    );
}

/// The shell has printed its prompt after init's "starting a shell" line (kernel messages may
/// follow the prompt, so it need not be the last thing on the console).
fn shell_prompt(console: &str) -> bool {
    console
        .split_once("starting a shell")
        .is_some_and(|(_, after)| after.contains("# "))
}
