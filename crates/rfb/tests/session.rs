//! The session sans-IO, against the independent decoder: CopyRect move detection, the
//! ExtendedDesktopSize exchange, the lossless refresh, TightPNG, Open H.264 and fence pacing.

// Synthetic pictures: truncating coordinates and colour values is the intent.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::sync::Arc;
use std::time::Duration;

use doppel_rfb::damage::{BufferSource, DamageTracker, Frame};
use doppel_rfb::engine::{EngineConfig, Security};
use doppel_rfb::session::{eds, Session, UpdateStats};
use doppel_rfb::testutil::decoder::{Decoder, ServerMessage};
use doppel_rfb::wire::{fence_flags, ClientMessage, Encoding, PixelFormat, Rect, ServerInit};

const W: u16 = 320;
const H: u16 = 240;

/// "Terminal text": 16-pixel lines of glyph-like blocks; `first_line` scrolls it.
fn text(w: u16, h: u16, first_line: u32) -> Vec<u8> {
    let (w, h) = (usize::from(w), usize::from(h));
    let mut px = vec![0u8; w * h * 4];
    for y in 0..h {
        for x in 0..w {
            let line = (y / 16) as u32 + first_line;
            let glyph = (x / 8) as u32;
            let seed = line.wrapping_mul(2_654_435_761) ^ glyph.wrapping_mul(40503);
            let on = y % 16 < 12 && (seed >> ((y % 16) + (x % 8))) & 3 == 0 && glyph % 9 != 8;
            let v: u32 = if on { 0x00c8_d0c8 } else { 0x0010_1828 };
            px[(y * w + x) * 4..(y * w + x) * 4 + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    px
}

/// A smooth, many-coloured picture (photo-like), moving with `t`.
fn photo(w: u16, h: u16, t: u32) -> Vec<u8> {
    let mut px = Vec::with_capacity(usize::from(w) * usize::from(h) * 4);
    for y in 0..u32::from(h) {
        for x in 0..u32::from(w) {
            let fx = f64::from(x + 3 * t) / 23.0;
            let fy = f64::from(y + 2 * t) / 17.0;
            let r = (128.0 + 100.0 * (fx.sin() * fy.cos())) as u8;
            let g = (128.0 + 100.0 * ((fx * 0.7 + fy * 0.3).sin())) as u8;
            let b = (128.0 + 100.0 * ((fy * 0.5).cos())) as u8;
            px.extend_from_slice(&[b, g, r, 0]);
        }
    }
    px
}

struct Viewer {
    s: Session,
    dec: Decoder,
    now: Duration,
}

impl Viewer {
    fn connect(encodings: &[Encoding]) -> Viewer {
        let config = EngineConfig { security: Security::None, name: b"t".to_vec(), width: W, height: H };
        let mut s = Session::new(config, [0; 16]);
        let mut input = Vec::new();
        for hs in [&b"RFB 003.008\n"[..], &[1], &[1]] {
            s.receive(hs, &mut input).unwrap();
        }
        let out = s.take_output();
        ServerInit::parse(&out[18..]).unwrap();
        let mut v = Viewer { s, dec: Decoder::new(PixelFormat::XRGB8888, usize::from(W), usize::from(H)), now: Duration::ZERO };
        v.send(ClientMessage::SetEncodings(encodings.to_vec()));
        v.s.take_output(); // fence hello, EndOfContinuousUpdates
        v
    }

    fn send(&mut self, m: ClientMessage) {
        let mut b = Vec::new();
        m.emit(&mut b);
        self.s.receive(&b, &mut Vec::new()).unwrap();
    }

    fn request(&mut self, incremental: bool) {
        self.send(ClientMessage::FramebufferUpdateRequest { incremental, rect: Rect::new(0, 0, W, H) });
    }

    fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
        self.s.set_now(self.now);
    }

    /// Runs one update if due and decodes everything the session sent.
    fn pump(&mut self, frame: &Arc<Frame>) -> (Option<UpdateStats>, Vec<ServerMessage>) {
        let stats = self.s.update(frame);
        let out = self.s.take_output();
        let mut slice = out.as_slice();
        let mut msgs = Vec::new();
        while !slice.is_empty() {
            msgs.push(self.dec.read_message(&mut slice).unwrap_or_else(|e| panic!("decoder: {e}")));
        }
        (stats, msgs)
    }

    fn encodings(msgs: &[ServerMessage]) -> Vec<Encoding> {
        msgs.iter()
            .filter_map(|m| if let ServerMessage::Update(e) = m { Some(e.clone()) } else { None })
            .flatten()
            .collect()
    }

    fn exact(&self, frame: &Frame) -> bool {
        let src = frame.source();
        (0..usize::from(frame.height)).all(|y| {
            (0..usize::from(frame.width)).all(|x| {
                let (r, g, b) = self.dec.rgb(x, y);
                (u32::from(r) << 16 | u32::from(g) << 8 | u32::from(b)) == src.get(x, y)
            })
        })
    }

    fn psnr(&self, frame: &Frame) -> f64 {
        let src = frame.source();
        let mut se = 0f64;
        let mut n = 0f64;
        for y in 0..usize::from(frame.height) {
            for x in 0..usize::from(frame.width) {
                let (r, g, b) = self.dec.rgb(x, y);
                let v = src.get(x, y);
                for (a, s) in [(r, v >> 16), (g, v >> 8), (b, v)] {
                    let d = f64::from(a) - f64::from(s & 0xff);
                    se += d * d;
                    n += 1.0;
                }
            }
        }
        if se == 0.0 {
            return f64::INFINITY;
        }
        10.0 * (255.0 * 255.0 / (se / n)).log10()
    }
}

struct Screen {
    src: BufferSource,
    tracker: DamageTracker,
}

impl Screen {
    fn new() -> Screen {
        Screen { src: BufferSource::new(u32::from(W), u32::from(H)), tracker: DamageTracker::new() }
    }
    fn show(&mut self, px: &[u8]) -> Arc<Frame> {
        self.src.replace(px);
        self.tracker.capture(&mut self.src);
        self.tracker.current().unwrap()
    }
}

#[test]
fn scrolling_text_is_sent_as_copyrect_and_stays_exact() {
    for enc in [Encoding::ZRLE, Encoding::TIGHT, Encoding::HEXTILE, Encoding::RAW] {
        let mut screen = Screen::new();
        let mut with = Viewer::connect(&[Encoding::COPY_RECT, enc]);
        let mut without = Viewer::connect(&[enc]);
        let f = screen.show(&text(W, H, 0));
        for v in [&mut with, &mut without] {
            v.request(false);
            v.pump(&f);
            assert!(v.exact(&f));
        }
        let (mut bytes_with, mut bytes_without) = (0, 0);
        let (mut px_with, mut px_without) = (0, 0);
        for line in 1..6 {
            let f = screen.show(&text(W, H, line));
            with.request(true);
            without.request(true);
            let (s, msgs) = with.pump(&f);
            let s = s.unwrap();
            assert!(Viewer::encodings(&msgs).contains(&Encoding::COPY_RECT), "{enc:?} line {line}");
            assert!(s.copies >= 1);
            assert!(with.exact(&f), "{enc:?} line {line}: CopyRect viewer differs");
            bytes_with += s.bytes;
            px_with += s.pixels;
            let s = without.pump(&f).0.unwrap();
            bytes_without += s.bytes;
            px_without += s.pixels;
            assert!(without.exact(&f));
        }
        // Only the new line is encoded. (Bytes fall less than pixels with the zlib encodings,
        // whose stream history already holds the scrolled text.)
        assert!(px_with * 8 < px_without, "{enc:?}: {px_with} pixels encoded with CopyRect, {px_without} without");
        assert!(bytes_with < bytes_without, "{enc:?}: {bytes_with} with CopyRect, {bytes_without} without");
        if enc == Encoding::RAW {
            assert!(bytes_with * 8 < bytes_without);
        }
    }
}

#[test]
fn moved_window_is_copied() {
    let mut screen = Screen::new();
    let win = photo(96, 64, 0);
    let desk = |wx: usize, wy: usize| {
        let mut px = vec![0x30u8; usize::from(W) * usize::from(H) * 4];
        for y in 0..64 {
            let at = ((wy + y) * usize::from(W) + wx) * 4;
            px[at..at + 96 * 4].copy_from_slice(&win[y * 96 * 4..(y + 1) * 96 * 4]);
        }
        px
    };
    let mut v = Viewer::connect(&[Encoding::COPY_RECT, Encoding::TIGHT]);
    let f = screen.show(&desk(10, 20));
    v.request(false);
    v.pump(&f);
    let mut total = 0;
    for (i, (x, y)) in [(40, 50), (75, 61), (200, 170), (201, 171)].into_iter().enumerate() {
        let f = screen.show(&desk(x, y));
        v.request(true);
        let (s, msgs) = v.pump(&f);
        assert!(Viewer::encodings(&msgs).contains(&Encoding::COPY_RECT), "move {i}");
        assert!(v.exact(&f), "move {i}");
        let s = s.unwrap();
        total += s.bytes;
    }
    // The window alone is 96x64 of many colours (about 12 KB as lossless Tight); four moves
    // must cost far less than sending it four times.
    assert!(total < 4 * 3000, "{total} bytes for four moves");
}

#[test]
fn extended_desktop_size_is_announced_and_requests_answered() {
    let mut screen = Screen::new();
    let mut v = Viewer::connect(&[Encoding::ZRLE, Encoding::EXTENDED_DESKTOP_SIZE, Encoding::DESKTOP_SIZE]);
    let f = screen.show(&text(W, H, 0));
    v.request(false);
    let (_, msgs) = v.pump(&f);
    assert!(Viewer::encodings(&msgs).contains(&Encoding::EXTENDED_DESKTOP_SIZE));
    let (reason, status, w, h, screens) = v.dec.extended_desktop_size.clone().unwrap();
    assert_eq!((reason, status, w, h, screens.len()), (eds::REASON_SERVER, eds::STATUS_OK, 320, 240, 1));
    assert_eq!(screens[0][4..12], [0, 0, 0, 0, 1, 64, 0, 240], "one screen covering the framebuffer");
    // A different size is refused (the guest owns the framebuffer)...
    let screen0 = [0u8, 0, 0, 0, 0, 0, 0, 0, 3, 0, 2, 0, 0, 0, 0, 0];
    v.send(ClientMessage::SetDesktopSize { width: 768, height: 512, screens: vec![screen0] });
    v.request(true);
    let (s, _) = v.pump(&f);
    assert!(s.is_some(), "the reply is an update of its own");
    let got = v.dec.extended_desktop_size.clone().unwrap();
    assert_eq!((got.0, got.1, got.2, got.3), (eds::REASON_CLIENT, eds::STATUS_PROHIBITED, 320, 240));
    // ...the current size succeeds.
    v.send(ClientMessage::SetDesktopSize { width: W, height: H, screens: vec![screen0] });
    v.request(true);
    v.pump(&f);
    let got = v.dec.extended_desktop_size.clone().unwrap();
    assert_eq!((got.0, got.1), (eds::REASON_CLIENT, eds::STATUS_OK));
    // A real resize is announced with ExtendedDesktopSize, not DesktopSize.
    let mut src = BufferSource::new(200, 100);
    src.replace(&text(200, 100, 3));
    let mut tracker = DamageTracker::new();
    let f2 = tracker.capture(&mut src).unwrap();
    v.request(true);
    let (_, msgs) = v.pump(&f2);
    let encs = Viewer::encodings(&msgs);
    assert!(encs.contains(&Encoding::EXTENDED_DESKTOP_SIZE) && !encs.contains(&Encoding::DESKTOP_SIZE), "{encs:?}");
    assert_eq!((v.dec.width, v.dec.height), (200, 100));
    assert!(v.exact(&f2));
}

#[test]
fn lossy_regions_are_refreshed_losslessly_once_they_stop_changing() {
    for enc in [Encoding::TIGHT, Encoding::TIGHT_PNG] {
        let mut screen = Screen::new();
        let mut v = Viewer::connect(&[enc, Encoding(-32 + 5)]);
        let mut f = screen.show(&photo(W, H, 0));
        v.request(false);
        v.pump(&f);
        for t in 1..4 {
            v.advance(100);
            f = screen.show(&photo(W, H, t));
            v.request(true);
            v.pump(&f);
        }
        let p = v.psnr(&f);
        assert!(p.is_finite() && p > 28.0, "{enc:?}: JPEG PSNR {p}");
        v.request(true);
        v.advance(100);
        assert!(!v.s.wants_update(&f), "not quiet for long enough yet");
        let due = v.s.next_wakeup().expect("a refresh is scheduled");
        assert_eq!(due, v.now + Duration::from_millis(200));
        v.advance(200);
        assert!(v.s.wants_update(&f));
        let (s, _) = v.pump(&f);
        let s = s.unwrap();
        assert_eq!(s.refreshed, u64::from(W) * u64::from(H), "{enc:?}");
        assert!(v.exact(&f), "{enc:?}: exact after the refresh");
        v.request(true);
        v.advance(1000);
        assert!(!v.s.wants_update(&f), "nothing left to refresh");
        assert_eq!(v.s.next_wakeup(), None);
    }
}

#[test]
fn tightpng_is_lossless_and_uses_png() {
    let mut screen = Screen::new();
    let mut v = Viewer::connect(&[Encoding::TIGHT_PNG]);
    for (i, px) in [text(W, H, 0), photo(W, H, 1), text(W, H, 4)].iter().enumerate() {
        let f = screen.show(px);
        v.request(i > 0);
        let (_, msgs) = v.pump(&f);
        let encs = Viewer::encodings(&msgs);
        assert!(encs.iter().all(|e| *e == Encoding::TIGHT_PNG), "{encs:?}");
        assert!(v.exact(&f), "frame {i}");
    }
}

#[cfg(feature = "h264")]
#[test]
fn h264_for_motion_lossless_for_typing_then_refresh() {
    let mut screen = Screen::new();
    let mut v = Viewer::connect(&[Encoding::H264, Encoding::TIGHT, Encoding(-32 + 6)]);
    let mut f = screen.show(&photo(W, H, 0));
    v.request(false);
    let (_, msgs) = v.pump(&f);
    assert!(!Viewer::encodings(&msgs).contains(&Encoding::H264), "a still first frame is not video");
    let mut h264_bytes = 0;
    for t in 1..10 {
        v.advance(80);
        f = screen.show(&photo(W, H, t));
        v.request(true);
        let before = v.dec.h264_frames;
        let (s, _) = v.pump(&f);
        if t >= 2 {
            assert_eq!(v.dec.h264_frames, before + 1, "frame {t} in motion goes as H.264");
            h264_bytes += s.unwrap().bytes;
            let p = v.psnr(&f);
            assert!(p > 30.0, "H.264 PSNR {p} at frame {t}");
        }
    }
    assert!(h264_bytes / 8 < u64::from(W) * u64::from(H) / 4, "{h264_bytes} bytes for 8 H.264 frames");
    // Typing: a small change is sent losslessly, not as video.
    let mut px = photo(W, H, 9);
    px[..64].iter_mut().for_each(|b| *b = 0xff);
    v.advance(80);
    let f2 = screen.show(&px);
    v.request(true);
    let (_, msgs) = v.pump(&f2);
    let encs = Viewer::encodings(&msgs);
    assert!(!encs.contains(&Encoding::H264) && encs.contains(&Encoding::TIGHT), "{encs:?}");
    // The motion stopped: the whole screen is refreshed losslessly.
    v.request(true);
    v.advance(400);
    let (s, _) = v.pump(&f2);
    assert!(s.unwrap().refreshed > 0);
    assert!(v.exact(&f2));
}

#[cfg(feature = "h264")]
#[test]
fn h264_stream_is_constrained_baseline_annex_b() {
    let mut screen = Screen::new();
    let mut v = Viewer::connect(&[Encoding::H264, Encoding::ZRLE]);
    let mut last = Vec::new();
    for t in 0..2 {
        let f = screen.show(&photo(W, H, t));
        v.request(t > 0);
        v.s.update(&f);
        last = v.s.take_output();
        let mut slice = last.as_slice();
        while !slice.is_empty() {
            v.dec.read_message(&mut slice).unwrap();
        }
    }
    // Update header (4), rectangle header (12): encoding 50, then length, flags (reset context:
    // a new context), then Annex B with the SPS first.
    assert_eq!(i32::from_be_bytes(last[12..16].try_into().unwrap()), 50);
    let len = u32::from_be_bytes(last[16..20].try_into().unwrap()) as usize;
    assert_eq!(u32::from_be_bytes(last[20..24].try_into().unwrap()), 1, "first H.264 rectangle resets its context");
    let nal = &last[24..24 + len];
    let sps = nal.windows(5).position(|w| w[..4] == [0, 0, 0, 1] && w[4] & 0x1f == 7).expect("an SPS");
    let (profile, constraints) = (nal[sps + 5], nal[sps + 6]);
    assert_eq!(profile, 66, "baseline");
    assert!(constraints & 0x40 != 0, "constraint_set1: constrained baseline");
}

#[test]
fn pushed_updates_are_paced_by_fence_answers() {
    let mut screen = Screen::new();
    let mut v = Viewer::connect(&[Encoding::RAW, Encoding::FENCE, Encoding::CONTINUOUS_UPDATES]);
    // A pulled update first (as TigerVNC does before it turns continuous updates on): it must
    // not count as unacknowledged bytes in flight.
    v.request(false);
    let f = screen.show(&photo(W, H, 100));
    assert!(v.pump(&f).0.is_some());
    v.send(ClientMessage::EnableContinuousUpdates { enable: true, rect: Rect::new(0, 0, W, H) });
    v.s.take_output();
    // Raw frames of 300 KB: one fills the 64 KB window, so the second waits for the answer.
    let mut pings = Vec::new();
    let mut sent = 0;
    for t in 0..4 {
        v.advance(10);
        let f = screen.show(&photo(W, H, t));
        let (s, msgs) = v.pump(&f);
        if s.is_some() {
            sent += 1;
        }
        for m in msgs {
            if let ServerMessage::Fence { flags, payload } = m {
                assert_eq!(flags, fence_flags::REQUEST | fence_flags::BLOCK_BEFORE);
                pings.push(payload);
            }
        }
    }
    assert_eq!((sent, pings.len()), (1, 1), "one update in flight, the rest held back");
    // The viewer answers after 30 ms: the next update goes at once and the RTT is measured.
    v.advance(30);
    v.send(ClientMessage::Fence { flags: fence_flags::BLOCK_BEFORE, payload: pings.pop().unwrap() });
    assert_eq!(v.s.congestion().rtt(), Some(v.now - Duration::from_millis(10)), "from the first update's ping");
    assert!(v.s.congestion().in_flight() < 32, "only the fence itself is unacknowledged");
    let f = screen.show(&photo(W, H, 10));
    let (s, _) = v.pump(&f);
    assert!(s.is_some());
    assert!(v.exact(&f), "coalesced: the newest frame, not the ones skipped");
}


