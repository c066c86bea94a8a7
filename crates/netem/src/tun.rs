//! TUN devices: the one module of this crate with `unsafe` (a single `ioctl`).
//!
//! [`Tun::create`] opens `/dev/net/tun` non-blocking and attaches it to a new layer-3 device
//! (`IFF_TUN | IFF_NO_PI`): every read returns one IP packet the kernel routed to the device, and
//! every write injects one IP packet into the kernel as if it had arrived on it. The device exists
//! while the file is open. It may be moved to another network namespace
//! (`ip link set NAME netns NS`) and keeps working through the same file.
#![allow(unsafe_code)] // TUNSETIFF has no safe wrapper in std or libc.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use tokio::io::unix::AsyncFd;

/// Errors creating a TUN device.
#[derive(Debug, thiserror::Error)]
pub enum TunError {
    #[error("bad TUN device name `{name}`: use 1 to 15 letters, digits, `-` or `_`")]
    BadName { name: String },
    #[error(
        "cannot open /dev/net/tun (is the tun module loaded, and are we root or CAP_NET_ADMIN?)"
    )]
    Open { source: io::Error },
    #[error("cannot create TUN device `{name}` (does it exist already, and are we root?)")]
    Create { name: String, source: io::Error },
}

/// Longest interface name (IFNAMSIZ - 1).
const MAX_NAME: usize = 15;

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags, padded to the union's size.
#[repr(C)]
struct IfReq {
    name: [u8; MAX_NAME + 1],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// An open TUN device.
#[derive(Debug)]
pub struct Tun {
    file: File,
    name: String,
}

impl Tun {
    /// Creates the layer-3 TUN device `name` (no packet-info header) with a non-blocking file.
    pub fn create(name: &str) -> Result<Tun, TunError> {
        let valid = !name.is_empty()
            && name.len() <= MAX_NAME
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(TunError::BadName {
                name: name.to_owned(),
            });
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")
            .map_err(|source| TunError::Open { source })?;
        let mut req = IfReq {
            name: [0; MAX_NAME + 1],
            flags: 0,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        let flags = libc::IFF_TUN | libc::IFF_NO_PI;
        req.flags = libc::c_short::try_from(flags).map_err(|_| TunError::BadName {
            name: name.to_owned(),
        })?;
        // SAFETY: `file` is an open /dev/net/tun descriptor; TUNSETIFF reads and writes one
        // `struct ifreq`, and `req` is a properly sized (40 bytes), aligned, initialised
        // `#[repr(C)]` equivalent that lives across the call. The kernel writes back at most
        // IFNAMSIZ bytes of name, within the struct.
        let rc = unsafe {
            libc::ioctl(
                file.as_raw_fd(),
                libc::TUNSETIFF,
                std::ptr::addr_of_mut!(req),
            )
        };
        if rc < 0 {
            return Err(TunError::Create {
                name: name.to_owned(),
                source: io::Error::last_os_error(),
            });
        }
        let end = req
            .name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(req.name.len());
        let name = String::from_utf8_lossy(&req.name[..end]).into_owned();
        Ok(Tun { file, name })
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device's file (non-blocking): read for packets out of the kernel, write to inject.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Registers the device with the tokio event loop (must run inside a runtime).
    pub fn into_async(self) -> io::Result<AsyncTun> {
        // SAFETY: `AsyncFd::register` needs the descriptor to stay open and unreplaced while
        // registered: the `File` is owned by the `AsyncFd`, which deregisters before closing it.
        let fd = unsafe { AsyncFd::register(self.file)? };
        Ok(AsyncTun {
            fd,
            name: self.name,
        })
    }
}

/// A TUN device on the tokio event loop.
#[derive(Debug)]
pub struct AsyncTun {
    fd: AsyncFd<File>,
    name: String,
}

impl AsyncTun {
    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for one packet and reads it into `buf`; returns its length. Cancel-safe.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|f| f.get_ref().read(buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    /// Reads one packet if one is waiting (`WouldBlock` if none).
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.fd.get_ref().read(buf)
    }

    /// Injects one packet into the kernel.
    pub async fn send(&self, packet: &[u8]) -> io::Result<()> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|f| f.get_ref().write(packet)) {
                Ok(r) => return r.map(|_| ()),
                Err(_would_block) => continue,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ifreq_has_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<IfReq>(), 40);
        assert_eq!(std::mem::offset_of!(IfReq, flags), 16);
    }

    #[test]
    fn bad_names_are_refused_before_touching_the_kernel() {
        for name in ["", "a-name-that-is-too-long", "sp ace", "sl/ash"] {
            assert!(
                matches!(Tun::create(name), Err(TunError::BadName { .. })),
                "{name}"
            );
        }
    }
}
