//! Record a real Linux run and replay it: equal checkpoints, framebuffer and console, from the
//! start and from a mid-run snapshot; corrupt logs and divergences give clear errors. The guest
//! comes from `$DOPPEL_GUEST_DIR`, else `$DOPPEL_CACHE/guest/current`, else
//! `~/.cache/doppel/guest/current` (build it with `bash guest/build.sh`); a missing guest fails.
//!
//! One recording is made (lazily, shared by all tests): `evread` waits for four input events,
//! idling meanwhile; the test types KEY_A down/up and a click on the tablet, plus UART bytes; the
//! guest also draws entropy from virtio-rng at boot.

use std::io::Read;
use std::sync::OnceLock;

use doppel_machine::{Exit, InputEvent, InstructionCount, Machine, MachineConfig, MachineState};
use doppel_testkit::{guest_config, Scripted};
use doppel_replay::wire::{self, Record, WireError};
use doppel_replay::{fingerprint, RecordOptions, Recorder, ReplayError, ReplayStop, Replayer};

const CMDLINE: &str = "doppel.run=evread doppel.args=6";
const RAM: usize = 128 << 20;

fn config(cmdline: &str) -> MachineConfig {
    MachineConfig { ram_size: RAM, ..guest_config(cmdline) }
}

const BUDGET: u64 = 1_500_000_000;
const SLICE: u64 = 1_000_000;
const PERIOD: u64 = 20_000_000;
/// The snapshot for the mid-run replay is taken at this checkpoint.
const SNAPSHOT_AT: u64 = 3 * PERIOD;

struct Recording {
    log: Vec<u8>,
    console: String,
    end_icount: InstructionCount,
    end_hash: [u8; 32],
    framebuffer: Vec<u8>,
    checkpoints: usize,
    /// Instruction count of the first key event.
    key_at: InstructionCount,
    snapshot: (MachineState, Vec<u8>),
}

fn recording() -> &'static Recording {
    static REC: OnceLock<Recording> = OnceLock::new();
    REC.get_or_init(record)
}

fn record() -> Recording {
    let cfg = config(CMDLINE);
    let fp = fingerprint(&cfg);
    let mut m = Machine::new(cfg).unwrap();
    let options = RecordOptions { checkpoint_period: PERIOD, full_every: 1 };
    let mut rec = Recorder::new(Scripted::default(), Vec::new(), &m, fp, options).unwrap();
    let mut typed = false;
    let mut snapshot = None;
    let exit = loop {
        assert!(m.icount() < BUDGET, "guest stuck at {}", m.location());
        if m.icount() == SNAPSHOT_AT {
            snapshot = Some((m.save_state(), m.ram().as_slice().to_vec()));
        }
        let console = String::from_utf8_lossy(&rec.inner().inner.console).into_owned();
        if !typed && console.contains("evread: ready") {
            typed = true;
            rec.inner_mut().queue.extend([
                InputEvent::Key { code: 30, down: true },
                InputEvent::UartRx(b"hello\n".to_vec()),
                InputEvent::Key { code: 30, down: false },
                InputEvent::PointerMove { x: 100, y: 200 },
                InputEvent::PointerButton { code: 0x110, down: true },
                InputEvent::PointerButton { code: 0x110, down: false },
            ]);
        }
        let until = (m.icount() + SLICE).min(if m.icount() < SNAPSHOT_AT { SNAPSHOT_AT } else { u64::MAX });
        match rec.run(&mut m, until).unwrap() {
            Exit::Limit => {}
            other => break other,
        }
    };
    assert!(matches!(exit, Exit::PowerOff(0)), "{exit:?} at {}", m.location());
    let (env, log) = rec.finish(&m).unwrap();
    let console = String::from_utf8_lossy(&env.inner.console).into_owned();
    assert!(console.contains("key 30 1") && console.contains("btn 272 0"), "{console}");
    let (_, records) = wire::decode_all(&log).unwrap();
    let count = |f: fn(&Record) -> bool| records.iter().filter(|r| f(r)).count();
    let key_at = records
        .iter()
        .find_map(|r| match r {
            Record::Event { icount, event: InputEvent::Key { .. } } => Some(*icount),
            _ => None,
        })
        .unwrap();
    // The run exercised every kind of record this test is about.
    assert!(count(|r| matches!(r, Record::Warp { .. })) > 10);
    assert!(count(|r| matches!(r, Record::Entropy { .. })) > 0, "the guest drew no entropy");
    assert!(count(|r| matches!(r, Record::Event { event: InputEvent::UartRx(_), .. })) == 1);
    assert!(key_at > SNAPSHOT_AT, "the snapshot should precede the input");
    Recording {
        console,
        end_icount: m.icount(),
        end_hash: m.state_hash(),
        framebuffer: m.framebuffer().unwrap().pixels.to_vec(),
        checkpoints: count(|r| matches!(r, Record::Checkpoint { .. })),
        key_at,
        snapshot: snapshot.expect("the run reached the snapshot point"),
        log,
    }
}

