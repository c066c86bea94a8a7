//! Measuring tools for links and relays, used by the tests and by `doppel netem bench`:
//! a TCP echo server, a TCP sink that acknowledges what it received, round-trip timing with
//! small messages, and timed (optionally paced) bulk transfers.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::units::Rate;

/// A server task that stops when dropped.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Server {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A TCP echo server on `addr` (port 0 for any).
pub async fn echo_server(addr: SocketAddr) -> io::Result<Server> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    Ok(Server { addr, task })
}

/// A TCP sink on `addr`: reads everything, and when the client half-closes, answers with the
/// byte count as 8 little-endian bytes.
pub async fn sink_server(addr: SocketAddr) -> io::Result<Server> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 256 * 1024];
                let mut total: u64 = 0;
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) => break,
                        Ok(n) => total += u64::try_from(n).unwrap_or(0),
                        Err(_) => return,
                    }
                }
                let _ = s.write_all(&total.to_le_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    Ok(Server { addr, task })
}

/// Round-trip times of `count` messages of `size` bytes sent one at a time to an echo server at
/// `addr` (through whatever is in between), after `warmup` untimed ones.
pub async fn round_trips(
    addr: SocketAddr,
    count: usize,
    size: usize,
    warmup: usize,
) -> io::Result<Vec<Duration>> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let msg = vec![0x5a_u8; size.max(1)];
    let mut back = vec![0u8; msg.len()];
    let mut times = Vec::with_capacity(count);
    for i in 0..warmup + count {
        let t0 = Instant::now();
        s.write_all(&msg).await?;
        s.read_exact(&mut back).await?;
        if i >= warmup {
            times.push(t0.elapsed());
        }
        if back != msg {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "echo returned different bytes",
            ));
        }
    }
    Ok(times)
}

/// Sends `bytes` bytes to a sink server at `addr`, paced to `pace` if given, and returns the time
/// until the sink acknowledged all of them.
pub async fn bulk_transfer(
    addr: SocketAddr,
    bytes: u64,
    pace: Option<Rate>,
) -> io::Result<Duration> {
    let mut s = TcpStream::connect(addr).await?;
    let chunk = vec![0xa5_u8; 64 * 1024];
    let t0 = Instant::now();
    let mut sent: u64 = 0;
    while sent < bytes {
        let n = usize::try_from((bytes - sent).min(64 * 1024)).unwrap_or(chunk.len());
        s.write_all(&chunk[..n]).await?;
        sent += u64::try_from(n).unwrap_or(0);
        if let Some(rate) = pace {
            let due = t0 + Duration::from_nanos(rate.nanos_for(sent));
            tokio::time::sleep_until(due).await;
        }
    }
    s.shutdown().await?;
    let mut ack = [0u8; 8];
    s.read_exact(&mut ack).await?;
    let got = u64::from_le_bytes(ack);
    if got != bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("sink received {got} of {bytes} bytes"),
        ));
    }
    Ok(t0.elapsed())
}

/// The median of some durations (zero for none).
pub fn median(times: &[Duration]) -> Duration {
    percentile(times, 50)
}

/// The `p`th percentile (nearest rank) of some durations (zero for none).
pub fn percentile(times: &[Duration], p: usize) -> Duration {
    if times.is_empty() {
        return Duration::ZERO;
    }
    let mut v = times.to_vec();
    v.sort();
    let rank = (p.min(100) * v.len()).div_ceil(100).max(1);
    v[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(median(&v), Duration::from_millis(5));
        assert_eq!(percentile(&v, 90), Duration::from_millis(9));
        assert_eq!(percentile(&v, 100), Duration::from_millis(10));
        assert_eq!(median(&[]), Duration::ZERO);
    }
}
