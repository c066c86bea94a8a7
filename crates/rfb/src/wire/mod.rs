//! RFB wire types, apart from protocol logic (smoltcp's `wire/` shape).
//!
//! Every type here has a checked `parse` that never panics on any input and reports either a
//! complete value with the number of bytes it used, [`WireError::Truncated`] when more bytes are
//! needed, or an error naming what was wrong; and an `emit` that appends the exact wire bytes.
//! Unknown values that the format lets us carry (encoding numbers, fence flags, security types)
//! survive a `parse`/`emit` round trip unchanged.

mod client;
mod handshake;
mod pixel_format;
mod server;

pub use client::{ClientMessage, MAX_CUT_TEXT, MAX_FENCE_PAYLOAD};
pub use handshake::{ProtocolVersion, SecurityType, ServerInit};
pub use pixel_format::PixelFormat;
pub use server::{
    emit_bell, emit_end_of_continuous_updates, emit_fence, emit_rect_header, emit_server_cut_text,
    emit_set_colour_map_entries, emit_update_header, RectHeader,
};

/// What went wrong decoding bytes from the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not enough bytes yet; `need` is the total length the value needs so far (a lower bound).
    #[error("truncated: need at least {need} bytes")]
    Truncated { need: usize },
    /// A message type byte we do not know; its length is unknown so the stream cannot go on.
    #[error("unknown client message type {msg_type}")]
    UnknownMessage { msg_type: u8 },
    /// A QEMU (type 255) message with a sub-type we do not know.
    #[error("unknown QEMU client message sub-type {subtype}")]
    UnknownQemuMessage { subtype: u8 },
    /// A length field over the limit we accept.
    #[error("{what} length {len} is over the limit {max}")]
    TooLong { what: &'static str, len: usize, max: usize },
    /// A field with a value the protocol forbids.
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
}

/// Encoding numbers (RFC 6143 §7.7 and the community rfbproto document). Unknown numbers are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Encoding(pub i32);

impl Encoding {
    pub const RAW: Encoding = Encoding(0);
    pub const COPY_RECT: Encoding = Encoding(1);
    pub const RRE: Encoding = Encoding(2);
    pub const HEXTILE: Encoding = Encoding(5);
    pub const TIGHT: Encoding = Encoding(7);
    pub const ZRLE: Encoding = Encoding(16);
    /// Open H.264 (rfbproto "Open H.264 Encoding").
    pub const H264: Encoding = Encoding(50);
    /// TightPNG: Tight framing with PNG instead of zlib (noVNC).
    pub const TIGHT_PNG: Encoding = Encoding(-260);
    /// Tight JPEG quality level 0; levels 0..=9 are -32..=-23.
    pub const JPEG_QUALITY_0: Encoding = Encoding(-32);
    /// Tight compression level 0; levels 0..=9 are -256..=-247.
    pub const COMPRESS_LEVEL_0: Encoding = Encoding(-256);
    /// TigerVNC fine quality level 0; levels 0..=100 are -512..=-412.
    pub const FINE_QUALITY_0: Encoding = Encoding(-512);
    /// TigerVNC chroma subsampling: -768 (1x) .. -763.
    pub const SUBSAMP_1X: Encoding = Encoding(-768);
    pub const CURSOR: Encoding = Encoding(-239);
    pub const DESKTOP_SIZE: Encoding = Encoding(-223);
    pub const LAST_RECT: Encoding = Encoding(-224);
    pub const QEMU_EXT_KEY: Encoding = Encoding(-258);
    pub const DESKTOP_NAME: Encoding = Encoding(-307);
    pub const EXTENDED_DESKTOP_SIZE: Encoding = Encoding(-308);
    pub const FENCE: Encoding = Encoding(-312);
    pub const CONTINUOUS_UPDATES: Encoding = Encoding(-313);

    /// A short name for logs and meters.
    pub fn name(self) -> &'static str {
        match self {
            Self::RAW => "raw",
            Self::COPY_RECT => "copyrect",
            Self::RRE => "rre",
            Self::HEXTILE => "hextile",
            Self::TIGHT => "tight",
            Self::ZRLE => "zrle",
            Self::H264 => "h264",
            Self::TIGHT_PNG => "tightpng",
            Self::CURSOR => "cursor",
            Self::DESKTOP_SIZE => "desktop-size",
            Self::LAST_RECT => "last-rect",
            Self::QEMU_EXT_KEY => "qemu-ext-key",
            Self::DESKTOP_NAME => "desktop-name",
            Self::EXTENDED_DESKTOP_SIZE => "ext-desktop-size",
            Self::FENCE => "fence",
            Self::CONTINUOUS_UPDATES => "continuous-updates",
            _ => "other",
        }
    }
}

/// Fence flags (rfbproto "Fence"). Bits we do not know are kept as they are.
pub mod fence_flags {
    pub const BLOCK_BEFORE: u32 = 1 << 0;
    pub const BLOCK_AFTER: u32 = 1 << 1;
    pub const SYNC_NEXT: u32 = 1 << 2;
    pub const REQUEST: u32 = 1 << 31;
    /// The flags a server may echo back.
    pub const SUPPORTED: u32 = BLOCK_BEFORE | BLOCK_AFTER | SYNC_NEXT;
}

/// A rectangle in framebuffer pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rect {
    pub x: u16,
    pub y: u16,
    pub w: u16,
    pub h: u16,
}

impl Rect {
    pub fn new(x: u16, y: u16, w: u16, h: u16) -> Self {
        Rect { x, y, w, h }
    }

    pub fn is_empty(&self) -> bool {
        self.w == 0 || self.h == 0
    }

    /// The part of `self` inside a `width` x `height` framebuffer.
    pub fn clip(&self, width: u16, height: u16) -> Rect {
        let x = self.x.min(width);
        let y = self.y.min(height);
        let x2 = (u32::from(self.x) + u32::from(self.w)).min(u32::from(width));
        let y2 = (u32::from(self.y) + u32::from(self.h)).min(u32::from(height));
        Rect {
            x,
            y,
            w: u16::try_from(x2.saturating_sub(u32::from(x))).unwrap_or(0),
            h: u16::try_from(y2.saturating_sub(u32::from(y))).unwrap_or(0),
        }
    }

    /// The overlap of two rectangles (empty if none).
    pub fn intersect(&self, other: &Rect) -> Rect {
        let x1 = self.x.max(other.x);
        let y1 = self.y.max(other.y);
        let x2 = (u32::from(self.x) + u32::from(self.w)).min(u32::from(other.x) + u32::from(other.w));
        let y2 = (u32::from(self.y) + u32::from(self.h)).min(u32::from(other.y) + u32::from(other.h));
        if x2 <= u32::from(x1) || y2 <= u32::from(y1) {
            return Rect::default();
        }
        Rect {
            x: x1,
            y: y1,
            w: u16::try_from(x2 - u32::from(x1)).unwrap_or(0),
            h: u16::try_from(y2 - u32::from(y1)).unwrap_or(0),
        }
    }

    pub fn area(&self) -> u64 {
        u64::from(self.w) * u64::from(self.h)
    }
}

pub(crate) fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(crate) fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

pub(crate) fn need(buf: &[u8], n: usize) -> Result<(), WireError> {
    if buf.len() < n {
        Err(WireError::Truncated { need: n })
    } else {
        Ok(())
    }
}
