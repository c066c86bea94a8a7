//! Tests of the aggregate: dispatch by address, interrupt wiring through the PLIC, injection and
//! whole-device snapshots.

use super::*;
use crate::devices::virtio::mock::{self, MockQueue};
use crate::devices::virtio::VIRTIO_F_VERSION_1;
use crate::env::NullEnvironment;
use crate::persist::{decode, encode};

const RAM: u64 = crate::bus::RAM_BASE;

fn config() -> DevicesConfig {
    DevicesConfig {
        disk: Some(Box::new(MemDisk(vec![7; 8192]))),
        framebuffer: Some(FramebufferConfig { width: 640, height: 480 }),
        ..Default::default()
    }
}

struct Rig {
    d: Devices,
    ram: GuestRam,
    env: NullEnvironment,
}

impl Rig {
    fn new() -> Rig {
        Rig { d: Devices::new(config()).unwrap(), ram: GuestRam::new(RAM, 1 << 20), env: NullEnvironment::default() }
    }
    fn r(&mut self, addr: u64, size: u8) -> Result<u64, BusFault> {
        let mut ctx = MmioCtx { icount: 5, now: 77, env: &mut self.env };
        self.d.read(addr, size, &mut self.ram, &mut ctx)
    }
    fn w(&mut self, addr: u64, size: u8, v: u64) -> Result<MachineRequest, BusFault> {
        let mut ctx = MmioCtx { icount: 5, now: 77, env: &mut self.env };
        self.d.write(addr, size, v, &mut self.ram, &mut ctx)
    }
    fn inject(&mut self, e: InputEvent) {
        let mut ctx = MmioCtx { icount: 5, now: 77, env: &mut self.env };
        self.d.inject(e, &mut self.ram, &mut ctx);
    }
}

#[test]
fn slots_in_order_and_empty_slots_answer_device_id_0() {
    let mut r = Rig::new();
    let kinds: Vec<DeviceKind> = r.d.virtio_slots().iter().map(|s| s.kind).collect();
    assert_eq!(kinds, [DeviceKind::Block, DeviceKind::Net, DeviceKind::Keyboard, DeviceKind::Tablet, DeviceKind::Rng]);
    let s = r.d.virtio_slots()[4];
    assert_eq!((s.base, s.irq), (VIRTIO_BASE + 4 * VIRTIO_STRIDE, 5));
    assert_eq!(r.r(VIRTIO_BASE + 8, 4).unwrap(), 2, "slot 0 is the block device");
    assert_eq!(r.r(VIRTIO_BASE + 4 * VIRTIO_STRIDE + 8, 4).unwrap(), 4, "slot 4 is rng");
    let empty = VIRTIO_BASE + 7 * VIRTIO_STRIDE;
    assert_eq!(r.r(empty, 4).unwrap(), 0x7472_6976);
    assert_eq!(r.r(empty + 8, 4).unwrap(), 0);
    assert_eq!(r.w(empty + 0x70, 4, 1).unwrap(), MachineRequest::None);
    assert_eq!(r.r(VIRTIO_BASE + VIRTIO_SLOTS * VIRTIO_STRIDE, 4), Err(BusFault));
    assert_eq!(r.r(0x0, 4), Err(BusFault));
    assert_eq!(r.r(UART_BASE + UART_SIZE, 1), Err(BusFault));
    let none = Devices::new(DevicesConfig { net: false, input: false, rng: false, ..Default::default() }).unwrap();
    assert!(none.virtio_slots().is_empty());
    assert!(matches!(
        Devices::new(DevicesConfig { disk: Some(Box::new(MemDisk(vec![0; 100]))), ..Default::default() }),
        Err(DeviceError::EmptyDisk { len: 100 })
    ));
}

#[test]
fn clint_and_syscon_through_the_bus() {
    let mut r = Rig::new();
    assert_eq!(r.r(CLINT_BASE + 0xbff8, 8).unwrap(), 77, "mtime is ctx.now");
    r.w(CLINT_BASE + 0x4000, 8, 1000).unwrap();
    assert_eq!(r.d.mtimecmp(), 1000);
    r.w(CLINT_BASE, 4, 1).unwrap();
    assert_eq!(r.d.interrupts(), Interrupts { msip: true, meip: false, seip: false });
    assert_eq!(r.w(SYSCON_BASE, 4, 0x5555).unwrap(), MachineRequest::PowerOff(0));
}

#[test]
fn uart_interrupt_reaches_the_s_context_and_claim_complete_clears_it() {
    let mut r = Rig::new();
    r.w(PLIC_BASE + 4 * u64::from(UART_IRQ), 4, 1).unwrap();
    r.w(PLIC_BASE + 0x2080, 4, 1 << UART_IRQ).unwrap();
    r.w(UART_BASE + 1, 1, 1).unwrap(); // IER: receive data
    assert!(!r.d.interrupts().seip);
    r.inject(InputEvent::UartRx(b"x".to_vec()));
    assert_eq!(r.d.interrupts(), Interrupts { msip: false, meip: false, seip: true });
    let claim = PLIC_BASE + 0x20_1004;
    assert_eq!(r.r(claim, 4).unwrap(), u64::from(UART_IRQ));
    assert!(!r.d.interrupts().seip);
    assert_eq!(r.r(UART_BASE, 1).unwrap(), u64::from(b'x'));
    r.w(claim, 4, u64::from(UART_IRQ)).unwrap();
    assert!(!r.d.interrupts().seip, "line low after the byte was read");
    // Output goes to the environment at the accessing instruction.
    r.w(UART_BASE, 1, u64::from(b'!')).unwrap();
    assert_eq!(r.env.console, b"!");
}

