//! The sans-IO link engine: one direction of an emulated link.
//!
//! Packets (datagrams, IP packets or chunks of a TCP byte stream) go in with [`Link::push`] and
//! come out of [`Link::poll`] when the emulated link would deliver them. Time is an argument
//! (`now`, a [`Duration`] since any fixed epoch the caller chooses); the engine reads no clock and
//! does no I/O, so it runs the same under a simulated clock in tests as under a real one in the
//! socket adapters. Randomness (loss, jitter) comes from a seeded [`Rng`].
//!
//! ## Model
//!
//! ```text
//! push ──loss?──▶ [ queue: bounded, bytes ] ──token bucket (rate, burst)──▶ [ wire: delay ± jitter ] ──▶ poll
//!         drop          tail drop when full          release time                 delivery time
//! ```
//!
//! 1. **Loss**: each packet is dropped with probability `loss` on arrival (not on reliable links,
//!    which carry a TCP byte stream that must not lose bytes).
//! 2. **Queue**: packets wait for the rate limiter in a FIFO bounded to `queue` bytes; a packet
//!    that does not fit is dropped (tail drop). Reliable links never drop: their adapter reads
//!    no more than [`Link::room`] allows, which turns a full queue into TCP back-pressure.
//! 3. **Rate**: a token bucket of depth `burst` bytes filled at `rate`, in its GCRA form: with a
//!    theoretical arrival time `tat`, the head packet leaves at `max(arrival, tat - burst/rate)`
//!    and moves `tat` to `max(tat, leave) + len/rate`. Release times are computed exactly, not at
//!    poll time, so a late poll does not slow the link down.
//! 4. **Delay**: a released packet is delivered `delay + j` later, `j` uniform in
//!    `[-jitter, +jitter]` (total clamped at zero). Unless `reorder` is on, a packet is never
//!    delivered before the one released before it (its delivery time is raised to the previous
//!    one's), which is how jitter is applied to TCP without reordering the stream.
//!
//! Changing parameters ([`Link::set_params`]) first advances the link to `now` under the old
//! ones; packets already on the wire keep their delivery times, queued ones leave at the new rate.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::fmt;
use std::time::Duration;

use crate::rng::Rng;
use crate::units::{format_duration, format_size, Loss, Rate};

/// Errors from validating link parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    #[error("queue of {queue} bytes is below the minimum of {min} bytes (one full-size packet)")]
    QueueTooSmall { queue: u64, min: u64 },
    #[error("jitter {jitter} is larger than the maximum of {max}")]
    JitterTooLarge { jitter: String, max: String },
}

/// The smallest queue accepted: one full-size Ethernet packet.
pub const MIN_QUEUE: u64 = 1500;

/// The default queue: 256 KiB.
pub const DEFAULT_QUEUE: u64 = 256 * 1024;

/// Parameters of one direction of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkParams {
    /// One-way delay added to every packet.
    pub delay: Duration,
    /// Each packet's delay varies uniformly within `delay ± jitter`.
    pub jitter: Duration,
    /// Rate limit; `None` for unlimited.
    pub rate: Option<Rate>,
    /// Bytes that may wait for the rate limiter before packets are dropped.
    pub queue: u64,
    /// Token-bucket depth in bytes: how much may leave back to back after an idle period.
    pub burst: u64,
    /// Probability that a packet is lost (never applied to reliable links).
    pub loss: Loss,
    /// Let jitter reorder packets (never on reliable links).
    pub reorder: bool,
}

impl Default for LinkParams {
    fn default() -> Self {
        LinkParams {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            rate: None,
            queue: DEFAULT_QUEUE,
            burst: 0,
            loss: Loss::default(),
            reorder: false,
        }
    }
}

