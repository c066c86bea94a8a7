//! The handle to a running emulated link: its parameters per direction (changeable while it
//! runs), its seed, and its counters summed over every connection or session that uses it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::link::{LinkParams, LinkStats, ParamsError};
use crate::rng::derive_seed;

/// A direction of the link. `Up` is client → target (A → B in TUN mode), `Down` the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    Up,
    Down,
}

impl Dir {
    /// Both directions, up first.
    pub const BOTH: [Dir; 2] = [Dir::Up, Dir::Down];

    /// `up` or `down`.
    pub fn name(self) -> &'static str {
        match self {
            Dir::Up => "up",
            Dir::Down => "down",
        }
    }

    fn index(self) -> u64 {
        match self {
            Dir::Up => 0,
            Dir::Down => 1,
        }
    }
}

impl fmt::Display for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Counters of one direction, summed over all links that use it.
#[derive(Debug, Default)]
struct Counters {
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    packets_out: AtomicU64,
    bytes_out: AtomicU64,
    dropped_loss: AtomicU64,
    dropped_queue: AtomicU64,
    queue_packets: AtomicU64,
    queue_bytes: AtomicU64,
    wire_packets: AtomicU64,
    wire_bytes: AtomicU64,
}

impl Counters {
    fn fields(&self) -> [&AtomicU64; 10] {
        [
            &self.packets_in,
            &self.bytes_in,
            &self.packets_out,
            &self.bytes_out,
            &self.dropped_loss,
            &self.dropped_queue,
            &self.queue_packets,
            &self.queue_bytes,
            &self.wire_packets,
            &self.wire_bytes,
        ]
    }

    fn snapshot(&self) -> LinkStats {
        let [a, b, c, d, e, f, g, h, i, j] = self.fields().map(|x| x.load(Relaxed));
        LinkStats {
            packets_in: a,
            bytes_in: b,
            packets_out: c,
            bytes_out: d,
            dropped_loss: e,
            dropped_queue: f,
            queue_packets: g,
            queue_bytes: h,
            wire_packets: i,
            wire_bytes: j,
        }
    }
}

/// The counters' names, in the order of [`stat_values`] (the `stats` line's keys).
const STAT_NAMES: [&str; 10] = [
    "packets_in",
    "bytes_in",
    "packets_out",
    "bytes_out",
    "dropped_loss",
    "dropped_queue",
    "queue_packets",
    "queue_bytes",
    "wire_packets",
    "wire_bytes",
];

fn stat_values(s: &LinkStats) -> [u64; 10] {
    [
        s.packets_in,
        s.bytes_in,
        s.packets_out,
        s.bytes_out,
        s.dropped_loss,
        s.dropped_queue,
        s.queue_packets,
        s.queue_bytes,
        s.wire_packets,
        s.wire_bytes,
    ]
}

struct Inner {
    params: [watch::Sender<LinkParams>; 2],
    counters: [Counters; 2],
    seed: u64,
    next_stream: AtomicU64,
}

/// A cheap-to-clone handle on an emulated link's parameters and counters.
#[derive(Clone)]
pub struct LinkHandle {
    inner: Arc<Inner>,
}

impl fmt::Debug for LinkHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkHandle")
            .field("seed", &self.inner.seed)
            .finish_non_exhaustive()
    }
}

impl LinkHandle {
    /// A link with `up` and `down` parameters; `seed` fixes every random choice.
    pub fn new(up: LinkParams, down: LinkParams, seed: u64) -> Result<LinkHandle, ParamsError> {
        up.validate()?;
        down.validate()?;
        Ok(LinkHandle {
            inner: Arc::new(Inner {
                params: [watch::Sender::new(up), watch::Sender::new(down)],
                counters: [Counters::default(), Counters::default()],
                seed,
                next_stream: AtomicU64::new(0),
            }),
        })
    }

    /// The same parameters both ways.
    pub fn symmetric(params: LinkParams, seed: u64) -> Result<LinkHandle, ParamsError> {
        LinkHandle::new(params.clone(), params, seed)
    }

    /// The parameters in force for `dir`.
    pub fn params(&self, dir: Dir) -> LinkParams {
        self.sender(dir).borrow().clone()
    }

    /// Changes `dir`'s parameters; running connections pick them up at once.
    pub fn set_params(&self, dir: Dir, params: LinkParams) -> Result<(), ParamsError> {
        params.validate()?;
        self.sender(dir).send_replace(params);
        Ok(())
    }

    /// Counters of `dir`, summed over all connections so far.
    pub fn stats(&self, dir: Dir) -> LinkStats {
        self.counters(dir).snapshot()
    }

