//! Platform devices, one folder each with the same files: `mod.rs` (what the device is, in its
//! docs), `device.rs` (registers and behaviour), `persist.rs` (snapshot state, validated on
//! restore), and `metrics.rs` where counters help. `syscon` is the small template new devices copy.
//!
//! Every device is deterministic: its behaviour is a pure function of register accesses (each at
//! an exact instruction count, [`MmioCtx::icount`]), injected [`InputEvent`]s and the
//! environment's answers. Work completes synchronously at the access that asks for it.
//!
//! [`Devices`] is the aggregate the bus dispatches to; after every access or injected event it
//! recomputes the PLIC's input lines from the UART and virtio interrupt lines, so
//! [`Devices::interrupts`] is always current.

pub mod clint;
pub mod framebuffer;
pub mod plic;
pub mod syscon;
pub mod uart;
pub mod virtio;
pub mod virtio_blk;
pub mod virtio_input;
pub mod virtio_net;
pub mod virtio_rng;

pub use framebuffer::FramebufferConfig;
pub use virtio::DeviceKind;
pub use virtio_blk::{DiskBase, DiskError, EnvDisk, MemDisk};

use crate::bus::{
    BusFault, MachineRequest, MmioCtx, CLINT_BASE, CLINT_SIZE, PLIC_BASE, PLIC_SIZE, SYSCON_BASE, SYSCON_SIZE,
    UART_BASE, UART_IRQ, UART_SIZE, VIRTIO_BASE, VIRTIO_IRQ_BASE, VIRTIO_SLOTS, VIRTIO_STRIDE,
};
use crate::env::InputEvent;
use crate::persist::Persist;
use crate::ram::GuestRam;
use virtio::{VirtioBackend, VirtioMmio, VirtioMmioState};

/// Why devices could not be built or restored.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("{device} state refused: {reason}")]
    InvalidState { device: &'static str, reason: String },
    #[error("framebuffer of {width}x{height} pixels: each side must be 1..=8192")]
    Framebuffer { width: u32, height: u32 },
    #[error("framebuffer of {size} bytes does not fit in half of the {ram_size} bytes of RAM")]
    FramebufferTooLarge { size: u64, ram_size: u64 },
    #[error("disk image of {len} bytes holds no whole 512-byte sector")]
    EmptyDisk { len: u64 },
}

/// Interrupt outputs of the CLINT and PLIC, as the hart sees them (`mip` bits MSIP, MEIP, SEIP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Interrupts {
    pub msip: bool,
    pub meip: bool,
    pub seip: bool,
}

/// Which devices the machine has.
pub struct DevicesConfig {
    /// The block device's read-only base image; no block device when `None`.
    pub disk: Option<Box<dyn DiskBase>>,
    /// A network device (default true).
    pub net: bool,
    /// Its MAC address.
    pub mac: [u8; 6],
    /// A virtio keyboard and tablet (default true).
    pub input: bool,
    /// A virtio entropy device (default true).
    pub rng: bool,
    /// A framebuffer (the machine carves it from RAM; the tablet's range follows its size).
    pub framebuffer: Option<FramebufferConfig>,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        DevicesConfig {
            disk: None,
            net: true,
            mac: [0x52, 0x54, 0x00, 0x12, 0x34, 0x56],
            input: true,
            rng: true,
            framebuffer: None,
        }
    }
}

impl std::fmt::Debug for DevicesConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevicesConfig")
            .field("disk_len", &self.disk.as_ref().map(|d| d.len()))
            .field("net", &self.net)
            .field("mac", &self.mac)
            .field("input", &self.input)
            .field("rng", &self.rng)
            .field("framebuffer", &self.framebuffer)
            .finish()
    }
}

/// A virtio-mmio slot in use, as the device tree describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtioSlot {
    /// Slot number (0..[`VIRTIO_SLOTS`]).
    pub index: u32,
    /// Guest physical base of its registers.
    pub base: u64,
    /// Size of its register window.
    pub size: u64,
    /// PLIC source.
    pub irq: u32,
    pub kind: DeviceKind,
}

/// Every device on the bus.
#[derive(Debug)]
pub struct Devices {
    pub syscon: syscon::Syscon,
    pub clint: clint::Clint,
    pub plic: plic::Plic,
    pub uart: uart::Uart,
    /// Occupied virtio slots, in slot order from slot 0 (empty slots follow).
    virtio: Vec<VirtioMmio>,
}

/// The fixed platform (syscon, CLINT, PLIC, UART) without any virtio device.
impl Default for Devices {
    fn default() -> Self {
        Devices::from_backends(Self::backends(DevicesConfig { net: false, input: false, rng: false, ..Default::default() }).unwrap_or_default())
    }
}

impl Devices {
    /// Build the devices `config` asks for, in slot order: block, net, keyboard, tablet, rng.
    pub fn new(config: DevicesConfig) -> Result<Devices, DeviceError> {
        Ok(Devices::from_backends(Self::backends(config)?))
    }

