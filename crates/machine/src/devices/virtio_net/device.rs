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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::mock::{self, MockQueue};
    use crate::devices::virtio::{VirtioBackend, VirtioMmio, VIRTIO_F_VERSION_1};
    use crate::env::NullEnvironment;
    use crate::persist::Persist;

    const RAM: u64 = 0x8000_0000;
    const BUF: u64 = RAM + 0x2_0000;

    struct Rig {
        dev: VirtioMmio,
        ram: GuestRam,
        rx: MockQueue,
        tx: MockQueue,
        env: NullEnvironment,
    }

    impl Rig {
        fn new() -> Rig {
            let mut ram = GuestRam::new(RAM, 1 << 20);
            let rx = MockQueue::new(&mut ram, RAM, 16);
            let tx = MockQueue::new(&mut ram, RAM + 0x1000, 16);
            let mut dev = VirtioMmio::new(VirtioBackend::Net(Net::new([2, 0, 0, 0, 0, 7])));
            let mut env = NullEnvironment::default();
            let feats = VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS;
            let st = mock::activate(&mut dev, &mut ram, &mut MmioCtx { icount: 0, now: 0, env: &mut env }, feats, &[&rx, &tx]);
            assert_eq!(st, 0xf);
            Rig { dev, ram, rx, tx, env }
        }

        fn ctx(&mut self) -> MmioCtx<'_> {
            MmioCtx { icount: 0, now: 0, env: &mut self.env }
        }

        fn receive(&mut self, frame: Vec<u8>) {
            let VirtioBackend::Net(n) = self.dev.backend_mut() else { unreachable!() };
            n.receive(frame);
            let mut env = NullEnvironment::default();
            let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut env };
            self.dev.run(&mut self.ram, &mut ctx, |b, q, ram, _| b.driver_ready(q, ram));
        }

        fn net(&self) -> &Net {
            let VirtioBackend::Net(n) = self.dev.backend() else { unreachable!() };
            n
        }
    }

    #[test]
    fn config_has_mac_and_link_up() {
        let mut r = Rig::new();
        assert_eq!(r.dev.read(0x100, 4).unwrap(), 0x0000_0002);
        assert_eq!(r.dev.read(0x105, 1).unwrap(), 7);
        assert_eq!(r.dev.read(0x106, 2).unwrap(), 1);
        assert_eq!(r.dev.read(0x8, 4).unwrap(), 1);
        let _ = r.ctx();
    }

    #[test]
    fn transmit_strips_the_header() {
        let mut r = Rig::new();
        r.ram.write(BUF, &[0xee; HEADER_LEN]).unwrap();
        r.ram.write(BUF + 0x100, b"frame-part-1|").unwrap();
        r.ram.write(BUF + 0x200, b"part-2").unwrap();
        let head = r.tx.add_chain(&mut r.ram, &[(BUF, 12, false), (BUF + 0x100, 13, false), (BUF + 0x200, 6, false)]);
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut r.env };
        mock::notify(&mut r.dev, &mut r.ram, &mut ctx, 1);
        assert_eq!(r.env.net_tx, vec![b"frame-part-1|part-2".to_vec()]);
        assert_eq!(r.tx.take_used(&r.ram), vec![(u32::from(head), 0)]);
        assert!(r.dev.irq());
        // Shorter than a header: returned, not sent.
        r.tx.add_chain(&mut r.ram, &[(BUF, 4, false)]);
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut r.env };
        mock::notify(&mut r.dev, &mut r.ram, &mut ctx, 1);
        assert_eq!(r.env.net_tx.len(), 1);
        assert_eq!(r.net().metrics().tx_dropped, 1);
    }

    #[test]
    fn receive_into_posted_buffers_with_backlog() {
        let mut r = Rig::new();
        // Nothing posted: frames wait, in order.
        r.receive(b"first".to_vec());
        r.receive(b"second".to_vec());
        assert_eq!(r.net().backlog_len(), 2);
        assert!(!r.dev.irq());
        let h1 = r.rx.add_chain(&mut r.ram, &[(BUF, 1526, true)]);
        let h2 = r.rx.add_chain(&mut r.ram, &[(BUF + 0x1000, 8, true), (BUF + 0x2000, 1518, true)]);
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut r.env };
        mock::notify(&mut r.dev, &mut r.ram, &mut ctx, 0);
        assert_eq!(r.rx.take_used(&r.ram), vec![(u32::from(h1), 17), (u32::from(h2), 18)]);
        let mut got = [0u8; 17];
        r.ram.read(BUF, &mut got).unwrap();
        assert_eq!(&got[..12], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0], "header: num_buffers = 1");
        assert_eq!(&got[12..], b"first");
        let mut second = [0u8; 10];
        r.ram.read(BUF + 0x2000, &mut second).unwrap();
        assert_eq!(&second[4..], b"second", "header split across buffers");
        assert!(r.dev.irq());

        // A buffer posted now is used at once by the next frame.
        let h3 = r.rx.add_chain(&mut r.ram, &[(BUF, 1526, true)]);
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut r.env };
        mock::notify(&mut r.dev, &mut r.ram, &mut ctx, 0);
        r.receive(vec![7; 60]);
        assert_eq!(r.rx.take_used(&r.ram), vec![(u32::from(h3), 72)]);
    }

    #[test]
    fn drops_are_bounded_and_counted() {
        let mut r = Rig::new();
        for i in 0..RX_BACKLOG + 5 {
            r.receive(vec![u8::try_from(i % 256).unwrap_or(0); 64]);
        }
        assert_eq!(r.net().backlog_len(), RX_BACKLOG);
        assert_eq!(r.net().metrics().rx_dropped, 5);
        r.receive(vec![0; MAX_FRAME + 1]);
        assert_eq!(r.net().metrics().rx_dropped, 6);
        // A buffer too small for the head frame drops that frame and is kept for the next.
        let mut r = Rig::new();
        r.receive(vec![1; 1000]);
        r.receive(vec![2; 10]);
        let h = r.rx.add_chain(&mut r.ram, &[(BUF, 100, true)]);
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut r.env };
        mock::notify(&mut r.dev, &mut r.ram, &mut ctx, 0);
        assert_eq!(r.rx.take_used(&r.ram), vec![(u32::from(h), 22)]);
        assert_eq!(r.net().metrics().rx_dropped, 1);
    }

    #[test]
    fn persist_round_trip_and_refusal() {
        let mut r = Rig::new();
        r.receive(b"waiting".to_vec());
        let state = r.dev.save();
        r.receive(b"more".to_vec());
        let restored = VirtioMmio::restore(VirtioBackend::Net(Net::new([2, 0, 0, 0, 0, 7])), &state).unwrap();
        assert_eq!(restored.save(), state);
        let bad = crate::devices::virtio_net::NetState { backlog: vec![vec![]; RX_BACKLOG + 1] };
        assert!(Net::restore([0; 6], &bad).unwrap_err().to_string().contains("backlogged frames"));
    }
}
