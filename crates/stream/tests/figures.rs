//! Streaming figures (ignored by default; `bench/stream.sh` runs it and prints a table):
//! what a new replica must fetch before it shows the host's current screen (cold, with
//! prefetching, and a second session with the page cache), steady-state traffic (log against
//! pages), lag, and the host's snapshot stall. Real TCP on localhost, the real Linux guest, the
//! host on the real live environment (idle time passes in real time): `fbpattern` draws, then the
//! guest holds (an idle desktop); then `evread` with a key typed every 100 ms (typing).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use doppel_host::live::{LiveEnvironment, OutputSink};
use doppel_machine::InputEvent;
use doppel_stream::host::HostOptions;
use doppel_stream::replica::{self, Control, ReplicaOptions, Status};

mod common;
use common::{start_host_with, Console, Host};

struct Sink(Console);

impl OutputSink for Sink {
    fn console(&mut self, bytes: &[u8]) {
        self.0 .0.lock().unwrap().extend_from_slice(bytes);
    }
    fn net_tx(&mut self, _frame: &[u8]) {}
}

/// A host on the live environment; keys pushed to `Host::keys` are forwarded to it.
fn live_host(cmdline: &str) -> Host {
    start_host_with(HostOptions::default(), cmdline, |console, keys| {
        let (env, input) = LiveEnvironment::new(Box::new(Sink(console)));
        let waker = input.clone();
        std::thread::spawn(move || loop {
            let next = keys.lock().unwrap().pop_front();
            match next {
                Some(ev) => {
                    if !input.send(ev) {
                        return;
                    }
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        });
        (env, Some(Box::new(move || waker.wake()) as common::Waker))
    })
}

/// Connect, wait for the first screen, then measure `steady` seconds of steady state.
fn session(addr: &str, options: &ReplicaOptions, steady: u64) -> (Status, Status) {
    let mut first: Option<(Instant, Status)> = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    let (_, last) = replica::run(addr, options, &mut |s: &Status| {
        assert!(Instant::now() < deadline, "no first screen: {}", s.line());
        if s.first_screen.is_some() && first.is_none() {
            first = Some((Instant::now(), s.clone()));
        }
        match &first {
            Some((t, _)) if t.elapsed() >= Duration::from_secs(steady) => Control::Stop,
            _ => Control::Continue,
        }
    })
    .expect("replica failed");
    (first.expect("reached the first screen").1, last)
}

fn row(name: &str, first: &Status, last: &Status, since: &Status) {
    let (t, bytes, pages) = first.first_screen.unwrap_or_default();
    let secs = (last.elapsed - since.elapsed).as_secs_f64().max(1e-9);
    let log = (last.total_bytes - since.total_bytes) as f64;
    let pages_after = last.pages_fetched - since.pages_fetched;
    println!(
        "| {name} | {:.2} s | {:.0} KB | {pages} | {} | {:.2} KB/s | {pages_after} pages ({:.1} KB/s) | {} instr / {} ms |",
        t.as_secs_f64(),
        bytes as f64 / 1e3,
        first.pages_from_cache,
        last.log_bps / 1e3,
        pages_after as f64 * 4.1 / secs,
        last.lag_instructions,
        last.lag_ms,
    );
    let _ = log;
}

/// Steady state while typing: evread prints every key; a key every 100 ms.
fn typing_row() {
    let host = live_host("doppel.run=evread doppel.args=1000000");
    let t0 = Instant::now();
    while !host.console.text().contains("evread: ready") {
        assert!(t0.elapsed() < Duration::from_secs(600), "evread did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                host.type_key(30);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let (f, l) = session(&host.addr, &ReplicaOptions::default(), 10);
        row("typing (10 keys/s), demand paging, no cache", &f, &l, &f);
        stop.store(true, Ordering::Relaxed);
    });
}

#[test]
#[ignore]
fn streaming_figures() {
    let host = live_host("doppel.run=fbpattern doppel.hold=3600");
    let t0 = Instant::now();
    while !host.console.text().contains("fbpattern: done") {
        assert!(t0.elapsed() < Duration::from_secs(600), "the guest did not draw");
        std::thread::sleep(Duration::from_millis(100));
    }
    let cache = std::env::temp_dir().join(format!("doppel-stream-figures-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let cold = ReplicaOptions { cache: Some(cache.clone()), prefetch: false };
    let prefetch = ReplicaOptions { cache: None, prefetch: true };
    println!("| session | time to host's screen | bytes to screen | pages fetched to screen | pages from cache | steady log | steady pages | lag at end |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let (f, l) = session(&host.addr, &cold, 10);
    row("new replica, demand paging, empty cache", &f, &l, &f);
    let (f, l) = session(&host.addr, &prefetch, 10);
    row("new replica, prefetching, no cache", &f, &l, &f);
    let (f, l) = session(&host.addr, &cold, 10);
    row("second session, page cache", &f, &l, &f);
    let _ = InputEvent::Key { code: 0, down: false };
    typing_row();
    let s = &host.stats;
    println!(
        "\nhost: {} snapshots, stall per snapshot max {:.2} ms (mean {:.2} ms over {} syncs incl. periodic), {} pages copied",
        s.snapshots.load(Ordering::Relaxed),
        s.max_stall_us.load(Ordering::Relaxed) as f64 / 1e3,
        s.total_stall_us.load(Ordering::Relaxed) as f64 / 1e3 / s.snapshots.load(Ordering::Relaxed).max(1) as f64,
        s.snapshots.load(Ordering::Relaxed),
        s.pages_copied.load(Ordering::Relaxed),
    );
    let _ = std::fs::remove_dir_all(&cache);
}
