//! Guest networking end to end: the real guest (guest/build.sh) on the real machine, on a libslirp
//! user-mode network in the live environment, talking to servers this test runs on the host.
//!
//! * the guest downloads a file from an HTTP server on the host (`download` workload) and its
//!   sha256 matches;
//! * the guest serves a file with busybox httpd (`serve`), reached through a host port forward;
//! * `inet` receives and `onet` sends in 4-byte chunks, and every byte arrives.
//!
//! (`crates/doppel/tests/net.rs` checks the same forward through `doppel vm run --hostfwd`.)
//! The guest is found by `doppel_testkit::guest_dir`. These tests run in real time (the network is real).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use doppel_testkit::guest_file;
use doppel_host::live::{LiveEnvironment, OutputSink};
use doppel_host::net::{self, HostFwd, NetMode, UserNetConfig};
use doppel_machine::machine::{Exit, Machine, MachineConfig};
use doppel_machine::InputEvent;
use doppel_replay::wire::{self, Record};
use doppel_replay::{fingerprint, RecordOptions, Recorder, ReplayStop, Replayer};
use sha2::{Digest, Sha256};

#[derive(Clone, Default)]
struct Console(Arc<Mutex<Vec<u8>>>);

impl Console {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl OutputSink for Console {
    fn console(&mut self, bytes: &[u8]) {
        self.0.lock().unwrap().extend_from_slice(bytes);
    }
    fn net_tx(&mut self, _frame: &[u8]) {}
}

/// Wall-clock limit of one guest run (boot, work, power-off) on a loaded two-core host.
const WALL_LIMIT: Duration = Duration::from_secs(600);

fn guest_config(cmdline: &str) -> MachineConfig {
    MachineConfig {
        kernel: std::fs::read(guest_file("Image")).unwrap(),
        initrd: Some(std::fs::read(guest_file("initramfs.cpio")).unwrap()),
        cmdline: format!("console=ttyS0 panic=-1 {cmdline}"),
        ..MachineConfig::default()
    }
}

/// Boot the guest on a user network and run it until it powers off. Returns the console.
fn run_guest(cmdline: &str) -> String {
    run_guest_until(cmdline, UserNetConfig::default(), |_| false)
}

/// Boot the guest on a user network with `config` and run it until it powers off or `done`
/// (given the console so far) says to stop. Returns the console.
fn run_guest_until(
    cmdline: &str,
    net_config: UserNetConfig,
    done: impl Fn(&str) -> bool,
) -> String {
    let mut m = Machine::new(guest_config(cmdline)).unwrap();
    let console = Console::default();
    let (mut env, input) = LiveEnvironment::new(Box::new(console.clone()));
    let backend = net::start(NetMode::User, net_config, &input)
        .unwrap()
        .unwrap();
    env.set_network(backend);
    let started = Instant::now();
    loop {
        if done(&console.text()) {
            break;
        }
        match m.run(&mut env, m.icount() + 100_000) {
            Exit::Limit => {}
            Exit::PowerOff(0) => break,
            other => panic!(
                "guest stopped with {other:?} at {}\nconsole:\n{}",
                m.location(),
                console.text()
            ),
        }
        assert!(
            started.elapsed() < WALL_LIMIT,
            "guest still running after {WALL_LIMIT:?} at {}\nconsole:\n{}",
            m.location(),
            console.text()
        );
    }
    let stats = env.network_stats().unwrap();
    eprintln!(
        "{} instructions in {:.1} s; network: guest sent {} frames, received {} frames ({} bytes)",
        m.icount(),
        started.elapsed().as_secs_f64(),
        stats.tx_frames,
        stats.rx_frames,
        stats.rx_bytes
    );
    console.text()
}

/// The value after `prefix` on the console line that starts with it.
fn line_after<'a>(console: &'a str, prefix: &str) -> &'a str {
    console
        .lines()
        .find_map(|l| l.trim_end_matches('\r').strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line on the console:\n{console}"))
}

