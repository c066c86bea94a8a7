//! The tokio server end to end with Rust test viewers (the independent decoder over TCP): many
//! viewers at once, a hostile viewer that is dropped without disturbing the others, a viewer that
//! never reads which stalls neither the producer nor the others, and input serialised from
//! several viewers into one queue.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doppel_machine::InputEvent;
use doppel_rfb::damage::{BufferSource, DamageTracker, Frame};
use doppel_rfb::engine::Security;
use doppel_rfb::meter::{Meters, TrafficEstimator};
use doppel_rfb::pattern;
use doppel_rfb::server::{serve, Display, ServerConfig};
use doppel_rfb::testutil::decoder::{Decoder, ServerMessage};
use doppel_rfb::wire::{ClientMessage, Encoding, PixelFormat, Rect, ServerInit};

const W: u16 = 256;
const H: u16 = 160;

struct Harness {
    port: u16,
    frames: tokio::sync::watch::Sender<Option<Arc<Frame>>>,
    input: Arc<Mutex<Vec<InputEvent>>>,
    meters: Arc<Meters>,
    _rt: std::thread::JoinHandle<()>,
}

fn start() -> Harness {
    let (ftx, frx) = tokio::sync::watch::channel(None);
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let input = Arc::new(Mutex::new(Vec::new()));
    let meters = Arc::new(Meters::new());
    let (inp, m) = (input.clone(), meters.clone());
    let rt = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(async move {
            let (itx, mut irx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(async move {
                while let Some(ev) = irx.recv().await {
                    inp.lock().unwrap().push(ev);
                }
            });
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(l.local_addr().unwrap().port()).unwrap();
            let display = Display { frames: frx, input: itx, meters: m, estimator: Arc::new(Mutex::new(TrafficEstimator::new())) };
            let config = ServerConfig { security: Security::None, name: "e2e".into(), cursor: None };
            serve(l, config, display).await.unwrap();
        });
    });
    Harness { port: port_rx.recv().unwrap(), frames: ftx, input, meters, _rt: rt }
}

struct Viewer {
    s: TcpStream,
    dec: Decoder,
}

impl Viewer {
    fn connect(port: u16, encs: &[Encoding]) -> Viewer {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut v = [0u8; 12];
        s.read_exact(&mut v).unwrap();
        assert_eq!(&v, b"RFB 003.008\n");
        s.write_all(b"RFB 003.008\n").unwrap();
        let mut types = [0u8; 2];
        s.read_exact(&mut types).unwrap();
        assert_eq!(types, [1, 1]);
        s.write_all(&[1]).unwrap();
        let mut result = [0u8; 4];
        s.read_exact(&mut result).unwrap();
        assert_eq!(result, [0; 4]);
        s.write_all(&[1]).unwrap();
        let mut head = [0u8; 24];
        s.read_exact(&mut head).unwrap();
        let n = u32::from_be_bytes([head[20], head[21], head[22], head[23]]) as usize;
        let mut name = vec![0u8; n];
        s.read_exact(&mut name).unwrap();
        let mut all = head.to_vec();
        all.extend_from_slice(&name);
        let (si, _) = ServerInit::parse(&all).unwrap();
        assert_eq!((si.width, si.height, si.name.as_slice()), (W, H, &b"e2e"[..]));
        let mut v = Viewer { s, dec: Decoder::new(PixelFormat::XRGB8888, usize::from(W), usize::from(H)) };
        v.send(&ClientMessage::SetEncodings(encs.to_vec()));
        v
    }

    fn send(&mut self, m: &ClientMessage) {
        let mut b = Vec::new();
        m.emit(&mut b);
        self.s.write_all(&b).unwrap();
    }

    fn request(&mut self, incremental: bool) {
        self.send(&ClientMessage::FramebufferUpdateRequest { incremental, rect: Rect::new(0, 0, W, H) });
    }

