//! The linear framebuffer. Not a register device: the machine carves [`FramebufferConfig::size`]
//! bytes (page-aligned) from the top of RAM, and the device tree describes them to Linux as a
//! `simple-framebuffer` (`x8r8g8b8`, stride `width * 4`) inside a `no-map` reserved-memory region.
//! Its contents are guest RAM, so they are snapshotted, dirty-tracked and migrated with RAM; the
//! display server reads them and the dirty bits give the damage. Nothing else to persist.

use crate::devices::DeviceError;
use crate::ram::PAGE_SIZE;

/// Largest width or height accepted.
pub const MAX_DIMENSION: u32 = 8192;
/// Bytes per pixel of the `x8r8g8b8` format.
pub const BYTES_PER_PIXEL: u32 = 4;

/// Framebuffer geometry, shared by the device tree and the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FramebufferConfig {
    pub width: u32,
    pub height: u32,
}

impl Default for FramebufferConfig {
    fn default() -> Self {
        FramebufferConfig { width: 1024, height: 768 }
    }
}

impl FramebufferConfig {
    /// Bytes per line.
    pub fn stride(&self) -> u32 {
        self.width * BYTES_PER_PIXEL
    }

    /// Bytes of RAM the framebuffer occupies, rounded up to whole pages.
    pub fn size(&self) -> u64 {
        (u64::from(self.width) * u64::from(self.height) * u64::from(BYTES_PER_PIXEL)).next_multiple_of(PAGE_SIZE as u64)
    }

    /// Check the geometry.
    pub fn validate(&self) -> Result<(), DeviceError> {
        if self.width == 0 || self.height == 0 || self.width > MAX_DIMENSION || self.height > MAX_DIMENSION {
            return Err(DeviceError::Framebuffer { width: self.width, height: self.height });
        }
        Ok(())
    }

    /// Guest physical address of the first pixel for RAM at `ram_base` of `ram_size` bytes: the
    /// framebuffer takes the top of RAM, and at least half of RAM must remain for the guest.
    pub fn base(&self, ram_base: u64, ram_size: u64) -> Result<u64, DeviceError> {
        self.validate()?;
        let size = self.size();
        if size > ram_size / 2 {
            return Err(DeviceError::FramebufferTooLarge { size, ram_size });
        }
        Ok(ram_base + ram_size - size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_and_placement() {
        let fb = FramebufferConfig { width: 1024, height: 768 };
        assert_eq!(fb.stride(), 4096);
        assert_eq!(fb.size(), 3 << 20);
        assert_eq!(fb.base(0x8000_0000, 128 << 20).unwrap(), 0x8000_0000 + (125 << 20));
        let odd = FramebufferConfig { width: 3, height: 3 };
        assert_eq!(odd.size(), PAGE_SIZE as u64);
        assert!(FramebufferConfig { width: 0, height: 1 }.validate().is_err());
        assert!(FramebufferConfig { width: 9000, height: 1 }.validate().is_err());
        assert!(matches!(fb.base(0x8000_0000, 4 << 20), Err(DeviceError::FramebufferTooLarge { .. })));
    }
}
