//! Pixel translation from the server's XRGB8888 to any true-colour client format, and the
//! framebuffer view encoders read from.

use crate::wire::PixelFormat;

/// A read-only view of XRGB8888 little-endian pixels (the byte order of a Linux
/// `simple-framebuffer` with format `x8r8g8b8`).
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    pixels: &'a [u8],
    stride: usize,
    width: u16,
    height: u16,
}

impl<'a> Source<'a> {
    /// A 0x0 source.
    pub const EMPTY: Source<'static> = Source { pixels: &[], stride: 0, width: 0, height: 0 };

    /// `None` if `pixels` is too short for `height` rows of `stride` bytes or `stride` is under
    /// `width * 4`; so every in-bounds pixel read afterwards is valid.
    pub fn new(pixels: &'a [u8], width: u16, height: u16, stride: usize) -> Option<Source<'a>> {
        let row = usize::from(width) * 4;
        if stride < row {
            return None;
        }
        let len = match usize::from(height) {
            0 => 0,
            h => stride.checked_mul(h - 1)?.checked_add(row)?,
        };
        (pixels.len() >= len).then_some(Source { pixels, stride, width, height })
    }

    pub fn width(&self) -> u16 {
        self.width
    }

    pub fn height(&self) -> u16 {
        self.height
    }

    /// The pixel at (x, y) as 0x00RRGGBB. Out-of-range coordinates read as black.
    #[inline]
    pub fn get(&self, x: usize, y: usize) -> u32 {
        let at = y * self.stride + x * 4;
        match self.pixels.get(at..at + 4) {
            Some(b) if x < usize::from(self.width) => u32::from_le_bytes([b[0], b[1], b[2], 0]),
            _ => 0,
        }
    }

    /// One row's bytes from x0, `w` pixels long (clamped to the buffer).
    #[inline]
    pub fn row(&self, x0: usize, y: usize, w: usize) -> &'a [u8] {
        let at = y * self.stride + x0 * 4;
        let end = (at + w * 4).min(self.pixels.len());
        self.pixels.get(at..end).unwrap_or(&[])
    }

    /// The pixels of a rectangle (clipped to the source) as 0x00RRGGBB, row by row.
    pub fn collect(&self, x: usize, y: usize, w: usize, h: usize, out: &mut Vec<u32>) {
        out.clear();
        for yy in y..y + h {
            for px in self.row(x, yy, w).chunks_exact(4) {
                out.push(u32::from_le_bytes([px[0], px[1], px[2], 0]));
            }
        }
    }
}

/// Converts 0x00RRGGBB to a client's pixel values and writes them in its byte order.
#[derive(Debug, Clone)]
pub struct Translator {
    pf: PixelFormat,
    red: [u32; 256],
    green: [u32; 256],
    blue: [u32; 256],
    identity: bool,
}

impl Translator {
    /// `pf` must have passed [`PixelFormat::validate`]. A colour-map format is translated with the
    /// BGR233 layout (the engine sends that fixed palette with SetColourMapEntries).
    pub fn new(pf: &PixelFormat) -> Translator {
        let layout = if pf.true_colour {
            *pf
        } else {
            PixelFormat { bits_per_pixel: pf.bits_per_pixel, big_endian: pf.big_endian, ..PixelFormat::BGR233 }
        };
        let table = |max: u16, shift: u8| {
            let mut t = [0u32; 256];
            for (c, v) in t.iter_mut().enumerate() {
                let c = u32::try_from(c).unwrap_or(0);
                *v = ((c * u32::from(max) + 127) / 255) << (shift & 31);
            }
            t
        };
        Translator {
            pf: layout,
            red: table(layout.red_max, layout.red_shift),
            green: table(layout.green_max, layout.green_shift),
            blue: table(layout.blue_max, layout.blue_shift),
            identity: layout == PixelFormat::XRGB8888,
        }
    }

    pub fn format(&self) -> &PixelFormat {
        &self.pf
    }

    pub fn bytes_per_pixel(&self) -> usize {
        self.pf.bytes_per_pixel()
    }

    /// The client's pixel value for 0x00RRGGBB.
    #[inline]
    pub fn pixel(&self, rgb: u32) -> u32 {
        if self.identity {
            return rgb & 0x00ff_ffff;
        }
        let [b, g, r, _] = rgb.to_le_bytes();
        self.red[usize::from(r)] | self.green[usize::from(g)] | self.blue[usize::from(b)]
    }

    /// Writes a client pixel value (PIXEL: bytes-per-pixel bytes in the client's byte order).
    #[inline]
    pub fn put(&self, v: u32, out: &mut Vec<u8>) {
        match (self.pf.bits_per_pixel, self.pf.big_endian) {
            (8, _) => out.push(v.to_le_bytes()[0]),
            (16, false) => out.extend_from_slice(&v.to_le_bytes()[..2]),
            (16, true) => out.extend_from_slice(&v.to_be_bytes()[2..]),
            (_, false) => out.extend_from_slice(&v.to_le_bytes()),
            (_, true) => out.extend_from_slice(&v.to_be_bytes()),
        }
    }

