use std::collections::VecDeque;

use super::metrics::NetMetrics;
use crate::bus::MmioCtx;
use crate::devices::virtio::backend::read_config_bytes;
use crate::devices::virtio::{Queue, QueueError};
use crate::env::Output;
use crate::ram::GuestRam;

/// Size of `virtio_net_hdr_v1`.
pub const HEADER_LEN: usize = 12;
/// Largest frame carried (an Ethernet frame with a VLAN tag is 1518; leave room for jumbo-less
/// oddities but refuse anything absurd).
pub const MAX_FRAME: usize = 65_535;
/// Frames held while no receive buffer is posted.
pub const RX_BACKLOG: usize = 64;

const VIRTIO_NET_F_MAC: u64 = 1 << 5;
const VIRTIO_NET_F_STATUS: u64 = 1 << 16;
const VIRTIO_NET_S_LINK_UP: u16 = 1;
const QUEUE_SIZE: u16 = 256;
const RXQ: usize = 0;
const TXQ: usize = 1;

/// The network device.
#[derive(Debug, Clone)]
pub struct Net {
    pub(super) mac: [u8; 6],
    pub(super) backlog: VecDeque<Vec<u8>>,
    metrics: NetMetrics,
}

impl PartialEq for Net {
    fn eq(&self, o: &Self) -> bool {
        self.mac == o.mac && self.backlog == o.backlog
    }
}

impl Net {
    pub fn new(mac: [u8; 6]) -> Self {
        Net { mac, backlog: VecDeque::new(), metrics: NetMetrics::default() }
    }

    pub fn mac(&self) -> [u8; 6] {
        self.mac
    }

    pub fn metrics(&self) -> NetMetrics {
        self.metrics
    }

    /// Frames waiting for receive buffers.
    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    pub fn features(&self) -> u64 {
        VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS
    }

    pub fn queue_sizes(&self) -> &'static [u16] {
        &[QUEUE_SIZE, QUEUE_SIZE]
    }

    pub fn read_config(&self, offset: u64, buf: &mut [u8]) {
        let mut c = [0u8; 8];
        c[..6].copy_from_slice(&self.mac);
        c[6..8].copy_from_slice(&VIRTIO_NET_S_LINK_UP.to_le_bytes());
        read_config_bytes(&c, offset, buf);
    }

    pub fn write_config(&mut self, _offset: u64, _data: &[u8]) {}

    pub fn reset(&mut self) {
        self.backlog.clear();
    }

    /// A frame arrives from the outside: queue it (bounded) and deliver what buffers allow.
    pub fn receive(&mut self, frame: Vec<u8>) {
        if frame.len() > MAX_FRAME || self.backlog.len() >= RX_BACKLOG {
            self.metrics.rx_dropped += 1;
            return;
        }
        self.backlog.push_back(frame);
    }

    /// Move backlogged frames into posted receive buffers.
    pub fn deliver(&mut self, queues: &mut [Queue], ram: &mut GuestRam) -> Result<(), QueueError> {
        let Some(q) = queues.get_mut(RXQ) else { return Ok(()) };
        while let Some(frame) = self.backlog.front() {
            let Some(chain) = q.pop(ram)? else { break };
            let need = (HEADER_LEN + frame.len()) as u64;
            if chain.writable_len() < need {
                // Too small for this frame: drop the frame, keep the buffer for the next.
                q.undo_pop();
                self.backlog.pop_front();
                self.metrics.rx_dropped += 1;
                continue;
            }
            let mut header = [0u8; HEADER_LEN];
            header[10] = 1; // num_buffers
            let mut w = chain.writer();
            w.write(ram, &header);
            w.write(ram, frame);
            q.add_used(ram, chain.head, u32::try_from(w.done).unwrap_or(u32::MAX))?;
            self.backlog.pop_front();
            self.metrics.rx_frames += 1;
        }
        Ok(())
    }

    fn transmit(&mut self, q: &mut Queue, ram: &mut GuestRam, ctx: &mut MmioCtx<'_>) -> Result<(), QueueError> {
        let mut frame = Vec::new();
        while let Some(chain) = q.pop(ram)? {
            let len = chain.readable_len();
            if len < HEADER_LEN as u64 || len > (HEADER_LEN + MAX_FRAME) as u64 {
                self.metrics.tx_dropped += 1;
            } else {
                // len - HEADER_LEN <= MAX_FRAME fits a usize.
                frame.resize(usize::try_from(len).unwrap_or(0) - HEADER_LEN, 0);
                let mut r = chain.reader();
                r.skip(HEADER_LEN);
                r.read(ram, &mut frame);
                ctx.env.output(ctx.icount, Output::NetTx(&frame));
                self.metrics.tx_frames += 1;
            }
            q.add_used(ram, chain.head, 0)?;
        }
        Ok(())
    }

    pub fn notify(
        &mut self,
        index: usize,
        queues: &mut [Queue],
        ram: &mut GuestRam,
        ctx: &mut MmioCtx<'_>,
    ) -> Result<(), QueueError> {
        match index {
            RXQ => self.deliver(queues, ram),
            TXQ => match queues.get_mut(TXQ) {
                Some(q) => self.transmit(q, ram, ctx),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}
