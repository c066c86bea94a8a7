use super::device::{Input, InputConfig, EV_ABS, EV_KEY, EV_REL, EV_SYN, MAX_PENDING};
use crate::devices::DeviceError;
use crate::persist::Persist;

/// Snapshot of an input device: the config-space selector and undelivered events.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InputState {
    pub select: u8,
    pub subsel: u8,
    /// (type, code, value) evdev events.
    pub pending: Vec<(u16, u16, u32)>,
}

impl Persist for Input {
    type State = InputState;
    type ConstructorArgs = InputConfig;
    type Error = DeviceError;

    fn save(&self) -> InputState {
        InputState { select: self.select, subsel: self.subsel, pending: self.pending.iter().copied().collect() }
    }

    fn restore(config: InputConfig, s: &InputState) -> Result<Self, DeviceError> {
        let invalid = |reason| DeviceError::InvalidState { device: "virtio-input", reason };
        if s.pending.len() > MAX_PENDING {
            return Err(invalid(format!("{} pending events, at most {MAX_PENDING}", s.pending.len())));
        }
        if let Some(e) = s.pending.iter().find(|e| ![EV_SYN, EV_KEY, EV_REL, EV_ABS].contains(&e.0)) {
            return Err(invalid(format!("pending event of type {:#x}, which this device never sends", e.0)));
        }
        let mut i = Input::new(config);
        i.select = s.select;
        i.subsel = s.subsel;
        i.pending = s.pending.iter().copied().collect();
        Ok(i)
    }
}
