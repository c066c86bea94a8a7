use crate::bus::{BusFault, MachineRequest};

/// Writing `FINISHER_PASS` powers off with code 0, `(code << 16) | FINISHER_FAIL` with `code`,
/// `FINISHER_RESET` resets. Reads return 0.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Syscon;

pub const FINISHER_FAIL: u32 = 0x3333;
pub const FINISHER_PASS: u32 = 0x5555;
pub const FINISHER_RESET: u32 = 0x7777;

impl Syscon {
    pub fn read(&mut self, _offset: u64, _size: u8) -> Result<u64, BusFault> {
        Ok(0)
    }

    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> Result<MachineRequest, BusFault> {
        if offset != 0 || size < 4 {
            return Ok(MachineRequest::None);
        }
        let value = (value & 0xffff_ffff) as u32; // the register is 32 bits wide
        Ok(match value & 0xffff {
            FINISHER_PASS => MachineRequest::PowerOff(0),
            FINISHER_FAIL => MachineRequest::PowerOff(value >> 16),
            FINISHER_RESET => MachineRequest::Reset,
            _ => MachineRequest::None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finisher_codes() {
        let mut s = Syscon;
        assert_eq!(s.write(0, 4, 0x5555).unwrap(), MachineRequest::PowerOff(0));
        assert_eq!(
            s.write(0, 4, (7 << 16) | 0x3333).unwrap(),
            MachineRequest::PowerOff(7)
        );
        assert_eq!(s.write(0, 4, 0x7777).unwrap(), MachineRequest::Reset);
        assert_eq!(s.write(0, 4, 0x1234).unwrap(), MachineRequest::None);
        assert_eq!(s.write(4, 4, 0x5555).unwrap(), MachineRequest::None);
    }
}
