//! The driver side of a virtqueue, played in guest RAM, for tests (here and, through the
//! `test-utils` feature, in other crates), the way virtio-queue's `mock.rs` does it.

use super::device::{regs, VirtioMmio, STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FEATURES_OK};
use crate::bus::MmioCtx;
use crate::ram::GuestRam;

pub const F_NEXT: u16 = 1;
pub const F_WRITE: u16 = 2;
pub const F_INDIRECT: u16 = 4;

/// One queue's rings laid out in RAM, with the driver's bookkeeping.
#[derive(Debug, Clone)]
pub struct MockQueue {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    next_desc: u16,
    avail_idx: u16,
    used_seen: u16,
}

impl MockQueue {
    /// Rings for a queue of `size` entries from `base` (16-byte aligned); they end before
    /// `base + MockQueue::footprint(size)`.
    pub fn new(ram: &mut GuestRam, base: u64, size: u16) -> Self {
        let n = u64::from(size);
        let desc = base;
        let avail = desc + 16 * n;
        let used = (avail + 6 + 2 * n).next_multiple_of(4);
        let q = MockQueue { size, desc, avail, used, next_desc: 0, avail_idx: 0, used_seen: 0 };
        let _ = ram.write(base, &vec![0; usize::try_from(Self::footprint(size)).unwrap_or(0)]);
        q
    }

    /// Bytes of RAM the rings take.
    pub fn footprint(size: u16) -> u64 {
        let n = u64::from(size);
        (16 * n + 6 + 2 * n).next_multiple_of(4) + 6 + 8 * n
    }

    /// Write descriptor `index` verbatim (for malformed chains).
    pub fn write_desc(&self, ram: &mut GuestRam, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut raw = [0u8; 16];
        raw[0..8].copy_from_slice(&addr.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..16].copy_from_slice(&next.to_le_bytes());
        let _ = ram.write(self.desc + 16 * u64::from(index), &raw);
    }

    /// Put a chain of buffers `(addr, len, device_writable)` into the descriptor table and make
    /// it available. Returns its head.
    pub fn add_chain(&mut self, ram: &mut GuestRam, bufs: &[(u64, u32, bool)]) -> u16 {
        let head = self.next_desc;
        for (i, &(addr, len, writable)) in bufs.iter().enumerate() {
            let index = (self.next_desc) % self.size;
            let last = i + 1 == bufs.len();
            let next = (index + 1) % self.size;
            let flags = if writable { F_WRITE } else { 0 } | if last { 0 } else { F_NEXT };
            self.write_desc(ram, index, addr, len, flags, next);
            self.next_desc = next;
        }
        self.publish(ram, head);
        head
    }

    /// Make chain `head` available.
    pub fn publish(&mut self, ram: &mut GuestRam, head: u16) {
        let slot = u64::from(self.avail_idx % self.size);
        let _ = ram.write(self.avail + 4 + 2 * slot, &head.to_le_bytes());
        self.avail_idx = self.avail_idx.wrapping_add(1);
        let _ = ram.write(self.avail + 2, &self.avail_idx.to_le_bytes());
    }

    /// Set the available ring's index directly (for malformed rings).
    pub fn set_avail_idx(&mut self, ram: &mut GuestRam, idx: u16) {
        self.avail_idx = idx;
        let _ = ram.write(self.avail + 2, &idx.to_le_bytes());
    }

    /// Set `avail.flags` (1 = no interrupt, please).
    pub fn set_avail_flags(&self, ram: &mut GuestRam, flags: u16) {
        let _ = ram.write(self.avail, &flags.to_le_bytes());
    }

    /// Used entries `(id, len)` added since the last call.
    pub fn take_used(&mut self, ram: &GuestRam) -> Vec<(u32, u32)> {
        let mut b = [0u8; 2];
        let _ = ram.read(self.used + 2, &mut b);
        let idx = u16::from_le_bytes(b);
        let mut out = Vec::new();
        while self.used_seen != idx {
            let slot = u64::from(self.used_seen % self.size);
            let mut e = [0u8; 8];
            let _ = ram.read(self.used + 4 + 8 * slot, &mut e);
            out.push((
                u32::from_le_bytes([e[0], e[1], e[2], e[3]]),
                u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
            ));
            self.used_seen = self.used_seen.wrapping_add(1);
        }
        out
    }
}

fn w(dev: &mut VirtioMmio, ram: &mut GuestRam, ctx: &mut MmioCtx<'_>, reg: u64, v: u32) {
    let _ = dev.write(reg, 4, u64::from(v), ram, ctx);
}

fn r(dev: &mut VirtioMmio, reg: u64) -> u32 {
    dev.read(reg, 4).map_or(0, |v| (v & 0xffff_ffff) as u32)
}

/// Initialise `dev` the way Linux's virtio-mmio driver does: reset, ACKNOWLEDGE, DRIVER, accept
/// `features` (which should include VIRTIO_F_VERSION_1), FEATURES_OK, set up `queues` (queue i
/// from `queues[i]`), DRIVER_OK. Returns the status read back.
pub fn activate(
    dev: &mut VirtioMmio,
    ram: &mut GuestRam,
    ctx: &mut MmioCtx<'_>,
    features: u64,
    queues: &[&MockQueue],
) -> u32 {
    w(dev, ram, ctx, regs::STATUS, 0);
    w(dev, ram, ctx, regs::STATUS, STATUS_ACKNOWLEDGE);
    w(dev, ram, ctx, regs::STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
    for sel in 0..2u32 {
        w(dev, ram, ctx, regs::DRIVER_FEATURES_SEL, sel);
        w(dev, ram, ctx, regs::DRIVER_FEATURES, ((features >> (32 * sel)) & 0xffff_ffff) as u32);
    }
    w(dev, ram, ctx, regs::STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
    if r(dev, regs::STATUS) & STATUS_FEATURES_OK == 0 {
        return r(dev, regs::STATUS);
    }
    for (i, q) in (0u32..).zip(queues) {
        w(dev, ram, ctx, regs::QUEUE_SEL, i);
        w(dev, ram, ctx, regs::QUEUE_NUM, u32::from(q.size));
        for (reg, addr) in [(regs::QUEUE_DESC_LOW, q.desc), (regs::QUEUE_DRIVER_LOW, q.avail), (regs::QUEUE_DEVICE_LOW, q.used)] {
            w(dev, ram, ctx, reg, (addr & 0xffff_ffff) as u32);
            w(dev, ram, ctx, reg + 4, (addr >> 32) as u32);
        }
        w(dev, ram, ctx, regs::QUEUE_READY, 1);
    }
    w(dev, ram, ctx, regs::STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
    r(dev, regs::STATUS)
}

/// Notify queue `index`.
pub fn notify(dev: &mut VirtioMmio, ram: &mut GuestRam, ctx: &mut MmioCtx<'_>, index: u32) {
    w(dev, ram, ctx, regs::QUEUE_NOTIFY, index);
}

/// Read and acknowledge the interrupt status.
pub fn ack(dev: &mut VirtioMmio, ram: &mut GuestRam, ctx: &mut MmioCtx<'_>) -> u32 {
    let s = r(dev, regs::INTERRUPT_STATUS);
    w(dev, ram, ctx, regs::INTERRUPT_ACK, s);
    s
}
