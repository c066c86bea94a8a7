//! Rectangle encoders. Each writes one or more complete rectangles (header and payload) for a
//! region of a [`Source`], in the client's pixel format, and returns how many rectangles it wrote.
//!
//! Per-connection state (the ZRLE zlib stream, Tight's four zlib streams) lives in [`Encoders`],
//! one per client connection, since each stream is continued across updates.

pub mod copyrect;
#[cfg(feature = "h264")]
pub mod h264;
mod hextile;
mod raw;
mod rre;
mod tight;
mod zlib;
mod zrle;

use crate::pixel::{Source, Translator};
use crate::wire::{emit_rect_header, Encoding, Rect};

pub use tight::{Subsampling, TightOptions, JPEG_QUALITY_TABLE};
pub(crate) use zlib::Deflate;

/// Sub-rectangles found greedily in a tile: (x, y, w, h, colour) relative to the tile.
pub(crate) type Subrect = (usize, usize, usize, usize, u32);

/// Covers every pixel of `px` (w x h) that is not `bg` with rectangles of one colour. Stops and
/// returns `None` once more than `limit` rectangles would be needed.
pub(crate) fn subrects(px: &[u32], w: usize, h: usize, bg: u32, limit: usize) -> Option<Vec<Subrect>> {
    let mut done = vec![false; w * h];
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if done[i] || px[i] == bg {
                continue;
            }
            let c = px[i];
            let mut rw = 1;
            while x + rw < w && px[i + rw] == c && !done[i + rw] {
                rw += 1;
            }
            let mut rh = 1;
            'down: while y + rh < h {
                let row = (y + rh) * w + x;
                for k in 0..rw {
                    if px[row + k] != c || done[row + k] {
                        break 'down;
                    }
                }
                rh += 1;
            }
            for yy in y..y + rh {
                for xx in x..x + rw {
                    done[yy * w + xx] = true;
                }
            }
            out.push((x, y, rw, rh, c));
            if out.len() > limit {
                return None;
            }
        }
    }
    Some(out)
}

/// The most frequent colour of a pixel run (ties: the first seen).
pub(crate) fn dominant(px: &[u32]) -> u32 {
    let mut counts: Vec<(u32, usize)> = Vec::new();
    for &p in px {
        if let Some(e) = counts.iter_mut().find(|(c, _)| *c == p) {
            e.1 += 1;
        } else if counts.len() < 64 {
            counts.push((p, 1));
        }
    }
    counts.iter().max_by_key(|(_, n)| *n).map_or(0, |(c, _)| *c)
}

/// Per-connection encoder state.
#[derive(Debug)]
pub struct Encoders {
    zrle: Deflate,
    tight: tight::TightState,
    #[cfg(feature = "h264")]
    h264: h264::H264State,
    scratch: Vec<u32>,
}

impl Default for Encoders {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoders {
    pub fn new() -> Encoders {
        Encoders {
            zrle: Deflate::new(6),
            tight: tight::TightState::new(),
            #[cfg(feature = "h264")]
            h264: h264::H264State::new(),
            scratch: Vec::new(),
        }
    }

    /// Whether this build can produce `encoding` (anything else is sent as Raw).
    pub fn can_encode(encoding: Encoding) -> bool {
        matches!(
            encoding,
            Encoding::RAW | Encoding::RRE | Encoding::HEXTILE | Encoding::ZRLE | Encoding::TIGHT | Encoding::TIGHT_PNG
        ) || (cfg!(feature = "h264") && encoding == Encoding::H264)
    }

    /// Rectangles sent lossily (JPEG) since the last call.
    pub fn take_lossy(&mut self) -> Vec<Rect> {
        std::mem::take(&mut self.tight.lossy)
    }

    /// Encodes `rect` as one Open H.264 rectangle; `None` if it cannot (odd or tiny size, no H.264
    /// in this build, encoder failure), and the caller uses another encoding.
    pub fn encode_h264(&mut self, src: &Source<'_>, rect: Rect, quality: Option<u8>, out: &mut Vec<u8>) -> Option<usize> {
        #[cfg(feature = "h264")]
        {
            self.h264.encode(src, rect, quality, out)
        }
        #[cfg(not(feature = "h264"))]
        {
            let _ = (src, rect, quality, out);
            None
        }
    }

