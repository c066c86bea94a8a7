//! The deterministic RV64GC machine.
//!
//! A full-system RISC-V machine (M/S/U, Sv39) on a QEMU-`virt`-like platform whose every run is a
//! pure function of its configuration, its images and what enters through [`Environment`]. Guest
//! time derives from the exact instruction count; idle time passes by a warp the environment
//! decides. See `docs/ARCHITECTURE.md` for how the pieces fit.

pub mod boot;
pub mod bus;
pub mod cpu;
pub mod devices;
pub mod env;
pub mod fdt;
pub mod machine;
pub mod persist;
pub mod ram;
pub mod sbi;

pub use env::{
    EnvError, Environment, IdleState, InputEvent, InstructionCount, NullEnvironment, Output, Ticks,
};
pub use machine::{BootMode, Exit, Framebuffer, Machine, MachineConfig, MachineError, MachineState};
pub use devices::DevicesConfig;
pub use ram::{BackingError, GuestRam, RamBacking, PAGE_SHIFT, PAGE_SIZE};

/// Frequency of the guest's timebase (`mtime`, `time`), in ticks per second of guest time.
pub const TIMEBASE_HZ: u64 = 10_000_000;
