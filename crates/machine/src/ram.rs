//! Guest RAM: one contiguous block of host memory, with a dirty bit per 4 KiB page.
//!
//! The dirty bits serve snapshots, migration and display damage. Whoever writes guest memory
//! through a path other than [`GuestRam::write`] (the CPU's fast store path) must call
//! [`GuestRam::mark_dirty`] for the pages it touched.
//!
//! A second bitmap marks *code pages*: pages the CPU has decoded instructions from. A write to a
//! code page through [`GuestRam::write`] or [`GuestRam::mark_dirty`] clears the mark and queues the
//! page for the CPU, which drops its decoded blocks for it ([`GuestRam::take_invalidated`]).
//! Devices doing DMA therefore never need to know about the CPU's caches.
//!
//! The host memory is a zeroed heap block by default ([`GuestRam::new`]), or a mapping the caller
//! provides ([`GuestRam::with_backing`], e.g. an anonymous mapping whose pages a userfaultfd
//! handler fills on demand). This is the one module of the crate with `unsafe`: it turns the
//! backing's pointer into slices.

#![allow(unsafe_code)] // The RAM mapping: a pointer held for the life of its owner (see `RamBacking`).

use std::ptr::NonNull;

/// Size of a guest page, the unit of dirty tracking, demand paging and migration.
pub const PAGE_SIZE: usize = 4096;
/// log2 of [`PAGE_SIZE`].
pub const PAGE_SHIFT: u32 = 12;

/// Host memory that backs guest RAM, provided from outside the machine.
///
/// # Safety
///
/// Implementors promise that [`RamBacking::as_mut_ptr`] returns the same non-null pointer on
/// every call, valid for reads and writes of [`RamBacking::len`] bytes for as long as the value
/// lives (it is never moved, remapped or unmapped before drop), and that nobody else creates
/// references into that memory while the machine owns it. Filling missing pages through the
/// kernel (userfaultfd's `UFFDIO_COPY`) is allowed: to the machine it looks like the page was
/// always there.
pub unsafe trait RamBacking: Send {
    /// Start of the memory.
    fn as_mut_ptr(&mut self) -> *mut u8;
    /// Length in bytes.
    fn len(&self) -> usize;
    /// Whether the memory is empty (never, for guest RAM).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Who owns the memory behind [`GuestRam`]'s pointer. Never touched until drop.
enum Owner {
    Heap(#[allow(dead_code)] Vec<u8>),
    External(#[allow(dead_code)] Box<dyn RamBacking>),
}

/// Guest physical memory.
pub struct GuestRam {
    base: u64,
    /// Start of RAM in host memory; owned by `_owner`, valid for `len` bytes while it lives.
    ptr: NonNull<u8>,
    len: usize,
    _owner: Owner,
    dirty: Vec<u64>,
    /// Dirty bits the range consumer ([`GuestRam::take_dirty_range`]) cleared but
    /// [`GuestRam::take_dirty`] still owes its own caller.
    retained: Vec<u64>,
    /// Dirty bits [`GuestRam::take_dirty`] cleared but the range consumer has not seen yet.
    retained_range: Vec<u64>,
    code: Vec<u64>,
    invalidated: Vec<usize>,
}

impl std::fmt::Debug for GuestRam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GuestRam")
            .field("base", &format_args!("{:#x}", self.base))
            .field("size", &self.len)
            .finish()
    }
}

// SAFETY: `GuestRam` owns its memory exclusively (a heap block, or a backing that promises no
// one else references it), so moving it to another thread moves the only access path.
unsafe impl Send for GuestRam {}
// SAFETY: shared access only hands out `&[u8]`; writes need `&mut GuestRam`.
unsafe impl Sync for GuestRam {}

/// Why [`GuestRam::with_backing`] refused a backing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("RAM backing of {len} bytes is not a non-zero multiple of {PAGE_SIZE}")]
pub struct BackingError {
    pub len: usize,
}

impl GuestRam {
    /// Zeroed RAM of `size` bytes (a multiple of [`PAGE_SIZE`]) at guest physical address `base`.
    /// Host memory is committed lazily, as the guest touches pages.
    pub fn new(base: u64, size: usize) -> Self {
        assert!(
            size.is_multiple_of(PAGE_SIZE),
            "RAM size must be a multiple of the page size"
        );
        let mut heap = vec![0u8; size];
        let ptr = NonNull::new(heap.as_mut_ptr()).unwrap_or(NonNull::dangling());
        Self::from_parts(base, ptr, size, Owner::Heap(heap))
    }

    /// RAM at guest physical `base` in memory the caller provides (its current contents are the
    /// guest's RAM). Its length must be a non-zero multiple of [`PAGE_SIZE`].
    pub fn with_backing(base: u64, mut backing: Box<dyn RamBacking>) -> Result<Self, BackingError> {
        let len = backing.len();
        if len == 0 || !len.is_multiple_of(PAGE_SIZE) {
            return Err(BackingError { len });
        }
        let ptr = NonNull::new(backing.as_mut_ptr()).ok_or(BackingError { len: 0 })?;
        Ok(Self::from_parts(base, ptr, len, Owner::External(backing)))
    }

