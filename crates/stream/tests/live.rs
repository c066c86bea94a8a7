//! Live streaming end to end, over real TCP on localhost, with the real Linux guest (from
//! `$DOPPEL_GUEST_DIR`, else `$DOPPEL_CACHE/guest/current`, else `~/.cache/doppel/guest/current`).
//!
//! One host runs `evread` (boot, then print every input event) for the whole test, and the test
//! types a key into it every 100 ms, while:
//! * two replicas follow it at once (one with a fresh page cache, one prefetching without a
//!   cache), each checking the host's framebuffer hash and full state hash (all of RAM) at every
//!   checkpoint, until they have replayed past the host's tenth key;
//! * hostile clients connect meanwhile (garbage, a Hello then silence without reading, a request
//!   for a page beyond RAM) and are dropped with a reason, without stopping the host;
//! * a replica reconnects with the first one's cache, resumes from a new snapshot, matches again,
//!   and fetches almost no pages.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use doppel_stream::host::HostOptions;
use doppel_stream::proto::{self, Message};

mod common;
use common::{start_host, Host};
use doppel_stream::replica::{self, Control, Ended, ReplicaOptions, Status};

/// Follow the host until the replica has replayed past instruction `target` and checked a
/// framebuffer hash after it, or fail after `secs`.
fn follow(
    addr: &str,
    options: &ReplicaOptions,
    target: &(dyn Fn() -> Option<u64> + Sync),
    console: &(dyn Fn() -> String + Sync),
    secs: u64,
) -> Status {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut first_fb_after = None;
    let mut n = 0;
    let (ended, status) = replica::run(addr, options, &mut |s: &Status| {
        eprintln!("replica: {}", s.line());
        n += 1;
        if n % 10 == 0 {
            let c = console();
            eprintln!("host console, last lines:\n{}", c.lines().rev().take(3).collect::<Vec<_>>().join("\n"));
        }
        assert!(Instant::now() < deadline, "replica did not get there in {secs} s: {}", s.line());
        match target() {
            Some(t) if s.icount > t => {
                let checks = *first_fb_after.get_or_insert(s.fb_checks);
                if s.fb_checks >= checks + 2 {
                    return Control::Stop;
                }
                Control::Continue
            }
            _ => Control::Continue,
        }
    })
    .unwrap_or_else(|e| panic!("replica failed: {e:#?}"));
    assert_eq!(ended, Ended::Stopped);
    status
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("doppel-stream-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn live_replicas_match_the_host_reconnect_with_a_cache_and_hostile_clients_are_dropped() {
    // Every checkpoint carries the full state hash (RAM included): the replicas' demand-paged
    // RAM must equal the host's, page for page, at each.
    let options = HostOptions { checkpoint_every: 4_000_000, full_every: 1, queue: 64, write_timeout: Duration::from_secs(5), hello_timeout: Duration::from_secs(3), send_buffer: 16 << 10, ..HostOptions::default() };
    let host = start_host(options, "doppel.run=evread doppel.args=1000000");
    let typing = AtomicBool::new(true);
    // Connect while the host is still booting.
    while host.icount() < 30_000_000 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let drawn_at = Mutex::new(None::<u64>);
    let target = || {
        let mut d = drawn_at.lock().unwrap();
        if d.is_none() && host.console.text().matches("key 30 0").count() >= 10 {
            *d = Some(host.icount());
        }
        *d
    };
    let cache = scratch("cache");
    let with_cache = ReplicaOptions { cache: Some(cache.clone()), prefetch: false };
    let prefetching = ReplicaOptions { cache: None, prefetch: true };
    let (first, second, hostile_done) = std::thread::scope(|s| {
        s.spawn(|| {
            while typing.load(Ordering::Relaxed) {
                if host.console.text().contains("evread: ready") {
                    host.type_key(30);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let a = s.spawn(|| follow(&host.addr, &with_cache, &target, &|| host.console.text(), 900));
        let b = s.spawn(|| follow(&host.addr, &prefetching, &target, &|| String::new(), 900));
        let h = s.spawn(|| hostile_clients(&host));
        let r = (a.join().unwrap(), b.join().unwrap(), h.join().unwrap());
        typing.store(false, Ordering::Relaxed);
        r
    });
    assert!(hostile_done);
    let text = host.console.text();
    assert!(text.contains("key 30 1"), "{text}");
    for s in [&first, &second] {
        assert!(s.fb_checks >= 3, "{}", s.line());
        assert!(s.checkpoints >= 3, "{}", s.line());
        assert!(s.snapshot_icount >= 30_000_000);
    }
    assert!(first.pages_fetched > 1000, "{}", first.line());
    // The host ran on while clients came and went, and dropped each hostile one with a reason.
    let reasons: Vec<String> = host.stats.drop_reasons.lock().unwrap().iter().cloned().collect();
    eprintln!("drop reasons: {reasons:#?}");
    assert!(reasons.iter().any(|r| r.contains("bad handshake")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("queue is full") || r.contains("does not read")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("beyond") || r.contains("asked for page")), "{reasons:?}");

    // Reconnect with the first session's cache: a new snapshot, matching again, few pages fetched.
    let before = host.icount();
    let later = before + 10_000_000;
    let typing = AtomicBool::new(true);
    let again = std::thread::scope(|s| {
        s.spawn(|| {
            while typing.load(Ordering::Relaxed) {
                host.type_key(31);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let r = follow(&host.addr, &with_cache, &|| Some(later), &|| host.console.text(), 600);
        typing.store(false, Ordering::Relaxed);
        r
    });
    eprintln!("first session: {}\nsecond session: {}", first.line(), again.line());
    assert!(again.snapshot_icount >= before);
    assert!(again.fb_checks >= 2 && again.checkpoints >= 2, "{}", again.line());
    assert!(again.pages_from_cache > 1000, "{}", again.line());
    assert!(
        again.pages_fetched * 5 < first.pages_fetched,
        "second session fetched {} pages, the first {}",
        again.pages_fetched,
        first.pages_fetched
    );
    assert!(host.stats.snapshots.load(Ordering::Relaxed) >= 3);
    let _ = std::fs::remove_dir_all(&cache);
}

/// Garbage, a silent client that never reads, and an out-of-range request, while replicas
/// follow. Returns once all three have been dropped; the host keeps running throughout.
fn hostile_clients(host: &Host) -> bool {
    let start_icount = host.icount();
    // Garbage instead of Hello.
    let mut g = TcpStream::connect(&host.addr).unwrap();
    g.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // A proper Hello and requests for 8 MiB of pages, then never read a byte.
    let mut silent = TcpStream::connect(&host.addr).unwrap();
    silent.write_all(&Message::Hello { version: proto::VERSION }.to_bytes()).unwrap();
    for _ in 0..2 {
        silent.write_all(&Message::GetPages { pages: (0..1024).collect() }.to_bytes()).unwrap();
    }
    // A request for a page beyond RAM, after reading the handshake.
    let mut bad = TcpStream::connect(&host.addr).unwrap();
    bad.write_all(&Message::Hello { version: proto::VERSION }.to_bytes()).unwrap();
    let mut buf = [0u8; 4096];
    let _ = bad.read(&mut buf).unwrap();
    bad.write_all(&Message::GetPages { pages: vec![u32::MAX - 1] }.to_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let n = host.stats.dropped.load(Ordering::Relaxed);
        if n >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "hostile clients were not dropped: {:?}", host.stats.drop_reasons.lock().unwrap());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(host.icount() > start_icount, "the host must keep running");
    drop((g, silent, bad));
    true
}
