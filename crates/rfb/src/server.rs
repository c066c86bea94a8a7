//! The tokio adapter: a TCP listener serving any number of viewers from the latest [`Frame`].
//!
//! The producer publishes frames into a `watch` channel (it never waits for a viewer); each
//! viewer runs in its own task with its own [`Session`], wakes on client bytes or on a new frame,
//! and encodes from the newest frame only when it has a request outstanding, so a slow viewer
//! just skips frames. Input from every viewer goes into one `mpsc` queue, serialised.
//!
//! Transports: plain TCP ([`serve`]), TCP with VeNCrypt TLS ([`serve_with`] and an acceptor from
//! [`crate::tls`]: the engine negotiates, this adapter switches the socket to TLS), and
//! WebSocket (the [`crate::ws`] listener hands each upgraded connection to [`serve_stream`]).

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use doppel_machine::InputEvent;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio::sync::{mpsc, watch};

use crate::damage::Frame;
use crate::engine::{EngineConfig, Security};
use crate::meter::{Meters, TrafficEstimator};
use crate::session::{CursorImage, Session};

/// How long a viewer may take to finish the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// What every viewer of one display shares.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub security: Security,
    pub name: String,
    pub cursor: Option<CursorImage>,
}

/// Errors of the adapter.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("I/O with viewer {peer}")]
    Io {
        peer: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("viewer {peer} broke the protocol")]
    Protocol {
        peer: SocketAddr,
        #[source]
        source: crate::engine::EngineError,
    },
    #[error("viewer {peer} did not finish the handshake in {HANDSHAKE_TIMEOUT:?}")]
    HandshakeTimeout { peer: SocketAddr },
    #[error("TLS handshake with viewer {peer} failed")]
    Tls {
        peer: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("viewer {peer} negotiated TLS on a transport without it")]
    NoTls { peer: SocketAddr },
    #[error("WebSocket handshake with {peer} failed")]
    WebSocket {
        peer: SocketAddr,
        #[source]
        source: tokio_tungstenite::tungstenite::Error,
    },
    #[error("no frame published yet")]
    NoFrame,
}

/// Shared handles of a running display.
#[derive(Debug, Clone)]
pub struct Display {
    pub frames: watch::Receiver<Option<Arc<Frame>>>,
    pub input: mpsc::UnboundedSender<InputEvent>,
    pub meters: Arc<Meters>,
    pub estimator: Arc<std::sync::Mutex<TrafficEstimator>>,
}

/// A byte stream a viewer talks over (TCP, TLS over TCP, a WebSocket bridge).
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Accepts viewers forever. Each viewer's failure is logged and ends only that viewer.
pub async fn serve(listener: TcpListener, config: ServerConfig, display: Display) -> std::io::Result<()> {
    serve_with(listener, config, None, display).await
}

/// [`serve`], with the TLS acceptor VeNCrypt ([`crate::engine::Security::Tls`]) needs.
pub async fn serve_with(
    listener: TcpListener,
    config: ServerConfig,
    tls: Option<TlsAcceptor>,
    display: Display,
) -> std::io::Result<()> {
    let config = Arc::new(config);
    loop {
        let (stream, peer) = listener.accept().await?;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "cannot set TCP_NODELAY");
        }
        tokio::spawn(serve_stream(Box::new(stream), peer, config.clone(), tls.clone(), display.clone()));
    }
}

/// Serves one viewer on an accepted stream until it leaves; logs how it ended.
pub async fn serve_stream(
    stream: Box<dyn Stream>,
    peer: SocketAddr,
    config: Arc<ServerConfig>,
    tls: Option<TlsAcceptor>,
    display: Display,
) {
    tracing::info!(%peer, "viewer connected");
    match viewer(stream, peer, &config, tls, display).await {
        Ok(()) => tracing::info!(%peer, "viewer disconnected"),
        Err(e) => tracing::warn!(%peer, error = %crate::error_chain(&e), "viewer dropped"),
    }
}

