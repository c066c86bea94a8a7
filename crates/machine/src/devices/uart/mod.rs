//! 16550A UART (`ns16550a`), registers one byte apart (`reg-shift` 0).
//!
//! Transmission is instantaneous: a byte written to THR goes to [`crate::Output::Console`] at the
//! writing instruction, and THR is empty again at once (so the THRE interrupt re-arms, as on QEMU).
//! Received bytes come from [`crate::InputEvent::UartRx`] into a bounded buffer standing for the
//! receive FIFO plus the line; bytes beyond [`RX_CAPACITY`] are dropped and flag an overrun (LSR.OE).
mod device;
mod metrics;
mod persist;

pub use device::{Uart, RX_CAPACITY};
pub use metrics::UartMetrics;
pub use persist::UartState;
