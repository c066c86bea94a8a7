//! RFB encoding benchmark: replays four desktop scenarios through the real session (damage
//! tracking, move detection, encoders, lossless refresh) once per encoding, as a viewer that
//! always has a request outstanding, and prints bytes/s, encoding time, updates and quality.
//!
//! ```text
//! cargo run --release -p doppel-rfb --example rfb_bench -- [--size 1280x800] [--fps 12] [--seconds 5]
//! ```
//!
//! Scenarios (synthetic frames with the structure of the real thing):
//! * `static`: a desktop of terminal text that does not change;
//! * `typing`: one 8x16 glyph appears per frame at the cursor;
//! * `scrolling`: the terminal scrolls one 16-pixel line per frame (`yes`, `dmesg`);
//! * `animation`: every pixel changes every frame (a smooth moving picture, like fbpattern).
//!
//! Bytes count everything after the first full frame (the steady state); encoding time is the
//! wall time of `Session::update` on one thread (the process does nothing else meanwhile), which
//! equals its CPU time. PSNR is the viewer's picture (the crate's independent decoder, H.264
//! through OpenH264's decoder) against the frame, averaged over frames.

#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // synthetic pictures

use std::sync::Arc;
use std::time::{Duration, Instant};

use doppel_rfb::damage::{BufferSource, DamageTracker, Frame};
use doppel_rfb::engine::{EngineConfig, Security};
use doppel_rfb::session::Session;
use doppel_rfb::testutil::decoder::Decoder;
use doppel_rfb::wire::{ClientMessage, Encoding, PixelFormat, Rect, ServerInit};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

const BG: u32 = 0x0010_1828;
const FG: u32 = 0x00c8_d0c8;

/// One glyph-like 8x16 cell of character `c`.
fn glyph(px: &mut [u8], w: usize, cx: usize, cy: usize, c: u32) {
    for y in 0..16 {
        for x in 0..8 {
            let seed = c.wrapping_mul(2_654_435_761) ^ (y as u32 * 7 + x as u32).wrapping_mul(40503);
            let on = y < 12 && x < 7 && c != 0 && (seed >> 7).is_multiple_of(3);
            let at = ((cy * 16 + y) * w + cx * 8 + x) * 4;
            px[at..at + 4].copy_from_slice(&(if on { FG } else { BG }).to_le_bytes());
        }
    }
}

/// A terminal screen whose first visible line is `first`; line `l` has `len(l)` characters.
fn terminal(w: usize, h: usize, first: u32, line_len: impl Fn(u32) -> usize) -> Vec<u8> {
    let mut px = vec![0u8; w * h * 4];
    for row in 0..h / 16 {
        let l = first + row as u32;
        for col in 0..w / 8 {
            let c = if col < line_len(l) { 33 + ((l.wrapping_mul(2_246_822_519) ^ (col as u32).wrapping_mul(3_266_489_917)) >> 9) % 90 } else { 0 };
            glyph(&mut px, w, col, row, c);
        }
    }
    px
}

fn photo(w: usize, h: usize, t: u32) -> Vec<u8> {
    let mut px = Vec::with_capacity(w * h * 4);
    for y in 0..h as u32 {
        for x in 0..w as u32 {
            let fx = f64::from(x + 5 * t) / 61.0;
            let fy = f64::from(y + 3 * t) / 47.0;
            let r = (128.0 + 100.0 * (fx.sin() * fy.cos())) as u8;
            let g = (128.0 + 100.0 * ((fx * 0.7 + fy * 0.3).sin())) as u8;
            let b = (128.0 + 100.0 * ((fy * 0.5 + f64::from(t) * 0.1).cos())) as u8;
            px.extend_from_slice(&[b, g, r, 0]);
        }
    }
    px
}

fn line_len(l: u32) -> usize {
    (l.wrapping_mul(2_654_435_761) >> 20) as usize % 90 + 10
}

fn scenario(name: &str, w: usize, h: usize, frame: u32) -> Vec<u8> {
    match name {
        "static" => terminal(w, h, 0, line_len),
        "typing" => {
            // The last line grows by one character per frame.
            let rows = (h / 16) as u32;
            terminal(w, h, 0, |l| if l + 1 == rows { (frame as usize) % (w / 8) } else { line_len(l) })
        }
        "scrolling" => terminal(w, h, frame, line_len),
        _ => photo(w, h, frame),
    }
}

struct Row {
    bytes: u64,
    updates: u64,
    encode: Duration,
    psnr_sum: f64,
    psnr_min: f64,
    frames: u64,
    copies: u64,
}

fn psnr(dec: &Decoder, f: &Frame) -> f64 {
    let src = f.source();
    let mut se = 0f64;
    for y in 0..usize::from(f.height) {
        for x in 0..usize::from(f.width) {
            let (r, g, b) = dec.rgb(x, y);
            let v = src.get(x, y);
            for (a, s) in [(r, v >> 16), (g, v >> 8), (b, v)] {
                let d = f64::from(a) - f64::from(s & 0xff);
                se += d * d;
            }
        }
    }
    let n = f64::from(f.width) * f64::from(f.height) * 3.0;
    if se == 0.0 {
        99.0
    } else {
        10.0 * (255.0 * 255.0 / (se / n)).log10()
    }
}