impl LinkParams {
    /// Checks what the types cannot: the queue holds a full-size packet, jitter is sane.
    pub fn validate(&self) -> Result<(), ParamsError> {
        if self.queue < MIN_QUEUE {
            return Err(ParamsError::QueueTooSmall {
                queue: self.queue,
                min: MIN_QUEUE,
            });
        }
        let max_jitter = Duration::from_secs(60);
        if self.jitter > max_jitter {
            return Err(ParamsError::JitterTooLarge {
                jitter: format_duration(self.jitter),
                max: format_duration(max_jitter),
            });
        }
        Ok(())
    }

    /// True when the link changes nothing: no delay, no rate limit, no loss.
    pub fn is_transparent(&self) -> bool {
        self.delay.is_zero() && self.jitter.is_zero() && self.rate.is_none() && self.loss.is_zero()
    }
}

impl fmt::Display for LinkParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "delay={} jitter={} rate={} queue={} burst={} loss={} reorder={}",
            format_duration(self.delay),
            format_duration(self.jitter),
            self.rate
                .map_or_else(|| "unlimited".to_owned(), |r| r.to_string()),
            format_size(self.queue),
            format_size(self.burst),
            self.loss,
            if self.reorder { "on" } else { "off" },
        )
    }
}

/// What happened to a pushed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted; it will come out of [`Link::poll`].
    Queued,
    /// Dropped by random loss.
    Lost,
    /// Dropped because the queue was full.
    QueueFull,
}

/// Counters and gauges of one link direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    /// Packets and bytes offered to the link.
    pub packets_in: u64,
    pub bytes_in: u64,
    /// Packets and bytes delivered.
    pub packets_out: u64,
    pub bytes_out: u64,
    /// Packets dropped by random loss.
    pub dropped_loss: u64,
    /// Packets dropped because the queue was full.
    pub dropped_queue: u64,
    /// Packets and bytes waiting for the rate limiter now.
    pub queue_packets: u64,
    pub queue_bytes: u64,
    /// Packets and bytes released but not yet delivered (on the wire) now.
    pub wire_packets: u64,
    pub wire_bytes: u64,
}

struct Queued<P> {
    arrival: Duration,
    len: u64,
    packet: P,
}

struct OnWire<P> {
    deliver_at: Duration,
    seq: u64,
    len: u64,
    packet: P,
}

impl<P> PartialEq for OnWire<P> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<P> Eq for OnWire<P> {}
impl<P> PartialOrd for OnWire<P> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<P> Ord for OnWire<P> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.deliver_at, self.seq).cmp(&(other.deliver_at, other.seq))
    }
}

/// One direction of an emulated link. See the module docs for the model.
pub struct Link<P> {
    params: LinkParams,
    reliable: bool,
    rng: Rng,
    queue: VecDeque<Queued<P>>,
    /// GCRA theoretical arrival time.
    tat: Duration,
    wire: BinaryHeap<Reverse<OnWire<P>>>,
    last_delivery: Duration,
    seq: u64,
    stats: LinkStats,
}

impl<P: AsRef<[u8]>> Link<P> {
    /// A datagram link (UDP, IP packets): loss and reordering apply as configured.
    pub fn new(params: LinkParams, seed: u64) -> Self {
        Self::build(params, seed, false)
    }

    /// A link for a reliable byte stream (TCP chunks): never loses, never reorders, never drops;
    /// the caller keeps within [`Link::room`].
    pub fn new_reliable(params: LinkParams, seed: u64) -> Self {
        Self::build(params, seed, true)
    }

    fn build(params: LinkParams, seed: u64, reliable: bool) -> Self {
        Link {
            params,
            reliable,
            rng: Rng::new(seed),
            queue: VecDeque::new(),
            tat: Duration::ZERO,
            wire: BinaryHeap::new(),
            last_delivery: Duration::ZERO,
            seq: 0,
            stats: LinkStats::default(),
        }
    }

    /// The parameters in force.
    pub fn params(&self) -> &LinkParams {
        &self.params
    }

    /// Replaces the parameters from `now` on.
    pub fn set_params(&mut self, now: Duration, params: LinkParams) {
        self.advance(now);
        self.params = params;
    }