/// Deterministic, incompressible test content.
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[3]
        })
        .collect()
}

/// A minimal HTTP/1.0 server: every GET gets `body`. Serves until the test process ends.
fn http_server(body: Vec<u8>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let body = Arc::new(body);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let body = body.clone();
            thread::spawn(move || {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.0 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let _ = s
                    .write_all(head.as_bytes())
                    .and_then(|()| s.write_all(&body));
            });
        }
    });
    port
}

#[test]
fn the_guest_downloads_a_file_from_a_host_http_server_and_its_sha256_matches() {
    let body = content(1 << 20, 7);
    let want = format!("{:x}", Sha256::digest(&body));
    let port = http_server(body);
    let console = run_guest(&format!(
        "doppel.run=download doppel.args=http://10.0.2.2:{port}/file.bin"
    ));
    assert!(
        console.contains("doppel-init: eth0 10.0.2.15/24"),
        "{console}"
    );
    assert_eq!(
        line_after(&console, "download: fetched "),
        format!("{} bytes", 1 << 20),
        "{console}"
    );
    assert_eq!(line_after(&console, "download: sha256 "), want, "{console}");
    assert!(console.contains("doppel-run: download exit=0"), "{console}");
}

/// Byte `i` of what `onet` sends.
fn onet_byte(i: u64) -> u8 {
    ((i * 7 + i / 251) & 255) as u8
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[test]
fn inet_receives_and_onet_sends_every_byte_in_4_byte_chunks() {
    // inet: the host sends, the guest reads 4 bytes at a time and reports count and FNV-1a.
    let body = content(64 << 10, 11);
    let want = format!(
        "received {} bytes in {} reads fnv1a=0x{:016x}",
        body.len(),
        body.len() / 4,
        fnv1a(&body)
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.write_all(&body).unwrap();
    });
    let console = run_guest(&format!("doppel.run=inet doppel.args=10.0.2.2,{port}"));
    server.join().unwrap();
    assert!(console.contains("doppel-run: inet exit=0"), "{console}");
    assert!(
        console
            .lines()
            .any(|l| l.starts_with(&format!("inet: {want} "))),
        "want `{want}`, got:\n{console}"
    );

    // onet: the guest writes 4 bytes at a time; the host checks every byte.
    let n: u64 = 48 << 10;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        tx.send(got).unwrap();
    });
    let console = run_guest(&format!("doppel.run=onet doppel.args=10.0.2.2,{port},{n}"));
    let got = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the host received the stream");
    assert_eq!(got.len() as u64, n, "{console}");
    assert!(
        got.iter()
            .enumerate()
            .all(|(i, &b)| b == onet_byte(i as u64)),
        "the stream's bytes differ"
    );
    assert!(
        line_after(&console, "onet: sent ").starts_with(&format!("{n} bytes in {} writes", n / 4)),
        "{console}"
    );
}

#[test]
fn the_guest_serves_a_file_through_a_host_port_forward() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rule: HostFwd = format!("tcp:127.0.0.1:{port}-:80").parse().unwrap();
    let config = UserNetConfig {
        hostfwd: vec![rule],
        ..UserNetConfig::default()
    };
    // The fetch runs on another thread while this one runs the machine; it starts once the guest
    // says its server is up (httpd may need a moment more: retry).
    let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let fetcher = {
        let ready = ready.clone();
        thread::spawn(move || {
            while !ready.load(std::sync::atomic::Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(100));
            }
            let started = Instant::now();
            let mut last = String::new();
            while started.elapsed() < WALL_LIMIT {
                match http_get(Ipv4Addr::LOCALHOST, port, "/seq.txt") {
                    Ok(b) if b.starts_with("HTTP/1.") => {
                        tx.send(Ok(b)).unwrap();
                        return;
                    }
                    Ok(b) => last = b,
                    Err(e) => last = e.to_string(),
                }
                thread::sleep(Duration::from_millis(500));
            }
            tx.send(Err(last)).unwrap();
        })
    };
    let got: Arc<Mutex<Option<Result<String, String>>>> = Arc::default();
    let console = run_guest_until("doppel.run=serve doppel.args=20000", config, |console| {
        if console.contains("serve: ready 80") {
            ready.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if let Ok(r) = rx.try_recv() {
            *got.lock().unwrap() = Some(r);
        }
        got.lock().unwrap().is_some()
    });
    fetcher.join().unwrap();
    let response = got
        .lock()
        .unwrap()
        .take()
        .unwrap()
        .unwrap_or_else(|e| panic!("no answer through the forward: {e}\n{console}"));
    let (head, body) = response.split_once("\r\n\r\n").expect("a header");
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    let want: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    assert_eq!(body.len(), want.len());
    assert!(body == want, "the file served by the guest differs");
}

