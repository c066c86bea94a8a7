//! A deterministic, animated test pattern with known content (the pattern server's screen and the
//! encoders' test input). Each quadrant exercises a different encoder path: a smooth gradient
//! (many colours: JPEG, raw), colour bars (solid fills), two-colour "text" (mono bitmaps,
//! hextile sub-rectangles) and a six-colour mosaic (palettes), plus a moving square.

/// Renders frame `frame` of the pattern as XRGB8888 little-endian, `width * 4` bytes per row.
pub fn render(width: u16, height: u16, frame: u32) -> Vec<u8> {
    let (w, h) = (u32::from(width), u32::from(height));
    let mut out = Vec::with_capacity(usize::from(width) * usize::from(height) * 4);
    let square = 48u32.min(w / 4).max(1);
    let sx = if w > square { (frame * 7) % (w - square) } else { 0 };
    let sy = if h > square { (frame * 3) % (h - square) } else { 0 };
    for y in 0..h {
        for x in 0..w {
            let rgb = if x >= sx && x < sx + square && y >= sy && y < sy + square {
                0x00ff_ff00 ^ (frame.wrapping_mul(0x0001_0307) & 0x00_3f3f)
            } else {
                pixel(x, y, w, h)
            };
            out.extend_from_slice(&rgb.to_le_bytes());
        }
    }
    out
}

/// The static background at (x, y) as 0x00RRGGBB.
pub fn pixel(x: u32, y: u32, w: u32, h: u32) -> u32 {
    let (hw, hh) = (w / 2, h / 2);
    if y < hh && x < hw {
        let r = x * 255 / hw.max(1);
        let g = y * 255 / hh.max(1);
        let b = (x + y) & 0xff;
        (r << 16) | (g << 8) | b
    } else if y < hh {
        const BARS: [u32; 8] = [0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000];
        BARS[(((x - hw) * 8) / (w - hw).max(1)).min(7) as usize]
    } else if x < hw {
        // "Text": 6x10 glyph cells with pseudo-random strokes, dark on light.
        let (cx, cy, gx, gy) = (x / 6, (y - hh) / 10, x % 6, (y - hh) % 10);
        let seed = hash(cx.wrapping_mul(31).wrapping_add(cy.wrapping_mul(977)));
        let on = gx < 5 && gy < 8 && (seed >> ((gx + gy * 5) % 31)) & 1 == 1;
        if on {
            0x202020
        } else {
            0xf0f0e8
        }
    } else {
        const MOSAIC: [u32; 6] = [0x3366cc, 0xdc3912, 0xff9900, 0x109618, 0x990099, 0x0099c6];
        MOSAIC[(hash((x / 5) ^ ((y / 3) << 12)) % 6) as usize]
    }
}

fn hash(mut v: u32) -> u32 {
    v ^= v >> 16;
    v = v.wrapping_mul(0x7feb_352d);
    v ^= v >> 15;
    v = v.wrapping_mul(0x846c_a68b);
    v ^ (v >> 16)
}

/// Publishes the pattern into `frames`: frame 0 at once, then (if `fps` > 0) the next frame every
/// `1/fps` seconds, stopping (but staying up) after `limit` frames if one is given, through a page-tracked buffer and a [`crate::damage::DamageTracker`], as the
/// machine's display will. Runs until the receivers are gone.
pub async fn animate(
    width: u16,
    height: u16,
    fps: u32,
    limit: Option<u32>,
    frames: tokio::sync::watch::Sender<Option<std::sync::Arc<crate::damage::Frame>>>,
) {
    use crate::damage::{BufferSource, DamageTracker};
    let mut src = BufferSource::new(u32::from(width), u32::from(height));
    let mut tracker = DamageTracker::new();
    let mut n = 0u32;
    loop {
        src.replace(&render(width, height, n));
        if let Some(f) = tracker.capture(&mut src) {
            if frames.send(Some(f)).is_err() {
                return;
            }
        }
        if fps == 0 || limit.is_some_and(|l| n + 1 >= l) {
            frames.closed().await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_secs_f64(1.0 / f64::from(fps))).await;
        n += 1;
    }
}

/// A 12x19 arrow cursor (white with a black outline), hotspot at its tip.
pub fn arrow_cursor() -> crate::session::CursorImage {
    const ROWS: [&str; 19] = [
        "B...........", "BB..........", "BWB.........", "BWWB........", "BWWWB.......", "BWWWWB......",
        "BWWWWWB.....", "BWWWWWWB....", "BWWWWWWWB...", "BWWWWWWWWB..", "BWWWWWWWWWB.", "BWWWWWWBBBBB",
        "BWWWBWWB....", "BWWBBWWB....", "BWB..BWWB...", "BB...BWWB...", "B.....BWWB..", "......BWWB..",
        ".......BB...",
    ];
    let rgba = ROWS
        .iter()
        .flat_map(|r| r.bytes())
        .map(|c| match c {
            b'B' => 0xff00_0000,
            b'W' => 0xffff_ffff,
            _ => 0,
        })
        .collect();
    crate::session::CursorImage { hot_x: 0, hot_y: 0, width: 12, height: 19, rgba }
}