    /// Writes 0x00RRGGBB as a client PIXEL.
    #[inline]
    pub fn put_rgb(&self, rgb: u32, out: &mut Vec<u8>) {
        self.put(self.pixel(rgb), out);
    }

    /// Where ZRLE's compressed pixel (CPIXEL) takes its 3 bytes from, if it is 3 bytes long:
    /// the byte range of the client PIXEL that holds every colour bit.
    pub fn cpixel_range(&self) -> Option<std::ops::Range<usize>> {
        let pf = &self.pf;
        if !(pf.true_colour || pf.bits_per_pixel == 8) || pf.bits_per_pixel != 32 || pf.depth > 24 {
            return None;
        }
        let mask = (u32::from(pf.red_max) << pf.red_shift)
            | (u32::from(pf.green_max) << pf.green_shift)
            | (u32::from(pf.blue_max) << pf.blue_shift);
        let fits_low = mask & 0xff00_0000 == 0;
        let fits_high = mask & 0x0000_00ff == 0;
        match (fits_low, fits_high, pf.big_endian) {
            (true, _, false) => Some(0..3),
            (true, _, true) => Some(1..4),
            (false, true, false) => Some(1..4),
            (false, true, true) => Some(0..3),
            _ => None,
        }
    }

    /// Writes a ZRLE CPIXEL for 0x00RRGGBB.
    #[inline]
    pub fn put_cpixel(&self, rgb: u32, range: &Option<std::ops::Range<usize>>, out: &mut Vec<u8>) {
        match range {
            Some(r) => {
                let v = self.pixel(rgb);
                let b = if self.pf.big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
                out.extend_from_slice(&b[r.clone()]);
            }
            None => self.put_rgb(rgb, out),
        }
    }

    /// Whether Tight's TPIXEL is 3 bytes R, G, B (32 bpp, depth 24, all maxima 255).
    pub fn tight_rgb(&self) -> bool {
        let pf = &self.pf;
        pf.true_colour
            && pf.bits_per_pixel == 32
            && pf.depth == 24
            && pf.red_max == 255
            && pf.green_max == 255
            && pf.blue_max == 255
    }

    /// Writes a Tight TPIXEL for 0x00RRGGBB.
    #[inline]
    pub fn put_tpixel(&self, rgb: u32, out: &mut Vec<u8>) {
        if self.tight_rgb() {
            let [b, g, r, _] = rgb.to_le_bytes();
            out.extend_from_slice(&[r, g, b]);
        } else {
            self.put_rgb(rgb, out);
        }
    }

    /// The fixed BGR233 palette a colour-map client is given: 256 entries of 16-bit (r, g, b).
    pub fn bgr233_palette() -> Vec<(u16, u16, u16)> {
        (0u16..256)
            .map(|i| {
                let c = |v: u16, max: u32| u16::try_from(u32::from(v) * 65535 / max).unwrap_or(u16::MAX);
                (c(i & 7, 7), c((i >> 3) & 7, 7), c((i >> 6) & 3, 3))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_to_common_formats() {
        let t = Translator::new(&PixelFormat::XRGB8888);
        let mut out = Vec::new();
        t.put_rgb(0x112233, &mut out);
        assert_eq!(out, [0x33, 0x22, 0x11, 0]);
        let rgb565be = PixelFormat {
            bits_per_pixel: 16,
            depth: 16,
            big_endian: true,
            true_colour: true,
            red_max: 31,
            green_max: 63,
            blue_max: 31,
            red_shift: 11,
            green_shift: 5,
            blue_shift: 0,
        };
        let t = Translator::new(&rgb565be);
        out.clear();
        t.put_rgb(0xff0000, &mut out);
        assert_eq!(out, [0xf8, 0x00]);
        let t = Translator::new(&PixelFormat::BGR233);
        assert_eq!(t.pixel(0xffffff), 0xff);
        assert_eq!(t.pixel(0x0000ff), 0b1100_0000);
        let be = PixelFormat { big_endian: true, ..PixelFormat::XRGB8888 };
        assert_eq!(Translator::new(&be).cpixel_range(), Some(1..4));
        assert_eq!(Translator::new(&PixelFormat::XRGB8888).cpixel_range(), Some(0..3));
    }

    #[test]
    fn source_bounds() {
        let px = vec![0u8; 4 * 4 * 2];
        assert!(Source::new(&px, 4, 2, 16).is_some());
        assert!(Source::new(&px, 4, 3, 16).is_none());
        assert!(Source::new(&px, 5, 2, 16).is_none());
        let s = Source::new(&px, 4, 2, 16).unwrap();
        assert_eq!(s.get(100, 100), 0);
    }
}
