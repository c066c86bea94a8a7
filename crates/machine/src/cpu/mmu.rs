//! Sv39 translation and the TLB.
//!
//! The TLB caches, per page, the *RAM offset* of the page a virtual page maps to, so a hit turns a
//! load, store or fetch into one bounds-checked slice access. There is one set per effective
//! privilege (U, S, M) plus one for S-mode data accesses with `mstatus.SUM` set (so that the
//! kernel toggling SUM around user copies costs nothing), each with separate read, write and
//! fetch arrays; the set used for data follows MPRV and SUM.
//!
//! # ASIDs
//!
//! Entries are tagged with an *epoch* (bits 52..63 of the tag) that stands for the address-space
//! context they were made in: each `satp` value (its ASID, or bare mode) gets an epoch when it is
//! first used, so switching `satp` back and forth keeps each address space's entries instead of
//! flushing them. `sfence.vma` with `rs2` gives that ASID a fresh epoch (its old entries can no
//! longer match), without `rs2` every context does. Global (`G`) mappings are cached per context
//! like the others, which is allowed (a TLB may always hold less). Write entries are dropped on
//! every context switch: they are cheap to refill and it keeps dirty tracking simple. When the
//! 4096 epochs run out, the arrays are cleared and numbering restarts. Write entries are installed only for pages that are already dirty and hold no
//! decoded code, so the fast store path needs neither a dirty mark nor an invalidation check:
//! [`Mmu::flush_writes`] must run whenever a page's dirty bit is cleared (`Machine::take_dirty`)
//! or a page becomes a code page (block building).
//!
//! Hardware updates A and D in page-table entries (Svadu behaviour).

// Page-table fields are extracted by masking; the truncations are the semantics.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]

use super::csr::{MSTATUS_MPP, MSTATUS_MPRV, MSTATUS_MXR, MSTATUS_SUM};
use super::{cause, Cpu, Exception, Priv};
use crate::ram::GuestRam;

pub const TLB_BITS: u32 = 8;
pub const TLB_SIZE: usize = 1 << TLB_BITS;
const INVALID: u64 = u64::MAX;

/// One cached translation: virtual page number `tag` lives at RAM offset `off`.
#[derive(Debug, Clone, Copy)]
pub struct TlbEntry {
    pub tag: u64,
    pub off: usize,
}

const EMPTY: TlbEntry = TlbEntry { tag: INVALID, off: 0 };

/// The arrays of one effective privilege level.
///
/// A tag is `vpn | epoch`: bumping the epoch (bits 52..63) invalidates every entry at once, so a
/// flush costs nothing until the epoch wraps.
#[derive(Debug, Clone)]
pub struct TlbSet {
    pub r: [TlbEntry; TLB_SIZE],
    pub w: [TlbEntry; TLB_SIZE],
    pub x: [TlbEntry; TLB_SIZE],
    /// Epoch of the read and fetch arrays, already shifted.
    pub epoch: u64,
    /// Epoch of the write array.
    pub w_epoch: u64,
}

const EPOCH_ONE: u64 = 1 << 52;
const VPN_MASK: u64 = EPOCH_ONE - 1;
/// Superpages remembered for address-specific flushes before falling back to flushing all.
const MAX_SUPERPAGES: usize = 32;
const EPOCH_LAST: u64 = 0xfff << 52;
/// Number of epochs before the arrays are cleared.
const EPOCHS: u64 = 1 << 12;
/// The translation context of bare mode (`satp.MODE = 0`); ASIDs are below it.
pub const CTX_BARE: u32 = 1 << 16;
/// Index of the set for S-mode data accesses with SUM set.
pub const SET_S_SUM: usize = 2;

