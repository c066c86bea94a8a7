//! The virtio-mmio transport (version 2, modern devices only) and split virtqueues.
//!
//! One [`VirtioMmio`] per occupied slot of the bus (see [`crate::bus`]) wraps one backend
//! ([`VirtioBackend`]: block, net, input, rng). Devices finish their work synchronously during the
//! MMIO write of `QueueNotify` (or during [`crate::devices::Devices::inject`] for received input),
//! so every used-ring entry and every interrupt happens at an exact instruction count.
//!
//! A driver error found in a queue (bad address, looping chain, ...) puts the device in
//! `DEVICE_NEEDS_RESET` and raises a configuration-change interrupt; the device then ignores
//! notifications until the driver resets it.
pub(crate) mod backend;
mod device;
#[cfg(any(test, feature = "test-utils"))]
pub mod mock;
mod persist;
pub mod queue;

pub use backend::{DeviceKind, VirtioBackend, VirtioBackendState};
pub use device::{regs, VirtioMmio, STATUS_ACKNOWLEDGE, STATUS_DEVICE_NEEDS_RESET, STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FAILED, STATUS_FEATURES_OK, VIRTIO_F_VERSION_1};
pub use persist::{QueueState, VirtioMmioState};
pub use queue::{Chain, ChainCursor, Desc, Queue, QueueError, MAX_QUEUE_SIZE};
