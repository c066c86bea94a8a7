use super::disk::{DiskBase, DiskError, Overlay, OVERLAY_PAGE};
use super::metrics::BlockMetrics;
use crate::bus::MmioCtx;
use crate::devices::virtio::backend::read_config_bytes;
use crate::devices::virtio::{Chain, Queue, QueueError};
use crate::ram::GuestRam;

/// Bytes per sector, the unit of the request header's `sector` field and of `capacity`.
pub const SECTOR_SIZE: u64 = 512;

const VIRTIO_BLK_F_SEG_MAX: u64 = 1 << 2;
const VIRTIO_BLK_F_BLK_SIZE: u64 = 1 << 6;
const VIRTIO_BLK_F_FLUSH: u64 = 1 << 9;

const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;

const S_OK: u8 = 0;
const S_IOERR: u8 = 1;
const S_UNSUPP: u8 = 2;

const QUEUE_SIZE: u16 = 128;
/// The serial number returned by `GET_ID` (at most 20 bytes).
const DISK_ID: &[u8] = b"doppel-disk";


/// The block device: a read-only base plus the overlay.
pub struct Block {
    pub(super) base: Box<dyn DiskBase>,
    pub(super) overlay: Overlay,
    pub(super) metrics: BlockMetrics,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("base_len", &self.base.len())
            .field("overlay_pages", &self.overlay.len())
            .finish()
    }
}

impl Block {
    pub fn new(base: Box<dyn DiskBase>) -> Self {
        Block { base, overlay: Overlay::default(), metrics: BlockMetrics::default() }
    }

    /// Give the base back (for rebuilding the device from a snapshot).
    pub fn into_base(self) -> Box<dyn DiskBase> {
        self.base
    }

    /// What the guest wrote.
    pub fn overlay(&self) -> &Overlay {
        &self.overlay
    }

    pub fn metrics(&self) -> BlockMetrics {
        self.metrics
    }

    /// Size the guest sees, in sectors.
    pub fn capacity(&self) -> u64 {
        self.base.len() / SECTOR_SIZE
    }

    /// Bytes the guest can address.
    fn disk_len(&self) -> u64 {
        self.capacity() * SECTOR_SIZE
    }

    pub fn features(&self) -> u64 {
        VIRTIO_BLK_F_FLUSH | VIRTIO_BLK_F_SEG_MAX | VIRTIO_BLK_F_BLK_SIZE
    }

