//! The RFB (VNC) display server: a sans-IO protocol engine, encoders, damage tracking, input
//! mapping, meters and a tokio adapter.
//!
//! Layers, bottom up:
//! * [`wire`]: message formats, checked parsing and emitting, no logic.
//! * [`pixel`], [`encode`]: pixel translation and rectangle encoders.
//! * [`engine`]: the per-connection protocol state machine (bytes in, events and bytes out).
//! * [`damage`]: what changed in the framebuffer, from per-page dirty bits refined by tiles.
//! * [`session`]: one viewer: engine + encoder state + what it has been sent.
//! * [`input`]: keysyms, scancodes and pointer masks to the machine's input events.
//! * [`meter`]: bytes per encoding, updates, encoding time, and the traffic estimate.
//! * [`pacing`]: congestion control for pushed updates (fence RTT, bytes in flight).
//! * [`server`]: the tokio adapter (TCP, VeNCrypt TLS); [`tls`]: certificates; [`ws`]: the
//!   WebSocket listener for noVNC.

pub mod auth;
pub mod damage;
pub mod encode;
pub mod engine;
pub mod input;
pub mod meter;
pub mod pacing;
pub mod pattern;
pub mod pixel;
pub mod session;
pub mod wire;
#[cfg(feature = "test-utils")]
pub mod testutil;
pub mod server;
pub mod tls;
pub mod ws;

/// "outer: cause: cause" for logs.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}