    /// Offers a packet arriving at `now`.
    pub fn push(&mut self, now: Duration, packet: P) -> Verdict {
        self.advance(now);
        let len = len_of(&packet);
        self.stats.packets_in += 1;
        self.stats.bytes_in += len;
        if !self.reliable && self.rng.chance_ppm(self.params.loss.ppm()) {
            self.stats.dropped_loss += 1;
            return Verdict::Lost;
        }
        if !self.reliable && self.stats.queue_bytes + len > self.params.queue {
            self.stats.dropped_queue += 1;
            return Verdict::QueueFull;
        }
        self.stats.queue_packets += 1;
        self.stats.queue_bytes += len;
        self.queue.push_back(Queued {
            arrival: now,
            len,
            packet,
        });
        self.advance(now);
        Verdict::Queued
    }

    /// Bytes the queue can take now without exceeding its bound.
    pub fn room(&self) -> u64 {
        self.params.queue.saturating_sub(self.stats.queue_bytes)
    }

    /// Packets whose delivery time is `now` or earlier, in delivery order.
    pub fn poll(&mut self, now: Duration) -> Vec<P> {
        self.advance(now);
        let mut out = Vec::new();
        while let Some(Reverse(head)) = self.wire.peek() {
            if head.deliver_at > now {
                break;
            }
            let Some(Reverse(p)) = self.wire.pop() else {
                break;
            };
            self.stats.wire_packets -= 1;
            self.stats.wire_bytes -= p.len;
            self.stats.packets_out += 1;
            self.stats.bytes_out += p.len;
            out.push(p.packet);
        }
        out
    }

    /// When [`Link::poll`] next has something to do (a delivery or a release), if ever.
    pub fn next_wakeup(&self) -> Option<Duration> {
        let delivery = self.wire.peek().map(|Reverse(p)| p.deliver_at);
        let release = self.queue.front().map(|q| self.release_time(q));
        match (delivery, release) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True when nothing is queued or on the wire.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.wire.is_empty()
    }

    /// Counters and gauges so far.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    fn release_time(&self, q: &Queued<P>) -> Duration {
        match self.params.rate {
            None => q.arrival,
            Some(rate) => {
                let tolerance = Duration::from_nanos(rate.nanos_for(self.params.burst));
                q.arrival.max(self.tat.saturating_sub(tolerance))
            }
        }
    }

    /// Releases every queued packet whose release time is `now` or earlier onto the wire.
    fn advance(&mut self, now: Duration) {
        while let Some(head) = self.queue.front() {
            let leave = self.release_time(head);
            if leave > now {
                break;
            }
            let Some(q) = self.queue.pop_front() else {
                break;
            };
            self.stats.queue_packets -= 1;
            self.stats.queue_bytes -= q.len;
            if let Some(rate) = self.params.rate {
                self.tat = self.tat.max(leave) + Duration::from_nanos(rate.nanos_for(q.len));
            }
            let mut deliver_at = leave + self.sample_delay();
            if self.reliable || !self.params.reorder {
                deliver_at = deliver_at.max(self.last_delivery);
            }
            self.last_delivery = self.last_delivery.max(deliver_at);
            self.seq += 1;
            self.stats.wire_packets += 1;
            self.stats.wire_bytes += q.len;
            self.wire.push(Reverse(OnWire {
                deliver_at,
                seq: self.seq,
                len: q.len,
                packet: q.packet,
            }));
        }
    }

    fn sample_delay(&mut self) -> Duration {
        let delay = self.params.delay;
        let jitter = u64::try_from(self.params.jitter.as_nanos()).unwrap_or(u64::MAX / 4);
        if jitter == 0 {
            return delay;
        }
        let offset = self.rng.below(2 * jitter + 1);
        // delay - jitter + offset, clamped at zero.
        (delay + Duration::from_nanos(offset)).saturating_sub(Duration::from_nanos(jitter))
    }
}