fn challenge() -> [u8; 16] {
    let mut c = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut c)).is_ok();
    if !ok {
        // Fall back to the std hasher's per-process random keys.
        use std::hash::{BuildHasher, Hasher};
        for chunk in c.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(Instant::now().elapsed().as_nanos());
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    c
}

async fn viewer(
    mut stream: Box<dyn Stream>,
    peer: SocketAddr,
    config: &ServerConfig,
    tls: Option<TlsAcceptor>,
    mut display: Display,
) -> Result<(), ServerError> {
    let io = |source| ServerError::Io { peer, source };
    let first = display.frames.borrow_and_update().clone();
    let (w, h) = first.as_ref().map_or((0, 0), |f| (f.width, f.height));
    let mut session = Session::new(
        EngineConfig { security: config.security.clone(), name: config.name.as_bytes().to_vec(), width: w, height: h },
        challenge(),
    );
    if let Some(c) = &config.cursor {
        session.set_cursor(c.clone());
    }
    let started = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let mut input = Vec::new();
    loop {
        let out = session.take_output();
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(io)?;
            stream.flush().await.map_err(io)?; // TLS and WebSocket transports buffer
        }
        if session.engine().tls_pending() {
            let Some(acceptor) = &tls else { return Err(ServerError::NoTls { peer }) };
            stream.flush().await.map_err(io)?;
            let remaining = HANDSHAKE_TIMEOUT.saturating_sub(started.elapsed());
            let tls_stream = tokio::time::timeout(remaining, acceptor.accept(stream))
                .await
                .map_err(|_| ServerError::HandshakeTimeout { peer })?
                .map_err(|source| ServerError::Tls { peer, source })?;
            stream = Box::new(tls_stream);
            session.engine_mut().tls_established().map_err(|source| ServerError::Protocol { peer, source })?;
            tracing::debug!(%peer, "TLS established");
            continue;
        }
        let frame = display.frames.borrow_and_update().clone();
        if let Some(frame) = frame {
            if !session.engine().is_normal() {
                session.set_initial_size(frame.width, frame.height);
            }
            session.set_now(started.elapsed());
            let t0 = Instant::now();
            if let Some(stats) = session.update(&frame) {
                let took = t0.elapsed();
                display.meters.record_update(stats.slot, stats.bytes, stats.pixels, stats.rects, took);
                if let Ok(mut e) = display.estimator.lock() {
                    e.calibrate(stats.slot, stats.bytes, stats.pixels);
                }
                continue; // write it out, then look again
            }
        }
        let deadline = if session.engine().is_normal() {
            None
        } else {
            Some(HANDSHAKE_TIMEOUT.saturating_sub(started.elapsed()))
        };
        // The lossless refresh is due at a time, not on an event.
        let wakeup = session.next_wakeup().map(|t| t.saturating_sub(started.elapsed()));
        tokio::select! {
            n = stream.read(&mut buf) => {
                let n = n.map_err(io)?;
                if n == 0 {
                    session.release_input(&mut input);
                    forward(&display, &mut input);
                    return Ok(());
                }
                session.set_now(started.elapsed());
                let r = session.receive(&buf[..n], &mut input);
                forward(&display, &mut input);
                if let Err(source) = r {
                    let out = session.take_output();
                    let _ = stream.write_all(&out).await;
                    return Err(ServerError::Protocol { peer, source });
                }
            }
            changed = display.frames.changed() => {
                if changed.is_err() {
                    return Ok(()); // the display is gone
                }
            }
            _ = tokio::time::sleep(deadline.unwrap_or(Duration::from_secs(3600))), if deadline.is_some() => {
                return Err(ServerError::HandshakeTimeout { peer });
            }
            _ = tokio::time::sleep(wakeup.unwrap_or(Duration::from_secs(3600))), if wakeup.is_some() => {}
        }
    }
}

fn forward(display: &Display, input: &mut Vec<InputEvent>) {
    for ev in input.drain(..) {
        // A closed queue means nobody consumes input any more; drop it.
        let _ = display.input.send(ev);
    }
}
