//! Block dispatch and instruction execution.

// Register arithmetic truncates and reinterprets signs by definition (W ops, immediates).
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_possible_wrap)]

use super::block::MAX_BLOCK;
use super::csr::{MSTATUS_FS, MSTATUS_TSR, MSTATUS_TVM, MSTATUS_TW};
use super::decode::{decode16, decode32, insn_len, Insn, Op};
use super::mmu::{tlb_index, Access};
use super::{cause, BlockExit, Cpu, Exception, Priv, TraceEntry};
use crate::bus::{Bus, MmioCtx};
use crate::env::Environment;
use crate::ram::GuestRam;

/// What an executed instruction asks of the dispatcher.
pub(super) enum Flow {
    /// Fall through to the next instruction.
    Next,
    /// Fall through unless a slow path asked to end the block (`Cpu::end_block`): what
    /// instructions that access memory return, so that the others skip the test.
    Check,
    /// Continue at this address (the block ends).
    Jump(u64),
}

type Res = Result<Flow, Exception>;

#[inline(always)]
fn rd_bytes<const N: usize>(s: &[u8], off: usize) -> u64 {
    let mut b = [0u8; 8];
    b[..N].copy_from_slice(&s[off..off + N]);
    u64::from_le_bytes(b)
}

impl Cpu {
    /// Run at most `budget` (> 0) instructions, block after block: before each block take a
    /// pending interrupt if one is enabled, then execute (part of) the block. Returns when the
    /// budget is spent or something needs the machine (WFI, an SBI call, an MMIO access or a
    /// timer comparator write: see [`BlockExit`]).
    pub fn run_block(&mut self, bus: &mut Bus, env: &mut dyn Environment, budget: u64) -> BlockExit {
        let end = self.icount.saturating_add(budget);
        loop {
            let exit = self.run_one_block(bus, env, end - self.icount);
            if exit != BlockExit::Ran || self.icount >= end {
                return exit;
            }
        }
    }

    /// One block (or the part of it that fits in `budget` > 0 instructions).
    #[inline(always)]
    fn run_one_block(&mut self, bus: &mut Bus, env: &mut dyn Environment, budget: u64) -> BlockExit {
        if bus.ram.has_invalidated() {
            for page in bus.ram.take_invalidated() {
                self.blocks.invalidate_page((bus.ram.base() >> 12) + page as u64);
            }
        }
        if self.mip & self.mie != 0 {
            self.check_interrupts();
        }
        if self.wfi {
            return BlockExit::Wfi;
        }
        let pc = self.pc;
        // Fetch translation through the TLB.
        let set = &self.mmu.sets[self.mmu.fetch];
        let e = set.x[tlb_index(pc)];
        let pa = if e.tag == set.key(pc) {
            bus.ram.base() + (e.off as u64) + (pc & 0xfff)
        } else {
            match self.fetch_translate(pc, &mut bus.ram) {
                Ok(pa) => pa,
                Err(ex) => {
                    self.icount += 1;
                    self.trap(ex.cause, false, ex.tval);
                    return BlockExit::Ran;
                }
            }
        };
        let slot = match self.blocks.lookup(pa) {
            Some(s) => s,
            None => match self.build_block(pa, &mut bus.ram) {
                Some(s) => s,
                None => return self.step_crossing(bus, env),
            },
        };
        let super::block::Slot { start, len, .. } = self.blocks.slots[slot];
        // Nothing below builds or drops blocks, so the arena can be borrowed out of `self`.
        let arena = std::mem::take(&mut self.blocks.arena);
        let start = start as usize;
        let mut n = (len as usize).min(usize::try_from(budget).unwrap_or(usize::MAX));
        if let Some(trace) = &mut self.trace {
            n = 1;
            if let Some(i) = arena.get(start) {
                trace.push(TraceEntry { icount: self.icount, pc, raw: i.raw, prv: self.prv });
            }
        }
        let block = arena.get(start..start + n).unwrap_or(&[]);
        self.end_block = false;
        self.resync = false;
        let mut pc = pc;
        let mut exit = BlockExit::Ran;
        // `self.icount` is brought up to date only where it is read (slow paths, CSRs, traps)
        // and at the end of the block.
        let base = self.icount;
        let mut k = 0u64;
        for insn in block {
            let ic = base + k;
            k += 1;
            match self.exec(insn, pc, ic, bus, env) {
                Ok(Flow::Next) => pc = pc.wrapping_add(u64::from(insn.len)),
                Ok(Flow::Check) => {
                    pc = pc.wrapping_add(u64::from(insn.len));
                    if self.end_block {
                        break;
                    }
                }
                Ok(Flow::Jump(target)) => {
                    pc = target;
                    break;
                }
                Err(ex) => {
                    self.icount = ic + 1;
                    self.pc = pc;
                    if ex.cause == cause::ECALL_S && self.host_sbi {
                        exit = BlockExit::Sbi;
                    } else {
                        self.trap(ex.cause, false, ex.tval);
                    }
                    pc = self.pc;
                    break;
                }
            }
        }
        self.pc = pc;
        self.icount = base + k;
        self.blocks.arena = arena;
        if exit == BlockExit::Ran {
            if self.resync {
                exit = BlockExit::Resync;
            } else if self.wfi {
                exit = BlockExit::Wfi;
            }
        }
        exit
    }

