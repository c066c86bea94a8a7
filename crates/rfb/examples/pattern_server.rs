//! An RFB server showing an animated test pattern with known content; prints every input event
//! it receives as `input: <event>` on stdout. Used by the interop tests and for trying viewers.
//!
//! ```text
//! cargo run -p doppel-rfb --example pattern_server -- [--listen 127.0.0.1:5900] [--size 640x480]
//!     [--fps 10 | --fps 0 (static)] [--frames N (stop after N)] [--password SECRET] [--name NAME]
//! ```

use std::sync::{Arc, Mutex};

use doppel_rfb::engine::Security;
use doppel_rfb::meter::{Meters, TrafficEstimator};
use doppel_rfb::server::{serve, Display, ServerConfig};
use doppel_rfb::{meter, pattern};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
    let args: Vec<String> = std::env::args().collect();
    let listen = arg(&args, "--listen").unwrap_or_else(|| "127.0.0.1:5900".into());
    let size = arg(&args, "--size").unwrap_or_else(|| "640x480".into());
    let (w, h) = size.split_once('x').ok_or("--size WxH")?;
    let (w, h): (u16, u16) = (w.parse()?, h.parse()?);
    let fps: u32 = arg(&args, "--fps").map_or(Ok(10), |s| s.parse())?;
    let security = match arg(&args, "--password") {
        Some(p) => Security::VncAuth { password: p.into_bytes() },
        None => Security::None,
    };
    let name = arg(&args, "--name").unwrap_or_else(|| "doppel pattern".into());

    let (ftx, frx) = tokio::sync::watch::channel(None);
    let (itx, mut irx) = tokio::sync::mpsc::unbounded_channel();
    let meters = Arc::new(Meters::new());
    let display = Display { frames: frx, input: itx, meters: meters.clone(), estimator: Arc::new(Mutex::new(TrafficEstimator::new())) };
    tokio::spawn(pattern::animate(w, h, fps, arg(&args, "--frames").map(|s| s.parse()).transpose()?, ftx));
    tokio::spawn(async move {
        while let Some(ev) = irx.recv().await {
            println!("input: {ev:?}");
        }
    });
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    let config = ServerConfig { security, name, cursor: Some(pattern::arrow_cursor()) };
    let m = meters.clone();
    tokio::spawn(async move {
        let mut last = m.snapshot();
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            let now = m.snapshot();
            if now.updates != last.updates {
                let per: Vec<String> = meter::SLOTS.iter().zip(now.bytes).filter(|(_, b)| *b > 0).map(|(s, b)| format!("{s}={b}")).collect();
                eprintln!(
                    "meters: {:.1} updates/s, {:.0} B/s, encode {:?} total, bytes {}",
                    now.updates_per_second(&last, std::time::Duration::from_secs(10)),
                    now.bytes_per_second(&last, std::time::Duration::from_secs(10)),
                    now.encode_time,
                    per.join(" ")
                );
            }
            last = now;
        }
    });
    serve(listener, config, display).await?;
    Ok(())
}
