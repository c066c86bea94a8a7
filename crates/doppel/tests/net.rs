//! `doppel vm run --net user --hostfwd`: the real guest (guest/build.sh) serves a file with
//! busybox httpd and the test fetches it on the host through the forward. The download, inet and
//! onet checks run in-process in `crates/host/tests/guest_net.rs`. The guest is found by
//! `doppel_testkit::guest_dir`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use doppel_testkit::guest_file;

/// Wall-clock limit of the run on a loaded two-core host.
const WALL_LIMIT: Duration = Duration::from_secs(600);

#[test]
fn vm_run_forwards_a_host_port_to_the_guests_web_server() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_doppel"))
        .args(["vm", "run", "--kernel"])
        .arg(guest_file("Image"))
        .arg("--initrd")
        .arg(guest_file("initramfs.cpio"))
        .args([
            "--net",
            "user",
            "--hostfwd",
            &format!("tcp:127.0.0.1:{port}-:80"),
        ])
        .args([
            "--append",
            "console=ttyS0 doppel.run=serve doppel.args=20000",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    let mut console = String::new();
    while !console.contains("serve: ready 80") {
        match rx.recv_timeout(WALL_LIMIT.saturating_sub(started.elapsed())) {
            Ok(line) => {
                console.push_str(&line);
                console.push('\n');
            }
            Err(_) => {
                let _ = child.kill();
                panic!("the guest's server did not start:\n{console}");
            }
        }
    }
    // httpd may take a moment to listen after the marker; retry until it answers.
    let want: String = (1..=20000).map(|i| format!("{i}\n")).collect();
    let mut last = String::new();
    let mut body = None;
    while started.elapsed() < WALL_LIMIT && body.is_none() {
        match http_get(Ipv4Addr::LOCALHOST, port, "/seq.txt") {
            Ok(b) if b.starts_with("HTTP/1.") => body = Some(b),
            Ok(b) => last = b,
            Err(e) => last = e.to_string(),
        }
        thread::sleep(Duration::from_millis(500));
    }
    let _ = child.kill();
    let _ = child.wait();
    let response =
        body.unwrap_or_else(|| panic!("no answer through the forward (last: {last})\n{console}"));
    let (head, got) = response.split_once("\r\n\r\n").expect("a header");
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the file served by the guest differs");
}

fn http_get(addr: Ipv4Addr, port: u16, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect((addr, port))?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}
