use super::device::Rng;
use crate::devices::DeviceError;
use crate::persist::Persist;

impl Persist for Rng {
    type State = ();
    type ConstructorArgs = ();
    type Error = DeviceError;

    fn save(&self) {}

    fn restore(_args: (), _state: &()) -> Result<Self, DeviceError> {
        Ok(Rng)
    }
}
