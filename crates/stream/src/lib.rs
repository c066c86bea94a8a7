//! Live streaming of a recorded VM to replicas over TCP (the first paper's sections 2–4).
//!
//! The host runs its VM, records every non-deterministic input ([`host::Tap`]) and serves any
//! number of clients at once ([`host::Streamer`]): each gets a snapshot taken for it (CPU and
//! device state, a table of content addresses of RAM pages), RAM pages and disk blocks on demand
//! as of that snapshot, and the live replay log from the snapshot point with *horizons* that say
//! how far the host has got. A replica ([`replica::run`]) restores with demand-paged RAM
//! ([`uffd`]), fills pages from a content-addressed on-disk cache ([`cache`]) or the host, and
//! replays with [`doppel_replay::LiveReplayer`], which never runs past the horizon.
//!
//! The wire protocol is in [`proto`] (sans-IO, versioned, framed; fuzzed under `fuzz/`).

pub mod cache;
pub mod host;
pub mod proto;
pub mod replica;
pub mod uffd;

pub use host::{HostOptions, HostStats, Streamer, Tap};
pub use replica::{Control, Ended, ReplicaError, ReplicaOptions, Status};
