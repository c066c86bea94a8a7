//! The WebSocket listener, so browsers (noVNC) connect without websockify: each connection is
//! upgraded (the `binary` subprotocol is chosen when offered, as websockify does), and its binary
//! messages are bridged to a byte stream that [`crate::server::serve_stream`] serves like TCP.
//! RFB runs over the bridge unchanged: message boundaries mean nothing, bytes are bytes.
//!
//! Security on this listener is what [`crate::server::ServerConfig`] says, except VeNCrypt,
//! which needs a raw socket to switch to TLS: pass a config with None or VNC authentication.

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

use crate::server::{serve_stream, Display, ServerConfig, ServerError};

/// Bytes buffered between the WebSocket and the RFB session, each way.
const BRIDGE_BUFFER: usize = 256 * 1024;

/// Accepts WebSocket viewers forever.
pub async fn serve_ws(listener: TcpListener, config: ServerConfig, display: Display) -> std::io::Result<()> {
    let config = Arc::new(config);
    loop {
        let (stream, peer) = listener.accept().await?;
        let (config, display) = (config.clone(), display.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(stream, peer, config, display).await {
                tracing::warn!(%peer, error = %crate::error_chain(&e), "WebSocket viewer dropped");
            }
        });
    }
}

/// Picks `binary` among the offered subprotocols (noVNC offers it; some clients offer none).
#[allow(clippy::result_large_err)] // the signature tungstenite's accept_hdr callback requires
fn choose_subprotocol(req: &Request, mut resp: Response) -> Result<Response, tokio_tungstenite::tungstenite::handshake::server::ErrorResponse> {
    let offered = req.headers().get_all("Sec-WebSocket-Protocol");
    let binary = offered
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("binary"));
    if binary {
        resp.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("binary"));
    }
    Ok(resp)
}

async fn connection(stream: TcpStream, peer: SocketAddr, config: Arc<ServerConfig>, display: Display) -> Result<(), ServerError> {
    let _ = stream.set_nodelay(true);
    let ws = tokio::time::timeout(crate::server::HANDSHAKE_TIMEOUT, tokio_tungstenite::accept_hdr_async(stream, choose_subprotocol))
        .await
        .map_err(|_| ServerError::HandshakeTimeout { peer })?
        .map_err(|source| ServerError::WebSocket { peer, source })?;
    let (rfb_side, bridge_side) = tokio::io::duplex(BRIDGE_BUFFER);
    let session = tokio::spawn(serve_stream(Box::new(rfb_side), peer, config, None, display));
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut from_rfb, mut to_rfb) = tokio::io::split(bridge_side);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            n = from_rfb.read(&mut buf) => match n {
                Ok(0) | Err(_) => break, // the session ended
                Ok(n) => {
                    if ws_tx.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                        break;
                    }
                }
            },
            msg = ws_rx.next() => match msg {
                Some(Ok(Message::Binary(data))) => {
                    if to_rfb.write_all(&data).await.is_err() {
                        break;
                    }
                }
                // Text frames carry no RFB; pings are answered by tungstenite.
                Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
                Some(Ok(Message::Close(_))) | None => break,
                Some(Err(source)) => {
                    tracing::debug!(%peer, error = %source, "WebSocket read failed");
                    break;
                }
            },
        }
    }
    // Closing our side of the bridge ends the session (it sees end of stream).
    drop(to_rfb);
    drop(from_rfb);
    let _ = ws_tx.close().await;
    let _ = session.await;
    Ok(())
}
