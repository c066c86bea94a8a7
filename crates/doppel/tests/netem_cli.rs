//! `doppel netem` as users run it: errors for bad parameters, and a relay process that delays,
//! answers on its control socket, and prints its final counters on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn doppel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_doppel"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_parameters_are_refused_with_clear_errors() {
    let relay = [
        "netem",
        "relay",
        "--listen",
        "127.0.0.1:0",
        "--target",
        "127.0.0.1:9",
    ];
    let with = |extra: &[&str]| doppel(&[&relay[..], extra].concat());

    let o = with(&["--delay", "-5ms"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("duration `-5ms` must not be negative"),
        "{}",
        stderr(&o)
    );

    let o = with(&["--up-rate", "0"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("rate `0` is zero; omit the rate or write `unlimited`"),
        "{}",
        stderr(&o)
    );

    let o = with(&["--loss", "5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("loss `5` needs a unit: % (e.g. 1%)"),
        "{}",
        stderr(&o)
    );

    let o = with(&["--queue", "10"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o).trim(),
        "doppel: invalid link parameters: queue of 10 bytes is below the minimum of 1500 bytes (one full-size packet)"
    );

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = doppel(&[
        "netem",
        "relay",
        "--listen",
        &addr,
        "--target",
        "127.0.0.1:9",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.starts_with(&format!("doppel: cannot listen for TCP on {addr}: ")),
        "{e}"
    );
    assert!(e.to_lowercase().contains("in use"), "{e}");
}

#[test]
fn help_teaches_with_examples() {
    let o = doppel(&["netem", "--help"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("Examples:") && out.contains("--delay 50ms --rate 10mbit"),
        "{out}"
    );
    let o = doppel(&["netem", "relay", "--help"]);
    let out = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--delay",
        "--jitter",
        "--rate",
        "--queue",
        "--loss",
        "--seed",
        "--up-delay",
        "--down-rate",
        "--control",
    ] {
        assert!(out.contains(flag), "relay --help lacks {flag}");
    }
}

fn echo_server() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let mut w = s;
                let _ = std::io::copy(&mut r, &mut w);
            });
        }
    });
    addr
}

#[test]
fn a_relay_process_delays_answers_control_and_reports_on_exit() {
    let echo = echo_server();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let sock = std::env::temp_dir().join(format!("doppel-netem-cli-{}.sock", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_doppel"))
        .args([
            "netem",
            "relay",
            "--listen",
            &listen,
            "--target",
            &echo.to_string(),
            "--delay",
            "15ms",
        ])
        .args(["--up-delay", "5ms", "--control", sock.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.starts_with(&format!(
            "netem: relaying Tcp {listen} -> {echo} (up: delay=5ms"
        )),
        "{first}"
    );

    let mut conn = TcpStream::connect(&listen).unwrap();
    conn.set_nodelay(true).unwrap();
    let mut times = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        conn.write_all(b"hello").unwrap();
        let mut b = [0u8; 5];
        conn.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hello");
        times.push(t0.elapsed());
    }
    times.sort();
    let med = times[2];
    assert!(
        med >= Duration::from_millis(20) && med <= Duration::from_millis(35),
        "RTT {med:?} for 5 + 15 ms"
    );

    let mut ctl = UnixStream::connect(&sock).unwrap();
    ctl.write_all(b"stats\n").unwrap();
    let mut reply = String::new();
    BufReader::new(ctl.try_clone().unwrap())
        .read_line(&mut reply)
        .unwrap();
    assert!(
        reply.starts_with("ok up.packets_in=5 up.bytes_in=25 "),
        "{reply}"
    );
    drop(conn);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "exit {:?}", out.status);
    let err = stderr(&out);
    assert!(
        err.contains("netem: final up.packets_in=5 up.bytes_in=25 "),
        "{err}"
    );
    assert!(!sock.exists(), "control socket left behind");
}

fn control(sock: &std::path::Path, line: &str) -> String {
    let mut ctl = UnixStream::connect(sock).unwrap();
    ctl.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut reply = String::new();
    BufReader::new(ctl).read_line(&mut reply).unwrap();
    reply
}

#[test]
fn a_config_file_is_applied_at_start_and_on_sighup() {
    let dir = std::env::temp_dir().join(format!("doppel-netem-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("link.conf");
    let sock = dir.join("ctl.sock");

    std::fs::write(&conf, "set up delay=-1ms\n").unwrap();
    let o = doppel(
        &[
            "netem",
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--target",
            "127.0.0.1:9",
        ]
        .iter()
        .copied()
        .chain(["--config", conf.to_str().unwrap()])
        .collect::<Vec<_>>(),
    );
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("link.conf:1: bad value for `delay`: duration `-1ms` must not be negative"),
        "{e}"
    );

    std::fs::write(
        &conf,
        "# a test link\nset both delay=5ms\nset up rate=1mbit  # slow up\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_doppel"))
        .args([
            "netem",
            "relay",
            "--listen",
            "127.0.0.1:0",
            "--target",
            "127.0.0.1:9",
        ])
        .args([
            "--config",
            conf.to_str().unwrap(),
            "--control",
            sock.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(
        first.contains("up: delay=5ms jitter=0ms rate=1mbit"),
        "{first}"
    );
    let deadline = Instant::now() + Duration::from_secs(3);
    while !sock.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }

    std::fs::write(&conf, "set down delay=30ms\n").unwrap();
    let hup = |pid: u32| {
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
    };
    assert!(hup(child.id()).success());
    let mut reply = String::new();
    while Instant::now() < deadline {
        reply = control(&sock, "get");
        if reply.contains("down: delay=30ms") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        reply.contains("up: delay=5ms") && reply.contains("down: delay=30ms"),
        "{reply}"
    );

    // A bad file on SIGHUP changes nothing, and the relay keeps running.
    std::fs::write(&conf, "set down delay=1ms\nset up queue=1\n").unwrap();
    assert!(hup(child.id()).success());
    std::thread::sleep(Duration::from_millis(300));
    let reply = control(&sock, "get");
    assert!(reply.contains("down: delay=30ms"), "{reply}");

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}
