use super::backend::{VirtioBackend, VirtioBackendState};
use super::device::{VirtioMmio, STATUS_DRIVER_OK, STATUS_FEATURES_OK, VIRTIO_F_VERSION_1};
use super::queue::Queue;
use crate::devices::virtio_blk::Block;
use crate::devices::virtio_input::Input;
use crate::devices::virtio_net::Net;
use crate::devices::DeviceError;
use crate::persist::Persist;

/// Snapshot of one virtqueue. Ring addresses are checked against RAM whenever the queue is used,
/// so a restored queue pointing outside RAM fails the device, not the host.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueueState {
    pub size: u16,
    pub ready: bool,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    pub next_avail: u16,
    pub next_used: u16,
}

/// Snapshot of a virtio-mmio slot and its device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VirtioMmioState {
    pub device_features_sel: u32,
    pub driver_features: u64,
    pub driver_features_sel: u32,
    pub queue_sel: u32,
    pub queues: Vec<QueueState>,
    pub status: u32,
    pub interrupt_status: u32,
    pub config_generation: u32,
    pub backend: VirtioBackendState,
}

impl Persist for VirtioMmio {
    type State = VirtioMmioState;
    /// A freshly configured backend of the kind the slot holds.
    type ConstructorArgs = VirtioBackend;
    type Error = DeviceError;

    fn save(&self) -> VirtioMmioState {
        VirtioMmioState {
            device_features_sel: self.device_features_sel,
            driver_features: self.driver_features,
            driver_features_sel: self.driver_features_sel,
            queue_sel: self.queue_sel,
            queues: self
                .queues
                .iter()
                .map(|q| QueueState {
                    size: q.size,
                    ready: q.ready,
                    desc: q.desc,
                    avail: q.avail,
                    used: q.used,
                    next_avail: q.next_avail,
                    next_used: q.next_used,
                })
                .collect(),
            status: self.status,
            interrupt_status: self.interrupt_status,
            config_generation: self.config_generation,
            backend: self.backend.save(),
        }
    }

    fn restore(fresh: VirtioBackend, s: &VirtioMmioState) -> Result<Self, DeviceError> {
        let kind = fresh.kind();
        let invalid = |reason: String| DeviceError::InvalidState { device: kind.name(), reason };
        let backend = match (fresh, &s.backend) {
            (VirtioBackend::Block(b), VirtioBackendState::Block(st)) => VirtioBackend::Block(Block::restore(b.into_base(), st)?),
            (VirtioBackend::Net(n), VirtioBackendState::Net(st)) => VirtioBackend::Net(Net::restore(n.mac(), st)?),
            (VirtioBackend::Input(i), VirtioBackendState::Input(st)) => VirtioBackend::Input(Input::restore(i.config(), st)?),
            (VirtioBackend::Rng(r), VirtioBackendState::Rng) => VirtioBackend::Rng(r),
            (_, other) => return Err(invalid(format!("state is for another kind of device ({other:?})"))),
        };
        let mut m = VirtioMmio::new(backend);
        if s.queues.len() != m.queues.len() {
            return Err(invalid(format!("{} queues, the device has {}", s.queues.len(), m.queues.len())));
        }
        for (i, (q, st)) in m.queues.iter_mut().zip(&s.queues).enumerate() {
            if st.size == 0 || !st.size.is_power_of_two() || st.size > q.max_size {
                return Err(invalid(format!("queue {i} has size {}, not a power of two up to {}", st.size, q.max_size)));
            }
            *q = Queue {
                max_size: q.max_size,
                size: st.size,
                ready: st.ready,
                desc: st.desc,
                avail: st.avail,
                used: st.used,
                next_avail: st.next_avail,
                next_used: st.next_used,
                signal: false,
            };
        }
        if s.status & !0xff != 0 || s.interrupt_status & !3 != 0 {
            return Err(invalid(format!("status {:#x} / interrupt status {:#x} has reserved bits", s.status, s.interrupt_status)));
        }
        if s.driver_features & !m.device_features() != 0 {
            return Err(invalid(format!("driver features {:#x} were never offered", s.driver_features)));
        }
        if s.status & (STATUS_FEATURES_OK | STATUS_DRIVER_OK) != 0 && s.driver_features & VIRTIO_F_VERSION_1 == 0 {
            return Err(invalid("features accepted without VIRTIO_F_VERSION_1".into()));
        }
        m.device_features_sel = s.device_features_sel;
        m.driver_features = s.driver_features;
        m.driver_features_sel = s.driver_features_sel;
        m.queue_sel = s.queue_sel;
        m.status = s.status;
        m.interrupt_status = s.interrupt_status;
        m.config_generation = s.config_generation;
        Ok(m)
    }
}
