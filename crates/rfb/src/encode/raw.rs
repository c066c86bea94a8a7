//! Raw encoding (0): every pixel, row by row.

use crate::pixel::{Source, Translator};
use crate::wire::{emit_rect_header, Encoding, Rect};

pub(crate) fn encode(src: &Source<'_>, rect: Rect, tr: &Translator, out: &mut Vec<u8>) -> usize {
    emit_rect_header(out, rect, Encoding::RAW);
    write_pixels(src, rect, tr, out);
    1
}

pub(crate) fn write_pixels(src: &Source<'_>, rect: Rect, tr: &Translator, out: &mut Vec<u8>) {
    let (x, w) = (usize::from(rect.x), usize::from(rect.w));
    out.reserve(usize::from(rect.w) * usize::from(rect.h) * tr.bytes_per_pixel());
    for y in usize::from(rect.y)..usize::from(rect.y) + usize::from(rect.h) {
        let row = src.row(x, y, w);
        if *tr.format() == crate::wire::PixelFormat::XRGB8888 {
            out.extend_from_slice(row);
            // The X byte is not part of the pixel value; clear it so the bytes equal the value.
            let n = out.len();
            for i in (n - row.len()..n).skip(3).step_by(4) {
                out[i] = 0;
            }
        } else {
            for px in row.chunks_exact(4) {
                tr.put_rgb(u32::from_le_bytes([px[0], px[1], px[2], 0]), out);
            }
        }
    }
}
