//! Core-local interruptor (`sifive,clint0`) for the single hart: `msip`, `mtimecmp`, `mtime`.
//!
//! The CPU computes the machine timer interrupt itself, from guest time and [`Clint::mtimecmp`];
//! the software interrupt comes from [`Clint::msip`].
mod device;
mod persist;

pub use device::{Clint, MSIP_OFFSET, MTIMECMP_OFFSET, MTIME_OFFSET};
pub use persist::ClintState;