    pub fn queue_sizes(&self) -> &'static [u16] {
        &[QUEUE_SIZE]
    }

    fn config(&self) -> [u8; 24] {
        let mut c = [0u8; 24];
        c[0..8].copy_from_slice(&self.capacity().to_le_bytes());
        // size_max (8) unused without VIRTIO_BLK_F_SIZE_MAX; seg_max: a chain holds the header
        // and status besides the segments.
        c[12..16].copy_from_slice(&u32::from(QUEUE_SIZE - 2).to_le_bytes());
        // geometry (16..20) unused; blk_size:
        c[20..24].copy_from_slice(&(u32::try_from(SECTOR_SIZE).unwrap_or(512)).to_le_bytes());
        c
    }

    pub fn read_config(&self, offset: u64, buf: &mut [u8]) {
        read_config_bytes(&self.config(), offset, buf);
    }

    pub fn write_config(&mut self, _offset: u64, _data: &[u8]) {}

    pub fn reset(&mut self) {}

    /// Read the disk as the guest sees it (overlay over base). `offset + buf.len()` must lie
    /// within the disk.
    pub fn read_disk(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.read_disk_in(offset, buf, None)
    }

    /// Read from the base: through the environment when it serves the base (`ctx` given),
    /// else from the base image.
    fn read_base(&mut self, pos: u64, buf: &mut [u8], ctx: Option<&mut MmioCtx<'_>>) -> Result<(), DiskError> {
        match ctx {
            Some(ctx) if self.base.served_by_environment() => ctx
                .env
                .disk_read(ctx.icount, pos, buf)
                .map_err(|e| DiskError::Environment { offset: pos, len: buf.len(), reason: e.to_string() }),
            _ => self.base.read_at(pos, buf),
        }
    }

    fn read_disk_in(&mut self, offset: u64, buf: &mut [u8], mut ctx: Option<&mut MmioCtx<'_>>) -> Result<(), DiskError> {
        let len = self.disk_len();
        if offset.checked_add(buf.len() as u64).is_none_or(|end| end > len) {
            return Err(DiskError::OutOfRange { offset, len: buf.len(), size: len });
        }
        let mut done = 0;
        while done < buf.len() {
            let pos = offset + done as u64;
            let page = pos / OVERLAY_PAGE as u64;
            let in_page = usize::try_from(pos % OVERLAY_PAGE as u64).unwrap_or(0); // < OVERLAY_PAGE
            let n = (OVERLAY_PAGE - in_page).min(buf.len() - done);
            match self.overlay.pages.get(&page) {
                Some(p) => buf[done..done + n].copy_from_slice(&p[in_page..in_page + n]),
                None => self.read_base(pos, &mut buf[done..done + n], ctx.as_deref_mut())?,
            }
            done += n;
        }
        Ok(())
    }

    /// Write `data` at `offset` into the overlay, copying each page from the base first.
    pub fn write_disk(&mut self, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        self.write_disk_in(offset, data, None)
    }

    fn write_disk_in(&mut self, offset: u64, data: &[u8], mut ctx: Option<&mut MmioCtx<'_>>) -> Result<(), DiskError> {
        let len = self.disk_len();
        if offset.checked_add(data.len() as u64).is_none_or(|end| end > len) {
            return Err(DiskError::OutOfRange { offset, len: data.len(), size: len });
        }
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done as u64;
            let page = pos / OVERLAY_PAGE as u64;
            let in_page = usize::try_from(pos % OVERLAY_PAGE as u64).unwrap_or(0); // < OVERLAY_PAGE
            let n = (OVERLAY_PAGE - in_page).min(data.len() - done);
            if !self.overlay.pages.contains_key(&page) {
                let mut fresh = vec![0u8; OVERLAY_PAGE].into_boxed_slice();
                let start = page * OVERLAY_PAGE as u64;
                // The last page may extend past the image; beyond it stays zero.
                let from_base = usize::try_from(self.base.len() - start).map_or(OVERLAY_PAGE, |l| l.min(OVERLAY_PAGE));
                if n < OVERLAY_PAGE {
                    self.read_base(start, &mut fresh[..from_base], ctx.as_deref_mut())?;
                }
                self.overlay.pages.insert(page, fresh);
            }
            if let Some(p) = self.overlay.pages.get_mut(&page) {
                p[in_page..in_page + n].copy_from_slice(&data[done..done + n]);
            }
            done += n;
        }
        Ok(())
    }

    pub fn notify(
        &mut self,
        _index: usize,
        queues: &mut [Queue],
        ram: &mut GuestRam,
        ctx: &mut MmioCtx<'_>,
    ) -> Result<(), QueueError> {
        let Some(q) = queues.first_mut() else { return Ok(()) };
        while let Some(chain) = q.pop(ram)? {
            let written = self.serve(&chain, ram, ctx);
            q.add_used(ram, chain.head, written)?;
        }
        Ok(())
    }

    /// Serve one request; returns the bytes written into the chain.
    fn serve(&mut self, chain: &Chain, ram: &mut GuestRam, ctx: &mut MmioCtx<'_>) -> u32 {
        let writable = chain.writable_len();
        if writable == 0 {
            // No room for a status: nothing can be reported; hand the chain back.
            self.metrics.dropped += 1;
            return 0;
        }
        let mut reader = chain.reader();
        let mut writer = chain.writer();
        let mut header = [0u8; 16];
        let status = if reader.read(ram, &mut header) < header.len() {
            S_IOERR
        } else {
            let kind = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
            let sector = u64::from_le_bytes(header[8..16].try_into().unwrap_or_default());
            match kind {
                T_IN => {
                    self.metrics.reads += 1;
                    self.transfer_in(sector, writable - 1, &mut writer, ram, ctx)
                }
                T_OUT => {
                    self.metrics.writes += 1;
                    let len = reader.remaining();
                    self.transfer_out(sector, len, &mut reader, ram, ctx)
                }
                T_FLUSH => {
                    self.metrics.flushes += 1;
                    S_OK
                }
                T_GET_ID => {
                    let mut id = [0u8; 20];
                    id[..DISK_ID.len()].copy_from_slice(DISK_ID);
                    let n = usize::try_from(writable - 1).map_or(20, |w| w.min(20));
                    writer.write(ram, &id[..n]);
                    S_OK
                }
                _ => S_UNSUPP,
            }
        };
        if status == S_IOERR {
            self.metrics.errors += 1;
        }
        // The status is the last writable byte.
        let skip = writable - 1 - writer.done;
        let _ = writer.skip(usize::try_from(skip).unwrap_or(usize::MAX));
        writer.write(ram, &[status]);
        // Bytes written: data (for IN / GET_ID) plus the status.
        u32::try_from(writer.done - skip).unwrap_or(u32::MAX)
    }

    fn range(&self, sector: u64, len: u64) -> Option<u64> {
        if !len.is_multiple_of(SECTOR_SIZE) {
            return None;
        }
        let offset = sector.checked_mul(SECTOR_SIZE)?;
        (offset.checked_add(len)? <= self.disk_len()).then_some(offset)
    }

    fn transfer_in(
        &mut self,
        sector: u64,
        len: u64,
        writer: &mut crate::devices::virtio::ChainCursor<'_>,
        ram: &mut GuestRam,
        ctx: &mut MmioCtx<'_>,
    ) -> u8 {
        let Some(mut offset) = self.range(sector, len) else { return S_IOERR };
        let mut buf = [0u8; OVERLAY_PAGE];
        let mut left = len;
        while left > 0 {
            let n = usize::try_from(left).map_or(OVERLAY_PAGE, |l| l.min(OVERLAY_PAGE));
            if self.read_disk_in(offset, &mut buf[..n], Some(ctx)).is_err() {
                return S_IOERR;
            }
            writer.write(ram, &buf[..n]);
            offset += n as u64;
            left -= n as u64;
        }
        S_OK
    }

    fn transfer_out(
        &mut self,
        sector: u64,
        len: u64,
        reader: &mut crate::devices::virtio::ChainCursor<'_>,
        ram: &GuestRam,
        ctx: &mut MmioCtx<'_>,
    ) -> u8 {
        let Some(mut offset) = self.range(sector, len) else { return S_IOERR };
        let mut buf = [0u8; OVERLAY_PAGE];
        let mut left = len;
        while left > 0 {
            let n = usize::try_from(left).map_or(OVERLAY_PAGE, |l| l.min(OVERLAY_PAGE));
            reader.read(ram, &mut buf[..n]);
            if self.write_disk_in(offset, &buf[..n], Some(ctx)).is_err() {
                return S_IOERR;
            }
            offset += n as u64;
            left -= n as u64;
        }
        S_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::mock::{self, MockQueue};
    use crate::devices::virtio::{VirtioBackend, VirtioMmio, VIRTIO_F_VERSION_1};
    use crate::devices::virtio_blk::MemDisk;
    use crate::env::NullEnvironment;
    use crate::persist::Persist;

    const RAM: u64 = 0x8000_0000;
    const HDR: u64 = RAM + 0x1_0000;
    const DATA: u64 = RAM + 0x2_0000;
    const STATUS: u64 = RAM + 0x3_0000;

    fn base() -> Vec<u8> {
        (0..64 * 1024u32).map(|i| (i % 251) as u8).collect()
    }

    struct Rig {
        dev: VirtioMmio,
        ram: GuestRam,
        q: MockQueue,
        env: NullEnvironment,
    }

    impl Rig {
        fn new() -> Rig {
            let mut ram = GuestRam::new(RAM, 1 << 20);
            let q = MockQueue::new(&mut ram, RAM, 16);
            let mut dev = VirtioMmio::new(VirtioBackend::Block(Block::new(Box::new(MemDisk(base())))));
            let mut env = NullEnvironment::default();
            let feats = VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_FLUSH;
            let st = mock::activate(&mut dev, &mut ram, &mut MmioCtx { icount: 0, now: 0, env: &mut env }, feats, &[&q]);
            assert_eq!(st, 0xf);
            Rig { dev, ram, q, env }
        }

        /// Submit a request; returns (status byte, used length).
        fn request(&mut self, kind: u32, sector: u64, data: &[(u64, u32, bool)]) -> (u8, u32) {
            let mut hdr = [0u8; 16];
            hdr[..4].copy_from_slice(&kind.to_le_bytes());
            hdr[8..].copy_from_slice(&sector.to_le_bytes());
            self.ram.write(HDR, &hdr).unwrap();
            self.ram.write(STATUS, &[0xff]).unwrap();
            let mut chain = vec![(HDR, 16, false)];
            chain.extend_from_slice(data);
            chain.push((STATUS, 1, true));
            let head = self.q.add_chain(&mut self.ram, &chain);
            mock::notify(&mut self.dev, &mut self.ram, &mut MmioCtx { icount: 0, now: 0, env: &mut self.env }, 0);
            let used = self.q.take_used(&self.ram);
            assert_eq!(used.len(), 1);
            assert_eq!(used[0].0, u32::from(head));
            let mut s = [0u8];
            self.ram.read(STATUS, &mut s).unwrap();
            (s[0], used[0].1)
        }

        fn block(&self) -> &Block {
            match self.dev.backend() {
                VirtioBackend::Block(b) => b,
                _ => unreachable!(),
            }
        }
    }

    #[test]
    fn config_reports_capacity() {
        let mut r = Rig::new();
        assert_eq!(r.dev.read(0x100, 8).unwrap(), 128);
        assert_eq!(r.dev.read(0x100 + 20, 4).unwrap(), 512);
        assert_eq!(r.dev.read(0x8, 4).unwrap(), 2);
        let _ = &mut r;
    }

    #[test]
    fn read_write_flush_with_overlay() {
        let mut r = Rig::new();
        // Read sectors 1..3 across two descriptors.
        let (st, len) = r.request(T_IN, 1, &[(DATA, 512, true), (DATA + 512, 512, true)]);
        assert_eq!((st, len), (S_OK, 1025));
        let mut got = vec![0u8; 1024];
        r.ram.read(DATA, &mut got).unwrap();
        assert_eq!(got, base()[512..1536]);
        assert!(r.ram.is_dirty(0x20), "DMA marks RAM dirty");

        // Write sector 9 (inside overlay page 1) with 0xab.
        r.ram.write(DATA, &[0xab; 512]).unwrap();
        assert_eq!(r.request(T_OUT, 9, &[(DATA, 512, false)]), (S_OK, 1));
        assert_eq!(r.block().overlay().len(), 1);
        let page = r.block().overlay().page(1).unwrap();
        assert_eq!(&page[512..1024], &[0xab; 512][..]);
        assert_eq!(&page[..512], &base()[4096..4608], "rest of the page copied from the base");

        // Reads see the overlay over the base, across the page boundary.
        let (st, _) = r.request(T_IN, 7, &[(DATA, 2048, true)]);
        assert_eq!(st, S_OK);
        let mut got = vec![0u8; 2048];
        r.ram.read(DATA, &mut got).unwrap();
        assert_eq!(got[..1024], base()[3584..4608]);
        assert_eq!(got[1024..1536], [0xab; 512]);
        assert_eq!(got[1536..], base()[5120..5632]);

        assert_eq!(r.request(T_FLUSH, 0, &[]), (S_OK, 1));
        // GET_ID fills 20 bytes.
        let (st, len) = r.request(T_GET_ID, 0, &[(DATA, 20, true)]);
        assert_eq!((st, len), (S_OK, 21));
        let mut id = [0u8; 20];
        r.ram.read(DATA, &mut id).unwrap();
        assert!(id.starts_with(b"doppel-disk"));
        assert_eq!(r.request(99, 0, &[]), (S_UNSUPP, 1));
        assert_eq!(r.block().metrics().writes, 1);
    }

    #[test]
    fn base_is_never_modified() {
        let mut r = Rig::new();
        r.ram.write(DATA, &[0x11; 4096]).unwrap();
        assert_eq!(r.request(T_OUT, 0, &[(DATA, 4096, false)]), (S_OK, 1));
        // Rebuild the device from the same base: the write is not there.
        let VirtioBackend::Block(b) = std::mem::replace(r.dev.backend_mut(), VirtioBackend::Rng(crate::devices::virtio_rng::Rng)) else {
            unreachable!()
        };
        let mut fresh = Block::new(b.into_base());
        let mut buf = [0u8; 16];
        fresh.read_disk(0, &mut buf).unwrap();
        assert_eq!(buf[..], base()[..16]);
    }

    #[test]
    fn out_of_range_and_misaligned_requests_fail_cleanly() {
        let mut r = Rig::new();
        assert_eq!(r.request(T_IN, 128, &[(DATA, 512, true)]).0, S_IOERR, "one past the end");
        assert_eq!(r.request(T_IN, 127, &[(DATA, 1024, true)]).0, S_IOERR, "straddles the end");
        assert_eq!(r.request(T_OUT, u64::MAX, &[(DATA, 512, false)]).0, S_IOERR, "sector overflow");
        assert_eq!(r.request(T_OUT, 0, &[(DATA, 100, false)]).0, S_IOERR, "not whole sectors");
        assert_eq!(r.request(T_IN, 127, &[(DATA, 512, true)]).0, S_OK, "last sector is fine");
        assert!(r.block().overlay().is_empty());
        // A header split over descriptors still parses; a short header is an error.
        let head = r.q.add_chain(&mut r.ram, &[(HDR, 8, false), (STATUS, 1, true)]);
        mock::notify(&mut r.dev, &mut r.ram, &mut MmioCtx { icount: 0, now: 0, env: &mut r.env }, 0);
        assert_eq!(r.q.take_used(&r.ram), vec![(u32::from(head), 1)]);
        let mut s = [0u8];
        r.ram.read(STATUS, &mut s).unwrap();
        assert_eq!(s[0], S_IOERR);
        // No writable byte at all: the request is returned unanswered, the device stays up.
        let head = r.q.add_chain(&mut r.ram, &[(HDR, 16, false)]);
        mock::notify(&mut r.dev, &mut r.ram, &mut MmioCtx { icount: 0, now: 0, env: &mut r.env }, 0);
        assert_eq!(r.q.take_used(&r.ram), vec![(u32::from(head), 0)]);
        assert_eq!(r.block().metrics().dropped, 1);
        assert!(r.dev.live());
    }

    #[test]
    fn persist_round_trip_and_refusal() {
        let mut r = Rig::new();
        r.ram.write(DATA, &[0x5a; 1024]).unwrap();
        r.request(T_OUT, 20, &[(DATA, 1024, false)]);
        let state = r.dev.save();
        r.request(T_OUT, 40, &[(DATA, 512, false)]);
        let fresh = VirtioBackend::Block(Block::new(Box::new(MemDisk(base()))));
        let restored = VirtioMmio::restore(fresh, &state).unwrap();
        assert_eq!(restored.save(), state);
        assert!(restored.live());

        let crate::devices::virtio::VirtioBackendState::Block(bs) = &state.backend else { unreachable!() };
        let mut bad = bs.clone();
        bad.overlay[0].1.pop();
        let e = Block::restore(Box::new(MemDisk(base())), &bad).unwrap_err().to_string();
        assert!(e.contains("virtio-blk") && e.contains("4095 bytes"), "{e}");
        let mut bad = bs.clone();
        bad.overlay[0].0 = 1000;
        assert!(Block::restore(Box::new(MemDisk(base())), &bad).unwrap_err().to_string().contains("beyond"));
        let e = Block::restore(Box::new(MemDisk(vec![0; 512])), bs).unwrap_err().to_string();
        assert!(e.contains("65536-byte base"), "{e}");
        let mut bad = state.clone();
        bad.queues[0].size = 3;
        let fresh = VirtioBackend::Block(Block::new(Box::new(MemDisk(base()))));
        assert!(VirtioMmio::restore(fresh, &bad).unwrap_err().to_string().contains("power of two"));
        let fresh = VirtioBackend::Rng(crate::devices::virtio_rng::Rng);
        assert!(VirtioMmio::restore(fresh, &state).unwrap_err().to_string().contains("another kind"));
    }
}