impl TlbSet {
    /// The tag of `va` for the read and fetch arrays.
    #[inline(always)]
    pub fn key(&self, va: u64) -> u64 {
        (va >> 12) | self.epoch
    }
    /// The tag of `va` for the write array.
    #[inline(always)]
    pub fn w_key(&self, va: u64) -> u64 {
        (va >> 12) | self.w_epoch
    }
    fn flush_rx(&mut self) {
        if self.epoch == EPOCH_LAST {
            self.r.fill(EMPTY);
            self.x.fill(EMPTY);
            self.epoch = 0;
        } else {
            self.epoch += EPOCH_ONE;
        }
    }
    fn flush_w(&mut self) {
        if self.w_epoch == EPOCH_LAST {
            self.w.fill(EMPTY);
            self.w_epoch = 0;
        } else {
            self.w_epoch += EPOCH_ONE;
        }
    }
    fn flush_page(&mut self, va: u64) {
        let i = tlb_index(va);
        for e in [&mut self.r[i], &mut self.w[i], &mut self.x[i]] {
            if e.tag & (EPOCH_ONE - 1) == va >> 12 {
                *e = EMPTY;
            }
        }
    }
    /// Drop every entry whose page lies in `[base, base + size)` (in any context).
    fn flush_range(&mut self, base: u64, size: u64) {
        let (lo, n) = ((base >> 12) & VPN_MASK, size >> 12);
        for arr in [&mut self.r, &mut self.w, &mut self.x] {
            for e in arr.iter_mut() {
                if e.tag != INVALID && (e.tag & VPN_MASK).wrapping_sub(lo) < n {
                    *e = EMPTY;
                }
            }
        }
    }
    fn clear_rx(&mut self) {
        self.r.fill(EMPTY);
        self.x.fill(EMPTY);
    }
}

/// Kind of access being translated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Fetch,
    Load,
    Store,
}

impl Access {
    fn page_fault(self, va: u64) -> Exception {
        let c = match self {
            Access::Fetch => cause::INSN_PAGE,
            Access::Load => cause::LOAD_PAGE,
            Access::Store => cause::STORE_PAGE,
        };
        Exception { cause: c, tval: va }
    }
    pub fn access_fault(self, va: u64) -> Exception {
        let c = match self {
            Access::Fetch => cause::INSN_ACCESS,
            Access::Load => cause::LOAD_ACCESS,
            Access::Store => cause::STORE_ACCESS,
        };
        Exception { cause: c, tval: va }
    }
}

/// The TLB.
#[derive(Debug)]
pub struct Mmu {
    pub sets: Box<[TlbSet; 4]>,
    /// Set used for loads and stores (follows MPRV).
    pub data: usize,
    /// Set used for fetches.
    pub fetch: usize,
    /// Superpages (virtual base, size) translations were made from since the last full flush.
    /// Entries are cached per 4 KiB page, so an address-specific flush that hits one of these
    /// drops every entry of its range. `None`: too many to track, such a flush drops all.
    pub superpages: Option<Vec<(u64, u64)>>,
    /// The current translation context ([`CTX_BARE`] or an ASID) and each known context's epoch.
    ctx: u32,
    epochs: std::collections::BTreeMap<u32, u64>,
    /// The next epoch to hand out (not shifted).
    next_epoch: u64,
}

#[inline]
pub fn tlb_index(va: u64) -> usize {
    ((va >> 12) as usize) & (TLB_SIZE - 1)
}

impl Mmu {
    pub fn new() -> Mmu {
        let set = TlbSet { r: [EMPTY; TLB_SIZE], w: [EMPTY; TLB_SIZE], x: [EMPTY; TLB_SIZE], epoch: 0, w_epoch: 0 };
        let mut mmu = Mmu {
            sets: Box::new([set.clone(), set.clone(), set.clone(), set]),
            data: 3,
            fetch: 3,
            superpages: Some(Vec::new()),
            ctx: CTX_BARE,
            epochs: std::collections::BTreeMap::new(),
            next_epoch: 0,
        };
        mmu.flush();
        mmu
    }

    /// A fresh epoch (shifted) for the translated sets; clears them when epochs run out.
    fn fresh_epoch(&mut self) -> u64 {
        if self.next_epoch == EPOCHS {
            for s in &mut self.sets[..3] {
                s.clear_rx();
            }
            self.epochs.clear();
            self.next_epoch = 0;
        }
        let e = self.next_epoch << 52;
        self.next_epoch += 1;
        e
    }

    /// Give the current context a fresh epoch and use it.
    fn renew_current(&mut self) {
        let e = self.fresh_epoch();
        self.epochs.insert(self.ctx, e);
        for s in &mut self.sets[..3] {
            s.epoch = e;
        }
    }

    /// Switch to translation context `ctx` (`satp` was written): [`CTX_BARE`] or an ASID.
    pub fn set_context(&mut self, ctx: u32) {
        for s in &mut self.sets[..3] {
            s.flush_w();
        }
        self.ctx = ctx;
        match self.epochs.get(&ctx) {
            Some(&e) => {
                for s in &mut self.sets[..3] {
                    s.epoch = e;
                }
            }
            None => self.renew_current(),
        }
    }