/// Replay `log` on `m` to its end; returns the replayer (its console) or the first error.
fn replay_to_end<S: Read>(m: &mut Machine, replayer: &mut Replayer<S>) -> Result<(), ReplayError> {
    match replayer.run(m, BUDGET)? {
        ReplayStop::PowerOff(_) => replayer.finish(m),
        ReplayStop::End => Ok(()),
        other => panic!("replay stopped with {other:?} at {}", m.location()),
    }
}

#[test]
fn a_recorded_linux_run_replays_with_equal_checkpoints_framebuffer_and_console() {
    let rec = recording();
    let cfg = config(CMDLINE);
    let fp = fingerprint(&cfg);
    let mut m = Machine::new(cfg).unwrap();
    let mut r = Replayer::new(rec.log.as_slice()).unwrap();
    r.check_start(&m, &fp).unwrap();
    replay_to_end(&mut m, &mut r).unwrap();
    assert_eq!(usize::try_from(r.checkpoints_verified()).unwrap(), rec.checkpoints);
    assert_eq!(m.icount(), rec.end_icount);
    assert_eq!(m.state_hash(), rec.end_hash);
    assert!(m.framebuffer().unwrap().pixels == rec.framebuffer.as_slice(), "framebuffers differ");
    assert_eq!(String::from_utf8_lossy(&r.console), rec.console);
}

#[test]
fn a_replay_from_a_mid_run_snapshot_reaches_the_same_end() {
    let rec = recording();
    let (state, ram) = &rec.snapshot;
    let mut m = Machine::from_state(config(CMDLINE), state, ram).unwrap();
    assert_eq!(m.icount(), SNAPSHOT_AT);
    let mut r = Replayer::new(rec.log.as_slice()).unwrap();
    r.skip_to_checkpoint(SNAPSHOT_AT).unwrap();
    replay_to_end(&mut m, &mut r).unwrap();
    assert_eq!(m.state_hash(), rec.end_hash);
    assert!(m.framebuffer().unwrap().pixels == rec.framebuffer.as_slice(), "framebuffers differ");
    let console = String::from_utf8_lossy(&r.console);
    assert!(rec.console.ends_with(&*console) && console.contains("key 30 1"), "{console}");
}

