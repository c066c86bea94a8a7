use super::device::Block;
use super::disk::{DiskBase, Overlay, OVERLAY_PAGE};
use crate::devices::DeviceError;
use crate::persist::Persist;

/// Snapshot of the block device: the size of the base it was taken against and the overlay.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BlockState {
    pub base_len: u64,
    /// (page index, [`OVERLAY_PAGE`] bytes), in increasing index order.
    pub overlay: Vec<(u64, Vec<u8>)>,
}

fn invalid(reason: String) -> DeviceError {
    DeviceError::InvalidState { device: "virtio-blk", reason }
}

impl Persist for Block {
    type State = BlockState;
    type ConstructorArgs = Box<dyn DiskBase>;
    type Error = DeviceError;

    fn save(&self) -> BlockState {
        BlockState {
            base_len: self.base.len(),
            overlay: self.overlay.iter().map(|(i, p)| (i, p.to_vec())).collect(),
        }
    }

    fn restore(base: Box<dyn DiskBase>, s: &BlockState) -> Result<Self, DeviceError> {
        if s.base_len != base.len() {
            return Err(invalid(format!(
                "state was taken against a {}-byte base image, this one has {} bytes",
                s.base_len,
                base.len()
            )));
        }
        let pages_in_disk = base.len().div_ceil(OVERLAY_PAGE as u64);
        let mut overlay = Overlay::default();
        let mut last = None;
        for (index, page) in &s.overlay {
            if *index >= pages_in_disk {
                return Err(invalid(format!("overlay page {index} lies beyond the {pages_in_disk}-page disk")));
            }
            if page.len() != OVERLAY_PAGE {
                return Err(invalid(format!("overlay page {index} holds {} bytes, not {OVERLAY_PAGE}", page.len())));
            }
            if last.is_some_and(|l| l >= *index) {
                return Err(invalid(format!("overlay page {index} is out of order or repeated")));
            }
            last = Some(*index);
            overlay.pages.insert(*index, page.clone().into_boxed_slice());
        }
        let mut b = Block::new(base);
        b.overlay = overlay;
        Ok(b)
    }
}
