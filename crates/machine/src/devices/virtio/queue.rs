//! Split virtqueues (virtio 1.x §2.7): the descriptor table, the available ring the driver fills,
//! the used ring the device fills, all in guest RAM and all untrusted.
//!
//! Every index, length and address the guest supplies is checked before use: ring and descriptor
//! ranges must lie in RAM, a chain may hold at most `size` descriptors (so a loop is caught at the
//! first repeat beyond that bound), writable descriptors must follow the readable ones, and
//! indirect descriptors (not offered) are refused. A violation is a [`QueueError`]; the transport
//! then puts the device into `DEVICE_NEEDS_RESET`. Nothing here panics or loops unboundedly.

use crate::ram::GuestRam;

const VIRTQ_DESC_F_NEXT: u16 = 1;
const VIRTQ_DESC_F_WRITE: u16 = 2;
const VIRTQ_DESC_F_INDIRECT: u16 = 4;
/// `avail.flags` bit by which the driver asks not to be interrupted.
const VIRTQ_AVAIL_F_NO_INTERRUPT: u16 = 1;

/// Largest queue size any device here offers.
pub const MAX_QUEUE_SIZE: u16 = 256;

/// A driver error in a virtqueue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueError {
    #[error("queue size {size} is not a power of two in 1..={max}")]
    BadSize { size: u16, max: u16 },
    #[error("{ring} at {addr:#x} is misaligned or not in RAM")]
    RingOutOfRam { ring: &'static str, addr: u64 },
    #[error("available index jumped from {next_avail} to {avail_idx}, more than the queue size {size}")]
    AvailJump { next_avail: u16, avail_idx: u16, size: u16 },
    #[error("chain head {head} is outside the queue of size {size}")]
    HeadOutOfRange { head: u16, size: u16 },
    #[error("descriptor {index} links to {next}, outside the queue of size {size}")]
    NextOutOfRange { index: u16, next: u16, size: u16 },
    #[error("chain starting at {head} is longer than the queue size {size} (a loop)")]
    ChainTooLong { head: u16, size: u16 },
    #[error("descriptor {index}: buffer {addr:#x}+{len:#x} is not in RAM")]
    BufferOutOfRam { index: u16, addr: u64, len: u32 },
    #[error("descriptor {index} is indirect, which was not negotiated")]
    Indirect { index: u16 },
    #[error("descriptor {index} is device-readable after a device-writable one")]
    ReadableAfterWritable { index: u16 },
}

/// One buffer of a chain, already checked to lie in RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub writable: bool,
}

/// A descriptor chain popped from the available ring. Zero-length descriptors are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub head: u16,
    pub descs: Vec<Desc>,
}

impl Chain {
    /// Total bytes the device may read.
    pub fn readable_len(&self) -> u64 {
        self.descs.iter().filter(|d| !d.writable).map(|d| u64::from(d.len)).sum()
    }

    /// Total bytes the device may write.
    pub fn writable_len(&self) -> u64 {
        self.descs.iter().filter(|d| d.writable).map(|d| u64::from(d.len)).sum()
    }

    /// A cursor over the device-readable part.
    pub fn reader(&self) -> ChainCursor<'_> {
        ChainCursor::new(&self.descs, false)
    }

    /// A cursor over the device-writable part.
    pub fn writer(&self) -> ChainCursor<'_> {
        ChainCursor::new(&self.descs, true)
    }
}

/// Reads from the readable or writes to the writable buffers of a chain, in order.
#[derive(Debug)]
pub struct ChainCursor<'a> {
    descs: Vec<&'a Desc>,
    idx: usize,
    off: u32,
    /// Bytes moved so far.
    pub done: u64,
}

impl<'a> ChainCursor<'a> {
    fn new(descs: &'a [Desc], writable: bool) -> Self {
        ChainCursor { descs: descs.iter().filter(|d| d.writable == writable).collect(), idx: 0, off: 0, done: 0 }
    }

    /// Bytes left.
    pub fn remaining(&self) -> u64 {
        let rest: u64 = self.descs.iter().skip(self.idx).map(|d| u64::from(d.len)).sum();
        rest - u64::from(self.off)
    }

    /// Walk the next `want` bytes as (guest address, length) pieces.
    fn advance(&mut self, want: usize, mut f: impl FnMut(u64, usize, usize)) -> usize {
        let mut moved = 0;
        while moved < want {
            let Some(d) = self.descs.get(self.idx) else { break };
            let avail = (d.len - self.off) as usize;
            let n = avail.min(want - moved);
            f(d.addr + u64::from(self.off), moved, n);
            moved += n;
            // n <= avail <= d.len, a u32.
            self.off += u32::try_from(n).unwrap_or(u32::MAX);
            if self.off == d.len {
                self.idx += 1;
                self.off = 0;
            }
        }
        self.done += moved as u64;
        moved
    }