#[test]
fn corrupt_truncated_reordered_and_foreign_logs_give_clear_errors() {
    let rec = recording();
    let log = &rec.log;
    let replay = |bytes: &[u8]| -> Result<(), ReplayError> {
        let cfg = config(CMDLINE);
        let fp = fingerprint(&cfg);
        let mut m = Machine::new(cfg).unwrap();
        let mut r = Replayer::new(bytes)?;
        r.check_start(&m, &fp)?;
        replay_to_end(&mut m, &mut r)
    };
    // A flipped bit in the header and in a frame near the start.
    for bit in [8 * 20 + 3, 8 * (wire::HEADER_LEN + 5) + 6] {
        let mut b = log.clone();
        b[bit / 8] ^= 1 << (bit % 8);
        let e = replay(&b).unwrap_err();
        assert!(
            matches!(e, ReplayError::Wire(WireError::HeaderChecksum { .. } | WireError::FrameChecksum { .. })),
            "{e}"
        );
    }
    // Cut inside the header, early inside a frame, and just before the End record.
    for cut in [40, wire::HEADER_LEN + 3, log.len() - 2] {
        let e = match replay(&log[..cut]) {
            Err(e) => e,
            Ok(()) => panic!("a log cut at {cut} of {} replayed", log.len()),
        };
        assert!(
            matches!(e, ReplayError::NoHeader | ReplayError::Wire(WireError::Truncated { .. })),
            "cut at {cut}: {e}"
        );
        assert!(e.to_string().contains("header") || e.source_text().contains("truncated"), "{e}");
    }
    // The first two frames swapped.
    let first = frame_len(&log[wire::HEADER_LEN..]);
    let second = frame_len(&log[wire::HEADER_LEN + first..]);
    let mut b = log[..wire::HEADER_LEN].to_vec();
    b.extend_from_slice(&log[wire::HEADER_LEN + first..wire::HEADER_LEN + first + second]);
    b.extend_from_slice(&log[wire::HEADER_LEN..wire::HEADER_LEN + first]);
    b.extend_from_slice(&log[wire::HEADER_LEN + first + second..]);
    let e = replay(&b).unwrap_err();
    assert!(matches!(e, ReplayError::Wire(WireError::FrameChecksum { frame: 0, .. })), "{e}");
    // A header from another version.
    let mut b = log.clone();
    b[8] = 9;
    let e = replay(&b).unwrap_err();
    assert!(matches!(e, ReplayError::Wire(WireError::Version { found: 9, .. })), "{e}");
}

trait SourceText {
    fn source_text(&self) -> String;
}

impl SourceText for ReplayError {
    fn source_text(&self) -> String {
        std::error::Error::source(self).map(ToString::to_string).unwrap_or_default()
    }
}

fn frame_len(b: &[u8]) -> usize {
    let (len, n) = wire::get_varint(b).unwrap().unwrap();
    n + usize::try_from(len).unwrap() + 4
}

#[test]
fn a_tampered_event_is_caught_at_the_first_checkpoint_after_it() {
    let rec = recording();
    let (header, mut records) = wire::decode_all(&rec.log).unwrap();
    let Some(Record::Event { event: InputEvent::Key { code, .. }, .. }) =
        records.iter_mut().find(|r| matches!(r, Record::Event { event: InputEvent::Key { .. }, .. }))
    else {
        unreachable!("the recording has a key event")
    };
    *code = 31;
    let tampered = wire::encode_all(&header, &records).unwrap();
    let cfg = config(CMDLINE);
    let fp = fingerprint(&cfg);
    let mut m = Machine::new(cfg).unwrap();
    let mut r = Replayer::new(tampered.as_slice()).unwrap();
    r.check_start(&m, &fp).unwrap();
    let e = replay_to_end(&mut m, &mut r).unwrap_err();
    let first_after = (rec.key_at / PERIOD + 1) * PERIOD;
    match &e {
        ReplayError::Checkpoint { icount, .. } => assert_eq!(*icount, first_after, "{e}"),
        ReplayError::Divergence { icount, .. } => assert!(*icount > rec.key_at && *icount <= first_after, "{e}"),
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("instruction"), "{e}");
}

#[test]
fn another_cmdline_is_refused_up_front_and_caught_at_the_first_checkpoint_without_the_check() {
    let rec = recording();
    let cfg = config("doppel.run=evread doppel.args=7");
    let fp = fingerprint(&cfg);
    let mut m = Machine::new(cfg).unwrap();
    let mut r = Replayer::new(rec.log.as_slice()).unwrap();
    let e = r.check_start(&m, &fp).unwrap_err();
    assert!(matches!(e, ReplayError::Config { .. }), "{e}");
    let e = replay_to_end(&mut m, &mut r).unwrap_err();
    match &e {
        ReplayError::Checkpoint { icount, .. } => assert_eq!(*icount, PERIOD, "{e}"),
        ReplayError::Divergence { icount, .. } => assert!(*icount <= PERIOD, "{e}"),
        other => panic!("{other}"),
    }
}
