//! A live log replays as it arrives: the replayer stops exactly at each horizon the recorder
//! publishes, never runs past it (no hang, no divergence), and reaches the recorder's end state.
//! Real Linux guest (see `tests/guest.rs` for where it comes from): `evread` waits for input
//! (idle warps), draws boot entropy and gets keys, a UART line and a click.

use doppel_machine::{Exit, InputEvent, InstructionCount, Machine, MachineConfig, NullEnvironment};
use doppel_replay::wire::WireError;
use doppel_replay::{fingerprint, LiveReplayer, LiveStop, RecordOptions, Recorder};
use doppel_testkit::{guest_file, Scripted};

fn config() -> MachineConfig {
    MachineConfig {
        kernel: std::fs::read(guest_file("Image")).unwrap(),
        initrd: Some(std::fs::read(guest_file("initramfs.cpio")).unwrap()),
        cmdline: "console=ttyS0 panic=-1 doppel.run=evread doppel.args=6".to_string(),
        ram_size: 128 << 20,
        ..MachineConfig::default()
    }
}

/// A recording in pieces: after each slice, (bytes of log so far, the recorder's icount).
struct Pieces {
    log: Vec<u8>,
    steps: Vec<(usize, InstructionCount)>,
    end_hash: [u8; 32],
    end_icount: InstructionCount,
}

fn record() -> Pieces {
    let cfg = config();
    let fp = fingerprint(&cfg);
    let mut m = Machine::new(cfg).unwrap();
    // Checkpoints are rare: the horizons after each slice carry the replayer forward.
    let options = RecordOptions { checkpoint_period: 200_000_000, full_every: 1 };
    let mut rec = Recorder::new(Scripted::default(), Vec::new(), &m, fp, options).unwrap();
    let mut steps = Vec::new();
    let mut typed = false;
    // Uneven slices, so horizons fall anywhere (inside idle stretches too).
    let mut slice = 700_001;
    let exit = loop {
        assert!(m.icount() < 1_500_000_000, "guest stuck at {}", m.location());
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
        slice = slice * 7 % 1_900_003 + 50_000;
        let until = m.icount() + slice;
        match rec.run(&mut m, until).unwrap() {
            Exit::Limit => {}
            other => break other,
        }
        steps.push((usize::try_from(rec.log_len()).unwrap(), m.icount()));
    };
    assert!(matches!(exit, Exit::PowerOff(0)), "{exit:?} at {}", m.location());
    let (_, log) = rec.finish(&m).unwrap();
    Pieces { log, steps, end_hash: m.state_hash(), end_icount: m.icount() }
}

#[test]
fn a_live_log_replays_to_each_horizon_as_it_arrives_and_never_past_it() {
    let p = record();
    assert!(p.steps.len() > 50, "too few pieces: {}", p.steps.len());
    let cfg = config();
    let fp = fingerprint(&cfg);
    let mut m = Machine::new(cfg).unwrap();
    let mut r = LiveReplayer::new();
    let mut sent = 0;
    let mut first = true;
    for &(len, horizon) in &p.steps {
        // Half the new bytes first, without the horizon: the replayer may go as far as the records
        // it holds, never further.
        let half = sent + (len - sent) / 2;
        r.push(&p.log[sent..half]).unwrap();
        let before = m.icount();
        assert_eq!(r.run(&mut m, u64::MAX).unwrap(), LiveStop::Horizon);
        assert!(m.icount() >= before && m.icount() <= horizon, "ran past what it holds");
        r.push(&p.log[half..len]).unwrap();
        if first {
            first = false;
            r.check_start(&m, &fp).unwrap();
        }
        sent = len;
        r.advance_horizon(horizon);
        assert_eq!(r.run(&mut m, u64::MAX).unwrap(), LiveStop::Horizon, "at {}", m.location());
        assert_eq!(m.icount(), horizon, "the replayer stops exactly at the horizon");
    }
    r.push(&p.log[sent..]).unwrap();
    let stop = r.run(&mut m, u64::MAX).unwrap();
    assert_eq!(stop, LiveStop::PowerOff(0));
    assert_eq!(m.icount(), p.end_icount);
    assert_eq!(m.state_hash(), p.end_hash);
    assert!(String::from_utf8_lossy(&r.console).contains("key 30 1"));
}

#[test]
fn checkpoints_alone_are_horizons_and_a_corrupt_piece_is_an_error_not_a_hang() {
    let cfg = config();
    let fp = fingerprint(&cfg);
    let mut m = Machine::new(cfg).unwrap();
    let options = RecordOptions { checkpoint_period: 5_000_000, full_every: 0 };
    let mut rec = Recorder::new(NullEnvironment::default(), Vec::new(), &m, fp, options).unwrap();
    assert!(matches!(rec.run(&mut m, 30_000_000).unwrap(), Exit::Limit));
    let log = rec.finish(&m).unwrap().1;
    // Without the End record, the last checkpoint before it is the horizon.
    let mut r = LiveReplayer::new();
    let cut = log.len() - 3;
    r.push(&log[..cut]).unwrap();
    let mut replica = Machine::new(config()).unwrap();
    assert_eq!(r.run(&mut replica, u64::MAX).unwrap(), LiveStop::Horizon);
    assert_eq!(replica.icount(), 30_000_000);
    assert_eq!(r.checkpoints_verified().0, 6);
    // A flipped bit in a later piece is a wire error, from push and from run.
    let mut bad = LiveReplayer::new();
    let mut flipped = log.clone();
    flipped[log.len() / 2] ^= 0x10;
    let e = bad.push(&flipped).unwrap_err();
    assert!(matches!(e, WireError::FrameChecksum { .. } | WireError::Malformed { .. } | WireError::FrameLength { .. }), "{e:?}");
    let mut m2 = Machine::new(config()).unwrap();
    assert!(bad.run(&mut m2, u64::MAX).is_err());
}
