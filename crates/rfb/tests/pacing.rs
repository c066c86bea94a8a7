//! Pushed updates over real TCP with a slow viewer: the fence-paced congestion window keeps the
//! slow viewer's picture recent (frames coalesce on the server instead of queueing in socket
//! buffers), and a fast viewer on the same display keeps getting frames.

// Synthetic pictures and counters: truncation is the intent.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doppel_rfb::damage::{BufferSource, DamageTracker};
use doppel_rfb::engine::Security;
use doppel_rfb::meter::{Meters, TrafficEstimator};
use doppel_rfb::server::{serve, Display, ServerConfig};
use doppel_rfb::testutil::decoder::{Decoder, ServerMessage};
use doppel_rfb::wire::{fence_flags, ClientMessage, Encoding, PixelFormat, Rect, ServerInit};

const W: u16 = 320;
const H: u16 = 240;
const FPS: u32 = 30;
const SECONDS: u32 = 3;

/// A frame: a 64x64 block whose colour is the frame number, and a band of noise (bytes to send).
fn frame(n: u32) -> Vec<u8> {
    let (w, h) = (usize::from(W), usize::from(H));
    let mut px = vec![0x40u8; w * h * 4];
    let mut seed = n.wrapping_mul(2_654_435_761) | 1;
    for y in 0..h {
        for x in 0..w {
            let at = (y * w + x) * 4;
            if x < 64 && y < 64 {
                px[at..at + 4].copy_from_slice(&(n & 0xff_ffff).to_le_bytes());
            } else if (64..160).contains(&y) {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                px[at..at + 4].copy_from_slice(&(seed & 0xff_ffff).to_le_bytes());
            }
        }
    }
    px
}

/// A reader that delivers at most `rate` bytes per second (a slow link or a slow viewer).
struct Slow {
    s: TcpStream,
    rate: usize,
    t0: Instant,
    got: usize,
}

impl Read for Slow {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let allowed = (self.t0.elapsed().as_secs_f64() * self.rate as f64) as usize + 4096;
        if self.got >= allowed {
            std::thread::sleep(Duration::from_millis(5));
        }
        let n = buf.len().min(4096);
        let n = self.s.read(&mut buf[..n])?;
        self.got += n;
        Ok(n)
    }
}

struct Result {
    updates: u32,
    /// Frames between the newest published and the one shown, at each update after the first second.
    lags: Vec<u32>,
}

