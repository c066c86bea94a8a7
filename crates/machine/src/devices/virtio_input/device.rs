use std::collections::VecDeque;

use super::metrics::InputMetrics;

use crate::bus::MmioCtx;
use crate::devices::virtio::backend::read_config_bytes;
use crate::devices::virtio::{DeviceKind, Queue, QueueError};
use crate::env::InputEvent;
use crate::ram::GuestRam;

/// Most evdev events held while the driver posts no buffers.
pub const MAX_PENDING: usize = 512;
const QUEUE_SIZE: u16 = 64;
const EVENTQ: usize = 0;
const STATUSQ: usize = 1;

const CFG_UNSET: u8 = 0x00;
const CFG_ID_NAME: u8 = 0x01;
const CFG_ID_SERIAL: u8 = 0x02;
const CFG_ID_DEVIDS: u8 = 0x03;
const CFG_PROP_BITS: u8 = 0x10;
const CFG_EV_BITS: u8 = 0x11;
const CFG_ABS_INFO: u8 = 0x12;

pub(crate) const EV_SYN: u16 = 0x00;
pub(crate) const EV_KEY: u16 = 0x01;
pub(crate) const EV_REL: u16 = 0x02;
pub(crate) const EV_ABS: u16 = 0x03;
pub(crate) const EV_REP: u16 = 0x14;
const SYN_REPORT: u16 = 0;
const REL_WHEEL: u16 = 0x08;
const ABS_X: u16 = 0x00;
const ABS_Y: u16 = 0x01;
pub(crate) const BTN_LEFT: u16 = 0x110;
pub(crate) const BTN_RIGHT: u16 = 0x111;
pub(crate) const BTN_MIDDLE: u16 = 0x112;
const BUS_VIRTUAL: u16 = 0x06;
/// Highest key code the keyboard reports.
const KEY_MAX_REPORTED: u16 = 0xff;

/// What an input device is (configuration, not state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputConfig {
    /// [`DeviceKind::Keyboard`] or [`DeviceKind::Tablet`].
    pub kind: DeviceKind,
    /// Tablet range: `ABS_X` in `0..width`, `ABS_Y` in `0..height`.
    pub width: u32,
    pub height: u32,
}


/// A keyboard or tablet.
#[derive(Debug, Clone)]
pub struct Input {
    pub(super) config: InputConfig,
    pub(super) select: u8,
    pub(super) subsel: u8,
    /// evdev events (type, code, value) not yet delivered.
    pub(super) pending: VecDeque<(u16, u16, u32)>,
    metrics: InputMetrics,
}

impl PartialEq for Input {
    fn eq(&self, o: &Self) -> bool {
        (self.config, self.select, self.subsel) == (o.config, o.select, o.subsel) && self.pending == o.pending
    }
}

fn bitmap(codes: impl IntoIterator<Item = u16>) -> Vec<u8> {
    let mut v = Vec::new();
    for c in codes {
        let byte = usize::from(c / 8);
        if v.len() <= byte {
            v.resize(byte + 1, 0);
        }
        v[byte] |= 1 << (c % 8);
    }
    v
}

impl Input {
    pub fn new(config: InputConfig) -> Self {
        Input { config, select: CFG_UNSET, subsel: 0, pending: VecDeque::new(), metrics: InputMetrics::default() }
    }

    pub fn kind(&self) -> DeviceKind {
        self.config.kind
    }

    pub fn config(&self) -> InputConfig {
        self.config
    }

    pub fn metrics(&self) -> InputMetrics {
        self.metrics
    }

    fn is_keyboard(&self) -> bool {
        self.config.kind == DeviceKind::Keyboard
    }

    /// The codes this device reports for event type `ev`.
    fn ev_bits(&self, ev: u16) -> Vec<u8> {
        match (self.is_keyboard(), ev) {
            (true, EV_KEY) => bitmap(1..=KEY_MAX_REPORTED),
            // Presence (a non-zero size) is what Linux checks for EV_REP.
            (true, EV_REP) => vec![0],
            (false, EV_KEY) => bitmap([BTN_LEFT, BTN_RIGHT, BTN_MIDDLE]),
            (false, EV_REL) => bitmap([REL_WHEEL]),
            (false, EV_ABS) => bitmap([ABS_X, ABS_Y]),
            _ => Vec::new(),
        }
    }

