//! Client-to-server messages (RFC 6143 §7.5 and rfbproto extensions).

use super::{be16, be32, need, Encoding, PixelFormat, Rect, WireError};

/// Longest ClientCutText we accept; a longer one is a hostile client.
pub const MAX_CUT_TEXT: usize = 1 << 20;
/// Longest Fence payload the protocol allows.
pub const MAX_FENCE_PAYLOAD: usize = 64;
/// Most screens a SetDesktopSize may list.
const MAX_SCREENS: usize = 255;

/// One message from the client, fully parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientMessage {
    /// Type 0.
    SetPixelFormat(PixelFormat),
    /// Type 2. Unknown encoding numbers are kept.
    SetEncodings(Vec<Encoding>),
    /// Type 3.
    FramebufferUpdateRequest { incremental: bool, rect: Rect },
    /// Type 4: an X keysym.
    KeyEvent { down: bool, keysym: u32 },
    /// Type 5: absolute position and button mask.
    PointerEvent { buttons: u8, x: u16, y: u16 },
    /// Type 6: Latin-1 text.
    ClientCutText(Vec<u8>),
    /// Type 150: start or stop continuous updates for a region.
    EnableContinuousUpdates { enable: bool, rect: Rect },
    /// Type 248: fence (flags kept whole, unknown bits included).
    Fence { flags: u32, payload: Vec<u8> },
    /// Type 251: the client asks for a new desktop size. Screens are kept as raw 16-byte records.
    SetDesktopSize { width: u16, height: u16, screens: Vec<[u8; 16]> },
    /// Type 255, sub-type 0: QEMU extended key event (keysym plus XT scancode).
    QemuExtKey { down: bool, keysym: u32, scancode: u32 },
}

impl ClientMessage {
    /// Parses one message from the front of `buf`. Returns the message and how many bytes it used,
    /// or [`WireError::Truncated`] when `buf` holds only part of it. Never panics.
    pub fn parse(buf: &[u8]) -> Result<(ClientMessage, usize), WireError> {
        need(buf, 1)?;
        match buf[0] {
            0 => {
                need(buf, 20)?;
                Ok((ClientMessage::SetPixelFormat(PixelFormat::parse(&buf[4..20])?), 20))
            }
            2 => {
                need(buf, 4)?;
                let n = usize::from(be16(buf, 2));
                let len = 4 + 4 * n;
                need(buf, len)?;
                let encs = (0..n)
                    .map(|i| Encoding(i32::from_be_bytes(be32(buf, 4 + 4 * i).to_be_bytes())))
                    .collect();
                Ok((ClientMessage::SetEncodings(encs), len))
            }
            3 => {
                need(buf, 10)?;
                Ok((
                    ClientMessage::FramebufferUpdateRequest {
                        incremental: buf[1] != 0,
                        rect: Rect::new(be16(buf, 2), be16(buf, 4), be16(buf, 6), be16(buf, 8)),
                    },
                    10,
                ))
            }
            4 => {
                need(buf, 8)?;
                Ok((ClientMessage::KeyEvent { down: buf[1] != 0, keysym: be32(buf, 4) }, 8))
            }
            5 => {
                need(buf, 6)?;
                Ok((
                    ClientMessage::PointerEvent { buttons: buf[1], x: be16(buf, 2), y: be16(buf, 4) },
                    6,
                ))
            }
            6 => {
                need(buf, 8)?;
                let n = be32(buf, 4);
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                if n > MAX_CUT_TEXT {
                    // Extended clipboard uses a negative length; we do not advertise it.
                    return Err(WireError::TooLong { what: "ClientCutText", len: n, max: MAX_CUT_TEXT });
                }
                need(buf, 8 + n)?;
                Ok((ClientMessage::ClientCutText(buf[8..8 + n].to_vec()), 8 + n))
            }
            150 => {
                need(buf, 10)?;
                Ok((
                    ClientMessage::EnableContinuousUpdates {
                        enable: buf[1] != 0,
                        rect: Rect::new(be16(buf, 2), be16(buf, 4), be16(buf, 6), be16(buf, 8)),
                    },
                    10,
                ))
            }
            248 => {
                need(buf, 9)?;
                let flags = be32(buf, 4);
                let n = usize::from(buf[8]);
                if n > MAX_FENCE_PAYLOAD {
                    return Err(WireError::TooLong { what: "Fence payload", len: n, max: MAX_FENCE_PAYLOAD });
                }
                need(buf, 9 + n)?;
                Ok((ClientMessage::Fence { flags, payload: buf[9..9 + n].to_vec() }, 9 + n))
            }
            251 => {
                need(buf, 8)?;
                let n = usize::from(buf[6]);
                if n > MAX_SCREENS {
                    return Err(WireError::TooLong { what: "SetDesktopSize screens", len: n, max: MAX_SCREENS });
                }
                let len = 8 + 16 * n;
                need(buf, len)?;
                let screens = buf[8..len]
                    .chunks_exact(16)
                    .map(|c| {
                        let mut s = [0u8; 16];
                        s.copy_from_slice(c);
                        s
                    })
                    .collect();
                Ok((
                    ClientMessage::SetDesktopSize { width: be16(buf, 2), height: be16(buf, 4), screens },
                    len,
                ))
            }
            255 => {
                need(buf, 2)?;
                match buf[1] {
                    0 => {
                        need(buf, 12)?;
                        Ok((
                            ClientMessage::QemuExtKey {
                                down: be16(buf, 2) != 0,
                                keysym: be32(buf, 4),
                                scancode: be32(buf, 8),
                            },
                            12,
                        ))
                    }
                    subtype => Err(WireError::UnknownQemuMessage { subtype }),
                }
            }
            msg_type => Err(WireError::UnknownMessage { msg_type }),
        }
    }

