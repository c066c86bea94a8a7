//! Loading images into guest RAM: a RISC-V Linux `Image` (with a device tree and an initrd) or
//! a bare-metal test program (raw binary or ELF).
//!
//! RAM layout for a Linux boot, from the bottom:
//!
//! ```text
//! RAM_BASE + text_offset (0x20_0000)   kernel Image (image_size bytes incl. bss)
//! ...
//! initrd                               page-aligned, right below the DTB
//! DTB                                  64 KiB slot right below the framebuffer
//! framebuffer                          width * height * 4 bytes, page-aligned, at the top
//! ```
//!
//! Every header field is read with checked arithmetic; a bad image is a [`BootError`] naming what
//! is wrong, never a panic.

use crate::bus::RAM_BASE;
use crate::devices::{DeviceError, FramebufferConfig};
use crate::ram::GuestRam;

/// Where the Linux `Image` header keeps its magic ("RSC\x05").
const IMAGE_MAGIC_OFFSET: usize = 0x38;
const IMAGE_MAGIC: &[u8; 4] = b"RSC\x05";
/// Default load offset of a 64-bit RISC-V kernel.
pub const KERNEL_OFFSET: u64 = 0x20_0000;
/// Room reserved for the device tree blob.
pub const DTB_SLOT: u64 = 0x1_0000;

/// Why an image could not be loaded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BootError {
    #[error("the kernel image is empty")]
    EmptyKernel,
    #[error("not a RISC-V Linux Image: no \"RSC\\x05\" magic at offset 0x38 (got {found:02x?})")]
    NotAnImage { found: Vec<u8> },
    #[error("kernel Image text_offset {text_offset:#x} is not 2 MiB-aligned or too large")]
    BadTextOffset { text_offset: u64 },
    #[error("kernel needs {needed} bytes from {load:#x} but only {available} bytes of RAM are free there")]
    KernelTooLarge { load: u64, needed: u64, available: u64 },
    #[error("initrd of {size} bytes does not fit between the kernel end {kernel_end:#x} and the DTB at {dtb:#x}")]
    InitrdTooLarge { size: u64, kernel_end: u64, dtb: u64 },
    #[error("device tree of {size} bytes exceeds its {DTB_SLOT}-byte slot")]
    DtbTooLarge { size: usize },
    #[error("bad ELF file: {reason}")]
    BadElf { reason: String },
    #[error("program segment [{start:#x}, {end:#x}) lies outside RAM [{ram_start:#x}, {ram_end:#x})")]
    SegmentOutsideRam { start: u64, end: u64, ram_start: u64, ram_end: u64 },
}

/// Where a linear framebuffer lives in guest physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FbLayout {
    pub addr: u64,
    pub width: u32,
    pub height: u32,
    /// Bytes per row (4 bytes per pixel, `x8r8g8b8`).
    pub stride: u32,
    /// Bytes reserved (page-aligned).
    pub size: u64,
}

/// The framebuffer carved from the top of RAM (geometry rules: [`FramebufferConfig`]).
pub fn fb_layout(ram_size: u64, fb: Option<(u32, u32)>) -> Result<Option<FbLayout>, DeviceError> {
    let Some((width, height)) = fb else { return Ok(None) };
    let cfg = FramebufferConfig { width, height };
    let addr = cfg.base(RAM_BASE, ram_size)?;
    Ok(Some(FbLayout { addr, width, height, stride: cfg.stride(), size: cfg.size() }))
}

/// A Linux boot plan: where each piece goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxLayout {
    pub kernel_load: u64,
    pub kernel_end: u64,
    pub dtb_addr: u64,
    pub initrd: Option<(u64, u64)>,
}