    /// Drop every cached translation, in every context.
    pub fn flush(&mut self) {
        self.epochs.clear();
        self.renew_current();
        let m = &mut self.sets[3];
        m.flush_rx();
        for s in self.sets.iter_mut() {
            s.flush_w();
        }
        self.superpages = Some(Vec::new());
    }

    /// Note that a translation came from the superpage `[base, base + size)`.
    pub fn note_superpage(&mut self, base: u64, size: u64) {
        if let Some(list) = &mut self.superpages {
            if !list.contains(&(base, size)) {
                if list.len() == MAX_SUPERPAGES {
                    self.superpages = None;
                } else {
                    list.push((base, size));
                }
            }
        }
    }

    /// Drop the translations of address space `asid` (not its global ones, which are cached
    /// per context anyway).
    pub fn flush_asid(&mut self, asid: u32) {
        if self.epochs.remove(&asid).is_some() && asid == self.ctx {
            self.renew_current();
        }
        for s in &mut self.sets[..3] {
            s.flush_w();
        }
    }

    /// Drop the translations of U and S data accesses in every context (what MXR changes).
    pub fn flush_data_us(&mut self) {
        self.flush();
    }

    /// Drop every translation of the page holding `va`, in every context (and of the whole
    /// superpage, when `va` lies in one a translation was made from).
    pub fn flush_page(&mut self, va: u64) {
        let Some(list) = &mut self.superpages else {
            self.flush();
            return;
        };
        let va = va & !0xfff;
        match list.iter().position(|&(b, n)| va.wrapping_sub(b) < n) {
            Some(i) => {
                let (base, size) = list.swap_remove(i);
                for s in self.sets.iter_mut() {
                    s.flush_range(base, size);
                }
            }
            None => {
                for s in self.sets.iter_mut() {
                    s.flush_page(va);
                }
            }
        }
    }

    pub fn flush_writes(&mut self) {
        for s in self.sets.iter_mut() {
            s.flush_w();
        }
    }

    /// Select the sets for privilege `prv` under `mstatus`.
    pub fn set_priv(&mut self, prv: Priv, mstatus: u64) {
        self.fetch = prv as usize;
        let data = if prv == Priv::M && mstatus & MSTATUS_MPRV != 0 {
            ((mstatus & MSTATUS_MPP) >> 11) as usize
        } else {
            prv as usize
        };
        // MPP = 2 is reserved (WARL to U), so `data` is never SET_S_SUM here.
        self.data = if data == Priv::S as usize && mstatus & MSTATUS_SUM != 0 { SET_S_SUM } else { data };
    }

    pub fn install(&mut self, acc: Access, va: u64, page_off: usize) {
        let set = &mut self.sets[self.data_or_fetch(acc)];
        let tag = if acc == Access::Store { set.w_key(va) } else { set.key(va) };
        let e = TlbEntry { tag, off: page_off };
        let i = tlb_index(va);
        match acc {
            Access::Fetch => set.x[i] = e,
            Access::Load => set.r[i] = e,
            Access::Store => set.w[i] = e,
        }
    }

    fn data_or_fetch(&self, acc: Access) -> usize {
        if acc == Access::Fetch {
            self.fetch
        } else {
            self.data
        }
    }
}

impl Default for Mmu {
    fn default() -> Self {
        Mmu::new()
    }
}

const PTE_V: u64 = 1;
const PTE_R: u64 = 2;
const PTE_W: u64 = 4;
const PTE_X: u64 = 8;
const PTE_U: u64 = 16;
const PTE_A: u64 = 64;
const PTE_D: u64 = 128;
const PPN_MASK: u64 = (1 << 44) - 1;

impl Cpu {
    /// Effective privilege of an access.
    pub(crate) fn access_priv(&self, acc: Access) -> Priv {
        if acc != Access::Fetch && self.prv == Priv::M && self.mstatus & MSTATUS_MPRV != 0 {
            match (self.mstatus & MSTATUS_MPP) >> 11 {
                0 => Priv::U,
                1 => Priv::S,
                _ => Priv::M,
            }
        } else {
            self.prv
        }
    }

