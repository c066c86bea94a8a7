use super::Clint;
use crate::devices::DeviceError;
use crate::persist::Persist;

/// Snapshot of the CLINT.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClintState {
    pub msip: bool,
    pub mtimecmp: u64,
}

impl Persist for Clint {
    type State = ClintState;
    type ConstructorArgs = ();
    type Error = DeviceError;

    fn save(&self) -> ClintState {
        ClintState { msip: self.msip, mtimecmp: self.mtimecmp }
    }

    fn restore(_args: (), state: &ClintState) -> Result<Self, DeviceError> {
        // Every value of both fields is valid.
        Ok(Clint { msip: state.msip, mtimecmp: state.mtimecmp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut c = Clint::default();
        c.write(super::super::MTIMECMP_OFFSET, 8, 1234).unwrap();
        c.write(super::super::MSIP_OFFSET, 4, 1).unwrap();
        let s = c.save();
        c.write(super::super::MTIMECMP_OFFSET, 8, 1).unwrap();
        let r = Clint::restore((), &s).unwrap();
        assert_eq!(r.save(), s);
        assert_eq!(r, Clint { msip: true, mtimecmp: 1234 });
    }
}