/// Check a Linux `Image` and plan the layout.
pub fn plan_linux(kernel: &[u8], initrd_len: Option<usize>, ram_size: u64, fb: Option<FbLayout>) -> Result<LinuxLayout, BootError> {
    if kernel.is_empty() {
        return Err(BootError::EmptyKernel);
    }
    let magic = kernel.get(IMAGE_MAGIC_OFFSET..IMAGE_MAGIC_OFFSET + 4);
    if magic != Some(IMAGE_MAGIC.as_slice()) {
        return Err(BootError::NotAnImage { found: magic.unwrap_or(&[]).to_vec() });
    }
    let text_offset = le64(kernel, 8).unwrap_or(0);
    let image_size = le64(kernel, 16).unwrap_or(0);
    let text_offset = if text_offset == 0 { KERNEL_OFFSET } else { text_offset };
    if text_offset % KERNEL_OFFSET != 0 || text_offset >= ram_size {
        return Err(BootError::BadTextOffset { text_offset });
    }
    let load = RAM_BASE + text_offset;
    let needed = image_size.max(kernel.len() as u64);
    let top = fb.map_or(RAM_BASE + ram_size, |f| f.addr);
    let dtb_addr = top - DTB_SLOT;
    let available = dtb_addr.saturating_sub(load);
    if needed > available {
        return Err(BootError::KernelTooLarge { load, needed, available });
    }
    let kernel_end = load + needed;
    let initrd = match initrd_len {
        None => None,
        Some(len) => {
            let len = len as u64;
            let start = dtb_addr.checked_sub(len).map(|s| s & !0xfff);
            match start {
                Some(s) if s >= kernel_end.div_ceil(4096) * 4096 => Some((s, s + len)),
                _ => return Err(BootError::InitrdTooLarge { size: len, kernel_end, dtb: dtb_addr }),
            }
        }
    };
    Ok(LinuxLayout { kernel_load: load, kernel_end, dtb_addr, initrd })
}

fn le64(b: &[u8], off: usize) -> Option<u64> {
    let s = b.get(off..off.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}
fn le32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    let mut a = [0u8; 4];
    a.copy_from_slice(s);
    Some(u32::from_le_bytes(a))
}
fn le16(b: &[u8], off: usize) -> Option<u16> {
    let s = b.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}

/// Load a bare-metal program: an ELF (loaded by its program headers) or a raw binary (at
/// `RAM_BASE`). Returns the entry point.
pub fn load_bare_metal(image: &[u8], ram: &mut GuestRam) -> Result<u64, BootError> {
    if image.is_empty() {
        return Err(BootError::EmptyKernel);
    }
    if image.starts_with(b"\x7fELF") {
        return load_elf(image, ram);
    }
    let end = RAM_BASE + image.len() as u64;
    if ram.write(RAM_BASE, image).is_none() {
        return Err(segment_error(RAM_BASE, end, ram));
    }
    Ok(RAM_BASE)
}

fn segment_error(start: u64, end: u64, ram: &GuestRam) -> BootError {
    BootError::SegmentOutsideRam { start, end, ram_start: ram.base(), ram_end: ram.base() + ram.size() as u64 }
}