    fn from_parts(base: u64, ptr: NonNull<u8>, len: usize, owner: Owner) -> Self {
        let pages = len / PAGE_SIZE;
        GuestRam {
            base,
            ptr,
            len,
            _owner: owner,
            dirty: vec![0; pages.div_ceil(64)],
            retained: vec![0; pages.div_ceil(64)],
            retained_range: vec![0; pages.div_ceil(64)],
            code: vec![0; pages.div_ceil(64)],
            invalidated: Vec::new(),
        }
    }

    /// Guest physical address of the first byte.
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.len
    }

    /// Number of pages.
    pub fn pages(&self) -> usize {
        self.len / PAGE_SIZE
    }

    /// Offset into RAM of guest physical `addr` if `len` bytes from there lie inside RAM.
    #[inline]
    pub fn offset_of(&self, addr: u64, len: usize) -> Option<usize> {
        let off = addr.checked_sub(self.base)?;
        let off = usize::try_from(off).ok()?;
        (off.checked_add(len)? <= self.len).then_some(off)
    }

    /// All of RAM, read-only.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is valid for `len` bytes while `_owner` lives (heap block, or the
        // `RamBacking` contract), and `&self` forbids writes through `as_mut_slice` meanwhile.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// All of RAM, writable. The caller marks what it writes dirty.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`; `&mut self` makes this the only reference.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Copy guest memory at `addr` into `buf`. `None` if the range is not all RAM.
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Option<()> {
        let off = self.offset_of(addr, buf.len())?;
        buf.copy_from_slice(&self.as_slice()[off..off + buf.len()]);
        Some(())
    }

    /// Copy `data` into guest memory at `addr` and mark the pages dirty. `None` if the range is
    /// not all RAM (nothing is written then).
    pub fn write(&mut self, addr: u64, data: &[u8]) -> Option<()> {
        let off = self.offset_of(addr, data.len())?;
        self.as_mut_slice()[off..off + data.len()].copy_from_slice(data);
        self.mark_dirty_range(off, data.len());
        Some(())
    }

    /// Mark the page holding RAM offset `offset` dirty (and invalidate it if it holds code).
    #[inline]
    pub fn mark_dirty(&mut self, offset: usize) {
        self.mark_page_dirty(offset >> PAGE_SHIFT);
    }

    /// Mark every page overlapping `offset .. offset + len` dirty.
    pub fn mark_dirty_range(&mut self, offset: usize, len: usize) {
        if len == 0 {
            return;
        }
        let first = offset >> PAGE_SHIFT;
        let last = (offset + len - 1) >> PAGE_SHIFT;
        for page in first..=last {
            self.mark_page_dirty(page);
        }
    }

    #[inline]
    fn mark_page_dirty(&mut self, page: usize) {
        let (word, bit) = (page / 64, 1u64 << (page % 64));
        self.dirty[word] |= bit;
        if self.code[word] & bit != 0 {
            self.code[word] &= !bit;
            self.invalidated.push(page);
        }
    }

    /// Note that the CPU decoded instructions from page number `page`.
    #[inline]
    pub fn mark_code(&mut self, page: usize) {
        self.code[page / 64] |= 1 << (page % 64);
    }

    /// Whether page number `page` holds decoded code.
    #[inline]
    pub fn is_code(&self, page: usize) -> bool {
        self.code[page / 64] & (1 << (page % 64)) != 0
    }

    /// Code pages written since the last call (page numbers from the start of RAM).
    pub fn take_invalidated(&mut self) -> Vec<usize> {
        std::mem::take(&mut self.invalidated)
    }

    /// Whether any code page was written since the last [`GuestRam::take_invalidated`].
    #[inline]
    pub fn has_invalidated(&self) -> bool {
        !self.invalidated.is_empty()
    }

    /// Whether page number `page` (counted from the start of RAM) is dirty.
    pub fn is_dirty(&self, page: usize) -> bool {
        (self.dirty[page / 64] | self.retained[page / 64]) & (1 << (page % 64)) != 0
    }

    /// Pages dirtied since the last call, as a bitmap (bit `p % 64` of word `p / 64` for page `p`);
    /// all bits are cleared. Callers that cache host pointers for writes (the CPU's TLB) must be
    /// told, so that the next write to each page marks it again: use [`crate::Machine::take_dirty`].
    pub fn take_dirty(&mut self) -> Vec<u64> {
        let fresh = vec![0; self.dirty.len()];
        let mut taken = std::mem::replace(&mut self.dirty, fresh);
        for ((t, r), rr) in taken.iter_mut().zip(self.retained.iter_mut()).zip(self.retained_range.iter_mut()) {
            *rr |= *t;
            *t |= std::mem::take(r);
        }
        taken
    }

