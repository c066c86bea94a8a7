//! Any byte string read as a snapshot file gives a snapshot or a typed error, never a panic (and
//! never an allocation above the RAM limit the reader is given); a snapshot that reads writes
//! back to a file that reads to the same snapshot, and restores to a machine with the recorded
//! state hash or a typed refusal.
//!
//! Each input is read twice: as it is, and with its header and section checksums recomputed, so
//! mutations reach the section decoders and the machine's state validation behind the CRCs.
#![no_main]

use doppel_replay::snapshot::MAGIC;
use doppel_replay::Snapshot;
use libfuzzer_sys::fuzz_target;

/// RAM the fuzzed reader may allocate (libFuzzer's default RSS limit is 2 GiB).
const MAX_RAM: u64 = 64 << 20;

/// The same bytes with a valid header magic and CRC and every section's CRC recomputed (section
/// lengths are clipped to what is there).
fn with_valid_checksums(data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    if out.len() < 16 {
        return out;
    }
    out[..8].copy_from_slice(&MAGIC);
    let crc = crc32fast::hash(&out[..12]);
    out[12..16].copy_from_slice(&crc.to_le_bytes());
    let mut at = 16;
    while at + 13 <= out.len() {
        let len = u64::from_le_bytes(out[at + 1..at + 9].try_into().unwrap_or_default());
        let start = at + 13;
        let end = usize::try_from(len).ok().and_then(|l| start.checked_add(l)).filter(|e| *e <= out.len());
        let Some(end) = end else { break };
        let crc = crc32fast::hash(&out[start..end]);
        out[at + 9..at + 13].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
    out
}

fn check(bytes: &[u8]) {
    if let Ok(snap) = Snapshot::read_from_limited(bytes, MAX_RAM) {
        let mut again = Vec::new();
        snap.write_to(&mut again).expect("writing to a Vec cannot fail");
        let back = Snapshot::read_from_limited(again.as_slice(), MAX_RAM).expect("a written snapshot reads back");
        assert_eq!(back, snap, "a snapshot survives a write and a read");
        let _ = snap.restore(None);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    check(&with_valid_checksums(data));
});
