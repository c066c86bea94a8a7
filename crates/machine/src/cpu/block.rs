//! The decoded-block cache, keyed by physical address.
//!
//! A block is a run of decoded instructions inside one physical page, ending at the first
//! instruction for which [`Insn::ends_block`] holds, at the page end, or after [`MAX_BLOCK`]
//! instructions. Pages that blocks were decoded from are marked in the RAM code-page bitmap;
//! a write to such a page queues it for invalidation and [`BlockCache::invalidate_page`] drops its
//! blocks.
//!
//! Layout, for cache locality: the instructions of all blocks are packed into one arena, and a
//! direct-mapped table of 16-byte slots maps a physical address to its range there (a collision
//! simply rebuilds). Invalidated blocks leave garbage in the arena; when it fills up, the whole
//! cache is dropped and rebuilt on demand.

use std::collections::BTreeMap;

use super::decode::Insn;

pub const MAX_BLOCK: usize = 64;
const SLOT_BITS: u32 = 15;
const SLOTS: usize = 1 << SLOT_BITS;
const NO_BLOCK: u64 = u64::MAX;
/// Instructions the arena holds before the cache is dropped (16 bytes each).
const ARENA_LIMIT: usize = 1 << 21;

/// Where a cached block's instructions are.
#[derive(Debug, Clone, Copy)]
pub struct Slot {
    /// Physical address of the first instruction ([`u64::MAX`]: empty slot).
    pub pa: u64,
    pub start: u32,
    pub len: u32,
}

const EMPTY: Slot = Slot { pa: NO_BLOCK, start: 0, len: 0 };

/// The cache.
#[derive(Debug)]
pub struct BlockCache {
    pub slots: Vec<Slot>,
    /// Decoded instructions of every cached block, back to back.
    pub arena: Vec<Insn>,
    /// For each physical page number, the slots that held blocks from it (possibly stale).
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
        BlockCache { slots: vec![EMPTY; SLOTS], arena: Vec::new(), by_page: BTreeMap::new() }
    }

    /// Slot holding the block at `pa`, if cached.
    #[inline]
    pub fn lookup(&self, pa: u64) -> Option<usize> {
        let s = slot_of(pa);
        (self.slots[s].pa == pa).then_some(s)
    }

    /// Store a freshly decoded block (1..=[`MAX_BLOCK`] instructions); returns its slot.
    pub fn insert(&mut self, pa: u64, insns: &[Insn]) -> usize {
        if self.arena.len() + insns.len() > ARENA_LIMIT {
            self.clear();
        }
        let s = slot_of(pa);
        // Both fit in u32: the arena is capped at ARENA_LIMIT, SLOTS is 2^15.
        #[allow(clippy::cast_possible_truncation)]
        {
            self.slots[s] = Slot { pa, start: self.arena.len() as u32, len: insns.len() as u32 };
            self.by_page.entry(pa >> 12).or_default().push(s as u32);
        }
        self.arena.extend_from_slice(insns);
        s
    }

    /// Drop the blocks decoded from physical page `ppn`.
    pub fn invalidate_page(&mut self, ppn: u64) {
        if let Some(list) = self.by_page.remove(&ppn) {
            for s in list {
                let b = &mut self.slots[s as usize];
                if b.pa != NO_BLOCK && b.pa >> 12 == ppn {
                    *b = EMPTY;
                }
            }
        }
    }

    pub fn clear(&mut self) {
        self.slots.fill(EMPTY);
        self.arena.clear();
        self.by_page.clear();
    }
}

impl Default for BlockCache {
    fn default() -> Self {
        BlockCache::new()
    }
}
