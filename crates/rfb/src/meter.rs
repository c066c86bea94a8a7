//! Display meters: bytes per encoding, updates, encoding time; and a cheap estimate of display
//! traffic from framebuffer activity alone, which the adaptive record/replay switch uses while
//! no encoder runs (RecRep §3.3).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::wire::Encoding;

/// Meter slots: the real encodings, Tight split by whether JPEG is on, and pseudo-encodings.
pub const SLOTS: [&str; N] =
    ["raw", "copyrect", "rre", "hextile", "zrle", "tight", "tight-jpeg", "pseudo", "tightpng", "h264"];
/// Number of meter slots.
pub const N: usize = 10;

/// The slot an update's bytes are counted in.
pub fn slot(encoding: Encoding, jpeg: bool) -> usize {
    match encoding {
        Encoding::RAW => 0,
        Encoding::COPY_RECT => 1,
        Encoding::RRE => 2,
        Encoding::HEXTILE => 3,
        Encoding::ZRLE => 4,
        Encoding::TIGHT if jpeg => 6,
        Encoding::TIGHT => 5,
        Encoding::TIGHT_PNG => 8,
        Encoding::H264 => 9,
        _ => 7,
    }
}

/// Counters shared by every viewer of one display (atomics: viewers run on many threads).
#[derive(Debug, Default)]
pub struct Meters {
    bytes: [AtomicU64; N],
    pixels: [AtomicU64; N],
    updates: AtomicU64,
    rects: AtomicU64,
    encode_nanos: AtomicU64,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MeterSnapshot {
    pub bytes: [u64; N],
    pub pixels: [u64; N],
    pub updates: u64,
    pub rects: u64,
    pub encode_time: Duration,
}

impl Meters {
    pub fn new() -> Meters {
        Meters::default()
    }

    /// One update sent: `bytes` on the wire for `pixels` encoded in `slot`, `rects` rectangles,
    /// taking `encode_time` of CPU.
    pub fn record_update(&self, slot: usize, bytes: u64, pixels: u64, rects: u64, encode_time: Duration) {
        let s = slot.min(N - 1);
        self.bytes[s].fetch_add(bytes, Ordering::Relaxed);
        self.pixels[s].fetch_add(pixels, Ordering::Relaxed);
        self.updates.fetch_add(1, Ordering::Relaxed);
        self.rects.fetch_add(rects, Ordering::Relaxed);
        self.encode_nanos
            .fetch_add(u64::try_from(encode_time.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> MeterSnapshot {
        let load = |a: &[AtomicU64; N]| std::array::from_fn(|i| a[i].load(Ordering::Relaxed));
        MeterSnapshot {
            bytes: load(&self.bytes),
            pixels: load(&self.pixels),
            updates: self.updates.load(Ordering::Relaxed),
            rects: self.rects.load(Ordering::Relaxed),
            encode_time: Duration::from_nanos(self.encode_nanos.load(Ordering::Relaxed)),
        }
    }
}

impl MeterSnapshot {
    pub fn total_bytes(&self) -> u64 {
        self.bytes.iter().sum()
    }

    /// Updates per second between `earlier` and `self`, `elapsed` apart.
    pub fn updates_per_second(&self, earlier: &MeterSnapshot, elapsed: Duration) -> f64 {
        let s = elapsed.as_secs_f64();
        if s <= 0.0 {
            return 0.0;
        }
        self.updates.saturating_sub(earlier.updates) as f64 / s
    }

    /// Bytes per second between `earlier` and `self`.
    pub fn bytes_per_second(&self, earlier: &MeterSnapshot, elapsed: Duration) -> f64 {
        let s = elapsed.as_secs_f64();
        if s <= 0.0 {
            return 0.0;
        }
        self.total_bytes().saturating_sub(earlier.total_bytes()) as f64 / s
    }
}

/// Bytes per changed pixel, per slot, learned from real updates; used to estimate display
/// traffic from dirty area alone.
#[derive(Debug, Clone)]
pub struct TrafficEstimator {
    factor: [f64; N],
    /// Weight of a new observation in the moving average.
    alpha: f64,
}

impl Default for TrafficEstimator {
    fn default() -> Self {
        Self::new()
    }
}

impl TrafficEstimator {
    /// Starting factors, measured on the test pattern; calibration replaces them quickly.
    pub fn new() -> TrafficEstimator {
        TrafficEstimator { factor: [4.0, 0.0, 1.5, 1.2, 0.6, 0.6, 0.25, 0.0, 0.6, 0.1], alpha: 0.2 }
    }

    /// Learns from one update: `bytes` for `pixels` changed pixels.
    pub fn calibrate(&mut self, slot: usize, bytes: u64, pixels: u64) {
        if pixels < 4096 {
            return; // tiny updates are dominated by headers
        }
        let s = slot.min(N - 1);
        let observed = bytes as f64 / pixels as f64;
        self.factor[s] = self.factor[s] * (1.0 - self.alpha) + observed * self.alpha;
    }

    pub fn factor(&self, slot: usize) -> f64 {
        self.factor[slot.min(N - 1)]
    }

    /// Estimated bytes for `pixels` changed pixels sent with `slot`'s encoding.
    pub fn estimate_bytes(&self, slot: usize, pixels: u64) -> f64 {
        self.factor(slot) * pixels as f64
    }

    /// Estimated bytes from a count of dirty 4 KiB framebuffer pages (XRGB8888: 1024 pixels
    /// each), with no tile comparison at all: the cheapest estimate, an upper bound-ish.
    pub fn estimate_from_pages(&self, slot: usize, dirty_pages: u64) -> f64 {
        self.estimate_bytes(slot, dirty_pages * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meters_and_rates() {
        let m = Meters::new();
        let a = m.snapshot();
        m.record_update(slot(Encoding::ZRLE, false), 1000, 4096, 2, Duration::from_millis(3));
        m.record_update(slot(Encoding::TIGHT, true), 500, 4096, 1, Duration::from_millis(1));
        let b = m.snapshot();
        assert_eq!(b.bytes[4], 1000);
        assert_eq!(b.bytes[6], 500);
        assert_eq!(b.total_bytes(), 1500);
        assert_eq!(b.encode_time, Duration::from_millis(4));
        assert!((b.updates_per_second(&a, Duration::from_millis(500)) - 4.0).abs() < 1e-9);
        assert!((b.bytes_per_second(&a, Duration::from_secs(3)) - 500.0).abs() < 1e-9);
    }

    #[test]
    fn estimator_converges_to_observed_ratio() {
        let mut e = TrafficEstimator::new();
        for _ in 0..100 {
            e.calibrate(4, 30_000, 100_000);
        }
        assert!((e.factor(4) - 0.3).abs() < 1e-3);
        assert!((e.estimate_from_pages(4, 10) - 0.3 * 10240.0).abs() < 10.0);
        e.calibrate(0, 1, 10); // too small to count
        assert_eq!(e.factor(0), 4.0);
    }
}