    /// Reads messages until a FramebufferUpdate arrives.
    fn update(&mut self) -> Vec<Encoding> {
        loop {
            match self.dec.read_message(&mut self.s).unwrap() {
                ServerMessage::Update(e) => return e,
                // Answer the server's fence requests, as real viewers do (pushed updates are
                // paced by them).
                ServerMessage::Fence { flags, payload } if flags & (1 << 31) != 0 => {
                    self.send(&ClientMessage::Fence { flags: flags & 3, payload });
                }
                _ => continue,
            }
        }
    }

    fn matches(&self, frame: &[u8]) -> bool {
        (0..usize::from(W) * usize::from(H)).all(|i| {
            let want = u32::from_le_bytes([frame[i * 4], frame[i * 4 + 1], frame[i * 4 + 2], 0]);
            self.dec.fb[i] == want
        })
    }
}

/// Publishes frames through a page-tracked buffer, as the machine will.
struct Producer {
    src: BufferSource,
    tracker: DamageTracker,
}

impl Producer {
    fn new() -> Producer {
        Producer { src: BufferSource::new(u32::from(W), u32::from(H)), tracker: DamageTracker::new() }
    }

    fn publish(&mut self, h: &Harness, frame: u32) -> Vec<u8> {
        let px = pattern::render(W, H, frame);
        self.src.replace(&px);
        if let Some(f) = self.tracker.capture(&mut self.src) {
            h.frames.send_replace(Some(f));
        }
        px
    }
}

#[test]
fn many_viewers_each_see_every_change_in_their_encoding() {
    let h = start();
    let mut p = Producer::new();
    let mut px = p.publish(&h, 0);
    let encs = [Encoding::RAW, Encoding::HEXTILE, Encoding::ZRLE, Encoding::TIGHT, Encoding::RRE];
    let mut viewers: Vec<Viewer> =
        encs.iter().map(|&e| Viewer::connect(h.port, &[e, Encoding::DESKTOP_NAME, Encoding::LAST_RECT])).collect();
    for v in &mut viewers {
        v.request(false);
        let got = v.update();
        assert!(v.matches(&px));
        assert!(got.contains(&Encoding::DESKTOP_NAME));
        assert_eq!(v.dec.name.as_deref(), Some(&b"e2e"[..]));
    }
    for frame in 1..6 {
        px = p.publish(&h, frame);
        for (v, &e) in viewers.iter_mut().zip(&encs) {
            v.request(true);
            let got = v.update();
            assert!(got.iter().all(|&g| g == e || e == Encoding::RRE && g == Encoding::RAW), "{got:?}");
            assert!(v.matches(&px), "{} frame {frame}", e.name());
        }
    }
    assert!(h.meters.snapshot().updates >= 30);
}

#[test]
fn hostile_and_stalled_viewers_affect_no_one_else() {
    let h = start();
    let mut p = Producer::new();
    let px = p.publish(&h, 0);
    let mut good = Viewer::connect(h.port, &[Encoding::ZRLE]);
    good.request(false);
    good.update();
    assert!(good.matches(&px));

    // A viewer that asks for updates and never reads: its socket fills up, only it waits.
    let mut stalled = Viewer::connect(h.port, &[Encoding::RAW]);
    for _ in 0..50 {
        stalled.request(false);
    }
    // A hostile viewer: an unknown message type after the handshake.
    let mut hostile = Viewer::connect(h.port, &[Encoding::RAW]);
    hostile.s.write_all(&[77, 1, 2, 3]).unwrap();
    let mut rest = Vec::new();
    let t0 = Instant::now();
    let _ = hostile.s.read_to_end(&mut rest); // returns when the server closes
    assert!(t0.elapsed() < Duration::from_secs(5), "hostile viewer not disconnected");

    // Oversized cut text is refused too.
    let mut greedy = Viewer::connect(h.port, &[Encoding::RAW]);
    greedy.s.write_all(&[6, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]).unwrap();
    let _ = greedy.s.read_to_end(&mut rest);

    let t0 = Instant::now();
    for frame in 1..40 {
        let px = p.publish(&h, frame);
        good.request(true);
        good.update();
        assert!(good.matches(&px), "frame {frame}");
    }
    assert!(t0.elapsed() < Duration::from_secs(20));
}

