//! Interop with real viewers: vncdotool (captures, types, clicks) and TigerVNC's vncviewer under
//! Xvfb (Raw, Hextile, ZRLE, lossless Tight, Tight+JPEG, and VNC authentication), against the
//! real server on loopback. Screens are compared with the framebuffer the server was given:
//! exactly for lossless encodings, by PSNR for JPEG.
//!
//! Needs what `scripts/setup.sh` installs (tigervnc-viewer, xvfb, x11-apps, imagemagick, and
//! vncdotool in `$DOPPEL_CACHE/venv-vncdotool`); a missing tool fails the test with its name.
//! Run alone: `cargo test -p doppel-rfb --test interop -- --nocapture`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use doppel_machine::InputEvent;
use doppel_rfb::engine::Security;
use doppel_rfb::meter::{Meters, MeterSnapshot, TrafficEstimator, SLOTS};
use doppel_rfb::pattern;
use doppel_rfb::server::{serve, Display, ServerConfig};

const W: u16 = 320;
const H: u16 = 200;

struct Server {
    port: u16,
    meters: Arc<Meters>,
    input: Arc<Mutex<Vec<InputEvent>>>,
    /// The frame the server ends on: XRGB8888.
    expected: Vec<u8>,
}

/// Starts a server on its own runtime thread: `frames` frames of the pattern at 25 fps, then still.
fn server(security: Security, frames: u32) -> Server {
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    let meters = Arc::new(Meters::new());
    let input = Arc::new(Mutex::new(Vec::new()));
    let (m, inp) = (meters.clone(), input.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let (ftx, frx) = tokio::sync::watch::channel(None);
            let (itx, mut irx) = tokio::sync::mpsc::unbounded_channel();
            // The animation publishes into `atx`; the first frame goes to the server at once,
            // later ones only after a viewer has had its first update. A viewer that starts after
            // the animation has finished (a slow, loaded machine) still gets an incremental update.
            let (atx, mut arx) = tokio::sync::watch::channel(None);
            tokio::spawn(pattern::animate(W, H, 25, Some(frames), atx));
            let viewer_meters = m.clone();
            tokio::spawn(async move {
                let mut first = true;
                while arx.changed().await.is_ok() {
                    while !first && viewer_meters.snapshot().updates == 0 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    first = false;
                    let frame = arx.borrow_and_update().clone();
                    if ftx.send(frame).is_err() {
                        return;
                    }
                }
            });
            tokio::spawn(async move {
                while let Some(ev) = irx.recv().await {
                    inp.lock().unwrap().push(ev);
                }
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            port_tx.send(listener.local_addr().unwrap().port()).unwrap();
            let display = Display { frames: frx, input: itx, meters: m, estimator: Arc::new(Mutex::new(TrafficEstimator::new())) };
            let config = ServerConfig { security, name: "interop".into(), cursor: Some(pattern::arrow_cursor()) };
            serve(listener, config, display).await.unwrap();
        });
    });
    Server { port: port_rx.recv().unwrap(), meters, input, expected: pattern::render(W, H, frames - 1) }
}

fn tool(name: &str) -> PathBuf {
    let cache = std::env::var_os("DOPPEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/doppel"));
    let venv = cache.join("venv-vncdotool/bin").join(name);
    if venv.exists() {
        return venv;
    }
    let found = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.exists()));
    found.unwrap_or_else(|| panic!("{name} not found: run scripts/setup.sh"))
}

/// Decodes any image file to packed RGB with ImageMagick.
fn to_rgb(path: &std::path::Path) -> (usize, usize, Vec<u8>) {
    let out = Command::new(tool("convert")).arg(path).args(["-depth", "8", "-format", "%w %h\n", "-write", "info:-", "rgb:-"]).output().unwrap();
    assert!(out.status.success(), "convert {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    let nl = out.stdout.iter().position(|&b| b == b'\n').unwrap();
    let dims = String::from_utf8_lossy(&out.stdout[..nl]).to_string();
    let (w, h) = dims.trim().split_once(' ').unwrap();
    let (w, h): (usize, usize) = (w.parse().unwrap(), h.parse().unwrap());
    let rgb = out.stdout[nl + 1..].to_vec();
    assert_eq!(rgb.len(), w * h * 3, "{dims}");
    (w, h, rgb)
}

fn expected_rgb(xrgb: &[u8], x: usize, y: usize) -> [u8; 3] {
    let i = (y * usize::from(W) + x) * 4;
    [xrgb[i + 2], xrgb[i + 1], xrgb[i]]
}

/// PSNR (dB) of the pattern against the shot at offset (ox, oy).
fn psnr_at(shot: &(usize, usize, Vec<u8>), ox: usize, oy: usize, xrgb: &[u8]) -> f64 {
    let (sw, _, rgb) = shot;
    let mut se = 0f64;
    for y in 0..usize::from(H) {
        for x in 0..usize::from(W) {
            let e = expected_rgb(xrgb, x, y);
            let i = ((oy + y) * sw + ox + x) * 3;
            for c in 0..3 {
                se += (f64::from(rgb[i + c]) - f64::from(e[c])).powi(2);
            }
        }
    }
    let mse = se / f64::from(u32::from(W) * u32::from(H) * 3);
    if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64.powi(2) / mse).log10()
    }
}

