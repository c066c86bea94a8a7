use super::backend::VirtioBackend;
use super::queue::{Queue, QueueError};
use crate::bus::{BusFault, MmioCtx};
use crate::ram::GuestRam;

/// The feature bit of a modern (virtio 1.x) device; the only transport feature offered.
pub const VIRTIO_F_VERSION_1: u64 = 1 << 32;

pub const STATUS_ACKNOWLEDGE: u32 = 1;
pub const STATUS_DRIVER: u32 = 2;
pub const STATUS_DRIVER_OK: u32 = 4;
pub const STATUS_FEATURES_OK: u32 = 8;
pub const STATUS_DEVICE_NEEDS_RESET: u32 = 0x40;
pub const STATUS_FAILED: u32 = 0x80;

/// Interrupt status bits.
const INT_USED_BUFFER: u32 = 1;
const INT_CONFIG_CHANGE: u32 = 2;

/// Register offsets of the virtio-mmio transport, version 2.
pub mod regs {
    pub const MAGIC: u64 = 0x000;
    pub const VERSION: u64 = 0x004;
    pub const DEVICE_ID: u64 = 0x008;
    pub const VENDOR_ID: u64 = 0x00c;
    pub const DEVICE_FEATURES: u64 = 0x010;
    pub const DEVICE_FEATURES_SEL: u64 = 0x014;
    pub const DRIVER_FEATURES: u64 = 0x020;
    pub const DRIVER_FEATURES_SEL: u64 = 0x024;
    pub const QUEUE_SEL: u64 = 0x030;
    pub const QUEUE_NUM_MAX: u64 = 0x034;
    pub const QUEUE_NUM: u64 = 0x038;
    pub const QUEUE_READY: u64 = 0x044;
    pub const QUEUE_NOTIFY: u64 = 0x050;
    pub const INTERRUPT_STATUS: u64 = 0x060;
    pub const INTERRUPT_ACK: u64 = 0x064;
    pub const STATUS: u64 = 0x070;
    pub const QUEUE_DESC_LOW: u64 = 0x080;
    pub const QUEUE_DESC_HIGH: u64 = 0x084;
    pub const QUEUE_DRIVER_LOW: u64 = 0x090;
    pub const QUEUE_DRIVER_HIGH: u64 = 0x094;
    pub const QUEUE_DEVICE_LOW: u64 = 0x0a0;
    pub const QUEUE_DEVICE_HIGH: u64 = 0x0a4;
    pub const SHM_LEN_LOW: u64 = 0x0b0;
    pub const SHM_LEN_HIGH: u64 = 0x0b4;
    pub const CONFIG_GENERATION: u64 = 0x0fc;
    pub const CONFIG: u64 = 0x100;

    /// "virt" in little-endian.
    pub const MAGIC_VALUE: u32 = 0x7472_6976;
    /// Vendor id reported to the guest ("DPGL").
    pub const VENDOR_VALUE: u32 = 0x4c47_5044;
}

/// One virtio-mmio slot with its device.
#[derive(Debug)]
pub struct VirtioMmio {
    pub(super) backend: VirtioBackend,
    pub(super) device_features_sel: u32,
    pub(super) driver_features: u64,
    pub(super) driver_features_sel: u32,
    pub(super) queue_sel: u32,
    pub(super) queues: Vec<Queue>,
    pub(super) status: u32,
    pub(super) interrupt_status: u32,
    pub(super) config_generation: u32,
    /// Why the device last entered `DEVICE_NEEDS_RESET` (diagnostics; not snapshotted).
    pub(super) last_error: Option<QueueError>,
}

fn set_half(reg: u64, high: bool, value: u32) -> u64 {
    if high {
        (reg & 0xffff_ffff) | (u64::from(value) << 32)
    } else {
        (reg & !0xffff_ffff) | u64::from(value)
    }
}

