//! virtio-rng (entropy source): each posted buffer is filled from
//! [`crate::Environment::entropy`] at the `QueueNotify` write, at most [`MAX_REQUEST`] bytes per
//! buffer. The device has no state of its own beyond its queue.
mod device;
mod persist;

pub use device::{Rng, MAX_REQUEST};
