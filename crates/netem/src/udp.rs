//! The UDP relay: one session per client address. Each session has its own socket towards the
//! target (so replies find their way back) and its own datagram [`Link`] per direction, where loss,
//! queue drops and (if enabled) reordering apply. A session ends after `idle` without traffic.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, info_span, warn, Instrument};

use crate::handle::{Clock, Dir, LinkHandle};
use crate::link::Link;
use crate::relay::Relay;
use crate::watch::ParamWatch;

/// Errors starting the UDP relay.
#[derive(Debug, thiserror::Error)]
pub enum UdpRelayError {
    #[error("cannot listen for UDP on {addr}")]
    Bind { addr: SocketAddr, source: io::Error },
}

/// How long a session lives without traffic, by default.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(60);

/// Largest datagram carried.
const MAX_DATAGRAM: usize = 65_536;

/// Datagrams waiting between the listener and a session before they are dropped.
const SESSION_BACKLOG: usize = 4096;

/// The UDP protocol, as [`Relay`]'s parameter.
#[derive(Debug)]
pub enum Udp {}

/// A running UDP relay. Dropping it stops it.
pub type UdpRelay = Relay<Udp>;

impl Relay<Udp> {
    /// Listens on `listen` and relays datagrams to `target` through `handle`'s link; a client's
    /// session ends after `idle` without traffic.
    pub async fn start(
        listen: SocketAddr,
        target: SocketAddr,
        handle: LinkHandle,
        idle: Duration,
    ) -> Result<UdpRelay, UdpRelayError> {
        let bind_error = |source| UdpRelayError::Bind {
            addr: listen,
            source,
        };
        let socket = UdpSocket::bind(listen).await.map_err(bind_error)?;
        let local = socket.local_addr().map_err(bind_error)?;
        let serve = listen_loop(Arc::new(socket), target, handle.clone(), idle)
            .instrument(info_span!("udp_relay", %local, %target));
        Ok(Relay::spawn(local, handle, serve))
    }
}

async fn listen_loop(
    socket: Arc<UdpSocket>,
    target: SocketAddr,
    handle: LinkHandle,
    idle: Duration,
) {
    let mut sessions: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, peer) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok(x) => x,
                Err(e) => {
                    // ICMP errors from earlier replies surface here on some systems; keep going.
                    debug!(error = %e, "recv_from failed");
                    continue;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let datagram = buf[..n].to_vec();
        let tx = match sessions.get(&peer) {
            Some(tx) if !tx.is_closed() => tx.clone(),
            _ => {
                sessions.retain(|_, tx| !tx.is_closed());
                let upstream = match connect_upstream(target).await {
                    Ok(s) => s,
                    Err(e) => {
                        warn!(error = %e, %target, "cannot open a socket towards the target");
                        continue;
                    }
                };
                let (tx, rx) = mpsc::channel(SESSION_BACKLOG);
                let stream = handle.next_stream();
                let session = Session {
                    client: peer,
                    listener: socket.clone(),
                    upstream,
                    handle: handle.clone(),
                    stream,
                };
                tasks.spawn(
                    session
                        .run(rx, idle)
                        .instrument(info_span!("session", stream, %peer)),
                );
                sessions.insert(peer, tx.clone());
                tx
            }
        };
        if tx.try_send(datagram).is_err() {
            debug!(%peer, "session backlog full; datagram dropped");
        }
    }
}

async fn connect_upstream(target: SocketAddr) -> io::Result<UdpSocket> {
    let any: SocketAddr = match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(any).await?;
    s.connect(target).await?;
    Ok(s)
}

struct Session {
    client: SocketAddr,
    listener: Arc<UdpSocket>,
    upstream: UdpSocket,
    handle: LinkHandle,
    stream: u64,
}

impl Session {
    async fn run(self, mut rx: mpsc::Receiver<Vec<u8>>, idle: Duration) {
        let clock = Clock::new();
        let mut up_params = ParamWatch::new(self.handle.watch(Dir::Up));
        let mut down_params = ParamWatch::new(self.handle.watch(Dir::Down));
        let mut up: Link<Vec<u8>> = Link::new(
            up_params.current(),
            self.handle.stream_seed(self.stream, Dir::Up),
        );
        let mut down: Link<Vec<u8>> = Link::new(
            down_params.current(),
            self.handle.stream_seed(self.stream, Dir::Down),
        );
        let mut up_rep = self.handle.reporter(Dir::Up);
        let mut down_rep = self.handle.reporter(Dir::Down);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut last_activity = clock.now();
        let mut closing = false;
        debug!("session opened");
        loop {
            let now = clock.now();
            for d in up.poll(now) {
                if let Err(e) = self.upstream.send(&d).await {
                    debug!(error = %e, "send to target failed");
                }
            }
            for d in down.poll(now) {
                if let Err(e) = self.listener.send_to(&d, self.client).await {
                    debug!(error = %e, "send to client failed");
                }
            }
            up_rep.sync(up.stats());
            down_rep.sync(down.stats());
            if closing && up.is_empty() && down.is_empty() {
                break;
            }
            let wake = match (up.next_wakeup(), down.next_wakeup()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let idle_at = last_activity + idle;
            tokio::select! {
                m = rx.recv(), if !closing => match m {
                    Some(d) => {
                        last_activity = clock.now();
                        up.push(last_activity, d);
                    }
                    None => closing = true,
                },
                r = self.upstream.recv(&mut buf), if !closing => match r {
                    Ok(n) => {
                        last_activity = clock.now();
                        down.push(last_activity, buf[..n].to_vec());
                    }
                    Err(e) => debug!(error = %e, "receive from target failed"),
                },
                () = tokio::time::sleep_until(clock.at(wake.unwrap_or_default())), if wake.is_some() => {}
                () = tokio::time::sleep_until(clock.at(idle_at)), if !closing => {
                    if clock.now() >= idle_at {
                        closing = true;
                        rx.close();
                    }
                }
                p = up_params.changed() => up.set_params(clock.now(), p),
                p = down_params.changed() => down.set_params(clock.now(), p),
            }
        }
        debug!("session closed");
    }
}
