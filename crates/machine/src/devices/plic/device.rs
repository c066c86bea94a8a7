use crate::bus::BusFault;

/// Number of interrupt source ids, including the reserved id 0. `riscv,ndev` is one less.
pub const NUM_SOURCES: u32 = 64;
/// Interrupt contexts: 0 = hart 0 M-mode, 1 = hart 0 S-mode.
pub const CONTEXTS: usize = 2;
pub(super) const WORDS: usize = (NUM_SOURCES as usize).div_ceil(32);
const PRIORITY_MASK: u32 = 7;

const PENDING_BASE: u64 = 0x1000;
const ENABLE_BASE: u64 = 0x2000;
const ENABLE_STRIDE: u64 = 0x80;
const CONTEXT_BASE: u64 = 0x20_0000;
const CONTEXT_STRIDE: u64 = 0x1000;

/// The PLIC. Source `0` does not exist; its bits read as zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plic {
    pub(super) priority: Vec<u32>,
    /// Gateway state: a request forwarded and not yet claimed.
    pub(super) pending: [u32; WORDS],
    /// Claimed and not yet completed.
    pub(super) claimed: [u32; WORDS],
    /// The current input line level of each source.
    pub(super) level: [u32; WORDS],
    pub(super) enable: [[u32; WORDS]; CONTEXTS],
    pub(super) threshold: [u32; CONTEXTS],
}

impl Default for Plic {
    fn default() -> Self {
        Plic {
            priority: vec![0; NUM_SOURCES as usize],
            pending: [0; WORDS],
            claimed: [0; WORDS],
            level: [0; WORDS],
            enable: [[0; WORDS]; CONTEXTS],
            threshold: [0; CONTEXTS],
        }
    }
}

fn bit(irq: u32) -> (usize, u32) {
    ((irq / 32) as usize, 1u32 << (irq % 32))
}

impl Plic {
    /// Set the input line of source `irq` (1..NUM_SOURCES); out-of-range ids are ignored.
    pub fn set_level(&mut self, irq: u32, high: bool) {
        if irq == 0 || irq >= NUM_SOURCES {
            return;
        }
        let (w, b) = bit(irq);
        if high {
            self.level[w] |= b;
            if self.claimed[w] & b == 0 {
                self.pending[w] |= b;
            }
        } else {
            self.level[w] &= !b;
            self.pending[w] &= !b;
        }
    }

    /// The best source context `ctx` may claim: pending, enabled, priority above the threshold;
    /// highest priority first, lowest id among equals. 0 if none.
    fn best(&self, ctx: usize) -> u32 {
        // Fast path (the hart asks often): nothing pending and enabled.
        if self.pending.iter().zip(&self.enable[ctx]).all(|(p, e)| p & e == 0) {
            return 0;
        }
        let mut best = 0;
        let mut best_prio = self.threshold[ctx];
        for irq in 1..NUM_SOURCES {
            let (w, b) = bit(irq);
            if self.pending[w] & self.enable[ctx][w] & b == 0 {
                continue;
            }
            let prio = self.priority[irq as usize];
            if prio > best_prio {
                best = irq;
                best_prio = prio;
            }
        }
        best
    }

    /// Whether context `ctx` has an interrupt to take (its external-interrupt output).
    pub fn output(&self, ctx: usize) -> bool {
        ctx < CONTEXTS && self.best(ctx) != 0
    }

    fn claim(&mut self, ctx: usize) -> u32 {
        let irq = self.best(ctx);
        if irq != 0 {
            let (w, b) = bit(irq);
            self.pending[w] &= !b;
            self.claimed[w] |= b;
        }
        irq
    }

    fn complete(&mut self, irq: u32) {
        if irq == 0 || irq >= NUM_SOURCES {
            return;
        }
        let (w, b) = bit(irq);
        // Like QEMU, completion does not check the enable bit: Linux may mask a source between
        // claim and complete.
        self.claimed[w] &= !b;
        if self.level[w] & b != 0 {
            self.pending[w] |= b;
        }
    }

