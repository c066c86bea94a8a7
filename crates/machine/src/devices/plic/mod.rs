//! Platform-level interrupt controller, laid out like QEMU `virt`'s SiFive PLIC, for one hart with
//! two contexts: 0 = M-mode, 1 = S-mode.
//!
//! | offset                         | register                              |
//! |--------------------------------|---------------------------------------|
//! | `4 * irq`                      | priority of source `irq` (0..=7)      |
//! | `0x1000`                       | pending bits (read-only)              |
//! | `0x2000 + 0x80 * ctx`          | enable bits of context `ctx`          |
//! | `0x20_0000 + 0x1000 * ctx`     | priority threshold of context `ctx`   |
//! | `0x20_0004 + 0x1000 * ctx`     | claim (read) / complete (write)       |
//!
//! Sources are level-triggered: the gateway forwards a request (sets the pending bit) while the
//! line is high and the source is not claimed; a claim clears the pending bit and holds the source
//! until the context writes its id to the complete register, after which a line still high pends
//! again. That is what Linux's `irq-sifive-plic` driver (claim in the handler, complete at EOI)
//! expects.
mod device;
mod persist;

pub use device::{Plic, CONTEXTS, NUM_SOURCES};
pub use persist::PlicState;