    /// The union payload for the current select/subsel.
    fn payload(&self) -> Vec<u8> {
        match self.select {
            CFG_ID_NAME if self.subsel == 0 => {
                let name: &[u8] = if self.is_keyboard() { b"doppel virtio keyboard" } else { b"doppel virtio tablet" };
                name.to_vec()
            }
            CFG_ID_SERIAL if self.subsel == 0 => b"doppel-0".to_vec(),
            CFG_ID_DEVIDS if self.subsel == 0 => {
                let product: u16 = if self.is_keyboard() { 1 } else { 2 };
                [BUS_VIRTUAL, 0x0627, product, 1].iter().flat_map(|v| v.to_le_bytes()).collect()
            }
            CFG_PROP_BITS if self.subsel == 0 => Vec::new(),
            CFG_EV_BITS => self.ev_bits(u16::from(self.subsel)),
            CFG_ABS_INFO if !self.is_keyboard() && u16::from(self.subsel) <= ABS_Y => {
                let extent = if u16::from(self.subsel) == ABS_X { self.config.width } else { self.config.height };
                let max = extent.saturating_sub(1);
                [0u32, max, 0, 0, 0].iter().flat_map(|v| v.to_le_bytes()).collect()
            }
            _ => Vec::new(),
        }
    }

    pub fn features(&self) -> u64 {
        0
    }

