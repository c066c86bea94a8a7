//! Any byte string read as a snapshot file gives a snapshot or a typed error, never a panic (and
//! never an allocation above the RAM limit the reader is given); a snapshot that reads writes
//! back to a file that reads to the same snapshot, and restores to a machine with the recorded
//! state hash or a typed refusal.
#![no_main]

use doppel_replay::Snapshot;
use libfuzzer_sys::fuzz_target;

/// RAM the fuzzed reader may allocate (libFuzzer's default RSS limit is 2 GiB).
const MAX_RAM: u64 = 64 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(snap) = Snapshot::read_from_limited(data, MAX_RAM) {
        let mut again = Vec::new();
        snap.write_to(&mut again).expect("writing to a Vec cannot fail");
        let back = Snapshot::read_from_limited(again.as_slice(), MAX_RAM).expect("a written snapshot reads back");
        assert_eq!(back, snap, "a snapshot survives a write and a read");
        let _ = snap.restore(None);
    }
});
