//! The user-mode network's thread: libslirp with its sockets and timers, fed by the machine.
//!
//! The machine's thread calls [`UserNet::transmit`] (through the live environment): the frame goes
//! into a channel and one byte into a socket pair wakes the network thread. The network thread
//! loops: hand queued frames to libslirp, `poll` libslirp's sockets and the wake socket (at most
//! [`MAX_WAIT`], less when a timer is due), let libslirp process what is ready. Frames libslirp
//! sends to the guest go to the live environment's [`InputSender`] as `NetRx` events.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use doppel_machine::InputEvent;

use super::slirp::Slirp;
use super::{NetBackend, NetError, NetStats, SharedStats, UserNetConfig};
use crate::live::InputSender;

/// Longest sleep of the network thread without a reason to wake (libslirp's slow TCP timer runs
/// every 500 ms; it shortens the wait itself when something is due sooner).
const MAX_WAIT: Duration = Duration::from_millis(500);

/// A running user-mode network. Dropping it stops the thread and closes every connection.
pub struct UserNet {
    frames: Sender<Vec<u8>>,
    wake: UnixStream,
    stop: Arc<AtomicBool>,
    stats: Arc<SharedStats>,
    thread: Option<JoinHandle<()>>,
}

impl UserNet {
    /// Start libslirp with `config` on a thread of its own. Returns once the network and all its
    /// forwards are set up (a forward whose host port is taken is an error here).
    pub fn start(config: UserNetConfig, input: InputSender) -> Result<UserNet, NetError> {
        let (frames_tx, frames_rx) = mpsc::channel();
        let (wake, wake_rx) = UnixStream::pair().map_err(NetError::Thread)?;
        wake.set_nonblocking(true).map_err(NetError::Thread)?;
        wake_rx.set_nonblocking(true).map_err(NetError::Thread)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(SharedStats::default());
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let thread = {
            let (stop, stats) = (stop.clone(), stats.clone());
            std::thread::Builder::new()
                .name("doppel-net".into())
                .spawn(move || run(config, input, frames_rx, wake_rx, stop, stats, ready_tx))
                .map_err(NetError::Thread)?
        };
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                return Err(NetError::ThreadGone);
            }
        }
        Ok(UserNet {
            frames: frames_tx,
            wake,
            stop,
            stats,
            thread: Some(thread),
        })
    }

    fn kick(&self) {
        // A full socket buffer means a wake-up is already pending: nothing to do.
        let _ = (&self.wake).write(&[1]);
    }
}

impl NetBackend for UserNet {
    fn transmit(&mut self, frame: &[u8]) {
        self.stats.tx(frame.len());
        if self.frames.send(frame.to_vec()).is_ok() {
            self.kick();
        }
    }

    fn stats(&self) -> NetStats {
        self.stats.snapshot()
    }
}

impl Drop for UserNet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.kick();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    config: UserNetConfig,
    input: InputSender,
    frames: Receiver<Vec<u8>>,
    mut wake: UnixStream,
    stop: Arc<AtomicBool>,
    stats: Arc<SharedStats>,
    ready: mpsc::SyncSender<Result<(), NetError>>,
) {
    let send_stats = stats.clone();
    let send = Box::new(move |frame: &[u8]| {
        send_stats.rx(frame.len());
        // The environment may be gone (the machine stopped); the frame is then lost, as on a
        // cable pulled out.
        let _ = input.send(InputEvent::NetRx(frame.to_vec()));
    });
    let mut slirp = match Slirp::new(&config, send) {
        Ok(s) => s,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    tracing::info!(
        target: "doppel_host::net",
        "user network {}/{} up: host {}, dns {}, guest {}, {} forward(s)",
        config.network, config.netmask, config.host, config.dns, config.guest, config.hostfwd.len()
    );
    let _ = ready.send(Ok(()));
    let mut drain = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        while let Ok(frame) = frames.try_recv() {
            slirp.input(&frame);
        }
        match slirp.poll(MAX_WAIT, wake.as_fd()) {
            Ok(true) => loop {
                match wake.read(&mut drain) {
                    Ok(0) => return, // the handle is gone
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => break, // WouldBlock: drained
                }
            },
            Ok(false) => {}
            Err(e) => {
                tracing::error!(target: "doppel_host::net", "user network stops: {e}");
                return;
            }
        }
    }
    tracing::debug!(target: "doppel_host::net", "user network stopped; connections:\n{}", slirp.connection_info());
}