#[test]
fn input_from_several_viewers_is_serialised() {
    let h = start();
    let mut p = Producer::new();
    p.publish(&h, 0);
    let mut a = Viewer::connect(h.port, &[Encoding::RAW, Encoding::QEMU_EXT_KEY]);
    let mut b = Viewer::connect(h.port, &[Encoding::RAW]);
    a.request(false);
    let encs = a.update();
    assert!(encs.contains(&Encoding::QEMU_EXT_KEY) && a.dec.qemu_ext_key);
    for i in 0..20u16 {
        a.send(&ClientMessage::QemuExtKey { down: true, keysym: 0, scancode: 0x1e });
        a.send(&ClientMessage::QemuExtKey { down: false, keysym: 0, scancode: 0x1e });
        b.send(&ClientMessage::PointerEvent { buttons: 0, x: i, y: 7 });
    }
    let t0 = Instant::now();
    while h.input.lock().unwrap().len() < 60 {
        assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", h.input.lock().unwrap());
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = h.input.lock().unwrap().clone();
    let keys: Vec<_> = got.iter().filter(|e| matches!(e, InputEvent::Key { .. })).collect();
    let moves: Vec<_> = got.iter().filter_map(|e| if let InputEvent::PointerMove { x, .. } = e { Some(*x) } else { None }).collect();
    assert_eq!(keys.len(), 40);
    assert!(keys.chunks(2).all(|c| c == [&InputEvent::Key { code: 30, down: true }, &InputEvent::Key { code: 30, down: false }]));
    assert_eq!(moves, (0..20).collect::<Vec<u32>>(), "each viewer's events keep their order");
}

#[test]
fn continuous_updates_push_without_requests_and_resize_is_announced() {
    let h = start();
    let mut p = Producer::new();
    p.publish(&h, 0);
    let mut v = Viewer::connect(h.port, &[Encoding::TIGHT, Encoding::FENCE, Encoding::CONTINUOUS_UPDATES, Encoding::DESKTOP_SIZE]);
    // The server announces Fence (a request) and ContinuousUpdates (EndOfContinuousUpdates).
    match v.dec.read_message(&mut v.s).unwrap() {
        ServerMessage::Fence { flags, .. } => assert!(flags & (1 << 31) != 0),
        m => panic!("{m:?}"),
    }
    assert_eq!(v.dec.read_message(&mut v.s).unwrap(), ServerMessage::EndOfContinuousUpdates);
    v.request(false);
    v.update();
    v.send(&ClientMessage::EnableContinuousUpdates { enable: true, rect: Rect::new(0, 0, W, H) });
    for frame in 1..5 {
        let px = p.publish(&h, frame);
        v.update(); // no request sent
        assert!(v.matches(&px), "frame {frame}");
    }
    // A fence round trip is answered in order.
    v.send(&ClientMessage::Fence { flags: (1 << 31) | 1, payload: b"abc".to_vec() });
    loop {
        match v.dec.read_message(&mut v.s).unwrap() {
            ServerMessage::Fence { flags, payload } if flags & (1 << 31) != 0 => {
                v.send(&ClientMessage::Fence { flags: flags & 3, payload });
            }
            ServerMessage::Fence { flags, payload } => {
                assert_eq!((flags, payload.as_slice()), (1, &b"abc"[..]));
                break;
            }
            ServerMessage::Update(_) => {}
            m => panic!("{m:?}"),
        }
    }
    // A new size: DesktopSize then the whole new frame.
    let mut src = BufferSource::new(128, 96);
    src.replace(&pattern::render(128, 96, 0));
    let mut t = DamageTracker::new();
    h.frames.send_replace(t.capture(&mut src));
    let encs = v.update();
    assert_eq!(encs[0], Encoding::DESKTOP_SIZE);
    assert_eq!((v.dec.width, v.dec.height), (128, 96));
}
