//! virtio-blk: a read-only base image behind [`DiskBase`] and a copy-on-write overlay.
//!
//! The guest sees `base.len() / 512` sectors. Writes never reach the base: they land in the
//! [`Overlay`], sparse 4 KiB pages held by the device and saved in its snapshot state, so the disk a
//! guest sees is a pure function of the base and the machine's state. Reads take each page from
//! the overlay if it is there, else from the base. Requests are served synchronously during the
//! `QueueNotify` write. Supported: `IN`, `OUT`, `FLUSH` (a no-op: nothing is cached) and `GET_ID`;
//! others complete with `UNSUPP`; out-of-range or misaligned requests complete with `IOERR`.
mod device;
mod metrics;
mod disk;
mod persist;

pub use device::{Block, SECTOR_SIZE};
pub use metrics::BlockMetrics;
pub use disk::{DiskBase, DiskError, EnvDisk, MemDisk, Overlay, OVERLAY_PAGE};
pub use persist::BlockState;