    /// Encodes `rect` (already clipped to `src`) with `encoding`, appending whole rectangles to
    /// `out`. Encodings without an encoder here are sent as Raw. Returns the rectangle count.
    pub fn encode(
        &mut self,
        encoding: Encoding,
        src: &Source<'_>,
        rect: Rect,
        tr: &Translator,
        tight: &TightOptions,
        out: &mut Vec<u8>,
    ) -> usize {
        if rect.is_empty() {
            return 0;
        }
        match encoding {
            Encoding::RRE => rre::encode(src, rect, tr, &mut self.scratch, out),
            Encoding::HEXTILE => hextile::encode(src, rect, tr, &mut self.scratch, out),
            Encoding::ZRLE => zrle::encode(src, rect, tr, &mut self.zrle, &mut self.scratch, out),
            Encoding::TIGHT => self.tight.encode(src, rect, tr, tight, false, &mut self.scratch, out),
            Encoding::TIGHT_PNG => self.tight.encode(src, rect, tr, tight, true, &mut self.scratch, out),
            _ => raw::encode(src, rect, tr, out),
        }
    }
}

/// CopyRect (encoding 1): the client copies `from`'s top-left corner's area to `to`.
pub fn emit_copy_rect(to: Rect, from_x: u16, from_y: u16, out: &mut Vec<u8>) {
    emit_rect_header(out, to, Encoding::COPY_RECT);
    out.extend_from_slice(&from_x.to_be_bytes());
    out.extend_from_slice(&from_y.to_be_bytes());
}

/// The Cursor pseudo-encoding: hotspot, size, pixels in the client's format, and a 1-bit mask
/// (`rgba` is w*h 0xAARRGGBB; alpha >= 128 is opaque).
pub fn emit_cursor(hot_x: u16, hot_y: u16, w: u16, h: u16, rgba: &[u32], tr: &Translator, out: &mut Vec<u8>) {
    emit_rect_header(out, Rect::new(hot_x, hot_y, w, h), Encoding::CURSOR);
    let (w, h) = (usize::from(w), usize::from(h));
    for i in 0..w * h {
        tr.put_rgb(rgba.get(i).copied().unwrap_or(0) & 0xff_ffff, out);
    }
    let row = w.div_ceil(8);
    for y in 0..h {
        let mut bits = vec![0u8; row];
        for x in 0..w {
            if rgba.get(y * w + x).copied().unwrap_or(0) >> 24 >= 128 {
                bits[x / 8] |= 0x80 >> (x % 8);
            }
        }
        out.extend_from_slice(&bits);
    }
}

/// The DesktopName pseudo-encoding.
pub fn emit_desktop_name(name: &[u8], out: &mut Vec<u8>) {
    emit_rect_header(out, Rect::default(), Encoding::DESKTOP_NAME);
    out.extend_from_slice(&u32::try_from(name.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(name);
}

/// The DesktopSize pseudo-encoding: the framebuffer is now `w` x `h`.
pub fn emit_desktop_size(w: u16, h: u16, out: &mut Vec<u8>) {
    emit_rect_header(out, Rect::new(0, 0, w, h), Encoding::DESKTOP_SIZE);
}

/// The ExtendedDesktopSize pseudo-encoding: why (`reason`: 0 server, 1 this viewer's request,
/// 2 another viewer's), the result (`status`: 0 ok, 1 prohibited, 2 out of resources, 3 invalid
/// layout), the framebuffer size, and the screen layout: one screen (id 0) covering it all.
pub fn emit_extended_desktop_size(reason: u16, status: u16, w: u16, h: u16, out: &mut Vec<u8>) {
    emit_rect_header(out, Rect::new(reason, status, w, h), Encoding::EXTENDED_DESKTOP_SIZE);
    out.extend_from_slice(&[1, 0, 0, 0]);
    out.extend_from_slice(&0u32.to_be_bytes()); // screen id
    for v in [0, 0, w, h] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&0u32.to_be_bytes()); // flags
}

/// The LastRect pseudo-encoding (ends an update whose count was sent as 0xFFFF).
pub fn emit_last_rect(out: &mut Vec<u8>) {
    emit_rect_header(out, Rect::default(), Encoding::LAST_RECT);
}

/// Acknowledges the QEMU extended key event pseudo-encoding.
pub fn emit_qemu_ext_key_ack(out: &mut Vec<u8>) {
    emit_rect_header(out, Rect::default(), Encoding::QEMU_EXT_KEY);
}