    fn backends(config: DevicesConfig) -> Result<Vec<VirtioBackend>, DeviceError> {
        let mut b = Vec::new();
        if let Some(fb) = &config.framebuffer {
            fb.validate()?;
        }
        if let Some(disk) = config.disk {
            if disk.len() < virtio_blk::SECTOR_SIZE {
                return Err(DeviceError::EmptyDisk { len: disk.len() });
            }
            b.push(VirtioBackend::Block(virtio_blk::Block::new(disk)));
        }
        if config.net {
            b.push(VirtioBackend::Net(virtio_net::Net::new(config.mac)));
        }
        if config.input {
            // Without a framebuffer the tablet reports the usual 0..=32767 range.
            let (width, height) = config.framebuffer.map_or((32768, 32768), |fb| (fb.width, fb.height));
            for kind in [DeviceKind::Keyboard, DeviceKind::Tablet] {
                let cfg = virtio_input::InputConfig { kind, width, height };
                b.push(VirtioBackend::Input(virtio_input::Input::new(cfg)));
            }
        }
        if config.rng {
            b.push(VirtioBackend::Rng(virtio_rng::Rng));
        }
        Ok(b)
    }

    fn from_backends(backends: Vec<VirtioBackend>) -> Devices {
        Devices {
            syscon: syscon::Syscon,
            clint: clint::Clint::default(),
            plic: plic::Plic::default(),
            uart: uart::Uart::default(),
            virtio: backends.into_iter().map(VirtioMmio::new).collect(),
        }
    }

    /// Machine reset (the guest asked through the syscon or SBI): every register back to its
    /// power-on value, buffered input dropped; what the guest wrote to the disk stays (the
    /// overlay is the disk, not device state).
    pub fn reset(&mut self) {
        self.clint = clint::Clint::default();
        self.plic = plic::Plic::default();
        self.uart = uart::Uart::default();
        for v in &mut self.virtio {
            v.reset();
        }
        self.update_irqs();
    }

    /// The occupied virtio slots, for the device tree.
    pub fn virtio_slots(&self) -> Vec<VirtioSlot> {
        self.virtio
            .iter()
            .zip(0u32..)
            .map(|(v, index)| VirtioSlot {
                index,
                base: VIRTIO_BASE + u64::from(index) * VIRTIO_STRIDE,
                size: VIRTIO_STRIDE,
                irq: VIRTIO_IRQ_BASE + index,
                kind: v.backend().kind(),
            })
            .collect()
    }

    /// The virtio transport in slot `index`.
    pub fn virtio(&self, index: usize) -> Option<&VirtioMmio> {
        self.virtio.get(index)
    }

    /// The transport holding the first device of `kind`.
    pub fn virtio_of(&self, kind: DeviceKind) -> Option<&VirtioMmio> {
        self.virtio.iter().find(|v| v.backend().kind() == kind)
    }

    /// The block device, for reading what the guest wrote.
    pub fn block(&self) -> Option<&virtio_blk::Block> {
        self.virtio.iter().find_map(|v| match v.backend() {
            VirtioBackend::Block(b) => Some(b),
            _ => None,
        })
    }

    /// Interrupt outputs for the hart.
    pub fn interrupts(&self) -> Interrupts {
        Interrupts { msip: self.clint.msip(), meip: self.plic.output(0), seip: self.plic.output(1) }
    }

    /// The hart's timer compare value.
    pub fn mtimecmp(&self) -> u64 {
        self.clint.mtimecmp()
    }

    /// Feed the device interrupt lines into the PLIC.
    fn update_irqs(&mut self) {
        self.plic.set_level(UART_IRQ, self.uart.irq());
        for (v, i) in self.virtio.iter().zip(0u32..) {
            self.plic.set_level(VIRTIO_IRQ_BASE + i, v.irq());
        }
    }

    /// Slot number and offset of `addr` in the virtio window.
    fn virtio_slot(addr: u64) -> Option<(usize, u64)> {
        let rel = addr.checked_sub(VIRTIO_BASE)?;
        let slot = rel / VIRTIO_STRIDE;
        (slot < VIRTIO_SLOTS).then(|| (usize::try_from(slot).unwrap_or(usize::MAX), rel % VIRTIO_STRIDE))
    }

    pub(crate) fn read(
        &mut self,
        addr: u64,
        size: u8,
        _ram: &mut GuestRam,
        ctx: &mut MmioCtx<'_>,
    ) -> Result<u64, BusFault> {
        let in_range = |base: u64, len: u64| addr >= base && addr - base < len;
        let v = if in_range(SYSCON_BASE, SYSCON_SIZE) {
            self.syscon.read(addr - SYSCON_BASE, size)
        } else if in_range(CLINT_BASE, CLINT_SIZE) {
            self.clint.read(addr - CLINT_BASE, size, ctx)
        } else if in_range(PLIC_BASE, PLIC_SIZE) {
            self.plic.read(addr - PLIC_BASE, size)
        } else if in_range(UART_BASE, UART_SIZE) {
            self.uart.read(addr - UART_BASE, size)
        } else if let Some((slot, off)) = Self::virtio_slot(addr) {
            match self.virtio.get_mut(slot) {
                Some(v) => v.read(off, size),
                None => Ok(empty_slot_read(off, size)),
            }
        } else {
            Err(BusFault)
        };
        // Reads have effects too (PLIC claim, UART RBR/IIR/LSR).
        self.update_irqs();
        v
    }

