//! What the TCP and UDP relays share: a task that serves one listen address through one link and
//! stops when the relay is dropped. [`crate::TcpRelay`] and [`crate::UdpRelay`] are this type for
//! each protocol; each protocol's module has its `start`.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;

use tokio::task::JoinHandle;

use crate::handle::LinkHandle;

/// A running relay for protocol `P` ([`crate::tcp::Tcp`] or [`crate::udp::Udp`]). Dropping it
/// stops it and closes its connections or sessions.
pub struct Relay<P> {
    local: SocketAddr,
    handle: LinkHandle,
    task: JoinHandle<()>,
    proto: PhantomData<P>,
}

impl<P> Relay<P> {
    /// Runs `serve` (the relay's accept or receive loop) on the runtime.
    pub(crate) fn spawn(
        local: SocketAddr,
        handle: LinkHandle,
        serve: impl Future<Output = ()> + Send + 'static,
    ) -> Self {
        Relay {
            local,
            handle,
            task: tokio::spawn(serve),
            proto: PhantomData,
        }
    }

    /// The address it listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The link's parameters and counters.
    pub fn handle(&self) -> &LinkHandle {
        &self.handle
    }
}

impl<P> Drop for Relay<P> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<P> fmt::Debug for Relay<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("proto", &std::any::type_name::<P>())
            .field("local", &self.local)
            .field("handle", &self.handle)
            .field("task", &self.task)
            .finish()
    }
}