    fn fetch_translate(&mut self, va: u64, ram: &mut GuestRam) -> Result<u64, Exception> {
        let pa = self.translate(va, Access::Fetch, ram)?;
        let Some(off) = ram.offset_of(pa, 2) else {
            return Err(Access::Fetch.access_fault(va));
        };
        if self.pmp_page_ok(pa, Access::Fetch, self.prv) {
            self.mmu.install(Access::Fetch, va, off & !0xfff);
        } else if !self.pmp_ok(pa, 2, Access::Fetch, self.prv) {
            return Err(Access::Fetch.access_fault(va));
        }
        Ok(pa)
    }

    /// Decode the block at `pa` (in RAM). `None` when its first instruction crosses a page.
    fn build_block(&mut self, pa: u64, ram: &mut GuestRam) -> Option<usize> {
        let start = ram.offset_of(pa, 2)?;
        let page_end = (start & !0xfff) + 0x1000;
        let bytes = ram.as_slice();
        let mut insns = std::mem::take(&mut self.scratch);
        insns.clear();
        let mut off = start;
        while off + 2 <= page_end && insns.len() < MAX_BLOCK {
            let lo = rd_bytes::<2>(bytes, off) as u16;
            let insn = if insn_len(lo) == 2 {
                decode16(lo)
            } else if off + 4 <= page_end {
                decode32(rd_bytes::<4>(bytes, off) as u32)
            } else {
                break;
            };
            off += usize::from(insn.len);
            let ends = insn.ends_block();
            insns.push(insn);
            if ends {
                break;
            }
        }
        if insns.is_empty() {
            self.scratch = insns;
            return None;
        }
        let page = start >> 12;
        if !ram.is_code(page) {
            ram.mark_code(page);
            self.mmu.flush_writes();
        }
        let slot = self.blocks.insert(pa, &insns);
        self.scratch = insns;
        Some(slot)
    }

    /// Execute one 32-bit instruction whose halves lie in two pages (never cached).
    fn step_crossing(&mut self, bus: &mut Bus, env: &mut dyn Environment) -> BlockExit {
        let pc = self.pc;
        let fetch = |cpu: &mut Cpu, va: u64, ram: &mut GuestRam| -> Result<u16, Exception> {
            let pa = cpu.translate(va, Access::Fetch, ram)?;
            if !cpu.pmp_ok(pa, 2, Access::Fetch, cpu.prv) {
                return Err(Access::Fetch.access_fault(va));
            }
            let mut b = [0u8; 2];
            ram.read(pa, &mut b).ok_or(Access::Fetch.access_fault(va))?;
            Ok(u16::from_le_bytes(b))
        };
        let word = fetch(self, pc, &mut bus.ram).and_then(|lo| {
            let hi = fetch(self, pc + 2, &mut bus.ram)?;
            Ok(u32::from(lo) | (u32::from(hi) << 16))
        });
        self.end_block = false;
        self.resync = false;
        let ic = self.icount;
        if let (Some(trace), Ok(w)) = (&mut self.trace, &word) {
            trace.push(TraceEntry { icount: ic, pc, raw: *w, prv: self.prv });
        }
        let res = word.and_then(|w| {
            let insn = decode32(w);
            self.exec(&insn, pc, ic, bus, env)
        });
        self.icount = ic + 1;
        match res {
            Ok(Flow::Next | Flow::Check) => self.pc = pc + 4,
            Ok(Flow::Jump(t)) => self.pc = t,
            Err(ex) if ex.cause == cause::ECALL_S && self.host_sbi => return BlockExit::Sbi,
            Err(ex) => self.trap(ex.cause, false, ex.tval),
        }
        if self.resync {
            BlockExit::Resync
        } else {
            BlockExit::Ran
        }
    }

