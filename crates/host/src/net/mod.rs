//! Network backends: where the frames of the machine's virtio-net device go, and where the frames
//! it receives come from.
//!
//! The machine never touches the network. A frame the guest transmits leaves the machine as
//! [`doppel_machine::Output::NetTx`]; the live environment hands it to a [`NetBackend`]. A frame
//! for the guest enters through the environment's input channel as
//! [`doppel_machine::InputEvent::NetRx`], so it is applied at a deterministic instruction count and
//! recorded like a key press. The backends:
//!
//! * [`NullNet`] (`--net null`, the default): transmitted frames are counted and dropped; nothing
//!   is ever received. The guest sees a link that is up and silent.
//! * [`LoopbackNet`] (`--net loopback`): every transmitted frame comes back as received (a cable
//!   from the port to itself); for tests of the path through the environment.
//! * [`UserNet`] (`--net user`): user-mode networking with libslirp, laid out like QEMU's
//!   `-nic user`: network 10.0.2.0/24, the host (gateway) 10.0.2.2, DNS 10.0.2.3, the guest
//!   10.0.2.15 (DHCP hands that out too). The guest reaches every server the host reaches (TCP
//!   and UDP through host sockets; 10.0.2.2 is the host's own loopback), and host ports forward
//!   into the guest ([`HostFwd`], QEMU's `hostfwd=` syntax). libslirp, its sockets and its timers
//!   run on a thread of their own, never inside the machine.

mod hostfwd;
mod slirp;
mod user;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use hostfwd::{HostFwd, HostFwdError, Protocol};
pub use slirp::version as slirp_version;
pub use user::UserNet;

use crate::live::InputSender;
use doppel_machine::InputEvent;

/// Errors of the network backends.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("libslirp refused to start a network {network}/{netmask}")]
    SlirpInit {
        network: Ipv4Addr,
        netmask: Ipv4Addr,
    },
    #[error("cannot set up the port forward `{rule}`: {reason}")]
    HostFwd { rule: String, reason: String },
    #[error("poll on the user network's sockets failed")]
    Poll(#[source] std::io::Error),
    #[error("cannot start the user network thread")]
    Thread(#[source] std::io::Error),
    #[error("the user network thread stopped before it was ready")]
    ThreadGone,
    #[error("--hostfwd needs --net user (the {backend} backend has no host side)")]
    HostFwdWithoutUser { backend: &'static str },
    #[error("unknown network backend `{0}` (known: none, null, loopback, user)")]
    UnknownBackend(String),
}

/// Where the machine's transmitted frames go. Called on the machine's thread, so it must not block.
pub trait NetBackend: Send {
    fn transmit(&mut self, frame: &[u8]);
    /// Counters so far.
    fn stats(&self) -> NetStats;
}

/// Frames and bytes through a backend, as seen from the guest (tx = guest to world).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    pub tx_frames: u64,
    pub tx_bytes: u64,
    pub rx_frames: u64,
    pub rx_bytes: u64,
}

/// Counters shared between the machine's thread and a backend's thread.
#[derive(Debug, Default)]
pub(crate) struct SharedStats {
    tx_frames: AtomicU64,
    tx_bytes: AtomicU64,
    rx_frames: AtomicU64,
    rx_bytes: AtomicU64,
}

impl SharedStats {
    pub(crate) fn tx(&self, len: usize) {
        self.tx_frames.fetch_add(1, Ordering::Relaxed);
        self.tx_bytes.fetch_add(len as u64, Ordering::Relaxed);
    }
    pub(crate) fn rx(&self, len: usize) {
        self.rx_frames.fetch_add(1, Ordering::Relaxed);
        self.rx_bytes.fetch_add(len as u64, Ordering::Relaxed);
    }
    pub(crate) fn snapshot(&self) -> NetStats {
        NetStats {
            tx_frames: self.tx_frames.load(Ordering::Relaxed),
            tx_bytes: self.tx_bytes.load(Ordering::Relaxed),
            rx_frames: self.rx_frames.load(Ordering::Relaxed),
            rx_bytes: self.rx_bytes.load(Ordering::Relaxed),
        }
    }
}

/// Drops what the guest sends; never receives.
#[derive(Debug, Default)]
pub struct NullNet {
    stats: NetStats,
}

impl NetBackend for NullNet {
    fn transmit(&mut self, frame: &[u8]) {
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += frame.len() as u64;
    }
    fn stats(&self) -> NetStats {
        self.stats
    }
}

/// Sends every transmitted frame straight back to the guest.
pub struct LoopbackNet {
    input: InputSender,
    stats: Arc<SharedStats>,
}

impl LoopbackNet {
    pub fn new(input: InputSender) -> Self {
        LoopbackNet {
            input,
            stats: Arc::default(),
        }
    }
}

impl NetBackend for LoopbackNet {
    fn transmit(&mut self, frame: &[u8]) {
        self.stats.tx(frame.len());
        if self.input.send(InputEvent::NetRx(frame.to_vec())) {
            self.stats.rx(frame.len());
        }
    }
    fn stats(&self) -> NetStats {
        self.stats.snapshot()
    }
}

/// The addresses and forwards of a user-mode network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserNetConfig {
    pub network: Ipv4Addr,
    pub netmask: Ipv4Addr,
    /// The host as the guest sees it (gateway; connections to it reach the host's 127.0.0.1).
    pub host: Ipv4Addr,
    /// The DNS server the guest is told about (forwards to the host's resolver).
    pub dns: Ipv4Addr,
    /// The guest's address (the first DHCP lease; the default target of forwards).
    pub guest: Ipv4Addr,
    /// Isolate the guest: no connections out (forwards into the guest still work).
    pub restrict: bool,
    pub hostfwd: Vec<HostFwd>,
}

