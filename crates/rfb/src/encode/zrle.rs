//! ZRLE encoding (16): 64x64 tiles, each solid, packed-palette, plain RLE, palette RLE or raw
//! (whichever is smallest), all through one zlib stream per connection.

use super::Deflate;
use crate::pixel::{Source, Translator};
use crate::wire::{emit_rect_header, Encoding, Rect};

pub(crate) fn encode(
    src: &Source<'_>,
    rect: Rect,
    tr: &Translator,
    z: &mut Deflate,
    px: &mut Vec<u32>,
    out: &mut Vec<u8>,
) -> usize {
    emit_rect_header(out, rect, Encoding::ZRLE);
    let cr = tr.cpixel_range();
    let cp = cr.as_ref().map_or(tr.bytes_per_pixel(), |r| r.len());
    let mut data = Vec::new();
    let (x0, y0) = (usize::from(rect.x), usize::from(rect.y));
    let (x1, y1) = (x0 + usize::from(rect.w), y0 + usize::from(rect.h));
    let mut ty = y0;
    while ty < y1 {
        let th = (y1 - ty).min(64);
        let mut tx = x0;
        while tx < x1 {
            let tw = (x1 - tx).min(64);
            src.collect(tx, ty, tw, th, px);
            tile(px, tw, th, tr, &cr, cp, &mut data);
            tx += tw;
        }
        ty += th;
    }
    let mut compressed = Vec::with_capacity(data.len() / 4 + 64);
    z.compress(&data, &mut compressed);
    out.extend_from_slice(&u32::try_from(compressed.len()).unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&compressed);
    1
}

fn run_length(mut len: usize, out: &mut Vec<u8>) {
    len -= 1;
    while len >= 255 {
        out.push(255);
        len -= 255;
    }
    out.push(u8::try_from(len).unwrap_or(0));
}

fn tile(
    px: &[u32],
    w: usize,
    h: usize,
    tr: &Translator,
    cr: &Option<std::ops::Range<usize>>,
    cp: usize,
    out: &mut Vec<u8>,
) {
    let mut palette: Vec<u32> = Vec::with_capacity(16);
    let mut runs = 0usize;
    let mut prev = None;
    for &p in px {
        if prev != Some(p) {
            runs += 1;
            prev = Some(p);
        }
        if palette.len() <= 127 && !palette.contains(&p) {
            palette.push(p);
        }
    }
    let n = px.len();
    if palette.len() == 1 {
        out.push(1);
        tr.put_cpixel(px[0], cr, out);
        return;
    }
    let raw = n * cp;
    let plain_rle = runs * (cp + 1);
    let pal_rle = if palette.len() <= 127 { palette.len() * cp + runs * 2 } else { usize::MAX };
    let bits = match palette.len() {
        2 => 1,
        3..=4 => 2,
        5..=16 => 4,
        _ => 0,
    };
    let packed = if bits > 0 { palette.len() * cp + h * (w * bits).div_ceil(8) } else { usize::MAX };
    let best = raw.min(plain_rle).min(pal_rle).min(packed);
    let index = |p: u32| palette.iter().position(|&c| c == p).unwrap_or(0);
    if best == packed {
        out.push(u8::try_from(palette.len()).unwrap_or(0));
        for &c in &palette {
            tr.put_cpixel(c, cr, out);
        }
        for row in px.chunks(w) {
            let mut acc = 0u8;
            let mut nbits = 0;
            for &p in row {
                acc = (acc << bits) | u8::try_from(index(p)).unwrap_or(0);
                nbits += bits;
                if nbits == 8 {
                    out.push(acc);
                    acc = 0;
                    nbits = 0;
                }
            }
            if nbits > 0 {
                out.push(acc << (8 - nbits));
            }
        }
    } else if best == raw {
        out.push(0);
        for &p in px {
            tr.put_cpixel(p, cr, out);
        }
    } else {
        let with_palette = best == pal_rle;
        if with_palette {
            out.push(128 + u8::try_from(palette.len()).unwrap_or(0));
            for &c in &palette {
                tr.put_cpixel(c, cr, out);
            }
        } else {
            out.push(128);
        }
        let mut i = 0;
        while i < n {
            let c = px[i];
            let mut j = i + 1;
            while j < n && px[j] == c {
                j += 1;
            }
            let len = j - i;
            if with_palette {
                let idx = u8::try_from(index(c)).unwrap_or(0);
                if len == 1 {
                    out.push(idx);
                } else {
                    out.push(idx | 128);
                    run_length(len, out);
                }
            } else {
                tr.put_cpixel(c, cr, out);
                run_length(len, out);
            }
            i = j;
        }
    }
}