fn http_get(addr: Ipv4Addr, port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect((addr, port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

#[test]
fn a_recorded_network_run_replays_bit_exactly_without_the_network() {
    let body = content(32 << 10, 5);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = {
        let body = body.clone();
        thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.write_all(&body).unwrap();
        })
    };
    let cmdline = format!("doppel.run=inet doppel.args=10.0.2.2,{port}");
    let config = guest_config(&cmdline);
    let fp = fingerprint(&config);
    let mut m = Machine::new(config).unwrap();
    let console = Console::default();
    let (mut env, input) = LiveEnvironment::new(Box::new(console.clone()));
    env.set_network(
        net::start(NetMode::User, UserNetConfig::default(), &input)
            .unwrap()
            .unwrap(),
    );
    let options = RecordOptions {
        checkpoint_period: 50_000_000,
        full_every: 1,
    };
    let mut rec = Recorder::new(env, Vec::new(), &m, fp, options).unwrap();
    let started = Instant::now();
    loop {
        let until = m.icount() + 100_000;
        match rec.run(&mut m, until).unwrap() {
            Exit::Limit => {}
            Exit::PowerOff(0) => break,
            other => panic!(
                "guest stopped with {other:?} at {}\nconsole:\n{}",
                m.location(),
                console.text()
            ),
        }
        assert!(
            started.elapsed() < WALL_LIMIT,
            "guest still running at {}\n{}",
            m.location(),
            console.text()
        );
    }
    server.join().unwrap();
    let (end_icount, end_hash) = (m.icount(), m.state_hash());
    let (env, log) = rec.finish(&m).unwrap();
    drop(env); // the network is gone from here on
    let live = console.text();
    assert!(
        live.contains(&format!("inet: received {} bytes", body.len())),
        "{live}"
    );
    let (_, records) = wire::decode_all(&log).unwrap();
    let rx: usize = records
        .iter()
        .filter_map(|r| match r {
            Record::Event {
                event: InputEvent::NetRx(frame),
                ..
            } => Some(frame.len()),
            _ => None,
        })
        .sum();
    assert!(
        rx > body.len(),
        "the log holds {rx} bytes of received frames for {} bytes of data",
        body.len()
    );

    // Replay: same config, no network, no server; the log alone drives the guest.
    let mut m = Machine::new(guest_config(&cmdline)).unwrap();
    let mut replayer = Replayer::new(log.as_slice()).unwrap();
    replayer.check_start(&m, &fp).unwrap();
    match replayer.run(&mut m, u64::MAX).unwrap() {
        ReplayStop::PowerOff(0) => replayer.finish(&m).unwrap(),
        ReplayStop::End => {}
        other => panic!("replay stopped with {other:?} at {}", m.location()),
    }
    assert!(replayer.checkpoints_verified() > 0);
    assert_eq!(m.icount(), end_icount);
    assert_eq!(
        m.state_hash(),
        end_hash,
        "replayed state differs from the recorded run"
    );
}
