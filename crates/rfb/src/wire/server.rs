//! Server-to-client messages (RFC 6143 §7.6 and rfbproto extensions). The encoders write rectangle
//! payloads; this module writes the framing around them.

use super::{be16, be32, need, Encoding, Rect, WireError, MAX_FENCE_PAYLOAD};

/// FramebufferUpdate header: type 0, padding, number of rectangles (0xFFFF with LastRect).
pub fn emit_update_header(out: &mut Vec<u8>, rects: u16) {
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&rects.to_be_bytes());
}

/// A rectangle header: position, size and encoding (pseudo-encodings included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RectHeader {
    pub rect: Rect,
    pub encoding: Encoding,
}

impl RectHeader {
    pub const LEN: usize = 12;

    pub fn parse(buf: &[u8]) -> Result<RectHeader, WireError> {
        need(buf, Self::LEN)?;
        Ok(RectHeader {
            rect: Rect::new(be16(buf, 0), be16(buf, 2), be16(buf, 4), be16(buf, 6)),
            encoding: Encoding(i32::from_be_bytes(be32(buf, 8).to_be_bytes())),
        })
    }
}

pub fn emit_rect_header(out: &mut Vec<u8>, rect: Rect, encoding: Encoding) {
    for v in [rect.x, rect.y, rect.w, rect.h] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&encoding.0.to_be_bytes());
}

/// SetColourMapEntries (type 1): `colours` are 16-bit (r, g, b).
pub fn emit_set_colour_map_entries(out: &mut Vec<u8>, first: u16, colours: &[(u16, u16, u16)]) {
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&first.to_be_bytes());
    let n = u16::try_from(colours.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    for (r, g, b) in colours.iter().take(usize::from(n)) {
        out.extend_from_slice(&r.to_be_bytes());
        out.extend_from_slice(&g.to_be_bytes());
        out.extend_from_slice(&b.to_be_bytes());
    }
}

pub fn emit_bell(out: &mut Vec<u8>) {
    out.push(2);
}

pub fn emit_server_cut_text(out: &mut Vec<u8>, text: &[u8]) {
    out.extend_from_slice(&[3, 0, 0, 0]);
    let n = u32::try_from(text.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(text);
}

/// EndOfContinuousUpdates (type 150).
pub fn emit_end_of_continuous_updates(out: &mut Vec<u8>) {
    out.push(150);
}

/// ServerFence (type 248). Payloads over 64 bytes are cut to 64.
pub fn emit_fence(out: &mut Vec<u8>, flags: u32, payload: &[u8]) {
    out.extend_from_slice(&[248, 0, 0, 0]);
    out.extend_from_slice(&flags.to_be_bytes());
    let n = payload.len().min(MAX_FENCE_PAYLOAD);
    out.push(u8::try_from(n).unwrap_or(0));
    out.extend_from_slice(&payload[..n]);
}
