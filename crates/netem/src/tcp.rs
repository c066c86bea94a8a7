//! The TCP relay: accepts connections on a listen address, connects each to the target, and
//! carries each direction through its own reliable [`Link`].
//!
//! The byte stream is cut into chunks as it is read (at most [`chunk_limit`] bytes, smaller when
//! the rate is low so a chunk takes about 2 ms to serialise); delay, jitter and rate apply per
//! chunk, in order. A full queue stops reading, so the sender sees TCP back-pressure rather than
//! loss. Half-close is forwarded once everything queued has been delivered. The rate applies
//! per connection and direction; the counters of the [`LinkHandle`] sum all connections.

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tracing::{debug, info_span, warn, Instrument};

use crate::handle::{Clock, Dir, LinkHandle};
use crate::link::{Link, LinkParams};
use crate::relay::Relay;
use crate::watch::ParamWatch;

/// Errors starting the TCP relay.
#[derive(Debug, thiserror::Error)]
pub enum TcpRelayError {
    #[error("cannot listen for TCP on {addr}")]
    Bind { addr: SocketAddr, source: io::Error },
}

/// Largest chunk read from a socket at once.
pub const MAX_CHUNK: usize = 64 * 1024;

/// The chunk size for `params`: about 2 ms of the rate, between 1 KiB and [`MAX_CHUNK`].
pub fn chunk_limit(params: &LinkParams) -> usize {
    match params.rate {
        None => MAX_CHUNK,
        Some(rate) => {
            let two_ms = usize::try_from(rate.bytes_in(2_000_000)).unwrap_or(MAX_CHUNK);
            two_ms.clamp(1024, MAX_CHUNK)
        }
    }
}

/// The TCP protocol, as [`Relay`]'s parameter.
#[derive(Debug)]
pub enum Tcp {}

/// A running TCP relay. Dropping it stops it and closes its connections.
pub type TcpRelay = Relay<Tcp>;

impl Relay<Tcp> {
    /// Listens on `listen` and relays every connection to `target` through `handle`'s link.
    pub async fn start(
        listen: SocketAddr,
        target: SocketAddr,
        handle: LinkHandle,
    ) -> Result<TcpRelay, TcpRelayError> {
        let bind_error = |source| TcpRelayError::Bind {
            addr: listen,
            source,
        };
        let listener = TcpListener::bind(listen).await.map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let serve = accept_loop(listener, target, handle.clone())
            .instrument(info_span!("tcp_relay", %local, %target));
        Ok(Relay::spawn(local, handle, serve))
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, handle: LinkHandle) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    let stream = handle.next_stream();
                    let h = handle.clone();
                    conns.spawn(connection(client, target, h, stream).instrument(info_span!("conn", stream, %peer)));
                }
                Err(e) => {
                    // Out of descriptors and the like: wait a little rather than spin.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn connection(client: TcpStream, target: SocketAddr, handle: LinkHandle, stream: u64) {
    let server = match TcpStream::connect(target).await {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, %target, "cannot connect to the target; closing the client");
            return;
        }
    };
    for s in [&client, &server] {
        if let Err(e) = s.set_nodelay(true) {
            debug!(error = %e, "set_nodelay failed");
        }
    }
    debug!("connected");
    let (client_rd, client_wr) = client.into_split();
    let (server_rd, server_wr) = server.into_split();
    let clock = Clock::new();
    let up = pump(client_rd, server_wr, &handle, stream, Dir::Up, clock);
    let down = pump(server_rd, client_wr, &handle, stream, Dir::Down, clock);
    let (a, b) = tokio::join!(up, down);
    for (dir, r) in [(Dir::Up, a), (Dir::Down, b)] {
        if let Err(e) = r {
            debug!(%dir, error = %e, "direction ended with an error");
        }
    }
    debug!("closed");
}

/// Carries one direction of one connection through its link until EOF has been delivered.
async fn pump(
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    handle: &LinkHandle,
    stream: u64,
    dir: Dir,
    clock: Clock,
) -> io::Result<()> {
    let mut params = ParamWatch::new(handle.watch(dir));
    let mut link: Link<Vec<u8>> =
        Link::new_reliable(params.current(), handle.stream_seed(stream, dir));
    let mut reporter = handle.reporter(dir);
    let mut buf = vec![0u8; MAX_CHUNK];
    let mut eof = false;
    loop {
        let delivered = link.poll(clock.now());
        reporter.sync(link.stats());
        for chunk in delivered {
            wr.write_all(&chunk).await?;
        }
        if eof && link.is_empty() {
            return wr.shutdown().await;
        }
        let room = usize::try_from(link.room())
            .unwrap_or(usize::MAX)
            .min(chunk_limit(link.params()));
        let wake = link.next_wakeup();
        tokio::select! {
            r = rd.read(&mut buf[..room]), if !eof && room > 0 => {
                let n = r?;
                if n == 0 {
                    eof = true;
                } else {
                    link.push(clock.now(), buf[..n].to_vec());
                }
            }
            () = tokio::time::sleep_until(clock.at(wake.unwrap_or_default())), if wake.is_some() => {}
            p = params.changed() => link.set_params(clock.now(), p),
        }
    }
}