fn run(encodings: &[Encoding], scenario_name: &str, w: u16, h: u16, fps: u32, frames: u32) -> Row {
    let config = EngineConfig { security: Security::None, name: b"bench".to_vec(), width: w, height: h };
    let mut s = Session::new(config, [0; 16]);
    let mut sink = Vec::new();
    for hs in [&b"RFB 003.008\n"[..], &[1], &[1]] {
        s.receive(hs, &mut sink).expect("handshake");
    }
    let out = s.take_output();
    ServerInit::parse(&out[18..]).expect("ServerInit");
    let mut msg = Vec::new();
    ClientMessage::SetEncodings(encodings.to_vec()).emit(&mut msg);
    s.receive(&msg, &mut sink).expect("SetEncodings");
    s.take_output();
    let mut dec = Decoder::new(PixelFormat::XRGB8888, usize::from(w), usize::from(h));
    let mut src = BufferSource::new(u32::from(w), u32::from(h));
    let mut tracker = DamageTracker::new();
    let mut row = Row { bytes: 0, updates: 0, encode: Duration::ZERO, psnr_sum: 0.0, psnr_min: 99.0, frames: 0, copies: 0 };
    let tick = Duration::from_secs(1) / fps;
    // Frame 0 is the full first update; then `frames` frames at `fps`, then 1 s of quiet (the
    // lossless refresh falls in it and is counted).
    for i in 0..=frames + fps {
        let now = tick * i;
        s.set_now(now);
        let frame_no = i.min(frames);
        src.replace(&scenario(scenario_name, usize::from(w), usize::from(h), frame_no));
        tracker.capture(&mut src);
        let frame: Arc<Frame> = tracker.current().expect("a frame");
        let mut req = Vec::new();
        ClientMessage::FramebufferUpdateRequest { incremental: i > 0, rect: Rect::new(0, 0, w, h) }.emit(&mut req);
        s.receive(&req, &mut sink).expect("request");
        let t0 = Instant::now();
        let stats = s.update(&frame);
        let took = t0.elapsed();
        let out = s.take_output();
        let mut slice = out.as_slice();
        while !slice.is_empty() {
            dec.read_message(&mut slice).unwrap_or_else(|e| panic!("decoder: {e}"));
        }
        if i > 0 {
            if let Some(st) = stats {
                row.bytes += st.bytes;
                row.updates += 1;
                row.encode += took;
                row.copies += st.copies;
            }
            if i <= frames {
                let p = psnr(&dec, &frame);
                row.psnr_sum += p;
                row.psnr_min = row.psnr_min.min(p);
                row.frames += 1;
            }
        }
    }
    row
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size = arg(&args, "--size").unwrap_or_else(|| "1280x800".into());
    let (w, h) = size.split_once('x').and_then(|(a, b)| Some((a.parse::<u16>().ok()?, b.parse::<u16>().ok()?))).expect("--size WxH");
    let fps: u32 = arg(&args, "--fps").map_or(12, |v| v.parse().expect("--fps"));
    let seconds: u32 = arg(&args, "--seconds").map_or(5, |v| v.parse().expect("--seconds"));
    let only = arg(&args, "--encodings");
    let frames = fps * seconds;
    let q6 = Encoding(-32 + 6);
    let cr = Encoding::COPY_RECT;
    let encodings: Vec<(&str, Vec<Encoding>)> = vec![
        ("raw", vec![cr, Encoding::RAW]),
        ("hextile", vec![cr, Encoding::HEXTILE]),
        ("zrle", vec![cr, Encoding::ZRLE]),
        ("tight", vec![cr, Encoding::TIGHT]),
        ("tight-jpeg-q6", vec![cr, Encoding::TIGHT, q6]),
        ("tightpng-q6", vec![cr, Encoding::TIGHT_PNG, q6]),
        ("h264-q6", vec![cr, Encoding::H264, Encoding::TIGHT, q6]),
        ("tight-jpeg-q6-nocopyrect", vec![Encoding::TIGHT, q6]),
    ];
    println!("# doppel RFB encodings, {w}x{h}, {fps} frames/s for {seconds} s, then 1 s quiet");
    println!("| scenario | encoding | bytes/s | updates/s | encode ms/s | PSNR mean / min (dB) | CopyRects |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for sc in ["static", "typing", "scrolling", "animation"] {
        for (name, encs) in &encodings {
            if only.as_ref().is_some_and(|o| !o.split(',').any(|x| x == *name)) {
                continue;
            }
            let r = run(encs, sc, w, h, fps, frames);
            let secs = f64::from(seconds) + 1.0;
            println!(
                "| {sc} | {name} | {:.0} | {:.1} | {:.1} | {:.1} / {:.1} | {} |",
                r.bytes as f64 / secs,
                r.updates as f64 / secs,
                r.encode.as_secs_f64() * 1000.0 / secs,
                r.psnr_sum / r.frames.max(1) as f64,
                r.psnr_min,
                r.copies
            );
        }
    }
}
