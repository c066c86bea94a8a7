//! Congestion control for pushed (continuous) updates, after TigerVNC's `Congestion`: the server
//! follows each update with a Fence request; the viewer answers it once it has processed
//! everything before it. The answers give
//!
//! * an **RTT** sample per fence (send time to answer time, so it includes every queue on the
//!   way: socket buffers, a slow link, a slow viewer), with the lowest seen kept as the base RTT;
//! * **bytes in flight**: bytes sent minus bytes the viewer has acknowledged by answering.
//!
//! An update may be sent while bytes in flight are under the window. The window is delay-based:
//! once per RTT, if the queueing delay (RTT minus base RTT) stayed under the target and the
//! window was actually used, it grows (doubling in slow start, then by an eighth); if the delay
//! went over the target it shrinks by a quarter and slow start ends. So a fast viewer is pushed
//! frames as they come (not one per round trip as with request/response), and a slow viewer's
//! frames coalesce on the server instead of piling up in buffers.
//!
//! Sans-IO: time is passed in as a `Duration` since any fixed epoch.

use std::collections::VecDeque;
use std::time::Duration;

/// First window (bytes).
pub const INITIAL_WINDOW: u64 = 64 * 1024;
pub const MIN_WINDOW: u64 = 8 * 1024;
pub const MAX_WINDOW: u64 = 16 * 1024 * 1024;
/// Queueing delay above which the window shrinks.
pub const TARGET_DELAY: Duration = Duration::from_millis(40);
/// The fence payload prefix that marks our pings.
const TAG: &[u8; 4] = b"dpcc";

#[derive(Debug, Clone, Copy)]
struct Ping {
    seq: u32,
    sent_at: Duration,
    /// Bytes sent up to and including the update this ping follows.
    offset: u64,
}

/// One viewer's congestion state.
#[derive(Debug, Clone)]
pub struct Congestion {
    next_seq: u32,
    pings: VecDeque<Ping>,
    sent: u64,
    acked: u64,
    window: u64,
    slow_start: bool,
    base_rtt: Option<Duration>,
    last_rtt: Option<Duration>,
    /// Lowest RTT and whether the window was full, since the last adjustment.
    round_min_rtt: Option<Duration>,
    round_limited: bool,
    round_started: Duration,
}

impl Default for Congestion {
    fn default() -> Self {
        Self::new()
    }
}

impl Congestion {
    pub fn new() -> Congestion {
        Congestion {
            next_seq: 0,
            pings: VecDeque::new(),
            sent: 0,
            acked: 0,
            window: INITIAL_WINDOW,
            slow_start: true,
            base_rtt: None,
            last_rtt: None,
            round_min_rtt: None,
            round_limited: false,
            round_started: Duration::ZERO,
        }
    }

    /// Counts bytes written to the viewer (updates and everything else).
    pub fn sent(&mut self, bytes: u64) {
        self.sent += bytes;
    }

    /// After an update: the payload of the Fence request to send right behind it.
    pub fn ping(&mut self, now: Duration) -> Vec<u8> {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.pings.push_back(Ping { seq, sent_at: now, offset: self.sent });
        if self.in_flight() >= self.window {
            self.round_limited = true;
        }
        let mut p = TAG.to_vec();
        p.extend_from_slice(&seq.to_be_bytes());
        p
    }

    /// A Fence response arrived. Returns false if it was not one of our pings.
    pub fn pong(&mut self, payload: &[u8], now: Duration) -> bool {
        let Some(seq) = payload.strip_prefix(TAG).and_then(|s| <[u8; 4]>::try_from(s).ok()).map(u32::from_be_bytes) else {
            return false;
        };
        let Some(pos) = self.pings.iter().position(|p| p.seq == seq) else { return false };
        let ping = self.pings[pos];
        self.pings.drain(..=pos);
        self.acked = self.acked.max(ping.offset);
        let rtt = now.saturating_sub(ping.sent_at);
        self.last_rtt = Some(rtt);
        self.base_rtt = Some(self.base_rtt.map_or(rtt, |b| b.min(rtt)));
        self.round_min_rtt = Some(self.round_min_rtt.map_or(rtt, |m| m.min(rtt)));
        let base = self.base_rtt.unwrap_or(rtt);
        // Adjust once per (base) round trip, at least every 5 ms.
        if now.saturating_sub(self.round_started) >= base.max(Duration::from_millis(5)) {
            let delay = self.round_min_rtt.unwrap_or(rtt).saturating_sub(base);
            if delay > TARGET_DELAY {
                self.window = (self.window - self.window / 4).max(MIN_WINDOW);
                self.slow_start = false;
            } else if self.round_limited {
                let grow = if self.slow_start { self.window } else { (self.window / 8).max(4096) };
                self.window = (self.window + grow).min(MAX_WINDOW);
            }
            self.round_started = now;
            self.round_min_rtt = None;
            self.round_limited = false;
        }
        true
    }

    /// Bytes sent that the viewer has not acknowledged yet.
    pub fn in_flight(&self) -> u64 {
        self.sent.saturating_sub(self.acked)
    }

    /// Whether another update may go out now.
    pub fn can_send(&self) -> bool {
        self.in_flight() < self.window
    }

    /// Whether an update would be sent now if the window allowed it (call when the window held
    /// one back, so the window is known to be the limit).
    pub fn note_limited(&mut self) {
        self.round_limited = true;
    }

    pub fn window(&self) -> u64 {
        self.window
    }

    pub fn rtt(&self) -> Option<Duration> {
        self.last_rtt
    }

    pub fn base_rtt(&self) -> Option<Duration> {
        self.base_rtt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn window_limits_in_flight_and_pongs_release_it() {
        let mut c = Congestion::new();
        c.sent(40_000);
        let p1 = c.ping(ms(0));
        assert!(c.can_send());
        c.sent(40_000);
        let p2 = c.ping(ms(1));
        assert!(!c.can_send(), "80 KB in flight over a 64 KB window");
        assert!(!c.pong(b"doppel-hello", ms(2)), "not ours");
        assert!(c.pong(&p1, ms(20)));
        assert_eq!(c.in_flight(), 40_000);
        assert!(c.can_send());
        assert!(c.pong(&p2, ms(21)));
        assert_eq!(c.in_flight(), 0);
        assert_eq!(c.base_rtt(), Some(ms(20)));
        assert!(!c.pong(&p2, ms(22)), "answered twice");
    }

    #[test]
    fn grows_when_used_and_fast_shrinks_when_queueing() {
        let mut c = Congestion::new();
        let mut now = ms(0);
        // A fast link: every ping answered 10 ms later; the window is always full.
        for _ in 0..10 {
            c.sent(c.window());
            let p = c.ping(now);
            now += ms(10);
            c.pong(&p, now);
        }
        let grown = c.window();
        assert!(grown > INITIAL_WINDOW * 8, "slow start doubles: {grown}");
        // Now the queue builds: RTT 10 ms -> 200 ms.
        for _ in 0..5 {
            c.sent(c.window());
            let p = c.ping(now);
            now += ms(200);
            c.pong(&p, now);
        }
        assert!(c.window() < grown / 2, "shrinks under delay: {} from {grown}", c.window());
        assert!(c.window() >= MIN_WINDOW);
        // Unused window does not grow.
        let w = c.window();
        for _ in 0..5 {
            c.sent(100);
            let p = c.ping(now);
            now += ms(10);
            c.pong(&p, now);
        }
        assert_eq!(c.window(), w);
    }
}
