//! Demand-paged guest RAM with userfaultfd (Firecracker-style): an anonymous private mapping
//! registered for missing-page faults. When the machine touches a page that is not there yet,
//! its thread sleeps in the kernel; a handler thread reads the fault, gets the page (cache or
//! network) and installs it with `UFFDIO_COPY` (or `UFFDIO_ZEROPAGE`), which wakes it.
//!
//! This is the crate's one `unsafe` module: raw `mmap`, the `userfaultfd` system call and its
//! ioctls have no safe wrapper in std or libc (nor has `SO_SNDBUF`, which the host sets here).

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use doppel_machine::RamBacking;

const PAGE: usize = 4096;

// From <linux/userfaultfd.h> (the ioctl numbers are _IOWR(0xAA, nr, struct) for x86-64 and
// every other 64-bit Linux target with the generic ioctl layout).
const UFFD_API: u64 = 0xAA;
const UFFDIO_API: libc::c_ulong = 0xC018_AA3F;
const UFFDIO_REGISTER: libc::c_ulong = 0xC020_AA00;
const UFFDIO_WAKE: libc::c_ulong = 0x8010_AA02;
const UFFDIO_COPY: libc::c_ulong = 0xC028_AA03;
const UFFDIO_ZEROPAGE: libc::c_ulong = 0xC020_AA04;
const UFFDIO_REGISTER_MODE_MISSING: u64 = 1;
const UFFD_EVENT_PAGEFAULT: u8 = 0x12;

#[repr(C)]
struct UffdioApi {
    api: u64,
    features: u64,
    ioctls: u64,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct UffdioRange {
    start: u64,
    len: u64,
}

#[repr(C)]
struct UffdioRegister {
    range: UffdioRange,
    mode: u64,
    ioctls: u64,
}

#[repr(C)]
struct UffdioCopy {
    dst: u64,
    src: u64,
    len: u64,
    mode: u64,
    copy: i64,
}

#[repr(C)]
struct UffdioZeropage {
    range: UffdioRange,
    mode: u64,
    zeropage: i64,
}

/// The anonymous mapping that backs guest RAM. Unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    addr: usize,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; which thread holds it does not matter.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Reserve `len` bytes (a multiple of 4 KiB) of anonymous memory, committed as touched.
    pub fn new(len: usize) -> io::Result<Mapping> {
        if len == 0 || !len.is_multiple_of(PAGE) {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "mapping size must be a non-zero multiple of 4096"));
        }
        // SAFETY: a fresh anonymous mapping at an address the kernel picks; no existing memory
        // is affected. The result is checked for MAP_FAILED.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping { addr: p as usize, len })
    }

    /// Start address.
    pub fn addr(&self) -> usize {
        self.addr
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the range `new` mapped; the machine that used it is gone (it
        // owned this value).
        unsafe {
            libc::munmap(self.addr as *mut libc::c_void, self.len);
        }
    }
}

// SAFETY: the pointer is the mapping's start, fixed for its life, valid for `len` bytes of
// reads and writes; only the machine references it (the fault handler fills pages through the
// kernel, never through references).
unsafe impl RamBacking for Mapping {
    fn as_mut_ptr(&mut self) -> *mut u8 {
        self.addr as *mut u8
    }
    fn len(&self) -> usize {
        self.len
    }
}

/// A userfaultfd registered over one mapping.
#[derive(Debug)]
pub struct Uffd {
    fd: OwnedFd,
    base: usize,
    len: usize,
}

/// What [`Uffd::install`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// The page was missing and now holds the data.
    Copied,
    /// The page was already there (installed by someone else first).
    Present,
}

