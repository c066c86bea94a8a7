//! The decoded-block cache, keyed by physical address.
//!
//! A block is a run of decoded instructions inside one physical page, ending at the first
//! instruction for which [`Insn::ends_block`] holds, at the page end, or after [`MAX_BLOCK`]
//! instructions. Pages that blocks were decoded from are marked in the RAM code-page bitmap;
//! a write to such a page queues it for invalidation and [`BlockCache::invalidate_page`] drops its
//! blocks. The cache is a direct-mapped table: a collision simply rebuilds.

use std::collections::BTreeMap;

use super::decode::Insn;

pub const MAX_BLOCK: usize = 64;
const SLOT_BITS: u32 = 15;
const SLOTS: usize = 1 << SLOT_BITS;
const NO_BLOCK: u64 = u64::MAX;

/// A decoded block.
#[derive(Debug, Default)]
pub struct Block {
    /// Physical address of the first instruction ([`u64::MAX`]: empty slot).
    pub pa: u64,
    pub insns: Vec<Insn>,
}

/// The cache.
#[derive(Debug)]
pub struct BlockCache {
    pub slots: Vec<Block>,
    /// For each RAM page number, the slots that held blocks from it (possibly stale).
    by_page: BTreeMap<u64, Vec<u32>>,
}

#[inline]
pub fn slot_of(pa: u64) -> usize {
    // Truncation is the hash.
    #[allow(clippy::cast_possible_truncation)]
    let h = ((pa >> 1) ^ (pa >> (SLOT_BITS + 1))) as usize;
    h & (SLOTS - 1)
}

impl BlockCache {
    pub fn new() -> Self {
        let mut slots = Vec::with_capacity(SLOTS);
        slots.resize_with(SLOTS, || Block { pa: NO_BLOCK, insns: Vec::new() });
        BlockCache { slots, by_page: BTreeMap::new() }
    }

    /// Slot holding the block at `pa`, if cached.
    #[inline]
    pub fn lookup(&self, pa: u64) -> Option<usize> {
        let s = slot_of(pa);
        (self.slots[s].pa == pa).then_some(s)
    }

    /// Store a freshly decoded block; returns its slot.
    pub fn insert(&mut self, pa: u64, insns: Vec<Insn>) -> usize {
        let s = slot_of(pa);
        self.slots[s] = Block { pa, insns };
        #[allow(clippy::cast_possible_truncation)] // SLOTS fits in u32
        self.by_page.entry(pa >> 12).or_default().push(s as u32);
        s
    }

    /// Drop the blocks decoded from physical page `ppn`.
    pub fn invalidate_page(&mut self, ppn: u64) {
        if let Some(list) = self.by_page.remove(&ppn) {
            for s in list {
                let b = &mut self.slots[s as usize];
                if b.pa != NO_BLOCK && b.pa >> 12 == ppn {
                    b.pa = NO_BLOCK;
                    b.insns = Vec::new();
                }
            }
        }
    }

    pub fn clear(&mut self) {
        for b in &mut self.slots {
            b.pa = NO_BLOCK;
            b.insns = Vec::new();
        }
        self.by_page.clear();
    }
}

impl Default for BlockCache {
    fn default() -> Self {
        BlockCache::new()
    }
}
