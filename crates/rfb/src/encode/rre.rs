//! RRE encoding (2): a background colour and solid sub-rectangles. Falls back to Raw for a
//! rectangle whose RRE form would be larger.

use super::{dominant, raw, subrects};
use crate::pixel::{Source, Translator};
use crate::wire::{emit_rect_header, Encoding, Rect};

pub(crate) fn encode(src: &Source<'_>, rect: Rect, tr: &Translator, px: &mut Vec<u32>, out: &mut Vec<u8>) -> usize {
    let (w, h) = (usize::from(rect.w), usize::from(rect.h));
    src.collect(usize::from(rect.x), usize::from(rect.y), w, h, px);
    let bpp = tr.bytes_per_pixel();
    let bg = dominant(px);
    // Each sub-rectangle costs a pixel and 8 bytes; beyond the raw size, Raw wins.
    let limit = (w * h * bpp) / (bpp + 8);
    let Some(rects) = subrects(px, w, h, bg, limit) else {
        return raw::encode(src, rect, tr, out);
    };
    emit_rect_header(out, rect, Encoding::RRE);
    out.extend_from_slice(&u32::try_from(rects.len()).unwrap_or(0).to_be_bytes());
    tr.put_rgb(bg, out);
    for (x, y, rw, rh, c) in rects {
        tr.put_rgb(c, out);
        for v in [x, y, rw, rh] {
            out.extend_from_slice(&u16::try_from(v).unwrap_or(0).to_be_bytes());
        }
    }
    1
}