impl VirtioMmio {
    pub fn new(backend: VirtioBackend) -> Self {
        let queues = backend.queue_sizes().iter().map(|&m| Queue::new(m)).collect();
        VirtioMmio {
            backend,
            device_features_sel: 0,
            driver_features: 0,
            driver_features_sel: 0,
            queue_sel: 0,
            queues,
            status: 0,
            interrupt_status: 0,
            config_generation: 0,
            last_error: None,
        }
    }

    pub fn backend(&self) -> &VirtioBackend {
        &self.backend
    }

    pub fn backend_mut(&mut self) -> &mut VirtioBackend {
        &mut self.backend
    }

    /// The device status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// Feature bits the device offers.
    pub fn device_features(&self) -> u64 {
        self.backend.features() | VIRTIO_F_VERSION_1
    }

    /// Feature bits the driver accepted.
    pub fn driver_features(&self) -> u64 {
        self.driver_features
    }

    /// Why the device last asked for a reset.
    pub fn last_error(&self) -> Option<&QueueError> {
        self.last_error.as_ref()
    }

    /// The interrupt line to the PLIC.
    pub fn irq(&self) -> bool {
        self.interrupt_status != 0
    }

    /// Whether the driver finished initialisation and the device is not broken.
    pub fn live(&self) -> bool {
        self.status & STATUS_DRIVER_OK != 0 && self.status & STATUS_DEVICE_NEEDS_RESET == 0
    }

    /// Device reset, as by a write of 0 to `Status`.
    pub fn reset(&mut self) {
        self.device_features_sel = 0;
        self.driver_features = 0;
        self.driver_features_sel = 0;
        self.queue_sel = 0;
        self.queues.iter_mut().for_each(Queue::reset);
        self.status = 0;
        self.interrupt_status = 0;
        self.last_error = None;
        self.backend.reset();
    }

