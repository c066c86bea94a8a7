//! Fuzz target bodies, shared by `fuzz/` (cargo fuzz) and the in-tree smoke test that runs them
//! over the seed corpus and mutations of it on every `cargo test`.

use super::decoder::Decoder;
use crate::damage::{BufferSource, DamageTracker};
use crate::engine::{EngineConfig, Security};
use crate::session::Session;
use crate::wire::{ClientMessage, WireError};

/// Client messages: parsing never panics; whatever parses re-emits to bytes that parse to the
/// same message; and a session fed these bytes after the handshake either closes with an error
/// or keeps producing output that the independent decoder accepts.
pub fn client_messages(data: &[u8]) {
    let mut at = 0;
    while at < data.len() {
        match ClientMessage::parse(&data[at..]) {
            Ok((m, n)) => {
                assert!(n > 0);
                let mut out = Vec::new();
                m.emit(&mut out);
                assert_eq!(ClientMessage::parse(&out), Ok((m, out.len())));
                at += n;
            }
            Err(WireError::Truncated { need }) => {
                assert!(need > data.len() - at);
                break;
            }
            Err(_) => break,
        }
    }

    let (w, h) = (40u16, 24u16);
    let mut src = BufferSource::new(u32::from(w), u32::from(h));
    src.replace(&crate::pattern::render(w, h, 0));
    let mut tracker = DamageTracker::new();
    let Some(mut frame) = tracker.capture(&mut src) else { return };
    let config = EngineConfig { security: Security::None, name: b"fuzz".to_vec(), width: w, height: h };
    let mut s = Session::new(config, [0; 16]);
    let mut input = Vec::new();
    let mut dec = Decoder::new(crate::wire::PixelFormat::XRGB8888, usize::from(w), usize::from(h));
    for hs in [&b"RFB 003.008\n"[..], &[1], &[1]] {
        if s.receive(hs, &mut input).is_err() {
            return;
        }
    }
    let mut out = s.take_output();
    let (_, used) = crate::wire::ServerInit::parse(&out[18..]).unwrap_or_else(|e| panic!("ServerInit: {e}"));
    out.drain(..18 + used);
    let chunk = usize::from(data.first().copied().unwrap_or(7) % 16) + 1;
    for (i, piece) in data.chunks(chunk).enumerate() {
        let r = s.receive(piece, &mut input);
        if i % 3 == 2 {
            src.replace(&crate::pattern::render(w, h, u32::try_from(i).unwrap_or(0)));
            if let Some(f) = tracker.capture(&mut src) {
                frame = f;
            }
        }
        if r.is_ok() {
            dec.pf = *s.engine().settings().translator.format();
            s.update(&frame);
        }
        out.extend(s.take_output());
        let mut slice = out.as_slice();
        while !slice.is_empty() {
            if let Err(e) = dec.read_message(&mut slice) {
                panic!("server output the decoder rejects: {e}");
            }
        }
        out.clear();
        if r.is_err() {
            return;
        }
    }
}
