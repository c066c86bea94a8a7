//! Tight encoding (7): per sub-rectangle fill, JPEG, mono (2-colour bitmap), palette (up to 256
//! colours) or full colour, the last three through four persistent zlib streams:
//! 0 full colour, 1 mono, 2 palette (3 is reserved for the gradient filter, not used yet).
//!
//! TightPNG (-260, what noVNC asks for) is the same framing with the zlib modes replaced by PNG
//! (compression control 0xA): fill and JPEG as in Tight, everything else one PNG per piece (indexed
//! when it has at most 256 colours, RGB otherwise).
//!
//! Rectangles are cut into pieces at most 2048 wide (the protocol's limit) and 65536 pixels big,
//! as TightVNC does.

use super::Deflate;
use crate::pixel::{Source, Translator};
use crate::wire::{emit_rect_header, Encoding, Rect};

const MAX_WIDTH: usize = 2048;
const MAX_AREA: usize = 65536;
const MIN_TO_COMPRESS: usize = 12;
/// Rectangles with more colours than this go to JPEG when JPEG is on.
const JPEG_MIN_COLOURS: usize = 24;

/// TigerVNC's quality-level table: (JPEG quality, chroma subsampling) for levels 0..=9.
pub const JPEG_QUALITY_TABLE: [(u8, Subsampling); 10] = [
    (15, Subsampling::X4),
    (29, Subsampling::X4),
    (41, Subsampling::X4),
    (42, Subsampling::X2),
    (62, Subsampling::X2),
    (77, Subsampling::X2),
    (79, Subsampling::None),
    (86, Subsampling::None),
    (92, Subsampling::None),
    (100, Subsampling::None),
];

/// JPEG chroma subsampling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subsampling {
    None,
    X2,
    X4,
}

/// What the client asked for through pseudo-encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TightOptions {
    /// Quality level 0..=9 (-32..=-23); JPEG is used only when set.
    pub quality_level: Option<u8>,
    /// Fine quality 0..=100 (TigerVNC -512..=-412); overrides the level's JPEG quality.
    pub fine_quality: Option<u8>,
    /// Subsampling (-768..=-763); overrides the level's.
    pub subsampling: Option<Subsampling>,
    /// Compression level 0..=9 (-256..=-247).
    pub compress_level: u8,
}

impl Default for TightOptions {
    fn default() -> Self {
        TightOptions { quality_level: None, fine_quality: None, subsampling: None, compress_level: 2 }
    }
}

impl TightOptions {
    /// JPEG quality and subsampling, if JPEG is on.
    pub fn jpeg(&self) -> Option<(u8, Subsampling)> {
        let level = usize::from(self.quality_level?.min(9));
        let (q, s) = JPEG_QUALITY_TABLE[level];
        Some((self.fine_quality.unwrap_or(q).clamp(1, 100), self.subsampling.unwrap_or(s)))
    }
}

#[derive(Debug)]
pub(crate) struct TightState {
    streams: [Deflate; 4],
    level: u32,
    /// Streams the client must reset before the next rectangle (bits 0-3 of its control byte).
    reset: u8,
    /// Pieces sent as JPEG since the caller last took them (for the lossless refresh).
    pub(crate) lossy: Vec<Rect>,
}

impl TightState {
    pub(crate) fn new() -> TightState {
        TightState { streams: std::array::from_fn(|_| Deflate::new(2)), level: 2, reset: 0, lossy: Vec::new() }
    }