fn load_elf(image: &[u8], ram: &mut GuestRam) -> Result<u64, BootError> {
    let bad = |reason: &str| BootError::BadElf { reason: reason.to_string() };
    if image.len() < 64 {
        return Err(bad("file shorter than the 64-byte ELF64 header"));
    }
    if image[4] != 2 {
        return Err(bad("not ELFCLASS64"));
    }
    if image[5] != 1 {
        return Err(bad("not little-endian"));
    }
    if le16(image, 18) != Some(243) {
        return Err(bad("e_machine is not RISC-V (243)"));
    }
    let entry = le64(image, 24).ok_or_else(|| bad("truncated header"))?;
    let phoff = le64(image, 32).ok_or_else(|| bad("truncated header"))?;
    let phentsize = le16(image, 54).ok_or_else(|| bad("truncated header"))?;
    let phnum = le16(image, 56).ok_or_else(|| bad("truncated header"))?;
    if phentsize < 56 {
        return Err(bad("e_phentsize below 56"));
    }
    let mut loaded = 0;
    for i in 0..u64::from(phnum) {
        let base = phoff
            .checked_add(i * u64::from(phentsize))
            .and_then(|o| usize::try_from(o).ok())
            .ok_or_else(|| bad("program header offset overflows"))?;
        let field64 = |o: usize| le64(image, base + o).ok_or_else(|| bad(&format!("program header {i} lies beyond the end of the file")));
        let p_type = le32(image, base).ok_or_else(|| bad(&format!("program header {i} lies beyond the end of the file")))?;
        if p_type != 1 {
            continue; // not PT_LOAD
        }
        let (offset, paddr, filesz, memsz) = (field64(8)?, field64(24)?, field64(32)?, field64(40)?);
        if filesz > memsz {
            return Err(bad(&format!("segment {i}: p_filesz {filesz} exceeds p_memsz {memsz}")));
        }
        let data = usize::try_from(offset)
            .ok()
            .zip(usize::try_from(filesz).ok())
            .and_then(|(o, n)| image.get(o..o.checked_add(n)?))
            .ok_or_else(|| bad(&format!("segment {i}: file range {offset:#x}+{filesz:#x} beyond the end of the file")))?;
        let end = paddr.checked_add(memsz).ok_or_else(|| bad(&format!("segment {i}: address overflows")))?;
        let memsz_usize = usize::try_from(memsz).map_err(|_| bad("segment too large"))?;
        if ram.offset_of(paddr, memsz_usize).is_none() {
            return Err(segment_error(paddr, end, ram));
        }
        ram.write(paddr, data).ok_or_else(|| segment_error(paddr, end, ram))?;
        let zeros = vec![0u8; memsz_usize - data.len()];
        ram.write(paddr + filesz, &zeros).ok_or_else(|| segment_error(paddr, end, ram))?;
        loaded += 1;
    }
    if loaded == 0 {
        return Err(bad("no PT_LOAD segment"));
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(text_offset: u64, image_size: u64, len: usize) -> Vec<u8> {
        let mut k = vec![0u8; len.max(64)];
        k[8..16].copy_from_slice(&text_offset.to_le_bytes());
        k[16..24].copy_from_slice(&image_size.to_le_bytes());
        k[0x38..0x3c].copy_from_slice(IMAGE_MAGIC);
        k
    }

    #[test]
    fn linux_layout_places_initrd_below_dtb_below_framebuffer() {
        let ram = 64 << 20;
        let fb = fb_layout(ram, Some((640, 480))).unwrap();
        let l = plan_linux(&image(0x20_0000, 4 << 20, 4096), Some(10_000), ram, fb).unwrap();
        assert_eq!(l.kernel_load, RAM_BASE + 0x20_0000);
        let fb = fb.unwrap();
        assert_eq!(l.dtb_addr + DTB_SLOT, fb.addr);
        let (s, e) = l.initrd.unwrap();
        assert!(e <= l.dtb_addr && s % 4096 == 0 && s >= l.kernel_end);
    }

    #[test]
    fn bad_kernels_are_named() {
        assert_eq!(plan_linux(&[], None, 64 << 20, None), Err(BootError::EmptyKernel));
        assert!(matches!(plan_linux(&[0; 100], None, 64 << 20, None), Err(BootError::NotAnImage { .. })));
        assert!(matches!(
            plan_linux(&image(0x20_0000, 100 << 20, 64), None, 64 << 20, None),
            Err(BootError::KernelTooLarge { .. })
        ));
        assert!(matches!(
            plan_linux(&image(0x20_0000, 1 << 20, 64), Some(70 << 20), 64 << 20, None),
            Err(BootError::InitrdTooLarge { .. })
        ));
    }

    #[test]
    fn truncated_and_hostile_elves_are_refused() {
        let mut ram = GuestRam::new(RAM_BASE, 1 << 20);
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[18] = 243;
        elf[54] = 56;
        elf[56] = 1; // one program header...
        elf[32..40].copy_from_slice(&u64::MAX.to_le_bytes()); // ...at an absurd offset
        assert!(matches!(load_elf(&elf, &mut ram), Err(BootError::BadElf { .. })));
        assert!(matches!(load_bare_metal(&elf[..20], &mut ram), Err(BootError::BadElf { .. })));
    }
}
