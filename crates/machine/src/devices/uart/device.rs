use std::collections::VecDeque;

use super::metrics::UartMetrics;
use crate::bus::{BusFault, MmioCtx};
use crate::env::Output;

/// Most received bytes held before the guest reads them.
pub const RX_CAPACITY: usize = 4096;

pub(super) const IER_RDI: u8 = 0x01;
pub(super) const IER_THRI: u8 = 0x02;
pub(super) const IER_RLSI: u8 = 0x04;
pub(super) const IER_MASK: u8 = 0x0f;

const IIR_NO_INT: u8 = 0x01;
const IIR_THRI: u8 = 0x02;
const IIR_RDI: u8 = 0x04;
const IIR_RLSI: u8 = 0x06;
const IIR_FIFO_ENABLED: u8 = 0xc0;

const FCR_ENABLE: u8 = 0x01;
const FCR_CLEAR_RX: u8 = 0x02;

const LCR_DLAB: u8 = 0x80;
pub(super) const MCR_LOOP: u8 = 0x10;
pub(super) const MCR_MASK: u8 = 0x1f;

const LSR_DR: u8 = 0x01;
const LSR_OE: u8 = 0x02;
const LSR_THRE: u8 = 0x20;
const LSR_TEMT: u8 = 0x40;

/// The UART's registers and receive buffer.
#[derive(Debug, Clone, Default)]
pub struct Uart {
    pub(super) ier: u8,
    pub(super) lcr: u8,
    pub(super) mcr: u8,
    pub(super) scr: u8,
    pub(super) dll: u8,
    pub(super) dlm: u8,
    /// FCR bits kept: FIFO enable and the trigger level.
    pub(super) fcr: u8,
    pub(super) overrun: bool,
    /// The THR-empty interrupt is pending (cleared by reading IIR while it is reported, or by
    /// writing THR).
    pub(super) thre_pending: bool,
    pub(super) rx: VecDeque<u8>,
    pub(super) metrics: UartMetrics,
}

impl PartialEq for Uart {
    fn eq(&self, o: &Self) -> bool {
        (self.ier, self.lcr, self.mcr, self.scr, self.dll, self.dlm, self.fcr)
            == (o.ier, o.lcr, o.mcr, o.scr, o.dll, o.dlm, o.fcr)
            && (self.overrun, self.thre_pending) == (o.overrun, o.thre_pending)
            && self.rx == o.rx
    }
}

impl Uart {
    pub(super) fn from_parts(mut u: Uart) -> Uart {
        u.metrics = UartMetrics::default();
        u
    }

    pub fn metrics(&self) -> UartMetrics {
        self.metrics
    }

    /// The interrupt the UART reports in IIR, highest priority first.
    fn iir_id(&self) -> u8 {
        if self.ier & IER_RLSI != 0 && self.overrun {
            IIR_RLSI
        } else if self.ier & IER_RDI != 0 && !self.rx.is_empty() {
            IIR_RDI
        } else if self.ier & IER_THRI != 0 && self.thre_pending {
            IIR_THRI
        } else {
            IIR_NO_INT
        }
    }

    /// The interrupt line (PLIC source [`crate::bus::UART_IRQ`]).
    pub fn irq(&self) -> bool {
        self.iir_id() != IIR_NO_INT
    }

