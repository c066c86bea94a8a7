//! Fingerprinting from pcap files written here, with the traffic rates of the paper's Table 3:
//! YouTube (VNC showing video plus a streaming flow on a location-sensitive port), local video
//! playback (VNC only, at video bandwidth), web browsing and text editing (low-bandwidth VNC).
//! The ranks must come out in the paper's order, video above the relocation threshold and
//! browsing and editing far below it.

// Test traffic rates are small positive numbers; float-to-int casts of them are exact enough.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]

use std::net::IpAddr;

use doppel_place::fingerprint::{FingerprintConfig, RankTracker};
use doppel_place::pcap::{flows_by_window, parse, PcapWriter};

const DESKTOP: [u8; 4] = [10, 1, 0, 2];
const CLIENT: [u8; 4] = [192, 168, 7, 20];
const SECONDS: u64 = 30;

/// `(timestamp µs, src, src port, dst, dst port, payload)`.
type Pkt = (u64, [u8; 4], u16, [u8; 4], u16, u16);
/// `(bytes/s, src, src port, dst, dst port)`.
type Flow = (f64, [u8; 4], u16, [u8; 4], u16);

/// Adds a flow at `bytes_per_s` (wire bytes) for the whole capture, in packets of up to 1000 bytes.
fn flow(w: &mut Vec<Pkt>, bps: f64, src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) {
    let total = bps * SECONDS as f64;
    let n = (total / 1000.0).ceil().max(1.0) as u64;
    let per = (total / n as f64).round() as u16;
    let payload = per.saturating_sub(54).max(1);
    for i in 0..n {
        let ts = i * SECONDS * 1_000_000 / n;
        w.push((ts, src, sport, dst, dport, payload));
    }
}

fn capture(flows: &[Flow], path: &std::path::Path) {
    let mut pkts = Vec::new();
    for &(bps, s, sp, d, dp) in flows {
        flow(&mut pkts, bps, s, sp, d, dp);
    }
    pkts.sort_by_key(|p| p.0);
    let mut w = PcapWriter::new();
    for (ts, s, sp, d, dp, len) in pkts {
        w.packet(ts, 6, s, sp, d, dp, len);
    }
    std::fs::write(path, w.finish()).unwrap();
}

fn rank_of(path: &std::path::Path, cfg: &FingerprintConfig) -> f64 {
    let cap = parse(&std::fs::read(path).unwrap()).unwrap();
    let mut t = RankTracker::new(cfg.clone()).unwrap();
    let mut last = 0.0;
    for (_, recs) in flows_by_window(&cap, IpAddr::from(DESKTOP), 0.0, cfg.window_s) {
        last = t.observe("d", &recs);
    }
    last
}

#[test]
fn table3_workloads_rank_in_the_papers_order() {
    let kb = 1000.0;
    let yt_server = [142, 250, 1, 1];
    let web = [93, 184, 216, 34];
    let vnc_out = |bps| (bps, DESKTOP, 5900, CLIENT, 50_000);
    let vnc_in = |bps| (bps, CLIENT, 50_000, DESKTOP, 5900);
    let workloads: Vec<(&str, Vec<Flow>)> = vec![
        (
            "youtube",
            vec![
                vnc_out(72.75 * kb),
                vnc_in(2.2 * kb),
                (63.6 * kb, yt_server, 1935, DESKTOP, 40_001),
                (1.85 * kb, DESKTOP, 40_001, yt_server, 1935),
            ],
        ),
        ("local video", vec![vnc_out(54.5 * kb), vnc_in(1.54 * kb)]),
        (
            "browsing",
            vec![
                vnc_out(17.93 * kb),
                vnc_in(0.45 * kb),
                (0.06 * kb, web, 443, DESKTOP, 40_002),
                (0.08 * kb, DESKTOP, 40_002, web, 443),
            ],
        ),
        ("text editing", vec![vnc_out(17.14 * kb), vnc_in(0.86 * kb)]),
    ];
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let cfg = FingerprintConfig::default();
    let mut ranks = Vec::new();
    for (name, flows) in &workloads {
        let path = dir.join(format!("fingerprint-{}.pcap", name.replace(' ', "-")));
        capture(flows, &path);
        ranks.push((*name, rank_of(&path, &cfg)));
    }
    eprintln!("{ranks:?}");
    for w in ranks.windows(2) {
        assert!(
            w[0].1 > w[1].1,
            "expected {} above {}: {ranks:?}",
            w[0].0,
            w[1].0
        );
    }
    // With the thresholds the generated scenarios use (T_h 0.3, T_l 0.15): video is a candidate,
    // browsing and editing are reclaimable.
    assert!(ranks[1].1 > 0.3 && ranks[2].1 < 0.15, "{ranks:?}");
}

#[test]
fn a_video_burst_fades_through_the_moving_average() {
    let cfg = FingerprintConfig {
        alpha: 0.5,
        window_s: 10.0,
        ..Default::default()
    };
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join("fingerprint-burst.pcap");
    // 30 s of video-rate VNC, then 30 s of typing-rate VNC.
    let mut pkts = Vec::new();
    flow(&mut pkts, 60_000.0, DESKTOP, 5900, CLIENT, 50_000);
    let mut quiet = Vec::new();
    flow(&mut quiet, 6_000.0, DESKTOP, 5900, CLIENT, 50_000);
    pkts.extend(quiet.into_iter().map(|mut p| {
        p.0 += SECONDS * 1_000_000;
        p
    }));
    let mut w = PcapWriter::new();
    for (ts, s, sp, d, dp, len) in pkts {
        w.packet(ts, 6, s, sp, d, dp, len);
    }
    std::fs::write(&path, w.finish()).unwrap();
    let cap = parse(&std::fs::read(&path).unwrap()).unwrap();
    let mut t = RankTracker::new(cfg.clone()).unwrap();
    let ranks: Vec<f64> = flows_by_window(&cap, IpAddr::from(DESKTOP), 0.0, cfg.window_s)
        .into_iter()
        .map(|(_, r)| t.observe("d", &r))
        .collect();
    assert_eq!(ranks.len(), 6);
    assert!(ranks[2] > 0.35);
    // Each quiet window halves the distance to the quiet rank (≈0.04).
    for i in 3..6 {
        assert!(ranks[i] < ranks[i - 1]);
    }
    assert!(ranks[5] < 0.1 && ranks[5] > 0.04, "{ranks:?}");
}
