//! The control socket: serves the [`crate::control`] line protocol on a Unix socket.
//!
//! Try it with `socat - UNIX-CONNECT:/tmp/netem.sock` and type `stats`.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::{JoinHandle, JoinSet};
use tracing::{debug, info, warn};

use crate::control::{reply, MAX_LINE};
use crate::handle::LinkHandle;

/// Errors starting the control socket.
#[derive(Debug, thiserror::Error)]
pub enum ControlSocketError {
    #[error("control socket {path} is in use by a running process")]
    InUse { path: PathBuf },
    #[error("cannot listen on control socket {path}")]
    Bind { path: PathBuf, source: io::Error },
    #[error("cannot remove stale control socket {path}")]
    RemoveStale { path: PathBuf, source: io::Error },
}

/// A running control socket; dropping it stops serving and removes the socket file.
#[derive(Debug)]
pub struct ControlSocket {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl ControlSocket {
    /// Listens on the Unix socket `path`. A stale socket file (nobody listening) is replaced;
    /// a live one is an error.
    pub async fn start(
        path: &Path,
        handle: LinkHandle,
    ) -> Result<ControlSocket, ControlSocketError> {
        let listener = match UnixListener::bind(path) {
            Ok(l) => l,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                if UnixStream::connect(path).await.is_ok() {
                    return Err(ControlSocketError::InUse {
                        path: path.to_owned(),
                    });
                }
                std::fs::remove_file(path).map_err(|source| ControlSocketError::RemoveStale {
                    path: path.to_owned(),
                    source,
                })?;
                UnixListener::bind(path).map_err(|source| ControlSocketError::Bind {
                    path: path.to_owned(),
                    source,
                })?
            }
            Err(source) => {
                return Err(ControlSocketError::Bind {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        info!(path = %path.display(), "control socket listening");
        let task = tokio::spawn(serve(listener, handle));
        Ok(ControlSocket {
            path: path.to_owned(),
            task,
        })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

async fn serve(listener: UnixListener, handle: LinkHandle) {
    let mut clients = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let h = handle.clone();
                    clients.spawn(async move {
                        if let Err(e) = client(stream, &h).await {
                            debug!(error = %e, "control client ended with an error");
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "control accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = clients.join_next(), if !clients.is_empty() => {}
        }
    }
}

async fn client(stream: UnixStream, handle: &LinkHandle) -> io::Result<()> {
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    let mut line = Vec::new();
    loop {
        line.clear();
        let limit = u64::try_from(MAX_LINE + 1).unwrap_or(u64::MAX);
        let n = (&mut rd).take(limit).read_until(b'\n', &mut line).await?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') && line.len() > MAX_LINE {
            wr.write_all(format!("err command longer than {MAX_LINE} bytes; closing\n").as_bytes())
                .await?;
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        let answer = reply(text, handle);
        info!(command = text, reply = %answer, "control");
        wr.write_all(answer.as_bytes()).await?;
        wr.write_all(b"\n").await?;
    }
}
