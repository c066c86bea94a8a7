//! `doppel netem`: a userspace WAN link emulator (delay, jitter, rate, queue, loss).
//!
//! The kernels doppel runs on have no `netem` qdisc, so tests, benchmarks and demos put this
//! emulator between two components instead.
//!
//! Layers, bottom up:
//! - [`units`]: strict parsers for `50ms`, `10mbit`, `256KiB`, `1%`.
//! - [`link`]: the sans-IO engine, one direction of a link: loss, a bounded queue, a token bucket
//!   and a delay line with jitter (in order unless reordering is allowed). Time is an argument;
//!   randomness comes from a seeded [`rng::Rng`], so runs repeat.
//! - [`handle`]: a running link's parameters (changeable while it runs) and counters.
//! - Adapters over tokio: [`tcp::TcpRelay`], [`udp::UdpRelay`] (both a [`relay::Relay`]), and the IP-level
//!   [`tun_bridge::TunBridge`] between two TUN devices ([`tun`] is the one module with `unsafe`).
//! - [`control`]: the line protocol that changes parameters and reads counters at run time, served
//!   on a Unix socket by [`control_socket::ControlSocket`].
//! - [`bench`]: helpers for measuring a relay (echo and sink servers, round-trip timing).
//!
//! In-process use (a 50 ms, 10 Mbit/s link in front of a server):
//!
//! ```no_run
//! # async fn demo(server: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
//! use doppel_netem::{units, LinkHandle, LinkParams, TcpRelay};
//! let params = LinkParams {
//!     delay: units::parse_duration("50ms")?,
//!     rate: units::parse_rate("10mbit")?,
//!     ..LinkParams::default()
//! };
//! let relay = TcpRelay::start("127.0.0.1:0".parse()?, server, LinkHandle::symmetric(params, 1)?).await?;
//! // Connect the client to relay.local_addr() instead of the server.
//! # Ok(()) }
//! ```

pub mod bench;
pub mod control;
pub mod control_socket;
pub mod handle;
pub mod link;
pub mod relay;
pub mod rng;
pub mod tcp;
pub mod tun;
pub mod tun_bridge;
pub mod udp;
pub mod units;
mod watch;

pub use control_socket::ControlSocket;
pub use handle::{Dir, LinkHandle};
pub use link::{Link, LinkParams, LinkStats, Verdict};
pub use tcp::TcpRelay;
pub use tun_bridge::TunBridge;
pub use udp::UdpRelay;
