//! Any byte string fed to the stream decoder, whole and in two pieces, gives messages or an
//! error, never a panic; every decoded message (but an Error with invalid UTF-8, which is
//! decoded lossily) re-encodes to exactly the bytes it came from.
#![no_main]

use doppel_stream::proto::{Decoder, Message};
use libfuzzer_sys::fuzz_target;

fn drain(d: &mut Decoder, out: &mut Vec<Message>) -> bool {
    loop {
        match d.next_message() {
            Ok(Some(m)) => out.push(m),
            Ok(None) => return true,
            Err(_) => return false,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut whole = Decoder::new();
    whole.push(data);
    let mut all = Vec::new();
    let ok = drain(&mut whole, &mut all);
    let mut again = Vec::new();
    for m in &all {
        m.emit(&mut again);
    }
    let lossy = all.iter().any(|m| matches!(m, Message::Error { .. }));
    if !lossy {
        assert_eq!(again.as_slice(), &data[..again.len()], "messages re-encode to their bytes");
    }
    let split = data.first().map_or(0, |&b| usize::from(b)).min(data.len());
    let mut d = Decoder::new();
    let mut parts = Vec::new();
    d.push(&data[..split]);
    let mut ok2 = drain(&mut d, &mut parts);
    if ok2 {
        d.push(&data[split..]);
        ok2 = drain(&mut d, &mut parts);
    }
    assert_eq!(ok, ok2);
    if ok {
        assert_eq!(parts, all);
    }
});
