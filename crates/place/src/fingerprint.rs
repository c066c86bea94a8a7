//! Black-box fingerprinting (VMShadow section 4): a desktop's location-sensitivity rank from its
//! flow records.
//!
//! Per window the rank combines three metrics, as the paper lists them:
//! 1. the share of the desktop's active ports that are on the location-sensitive list;
//! 2. the share of its traffic (bytes, both ways) carried on those ports;
//! 3. the bandwidth of the remote-desktop protocol, scored `min(1, bandwidth / reference)`.
//!
//! `rank = w_ports·(1) + w_traffic·(2) + w_rd·(3)`, then smoothed across windows as an
//! exponential moving average `rank ← α·current + (1−α)·previous` (the first window sets it).
//!
//! A flow's *port* is its remote-desktop port if either end uses one, else a location-sensitive
//! port if either end uses one, else the lower of its two ports (the server side, usually).
//! Remote-desktop flows count among the active ports but are not location-sensitive traffic by
//! themselves: their weight comes through metric 3.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One side's view of a flow's 5-tuple: `local` is the desktop.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FlowKey {
    pub proto: u8,
    pub local_ip: IpAddr,
    pub local_port: u16,
    pub remote_ip: IpAddr,
    pub remote_port: u16,
}

/// Traffic of one flow within one window, as a pcap reader or the host's meters produce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowRecord {
    pub key: FlowKey,
    /// From the desktop.
    pub bytes_out: u64,
    /// To the desktop.
    pub bytes_in: u64,
    pub packets_out: u64,
    pub packets_in: u64,
    pub first_s: f64,
    pub last_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FingerprintConfig {
    /// Ports of applications deemed location-sensitive (games, streaming, real-time media).
    pub sensitive_ports: BTreeSet<u16>,
    /// Ports of the remote-desktop protocol (VNC, RDP).
    pub remote_desktop_ports: BTreeSet<u16>,
    /// Weights of metrics 1, 2, 3.
    pub w_ports: f64,
    pub w_traffic: f64,
    pub w_rd: f64,
    /// Remote-desktop bandwidth (bytes/s) that scores 1. The paper's Table 3 measured about
    /// 55–75 KB/s for VNC showing video and 17 KB/s for browsing or editing.
    pub rd_reference_bps: f64,
    /// EMA weight of the newest window, `0 < α ≤ 1`.
    pub alpha: f64,
    /// Window length in seconds.
    pub window_s: f64,
}

impl Default for FingerprintConfig {
    fn default() -> Self {
        FingerprintConfig {
            // RTMP, RTSP, STUN/TURN (WebRTC), Steam, Xbox Live, PlayStation, Minecraft, Twitch/HLS-ish.
            sensitive_ports: [
                1935, 554, 3478, 3479, 27015, 27016, 3074, 3658, 25565, 19302,
            ]
            .into(),
            remote_desktop_ports: [5900, 5901, 5902, 3389].into(),
            w_ports: 0.3,
            w_traffic: 0.3,
            w_rd: 0.4,
            rd_reference_bps: 60_000.0,
            alpha: 0.5,
            window_s: 10.0,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FingerprintError {
    #[error("fingerprint setting `{field}` is invalid: {problem}")]
    Config {
        field: &'static str,
        problem: String,
    },
}

impl FingerprintConfig {
    pub fn validate(&self) -> Result<(), FingerprintError> {
        let bad = |field, problem: String| Err(FingerprintError::Config { field, problem });
        for (field, w) in [
            ("w_ports", self.w_ports),
            ("w_traffic", self.w_traffic),
            ("w_rd", self.w_rd),
        ] {
            if !w.is_finite() || w < 0.0 {
                return bad(field, format!("must be finite and non-negative, got {w}"));
            }
        }
        if !(self.rd_reference_bps.is_finite() && self.rd_reference_bps > 0.0) {
            return bad(
                "rd_reference_bps",
                format!("must be positive, got {}", self.rd_reference_bps),
            );
        }
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return bad("alpha", format!("must be in (0, 1], got {}", self.alpha));
        }
        if !(self.window_s.is_finite() && self.window_s > 0.0) {
            return bad(
                "window_s",
                format!("must be positive, got {}", self.window_s),
            );
        }
        Ok(())
    }

    fn port_of(&self, k: &FlowKey) -> (u16, bool) {
        for p in [k.local_port, k.remote_port] {
            if self.remote_desktop_ports.contains(&p) {
                return (p, true);
            }
        }
        for p in [k.local_port, k.remote_port] {
            if self.sensitive_ports.contains(&p) {
                return (p, false);
            }
        }
        (k.local_port.min(k.remote_port), false)
    }
}

/// The three metrics and the combined rank of one window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WindowMetrics {
    pub port_share: f64,
    pub traffic_share: f64,
    pub rd_bandwidth_bps: f64,
    pub rank: f64,
}

/// Metrics of one window's flow records.
pub fn window_metrics(cfg: &FingerprintConfig, records: &[FlowRecord]) -> WindowMetrics {
    let mut ports = BTreeSet::new();
    let mut sensitive = BTreeSet::new();
    let (mut total, mut ls, mut rd) = (0u64, 0u64, 0u64);
    for r in records {
        let bytes = r.bytes_out.saturating_add(r.bytes_in);
        let (port, is_rd) = cfg.port_of(&r.key);
        ports.insert(port);
        total = total.saturating_add(bytes);
        if is_rd {
            rd = rd.saturating_add(bytes);
        } else if cfg.sensitive_ports.contains(&port) {
            sensitive.insert(port);
            ls = ls.saturating_add(bytes);
        }
    }
    let share = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    #[allow(clippy::cast_precision_loss)]
    let (port_share, traffic_share, rd_bandwidth_bps) = (
        share(sensitive.len() as f64, ports.len() as f64),
        share(ls as f64, total as f64),
        rd as f64 / cfg.window_s,
    );
    let rd_score = (rd_bandwidth_bps / cfg.rd_reference_bps).min(1.0);
    let rank = cfg.w_ports * port_share + cfg.w_traffic * traffic_share + cfg.w_rd * rd_score;
    WindowMetrics {
        port_share,
        traffic_share,
        rd_bandwidth_bps,
        rank,
    }
}

/// Smoothed ranks of many desktops, updated one window at a time.
#[derive(Debug, Clone, PartialEq)]
pub struct RankTracker {
    cfg: FingerprintConfig,
    ranks: BTreeMap<String, f64>,
}

impl RankTracker {
    pub fn new(cfg: FingerprintConfig) -> Result<Self, FingerprintError> {
        cfg.validate()?;
        Ok(RankTracker {
            cfg,
            ranks: BTreeMap::new(),
        })
    }

