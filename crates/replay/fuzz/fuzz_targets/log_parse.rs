//! Any byte string fed to the replay log decoder, whole and in two pieces, gives records or an
//! error, never a panic; whatever decodes re-encodes to the same bytes.
#![no_main]

use doppel_replay::wire::{self, Decoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let whole = wire::decode_all(data);
    if let Ok((header, records)) = &whole {
        let again = wire::encode_all(header, records).expect("decoded records are in order");
        assert_eq!(again.as_slice(), data, "a valid log re-encodes to itself");
    }
    // The same bytes split at an arbitrary point give the same records.
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let mut d = Decoder::new();
    d.push(&data[..split]);
    let mut records = Vec::new();
    let mut failed = false;
    loop {
        match d.next_record() {
            Ok(Some(r)) => records.push(r),
            Ok(None) => break,
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if !failed {
        d.push(&data[split..]);
        loop {
            match d.next_record() {
                Ok(Some(r)) => records.push(r),
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
    }
    if let Ok((_, all)) = whole {
        assert!(!failed);
        assert_eq!(records, all);
    }
});
