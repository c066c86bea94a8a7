//! The IP-level mode: two TUN devices bridged through the link, so the endpoints (typically in
//! two network namespaces) exchange real IP packets. Packets read from device A cross the `up`
//! link and are written into device B; packets from B cross `down` into A. The bridge does not
//! look inside packets: any protocol works, and loss, queue drops and reordering apply as for UDP.
//!
//! Typical set-up (the `tun_netns` test does exactly this):
//!
//! ```text
//! ip netns add a; ip netns add b
//! doppel netem tun --dev-a nmA --dev-b nmB --netns-a a --netns-b b --delay 25ms &
//! ip -n a addr add 10.99.0.1/24 dev nmA; ip -n a link set nmA up
//! ip -n b addr add 10.99.0.2/24 dev nmB; ip -n b link set nmB up
//! ip netns exec a ping 10.99.0.2       # about 50 ms
//! ```

use std::io;
use std::sync::Arc;

use tokio::task::JoinHandle;
use tracing::{debug, info_span, Instrument};

use crate::handle::{Clock, Dir, LinkHandle};
use crate::link::Link;
use crate::tun::{AsyncTun, Tun};
use crate::watch::ParamWatch;

/// Errors starting the bridge.
#[derive(Debug, thiserror::Error)]
pub enum TunBridgeError {
    #[error("cannot register TUN device `{name}` with the event loop")]
    Register { name: String, source: io::Error },
}

/// Packets read in one go before the link is polled again.
const BATCH: usize = 64;

/// A running bridge between two TUN devices. Dropping it stops it and removes both devices.
#[derive(Debug)]
pub struct TunBridge {
    handle: LinkHandle,
    names: [String; 2],
    tasks: [JoinHandle<()>; 2],
}

impl TunBridge {
    /// Bridges `a` and `b` through `handle`'s link. Must be called inside a tokio runtime.
    pub fn start(a: Tun, b: Tun, handle: LinkHandle) -> Result<TunBridge, TunBridgeError> {
        let register = |t: Tun| {
            let name = t.name().to_owned();
            t.into_async()
                .map(Arc::new)
                .map_err(|source| TunBridgeError::Register { name, source })
        };
        let (fa, fb) = (register(a)?, register(b)?);
        let (na, nb) = (fa.name().to_owned(), fb.name().to_owned());
        let clock = Clock::new();
        let up = tokio::spawn(
            pump(fa.clone(), fb.clone(), handle.clone(), Dir::Up, clock)
                .instrument(info_span!("tun", dir = "up")),
        );
        let down = tokio::spawn(
            pump(fb, fa, handle.clone(), Dir::Down, clock)
                .instrument(info_span!("tun", dir = "down")),
        );
        Ok(TunBridge {
            handle,
            names: [na, nb],
            tasks: [up, down],
        })
    }

    /// The two devices' names, A then B.
    pub fn names(&self) -> [&str; 2] {
        [&self.names[0], &self.names[1]]
    }

    /// The link's parameters and counters.
    pub fn handle(&self) -> &LinkHandle {
        &self.handle
    }
}

impl Drop for TunBridge {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn pump(from: Arc<AsyncTun>, to: Arc<AsyncTun>, handle: LinkHandle, dir: Dir, clock: Clock) {
    let mut params = ParamWatch::new(handle.watch(dir));
    let mut link: Link<Vec<u8>> = Link::new(params.current(), handle.stream_seed(0, dir));
    let mut reporter = handle.reporter(dir);
    let mut buf = vec![0u8; 65_536];
    loop {
        for packet in link.poll(clock.now()) {
            // A TUN write never blocks for long; a failed write (device down) loses the packet,
            // as a real link would.
            if let Err(e) = to.send(&packet).await {
                debug!(error = %e, "write to TUN failed; packet lost");
            }
        }
        reporter.sync(link.stats());
        let wake = link.next_wakeup();
        tokio::select! {
            r = from.recv(&mut buf) => match r {
                Ok(n) => {
                    link.push(clock.now(), buf[..n].to_vec());
                    for _ in 1..BATCH {
                        match from.try_recv(&mut buf) {
                            Ok(n) => {
                                link.push(clock.now(), buf[..n].to_vec());
                            }
                            Err(_) => break,
                        }
                    }
                }
                Err(e) => {
                    debug!(error = %e, "read from TUN failed");
                    // Devices that are down report errors; do not spin on them.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            () = tokio::time::sleep_until(clock.at(wake.unwrap_or_default())), if wake.is_some() => {}
            p = params.changed() => link.set_params(clock.now(), p),
        }
    }
}