impl Default for UserNetConfig {
    /// QEMU's `-nic user` addresses.
    fn default() -> Self {
        UserNetConfig {
            network: Ipv4Addr::new(10, 0, 2, 0),
            netmask: Ipv4Addr::new(255, 255, 255, 0),
            host: Ipv4Addr::new(10, 0, 2, 2),
            dns: Ipv4Addr::new(10, 0, 2, 3),
            guest: Ipv4Addr::new(10, 0, 2, 15),
            restrict: false,
            hostfwd: Vec::new(),
        }
    }
}

/// The `--net` choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetMode {
    /// No network device at all.
    None,
    /// A network device whose frames go nowhere.
    Null,
    /// A network device wired to itself.
    Loopback,
    /// A network device on a libslirp user-mode network.
    User,
}

impl NetMode {
    pub fn name(self) -> &'static str {
        match self {
            NetMode::None => "none",
            NetMode::Null => "null",
            NetMode::Loopback => "loopback",
            NetMode::User => "user",
        }
    }
}

impl std::str::FromStr for NetMode {
    type Err = NetError;
    fn from_str(s: &str) -> Result<Self, NetError> {
        match s {
            "none" => Ok(NetMode::None),
            "null" => Ok(NetMode::Null),
            "loopback" => Ok(NetMode::Loopback),
            "user" => Ok(NetMode::User),
            other => Err(NetError::UnknownBackend(other.to_string())),
        }
    }
}

/// Start the backend `mode` asks for (`None` for [`NetMode::None`]: the machine has no device).
/// Frames for the guest go to `input`.
pub fn start(
    mode: NetMode,
    config: UserNetConfig,
    input: &InputSender,
) -> Result<Option<Box<dyn NetBackend>>, NetError> {
    if mode != NetMode::User && !config.hostfwd.is_empty() {
        return Err(NetError::HostFwdWithoutUser {
            backend: mode.name(),
        });
    }
    Ok(match mode {
        NetMode::None => None,
        NetMode::Null => Some(Box::new(NullNet::default())),
        NetMode::Loopback => Some(Box::new(LoopbackNet::new(input.clone()))),
        NetMode::User => Some(Box::new(UserNet::start(config, input.clone())?)),
    })
}

#[cfg(test)]
mod tests;
