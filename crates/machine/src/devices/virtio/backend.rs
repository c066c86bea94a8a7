use super::queue::{Queue, QueueError};
use crate::bus::MmioCtx;
use crate::devices::virtio_blk::{Block, BlockState};
use crate::devices::virtio_input::{Input, InputState};
use crate::devices::virtio_net::{Net, NetState};
use crate::devices::virtio_rng::Rng;
use crate::ram::GuestRam;

/// Which device sits in a virtio slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DeviceKind {
    Block,
    Net,
    Keyboard,
    Tablet,
    Rng,
}

impl DeviceKind {
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Block => "virtio-blk",
            DeviceKind::Net => "virtio-net",
            DeviceKind::Keyboard => "virtio-keyboard",
            DeviceKind::Tablet => "virtio-tablet",
            DeviceKind::Rng => "virtio-rng",
        }
    }
}

/// The device behind a virtio-mmio transport.
#[derive(Debug)]
pub enum VirtioBackend {
    Block(Block),
    Net(Net),
    Input(Input),
    Rng(Rng),
}

/// Snapshot of a backend's own state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VirtioBackendState {
    Block(BlockState),
    Net(NetState),
    Input(InputState),
    Rng,
}

/// Copy `buf.len()` bytes of a config image from `offset`; bytes beyond it read as zero.
pub(crate) fn read_config_bytes(image: &[u8], offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = usize::try_from(offset).ok().and_then(|o| o.checked_add(i)).and_then(|o| image.get(o)).copied().unwrap_or(0);
    }
}

macro_rules! each {
    ($self:expr, $d:ident => $e:expr) => {
        match $self {
            VirtioBackend::Block($d) => $e,
            VirtioBackend::Net($d) => $e,
            VirtioBackend::Input($d) => $e,
            VirtioBackend::Rng($d) => $e,
        }
    };
}

impl VirtioBackend {
    pub fn kind(&self) -> DeviceKind {
        match self {
            VirtioBackend::Block(_) => DeviceKind::Block,
            VirtioBackend::Net(_) => DeviceKind::Net,
            VirtioBackend::Input(i) => i.kind(),
            VirtioBackend::Rng(_) => DeviceKind::Rng,
        }
    }

    /// The virtio device id.
    pub fn device_id(&self) -> u32 {
        match self {
            VirtioBackend::Block(_) => 2,
            VirtioBackend::Net(_) => 1,
            VirtioBackend::Input(_) => 18,
            VirtioBackend::Rng(_) => 4,
        }
    }

    /// Device-specific feature bits offered (the transport adds `VIRTIO_F_VERSION_1`).
    pub fn features(&self) -> u64 {
        each!(self, d => d.features())
    }

    /// Maximum size of each queue.
    pub fn queue_sizes(&self) -> &'static [u16] {
        each!(self, d => d.queue_sizes())
    }

    pub fn read_config(&self, offset: u64, buf: &mut [u8]) {
        each!(self, d => d.read_config(offset, buf))
    }

    pub fn write_config(&mut self, offset: u64, data: &[u8]) {
        each!(self, d => d.write_config(offset, data))
    }

    /// The driver notified queue `index`.
    pub fn notify(
        &mut self,
        index: usize,
        queues: &mut [Queue],
        ram: &mut GuestRam,
        ctx: &mut MmioCtx<'_>,
    ) -> Result<(), QueueError> {
        each!(self, d => d.notify(index, queues, ram, ctx))
    }

    /// The driver set DRIVER_OK: deliver what waited for it.
    pub fn driver_ready(&mut self, queues: &mut [Queue], ram: &mut GuestRam) -> Result<(), QueueError> {
        match self {
            VirtioBackend::Net(n) => n.deliver(queues, ram),
            VirtioBackend::Input(i) => i.deliver(queues, ram),
            VirtioBackend::Block(_) | VirtioBackend::Rng(_) => Ok(()),
        }
    }

    /// Device reset (status 0): forget in-flight device state; disk contents stay.
    pub fn reset(&mut self) {
        each!(self, d => d.reset())
    }

    pub fn save(&self) -> VirtioBackendState {
        use crate::persist::Persist;
        match self {
            VirtioBackend::Block(b) => VirtioBackendState::Block(b.save()),
            VirtioBackend::Net(n) => VirtioBackendState::Net(n.save()),
            VirtioBackend::Input(i) => VirtioBackendState::Input(i.save()),
            VirtioBackend::Rng(_) => VirtioBackendState::Rng,
        }
    }
}
