//! virtio-net: one receive and one transmit queue, MAC address and link status in config, no
//! offloads. Every buffer starts with the 12-byte `virtio_net_hdr_v1` (virtio 1.x always carries
//! `num_buffers`); received frames get an all-zero header with `num_buffers = 1`, transmitted
//! headers are ignored (no checksum or segmentation offload was offered, so there is nothing to do).
//!
//! Received frames ([`crate::InputEvent::NetRx`]) go into the next posted receive buffer at once.
//! With no buffer posted (or before the driver is ready) up to [`RX_BACKLOG`] frames wait in the
//! device, in order, and are delivered when the driver posts buffers; frames beyond that, frames
//! larger than [`MAX_FRAME`] and frames larger than the buffer they would go to are dropped and
//! counted ([`NetMetrics`]). Transmitted frames go to [`crate::Output::NetTx`] at the
//! `QueueNotify` write.
mod device;
mod metrics;
mod persist;

pub use device::{Net, HEADER_LEN, MAX_FRAME, RX_BACKLOG};
pub use metrics::NetMetrics;
pub use persist::NetState;