    // ---- memory ----

    #[inline(always)]
    fn load<const N: usize>(&mut self, va: u64, ic: u64, bus: &mut Bus, env: &mut dyn Environment) -> Result<u64, Exception> {
        let set = &self.mmu.sets[self.mmu.data];
        let e = set.r[tlb_index(va)];
        let po = (va & 0xfff) as usize;
        if e.tag == set.key(va) && po + N <= 0x1000 {
            return Ok(rd_bytes::<N>(bus.ram.as_slice(), e.off + po));
        }
        self.icount = ic;
        self.load_slow(va, N, bus, env)
    }

    #[inline(always)]
    fn store<const N: usize>(&mut self, va: u64, v: u64, ic: u64, bus: &mut Bus, env: &mut dyn Environment) -> Result<(), Exception> {
        let set = &self.mmu.sets[self.mmu.data];
        let e = set.w[tlb_index(va)];
        let po = (va & 0xfff) as usize;
        if e.tag == set.w_key(va) && po + N <= 0x1000 {
            let off = e.off + po;
            bus.ram.as_mut_slice()[off..off + N].copy_from_slice(&v.to_le_bytes()[..N]);
            return Ok(());
        }
        self.icount = ic;
        self.store_slow(va, v, N, bus, env)
    }

    #[inline(never)]
    fn load_slow(&mut self, va: u64, size: usize, bus: &mut Bus, env: &mut dyn Environment) -> Result<u64, Exception> {
        if (va & 0xfff) as usize + size > 0x1000 {
            // Misaligned across a page boundary: byte by byte.
            let mut v = 0u64;
            for i in 0..size {
                let b = self.load_slow(va.wrapping_add(i as u64), 1, bus, env)?;
                v |= b << (8 * i);
            }
            return Ok(v);
        }
        let pa = self.translate(va, Access::Load, &mut bus.ram)?;
        let prv = self.access_priv(Access::Load);
        if !self.pmp_ok(pa, size as u64, Access::Load, prv) {
            return Err(Access::Load.access_fault(va));
        }
        if let Some(off) = bus.ram.offset_of(pa, size) {
            if self.pmp_page_ok(pa, Access::Load, prv) {
                self.mmu.install(Access::Load, va, off & !0xfff);
            }
            let s = &bus.ram.as_slice()[off..off + size];
            let mut b = [0u8; 8];
            b[..size].copy_from_slice(s);
            return Ok(u64::from_le_bytes(b));
        }
        let mut ctx = MmioCtx { icount: self.icount, now: self.now(), env };
        let r = bus.mmio_read(pa, size as u8, &mut ctx);
        self.end_block = true;
        self.resync = true;
        r.map_err(|_| Access::Load.access_fault(va))
    }

    #[inline(never)]
    fn store_slow(&mut self, va: u64, v: u64, size: usize, bus: &mut Bus, env: &mut dyn Environment) -> Result<(), Exception> {
        if (va & 0xfff) as usize + size > 0x1000 {
            // Translate both pages before writing anything, so a fault leaves memory untouched.
            let first = 0x1000 - (va & 0xfff) as usize;
            let prv = self.access_priv(Access::Store);
            for (a, n) in [(va, first), (va.wrapping_add(first as u64), size - first)] {
                let pa = self.translate(a, Access::Store, &mut bus.ram)?;
                if !self.pmp_ok(pa, n as u64, Access::Store, prv) {
                    return Err(Access::Store.access_fault(a));
                }
            }
            for i in 0..size {
                self.store_slow(va.wrapping_add(i as u64), v >> (8 * i), 1, bus, env)?;
            }
            return Ok(());
        }
        let pa = self.translate(va, Access::Store, &mut bus.ram)?;
        let prv = self.access_priv(Access::Store);
        if !self.pmp_ok(pa, size as u64, Access::Store, prv) {
            return Err(Access::Store.access_fault(va));
        }
        if let Some(off) = bus.ram.offset_of(pa, size) {
            bus.ram.as_mut_slice()[off..off + size].copy_from_slice(&v.to_le_bytes()[..size]);
            bus.ram.mark_dirty(off);
            if bus.ram.has_invalidated() {
                self.end_block = true;
            }
            if !bus.ram.is_code(off >> 12) && self.pmp_page_ok(pa, Access::Store, prv) {
                self.mmu.install(Access::Store, va, off & !0xfff);
            }
            return Ok(());
        }
        let mut ctx = MmioCtx { icount: self.icount, now: self.now(), env };
        let r = bus.mmio_write(pa, size as u8, v, &mut ctx);
        self.end_block = true;
        self.resync = true;
        r.map_err(|_| Access::Store.access_fault(va))
    }

