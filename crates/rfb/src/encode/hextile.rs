//! Hextile encoding (5): 16x16 tiles, each raw, solid, two-colour or coloured sub-rectangles,
//! whichever is smallest. Background and foreground carry over between tiles as the protocol
//! allows; they are forgotten after a raw tile and at the start of each rectangle.

use super::subrects;
use crate::pixel::{Source, Translator};
use crate::wire::{emit_rect_header, Encoding, Rect};

const RAW: u8 = 1;
const BG: u8 = 2;
const FG: u8 = 4;
const ANY: u8 = 8;
const COLOURED: u8 = 16;

pub(crate) fn encode(src: &Source<'_>, rect: Rect, tr: &Translator, px: &mut Vec<u32>, out: &mut Vec<u8>) -> usize {
    emit_rect_header(out, rect, Encoding::HEXTILE);
    let bpp = tr.bytes_per_pixel();
    let mut last_bg: Option<u32> = None;
    let mut last_fg: Option<u32> = None;
    let (x0, y0) = (usize::from(rect.x), usize::from(rect.y));
    let (x1, y1) = (x0 + usize::from(rect.w), y0 + usize::from(rect.h));
    let mut ty = y0;
    while ty < y1 {
        let th = (y1 - ty).min(16);
        let mut tx = x0;
        while tx < x1 {
            let tw = (x1 - tx).min(16);
            src.collect(tx, ty, tw, th, px);
            let mut colours: Vec<(u32, usize)> = Vec::with_capacity(4);
            for &p in px.iter() {
                match colours.iter_mut().find(|(c, _)| *c == p) {
                    Some(e) => e.1 += 1,
                    None => colours.push((p, 1)),
                }
            }
            let bg = colours.iter().max_by_key(|(_, n)| *n).map_or(0, |(c, _)| *c);
            let raw_len = tw * th * bpp;
            let mut flags = 0u8;
            let mut body = Vec::new();
            if bg_changed(last_bg, bg) {
                flags |= BG;
                tr.put_rgb(bg, &mut body);
            }
            let mut new_fg = last_fg;
            if colours.len() > 1 {
                let two = colours.len() == 2;
                // Limit: a sub-rectangle costs 2 bytes (+ a pixel when coloured); 255 at most.
                let per = if two { 2 } else { 2 + bpp };
                let limit = (raw_len / per).min(255);
                match subrects(px, tw, th, bg, limit) {
                    Some(rects) => {
                        flags |= ANY;
                        if two {
                            let fg = rects[0].4;
                            if last_fg != Some(fg) {
                                flags |= FG;
                                tr.put_rgb(fg, &mut body);
                                new_fg = Some(fg);
                            }
                        } else {
                            flags |= COLOURED;
                            new_fg = None;
                        }
                        body.push(u8::try_from(rects.len()).unwrap_or(255));
                        for (x, y, w, h, c) in rects {
                            if !two {
                                tr.put_rgb(c, &mut body);
                            }
                            body.push(nibbles(x, y));
                            body.push(nibbles(w - 1, h - 1));
                        }
                    }
                    None => flags = RAW,
                }
            }
            if flags & RAW == 0 && body.len() >= raw_len {
                flags = RAW;
            }
            out.push(flags);
            if flags == RAW {
                for y in ty..ty + th {
                    for x in tx..tx + tw {
                        tr.put_rgb(src.get(x, y), out);
                    }
                }
                last_bg = None;
                last_fg = None;
            } else {
                out.extend_from_slice(&body);
                last_bg = Some(bg);
                last_fg = new_fg;
            }
            tx += tw;
        }
        ty += th;
    }
    1
}

fn bg_changed(last: Option<u32>, bg: u32) -> bool {
    last != Some(bg)
}

fn nibbles(hi: usize, lo: usize) -> u8 {
    u8::try_from(((hi & 15) << 4) | (lo & 15)).unwrap_or(0)
}
