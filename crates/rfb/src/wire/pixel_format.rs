//! PIXEL_FORMAT (RFC 6143 §7.4): 16 bytes.

use super::{be16, need, WireError};

/// How the client wants pixels: bits per pixel, depth, byte order, and the true-colour layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PixelFormat {
    pub bits_per_pixel: u8,
    pub depth: u8,
    pub big_endian: bool,
    pub true_colour: bool,
    pub red_max: u16,
    pub green_max: u16,
    pub blue_max: u16,
    pub red_shift: u8,
    pub green_shift: u8,
    pub blue_shift: u8,
}

impl PixelFormat {
    pub const LEN: usize = 16;

    /// The server's native format: 32 bpp, depth 24, little-endian XRGB8888.
    pub const XRGB8888: PixelFormat = PixelFormat {
        bits_per_pixel: 32,
        depth: 24,
        big_endian: false,
        true_colour: true,
        red_max: 255,
        green_max: 255,
        blue_max: 255,
        red_shift: 16,
        green_shift: 8,
        blue_shift: 0,
    };

    /// 8 bpp BGR233 (what a colour-map client is given as a fixed palette).
    pub const BGR233: PixelFormat = PixelFormat {
        bits_per_pixel: 8,
        depth: 8,
        big_endian: false,
        true_colour: true,
        red_max: 7,
        green_max: 7,
        blue_max: 3,
        red_shift: 0,
        green_shift: 3,
        blue_shift: 6,
    };

    /// Parses 16 bytes. Never panics; semantic checks are in [`PixelFormat::validate`].
    pub fn parse(buf: &[u8]) -> Result<PixelFormat, WireError> {
        need(buf, Self::LEN)?;
        Ok(PixelFormat {
            bits_per_pixel: buf[0],
            depth: buf[1],
            big_endian: buf[2] != 0,
            true_colour: buf[3] != 0,
            red_max: be16(buf, 4),
            green_max: be16(buf, 6),
            blue_max: be16(buf, 8),
            red_shift: buf[10],
            green_shift: buf[11],
            blue_shift: buf[12],
        })
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&[
            self.bits_per_pixel,
            self.depth,
            u8::from(self.big_endian),
            u8::from(self.true_colour),
        ]);
        out.extend_from_slice(&self.red_max.to_be_bytes());
        out.extend_from_slice(&self.green_max.to_be_bytes());
        out.extend_from_slice(&self.blue_max.to_be_bytes());
        out.extend_from_slice(&[self.red_shift, self.green_shift, self.blue_shift, 0, 0, 0]);
    }

    /// Checks what a server can honour: 8, 16 or 32 bpp; for true colour, channel maxima of the
    /// form 2^n - 1 that fit, at their shifts, inside the pixel.
    pub fn validate(&self) -> Result<(), WireError> {
        if !matches!(self.bits_per_pixel, 8 | 16 | 32) {
            return Err(WireError::Invalid {
                what: "pixel format",
                detail: format!("bits-per-pixel {} (must be 8, 16 or 32)", self.bits_per_pixel),
            });
        }
        if !self.true_colour {
            return Ok(());
        }
        for (name, max, shift) in [
            ("red", self.red_max, self.red_shift),
            ("green", self.green_max, self.green_shift),
            ("blue", self.blue_max, self.blue_shift),
        ] {
            let bits = 16 - max.leading_zeros();
            let fits = u32::from(shift) + bits <= u32::from(self.bits_per_pixel);
            if max == 0 || (u32::from(max) + 1).count_ones() != 1 || !fits {
                return Err(WireError::Invalid {
                    what: "pixel format",
                    detail: format!(
                        "{name} max {max} shift {shift} does not fit a {}-bit pixel",
                        self.bits_per_pixel
                    ),
                });
            }
        }
        Ok(())
    }

    pub fn bytes_per_pixel(&self) -> usize {
        usize::from(self.bits_per_pixel / 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_validate() {
        let mut out = Vec::new();
        PixelFormat::XRGB8888.emit(&mut out);
        assert_eq!(out.len(), 16);
        assert_eq!(PixelFormat::parse(&out).unwrap(), PixelFormat::XRGB8888);
        PixelFormat::XRGB8888.validate().unwrap();
        PixelFormat::BGR233.validate().unwrap();
        let bad = PixelFormat { red_max: 6, ..PixelFormat::XRGB8888 };
        assert!(bad.validate().is_err());
        let bad = PixelFormat { red_shift: 30, ..PixelFormat::XRGB8888 };
        assert!(bad.validate().is_err());
        let bad = PixelFormat { bits_per_pixel: 24, ..PixelFormat::XRGB8888 };
        assert!(bad.validate().is_err());
        assert_eq!(PixelFormat::parse(&out[..15]), Err(WireError::Truncated { need: 16 }));
    }
}
