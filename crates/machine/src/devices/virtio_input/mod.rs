//! virtio-input: a keyboard and an absolute tablet, as Linux's `virtio_input` driver reads them.
//!
//! Configuration space is the `virtio_input_config` window: the driver writes `select` and
//! `subsel`, then reads `size` and the union at offset 8 (`ID_NAME`, `ID_SERIAL`, `ID_DEVIDS`,
//! `PROP_BITS`, `EV_BITS` per event type, `ABS_INFO` per axis). The keyboard reports `EV_KEY` for
//! codes 1..=255 and `EV_REP`; the tablet reports `ABS_X`/`ABS_Y` in framebuffer pixels,
//! `BTN_LEFT`/`BTN_RIGHT`/`BTN_MIDDLE` and `REL_WHEEL`.
//!
//! Each input event becomes its evdev events followed by `SYN_REPORT`, written one per posted
//! 8-byte buffer of the event queue. Events wait in the device (at most [`MAX_PENDING`]) while no
//! buffer is posted; a report that does not fit is dropped whole and counted. The status queue
//! (LED state from the driver) is consumed and ignored.
mod device;
mod metrics;
mod persist;

pub use device::{Input, InputConfig, MAX_PENDING};
pub use metrics::InputMetrics;
pub use persist::InputState;