    fn selected(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    /// Run `work` against the backend and its queues when the device is live, then raise the
    /// used-buffer interrupt if a queue got entries the driver wants to hear about, or fail the
    /// device on a driver error.
    pub(crate) fn run(
        &mut self,
        ram: &mut GuestRam,
        ctx: &mut MmioCtx<'_>,
        work: impl FnOnce(&mut VirtioBackend, &mut [Queue], &mut GuestRam, &mut MmioCtx<'_>) -> Result<(), QueueError>,
    ) {
        if !self.live() {
            return;
        }
        let result = work(&mut self.backend, &mut self.queues, ram, ctx);
        for q in &mut self.queues {
            if std::mem::take(&mut q.signal) && q.wants_interrupt(ram) {
                self.interrupt_status |= INT_USED_BUFFER;
            }
        }
        if let Err(e) = result {
            self.status |= STATUS_DEVICE_NEEDS_RESET;
            self.interrupt_status |= INT_CONFIG_CHANGE;
            self.last_error = Some(e);
        }
    }

    pub fn read(&mut self, offset: u64, size: u8) -> Result<u64, BusFault> {
        if offset >= regs::CONFIG {
            let mut buf = [0u8; 8];
            let n = usize::from(size);
            if !matches!(size, 1 | 2 | 4 | 8) {
                return Err(BusFault);
            }
            self.backend.read_config(offset - regs::CONFIG, &mut buf[..n]);
            return Ok(u64::from_le_bytes(buf));
        }
        if size != 4 || !offset.is_multiple_of(4) {
            return Err(BusFault);
        }
        let q = self.queues.get(self.queue_sel as usize);
        let v: u32 = match offset {
            regs::MAGIC => regs::MAGIC_VALUE,
            regs::VERSION => 2,
            regs::DEVICE_ID => self.backend.device_id(),
            regs::VENDOR_ID => regs::VENDOR_VALUE,
            regs::DEVICE_FEATURES => match self.device_features_sel {
                0 => (self.device_features() & 0xffff_ffff) as u32,
                1 => (self.device_features() >> 32) as u32,
                _ => 0,
            },
            regs::QUEUE_NUM_MAX => q.map_or(0, |q| u32::from(q.max_size)),
            regs::QUEUE_NUM => q.map_or(0, |q| u32::from(q.size)),
            regs::QUEUE_READY => q.map_or(0, |q| u32::from(q.ready)),
            regs::INTERRUPT_STATUS => self.interrupt_status,
            regs::STATUS => self.status,
            regs::QUEUE_DESC_LOW => q.map_or(0, |q| (q.desc & 0xffff_ffff) as u32),
            regs::QUEUE_DESC_HIGH => q.map_or(0, |q| (q.desc >> 32) as u32),
            regs::QUEUE_DRIVER_LOW => q.map_or(0, |q| (q.avail & 0xffff_ffff) as u32),
            regs::QUEUE_DRIVER_HIGH => q.map_or(0, |q| (q.avail >> 32) as u32),
            regs::QUEUE_DEVICE_LOW => q.map_or(0, |q| (q.used & 0xffff_ffff) as u32),
            regs::QUEUE_DEVICE_HIGH => q.map_or(0, |q| (q.used >> 32) as u32),
            regs::CONFIG_GENERATION => self.config_generation,
            // No shared memory regions: a length of all ones says "absent".
            regs::SHM_LEN_LOW | regs::SHM_LEN_HIGH => u32::MAX,
            _ => 0,
        };
        Ok(u64::from(v))
    }

    pub fn write(
        &mut self,
        offset: u64,
        size: u8,
        value: u64,
        ram: &mut GuestRam,
        ctx: &mut MmioCtx<'_>,
    ) -> Result<(), BusFault> {
        if offset >= regs::CONFIG {
            if !matches!(size, 1 | 2 | 4 | 8) {
                return Err(BusFault);
            }
            let bytes = value.to_le_bytes();
            self.backend.write_config(offset - regs::CONFIG, &bytes[..usize::from(size)]);
            return Ok(());
        }
        if size != 4 || !offset.is_multiple_of(4) {
            return Err(BusFault);
        }
        let v = (value & 0xffff_ffff) as u32; // 32-bit registers
        let features_locked = self.status & STATUS_FEATURES_OK != 0;
        match offset {
            regs::DEVICE_FEATURES_SEL => self.device_features_sel = v,
            regs::DRIVER_FEATURES if !features_locked => match self.driver_features_sel {
                0 => self.driver_features = set_half(self.driver_features, false, v),
                1 => self.driver_features = set_half(self.driver_features, true, v),
                _ => {}
            },
            regs::DRIVER_FEATURES_SEL => self.driver_features_sel = v,
            regs::QUEUE_SEL => self.queue_sel = v,
            regs::QUEUE_NUM => {
                if let Some(q) = self.selected().filter(|q| !q.ready) {
                    // Checked when the queue is used; u16 holds every valid size.
                    q.size = u16::try_from(v).unwrap_or(0);
                }
            }
            regs::QUEUE_READY => {
                if let Some(q) = self.selected() {
                    q.ready = v & 1 != 0;
                    if q.ready {
                        let q = q.clone();
                        if let Err(e) = q.validate(ram) {
                            self.status |= STATUS_DEVICE_NEEDS_RESET;
                            self.interrupt_status |= INT_CONFIG_CHANGE;
                            self.last_error = Some(e);
                        }
                    }
                }
            }
            regs::QUEUE_DESC_LOW | regs::QUEUE_DESC_HIGH | regs::QUEUE_DRIVER_LOW | regs::QUEUE_DRIVER_HIGH
            | regs::QUEUE_DEVICE_LOW | regs::QUEUE_DEVICE_HIGH => {
                if let Some(q) = self.selected().filter(|q| !q.ready) {
                    let high = offset & 4 != 0;
                    match offset & !4 {
                        regs::QUEUE_DESC_LOW => q.desc = set_half(q.desc, high, v),
                        regs::QUEUE_DRIVER_LOW => q.avail = set_half(q.avail, high, v),
                        _ => q.used = set_half(q.used, high, v),
                    }
                }
            }
            regs::QUEUE_NOTIFY => {
                let index = v as usize;
                if index < self.queues.len() {
                    self.run(ram, ctx, |backend, queues, ram, ctx| backend.notify(index, queues, ram, ctx));
                }
            }
            regs::INTERRUPT_ACK => self.interrupt_status &= !v,
            regs::STATUS => {
                if v == 0 {
                    self.reset();
                } else {
                    let mut new = v & 0xff;
                    if new & STATUS_FEATURES_OK != 0 && !features_locked && !self.features_acceptable() {
                        // The driver reads FEATURES_OK back and gives up.
                        new &= !STATUS_FEATURES_OK;
                    }
                    let was_ok = self.status & STATUS_DRIVER_OK != 0;
                    // The driver only adds bits (clearing is a reset); DEVICE_NEEDS_RESET is the
                    // device's to set.
                    self.status |= new & !STATUS_DEVICE_NEEDS_RESET;
                    if !was_ok && self.status & STATUS_DRIVER_OK != 0 {
                        // Input arrived before the driver was ready may be delivered now.
                        self.run(ram, ctx, |backend, queues, ram, _| backend.driver_ready(queues, ram));
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn features_acceptable(&self) -> bool {
        self.driver_features & !self.device_features() == 0 && self.driver_features & VIRTIO_F_VERSION_1 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::mock::{self, MockQueue, F_INDIRECT, F_NEXT, F_WRITE};
    use crate::devices::virtio_rng::Rng;
    use crate::env::NullEnvironment;

    const RAM: u64 = 0x8000_0000;

    fn rng_dev() -> (VirtioMmio, GuestRam, MockQueue) {
        let mut ram = GuestRam::new(RAM, 1 << 20);
        let q = MockQueue::new(&mut ram, RAM, 16);
        (VirtioMmio::new(VirtioBackend::Rng(Rng)), ram, q)
    }

    #[test]
    fn identity_registers() {
        let (mut d, _, _) = rng_dev();
        assert_eq!(d.read(regs::MAGIC, 4).unwrap(), 0x7472_6976);
        assert_eq!(d.read(regs::VERSION, 4).unwrap(), 2);
        assert_eq!(d.read(regs::DEVICE_ID, 4).unwrap(), 4);
        d.write(regs::QUEUE_SEL, 4, 0, &mut GuestRam::new(RAM, 4096), &mut MmioCtx { icount: 0, now: 0, env: &mut NullEnvironment::default() }).unwrap();
        assert_eq!(d.read(regs::QUEUE_NUM_MAX, 4).unwrap(), 64);
        assert_eq!(d.read(regs::MAGIC, 2), Err(BusFault), "transport registers are 32-bit");
    }

    #[test]
    fn feature_negotiation_requires_version_1_and_offered_bits() {
        let (mut d, mut ram, q) = rng_dev();
        let mut env = NullEnvironment::default();
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut env };
        d.write(regs::DEVICE_FEATURES_SEL, 4, 1, &mut ram, &mut ctx).unwrap();
        assert_eq!(d.read(regs::DEVICE_FEATURES, 4).unwrap(), 1, "VERSION_1 is bit 32");
        // A legacy driver (no VERSION_1) is refused: FEATURES_OK does not stick.
        let st = mock::activate(&mut d, &mut ram, &mut ctx, 0, &[&q]);
        assert_eq!(st & STATUS_FEATURES_OK, 0);
        // Bits never offered are refused too.
        let st = mock::activate(&mut d, &mut ram, &mut ctx, VIRTIO_F_VERSION_1 | 1 << 28, &[&q]);
        assert_eq!(st & STATUS_FEATURES_OK, 0);
        let st = mock::activate(&mut d, &mut ram, &mut ctx, VIRTIO_F_VERSION_1, &[&q]);
        assert_eq!(st, 0xf);
        assert_eq!(d.driver_features(), VIRTIO_F_VERSION_1);
        // Features are frozen after FEATURES_OK.
        d.write(regs::DRIVER_FEATURES_SEL, 4, 1, &mut ram, &mut ctx).unwrap();
        d.write(regs::DRIVER_FEATURES, 4, 0, &mut ram, &mut ctx).unwrap();
        assert_eq!(d.driver_features(), VIRTIO_F_VERSION_1);
        // Reset clears everything.
        d.write(regs::STATUS, 4, 0, &mut ram, &mut ctx).unwrap();
        assert_eq!((d.status(), d.driver_features()), (0, 0));
        assert_eq!(d.read(regs::QUEUE_READY, 4).unwrap(), 0);
    }

    #[test]
    fn rng_fills_buffers_and_interrupts() {
        let (mut d, mut ram, mut q) = rng_dev();
        let mut env = NullEnvironment::default();
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut env };
        mock::activate(&mut d, &mut ram, &mut ctx, VIRTIO_F_VERSION_1, &[&q]);
        let head = q.add_chain(&mut ram, &[(RAM + 0x8000, 16, true), (RAM + 0x9000, 16, true)]);
        mock::notify(&mut d, &mut ram, &mut ctx, 0);
        assert_eq!(q.take_used(&ram), vec![(u32::from(head), 32)]);
        assert!(d.irq());
        assert_eq!(mock::ack(&mut d, &mut ram, &mut ctx), 1);
        assert!(!d.irq());
        let mut a = [0u8; 16];
        ram.read(RAM + 0x9000, &mut a).unwrap();
        assert_ne!(a, [0; 16]);
        // Same environment stream, same bytes: deterministic.
        let mut expect = [0u8; 32];
        crate::env::Environment::entropy(&mut NullEnvironment::default(), 0, &mut expect);
        assert_eq!(a, expect[16..]);
        // The driver may ask for no interrupt.
        q.set_avail_flags(&mut ram, 1);
        q.add_chain(&mut ram, &[(RAM + 0x8000, 8, true)]);
        mock::notify(&mut d, &mut ram, &mut ctx, 0);
        assert_eq!(q.take_used(&ram).len(), 1);
        assert!(!d.irq());
    }

    /// Run one malformed setup; the device must end in DEVICE_NEEDS_RESET with a config
    /// interrupt, and the host must not panic.
    fn expect_broken(setup: impl FnOnce(&mut GuestRam, &mut MockQueue), what: &str) {
        let (mut d, mut ram, mut q) = rng_dev();
        let mut env = NullEnvironment::default();
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut env };
        mock::activate(&mut d, &mut ram, &mut ctx, VIRTIO_F_VERSION_1, &[&q]);
        setup(&mut ram, &mut q);
        mock::notify(&mut d, &mut ram, &mut ctx, 0);
        assert_ne!(d.status() & STATUS_DEVICE_NEEDS_RESET, 0, "{what}: device not failed");
        assert_eq!(d.read(regs::INTERRUPT_STATUS, 4).unwrap() & 2, 2, "{what}: no config interrupt");
        assert!(d.last_error().is_some());
        // Further notifications are ignored until reset.
        q.add_chain(&mut ram, &[(RAM + 0x8000, 8, true)]);
        mock::notify(&mut d, &mut ram, &mut ctx, 0);
        assert!(q.take_used(&ram).is_empty(), "{what}: broken device still served");
        // A reset brings it back.
        let fresh = MockQueue::new(&mut ram, RAM + 0x4000, 16);
        let st = mock::activate(&mut d, &mut ram, &mut ctx, VIRTIO_F_VERSION_1, &[&fresh]);
        assert_eq!(st, 0xf, "{what}: reset did not recover");
    }

    #[test]
    fn malformed_chains_fail_the_device_not_the_host() {
        expect_broken(
            |ram, q| {
                q.write_desc(ram, 0, RAM + 0x8000, 8, F_WRITE | F_NEXT, 1);
                q.write_desc(ram, 1, RAM + 0x8000, 8, F_WRITE | F_NEXT, 0);
                q.publish(ram, 0);
            },
            "two-descriptor loop",
        );
        expect_broken(
            |ram, q| {
                q.write_desc(ram, 3, RAM + 0x8000, 8, F_WRITE | F_NEXT, 3);
                q.publish(ram, 3);
            },
            "self loop",
        );
        expect_broken(|ram, q| { q.add_chain(ram, &[(RAM + (1 << 20) - 4, 8, true)]); }, "buffer past RAM end");
        expect_broken(|ram, q| { q.add_chain(ram, &[(0x1000, 8, true)]); }, "buffer below RAM");
        expect_broken(|ram, q| { q.add_chain(ram, &[(u64::MAX - 2, 8, true)]); }, "address overflow");
        expect_broken(|ram, q| q.publish(ram, 16), "head out of range");
        expect_broken(
            |ram, q| {
                q.write_desc(ram, 0, RAM + 0x8000, 8, F_WRITE | F_NEXT, 99);
                q.publish(ram, 0);
            },
            "next out of range",
        );
        expect_broken(|ram, q| q.set_avail_idx(ram, 40), "available index jump");
        expect_broken(
            |ram, q| {
                q.write_desc(ram, 0, RAM + 0x8000, 16, F_INDIRECT, 0);
                q.publish(ram, 0);
            },
            "indirect descriptor",
        );
        expect_broken(|ram, q| { q.add_chain(ram, &[(RAM + 0x8000, 8, true), (RAM + 0x9000, 8, false)]); }, "readable after writable");
    }

    #[test]
    fn zero_length_descriptors_are_skipped() {
        let (mut d, mut ram, mut q) = rng_dev();
        let mut env = NullEnvironment::default();
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut env };
        mock::activate(&mut d, &mut ram, &mut ctx, VIRTIO_F_VERSION_1, &[&q]);
        // A zero-length buffer at a bogus address is harmless.
        let head = q.add_chain(&mut ram, &[(0xdead_0000_0000, 0, true), (RAM + 0x8000, 4, true)]);
        mock::notify(&mut d, &mut ram, &mut ctx, 0);
        assert_eq!(q.take_used(&ram), vec![(u32::from(head), 4)]);
        let head = q.add_chain(&mut ram, &[(RAM + 0x8000, 0, true)]);
        mock::notify(&mut d, &mut ram, &mut ctx, 0);
        assert_eq!(q.take_used(&ram), vec![(u32::from(head), 0)]);
        assert_eq!(d.status() & STATUS_DEVICE_NEEDS_RESET, 0);
    }

    #[test]
    fn rings_outside_ram_fail_at_queue_ready() {
        let (mut d, mut ram, mut q) = rng_dev();
        let mut env = NullEnvironment::default();
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut env };
        q.used = RAM + (1 << 20) - 8;
        mock::activate(&mut d, &mut ram, &mut ctx, VIRTIO_F_VERSION_1, &[&q]);
        assert_ne!(d.status() & STATUS_DEVICE_NEEDS_RESET, 0);
        assert!(matches!(d.last_error(), Some(QueueError::RingOutOfRam { ring: "used ring", .. })));
    }

    /// A deterministic stand-in for the fuzz target: random RAM under the rings must never panic
    /// or hang the parser.
    #[test]
    fn random_rings_never_panic() {
        let mut env = NullEnvironment::default();
        let mut seed = 0x1234_5678_u64;
        for round in 0..300 {
            let mut ram = GuestRam::new(RAM, 64 * 1024);
            let mut bytes = vec![0u8; 8192];
            crate::env::Environment::entropy(&mut env, round, &mut bytes);
            // Bias descriptor addresses into RAM and lengths small, so chains get walked deeply.
            for d in bytes.chunks_mut(16).take(64) {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                if seed & 3 != 0 {
                    d[0..8].copy_from_slice(&(RAM + (seed >> 40) % 0x1_0000).to_le_bytes());
                    d[8..12].copy_from_slice(&(((seed >> 20) % 512) as u32).to_le_bytes());
                    d[12] &= 3;
                    d[14] %= 64;
                    d[15] = 0;
                }
            }
            ram.write(RAM, &bytes).unwrap();
            super::super::queue::parse_all(&mut ram, 64, RAM, RAM + 1024, RAM + 2048);
        }
    }
}