    /// Physical RAM offset for an atomic access of `size` at `va` (aligned, RAM only).
    fn amo_offset(&mut self, va: u64, size: u64, acc: Access, ram: &mut GuestRam) -> Result<usize, Exception> {
        if !va.is_multiple_of(size) {
            let c = if acc == Access::Load { cause::LOAD_MISALIGNED } else { cause::STORE_MISALIGNED };
            return Err(Exception { cause: c, tval: va });
        }
        let pa = self.translate(va, acc, ram)?;
        if !self.pmp_ok(pa, size, acc, self.access_priv(acc)) {
            return Err(acc.access_fault(va));
        }
        ram.offset_of(pa, size as usize).ok_or(acc.access_fault(va))
    }

    fn ram_write_at(&mut self, ram: &mut GuestRam, off: usize, v: u64, size: usize) {
        ram.as_mut_slice()[off..off + size].copy_from_slice(&v.to_le_bytes()[..size]);
        ram.mark_dirty(off);
        if ram.has_invalidated() {
            self.end_block = true;
        }
    }

    // ---- execution ----

    #[inline(always)]
    pub(super) fn exec(&mut self, i: &Insn, pc: u64, ic: u64, bus: &mut Bus, env: &mut dyn Environment) -> Res {
        let rd = usize::from(i.rd) & 63;
        let rs1 = usize::from(i.rs1) & 63;
        let rs2 = usize::from(i.rs2) & 63;
        let imm = i64::from(i.imm) as u64;
        let x = &mut self.x;
        match i.op {
            Op::Addi => x[rd] = x[rs1].wrapping_add(imm),
            Op::Add => x[rd] = x[rs1].wrapping_add(x[rs2]),
            Op::Ld => {
                let a = x[rs1].wrapping_add(imm);
                self.x[rd] = self.load::<8>(a, ic, bus, env)?;
                return Ok(Flow::Check);
            }
            Op::Sd => {
                let (a, v) = (x[rs1].wrapping_add(imm), x[rs2]);
                self.store::<8>(a, v, ic, bus, env)?;
                return Ok(Flow::Check);
            }
            Op::Lw => {
                let a = x[rs1].wrapping_add(imm);
                self.x[rd] = self.load::<4>(a, ic, bus, env)? as i32 as i64 as u64;
                return Ok(Flow::Check);
            }
            Op::Lwu => {
                let a = x[rs1].wrapping_add(imm);
                self.x[rd] = self.load::<4>(a, ic, bus, env)?;
                return Ok(Flow::Check);
            }
            Op::Lh => {
                let a = x[rs1].wrapping_add(imm);
                self.x[rd] = self.load::<2>(a, ic, bus, env)? as i16 as i64 as u64;
                return Ok(Flow::Check);
            }
            Op::Lhu => {
                let a = x[rs1].wrapping_add(imm);
                self.x[rd] = self.load::<2>(a, ic, bus, env)?;
                return Ok(Flow::Check);
            }
            Op::Lb => {
                let a = x[rs1].wrapping_add(imm);
                self.x[rd] = self.load::<1>(a, ic, bus, env)? as i8 as i64 as u64;
                return Ok(Flow::Check);
            }
            Op::Lbu => {
                let a = x[rs1].wrapping_add(imm);
                self.x[rd] = self.load::<1>(a, ic, bus, env)?;
                return Ok(Flow::Check);
            }
            Op::Sw => {
                let (a, v) = (x[rs1].wrapping_add(imm), x[rs2]);
                self.store::<4>(a, v, ic, bus, env)?;
                return Ok(Flow::Check);
            }
            Op::Sh => {
                let (a, v) = (x[rs1].wrapping_add(imm), x[rs2]);
                self.store::<2>(a, v, ic, bus, env)?;
                return Ok(Flow::Check);
            }
            Op::Sb => {
                let (a, v) = (x[rs1].wrapping_add(imm), x[rs2]);
                self.store::<1>(a, v, ic, bus, env)?;
                return Ok(Flow::Check);
            }
            Op::Lui => x[rd] = imm,
            Op::Auipc => x[rd] = pc.wrapping_add(imm),
            Op::Jal => {
                x[rd] = pc.wrapping_add(u64::from(i.len));
                return Ok(Flow::Jump(pc.wrapping_add(imm)));
            }
            Op::Jalr => {
                let t = x[rs1].wrapping_add(imm) & !1;
                x[rd] = pc.wrapping_add(u64::from(i.len));
                return Ok(Flow::Jump(t));
            }
            Op::Beq => return Ok(branch(x[rs1] == x[rs2], pc, imm, i.len)),
            Op::Bne => return Ok(branch(x[rs1] != x[rs2], pc, imm, i.len)),
            Op::Blt => return Ok(branch((x[rs1] as i64) < (x[rs2] as i64), pc, imm, i.len)),
            Op::Bge => return Ok(branch((x[rs1] as i64) >= (x[rs2] as i64), pc, imm, i.len)),
            Op::Bltu => return Ok(branch(x[rs1] < x[rs2], pc, imm, i.len)),
            Op::Bgeu => return Ok(branch(x[rs1] >= x[rs2], pc, imm, i.len)),
            Op::Slti => x[rd] = u64::from((x[rs1] as i64) < (imm as i64)),
            Op::Sltiu => x[rd] = u64::from(x[rs1] < imm),
            Op::Xori => x[rd] = x[rs1] ^ imm,
            Op::Ori => x[rd] = x[rs1] | imm,
            Op::Andi => x[rd] = x[rs1] & imm,
            Op::Slli => x[rd] = x[rs1] << (imm & 63),
            Op::Srli => x[rd] = x[rs1] >> (imm & 63),
            Op::Srai => x[rd] = ((x[rs1] as i64) >> (imm & 63)) as u64,
            Op::Sub => x[rd] = x[rs1].wrapping_sub(x[rs2]),
            Op::Sll => x[rd] = x[rs1] << (x[rs2] & 63),
            Op::Slt => x[rd] = u64::from((x[rs1] as i64) < (x[rs2] as i64)),
            Op::Sltu => x[rd] = u64::from(x[rs1] < x[rs2]),
            Op::Xor => x[rd] = x[rs1] ^ x[rs2],
            Op::Srl => x[rd] = x[rs1] >> (x[rs2] & 63),
            Op::Sra => x[rd] = ((x[rs1] as i64) >> (x[rs2] & 63)) as u64,
            Op::Or => x[rd] = x[rs1] | x[rs2],
            Op::And => x[rd] = x[rs1] & x[rs2],
            Op::Addiw => x[rd] = sext32(x[rs1].wrapping_add(imm)),
            Op::Slliw => x[rd] = sext32(x[rs1] << (imm & 31)),
            Op::Srliw => x[rd] = sext32(u64::from((x[rs1] as u32) >> (imm & 31))),
            Op::Sraiw => x[rd] = ((x[rs1] as i32) >> (imm & 31)) as i64 as u64,
            Op::Addw => x[rd] = sext32(x[rs1].wrapping_add(x[rs2])),
            Op::Subw => x[rd] = sext32(x[rs1].wrapping_sub(x[rs2])),
            Op::Sllw => x[rd] = sext32(x[rs1] << (x[rs2] & 31)),
            Op::Srlw => x[rd] = sext32(u64::from((x[rs1] as u32) >> (x[rs2] & 31))),
            Op::Sraw => x[rd] = ((x[rs1] as i32) >> (x[rs2] & 31)) as i64 as u64,
            Op::Mul => x[rd] = x[rs1].wrapping_mul(x[rs2]),
            Op::Mulh => x[rd] = ((i128::from(x[rs1] as i64) * i128::from(x[rs2] as i64)) >> 64) as u64,
            Op::Mulhsu => x[rd] = ((i128::from(x[rs1] as i64).wrapping_mul(i128::from(x[rs2]))) >> 64) as u64,
            Op::Mulhu => x[rd] = ((u128::from(x[rs1]) * u128::from(x[rs2])) >> 64) as u64,
            Op::Div => {
                let (a, b) = (x[rs1] as i64, x[rs2] as i64);
                x[rd] = if b == 0 { u64::MAX } else { a.wrapping_div(b) as u64 };
            }
            Op::Divu => {
                let (a, b) = (x[rs1], x[rs2]);
                x[rd] = a.checked_div(b).unwrap_or(u64::MAX);
            }
            Op::Rem => {
                let (a, b) = (x[rs1] as i64, x[rs2] as i64);
                x[rd] = if b == 0 { a as u64 } else { a.wrapping_rem(b) as u64 };
            }
            Op::Remu => {
                let (a, b) = (x[rs1], x[rs2]);
                x[rd] = if b == 0 { a } else { a % b };
            }
            Op::Mulw => x[rd] = sext32(x[rs1].wrapping_mul(x[rs2])),
            Op::Divw => {
                let (a, b) = (x[rs1] as i32, x[rs2] as i32);
                x[rd] = if b == 0 { u64::MAX } else { i64::from(a.wrapping_div(b)) as u64 };
            }
            Op::Divuw => {
                let (a, b) = (x[rs1] as u32, x[rs2] as u32);
                x[rd] = a.checked_div(b).map_or(u64::MAX, |q| sext32(u64::from(q)));
            }
            Op::Remw => {
                let (a, b) = (x[rs1] as i32, x[rs2] as i32);
                x[rd] = if b == 0 { i64::from(a) as u64 } else { i64::from(a.wrapping_rem(b)) as u64 };
            }
            Op::Remuw => {
                let (a, b) = (x[rs1] as u32, x[rs2] as u32);
                x[rd] = if b == 0 { sext32(u64::from(a)) } else { sext32(u64::from(a % b)) };
            }
            Op::Fence => {}
            Op::FenceI => {
                // Stores to code pages already drop their blocks (see block.rs); nothing is stale.
            }
            Op::Illegal => return Err(Exception::illegal(i.raw)),
            _ => return self.exec_rare(i, pc, ic, bus, env),
        }
        Ok(Flow::Next)
    }