    pub fn queue_sizes(&self) -> &'static [u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    pub fn read_config(&self, offset: u64, buf: &mut [u8]) {
        let payload = self.payload();
        let mut image = vec![0u8; 8 + 128];
        image[0] = self.select;
        image[1] = self.subsel;
        image[2] = u8::try_from(payload.len()).unwrap_or(128);
        let n = payload.len().min(128);
        image[8..8 + n].copy_from_slice(&payload[..n]);
        read_config_bytes(&image, offset, buf);
    }

    pub fn write_config(&mut self, offset: u64, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            match offset + i as u64 {
                0 => self.select = b,
                1 => self.subsel = b,
                _ => {}
            }
        }
    }

    pub fn reset(&mut self) {
        self.pending.clear();
        self.select = CFG_UNSET;
        self.subsel = 0;
    }

    /// Turn an input event into evdev events plus `SYN_REPORT`. Events this device does not
    /// report are ignored; returns whether the event was for this device.
    pub fn push_event(&mut self, event: &InputEvent) -> bool {
        let mut report: Vec<(u16, u16, u32)> = Vec::with_capacity(3);
        match (self.is_keyboard(), event) {
            (true, InputEvent::Key { code, down }) if (1..=KEY_MAX_REPORTED).contains(code) => {
                report.push((EV_KEY, *code, u32::from(*down)));
            }
            (false, InputEvent::PointerMove { x, y }) => {
                report.push((EV_ABS, ABS_X, (*x).min(self.config.width.saturating_sub(1))));
                report.push((EV_ABS, ABS_Y, (*y).min(self.config.height.saturating_sub(1))));
            }
            (false, InputEvent::PointerButton { code, down }) if [BTN_LEFT, BTN_RIGHT, BTN_MIDDLE].contains(code) => {
                report.push((EV_KEY, *code, u32::from(*down)));
            }
            (false, InputEvent::Wheel { delta }) => {
                // The event value is an s32 carried as its two's-complement bits.
                report.push((EV_REL, REL_WHEEL, delta.cast_unsigned()));
            }
            _ => return false,
        }
        report.push((EV_SYN, SYN_REPORT, 0));
        if self.pending.len() + report.len() > MAX_PENDING {
            self.metrics.dropped_reports += 1;
        } else {
            self.pending.extend(report);
        }
        true
    }

    /// Write pending events into posted event buffers.
    pub fn deliver(&mut self, queues: &mut [Queue], ram: &mut GuestRam) -> Result<(), QueueError> {
        let Some(q) = queues.get_mut(EVENTQ) else { return Ok(()) };
        while let Some(&(ty, code, value)) = self.pending.front() {
            let Some(chain) = q.pop(ram)? else { break };
            let mut ev = [0u8; 8];
            ev[0..2].copy_from_slice(&ty.to_le_bytes());
            ev[2..4].copy_from_slice(&code.to_le_bytes());
            ev[4..8].copy_from_slice(&value.to_le_bytes());
            let written = chain.writer().write(ram, &ev);
            q.add_used(ram, chain.head, u32::try_from(written).unwrap_or(0))?;
            self.pending.pop_front();
            self.metrics.events += 1;
        }
        Ok(())
    }

    pub fn notify(
        &mut self,
        index: usize,
        queues: &mut [Queue],
        ram: &mut GuestRam,
        _ctx: &mut MmioCtx<'_>,
    ) -> Result<(), QueueError> {
        match index {
            EVENTQ => self.deliver(queues, ram),
            STATUSQ => {
                let Some(q) = queues.get_mut(STATUSQ) else { return Ok(()) };
                while let Some(chain) = q.pop(ram)? {
                    q.add_used(ram, chain.head, 0)?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::mock::{self, MockQueue};
    use crate::devices::virtio::{VirtioBackend, VirtioMmio, VIRTIO_F_VERSION_1};
    use crate::env::NullEnvironment;
    use crate::persist::Persist;

    const RAM: u64 = 0x8000_0000;
    const BUF: u64 = RAM + 0x2_0000;

    fn select(d: &mut VirtioMmio, ram: &mut GuestRam, sel: u8, sub: u8) -> Vec<u8> {
        let mut env = NullEnvironment::default();
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut env };
        d.write(0x100, 1, u64::from(sel), ram, &mut ctx).unwrap();
        d.write(0x101, 1, u64::from(sub), ram, &mut ctx).unwrap();
        let size = d.read(0x102, 1).unwrap();
        (0..size).map(|i| (d.read(0x108 + i, 1).unwrap() & 0xff) as u8).collect()
    }

    fn tablet() -> VirtioMmio {
        VirtioMmio::new(VirtioBackend::Input(Input::new(InputConfig { kind: DeviceKind::Tablet, width: 1024, height: 768 })))
    }

    fn keyboard() -> VirtioMmio {
        VirtioMmio::new(VirtioBackend::Input(Input::new(InputConfig { kind: DeviceKind::Keyboard, width: 1, height: 1 })))
    }

    fn has(bits: &[u8], code: u16) -> bool {
        bits.get(usize::from(code / 8)).is_some_and(|b| b & (1 << (code % 8)) != 0)
    }

    #[test]
    fn config_space_as_linux_reads_it() {
        let mut ram = GuestRam::new(RAM, 1 << 20);
        let mut k = keyboard();
        assert_eq!(k.read(0x8, 4).unwrap(), 18);
        assert_eq!(select(&mut k, &mut ram, CFG_ID_NAME, 0), b"doppel virtio keyboard");
        assert_eq!(select(&mut k, &mut ram, CFG_ID_SERIAL, 0), b"doppel-0");
        let ids = select(&mut k, &mut ram, CFG_ID_DEVIDS, 0);
        assert_eq!(ids.len(), 8);
        assert_eq!(u16::from_le_bytes([ids[0], ids[1]]), BUS_VIRTUAL);
        assert!(select(&mut k, &mut ram, CFG_PROP_BITS, 0).is_empty());
        let keys = select(&mut k, &mut ram, CFG_EV_BITS, 1);
        assert!(has(&keys, 1) && has(&keys, 30) && has(&keys, 0xff) && !has(&keys, 0));
        assert!(!select(&mut k, &mut ram, CFG_EV_BITS, EV_REP.to_le_bytes()[0]).is_empty());
        assert!(select(&mut k, &mut ram, CFG_EV_BITS, EV_ABS.to_le_bytes()[0]).is_empty());
        assert!(select(&mut k, &mut ram, CFG_ABS_INFO, 0).is_empty());
        assert_eq!(k.read(0x100, 1).unwrap(), u64::from(CFG_ABS_INFO), "select reads back");

        let mut t = tablet();
        assert_eq!(select(&mut t, &mut ram, CFG_ID_NAME, 0), b"doppel virtio tablet");
        let keys = select(&mut t, &mut ram, CFG_EV_BITS, EV_KEY.to_le_bytes()[0]);
        assert!(has(&keys, BTN_LEFT) && has(&keys, BTN_RIGHT) && has(&keys, BTN_MIDDLE) && !has(&keys, 30));
        assert!(has(&select(&mut t, &mut ram, CFG_EV_BITS, EV_REL.to_le_bytes()[0]), REL_WHEEL));
        let abs = select(&mut t, &mut ram, CFG_EV_BITS, EV_ABS.to_le_bytes()[0]);
        assert!(has(&abs, ABS_X) && has(&abs, ABS_Y));
        assert!(select(&mut t, &mut ram, CFG_EV_BITS, EV_REP.to_le_bytes()[0]).is_empty());
        let info = select(&mut t, &mut ram, CFG_ABS_INFO, 1);
        let words: Vec<u32> = info.chunks(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(words, vec![0, 767, 0, 0, 0]);
        assert!(select(&mut t, &mut ram, CFG_ABS_INFO, 2).is_empty());
    }

    #[test]
    fn events_become_evdev_reports() {
        let mut ram = GuestRam::new(RAM, 1 << 20);
        let mut env = NullEnvironment::default();
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut env };
        let mut t = tablet();
        let evq = MockQueue::new(&mut ram, RAM, 16);
        let stq = MockQueue::new(&mut ram, RAM + 0x1000, 16);
        let mut evq = evq;
        assert_eq!(mock::activate(&mut t, &mut ram, &mut ctx, VIRTIO_F_VERSION_1, &[&evq, &stq]), 0xf);
        // Input with no buffer posted waits in the device.
        let VirtioBackend::Input(i) = t.backend_mut() else { unreachable!() };
        assert!(i.push_event(&InputEvent::PointerMove { x: 5000, y: 20 }));
        assert!(!i.push_event(&InputEvent::Key { code: 30, down: true }), "a tablet has no keys");
        t.run(&mut ram, &mut ctx, |b, q, ram, _| b.driver_ready(q, ram));
        assert!(!t.irq());
        for i in 0..8 {
            evq.add_chain(&mut ram, &[(BUF + 8 * i, 8, true)]);
        }
        mock::notify(&mut t, &mut ram, &mut ctx, 0);
        assert_eq!(evq.take_used(&ram).len(), 3);
        let VirtioBackend::Input(i) = t.backend_mut() else { unreachable!() };
        i.push_event(&InputEvent::Wheel { delta: -1 });
        i.push_event(&InputEvent::PointerButton { code: BTN_LEFT, down: true });
        t.run(&mut ram, &mut ctx, |b, q, ram, _| b.driver_ready(q, ram));
        assert_eq!(evq.take_used(&ram).iter().map(|u| u.1).collect::<Vec<_>>(), vec![8; 4]);
        let mut raw = [0u8; 56];
        ram.read(BUF, &mut raw).unwrap();
        let evs: Vec<(u16, u16, u32)> = raw
            .chunks(8)
            .map(|e| (u16::from_le_bytes([e[0], e[1]]), u16::from_le_bytes([e[2], e[3]]), u32::from_le_bytes([e[4], e[5], e[6], e[7]])))
            .collect();
        assert_eq!(
            evs,
            vec![
                (EV_ABS, ABS_X, 1023), // clamped to the framebuffer
                (EV_ABS, ABS_Y, 20),
                (EV_SYN, SYN_REPORT, 0),
                (EV_REL, REL_WHEEL, u32::MAX),
                (EV_SYN, SYN_REPORT, 0),
                (EV_KEY, BTN_LEFT, 1),
                (EV_SYN, SYN_REPORT, 0),
            ]
        );
        assert!(t.irq());
        // 1 buffer left; the status queue is drained and ignored.
        let mut stq = stq;
        stq.add_chain(&mut ram, &[(BUF + 0x100, 8, false)]);
        mock::notify(&mut t, &mut ram, &mut ctx, 1);
        assert_eq!(stq.take_used(&ram).len(), 1);
    }

    #[test]
    fn pending_is_bounded_and_persisted() {
        let mut k = keyboard();
        let VirtioBackend::Input(i) = k.backend_mut() else { unreachable!() };
        for n in 0..MAX_PENDING {
            i.push_event(&InputEvent::Key { code: 30, down: n % 2 == 0 });
        }
        assert_eq!(i.pending.len(), MAX_PENDING);
        assert_eq!(i.metrics().dropped_reports, MAX_PENDING as u64 / 2);
        assert!(!i.push_event(&InputEvent::Key { code: 0x100, down: true }), "outside the key bitmap");
        let state = k.save();
        let VirtioBackend::Input(i) = k.backend_mut() else { unreachable!() };
        i.pending.clear();
        let fresh = VirtioBackend::Input(Input::new(InputConfig { kind: DeviceKind::Keyboard, width: 1, height: 1 }));
        let r = VirtioMmio::restore(fresh, &state).unwrap();
        assert_eq!(r.save(), state);
        let bad = crate::devices::virtio_input::InputState { select: 0, subsel: 0, pending: vec![(0x15, 0, 0)] };
        let cfg = InputConfig { kind: DeviceKind::Keyboard, width: 1, height: 1 };
        assert!(Input::restore(cfg, &bad).unwrap_err().to_string().contains("type 0x15"));
    }
}