    /// Translate `va` for `acc`, walking the page table (and updating A/D bits) when needed.
    pub(crate) fn translate(&mut self, va: u64, acc: Access, ram: &mut GuestRam) -> Result<u64, Exception> {
        let prv = self.access_priv(acc);
        if prv == Priv::M || self.satp >> 60 == 0 {
            return Ok(va);
        }
        self.walk(va, acc, prv, ram).map_err(|e| e.unwrap_or_else(|| acc.page_fault(va)))
    }

    /// Translate without side effects (no A/D updates, no faults); for diagnostics.
    pub(crate) fn peek_translate(&self, va: u64, ram: &GuestRam) -> Option<u64> {
        if self.prv == Priv::M || self.satp >> 60 == 0 {
            return Some(va);
        }
        self.walk_peek(va, ram)
    }

    fn walk_peek(&self, va: u64, ram: &GuestRam) -> Option<u64> {
        let mut a = (self.satp & PPN_MASK) << 12;
        let mut level = 2u32;
        loop {
            let vpn = (va >> (12 + 9 * level)) & 0x1ff;
            let mut b = [0u8; 8];
            ram.read(a + vpn * 8, &mut b)?;
            let pte = u64::from_le_bytes(b);
            if pte & PTE_V == 0 {
                return None;
            }
            if pte & (PTE_R | PTE_X) == 0 {
                level = level.checked_sub(1)?;
                a = ((pte >> 10) & PPN_MASK) << 12;
                continue;
            }
            let mask = (1u64 << (12 + 9 * level)) - 1;
            return Some(((((pte >> 10) & PPN_MASK) << 12) & !mask) | (va & mask));
        }
    }

    /// The Sv39 walk. `Err(None)` is a page fault, `Err(Some(e))` another exception.
    fn walk(&mut self, va: u64, acc: Access, prv: Priv, ram: &mut GuestRam) -> Result<u64, Option<Exception>> {
        // Bits 63..39 must all equal bit 38.
        if ((((va << 25) as i64) >> 25) as u64) != va {
            return Err(None);
        }
        let mut a = (self.satp & PPN_MASK) << 12;
        let mut level = 2u32;
        loop {
            let vpn = (va >> (12 + 9 * level)) & 0x1ff;
            let pte_addr = a + vpn * 8;
            let Some(off) = ram.offset_of(pte_addr, 8) else {
                return Err(Some(acc.access_fault(va)));
            };
            if !self.pmp_ok(pte_addr, 8, Access::Load, Priv::S) {
                return Err(Some(acc.access_fault(va)));
            }
            let pte = read_u64(ram.as_slice(), off);
            if pte & PTE_V == 0 || (pte & PTE_R == 0 && pte & PTE_W != 0) || pte >> 54 != 0 {
                return Err(None);
            }
            if pte & (PTE_R | PTE_X) == 0 {
                if level == 0 {
                    return Err(None);
                }
                level -= 1;
                a = ((pte >> 10) & PPN_MASK) << 12;
                continue;
            }
            // Leaf: permissions.
            let user = pte & PTE_U != 0;
            match prv {
                Priv::U if !user => return Err(None),
                Priv::S if user && (acc == Access::Fetch || self.mstatus & MSTATUS_SUM == 0) => return Err(None),
                _ => {}
            }
            let allowed = match acc {
                Access::Fetch => pte & PTE_X != 0,
                Access::Load => pte & PTE_R != 0 || (pte & PTE_X != 0 && self.mstatus & MSTATUS_MXR != 0),
                Access::Store => pte & PTE_W != 0,
            };
            if !allowed {
                return Err(None);
            }
            let ppn = (pte >> 10) & PPN_MASK;
            if level > 0 && ppn & ((1 << (9 * level)) - 1) != 0 {
                return Err(None); // misaligned superpage
            }
            let need = PTE_A | if acc == Access::Store { PTE_D } else { 0 };
            if pte & need != need {
                let new = pte | need;
                ram.as_mut_slice()[off..off + 8].copy_from_slice(&new.to_le_bytes());
                ram.mark_dirty(off);
            }
            let mask = (1u64 << (12 + 9 * level)) - 1;
            if level > 0 {
                self.mmu.note_superpage(va & !mask, mask + 1);
            }
            return Ok(((ppn << 12) & !mask) | (va & mask));
        }
    }
}

/// Little-endian u64 at `off` (the caller checked the bounds).
#[inline]
pub fn read_u64(s: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&s[off..off + 8]);
    u64::from_le_bytes(b)
}