/// Finds the pattern in a screenshot near (x0, y0): the best PSNR over small offsets.
fn locate(shot: &(usize, usize, Vec<u8>), x0: usize, y0: usize, xrgb: &[u8]) -> (usize, usize, f64) {
    let (sw, sh, _) = shot;
    let mut best = (0, 0, 0.0);
    for oy in y0..=(y0 + 40).min(sh - usize::from(H)) {
        for ox in x0..=(x0 + 40).min(sw - usize::from(W)) {
            // Cheap pre-check: the top-left 8 pixels of the first row.
            let ok = (0..8).all(|x| {
                let i = (oy * sw + ox + x) * 3;
                let e = expected_rgb(xrgb, x, 0);
                (0..3).all(|c| shot.2[i + c].abs_diff(e[c]) < 48)
            });
            if !ok {
                continue;
            }
            let p = psnr_at(shot, ox, oy, xrgb);
            if p > best.2 {
                best = (ox, oy, p);
            }
        }
    }
    best
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("doppel-rfb-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn vncdo(port: u16, args: &[&str]) {
    let out = Command::new(tool("vncdo"))
        .args(["-s", &format!("127.0.0.1::{port}")])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "vncdo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn vncdotool_capture_is_exact_and_input_arrives() {
    let s = server(Security::None, 1);
    let dir = tmpdir("vncdo");
    let png = dir.join("capture.png");
    vncdo(s.port, &["capture", png.to_str().unwrap()]);
    let shot = to_rgb(&png);
    assert_eq!((shot.0, shot.1), (usize::from(W), usize::from(H)));
    assert_eq!(psnr_at(&shot, 0, 0, &s.expected), f64::INFINITY, "vncdotool capture differs from the framebuffer");

    vncdo(s.port, &["type", "Hi!", "key", "enter", "move", "100", "50", "click", "1", "click", "3"]);
    use InputEvent::*;
    let want = vec![
        Key { code: 42, down: true },
        Key { code: 35, down: true }, // H (shift added by the server)
        Key { code: 42, down: false },
        Key { code: 35, down: false },
        Key { code: 23, down: true }, // i
        Key { code: 23, down: false },
        Key { code: 42, down: true },
        Key { code: 2, down: true }, // ! = shift+1
        Key { code: 42, down: false },
        Key { code: 2, down: false },
        Key { code: 28, down: true },
        Key { code: 28, down: false },
        PointerMove { x: 100, y: 50 },
        PointerButton { code: 0x110, down: true },
        PointerButton { code: 0x110, down: false },
        PointerButton { code: 0x111, down: true },
        PointerButton { code: 0x111, down: false },
    ];
    let got = wait_for("input events", Duration::from_secs(10), || {
        let got = s.input.lock().unwrap().clone();
        (got.len() >= want.len()).then_some(got)
    });
    // vncdotool may send an initial pointer position when it connects; compare from the keys on.
    let start = got.iter().position(|e| matches!(e, Key { .. })).unwrap();
    assert_eq!(got[start..], want[..], "all: {got:?}");
}

#[test]
fn vncdotool_with_vnc_authentication() {
    let s = server(Security::VncAuth { password: b"s3cret".to_vec() }, 1);
    let dir = tmpdir("vncdo-auth");
    let png = dir.join("capture.png");
    vncdo(s.port, &["-p", "s3cret", "capture", png.to_str().unwrap()]);
    assert_eq!(psnr_at(&to_rgb(&png), 0, 0, &s.expected), f64::INFINITY);
    let out = Command::new(tool("vncdo"))
        .args(["-s", &format!("127.0.0.1::{}", s.port), "-p", "wrong", "capture"])
        .arg(dir.join("never.png"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!dir.join("never.png").exists(), "a wrong password must not give a picture ({:?})", out.status);
}

struct Killer(Vec<Child>);
impl Drop for Killer {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// TigerVNC's obfuscated password file: DES with a fixed key (bit-reversed like VNC auth keys).
fn tigervnc_passwd(password: &[u8]) -> Vec<u8> {
    const FIXED: [u8; 8] = [23, 82, 107, 6, 35, 78, 88, 7];
    let mut block = [0u8; 16];
    block[..password.len().min(8)].copy_from_slice(&password[..password.len().min(8)]);
    doppel_rfb::auth::vnc_auth_response(&FIXED, &block)[..8].to_vec()
}

#[test]
fn tigervnc_viewers_show_the_framebuffer() {
    for t in ["Xvfb", "vncviewer", "xwd", "convert"] {
        tool(t);
    }
    let dir = tmpdir("tigervnc");
    // A display with neither a socket nor a lock file left by an earlier, killed Xvfb.
    let display = (90..140)
        .find(|n| {
            !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
                && !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists()
        })
        .unwrap();
    let disp = format!(":{display}");
    let mut procs = Killer(Vec::new());
    procs.0.push(
        Command::new(tool("Xvfb"))
            .args([disp.as_str(), "-screen", "0", "1100x520x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for("Xvfb", Duration::from_secs(10), || std::path::Path::new(&format!("/tmp/.X11-unix/X{display}")).exists().then_some(()));
    let passwd = dir.join("passwd");
    std::fs::write(&passwd, tigervnc_passwd(b"tiger")).unwrap();
    // (name, viewer options, security, lossless, meter slot)
    let cases: Vec<(&str, Vec<String>, Security, bool, &str)> = vec![
        ("raw", vec!["-PreferredEncoding=raw".into(), "-NoJPEG".into()], Security::None, true, "raw"),
        ("hextile", vec!["-PreferredEncoding=hextile".into(), "-NoJPEG".into()], Security::None, true, "hextile"),
        ("zrle", vec!["-PreferredEncoding=ZRLE".into(), "-NoJPEG".into()], Security::None, true, "zrle"),
        ("tight", vec!["-PreferredEncoding=Tight".into(), "-NoJPEG".into()], Security::None, true, "tight"),
        ("tight-jpeg", vec!["-PreferredEncoding=Tight".into(), "-QualityLevel=8".into()], Security::None, false, "tight-jpeg"),
        (
            "zrle-vncauth",
            vec!["-PreferredEncoding=ZRLE".into(), "-NoJPEG".into(), format!("-passwd={}", passwd.display())],
            Security::VncAuth { password: b"tiger".to_vec() },
            true,
            "zrle",
        ),
    ];
    let mut servers = Vec::new();
    for (i, (name, opts, security, _, _)) in cases.iter().enumerate() {
        // 12 frames of animation, so incremental updates and damage tracking are exercised.
        let s = server(security.clone(), 12);
        let (x, y) = ((i % 3) * 360, (i / 3) * 250);
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        procs.0.push(
            Command::new(tool("vncviewer"))
                .env("DISPLAY", &disp)
                .env("HOME", &dir)
                .args(["-AutoSelect=0", "-FullColor", "-RemoteResize=0", "-Shared"])
                .arg(format!("-geometry={}x{}+{x}+{y}", W, H))
                .args(opts)
                .arg(format!("127.0.0.1::{}", s.port))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
        servers.push((s, x, y));
    }
    // Wait for each viewer to have had its updates, then for the "Press F8" banner to fade.
    wait_for("every viewer's updates", Duration::from_secs(90), || {
        servers.iter().all(|(s, _, _)| s.meters.snapshot().updates >= 2).then_some(())
    });
    std::thread::sleep(Duration::from_secs(6));
    let xwd = dir.join("screen.xwd");
    let out = Command::new(tool("xwd")).args(["-root", "-silent", "-display", &disp, "-out"]).arg(&xwd).output().unwrap();
    assert!(out.status.success(), "xwd: {}", String::from_utf8_lossy(&out.stderr));
    let png = dir.join("screen.png");
    let _ = Command::new(tool("convert")).arg(&xwd).arg(&png).status();
    let shot = to_rgb(&xwd);
    let mut report = Vec::new();
    for ((name, _, _, lossless, slot), (s, x, y)) in cases.iter().zip(&servers) {
        let snap: MeterSnapshot = s.meters.snapshot();
        let used: Vec<&str> = SLOTS.iter().zip(snap.bytes).filter(|(_, b)| *b > 0).map(|(n, _)| *n).collect();
        let (ox, oy, p) = locate(&shot, *x, *y, &s.expected);
        report.push(format!("{name}: at ({ox},{oy}) PSNR {p:.1} dB, {} bytes, encodings {used:?}", snap.total_bytes()));
        let slot_i = SLOTS.iter().position(|n| n == slot).unwrap();
        assert!(snap.bytes[slot_i] > 0, "{name}: nothing sent as {slot}; used {used:?}");
        if *lossless {
            assert_eq!(p, f64::INFINITY, "{name}: screen differs from the framebuffer (shot in {})", png.display());
        } else {
            assert!(p >= 30.0, "{name}: PSNR {p:.1} dB below 30 (shot in {})", png.display());
        }
    }
    eprintln!("{}\nscreenshot: {}", report.join("\n"), png.display());
}