    /// Bytes typed on the console. Bytes that do not fit are dropped and flag an overrun.
    pub fn receive(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if self.rx.len() < RX_CAPACITY {
                self.rx.push_back(b);
                self.metrics.rx_bytes += 1;
            } else {
                self.overrun = true;
                self.metrics.rx_dropped += 1;
            }
        }
    }

    fn lsr(&self) -> u8 {
        let mut v = LSR_THRE | LSR_TEMT;
        if !self.rx.is_empty() {
            v |= LSR_DR;
        }
        if self.overrun {
            v |= LSR_OE;
        }
        v
    }

    fn msr(&self) -> u8 {
        if self.mcr & MCR_LOOP != 0 {
            // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
            let m = self.mcr;
            ((m & 0x02) << 3) | ((m & 0x01) << 5) | ((m & 0x04) << 4) | ((m & 0x08) << 4)
        } else {
            // DCD, DSR and CTS asserted: a terminal is always attached.
            0xb0
        }
    }

    pub fn read(&mut self, offset: u64, size: u8) -> Result<u64, BusFault> {
        if size != 1 {
            return Err(BusFault);
        }
        let dlab = self.lcr & LCR_DLAB != 0;
        let v = match offset {
            0 if dlab => self.dll,
            0 => self.rx.pop_front().unwrap_or(0),
            1 if dlab => self.dlm,
            1 => self.ier,
            2 => {
                let id = self.iir_id();
                if id == IIR_THRI {
                    self.thre_pending = false;
                }
                id | if self.fcr & FCR_ENABLE != 0 { IIR_FIFO_ENABLED } else { 0 }
            }
            3 => self.lcr,
            4 => self.mcr,
            5 => {
                let v = self.lsr();
                self.overrun = false;
                v
            }
            6 => self.msr(),
            7 => self.scr,
            _ => 0,
        };
        Ok(u64::from(v))
    }

    pub fn write(&mut self, offset: u64, size: u8, value: u64, ctx: &mut MmioCtx<'_>) -> Result<(), BusFault> {
        if size != 1 {
            return Err(BusFault);
        }
        let v = (value & 0xff) as u8; // byte-wide registers
        let dlab = self.lcr & LCR_DLAB != 0;
        match offset {
            0 if dlab => self.dll = v,
            0 => {
                if self.mcr & MCR_LOOP != 0 {
                    self.receive(&[v]);
                } else {
                    ctx.env.output(ctx.icount, Output::Console(&[v]));
                    self.metrics.tx_bytes += 1;
                }
                // Sent at once: THR is empty again.
                self.thre_pending = true;
            }
            1 if dlab => self.dlm = v,
            1 => {
                let enabling_thri = v & IER_THRI != 0 && self.ier & IER_THRI == 0;
                self.ier = v & IER_MASK;
                if enabling_thri {
                    // THR is always empty: enabling THRI raises the interrupt, which Linux's
                    // 8250 start-up test (UART_BUG_THRE) checks for.
                    self.thre_pending = true;
                }
            }
            2 => {
                if v & FCR_CLEAR_RX != 0 {
                    self.rx.clear();
                }
                self.fcr = v & 0xc1;
            }
            3 => self.lcr = v,
            4 => self.mcr = v & MCR_MASK,
            7 => self.scr = v,
            // LSR and MSR are read-only.
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::NullEnvironment;

    fn ctx(env: &mut NullEnvironment) -> MmioCtx<'_> {
        MmioCtx { icount: 0, now: 0, env }
    }

    #[test]
    fn transmit_goes_to_the_console_and_thre_interrupt_rearms() {
        let mut env = NullEnvironment::default();
        let mut u = Uart::default();
        assert!(!u.irq());
        assert_eq!(u.read(2, 1).unwrap(), 1, "no interrupt, FIFO off");
        u.write(1, 1, u64::from(IER_THRI), &mut ctx(&mut env)).unwrap();
        assert!(u.irq());
        // Reading IIR reporting THRE clears it (the 8250 THRE test reads it twice).
        assert_eq!(u.read(2, 1).unwrap(), 0x02);
        assert!(!u.irq());
        assert_eq!(u.read(2, 1).unwrap(), 0x01);
        for b in b"hi" {
            u.write(0, 1, u64::from(*b), &mut ctx(&mut env)).unwrap();
            assert!(u.irq(), "THR empty again after each byte");
        }
        assert_eq!(env.console, b"hi");
        u.write(1, 1, 0, &mut ctx(&mut env)).unwrap();
        assert!(!u.irq());
        assert_eq!(u.read(5, 1).unwrap(), 0x60);
    }

    #[test]
    fn receive_fifo_interrupt_and_overrun() {
        let mut env = NullEnvironment::default();
        let mut u = Uart::default();
        u.write(2, 1, 0xc7, &mut ctx(&mut env)).unwrap(); // FIFO on, clear, trigger 14
        u.write(1, 1, u64::from(IER_RDI | IER_RLSI), &mut ctx(&mut env)).unwrap();
        assert!(!u.irq());
        u.receive(b"ab");
        assert!(u.irq());
        assert_eq!(u.read(2, 1).unwrap(), 0xc4);
        assert_eq!(u.read(5, 1).unwrap(), 0x61);
        assert_eq!(u.read(0, 1).unwrap(), u64::from(b'a'));
        assert_eq!(u.read(0, 1).unwrap(), u64::from(b'b'));
        assert!(!u.irq());
        assert_eq!(u.read(5, 1).unwrap(), 0x60);

        u.receive(&vec![b'x'; RX_CAPACITY + 3]);
        assert_eq!(u.metrics().rx_dropped, 3);
        assert_eq!(u.read(2, 1).unwrap(), 0xc6, "line status outranks data");
        assert_eq!(u.read(5, 1).unwrap(), 0x63);
        assert_eq!(u.read(2, 1).unwrap(), 0xc4, "OE cleared by reading LSR");
        u.write(2, 1, 0x03, &mut ctx(&mut env)).unwrap();
        assert_eq!(u.read(5, 1).unwrap() & 1, 0, "FCR cleared the receive FIFO");
    }

    #[test]
    fn divisor_latch_scratch_and_loopback() {
        let mut env = NullEnvironment::default();
        let mut u = Uart::default();
        u.write(3, 1, 0x83, &mut ctx(&mut env)).unwrap();
        u.write(0, 1, 0x0c, &mut ctx(&mut env)).unwrap();
        u.write(1, 1, 0x01, &mut ctx(&mut env)).unwrap();
        assert_eq!((u.read(0, 1).unwrap(), u.read(1, 1).unwrap()), (0x0c, 0x01));
        u.write(3, 1, 0x03, &mut ctx(&mut env)).unwrap();
        assert_eq!(u.read(1, 1).unwrap(), 0, "IER untouched by DLM writes");
        assert!(env.console.is_empty(), "DLL writes are not output");
        u.write(7, 1, 0x5a, &mut ctx(&mut env)).unwrap();
        assert_eq!(u.read(7, 1).unwrap(), 0x5a);
        // Loopback as the 8250 autoconfig test uses it: MCR = LOOP | 0x0a -> MSR & 0xf0 = 0x90.
        u.write(4, 1, 0x1a, &mut ctx(&mut env)).unwrap();
        assert_eq!(u.read(6, 1).unwrap() & 0xf0, 0x90);
        u.write(0, 1, u64::from(b'z'), &mut ctx(&mut env)).unwrap();
        assert_eq!(u.read(0, 1).unwrap(), u64::from(b'z'));
        assert!(env.console.is_empty());
        assert_eq!(u.read(0, 2), Err(BusFault));
    }
}
