//! Test helpers shared by every crate's tests (a dev-dependency only; nothing here ships).
//!
//! * [`Scripted`]: a deterministic [`Environment`] whose input the test pushes between slices
//!   (keys, UART bytes, Ethernet frames, ...), idle time skipped to the next timer deadline, a fixed
//!   entropy stream, console and transmitted frames collected.
//! * [`guest_dir`], [`guest_file`], [`guest_config`]: the guest built by `guest/build.sh`, found in
//!   `$DOPPEL_GUEST_DIR`, else `$DOPPEL_CACHE/guest/current`, else `~/.cache/doppel/guest/current`.
//!   A missing guest fails the test with the command that builds it (tests never skip).

use std::collections::VecDeque;
use std::path::PathBuf;

use doppel_machine::{
    EnvError, Environment, IdleState, InputEvent, InstructionCount, MachineConfig, NullEnvironment, Output, Ticks,
};

/// A deterministic environment whose input the test pushes between slices. See the crate docs.
#[derive(Debug, Default)]
pub struct Scripted {
    /// Idle, entropy and output collection (console, transmitted frames).
    pub inner: NullEnvironment,
    /// Events delivered, one per `poll`, at the next slice start.
    pub queue: VecDeque<InputEvent>,
}

impl Scripted {
    /// Everything the guest wrote to its console so far, lossily decoded.
    pub fn console(&self) -> String {
        String::from_utf8_lossy(&self.inner.console).into_owned()
    }

    /// Queue events for the next slice start.
    pub fn push(&mut self, events: impl IntoIterator<Item = InputEvent>) {
        self.queue.extend(events);
    }
}

impl Environment for Scripted {
    fn poll(&mut self, _icount: InstructionCount) -> Result<Option<InputEvent>, EnvError> {
        Ok(self.queue.pop_front())
    }
    fn idle(&mut self, state: IdleState) -> Result<Ticks, EnvError> {
        self.inner.idle(state)
    }
    fn entropy(&mut self, icount: InstructionCount, buf: &mut [u8]) {
        self.inner.entropy(icount, buf);
    }
    fn output(&mut self, icount: InstructionCount, output: Output<'_>) {
        self.inner.output(icount, output);
    }
}

/// The directory holding the test guest (see the crate docs).
///
/// # Panics
/// When neither `DOPPEL_GUEST_DIR`, `DOPPEL_CACHE` nor `HOME` is set.
pub fn guest_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOPPEL_GUEST_DIR") {
        return PathBuf::from(dir);
    }
    std::env::var_os("DOPPEL_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/doppel")))
        .expect("DOPPEL_CACHE or HOME is set")
        .join("guest/current")
}

/// A file of the test guest (`Image`, `initramfs.cpio`, ...).
///
/// # Panics
/// When the file is missing: build the guest with `bash guest/build.sh`.
pub fn guest_file(name: &str) -> PathBuf {
    let path = guest_dir().join(name);
    assert!(path.is_file(), "{} is missing: build the guest with `bash guest/build.sh`", path.display());
    path
}

/// A Linux configuration for the test guest with `console=ttyS0 panic=-1 {cmdline}` and the
/// default RAM, framebuffer and devices.
///
/// # Panics
/// When the guest is missing or unreadable.
pub fn guest_config(cmdline: &str) -> MachineConfig {
    MachineConfig {
        kernel: std::fs::read(guest_file("Image")).expect("the guest kernel is readable"),
        initrd: Some(std::fs::read(guest_file("initramfs.cpio")).expect("the guest initramfs is readable")),
        cmdline: format!("console=ttyS0 panic=-1 {cmdline}"),
        ..MachineConfig::default()
    }
}
