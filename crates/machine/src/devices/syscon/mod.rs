//! `sifive,test0` power-off / reset register, as on QEMU's `virt` (`syscon-poweroff`).
mod device;
mod persist;

pub use device::{Syscon, FINISHER_FAIL, FINISHER_PASS, FINISHER_RESET};