    /// A second consumer's view (the display's): the dirty bits of pages `first .. first + count`
    /// since this range was last taken, as a bitmap relative to `first`. The bits are cleared
    /// (so the TLB must drop its write entries, see [`crate::Machine::take_framebuffer_dirty`])
    /// but kept for [`GuestRam::take_dirty`], which still reports them. The range is clipped to
    /// RAM.
    pub fn take_dirty_range(&mut self, first: usize, count: usize) -> Vec<u64> {
        let end = first.saturating_add(count).min(self.pages());
        let mut out = vec![0u64; count.div_ceil(64)];
        for page in first..end {
            let (word, bit) = (page / 64, 1u64 << (page % 64));
            let fresh = self.dirty[word] & bit != 0;
            let owed = self.retained_range[word] & bit != 0;
            if fresh {
                self.dirty[word] &= !bit;
                self.retained[word] |= bit;
            }
            self.retained_range[word] &= !bit;
            if fresh || owed {
                let i = page - first;
                out[i / 64] |= 1 << (i % 64);
            }
        }
        out
    }

    /// Number of dirty pages.
    pub fn dirty_count(&self) -> usize {
        self.dirty.iter().zip(&self.retained).map(|(d, r)| (d | r).count_ones() as usize).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_marks_pages_dirty_and_take_clears() {
        let mut ram = GuestRam::new(0x8000_0000, 16 * PAGE_SIZE);
        assert_eq!(ram.dirty_count(), 0);
        ram.write(0x8000_0000 + 4095, &[1, 2]).unwrap();
        assert!(ram.is_dirty(0) && ram.is_dirty(1) && !ram.is_dirty(2));
        let taken = ram.take_dirty();
        assert_eq!(taken[0], 0b11);
        assert_eq!(ram.dirty_count(), 0);
    }

    #[test]
    fn a_range_consumer_does_not_steal_bits_from_take_dirty() {
        let mut ram = GuestRam::new(0x8000_0000, 200 * PAGE_SIZE);
        let page = |p: usize| 0x8000_0000 + (p * PAGE_SIZE) as u64;
        ram.write(page(3), &[1]).unwrap();
        ram.write(page(100), &[1]).unwrap();
        ram.write(page(130), &[1]).unwrap();
        // The display watches pages 99..=198.
        let view = ram.take_dirty_range(99, 100);
        assert_eq!(view, vec![(1 << 1) | (1 << 31), 0], "pages 100 and 130, relative to 99");
        assert!(ram.take_dirty_range(99, 100).iter().all(|&w| w == 0), "taken once");
        assert!(ram.is_dirty(100) && ram.dirty_count() == 3);
        ram.write(page(100), &[2]).unwrap();
        let all = ram.take_dirty();
        assert_eq!((all[0], all[1], all[2]), (1 << 3, 1 << (100 - 64), 1 << (130 - 128)));
        assert_eq!(ram.dirty_count(), 0);
        // The display still sees the write that happened after its last look.
        assert_eq!(ram.take_dirty_range(99, 100)[0], 1 << 1);
        // Ranges past the end are clipped.
        assert!(ram.take_dirty_range(190, 64).iter().all(|&w| w == 0));
    }

    #[test]
    fn writing_a_code_page_queues_it_for_invalidation_once() {
        let mut ram = GuestRam::new(0x8000_0000, 4 * PAGE_SIZE);
        ram.mark_code(2);
        ram.write(0x8000_0000 + 2 * PAGE_SIZE as u64 + 8, &[0x13])
            .unwrap();
        ram.write(0x8000_0000 + 2 * PAGE_SIZE as u64 + 16, &[0x13])
            .unwrap();
        assert!(!ram.is_code(2));
        assert_eq!(ram.take_invalidated(), vec![2]);
        assert!(!ram.has_invalidated());
    }

    struct Leaked(Vec<u8>);
    // SAFETY: the Vec's buffer never moves; nothing else touches it.
    unsafe impl RamBacking for Leaked {
        fn as_mut_ptr(&mut self) -> *mut u8 {
            self.0.as_mut_ptr()
        }
        fn len(&self) -> usize {
            self.0.len()
        }
    }

    #[test]
    fn an_external_backing_keeps_its_contents_and_tracks_dirt() {
        let mut mem = vec![0u8; 2 * PAGE_SIZE];
        mem[PAGE_SIZE + 1] = 7;
        let mut ram = GuestRam::with_backing(0x8000_0000, Box::new(Leaked(mem))).unwrap();
        assert_eq!(ram.as_slice()[PAGE_SIZE + 1], 7);
        ram.write(0x8000_0000 + 3, &[9]).unwrap();
        assert!(ram.is_dirty(0) && !ram.is_dirty(1));
        assert_eq!(ram.as_slice()[3], 9);
        assert!(GuestRam::with_backing(0, Box::new(Leaked(vec![0; 100]))).is_err());
    }

    #[test]
    fn out_of_range_access_is_refused_and_writes_nothing() {
        let mut ram = GuestRam::new(0x8000_0000, PAGE_SIZE);
        assert!(ram.write(0x8000_0000 + 4095, &[1, 2]).is_none());
        assert!(ram.write(0x7fff_ffff, &[1]).is_none());
        assert!(ram.read(u64::MAX, &mut [0]).is_none());
        assert_eq!(ram.dirty_count(), 0);
        assert_eq!(ram.as_slice()[4095], 0);
    }
}