    /// Encodes `rect` as Tight, or as TightPNG when `png` is set.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn encode(
        &mut self,
        src: &Source<'_>,
        rect: Rect,
        tr: &Translator,
        opts: &TightOptions,
        png: bool,
        px: &mut Vec<u32>,
        out: &mut Vec<u8>,
    ) -> usize {
        let level = u32::from(opts.compress_level.min(9));
        if level != self.level {
            // A new level needs new streams; the client is told to reset its inflaters.
            self.streams = std::array::from_fn(|_| Deflate::new(level));
            self.level = level;
            self.reset = 0x0f;
        }
        let (x0, y0) = (usize::from(rect.x), usize::from(rect.y));
        let (x1, y1) = (x0 + usize::from(rect.w), y0 + usize::from(rect.h));
        let mut count = 0;
        let mut x = x0;
        while x < x1 {
            let w = (x1 - x).min(MAX_WIDTH);
            let band = (MAX_AREA / w).max(1);
            let mut y = y0;
            while y < y1 {
                let h = (y1 - y).min(band);
                let ctrl_at = out.len() + 12;
                if png {
                    piece_png(src, x, y, w, h, tr, opts, px, &mut self.lossy, out);
                    count += 1;
                    y += h;
                    continue;
                }
                self.piece(src, x, y, w, h, tr, opts, px, out);
                if let Some(ctrl) = out.get_mut(ctrl_at) {
                    *ctrl |= std::mem::take(&mut self.reset);
                }
                count += 1;
                y += h;
            }
            x += w;
        }
        count
    }

    #[allow(clippy::too_many_arguments)]
    fn piece(
        &mut self,
        src: &Source<'_>,
        x: usize,
        y: usize,
        w: usize,
        h: usize,
        tr: &Translator,
        opts: &TightOptions,
        px: &mut Vec<u32>,
        out: &mut Vec<u8>,
    ) {
        let r = Rect::new(to16(x), to16(y), to16(w), to16(h));
        emit_rect_header(out, r, Encoding::TIGHT);
        src.collect(x, y, w, h, px);
        let mut palette: Vec<u32> = Vec::with_capacity(16);
        let mut last = None;
        for &p in px.iter() {
            if last == Some(p) {
                continue;
            }
            last = Some(p);
            if !palette.contains(&p) {
                palette.push(p);
                if palette.len() > 256 {
                    break;
                }
            }
        }
        if palette.len() == 1 {
            out.push(0x80);
            tr.put_tpixel(palette[0], out);
            return;
        }
        if let Some((quality, sub)) = opts.jpeg() {
            if palette.len() > JPEG_MIN_COLOURS && tr.bytes_per_pixel() >= 2 {
                if let Some(jpeg) = jpeg(src, x, y, w, h, quality, sub) {
                    out.push(0x90);
                    compact_len(jpeg.len(), out);
                    out.extend_from_slice(&jpeg);
                    self.lossy.push(r);
                    return;
                }
            }
        }
        let mut data = Vec::new();
        if palette.len() == 2 {
            out.extend_from_slice(&[0x50, 1, 1]);
            tr.put_tpixel(palette[0], out);
            tr.put_tpixel(palette[1], out);
            for row in px.chunks(w) {
                let mut acc = 0u8;
                for (i, &p) in row.iter().enumerate() {
                    acc = (acc << 1) | u8::from(p == palette[1]);
                    if i % 8 == 7 {
                        data.push(acc);
                        acc = 0;
                    }
                }
                if !w.is_multiple_of(8) {
                    data.push(acc << (8 - w % 8));
                }
            }
            self.data(1, &data, out);
        } else if palette.len() <= 256 && palette.len() * 4 < w * h {
            out.extend_from_slice(&[0x60, 1, u8::try_from(palette.len() - 1).unwrap_or(255)]);
            for &c in &palette {
                tr.put_tpixel(c, out);
            }
            let mut lastc = None;
            let mut lasti = 0u8;
            for &p in px.iter() {
                if lastc != Some(p) {
                    lasti = u8::try_from(palette.iter().position(|&c| c == p).unwrap_or(0)).unwrap_or(0);
                    lastc = Some(p);
                }
                data.push(lasti);
            }
            self.data(2, &data, out);
        } else {
            out.push(0x00);
            data.reserve(px.len() * 3);
            for &p in px.iter() {
                tr.put_tpixel(p, &mut data);
            }
            self.data(0, &data, out);
        }
    }

    fn data(&mut self, stream: usize, data: &[u8], out: &mut Vec<u8>) {
        if data.len() < MIN_TO_COMPRESS {
            out.extend_from_slice(data);
            return;
        }
        let mut z = Vec::with_capacity(data.len() / 2 + 64);
        self.streams[stream].compress(data, &mut z);
        compact_len(z.len(), out);
        out.extend_from_slice(&z);
    }
}

/// The distinct colours of `px`, in order of first appearance; `None` past 256.
fn palette_of(px: &[u32]) -> Option<Vec<u32>> {
    let mut palette: Vec<u32> = Vec::with_capacity(16);
    let mut last = None;
    for &p in px {
        if last == Some(p) {
            continue;
        }
        last = Some(p);
        if !palette.contains(&p) {
            if palette.len() == 256 {
                return None;
            }
            palette.push(p);
        }
    }
    Some(palette)
}