    pub(crate) fn write(
        &mut self,
        addr: u64,
        size: u8,
        value: u64,
        ram: &mut GuestRam,
        ctx: &mut MmioCtx<'_>,
    ) -> Result<MachineRequest, BusFault> {
        let in_range = |base: u64, len: u64| addr >= base && addr - base < len;
        let r = if in_range(SYSCON_BASE, SYSCON_SIZE) {
            return self.syscon.write(addr - SYSCON_BASE, size, value);
        } else if in_range(CLINT_BASE, CLINT_SIZE) {
            self.clint.write(addr - CLINT_BASE, size, value)
        } else if in_range(PLIC_BASE, PLIC_SIZE) {
            self.plic.write(addr - PLIC_BASE, size, value)
        } else if in_range(UART_BASE, UART_SIZE) {
            self.uart.write(addr - UART_BASE, size, value, ctx)
        } else if let Some((slot, off)) = Self::virtio_slot(addr) {
            match self.virtio.get_mut(slot) {
                Some(v) => v.write(off, size, value, ram, ctx),
                // An empty slot ignores writes, as on QEMU.
                None => Ok(()),
            }
        } else {
            Err(BusFault)
        };
        self.update_irqs();
        r.map(|()| MachineRequest::None)
    }

    /// Apply an input event from the environment, at `ctx.icount`. Events for devices the
    /// machine lacks are dropped.
    pub fn inject(&mut self, event: InputEvent, ram: &mut GuestRam, ctx: &mut MmioCtx<'_>) {
        match event {
            InputEvent::UartRx(bytes) => self.uart.receive(&bytes),
            InputEvent::NetRx(frame) => {
                if let Some(v) = self.virtio.iter_mut().find(|v| v.backend().kind() == DeviceKind::Net) {
                    if let VirtioBackend::Net(n) = v.backend_mut() {
                        n.receive(frame);
                    }
                    v.run(ram, ctx, |b, queues, ram, _| b.driver_ready(queues, ram));
                }
            }
            InputEvent::Key { .. }
            | InputEvent::PointerMove { .. }
            | InputEvent::PointerButton { .. }
            | InputEvent::Wheel { .. } => {
                for v in &mut self.virtio {
                    let VirtioBackend::Input(i) = v.backend_mut() else { continue };
                    if i.push_event(&event) {
                        v.run(ram, ctx, |b, queues, ram, _| b.driver_ready(queues, ram));
                        break;
                    }
                }
            }
        }
        self.update_irqs();
    }
}

/// An empty virtio-mmio slot: a valid transport header with device id 0 ("no device").
fn empty_slot_read(offset: u64, size: u8) -> u64 {
    if size != 4 {
        return 0;
    }
    match offset {
        virtio::regs::MAGIC => u64::from(virtio::regs::MAGIC_VALUE),
        virtio::regs::VERSION => 2,
        virtio::regs::VENDOR_ID => u64::from(virtio::regs::VENDOR_VALUE),
        _ => 0,
    }
}

/// Snapshot of every device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DevicesState {
    pub clint: clint::ClintState,
    pub plic: plic::PlicState,
    pub uart: uart::UartState,
    /// Occupied virtio slots in slot order, each with the kind of device it holds.
    pub virtio: Vec<(DeviceKind, VirtioMmioState)>,
}

impl Persist for Devices {
    type State = DevicesState;
    /// The configuration the devices were built with (the disk base comes back through it).
    type ConstructorArgs = DevicesConfig;
    type Error = DeviceError;

    fn save(&self) -> DevicesState {
        DevicesState {
            clint: self.clint.save(),
            plic: self.plic.save(),
            uart: self.uart.save(),
            virtio: self.virtio.iter().map(|v| (v.backend().kind(), v.save())).collect(),
        }
    }

    fn restore(config: DevicesConfig, s: &DevicesState) -> Result<Self, DeviceError> {
        let fresh = Self::backends(config)?;
        let have: Vec<DeviceKind> = fresh.iter().map(VirtioBackend::kind).collect();
        let want: Vec<DeviceKind> = s.virtio.iter().map(|(k, _)| *k).collect();
        if have != want {
            return Err(DeviceError::InvalidState {
                device: "devices",
                reason: format!("snapshot has virtio devices {want:?}, this configuration has {have:?}"),
            });
        }
        let virtio = fresh
            .into_iter()
            .zip(&s.virtio)
            .map(|(b, (_, st))| VirtioMmio::restore(b, st))
            .collect::<Result<Vec<_>, _>>()?;
        let mut d = Devices {
            syscon: syscon::Syscon,
            clint: clint::Clint::restore((), &s.clint)?,
            plic: plic::Plic::restore((), &s.plic)?,
            uart: uart::Uart::restore((), &s.uart)?,
            virtio,
        };
        // Line levels are derived state: recompute them rather than trust the snapshot's.
        d.update_irqs();
        Ok(d)
    }
}

#[cfg(test)]
mod tests;