    /// Registers are 32 bits wide; other sizes and misaligned accesses fault.
    pub fn read(&mut self, offset: u64, size: u8) -> Result<u64, BusFault> {
        if size != 4 || !offset.is_multiple_of(4) {
            return Err(BusFault);
        }
        let v = match offset {
            o if o < u64::from(NUM_SOURCES) * 4 => self.priority[(o / 4) as usize],
            o if o < PENDING_BASE => 0,
            o if (PENDING_BASE..PENDING_BASE + WORDS as u64 * 4).contains(&o) => {
                self.pending[((o - PENDING_BASE) / 4) as usize]
            }
            o if (ENABLE_BASE..ENABLE_BASE + ENABLE_STRIDE * CONTEXTS as u64).contains(&o) => {
                let ctx = ((o - ENABLE_BASE) / ENABLE_STRIDE) as usize;
                let word = ((o - ENABLE_BASE) % ENABLE_STRIDE / 4) as usize;
                self.enable[ctx].get(word).copied().unwrap_or(0)
            }
            o if (CONTEXT_BASE..CONTEXT_BASE + CONTEXT_STRIDE * CONTEXTS as u64).contains(&o) => {
                let ctx = ((o - CONTEXT_BASE) / CONTEXT_STRIDE) as usize;
                match (o - CONTEXT_BASE) % CONTEXT_STRIDE {
                    0 => self.threshold[ctx],
                    4 => self.claim(ctx),
                    _ => 0,
                }
            }
            _ => 0,
        };
        Ok(u64::from(v))
    }

    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<(), BusFault> {
        if size != 4 || !offset.is_multiple_of(4) {
            return Err(BusFault);
        }
        let value = (value & 0xffff_ffff) as u32; // 32-bit registers
        match offset {
            // Source 0 does not exist: its priority stays 0.
            o if o < u64::from(NUM_SOURCES) * 4 && o != 0 => {
                self.priority[(o / 4) as usize] = value & PRIORITY_MASK;
            }
            o if (ENABLE_BASE..ENABLE_BASE + ENABLE_STRIDE * CONTEXTS as u64).contains(&o) => {
                let ctx = ((o - ENABLE_BASE) / ENABLE_STRIDE) as usize;
                let word = ((o - ENABLE_BASE) % ENABLE_STRIDE / 4) as usize;
                if let Some(e) = self.enable[ctx].get_mut(word) {
                    // Source 0 does not exist.
                    *e = if word == 0 { value & !1 } else { value };
                }
            }
            o if (CONTEXT_BASE..CONTEXT_BASE + CONTEXT_STRIDE * CONTEXTS as u64).contains(&o) => {
                let ctx = ((o - CONTEXT_BASE) / CONTEXT_STRIDE) as usize;
                match (o - CONTEXT_BASE) % CONTEXT_STRIDE {
                    0 => self.threshold[ctx] = value & PRIORITY_MASK,
                    4 => self.complete(value),
                    _ => {}
                }
            }
            // Pending bits are read-only; the rest is reserved.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = CONTEXT_BASE + CONTEXT_STRIDE; // S-mode context registers

    fn setup() -> Plic {
        let mut p = Plic::default();
        p.write(4 * 10, 4, 1).unwrap();
        p.write(4 * 3, 4, 2).unwrap();
        p.write(ENABLE_BASE + ENABLE_STRIDE, 4, (1 << 10) | (1 << 3)).unwrap();
        p
    }

    #[test]
    fn claim_picks_highest_priority_then_lowest_id() {
        let mut p = setup();
        p.write(4 * 5, 4, 2).unwrap();
        p.write(ENABLE_BASE + ENABLE_STRIDE, 4, (1 << 10) | (1 << 3) | (1 << 5)).unwrap();
        for irq in [10, 5, 3] {
            p.set_level(irq, true);
        }
        assert!(p.output(1) && !p.output(0), "only the S context has these enabled");
        assert_eq!(p.read(S + 4, 4).unwrap(), 3);
        assert_eq!(p.read(S + 4, 4).unwrap(), 5);
        assert_eq!(p.read(S + 4, 4).unwrap(), 10);
        assert_eq!(p.read(S + 4, 4).unwrap(), 0);
        assert!(!p.output(1));
    }

    #[test]
    fn level_source_pends_again_after_complete_while_high() {
        let mut p = setup();
        p.set_level(10, true);
        assert_eq!(p.read(PENDING_BASE, 4).unwrap(), 1 << 10);
        assert_eq!(p.read(S + 4, 4).unwrap(), 10);
        assert_eq!(p.read(PENDING_BASE, 4).unwrap(), 0);
        // Still high while claimed: the gateway holds it.
        p.set_level(10, true);
        assert!(!p.output(1));
        p.write(S + 4, 4, 10).unwrap();
        assert!(p.output(1), "line still high after complete: pending again");
        assert_eq!(p.read(S + 4, 4).unwrap(), 10);
        p.set_level(10, false);
        p.write(S + 4, 4, 10).unwrap();
        assert!(!p.output(1));
        // Lowering the line withdraws an unclaimed request.
        p.set_level(3, true);
        p.set_level(3, false);
        assert!(!p.output(1));
    }

    #[test]
    fn threshold_and_zero_priority_mask() {
        let mut p = setup();
        p.set_level(10, true);
        p.write(S, 4, 1).unwrap();
        assert!(!p.output(1), "priority 1 is not above threshold 1");
        assert_eq!(p.read(S + 4, 4).unwrap(), 0);
        p.write(S, 4, 0).unwrap();
        assert!(p.output(1));
        p.write(4 * 10, 4, 0).unwrap();
        assert!(!p.output(1), "priority 0 never interrupts");
        assert_eq!(p.read(S, 4).unwrap(), 0);
    }

    #[test]
    fn m_context_and_register_readback() {
        let mut p = Plic::default();
        p.write(4 * 33, 4, 0xff).unwrap();
        assert_eq!(p.read(4 * 33, 4).unwrap(), 7);
        p.write(ENABLE_BASE + 4, 4, 1 << 1).unwrap(); // source 33, context 0
        assert_eq!(p.read(ENABLE_BASE + 4, 4).unwrap(), 2);
        p.set_level(33, true);
        assert!(p.output(0) && !p.output(1));
        assert_eq!(p.read(CONTEXT_BASE + 4, 4).unwrap(), 33);
        assert_eq!(p.read(0x10, 8), Err(BusFault));
        assert_eq!(p.read(0x2, 4), Err(BusFault));
        p.set_level(0, true);
        p.set_level(NUM_SOURCES, true);
        assert_eq!(p.read(PENDING_BASE, 4).unwrap(), 0);
    }
}
