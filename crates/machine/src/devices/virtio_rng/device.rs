use crate::bus::MmioCtx;
use crate::devices::virtio::{Queue, QueueError};
use crate::ram::GuestRam;

/// Most bytes given per buffer.
pub const MAX_REQUEST: usize = 4096;
const QUEUE_SIZE: u16 = 64;

/// The entropy device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rng;

impl Rng {
    pub fn features(&self) -> u64 {
        0
    }

    pub fn queue_sizes(&self) -> &'static [u16] {
        &[QUEUE_SIZE]
    }

    pub fn read_config(&self, _offset: u64, buf: &mut [u8]) {
        buf.fill(0);
    }

    pub fn write_config(&mut self, _offset: u64, _data: &[u8]) {}

    pub fn reset(&mut self) {}

    pub fn notify(
        &mut self,
        _index: usize,
        queues: &mut [Queue],
        ram: &mut GuestRam,
        ctx: &mut MmioCtx<'_>,
    ) -> Result<(), QueueError> {
        let Some(q) = queues.first_mut() else { return Ok(()) };
        let mut buf = [0u8; MAX_REQUEST];
        while let Some(chain) = q.pop(ram)? {
            let n = usize::try_from(chain.writable_len()).map_or(MAX_REQUEST, |l| l.min(MAX_REQUEST));
            if n > 0 {
                ctx.env.entropy(ctx.icount, &mut buf[..n]);
            }
            let written = chain.writer().write(ram, &buf[..n]);
            q.add_used(ram, chain.head, u32::try_from(written).unwrap_or(0))?;
        }
        Ok(())
    }
}
