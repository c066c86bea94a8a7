use super::device::{Net, MAX_FRAME, RX_BACKLOG};
use crate::devices::DeviceError;
use crate::persist::Persist;

/// Snapshot of the network device: the frames waiting for receive buffers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetState {
    pub backlog: Vec<Vec<u8>>,
}

impl Persist for Net {
    type State = NetState;
    /// The MAC address (configuration, not state).
    type ConstructorArgs = [u8; 6];
    type Error = DeviceError;

    fn save(&self) -> NetState {
        NetState { backlog: self.backlog.iter().cloned().collect() }
    }

    fn restore(mac: [u8; 6], s: &NetState) -> Result<Self, DeviceError> {
        let invalid = |reason| DeviceError::InvalidState { device: "virtio-net", reason };
        if s.backlog.len() > RX_BACKLOG {
            return Err(invalid(format!("{} backlogged frames, at most {RX_BACKLOG}", s.backlog.len())));
        }
        if let Some(f) = s.backlog.iter().find(|f| f.len() > MAX_FRAME) {
            return Err(invalid(format!("a backlogged frame of {} bytes exceeds {MAX_FRAME}", f.len())));
        }
        let mut n = Net::new(mac);
        n.backlog = s.backlog.iter().cloned().collect();
        Ok(n)
    }
}