fn len_of<P: AsRef<[u8]>>(p: &P) -> u64 {
    u64::try_from(p.as_ref().len()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{parse_loss, parse_rate};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn params(delay: u64) -> LinkParams {
        LinkParams {
            delay: ms(delay),
            ..LinkParams::default()
        }
    }

    fn rate(s: &str) -> Option<Rate> {
        parse_rate(s).unwrap()
    }

    #[test]
    fn a_transparent_link_delivers_at_once() {
        let mut l = Link::new(LinkParams::default(), 1);
        assert_eq!(l.push(ms(5), vec![1u8, 2, 3]), Verdict::Queued);
        assert_eq!(l.poll(ms(5)), vec![vec![1, 2, 3]]);
        assert!(l.is_empty());
        assert_eq!(l.next_wakeup(), None);
    }

    #[test]
    fn delay_holds_packets_exactly_that_long() {
        let mut l = Link::new(params(50), 1);
        l.push(ms(10), vec![7u8]);
        assert_eq!(l.next_wakeup(), Some(ms(60)));
        assert!(l.poll(ms(59)).is_empty());
        assert!(l.poll(Duration::from_nanos(59_999_999)).is_empty());
        assert_eq!(l.poll(ms(60)), vec![vec![7]]);
    }

    #[test]
    fn rate_spaces_packets_by_their_serialisation_time() {
        // 1250 bytes at 10 Mbit/s take exactly 1 ms.
        let p = LinkParams {
            rate: rate("10mbit"),
            queue: 1 << 20,
            ..LinkParams::default()
        };
        let mut l = Link::new(p, 1);
        for i in 0..100u8 {
            assert_eq!(l.push(Duration::ZERO, vec![i; 1250]), Verdict::Queued);
        }
        let mut delivered = Vec::new();
        let mut t = Duration::ZERO;
        while !l.is_empty() {
            for pkt in l.poll(t) {
                delivered.push((t, pkt[0]));
            }
            t = l.next_wakeup().unwrap_or(t);
        }
        assert_eq!(delivered.len(), 100);
        for (i, (at, first)) in delivered.iter().enumerate() {
            assert_eq!(usize::from(*first), i);
            assert_eq!(*at, ms(u64::try_from(i).unwrap()), "packet {i}");
        }
    }

    #[test]
    fn a_late_poll_does_not_slow_the_link() {
        let p = LinkParams {
            rate: rate("10mbit"),
            delay: ms(20),
            queue: 1 << 20,
            ..LinkParams::default()
        };
        let mut l = Link::new(p, 1);
        for _ in 0..10 {
            l.push(Duration::ZERO, vec![0u8; 1250]);
        }
        // Released at 0..9 ms, delivered at 20..29 ms; one poll at 29 ms gets all ten.
        assert_eq!(l.poll(ms(29)).len(), 10);
    }

    #[test]
    fn throughput_matches_rate_over_a_long_run() {
        // 2 MB offered continuously to a 10 Mbit/s link: 1.6 s.
        let p = LinkParams {
            rate: rate("10mbit"),
            queue: 64 * 1024,
            ..LinkParams::default()
        };
        let mut l = Link::new_reliable(p, 1);
        let total: u64 = 2_000_000;
        let (mut sent, mut got, mut t) = (0u64, 0u64, Duration::ZERO);
        let mut last = Duration::ZERO;
        while got < total {
            while sent < total && l.room() >= 1000 {
                l.push(t, vec![0u8; 1000]);
                sent += 1000;
            }
            for p in l.poll(t) {
                got += u64::try_from(p.len()).unwrap();
                last = t;
            }
            t = l.next_wakeup().unwrap_or(t + ms(1));
        }
        // The last packet leaves at (total - 1000) * 8 / rate.
        assert_eq!(last, Duration::from_nanos(1_599_200_000));
    }

    #[test]
    fn a_full_queue_drops_datagrams_and_counts_them() {
        let p = LinkParams {
            rate: rate("1mbit"),
            queue: 10_000,
            ..LinkParams::default()
        };
        let mut l = Link::new(p, 1);
        let verdicts: Vec<Verdict> = (0..20)
            .map(|_| l.push(Duration::ZERO, vec![0u8; 1000]))
            .collect();
        // The first leaves at once (the bucket is full), ten wait, the rest are dropped.
        assert_eq!(
            verdicts.iter().filter(|v| **v == Verdict::Queued).count(),
            11
        );
        assert_eq!(
            verdicts[11..]
                .iter()
                .filter(|v| **v == Verdict::QueueFull)
                .count(),
            9
        );
        let s = l.stats();
        assert_eq!(
            (
                s.packets_in,
                s.dropped_queue,
                s.queue_bytes,
                s.queue_packets
            ),
            (20, 9, 10_000, 10)
        );
        assert_eq!(l.room(), 0);
        // 8 ms later one more packet has left the queue.
        l.poll(ms(8));
        assert_eq!(l.stats().queue_packets, 9);
    }

    #[test]
    fn burst_lets_that_many_bytes_leave_back_to_back() {
        let p = LinkParams {
            rate: rate("1mbit"),
            burst: 5000,
            queue: 1 << 20,
            ..LinkParams::default()
        };
        let mut l = Link::new(p, 1);
        for _ in 0..10 {
            l.push(Duration::ZERO, vec![0u8; 1000]);
        }
        // Tolerance 5000 bytes: packets 0..=5 leave at t=0, then one per 8 ms.
        assert_eq!(l.poll(Duration::ZERO).len(), 6);
        assert!(l.poll(ms(7)).is_empty());
        assert_eq!(l.poll(ms(8)).len(), 1);
    }

    #[test]
    fn seeded_loss_drops_its_share_and_repeats() {
        let p = LinkParams {
            loss: parse_loss("10%").unwrap(),
            ..LinkParams::default()
        };
        let run = |seed| {
            let mut l = Link::new(p.clone(), seed);
            (0..20_000)
                .map(|_| l.push(Duration::ZERO, [0u8; 4]) == Verdict::Lost)
                .collect::<Vec<_>>()
        };
        let a = run(42);
        let lost = a.iter().filter(|x| **x).count();
        assert!((1_800..2_200).contains(&lost), "{lost}");
        assert_eq!(a, run(42));
        assert_ne!(a, run(43));
    }

    #[test]
    fn reliable_links_never_lose() {
        let p = LinkParams {
            loss: parse_loss("50%").unwrap(),
            ..LinkParams::default()
        };
        let mut l = Link::new_reliable(p, 1);
        assert!((0..1000).all(|_| l.push(Duration::ZERO, [0u8; 4]) == Verdict::Queued));
    }

    fn deliveries(params: LinkParams, reliable: bool) -> Vec<(u32, Duration, Duration)> {
        let mut l = if reliable {
            Link::new_reliable(params, 5)
        } else {
            Link::new(params, 5)
        };
        let mut sent_at = Vec::new();
        let mut out = Vec::new();
        let mut t = Duration::ZERO;
        for i in 0..2000u32 {
            l.push(t, i.to_le_bytes());
            sent_at.push(t);
            for p in l.poll(t) {
                let n = u32::from_le_bytes(p);
                out.push((n, sent_at[usize::try_from(n).unwrap()], t));
            }
            t += Duration::from_micros(500);
        }
        while let Some(w) = l.next_wakeup() {
            for p in l.poll(w) {
                let n = u32::from_le_bytes(p);
                out.push((n, sent_at[usize::try_from(n).unwrap()], w));
            }
        }
        out
    }

    #[test]
    fn jitter_without_reorder_keeps_order_and_spread() {
        let p = LinkParams {
            delay: ms(20),
            jitter: ms(5),
            ..LinkParams::default()
        };
        let out = deliveries(p, false);
        assert_eq!(out.len(), 2000);
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "reordered");
        let delays: Vec<Duration> = out.iter().map(|(_, s, d)| *d - *s).collect();
        assert!(
            delays.iter().all(|d| *d >= ms(15) && *d <= ms(25)),
            "out of range"
        );
        let mean = delays.iter().sum::<Duration>() / 2000;
        // Holding order raises the mean when packets are closer together than the jitter.
        assert!(mean > ms(20) && mean < ms(24), "{mean:?}");
        assert!(
            delays.iter().any(|d| *d < ms(20)),
            "no jitter below the delay"
        );
    }

    #[test]
    fn jitter_with_reorder_reorders_datagrams_but_never_streams() {
        let p = LinkParams {
            delay: ms(20),
            jitter: ms(5),
            reorder: true,
            ..LinkParams::default()
        };
        let out = deliveries(p.clone(), false);
        assert!(out.windows(2).any(|w| w[0].0 > w[1].0), "never reordered");
        let delays: Vec<Duration> = out.iter().map(|(_, s, d)| *d - *s).collect();
        assert!(delays.iter().all(|d| *d >= ms(15) && *d <= ms(25)));
        let mean = delays.iter().sum::<Duration>() / 2000;
        assert!(mean > ms(19) && mean < ms(21), "{mean:?}");
        let stream = deliveries(p, true);
        assert!(
            stream.windows(2).all(|w| w[0].0 < w[1].0),
            "stream reordered"
        );
    }

    #[test]
    fn new_parameters_apply_to_new_packets_only() {
        let mut l = Link::new(params(10), 1);
        l.push(ms(0), vec![1u8]);
        l.set_params(ms(1), params(100));
        l.push(ms(2), vec![2u8]);
        assert_eq!(l.poll(ms(10)), vec![vec![1]]);
        assert!(l.poll(ms(101)).is_empty());
        assert_eq!(l.poll(ms(102)), vec![vec![2]]);
    }

    #[test]
    fn lifting_the_rate_releases_the_queue() {
        let p = LinkParams {
            rate: rate("8kbit"),
            queue: 1 << 20,
            ..LinkParams::default()
        };
        let mut l = Link::new(p, 1);
        for _ in 0..5 {
            l.push(Duration::ZERO, vec![0u8; 1000]);
        }
        assert_eq!(l.poll(ms(10)).len(), 1);
        l.set_params(ms(10), LinkParams::default());
        assert_eq!(l.poll(ms(10)).len(), 4);
    }

    #[test]
    fn stats_balance() {
        let p = LinkParams {
            delay: ms(5),
            loss: parse_loss("20%").unwrap(),
            ..LinkParams::default()
        };
        let mut l = Link::new(p, 3);
        for i in 0..100u64 {
            l.push(ms(i), vec![0u8; 100]);
        }
        let mid = l.stats();
        assert_eq!(
            mid.packets_in,
            mid.packets_out + mid.dropped_loss + mid.wire_packets + mid.queue_packets
        );
        l.poll(ms(1000));
        let s = l.stats();
        assert_eq!(s.packets_in, 100);
        assert_eq!(s.packets_out + s.dropped_loss, 100);
        assert_eq!(s.bytes_out, s.packets_out * 100);
        assert_eq!(
            (s.wire_packets, s.wire_bytes, s.queue_packets, s.queue_bytes),
            (0, 0, 0, 0)
        );
    }

    #[test]
    fn params_validate_and_display() {
        assert!(LinkParams::default().validate().is_ok());
        let small = LinkParams {
            queue: 100,
            ..LinkParams::default()
        };
        assert_eq!(
            small.validate().unwrap_err().to_string(),
            "queue of 100 bytes is below the minimum of 1500 bytes (one full-size packet)"
        );
        let p = LinkParams {
            delay: ms(50),
            rate: rate("10mbit"),
            ..LinkParams::default()
        };
        assert_eq!(
            p.to_string(),
            "delay=50ms jitter=0ms rate=10mbit queue=256KiB burst=0 loss=0% reorder=off"
        );
    }
}
