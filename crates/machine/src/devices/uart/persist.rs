use super::device::{Uart, IER_MASK, MCR_MASK, RX_CAPACITY};
use crate::devices::DeviceError;
use crate::persist::Persist;

/// Snapshot of the UART.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UartState {
    pub ier: u8,
    pub lcr: u8,
    pub mcr: u8,
    pub scr: u8,
    pub dll: u8,
    pub dlm: u8,
    pub fcr: u8,
    pub overrun: bool,
    pub thre_pending: bool,
    pub rx: Vec<u8>,
}

fn invalid(reason: String) -> DeviceError {
    DeviceError::InvalidState { device: "uart", reason }
}

impl Persist for Uart {
    type State = UartState;
    type ConstructorArgs = ();
    type Error = DeviceError;

    fn save(&self) -> UartState {
        UartState {
            ier: self.ier,
            lcr: self.lcr,
            mcr: self.mcr,
            scr: self.scr,
            dll: self.dll,
            dlm: self.dlm,
            fcr: self.fcr,
            overrun: self.overrun,
            thre_pending: self.thre_pending,
            rx: self.rx.iter().copied().collect(),
        }
    }

    fn restore(_args: (), s: &UartState) -> Result<Self, DeviceError> {
        if s.rx.len() > RX_CAPACITY {
            return Err(invalid(format!("{} buffered bytes, at most {RX_CAPACITY}", s.rx.len())));
        }
        if s.ier & !IER_MASK != 0 || s.mcr & !MCR_MASK != 0 || s.fcr & !0xc1 != 0 {
            return Err(invalid(format!(
                "reserved bits set (IER {:#04x}, MCR {:#04x}, FCR {:#04x})",
                s.ier, s.mcr, s.fcr
            )));
        }
        Ok(Uart::from_parts(Uart {
            ier: s.ier,
            lcr: s.lcr,
            mcr: s.mcr,
            scr: s.scr,
            dll: s.dll,
            dlm: s.dlm,
            fcr: s.fcr,
            overrun: s.overrun,
            thre_pending: s.thre_pending,
            rx: s.rx.iter().copied().collect(),
            ..Uart::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::MmioCtx;
    use crate::env::NullEnvironment;

    #[test]
    fn round_trip_and_refusal() {
        let mut env = NullEnvironment::default();
        let mut u = Uart::default();
        let mut ctx = MmioCtx { icount: 0, now: 0, env: &mut env };
        u.write(1, 1, 3, &mut ctx).unwrap();
        u.write(7, 1, 9, &mut ctx).unwrap();
        u.receive(b"abc");
        let s = u.save();
        u.read(0, 1).unwrap();
        u.write(7, 1, 1, &mut ctx).unwrap();
        let r = Uart::restore((), &s).unwrap();
        assert_eq!(r.save(), s);
        let mut bad = s.clone();
        bad.rx = vec![0; RX_CAPACITY + 1];
        assert!(Uart::restore((), &bad).unwrap_err().to_string().contains("buffered bytes"));
        let mut bad = s;
        bad.ier = 0xff;
        assert!(Uart::restore((), &bad).is_err());
    }
}