    pub fn config(&self) -> &FingerprintConfig {
        &self.cfg
    }

    /// Folds one window of `desktop`'s flows into its rank and returns the new rank. A window
    /// with no records is a window of silence (all metrics 0).
    pub fn observe(&mut self, desktop: &str, records: &[FlowRecord]) -> f64 {
        let now = window_metrics(&self.cfg, records).rank;
        let alpha = self.cfg.alpha;
        let r = self
            .ranks
            .entry(desktop.to_string())
            .and_modify(|r| *r = alpha * now + (1.0 - alpha) * *r)
            .or_insert(now);
        *r
    }

    pub fn rank(&self, desktop: &str) -> Option<f64> {
        self.ranks.get(desktop).copied()
    }

    pub fn ranks(&self) -> &BTreeMap<String, f64> {
        &self.ranks
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(local_port: u16, remote_port: u16, out: u64, inb: u64) -> FlowRecord {
        FlowRecord {
            key: FlowKey {
                proto: 6,
                local_ip: IpAddr::from([10, 0, 0, 2]),
                local_port,
                remote_ip: IpAddr::from([10, 0, 0, 9]),
                remote_port,
            },
            bytes_out: out,
            bytes_in: inb,
            packets_out: 1,
            packets_in: 1,
            first_s: 0.0,
            last_s: 1.0,
        }
    }

    #[test]
    fn metrics_follow_the_definitions() {
        let cfg = FingerprintConfig::default();
        // VNC 600 KB over 10 s = 60 KB/s (score 1), one RTMP flow with 400 KB, one HTTPS flow.
        let m = window_metrics(
            &cfg,
            &[
                rec(5900, 40000, 590_000, 10_000),
                rec(40001, 1935, 0, 400_000),
                rec(40002, 443, 0, 1000),
            ],
        );
        assert!((m.port_share - 1.0 / 3.0).abs() < 1e-12);
        assert!((m.traffic_share - 400_000.0 / 1_001_000.0).abs() < 1e-12);
        assert!((m.rd_bandwidth_bps - 60_000.0).abs() < 1e-9);
        let want = 0.3 / 3.0 + 0.3 * 400_000.0 / 1_001_000.0 + 0.4;
        assert!((m.rank - want).abs() < 1e-12);
        assert_eq!(window_metrics(&cfg, &[]).rank, 0.0);
    }

    #[test]
    fn ema_smooths_across_windows() {
        let mut t = RankTracker::new(FingerprintConfig {
            alpha: 0.25,
            ..Default::default()
        })
        .unwrap();
        let busy = [rec(5900, 40000, 600_000, 0)]; // rank 0.4
        assert!((t.observe("d", &busy) - 0.4).abs() < 1e-12);
        assert!((t.observe("d", &[]) - 0.3).abs() < 1e-12);
        assert!((t.observe("d", &[]) - 0.225).abs() < 1e-12);
        assert_eq!(t.rank("other"), None);
    }

    #[test]
    fn bad_config_names_the_setting() {
        let e = RankTracker::new(FingerprintConfig {
            alpha: 0.0,
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("`alpha`"));
    }
}