impl Uffd {
    /// Open a userfaultfd and register `mapping` for missing-page faults.
    pub fn register(mapping: &Mapping) -> io::Result<Uffd> {
        // SAFETY: the userfaultfd system call takes flags and returns a new descriptor or -1.
        let raw = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        let raw = i32::try_from(raw).map_err(|_| io::Error::other("userfaultfd returned a bad descriptor"))?;
        // SAFETY: `raw` is a descriptor we just received and own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let mut api = UffdioApi { api: UFFD_API, features: 0, ioctls: 0 };
        // SAFETY: UFFDIO_API reads and writes one `uffdio_api`, which `api` is.
        if unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_API, &mut api) } < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut reg = UffdioRegister {
            range: UffdioRange { start: mapping.addr as u64, len: mapping.len as u64 },
            mode: UFFDIO_REGISTER_MODE_MISSING,
            ioctls: 0,
        };
        // SAFETY: UFFDIO_REGISTER reads and writes one `uffdio_register` over our own mapping.
        if unsafe { libc::ioctl(fd.as_raw_fd(), UFFDIO_REGISTER, &mut reg) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Uffd { fd, base: mapping.addr, len: mapping.len })
    }

    /// Wait up to `timeout_ms` for a page fault; returns the faulting page's index in the mapping.
    pub fn next_fault(&self, timeout_ms: i32) -> io::Result<Option<usize>> {
        let mut pfd = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: polls one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted { Ok(None) } else { Err(e) };
        }
        if n == 0 {
            return Ok(None);
        }
        let mut msg = [0u8; 32];
        // SAFETY: reads at most 32 bytes (one `uffd_msg`) into `msg`.
        let r = unsafe { libc::read(self.fd.as_raw_fd(), msg.as_mut_ptr().cast(), msg.len()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock { Ok(None) } else { Err(e) };
        }
        if r != 32 || msg[0] != UFFD_EVENT_PAGEFAULT {
            return Ok(None);
        }
        let mut a = [0u8; 8];
        a.copy_from_slice(&msg[16..24]);
        let addr = usize::try_from(u64::from_ne_bytes(a)).unwrap_or(usize::MAX);
        Ok(addr.checked_sub(self.base).filter(|&o| o < self.len).map(|o| o / PAGE))
    }

    /// Install page `index` with `data` (zeros when `None`) unless it is already there.
    pub fn install(&self, index: usize, data: Option<&[u8; PAGE]>) -> io::Result<Installed> {
        if index >= self.len / PAGE {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "page beyond the mapping"));
        }
        let dst = (self.base + index * PAGE) as u64;
        let r = match data {
            Some(data) => {
                let mut c = UffdioCopy { dst, src: data.as_ptr() as u64, len: PAGE as u64, mode: 0, copy: 0 };
                // SAFETY: copies 4096 bytes from `data` (alive for the call) into one page of our
                // registered mapping; the kernel checks the range.
                unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_COPY, &mut c) }
            }
            None => {
                let mut z = UffdioZeropage { range: UffdioRange { start: dst, len: PAGE as u64 }, mode: 0, zeropage: 0 };
                // SAFETY: maps the zero page at one page of our registered mapping.
                unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_ZEROPAGE, &mut z) }
            }
        };
        if r == 0 {
            return Ok(Installed::Copied);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EEXIST) {
            // Someone installed it first; make sure a thread waiting on it is woken.
            let mut range = UffdioRange { start: dst, len: PAGE as u64 };
            // SAFETY: UFFDIO_WAKE reads one `uffdio_range` inside our mapping.
            unsafe { libc::ioctl(self.fd.as_raw_fd(), UFFDIO_WAKE, &mut range) };
            return Ok(Installed::Present);
        }
        Err(e)
    }
}

/// `SO_SNDBUF` on a client socket (std has no setter).
pub fn set_send_buffer(socket: &std::net::TcpStream, bytes: usize) {
    use std::os::fd::AsRawFd;
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).unwrap_or(4);
    // SAFETY: setsockopt reads one c_int from `v` for a descriptor this socket owns.
    unsafe {
        libc::setsockopt(socket.as_raw_fd(), libc::SOL_SOCKET, libc::SO_SNDBUF, std::ptr::addr_of!(v).cast(), len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_is_served_by_another_thread_and_pages_install_once() {
        let mut map = Mapping::new(4 * PAGE).unwrap();
        let uffd = std::sync::Arc::new(Uffd::register(&map).unwrap());
        let u = uffd.clone();
        let handler = std::thread::spawn(move || {
            let mut served = Vec::new();
            while served.len() < 2 {
                if let Some(p) = u.next_fault(1000).unwrap() {
                    let data = [u8::try_from(p).unwrap() + 1; PAGE];
                    assert_eq!(u.install(p, Some(&data)).unwrap(), Installed::Copied);
                    served.push(p);
                }
            }
            served
        });
        let ptr = map.as_mut_ptr();
        // SAFETY: reads inside the 4-page mapping; the handler fills the pages.
        let (a, b) = unsafe { (ptr.add(2 * PAGE + 5).read_volatile(), ptr.add(PAGE).read_volatile()) };
        assert_eq!((a, b), (3, 2));
        assert_eq!(handler.join().unwrap(), vec![2, 1]);
        assert_eq!(uffd.install(2, None).unwrap(), Installed::Present);
        assert_eq!(uffd.install(3, None).unwrap(), Installed::Copied);
        // SAFETY: as above; page 3 is installed (zeros).
        assert_eq!(unsafe { ptr.add(3 * PAGE).read_volatile() }, 0);
    }
}