/// One TightPNG piece: fill, JPEG or PNG.
#[allow(clippy::too_many_arguments)]
fn piece_png(
    src: &Source<'_>,
    x: usize,
    y: usize,
    w: usize,
    h: usize,
    tr: &Translator,
    opts: &TightOptions,
    px: &mut Vec<u32>,
    lossy: &mut Vec<Rect>,
    out: &mut Vec<u8>,
) {
    let r = Rect::new(to16(x), to16(y), to16(w), to16(h));
    emit_rect_header(out, r, Encoding::TIGHT_PNG);
    src.collect(x, y, w, h, px);
    let palette = palette_of(px);
    if let Some(p) = palette.as_ref().filter(|p| p.len() == 1) {
        out.push(0x80);
        tr.put_tpixel(p[0], out);
        return;
    }
    if let Some((quality, sub)) = opts.jpeg() {
        if palette.as_ref().is_none_or(|p| p.len() > JPEG_MIN_COLOURS) {
            if let Some(jpeg) = jpeg(src, x, y, w, h, quality, sub) {
                out.push(0x90);
                compact_len(jpeg.len(), out);
                out.extend_from_slice(&jpeg);
                lossy.push(r);
                return;
            }
        }
    }
    let png = encode_png(px, w, h, palette.as_deref(), opts.compress_level);
    out.push(0xa0);
    compact_len(png.len(), out);
    out.extend_from_slice(&png);
}

/// A PNG of `px` (0x00RRGGBB, w x h): indexed with `palette` if given, RGB otherwise.
pub(crate) fn encode_png(px: &[u32], w: usize, h: usize, palette: Option<&[u32]>, level: u8) -> Vec<u8> {
    let mut buf = Vec::new();
    let (Ok(w32), Ok(h32)) = (u32::try_from(w), u32::try_from(h)) else { return buf };
    let mut enc = png::Encoder::new(&mut buf, w32, h32);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(if level <= 1 { png::Compression::Fastest } else if level <= 6 { png::Compression::Fast } else { png::Compression::Balanced });
    let data: Vec<u8> = match palette {
        Some(pal) => {
            enc.set_color(png::ColorType::Indexed);
            enc.set_palette(pal.iter().flat_map(|&c| rgb_bytes(c)).collect::<Vec<u8>>());
            let mut lastc = None;
            let mut lasti = 0u8;
            px.iter()
                .map(|&p| {
                    if lastc != Some(p) {
                        lasti = u8::try_from(pal.iter().position(|&c| c == p).unwrap_or(0)).unwrap_or(0);
                        lastc = Some(p);
                    }
                    lasti
                })
                .collect()
        }
        None => {
            enc.set_color(png::ColorType::Rgb);
            px.iter().flat_map(|&c| rgb_bytes(c)).collect()
        }
    };
    let ok = enc.write_header().and_then(|mut wr| {
        wr.write_image_data(&data)?;
        wr.finish()
    });
    if ok.is_err() {
        buf.clear();
    }
    buf
}

fn rgb_bytes(c: u32) -> [u8; 3] {
    let [_, r, g, b] = c.to_be_bytes();
    [r, g, b]
}

fn to16(v: usize) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

/// Tight's compact length: 7 bits per byte, low first, up to 3 bytes (22 bits).
pub(crate) fn compact_len(len: usize, out: &mut Vec<u8>) {
    let b = |v: usize| u8::try_from(v & 0xff).unwrap_or(0);
    if len < 0x80 {
        out.push(b(len));
    } else if len < 0x4000 {
        out.extend_from_slice(&[b(len & 0x7f) | 0x80, b(len >> 7)]);
    } else {
        out.extend_from_slice(&[b(len & 0x7f) | 0x80, b((len >> 7) & 0x7f) | 0x80, b(len >> 14)]);
    }
}

fn jpeg(src: &Source<'_>, x: usize, y: usize, w: usize, h: usize, quality: u8, sub: Subsampling) -> Option<Vec<u8>> {
    let mut bgra = Vec::with_capacity(w * h * 4);
    for yy in y..y + h {
        bgra.extend_from_slice(src.row(x, yy, w));
    }
    let mut jpeg = Vec::new();
    let mut enc = jpeg_encoder::Encoder::new(&mut jpeg, quality);
    enc.set_sampling_factor(match sub {
        Subsampling::None => jpeg_encoder::SamplingFactor::F_1_1,
        Subsampling::X2 => jpeg_encoder::SamplingFactor::F_2_1,
        Subsampling::X4 => jpeg_encoder::SamplingFactor::F_2_2,
    });
    enc.encode(&bgra, u16::try_from(w).ok()?, u16::try_from(h).ok()?, jpeg_encoder::ColorType::Bgra).ok()?;
    Some(jpeg)
}
