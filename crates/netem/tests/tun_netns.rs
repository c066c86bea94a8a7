//! IP-level mode end to end: two network namespaces, each holding one TUN device of a bridge
//! running in this process, ping and a TCP transfer between them through the emulated link.
//!
//! Needs root (or CAP_NET_ADMIN + CAP_SYS_ADMIN), /dev/net/tun, iproute2, ping and socat
//! (`scripts/setup.sh` installs them). It fails with a message saying what is missing rather than
//! skipping. The namespaces it creates carry this process's id and are deleted even when the test
//! fails; the only addresses it uses live inside them.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use doppel_netem::tun::Tun;
use doppel_netem::units::{parse_duration, parse_rate};
use doppel_netem::{Dir, LinkHandle, LinkParams, TunBridge};

const ADDR_A: &str = "10.213.0.1";
const ADDR_B: &str = "10.213.0.2";

fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{}`: {e} (run scripts/setup.sh)",
                args.join(" ")
            )
        })
}

fn must(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "`{}` failed: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn require_environment() {
    let uid = must(&["id", "-u"]);
    assert_eq!(
        uid.trim(),
        "0",
        "the TUN/netns test needs root (it creates network namespaces)"
    );
    assert!(
        std::path::Path::new("/dev/net/tun").exists(),
        "the TUN/netns test needs /dev/net/tun (modprobe tun)"
    );
    for tool in ["ip", "ping", "socat"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map(|o| o.status.success());
        assert!(
            found.unwrap_or(false),
            "the TUN/netns test needs `{tool}` (run scripts/setup.sh)"
        );
    }
}

/// Network namespaces that are deleted when this is dropped, even during a panic.
struct Namespaces(Vec<String>);

impl Namespaces {
    fn create(names: &[String]) -> Namespaces {
        let mut ns = Namespaces(Vec::new());
        for n in names {
            // A namespace left by a crashed earlier run with the same pid would make `add` fail.
            let _ = run(&["ip", "netns", "del", n]);
            must(&["ip", "netns", "add", n]);
            ns.0.push(n.clone());
            must(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        ns
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for n in &self.0 {
            let out = run(&["ip", "netns", "del", n]);
            if !out.status.success() {
                eprintln!(
                    "warning: could not delete namespace {n}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

fn place(dev: &str, ns: &str, addr: &str) {
    must(&["ip", "link", "set", "dev", dev, "netns", ns]);
    must(&[
        "ip",
        "-n",
        ns,
        "addr",
        "add",
        &format!("{addr}/24"),
        "dev",
        dev,
    ]);
    must(&["ip", "-n", ns, "link", "set", "dev", dev, "up"]);
}

/// Pings from `ns` to `addr`; returns (min, avg) RTT in ms.
fn ping(ns: &str, addr: &str, count: u32) -> (f64, f64) {
    let out = must(&[
        "ip",
        "netns",
        "exec",
        ns,
        "ping",
        "-n",
        "-c",
        &count.to_string(),
        "-i",
        "0.2",
        "-W",
        "3",
        addr,
    ]);
    let line = out
        .lines()
        .find(|l| l.contains("min/avg/max"))
        .unwrap_or_else(|| panic!("no RTT summary in ping output:\n{out}"));
    let numbers = line
        .split('=')
        .nth(1)
        .unwrap_or_else(|| panic!("odd ping line: {line}"));
    let v: Vec<f64> = numbers
        .trim()
        .trim_end_matches(" ms")
        .split('/')
        .map(|x| x.trim().parse().unwrap())
        .collect();
    (v[0], v[1])
}

#[test]
fn ping_and_tcp_between_namespaces_through_tun_devices() {
    require_environment();
    let pid = std::process::id();
    let (ns_a, ns_b) = (format!("dnetem-a-{pid}"), format!("dnetem-b-{pid}"));
    let (dev_a, dev_b) = (
        format!("dnA{}", pid % 1_000_000),
        format!("dnB{}", pid % 1_000_000),
    );
    let namespaces = Namespaces::create(&[ns_a.clone(), ns_b.clone()]);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let params = LinkParams {
        delay: parse_duration("20ms").unwrap(),
        ..LinkParams::default()
    };
    let handle = LinkHandle::symmetric(params, 1).unwrap();
    let bridge = {
        let _guard = runtime.enter();
        let a = Tun::create(&dev_a).unwrap();
        let b = Tun::create(&dev_b).unwrap();
        TunBridge::start(a, b, handle.clone()).unwrap()
    };
    place(&dev_a, &ns_a, ADDR_A);
    place(&dev_b, &ns_b, ADDR_B);

    // 20 ms each way: 40 ms round trips.
    let (min, avg) = ping(&ns_a, ADDR_B, 10);
    eprintln!("ping through 20 ms each way: min {min} ms, avg {avg} ms");
    assert!(
        min >= 40.0,
        "round trip {min} ms is below the 40 ms configured"
    );
    assert!(
        avg <= 55.0,
        "average round trip {avg} ms is far above the 40 ms configured"
    );
    let up = handle.stats(Dir::Up);
    let down = handle.stats(Dir::Down);
    assert!(
        up.packets_out >= 10 && down.packets_out >= 10,
        "up {up:?} down {down:?}"
    );

    // A TCP transfer at 20 Mbit/s: 1 MB in about 0.4 s, plus slow start over a 40 ms RTT.
    let shaped = LinkParams {
        rate: parse_rate("20mbit").unwrap(),
        ..handle.params(Dir::Up)
    };
    handle.set_params(Dir::Up, shaped).unwrap();
    let data: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns_b,
            "socat",
            "-T",
            "10",
            "-u",
            "TCP-LISTEN:5001,reuseaddr",
            "STDOUT",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let mut client = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns_a,
            "socat",
            "-T",
            "10",
            "-u",
            "STDIN",
            &format!("TCP:{ADDR_B}:5001,retry=10,interval=0.2"),
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    // Feed the client from another thread while this one drains the server's output; doing both
    // here would deadlock once the server's stdout pipe fills.
    let mut stdin = client.stdin.take().unwrap();
    let feed = data.clone();
    let writer = std::thread::spawn(move || stdin.write_all(&feed));
    let received = server.wait_with_output().unwrap();
    let took = t0.elapsed();
    writer.join().unwrap().unwrap();
    let client_status = client.wait().unwrap();
    assert!(client_status.success(), "socat client failed");
    assert_eq!(received.stdout.len(), data.len(), "TCP transfer lost bytes");
    assert!(received.stdout == data, "TCP transfer corrupted bytes");
    eprintln!("1 MB TCP through 20 Mbit/s, 40 ms RTT: {took:?}");
    assert!(
        took >= Duration::from_millis(390),
        "{took:?}: faster than 20 Mbit/s allows"
    );
    assert!(
        took <= Duration::from_secs(5),
        "{took:?}: far slower than 20 Mbit/s"
    );

    drop(bridge);
    drop(runtime);
    drop(namespaces);
}