fn viewer(port: u16, rate: Option<usize>, fence: bool, published: Arc<AtomicU32>, stop: Arc<AtomicBool>) -> Result {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    s.write_all(b"RFB 003.008\n").unwrap();
    let mut b2 = [0u8; 2];
    s.read_exact(&mut b2).unwrap();
    s.write_all(&[1]).unwrap();
    let mut b4 = [0u8; 4];
    s.read_exact(&mut b4).unwrap();
    s.write_all(&[1]).unwrap();
    let mut init = [0u8; 24];
    s.read_exact(&mut init).unwrap();
    let n = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
    let mut name = vec![0u8; n];
    s.read_exact(&mut name).unwrap();
    let mut all = init.to_vec();
    all.extend_from_slice(&name);
    ServerInit::parse(&all).unwrap();
    let mut encs = vec![Encoding::ZRLE, Encoding::CONTINUOUS_UPDATES];
    if fence {
        encs.push(Encoding::FENCE);
    }
    let mut out = Vec::new();
    ClientMessage::SetEncodings(encs).emit(&mut out);
    ClientMessage::FramebufferUpdateRequest { incremental: false, rect: Rect::new(0, 0, W, H) }.emit(&mut out);
    ClientMessage::EnableContinuousUpdates { enable: true, rect: Rect::new(0, 0, W, H) }.emit(&mut out);
    s.write_all(&out).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r: Box<dyn Read> = match rate {
        Some(rate) => Box::new(Slow { s, rate, t0: Instant::now(), got: 0 }),
        None => Box::new(s),
    };
    let mut dec = Decoder::new(PixelFormat::XRGB8888, usize::from(W), usize::from(H));
    let mut res = Result { updates: 0, lags: Vec::new() };
    let t0 = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        match dec.read_message(&mut r) {
            Ok(ServerMessage::Update(_)) => {
                res.updates += 1;
                let shown = dec.fb[0] & 0xff_ffff;
                if t0.elapsed() > Duration::from_secs(1) {
                    res.lags.push(published.load(Ordering::Relaxed).saturating_sub(shown));
                }
            }
            Ok(ServerMessage::Fence { flags, payload }) if flags & fence_flags::REQUEST != 0 => {
                let mut b = Vec::new();
                ClientMessage::Fence { flags: flags & (fence_flags::BLOCK_BEFORE | fence_flags::BLOCK_AFTER), payload }.emit(&mut b);
                w.write_all(&b).unwrap();
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    res
}

fn run(slow_fenced: bool) -> (Result, Result) {
    let (ftx, frx) = tokio::sync::watch::channel(None);
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let (itx, _irx) = tokio::sync::mpsc::unbounded_channel();
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(l.local_addr().unwrap().port()).unwrap();
            let display = Display {
                frames: frx,
                input: itx,
                meters: Arc::new(Meters::new()),
                estimator: Arc::new(Mutex::new(TrafficEstimator::new())),
            };
            let config = ServerConfig { security: Security::None, name: "pacing".into(), cursor: None };
            let _ = serve(l, config, display).await;
        });
    });
    let port = port_rx.recv().unwrap();
    let mut src = BufferSource::new(u32::from(W), u32::from(H));
    let mut tracker = DamageTracker::new();
    src.replace(&frame(0));
    let _ = ftx.send(tracker.capture(&mut src));
    let published = Arc::new(AtomicU32::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (p1, s1) = (published.clone(), stop.clone());
    let fast = std::thread::spawn(move || viewer(port, None, true, p1, s1));
    let (p2, s2) = (published.clone(), stop.clone());
    // 100 KB/s: about one of these ~90 KB frames per second.
    let slow = std::thread::spawn(move || viewer(port, Some(100_000), slow_fenced, p2, s2));
    std::thread::sleep(Duration::from_millis(200));
    let t0 = Instant::now();
    for n in 1..=FPS * SECONDS {
        src.replace(&frame(n));
        if let Some(f) = tracker.capture(&mut src) {
            let _ = ftx.send(Some(f));
        }
        published.store(n, Ordering::Relaxed);
        let next = Duration::from_secs(1) * n / FPS;
        std::thread::sleep(next.saturating_sub(t0.elapsed()));
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    drop(ftx); // ends the viewers' tasks; their sockets close and the readers return
    (fast.join().unwrap(), slow.join().unwrap())
}

#[test]
fn slow_viewer_stays_recent_and_does_not_hold_up_a_fast_one() {
    let (fast, slow) = run(true);
    let worst = |r: &Result| r.lags.iter().copied().max().unwrap_or(u32::MAX);
    eprintln!(
        "fenced: fast {} updates (worst lag {}), slow {} updates (lags {:?})",
        fast.updates,
        worst(&fast),
        slow.updates,
        slow.lags
    );
    // (2 shared cores encode for both viewers and run the test's readers, so not every frame.)
    assert!(fast.updates >= FPS * SECONDS / 3, "fast viewer got {} of {} frames", fast.updates, FPS * SECONDS);
    assert!(worst(&fast) <= 8, "fast viewer lag {:?}", fast.lags);
    assert!(slow.updates >= 3, "slow viewer still gets frames: {}", slow.updates);
    // Each of its frames is recent: at most about one frame's transmission time (~1.5 s at
    // 100 KB/s for these 60-70 KB frames) plus one RTT, not the whole backlog.
    let slow_worst = worst(&slow);
    assert!(slow_worst <= 2 * FPS, "slow viewer lags {:?}", slow.lags);
    // Without fences the same viewer is pushed every frame; its lag is whatever the socket
    // buffers hold, which grows while the link is slower than the frames.
    let (_, unpaced) = run(false);
    eprintln!("unfenced slow viewer: {} updates, lags {:?}", unpaced.updates, unpaced.lags);
    assert!(worst(&unpaced) > slow_worst, "the backlog in socket buffers makes the unpaced viewer lag more");
}