    #[inline(never)]
    fn exec_rare(&mut self, i: &Insn, pc: u64, ic: u64, bus: &mut Bus, env: &mut dyn Environment) -> Res {
        self.icount = ic;
        let rd = usize::from(i.rd) & 63;
        let rs1 = usize::from(i.rs1) & 63;
        let rs2 = usize::from(i.rs2) & 63;
        match i.op {
            Op::LrW | Op::LrD => {
                let size = if i.op == Op::LrW { 4 } else { 8 };
                let off = self.amo_offset(self.x[rs1], size, Access::Load, &mut bus.ram)?;
                let s = bus.ram.as_slice();
                let v = if size == 4 { rd_bytes::<4>(s, off) as i32 as i64 as u64 } else { rd_bytes::<8>(s, off) };
                self.reservation = Some(bus.ram.base() + off as u64);
                self.x[rd] = v;
            }
            Op::ScW | Op::ScD => {
                let size = if i.op == Op::ScW { 4 } else { 8 };
                let off = self.amo_offset(self.x[rs1], size, Access::Store, &mut bus.ram)?;
                let pa = bus.ram.base() + off as u64;
                if self.reservation == Some(pa) {
                    let v = self.x[rs2];
                    self.ram_write_at(&mut bus.ram, off, v, size as usize);
                    self.x[rd] = 0;
                } else {
                    self.x[rd] = 1;
                }
                self.reservation = None;
            }
            Op::Amo => {
                let size = i.imm as u64;
                let off = self.amo_offset(self.x[rs1], size, Access::Store, &mut bus.ram)?;
                let s = bus.ram.as_slice();
                let (old, src) = if size == 4 {
                    (rd_bytes::<4>(s, off) as i32 as i64 as u64, self.x[rs2] as i32 as i64 as u64)
                } else {
                    (rd_bytes::<8>(s, off), self.x[rs2])
                };
                let new = match i.rs3 {
                    0 => old.wrapping_add(src),
                    1 => src,
                    4 => old ^ src,
                    8 => old | src,
                    12 => old & src,
                    16 => (old as i64).min(src as i64) as u64,
                    20 => (old as i64).max(src as i64) as u64,
                    24 => if size == 4 { u64::from((old as u32).min(src as u32)) } else { old.min(src) },
                    _ => if size == 4 { u64::from((old as u32).max(src as u32)) } else { old.max(src) },
                };
                self.ram_write_at(&mut bus.ram, off, new, size as usize);
                self.x[rd] = old;
            }
            Op::Ecall => {
                let c = match self.prv {
                    Priv::U => cause::ECALL_U,
                    Priv::S => cause::ECALL_S,
                    Priv::M => cause::ECALL_M,
                };
                return Err(Exception { cause: c, tval: 0 });
            }
            Op::Ebreak => return Err(Exception { cause: cause::BREAKPOINT, tval: pc }),
            Op::Mret => {
                if self.prv != Priv::M {
                    return Err(Exception::illegal(i.raw));
                }
                self.mret();
                return Ok(Flow::Jump(self.pc));
            }
            Op::Sret => {
                if self.prv == Priv::U || (self.prv == Priv::S && self.mstatus & MSTATUS_TSR != 0) {
                    return Err(Exception::illegal(i.raw));
                }
                self.sret();
                return Ok(Flow::Jump(self.pc));
            }
            Op::Wfi => {
                if self.prv == Priv::U || (self.prv == Priv::S && self.mstatus & MSTATUS_TW != 0) {
                    return Err(Exception::illegal(i.raw));
                }
                if !self.wake_pending() {
                    self.wfi = true;
                }
            }
            Op::SfenceVma => {
                if self.prv == Priv::U || (self.prv == Priv::S && self.mstatus & MSTATUS_TVM != 0) {
                    return Err(Exception::illegal(i.raw));
                }
                match (i.rs1, i.rs2) {
                    (0, 0) => self.tlb_flush(),
                    (0, _) => self.mmu.flush_asid((self.x[rs2] & 0xffff) as u32),
                    _ => {
                        let va = self.x[rs1];
                        self.mmu.flush_page(va);
                    }
                }
            }
            Op::Csrrw | Op::Csrrwi | Op::Csrrs | Op::Csrrsi | Op::Csrrc | Op::Csrrci => {
                let csr = (i.imm as u32 & 0xfff) as u16;
                let src = match i.op {
                    Op::Csrrw | Op::Csrrs | Op::Csrrc => self.x[rs1],
                    _ => u64::from(i.rs1),
                };
                let write = matches!(i.op, Op::Csrrw | Op::Csrrwi) || i.rs1 != 0;
                let old = self.csr_read(csr, write, i.raw)?;
                if write {
                    let new = match i.op {
                        Op::Csrrw | Op::Csrrwi => src,
                        Op::Csrrs | Op::Csrrsi => old | src,
                        _ => old & !src,
                    };
                    self.csr_write(csr, new, i.raw)?;
                }
                self.x[rd] = old;
            }
            Op::Flw | Op::Fld => {
                self.fs_check(i.raw)?;
                let a = self.x[rs1].wrapping_add(i64::from(i.imm) as u64);
                let v = if i.op == Op::Flw {
                    self.load::<4>(a, ic, bus, env)? | 0xffff_ffff_0000_0000
                } else {
                    self.load::<8>(a, ic, bus, env)?
                };
                self.f[usize::from(i.rd)] = v;
                self.mstatus |= MSTATUS_FS;
            }
            Op::Fsw | Op::Fsd => {
                self.fs_check(i.raw)?;
                let a = self.x[rs1].wrapping_add(i64::from(i.imm) as u64);
                let v = self.f[rs2];
                if i.op == Op::Fsw {
                    self.store::<4>(a, v, ic, bus, env)?;
                } else {
                    self.store::<8>(a, v, ic, bus, env)?;
                }
            }
            Op::Fp => {
                self.fs_check(i.raw)?;
                self.exec_fp(i)?;
            }
            _ => return Err(Exception::illegal(i.raw)),
        }
        Ok(Flow::Check)
    }

    pub(super) fn fs_check(&self, raw: u32) -> Result<(), Exception> {
        if self.mstatus & MSTATUS_FS == 0 {
            Err(Exception::illegal(raw))
        } else {
            Ok(())
        }
    }
}

#[inline(always)]
fn branch(taken: bool, pc: u64, imm: u64, len: u8) -> Flow {
    Flow::Jump(if taken { pc.wrapping_add(imm) } else { pc.wrapping_add(u64::from(len)) })
}

#[inline(always)]
fn sext32(v: u64) -> u64 {
    v as i32 as i64 as u64
}