    /// One line of counters for both directions (the `stats` reply and the final log line).
    pub fn stats_line(&self) -> String {
        let mut out = String::new();
        for dir in Dir::BOTH {
            let s = self.stats(dir);
            for (name, value) in STAT_NAMES.iter().zip(stat_values(&s)) {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&format!("{}.{name}={value}", dir.name()));
            }
        }
        out
    }

    /// The run's seed.
    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// Opens a new stream (connection, session): its number, used to derive its seeds.
    pub(crate) fn next_stream(&self) -> u64 {
        self.inner.next_stream.fetch_add(1, Relaxed)
    }

    /// The seed for `dir` of stream `stream`.
    pub(crate) fn stream_seed(&self, stream: u64, dir: Dir) -> u64 {
        derive_seed(self.inner.seed, stream * 2 + dir.index())
    }

    /// A receiver that sees `dir`'s parameter changes.
    pub(crate) fn watch(&self, dir: Dir) -> watch::Receiver<LinkParams> {
        self.sender(dir).subscribe()
    }

    /// A reporter that adds one link's counters into `dir`'s totals.
    pub(crate) fn reporter(&self, dir: Dir) -> Reporter {
        Reporter {
            handle: self.clone(),
            dir,
            last: LinkStats::default(),
        }
    }

    fn sender(&self, dir: Dir) -> &watch::Sender<LinkParams> {
        match dir {
            Dir::Up => &self.inner.params[0],
            Dir::Down => &self.inner.params[1],
        }
    }

    fn counters(&self, dir: Dir) -> &Counters {
        match dir {
            Dir::Up => &self.inner.counters[0],
            Dir::Down => &self.inner.counters[1],
        }
    }
}

/// Adds the changes of one link's [`LinkStats`] into the shared totals; on drop it withdraws the
/// link's gauges (queue and wire), so an aborted connection does not leave them standing.
pub(crate) struct Reporter {
    handle: LinkHandle,
    dir: Dir,
    last: LinkStats,
}

impl Reporter {
    pub(crate) fn sync(&mut self, now: LinkStats) {
        let fields = self.handle.counters(self.dir).fields();
        for ((field, new), old) in fields
            .iter()
            .zip(stat_values(&now))
            .zip(stat_values(&self.last))
        {
            if new > old {
                field.fetch_add(new - old, Relaxed);
            } else if old > new {
                field.fetch_sub(old - new, Relaxed);
            }
        }
        self.last = now;
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        let gone = LinkStats {
            queue_packets: 0,
            queue_bytes: 0,
            wire_packets: 0,
            wire_bytes: 0,
            ..self.last
        };
        self.sync(gone);
    }
}

/// The adapters' clock: real time as a [`Duration`] since the adapter started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    epoch: tokio::time::Instant,
}

impl Clock {
    pub(crate) fn new() -> Clock {
        Clock {
            epoch: tokio::time::Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    pub(crate) fn at(&self, t: Duration) -> tokio::time::Instant {
        self.epoch + t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reporters_sum_and_withdraw_gauges() {
        let h = LinkHandle::symmetric(LinkParams::default(), 1).unwrap();
        let mut a = h.reporter(Dir::Up);
        let mut b = h.reporter(Dir::Up);
        a.sync(LinkStats {
            packets_in: 3,
            queue_bytes: 100,
            ..LinkStats::default()
        });
        b.sync(LinkStats {
            packets_in: 2,
            queue_bytes: 50,
            ..LinkStats::default()
        });
        assert_eq!(h.stats(Dir::Up).packets_in, 5);
        assert_eq!(h.stats(Dir::Up).queue_bytes, 150);
        a.sync(LinkStats {
            packets_in: 4,
            queue_bytes: 20,
            ..LinkStats::default()
        });
        assert_eq!(h.stats(Dir::Up).queue_bytes, 70);
        drop(b);
        assert_eq!(h.stats(Dir::Up).queue_bytes, 20);
        assert_eq!(h.stats(Dir::Up).packets_in, 6);
        assert_eq!(h.stats(Dir::Down).packets_in, 0);
    }

    #[test]
    fn stats_line_names_every_counter_of_both_directions() {
        let h = LinkHandle::symmetric(LinkParams::default(), 1).unwrap();
        let line = h.stats_line();
        let keys: Vec<&str> = line
            .split(' ')
            .map(|kv| kv.split_once('=').unwrap().0)
            .collect();
        let want: Vec<String> = Dir::BOTH
            .iter()
            .flat_map(|d| STAT_NAMES.iter().map(move |n| format!("{}.{n}", d.name())))
            .collect();
        assert_eq!(keys, want);
        assert_eq!((keys[0], keys[19]), ("up.packets_in", "down.wire_bytes"));
        assert!(line.split(' ').all(|kv| kv.ends_with("=0")), "{line}");
    }

    #[test]
    fn bad_params_are_refused() {
        let bad = LinkParams {
            queue: 10,
            ..LinkParams::default()
        };
        assert!(LinkHandle::symmetric(bad.clone(), 1).is_err());
        let h = LinkHandle::symmetric(LinkParams::default(), 1).unwrap();
        assert!(h.set_params(Dir::Down, bad).is_err());
        assert_eq!(h.params(Dir::Down), LinkParams::default());
    }

    #[test]
    fn stream_seeds_differ_by_stream_and_direction() {
        let h = LinkHandle::symmetric(LinkParams::default(), 1).unwrap();
        let seeds = [
            h.stream_seed(0, Dir::Up),
            h.stream_seed(0, Dir::Down),
            h.stream_seed(1, Dir::Up),
        ];
        assert_ne!(seeds[0], seeds[1]);
        assert_ne!(seeds[0], seeds[2]);
        assert_ne!(seeds[1], seeds[2]);
    }
}
