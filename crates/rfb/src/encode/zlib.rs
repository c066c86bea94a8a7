//! A persistent zlib stream (one per ZRLE connection, four per Tight connection).

use flate2::{Compress, Compression, FlushCompress};

pub(crate) struct Deflate {
    z: Compress,
    level: u32,
}

impl std::fmt::Debug for Deflate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflate").field("level", &self.level).field("total_in", &self.z.total_in()).finish()
    }
}

impl Deflate {
    pub(crate) fn new(level: u32) -> Deflate {
        Deflate { z: Compress::new(Compression::new(level.min(9)), true), level: level.min(9) }
    }

    /// Compresses `data` and sync-flushes, appending to `out`; the receiver's inflate stream
    /// then yields exactly `data`.
    pub(crate) fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(input.len() / 2 + 1024);
            }
            let before = self.z.total_in();
            let res = self.z.compress_vec(input, out, FlushCompress::Sync);
            let used = usize::try_from(self.z.total_in() - before).unwrap_or(input.len()).min(input.len());
            input = &input[used..];
            // With a sync flush, room left in the output means the flush completed.
            if res.is_err() || (input.is_empty() && out.len() < out.capacity()) {
                break;
            }
        }
    }
}
