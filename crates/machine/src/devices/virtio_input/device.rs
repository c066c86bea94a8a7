use std::collections::VecDeque;

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

/// Counters; observations only, not part of the snapshot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InputMetrics {
    pub events: u64,
    /// Reports dropped because the pending queue was full.
    pub dropped_reports: u64,
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