    /// Appends the wire form (what a client sends). Used by tests, the fuzz target and test clients.
    pub fn emit(&self, out: &mut Vec<u8>) {
        match self {
            ClientMessage::SetPixelFormat(pf) => {
                out.extend_from_slice(&[0, 0, 0, 0]);
                pf.emit(out);
            }
            ClientMessage::SetEncodings(encs) => {
                out.extend_from_slice(&[2, 0]);
                let n = u16::try_from(encs.len()).unwrap_or(u16::MAX);
                out.extend_from_slice(&n.to_be_bytes());
                for e in encs.iter().take(usize::from(n)) {
                    out.extend_from_slice(&e.0.to_be_bytes());
                }
            }
            ClientMessage::FramebufferUpdateRequest { incremental, rect } => {
                out.extend_from_slice(&[3, u8::from(*incremental)]);
                emit_rect(out, rect);
            }
            ClientMessage::KeyEvent { down, keysym } => {
                out.extend_from_slice(&[4, u8::from(*down), 0, 0]);
                out.extend_from_slice(&keysym.to_be_bytes());
            }
            ClientMessage::PointerEvent { buttons, x, y } => {
                out.extend_from_slice(&[5, *buttons]);
                out.extend_from_slice(&x.to_be_bytes());
                out.extend_from_slice(&y.to_be_bytes());
            }
            ClientMessage::ClientCutText(text) => {
                out.extend_from_slice(&[6, 0, 0, 0]);
                let n = u32::try_from(text.len()).unwrap_or(u32::MAX);
                out.extend_from_slice(&n.to_be_bytes());
                out.extend_from_slice(text);
            }
            ClientMessage::EnableContinuousUpdates { enable, rect } => {
                out.extend_from_slice(&[150, u8::from(*enable)]);
                emit_rect(out, rect);
            }
            ClientMessage::Fence { flags, payload } => {
                out.extend_from_slice(&[248, 0, 0, 0]);
                out.extend_from_slice(&flags.to_be_bytes());
                let n = payload.len().min(MAX_FENCE_PAYLOAD);
                out.push(u8::try_from(n).unwrap_or(0));
                out.extend_from_slice(&payload[..n]);
            }
            ClientMessage::SetDesktopSize { width, height, screens } => {
                out.extend_from_slice(&[251, 0]);
                out.extend_from_slice(&width.to_be_bytes());
                out.extend_from_slice(&height.to_be_bytes());
                let n = screens.len().min(MAX_SCREENS);
                out.extend_from_slice(&[u8::try_from(n).unwrap_or(0), 0]);
                for s in &screens[..n] {
                    out.extend_from_slice(s);
                }
            }
            ClientMessage::QemuExtKey { down, keysym, scancode } => {
                out.extend_from_slice(&[255, 0]);
                out.extend_from_slice(&u16::from(*down).to_be_bytes());
                out.extend_from_slice(&keysym.to_be_bytes());
                out.extend_from_slice(&scancode.to_be_bytes());
            }
        }
    }
}

fn emit_rect(out: &mut Vec<u8>, r: &Rect) {
    for v in [r.x, r.y, r.w, r.h] {
        out.extend_from_slice(&v.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<ClientMessage> {
        vec![
            ClientMessage::SetPixelFormat(PixelFormat::BGR233),
            ClientMessage::SetEncodings(vec![Encoding::TIGHT, Encoding(-12345), Encoding(0x7777)]),
            ClientMessage::FramebufferUpdateRequest { incremental: true, rect: Rect::new(1, 2, 3, 4) },
            ClientMessage::KeyEvent { down: true, keysym: 0xff0d },
            ClientMessage::PointerEvent { buttons: 0x81, x: 640, y: 480 },
            ClientMessage::ClientCutText(b"hello".to_vec()),
            ClientMessage::EnableContinuousUpdates { enable: true, rect: Rect::new(0, 0, 800, 600) },
            ClientMessage::Fence { flags: 0x8000_0007 | 0x100, payload: vec![1, 2, 3] },
            ClientMessage::SetDesktopSize { width: 1024, height: 768, screens: vec![[7; 16]] },
            ClientMessage::QemuExtKey { down: false, keysym: 0x61, scancode: 0x1e },
        ]
    }

    #[test]
    fn every_message_round_trips_and_every_prefix_is_truncated() {
        for m in samples() {
            let mut out = Vec::new();
            m.emit(&mut out);
            assert_eq!(ClientMessage::parse(&out), Ok((m.clone(), out.len())), "{m:?}");
            for cut in 0..out.len() {
                assert!(
                    matches!(ClientMessage::parse(&out[..cut]), Err(WireError::Truncated { .. })),
                    "{m:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn hostile_lengths_are_refused() {
        let mut b = vec![6, 0, 0, 0];
        b.extend_from_slice(&0xffff_fff0u32.to_be_bytes());
        assert!(matches!(ClientMessage::parse(&b), Err(WireError::TooLong { .. })));
        assert_eq!(ClientMessage::parse(&[99]), Err(WireError::UnknownMessage { msg_type: 99 }));
        assert_eq!(ClientMessage::parse(&[255, 1]), Err(WireError::UnknownQemuMessage { subtype: 1 }));
        let fence = [248, 0, 0, 0, 0, 0, 0, 0, 65];
        assert!(matches!(ClientMessage::parse(&fence), Err(WireError::TooLong { .. })));
    }
}
