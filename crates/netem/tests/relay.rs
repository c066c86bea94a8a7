//! End-to-end tests of the TCP and UDP relays over loopback, with real sockets and real time.
//!
//! Tolerances are generous upwards (a loaded 2-core machine runs late) but tight downwards: the
//! emulator must never deliver early, so a broken delay or rate fails these tests.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use doppel_netem::bench::{bulk_transfer, echo_server, median, round_trips, sink_server};
use doppel_netem::control::error_chain;
use doppel_netem::units::{parse_duration, parse_loss, parse_rate};
use doppel_netem::{ControlSocket, Dir, LinkHandle, LinkParams, TcpRelay, UdpRelay};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UdpSocket, UnixStream};

fn any() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn delay(d: &str) -> LinkParams {
    LinkParams {
        delay: parse_duration(d).unwrap(),
        ..LinkParams::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtt_through_the_link_matches_the_configured_delay() {
    let echo = echo_server(any()).await.unwrap();
    let direct = median(&round_trips(echo.addr(), 20, 64, 2).await.unwrap());
    let relay = TcpRelay::start(
        any(),
        echo.addr(),
        LinkHandle::symmetric(delay("25ms"), 1).unwrap(),
    )
    .await
    .unwrap();
    let rtts = round_trips(relay.local_addr(), 15, 64, 2).await.unwrap();
    let med = median(&rtts);
    let min = rtts.iter().min().copied().unwrap();
    eprintln!("direct {direct:?}, through 25 ms each way: median {med:?}, min {min:?}");
    assert!(
        min >= ms(50),
        "a round trip took {min:?}, less than the 50 ms configured"
    );
    assert!(
        med <= ms(70),
        "median round trip {med:?} is far above the 50 ms configured"
    );
    let up = relay.handle().stats(Dir::Up);
    assert_eq!(up.packets_in, 17);
    assert_eq!(up.bytes_out, 17 * 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_transfer_through_10mbit_takes_the_expected_time() {
    let sink = sink_server(any()).await.unwrap();
    let up = LinkParams {
        rate: parse_rate("10mbit").unwrap(),
        ..LinkParams::default()
    };
    let relay = TcpRelay::start(
        any(),
        sink.addr(),
        LinkHandle::new(up, LinkParams::default(), 1).unwrap(),
    )
    .await
    .unwrap();
    let bytes = 2_000_000;
    let took = bulk_transfer(relay.local_addr(), bytes, None)
        .await
        .unwrap();
    // 2 MB at 10 Mbit/s is 1.6 s; the last chunk (at most 2.5 kB) leaves without waiting.
    eprintln!("2 MB through 10 Mbit/s: {took:?}");
    assert!(
        took >= ms(1_590),
        "{took:?}: faster than the 10 Mbit/s rate allows"
    );
    assert!(took <= ms(2_300), "{took:?}: far slower than 10 Mbit/s");
    let s = relay.handle().stats(Dir::Up);
    assert_eq!((s.bytes_in, s.bytes_out), (bytes, bytes));
    assert!(
        s.packets_in >= bytes / 2500,
        "chunks larger than 2 ms of the rate: {}",
        s.packets_in
    );
    assert_eq!((s.queue_bytes, s.wire_bytes), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_pushes_back_instead_of_losing_stream_bytes() {
    let sink = sink_server(any()).await.unwrap();
    let up = LinkParams {
        rate: parse_rate("20mbit").unwrap(),
        queue: 4096,
        ..LinkParams::default()
    };
    let relay = TcpRelay::start(
        any(),
        sink.addr(),
        LinkHandle::new(up, LinkParams::default(), 1).unwrap(),
    )
    .await
    .unwrap();
    let took = bulk_transfer(relay.local_addr(), 1_000_000, None)
        .await
        .unwrap();
    assert!(took >= ms(390), "{took:?}");
    let s = relay.handle().stats(Dir::Up);
    assert_eq!(
        (s.bytes_out, s.dropped_queue, s.dropped_loss),
        (1_000_000, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_varies_round_trips_but_keeps_the_stream_intact() {
    let echo = echo_server(any()).await.unwrap();
    let p = LinkParams {
        jitter: parse_duration("8ms").unwrap(),
        ..delay("20ms")
    };
    let relay = TcpRelay::start(any(), echo.addr(), LinkHandle::symmetric(p, 3).unwrap())
        .await
        .unwrap();
    // round_trips checks every echoed byte.
    let rtts = round_trips(relay.local_addr(), 30, 1000, 1).await.unwrap();
    let (min, max) = (
        rtts.iter().min().copied().unwrap(),
        rtts.iter().max().copied().unwrap(),
    );
    eprintln!(
        "20 ± 8 ms each way: min {min:?} max {max:?} median {:?}",
        median(&rtts)
    );
    assert!(min >= ms(24), "{min:?} below 2 × (20 - 8) ms");
    assert!(max - min >= ms(4), "no visible jitter: {min:?}..{max:?}");
    assert!(median(&rtts) <= ms(60), "{:?}", median(&rtts));
}

async fn udp_echo() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let s = UdpSocket::bind(any()).await.unwrap();
    let addr = s.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 2048];
        while let Ok((n, peer)) = s.recv_from(&mut buf).await {
            let _ = s.send_to(&buf[..n], peer).await;
        }
    });
    (addr, task)
}

/// Sends `count` numbered datagrams through a relay with 10% loss upstream; returns the numbers
/// that came back and the relay's upstream counters.
async fn lossy_udp_run(seed: u64, count: u32) -> (BTreeSet<u32>, doppel_netem::LinkStats) {
    let (echo, _task) = udp_echo().await;
    let up = LinkParams {
        loss: parse_loss("10%").unwrap(),
        ..LinkParams::default()
    };
    let handle = LinkHandle::new(up, LinkParams::default(), seed).unwrap();
    let relay = UdpRelay::start(any(), echo, handle, Duration::from_secs(5))
        .await
        .unwrap();
    let client = UdpSocket::bind(any()).await.unwrap();
    client.connect(relay.local_addr()).await.unwrap();
    let receiver = async {
        let mut got = BTreeSet::new();
        let mut buf = [0u8; 64];
        while let Ok(Ok(n)) = tokio::time::timeout(ms(1000), client.recv(&mut buf)).await {
            got.insert(u32::from_le_bytes(buf[..n.min(4)].try_into().unwrap()));
        }
        got
    };
    let sender = async {
        for i in 0..count {
            client.send(&i.to_le_bytes()).await.unwrap();
            if i % 10 == 9 {
                tokio::time::sleep(ms(1)).await;
            }
        }
    };
    let (got, ()) = tokio::join!(receiver, sender);
    (got, relay.handle().stats(Dir::Up))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_udp_loss_drops_the_expected_share_and_repeats() {
    let count = 3000;
    let (got, stats) = lossy_udp_run(7, count).await;
    let lost = u64::from(count) - u64::try_from(got.len()).unwrap();
    eprintln!(
        "10% loss: {lost} of {count} lost; relay counted {}",
        stats.dropped_loss
    );
    assert_eq!(stats.packets_in, u64::from(count));
    assert_eq!(stats.dropped_loss + stats.packets_out, u64::from(count));
    // 300 expected; the binomial standard deviation is 16.4.
    assert!(
        (240..=360).contains(&stats.dropped_loss),
        "{} dropped",
        stats.dropped_loss
    );
    assert_eq!(
        lost, stats.dropped_loss,
        "datagrams lost outside the emulator"
    );
    let (again, _) = lossy_udp_run(7, count).await;
    assert_eq!(got, again, "the same seed lost different datagrams");
    let (other, _) = lossy_udp_run(8, count).await;
    assert_ne!(got, other, "a different seed lost the same datagrams");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_delay_applies_both_ways() {
    let (echo, _task) = udp_echo().await;
    let relay = UdpRelay::start(
        any(),
        echo,
        LinkHandle::symmetric(delay("15ms"), 1).unwrap(),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let client = UdpSocket::bind(any()).await.unwrap();
    client.connect(relay.local_addr()).await.unwrap();
    let mut rtts = Vec::new();
    for i in 0u32..10 {
        let t0 = tokio::time::Instant::now();
        client.send(&i.to_le_bytes()).await.unwrap();
        let mut buf = [0u8; 8];
        tokio::time::timeout(ms(2000), client.recv(&mut buf))
            .await
            .unwrap()
            .unwrap();
        rtts.push(t0.elapsed());
    }
    let (min, med) = (rtts.iter().min().copied().unwrap(), median(&rtts));
    assert!(min >= ms(30) && med <= ms(45), "min {min:?} median {med:?}");
}

async fn rtt(conn: &mut tokio::net::TcpStream) -> Duration {
    use tokio::io::AsyncReadExt;
    let mut times = Vec::new();
    for _ in 0..7 {
        let t0 = tokio::time::Instant::now();
        conn.write_all(b"ping").await.unwrap();
        let mut b = [0u8; 4];
        conn.read_exact(&mut b).await.unwrap();
        times.push(t0.elapsed());
    }
    median(&times)
}

async fn control(path: &std::path::Path, line: &str) -> String {
    let s = UnixStream::connect(path).await.unwrap();
    let (rd, mut wr) = s.into_split();
    wr.write_all(format!("{line}\n").as_bytes()).await.unwrap();
    let mut reply = String::new();
    BufReader::new(rd).read_line(&mut reply).await.unwrap();
    reply.trim_end().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_changed_at_run_time_take_effect_on_open_connections() {
    let echo = echo_server(any()).await.unwrap();
    let handle = LinkHandle::symmetric(delay("10ms"), 1).unwrap();
    let relay = TcpRelay::start(any(), echo.addr(), handle.clone())
        .await
        .unwrap();
    let dir = std::env::temp_dir().join(format!("doppel-netem-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("control.sock");
    let ctl = ControlSocket::start(&path, handle.clone()).await.unwrap();

    let mut conn = tokio::net::TcpStream::connect(relay.local_addr())
        .await
        .unwrap();
    conn.set_nodelay(true).unwrap();
    let before = rtt(&mut conn).await;
    assert!(before >= ms(20) && before <= ms(35), "before: {before:?}");

    let reply = control(&path, "set both delay=40ms").await;
    assert!(reply.starts_with("ok up: delay=40ms"), "{reply}");
    let after = rtt(&mut conn).await;
    eprintln!("RTT {before:?} at 10 ms each way, {after:?} after `set both delay=40ms`");
    assert!(after >= ms(80) && after <= ms(100), "after: {after:?}");

    // The library handle changes the same link.
    handle.set_params(Dir::Up, LinkParams::default()).unwrap();
    handle.set_params(Dir::Down, LinkParams::default()).unwrap();
    let lifted = rtt(&mut conn).await;
    assert!(lifted <= ms(15), "after lifting: {lifted:?}");

    let stats = control(&path, "stats").await;
    assert!(stats.contains("up.packets_in=21 "), "{stats}");
    assert!(stats.contains("down.bytes_out=84 "), "{stats}");
    let err = control(&path, "set up delay=-5ms").await;
    assert_eq!(
        err,
        "err bad value for `delay`: duration `-5ms` must not be negative"
    );
    drop(ctl);
    assert!(!path.exists(), "control socket left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_give_clear_errors() {
    let taken = tokio::net::TcpListener::bind(any()).await.unwrap();
    let addr = taken.local_addr().unwrap();
    let handle = LinkHandle::symmetric(LinkParams::default(), 1).unwrap();
    let e = TcpRelay::start(addr, addr, handle.clone())
        .await
        .unwrap_err();
    let msg = error_chain(&e);
    assert!(
        msg.starts_with(&format!("cannot listen for TCP on {addr}: ")),
        "{msg}"
    );
    assert!(msg.to_lowercase().contains("in use"), "{msg}");

    let udp_taken = UdpSocket::bind(any()).await.unwrap();
    let uaddr = udp_taken.local_addr().unwrap();
    let e = UdpRelay::start(uaddr, uaddr, handle, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(error_chain(&e).starts_with(&format!("cannot listen for UDP on {uaddr}: ")));

    assert_eq!(
        parse_duration("-5ms").unwrap_err().to_string(),
        "duration `-5ms` must not be negative"
    );
    assert_eq!(
        parse_rate("0mbit").unwrap_err().to_string(),
        "rate `0mbit` is zero; omit the rate or write `unlimited` for no limit"
    );
    let tiny = LinkParams {
        queue: 64,
        ..LinkParams::default()
    };
    assert!(LinkHandle::symmetric(tiny, 1)
        .unwrap_err()
        .to_string()
        .contains("below the minimum"));
}