    /// Copy readable bytes into `buf`; returns how many were available.
    pub fn read(&mut self, ram: &GuestRam, buf: &mut [u8]) -> usize {
        let len = buf.len();
        self.advance(len, |addr, at, n| {
            // Ranges were checked when the chain was parsed.
            if ram.read(addr, &mut buf[at..at + n]).is_none() {
                buf[at..at + n].fill(0);
            }
        })
    }

    /// Copy `data` into writable buffers (marking pages dirty); returns how much fitted.
    pub fn write(&mut self, ram: &mut GuestRam, data: &[u8]) -> usize {
        self.advance(data.len(), |addr, at, n| {
            let _ = ram.write(addr, &data[at..at + n]);
        })
    }

    /// Skip `n` bytes.
    pub fn skip(&mut self, n: usize) -> usize {
        self.advance(n, |_, _, _| {})
    }
}

/// One split virtqueue's registers and device-side indices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    pub max_size: u16,
    pub size: u16,
    pub ready: bool,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    pub next_avail: u16,
    pub next_used: u16,
    /// A used entry was added since the transport last looked.
    pub(crate) signal: bool,
}

fn read_u16(ram: &GuestRam, addr: u64, ring: &'static str) -> Result<u16, QueueError> {
    let mut b = [0; 2];
    ram.read(addr, &mut b).ok_or(QueueError::RingOutOfRam { ring, addr })?;
    Ok(u16::from_le_bytes(b))
}

impl Queue {
    pub fn new(max_size: u16) -> Self {
        Queue { max_size, size: max_size, ready: false, desc: 0, avail: 0, used: 0, next_avail: 0, next_used: 0, signal: false }
    }

    /// Back to the reset state.
    pub fn reset(&mut self) {
        *self = Queue::new(self.max_size);
    }

    /// Check size, alignment and that the three rings lie in RAM.
    pub fn validate(&self, ram: &GuestRam) -> Result<(), QueueError> {
        if self.size == 0 || !self.size.is_power_of_two() || self.size > self.max_size {
            return Err(QueueError::BadSize { size: self.size, max: self.max_size });
        }
        let n = usize::from(self.size);
        for (ring, addr, align, len) in [
            ("descriptor table", self.desc, 16, 16 * n),
            ("available ring", self.avail, 2, 6 + 2 * n),
            ("used ring", self.used, 4, 6 + 8 * n),
        ] {
            if addr % align != 0 || ram.offset_of(addr, len).is_none() {
                return Err(QueueError::RingOutOfRam { ring, addr });
            }
        }
        Ok(())
    }

    /// Parse the chain starting at descriptor `head`.
    pub fn read_chain(&self, ram: &GuestRam, head: u16) -> Result<Chain, QueueError> {
        let size = self.size;
        if head >= size {
            return Err(QueueError::HeadOutOfRange { head, size });
        }
        let mut descs = Vec::new();
        let mut index = head;
        let mut seen_writable = false;
        for _ in 0..size {
            let addr = self.desc + 16 * u64::from(index);
            let mut raw = [0u8; 16];
            ram.read(addr, &mut raw).ok_or(QueueError::RingOutOfRam { ring: "descriptor table", addr })?;
            let d_addr = u64::from_le_bytes(raw[0..8].try_into().unwrap_or_default());
            let len = u32::from_le_bytes(raw[8..12].try_into().unwrap_or_default());
            let flags = u16::from_le_bytes([raw[12], raw[13]]);
            let next = u16::from_le_bytes([raw[14], raw[15]]);
            if flags & VIRTQ_DESC_F_INDIRECT != 0 {
                return Err(QueueError::Indirect { index });
            }
            let writable = flags & VIRTQ_DESC_F_WRITE != 0;
            if writable {
                seen_writable = true;
            } else if seen_writable {
                return Err(QueueError::ReadableAfterWritable { index });
            }
            if len > 0 {
                if ram.offset_of(d_addr, len as usize).is_none() {
                    return Err(QueueError::BufferOutOfRam { index, addr: d_addr, len });
                }
                descs.push(Desc { addr: d_addr, len, writable });
            }
            if flags & VIRTQ_DESC_F_NEXT == 0 {
                return Ok(Chain { head, descs });
            }
            if next >= size {
                return Err(QueueError::NextOutOfRange { index, next, size });
            }
            index = next;
        }
        Err(QueueError::ChainTooLong { head, size })
    }

    /// The next available chain, if the driver posted one.
    pub fn pop(&mut self, ram: &GuestRam) -> Result<Option<Chain>, QueueError> {
        if !self.ready {
            return Ok(None);
        }
        self.validate(ram)?;
        let avail_idx = read_u16(ram, self.avail + 2, "available ring")?;
        let pending = avail_idx.wrapping_sub(self.next_avail);
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.size {
            return Err(QueueError::AvailJump { next_avail: self.next_avail, avail_idx, size: self.size });
        }
        let slot = u64::from(self.next_avail % self.size);
        let head = read_u16(ram, self.avail + 4 + 2 * slot, "available ring")?;
        let chain = self.read_chain(ram, head)?;
        self.next_avail = self.next_avail.wrapping_add(1);
        Ok(Some(chain))
    }

