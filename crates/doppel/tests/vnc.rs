//! `doppel vm run --vnc` with the real guest and real viewers: the guest's shell runs `fbpattern`
//! (which draws R = x&255, G = y&255, B = (x^y)&255) and then `evread`; vncdotool captures the
//! screen (exactly the pattern) and types keys that evread prints; TigerVNC's vncviewer under
//! Xvfb connects with VeNCrypt TLS (X509None, and X509Vnc with a password) and its screenshot is
//! exactly the pattern. Tools come from `scripts/setup.sh` (vncdotool in
//! `$DOPPEL_CACHE/venv-vncdotool`); a missing tool or guest fails the test with its name.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

const W: usize = 640;
const H: usize = 480;

fn cache() -> PathBuf {
    std::env::var_os("DOPPEL_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/doppel"))
}

fn guest_file(name: &str) -> PathBuf {
    let dir = std::env::var_os("DOPPEL_GUEST_DIR").map(PathBuf::from).unwrap_or_else(|| cache().join("guest/current"));
    let p = dir.join(name);
    assert!(p.is_file(), "{} is missing: build the guest with `bash guest/build.sh`", p.display());
    p
}

fn tool(name: &str) -> PathBuf {
    let venv = cache().join("venv-vncdotool/bin").join(name);
    if venv.exists() {
        return venv;
    }
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|p| p.exists()))
        .unwrap_or_else(|| panic!("{name} not found: run scripts/setup.sh"))
}

fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("doppel-vnc-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A running `doppel vm run` with the guest shell; lines of its stdout and stderr.
struct Vm {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Vm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Vm {
    fn start(extra: &[&str]) -> Vm {
        let mut child = Command::new(env!("CARGO_BIN_EXE_doppel"))
            .args(["vm", "run", "--kernel"])
            .arg(guest_file("Image"))
            .arg("--initrd")
            .arg(guest_file("initramfs.cpio"))
            .args(["--append", "console=ttyS0 quiet"])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        for r in [Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>, Box::new(child.stderr.take().unwrap())] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(r).lines().map_while(Result::ok) {
                    if tx.send(l).is_err() {
                        return;
                    }
                }
            });
        }
        let stdin = child.stdin.take().unwrap();
        Vm { child, stdin, lines, seen: Vec::new() }
    }

    /// Waits for a line containing `what`; returns it.
    fn wait(&mut self, what: &str, timeout: Duration) -> String {
        if let Some(l) = self.seen.iter().find(|l| l.contains(what)) {
            return l.clone();
        }
        let t0 = Instant::now();
        loop {
            let left = timeout.saturating_sub(t0.elapsed());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    self.seen.push(l.clone());
                    if l.contains(what) {
                        return l;
                    }
                }
                Err(_) => panic!("timed out waiting for {what:?}; output so far:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn port(&mut self, what: &str) -> u16 {
        let l = self.wait(&format!("doppel: {what} viewers: "), Duration::from_secs(20));
        l.rsplit(':').next().unwrap().trim().parse().unwrap()
    }

    fn type_line(&mut self, line: &str) {
        self.stdin.write_all(line.as_bytes()).unwrap();
        self.stdin.write_all(b"\n").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Boots to the shell, draws the pattern and starts evread.
    fn pattern_then_evread(&mut self) {
        self.wait("starting a shell", Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(500));
        self.type_line("fbpattern && evread 1000");
        self.wait("evread: ready", Duration::from_secs(60));
    }
}

/// Decodes an image to packed RGB with ImageMagick.
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

fn pattern(x: usize, y: usize) -> [u8; 3] {
    [x.to_le_bytes()[0], y.to_le_bytes()[0], (x ^ y).to_le_bytes()[0]]
}

/// Pixels of the fbpattern screen that differ in `shot` at offset (ox, oy).
fn wrong_pixels(shot: &(usize, usize, Vec<u8>), ox: usize, oy: usize) -> usize {
    let (sw, sh, rgb) = shot;
    if ox + W > *sw || oy + H > *sh {
        return W * H;
    }
    let mut wrong = 0;
    for y in 0..H {
        for x in 0..W {
            let i = ((oy + y) * sw + ox + x) * 3;
            if rgb[i..i + 3] != pattern(x, y) {
                wrong += 1;
            }
        }
    }
    wrong
}

fn vncdo(port: u16, args: &[&str]) {
    let out = Command::new(tool("vncdo")).args(["-s", &format!("127.0.0.1::{port}")]).args(args).stdin(Stdio::null()).output().unwrap();
    assert!(out.status.success(), "vncdo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn vncdotool_sees_the_guest_screen_and_its_keys_reach_evread() {
    let dir = tmpdir("vncdo");
    let mut vm = Vm::start(&["--vnc", "127.0.0.1:0", "--ws", "127.0.0.1:0"]);
    let port = vm.port("VNC");
    vm.port("WebSocket (noVNC)");
    vm.pattern_then_evread();
    let png = dir.join("screen.png");
    vncdo(port, &["capture", png.to_str().unwrap()]);
    let shot = to_rgb(&png);
    assert_eq!((shot.0, shot.1), (W, H));
    assert_eq!(wrong_pixels(&shot, 0, 0), 0, "vncdotool capture differs from the guest's pattern ({})", png.display());
    // "hi", Enter: KEY_H 35, KEY_I 23, KEY_ENTER 28, each down then up.
    vncdo(port, &["type", "hi", "key", "enter"]);
    for l in ["key 35 1", "key 35 0", "key 23 1", "key 23 0", "key 28 1", "key 28 0"] {
        vm.wait(l, Duration::from_secs(30));
    }
    let keys: Vec<&String> = vm.seen.iter().filter(|l| l.starts_with("key ")).collect();
    assert_eq!(keys, ["key 35 1", "key 35 0", "key 23 1", "key 23 0", "key 28 1", "key 28 0"], "keys in order, once each");
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

/// TigerVNC's obfuscated password file: DES with a fixed key.
fn tigervnc_passwd(password: &[u8]) -> Vec<u8> {
    const FIXED: [u8; 8] = [23, 82, 107, 6, 35, 78, 88, 7];
    let mut block = [0u8; 16];
    block[..password.len().min(8)].copy_from_slice(&password[..password.len().min(8)]);
    doppel_rfb::auth::vnc_auth_response(&FIXED, &block)[..8].to_vec()
}

fn free_display() -> u32 {
    (140..200)
        .find(|n| !std::path::Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() && !std::path::Path::new(&format!("/tmp/.X{n}-lock")).exists())
        .unwrap()
}

#[test]
fn tigervnc_with_vencrypt_tls_shows_the_guest_screen_exactly() {
    for t in ["Xvfb", "vncviewer", "xwd", "convert"] {
        tool(t);
    }
    let dir = tmpdir("tls");
    std::fs::write(dir.join("password"), "tiger\n").unwrap();
    std::fs::write(dir.join("passwd"), tigervnc_passwd(b"tiger")).unwrap();
    let conf = dir.join("conf");
    // X509None (no password) and X509Vnc (password); the second VM reuses the generated certificate.
    let mut none = Vm::start(&["--vnc", "127.0.0.1:0", "--tls", "--vnc-config-dir", conf.to_str().unwrap()]);
    let none_port = none.port("VNC");
    none.wait("generated a self-signed VNC certificate", Duration::from_secs(5));
    let pw = dir.join("password");
    let mut vnc = Vm::start(&["--vnc", "127.0.0.1:0", "--tls", "--vnc-config-dir", conf.to_str().unwrap(), "--password-file", pw.to_str().unwrap()]);
    let vnc_port = vnc.port("VNC");
    none.pattern_then_evread();
    vnc.pattern_then_evread();
    let display = free_display();
    let disp = format!(":{display}");
    let mut procs = Killer(vec![Command::new(tool("Xvfb"))
        .args([disp.as_str(), "-screen", "0", "1400x560x24", "-nolisten", "tcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()]);
    let t0 = Instant::now();
    while !std::path::Path::new(&format!("/tmp/.X11-unix/X{display}")).exists() {
        assert!(t0.elapsed() < Duration::from_secs(10), "Xvfb did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ca = conf.join("cert.pem");
    let cases = [
        ("x509none", none_port, vec!["-SecurityTypes=X509None".to_string()], 0),
        ("x509vnc", vnc_port, vec!["-SecurityTypes=X509Vnc".to_string(), format!("-passwd={}", dir.join("passwd").display())], 700),
    ];
    for (name, port, opts, x) in &cases {
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        procs.0.push(
            Command::new(tool("vncviewer"))
                .env("DISPLAY", &disp)
                .env("HOME", &dir)
                .args(["-AutoSelect=0", "-FullColor", "-RemoteResize=0", "-PreferredEncoding=ZRLE", "-NoJPEG"])
                .arg(format!("-X509CA={}", ca.display()))
                .arg(format!("-geometry={W}x{H}+{x}+0"))
                .args(opts)
                .arg(format!("127.0.0.1::{port}"))
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }
    // Wait for the screenshot to show both patterns (the viewers' banner fades after a while). Without
    // a window manager the viewer puts its window a pixel or so off the asked position.
    let xwd = dir.join("screen.xwd");
    let t0 = Instant::now();
    let report = loop {
        std::thread::sleep(Duration::from_secs(2));
        let out = Command::new(tool("xwd")).args(["-root", "-silent", "-display", &disp, "-out"]).arg(&xwd).output().unwrap();
        assert!(out.status.success(), "xwd: {}", String::from_utf8_lossy(&out.stderr));
        let shot = to_rgb(&xwd);
        let wrong: Vec<usize> = cases.iter().map(|(_, _, _, x)| (0..40).flat_map(|oy| (0..4).map(move |dx| (oy, dx))).map(|(oy, dx)| wrong_pixels(&shot, x + dx, oy)).min().unwrap()).collect();
        if wrong.iter().all(|&w| w == 0) {
            break wrong;
        }
        if t0.elapsed() > Duration::from_secs(90) {
            let png = dir.join("screen.png");
            let _ = Command::new(tool("convert")).arg(&xwd).arg(&png).status();
            let logs: Vec<String> = cases.iter().map(|(n, ..)| std::fs::read_to_string(dir.join(format!("{n}.log"))).unwrap_or_default()).collect();
            panic!("wrong pixels per viewer {wrong:?} (shot {}); viewer logs:\n{}", png.display(), logs.join("\n---\n"));
        }
    };
    eprintln!("TigerVNC over VeNCrypt TLS: exact ({report:?} wrong pixels), screenshot {}", xwd.display());
}