#[test]
fn virtio_interrupt_and_injected_keys_reach_the_guest() {
    let mut r = Rig::new();
    let kbd = r.d.virtio_slots()[2];
    r.w(PLIC_BASE + 4 * u64::from(kbd.irq), 4, 1).unwrap();
    r.w(PLIC_BASE + 0x2080, 4, 1 << kbd.irq).unwrap();
    let mut evq = MockQueue::new(&mut r.ram, RAM, 16);
    let stq = MockQueue::new(&mut r.ram, RAM + 0x1000, 16);
    {
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut r.env };
        let dev = &mut r.d.virtio[2];
        assert_eq!(mock::activate(dev, &mut r.ram, &mut ctx, VIRTIO_F_VERSION_1, &[&evq, &stq]), 0xf);
    }
    evq.add_chain(&mut r.ram, &[(RAM + 0x8000, 8, true)]);
    evq.add_chain(&mut r.ram, &[(RAM + 0x8008, 8, true)]);
    r.w(kbd.base + 0x50, 4, 0).unwrap();
    r.inject(InputEvent::Key { code: 30, down: true });
    r.inject(InputEvent::PointerMove { x: 1, y: 1 }); // for the tablet, which is not set up
    assert_eq!(evq.take_used(&r.ram).len(), 2);
    assert!(r.d.interrupts().seip);
    assert_eq!(r.r(PLIC_BASE + 0x20_1004, 4).unwrap(), u64::from(kbd.irq));
    assert_eq!(r.r(kbd.base + 0x60, 4).unwrap(), 1);
    r.w(kbd.base + 0x64, 4, 1).unwrap();
    r.w(PLIC_BASE + 0x20_1004, 4, u64::from(kbd.irq)).unwrap();
    assert!(!r.d.interrupts().seip);
    let mut ev = [0u8; 8];
    r.ram.read(RAM + 0x8000, &mut ev).unwrap();
    assert_eq!(ev, [1, 0, 30, 0, 1, 0, 0, 0]);
}

/// crosvm-style: snapshot, mutate, restore, snapshot again, compare; through the codec.
#[test]
fn whole_devices_round_trip() {
    let mut r = Rig::new();
    r.w(PLIC_BASE + 4 * 10, 4, 3).unwrap();
    r.w(CLINT_BASE + 0x4000, 8, 12345).unwrap();
    r.w(UART_BASE + 7, 1, 0x42).unwrap();
    r.inject(InputEvent::UartRx(b"typed".to_vec()));
    r.inject(InputEvent::NetRx(vec![1; 60]));
    let before = r.d.save();
    let bytes = encode(&before);

    r.w(CLINT_BASE + 0x4000, 8, 1).unwrap();
    r.r(UART_BASE, 1).unwrap();
    r.inject(InputEvent::NetRx(vec![2; 60]));
    assert_ne!(r.d.save(), before);

    let restored = Devices::restore(config(), &decode(&bytes).unwrap()).unwrap();
    assert_eq!(restored.save(), before);
    assert_eq!(encode(&restored.save()), bytes);
    assert_eq!(restored.mtimecmp(), 12345);
}

#[test]
fn machine_reset_clears_registers_but_keeps_the_disk() {
    let mut r = Rig::new();
    r.w(CLINT_BASE + 0x4000, 8, 5).unwrap();
    r.w(PLIC_BASE + 4 * 10, 4, 3).unwrap();
    r.inject(InputEvent::UartRx(b"x".to_vec()));
    let mut q = MockQueue::new(&mut r.ram, RAM, 16);
    {
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut r.env };
        mock::activate(&mut r.d.virtio[0], &mut r.ram, &mut ctx, VIRTIO_F_VERSION_1, &[&q]);
    }
    let mut req = [0u8; 16];
    req[0] = 1; // OUT, sector 0
    r.ram.write(RAM + 0x4000, &req).unwrap();
    q.add_chain(&mut r.ram, &[(RAM + 0x4000, 16, false), (RAM + 0x5000, 512, false), (RAM + 0x6000, 1, true)]);
    r.w(VIRTIO_BASE + 0x50, 4, 0).unwrap();
    assert_eq!(r.d.block().unwrap().overlay().len(), 1);

    r.d.reset();
    assert_eq!(r.d.mtimecmp(), u64::MAX);
    assert_eq!(r.r(PLIC_BASE + 4 * 10, 4).unwrap(), 0);
    assert_eq!(r.r(UART_BASE + 5, 1).unwrap() & 1, 0, "receive buffer dropped");
    assert_eq!(r.r(VIRTIO_BASE + 0x70, 4).unwrap(), 0, "virtio status reset");
    assert_eq!(r.d.block().unwrap().overlay().len(), 1, "disk contents survive");
    assert_eq!(r.d.interrupts(), Interrupts::default());
}

#[test]
fn corrupted_or_mismatched_state_is_refused_with_a_clear_error() {
    let r = Rig::new();
    let good = r.d.save();
    let mut bad = good.clone();
    bad.uart.rx = vec![0; uart::RX_CAPACITY + 1];
    let e = Devices::restore(config(), &bad).unwrap_err().to_string();
    assert!(e.starts_with("uart state refused"), "{e}");

    let mut bad = good.clone();
    bad.virtio[4].1.queues[0].size = 1024;
    let e = Devices::restore(config(), &bad).unwrap_err().to_string();
    assert!(e.contains("virtio-rng") && e.contains("size 1024"), "{e}");

    let cfg = DevicesConfig { rng: false, ..config() };
    let e = Devices::restore(cfg, &good).unwrap_err().to_string();
    assert!(e.contains("this configuration has"), "{e}");

    // Garbage bytes do not decode.
    let mut bytes = encode(&good);
    bytes.truncate(bytes.len() / 2);
    assert!(decode::<DevicesState>(&bytes).is_err());
}