    /// Give the last popped chain back (it stays available for the next pop).
    pub fn undo_pop(&mut self) {
        self.next_avail = self.next_avail.wrapping_sub(1);
    }

    /// Return chain `head` to the driver with `len` bytes written.
    pub fn add_used(&mut self, ram: &mut GuestRam, head: u16, len: u32) -> Result<(), QueueError> {
        self.validate(ram)?;
        let slot = u64::from(self.next_used % self.size);
        let mut elem = [0u8; 8];
        elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        let addr = self.used + 4 + 8 * slot;
        ram.write(addr, &elem).ok_or(QueueError::RingOutOfRam { ring: "used ring", addr })?;
        self.next_used = self.next_used.wrapping_add(1);
        let addr = self.used + 2;
        ram.write(addr, &self.next_used.to_le_bytes()).ok_or(QueueError::RingOutOfRam { ring: "used ring", addr })?;
        self.signal = true;
        Ok(())
    }

    /// Whether the driver wants an interrupt for new used entries (`VIRTQ_AVAIL_F_NO_INTERRUPT`
    /// clear). Unreadable flags count as wanting one.
    pub fn wants_interrupt(&self, ram: &GuestRam) -> bool {
        read_u16(ram, self.avail, "available ring").map_or(true, |f| f & VIRTQ_AVAIL_F_NO_INTERRUPT == 0)
    }
}

/// Parse every chain a driver could have posted in `ram` for a queue laid out at the given
/// addresses: the entry point of the fuzz target and of the deterministic robustness test.
/// Returns how many chains parsed; never panics, always terminates.
pub fn parse_all(ram: &mut GuestRam, size: u16, desc: u64, avail: u64, used: u64) -> usize {
    let mut q = Queue::new(MAX_QUEUE_SIZE);
    q.size = size;
    q.desc = desc;
    q.avail = avail;
    q.used = used;
    q.ready = true;
    let mut ok = 0;
    for _ in 0..=usize::from(size) {
        match q.pop(ram) {
            Ok(Some(chain)) => {
                ok += 1;
                let mut w = chain.writer();
                let mut r = chain.reader();
                let mut buf = [0u8; 64];
                while r.read(ram, &mut buf) == buf.len() {}
                let _ = w.write(ram, &[0xa5; 100]);
                let _ = q.add_used(ram, chain.head, 1);
            }
            Ok(None) | Err(_) => break,
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAM: u64 = 0x8000_0000;

    /// The fuzz target's input layout (see `fuzz/fuzz_targets/virtqueue_chain.rs`), unshifted.
    fn run_seed(seed: &[u8]) -> usize {
        let mut ram = GuestRam::new(RAM, 64 * 1024);
        ram.write(RAM, &seed[2..]).unwrap();
        parse_all(&mut ram, 1 << (seed[0] % 9), RAM, RAM + 0x1000, RAM + 0x2000)
    }

    #[test]
    fn fuzz_seed_corpus_parses_as_intended() {
        let dir = "fuzz/corpus/virtqueue_chain/";
        let seed = |name: &str| -> Vec<u8> {
            #[allow(clippy::disallowed_methods)] // test-only: the fuzz seeds live in files
            std::fs::read(format!("{}/{dir}{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
        };
        assert_eq!(run_seed(&seed("valid_two_chains")), 2);
        for broken in ["loop", "out_of_ram", "avail_jump", "indirect"] {
            assert_eq!(run_seed(&seed(broken)), 0, "{broken}");
        }
    }

    #[test]
    fn chain_cursors_split_reads_and_writes_across_buffers() {
        let mut ram = GuestRam::new(RAM, 64 * 1024);
        ram.write(RAM + 0x100, b"abc").unwrap();
        ram.write(RAM + 0x200, b"defgh").unwrap();
        let chain = Chain {
            head: 0,
            descs: vec![
                Desc { addr: RAM + 0x100, len: 3, writable: false },
                Desc { addr: RAM + 0x200, len: 5, writable: false },
                Desc { addr: RAM + 0x300, len: 2, writable: true },
                Desc { addr: RAM + 0x400, len: 4, writable: true },
            ],
        };
        assert_eq!((chain.readable_len(), chain.writable_len()), (8, 6));
        let mut r = chain.reader();
        let mut buf = [0u8; 6];
        assert_eq!(r.read(&ram, &mut buf), 6);
        assert_eq!(&buf, b"abcdef");
        assert_eq!(r.remaining(), 2);
        assert_eq!(r.read(&ram, &mut buf), 2);
        let mut w = chain.writer();
        assert_eq!(w.write(&mut ram, b"0123456789"), 6, "only what fits");
        let mut out = [0u8; 4];
        ram.read(RAM + 0x400, &mut out).unwrap();
        assert_eq!(&out, b"2345");
    }
}
