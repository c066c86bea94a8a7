//! Damage tracking: from a framebuffer's per-page dirty bits to the 64x64 tiles that really
//! changed, and immutable [`Frame`]s that every viewer is served from.
//!
//! The producer (the machine's display thread) calls [`DamageTracker::capture`] whenever it likes.
//! Dirty pages name candidate tiles; each candidate is compared with the last captured copy, and
//! only tiles whose pixels differ get the new generation number. A capture with no real change
//! publishes nothing. Viewers hold an `Arc<Frame>` of the latest capture and remember the
//! generation they last sent, so a slow viewer skips intermediate frames (updates coalesce)
//! and never holds up the producer or another viewer.

use std::sync::Arc;

use crate::wire::Rect;

/// Tile edge in pixels.
pub const TILE: usize = 64;
/// Page size of the dirty bitmap.
pub const PAGE: usize = 4096;

/// A framebuffer the machine exposes.
pub trait FrameSource {
    /// (width, height, stride in bytes).
    fn geometry(&self) -> (u32, u32, u32);
    /// The pixels, XRGB8888 little-endian, `stride * height` bytes (at least).
    fn pixels(&self) -> &[u8];
    /// Which 4 KiB pages of the pixel buffer were written since the last call: bit `i % 64` of
    /// word `i / 64` is page `i`. Clears the bits.
    fn take_dirty_pages(&mut self) -> Vec<u64>;
}

/// One captured framebuffer: packed XRGB8888 (stride `width * 4`) and, per tile, the generation
/// at which it last changed.
#[derive(Debug, Clone)]
pub struct Frame {
    pub width: u16,
    pub height: u16,
    pub generation: u64,
    pub pixels: Vec<u8>,
    tile_gen: Vec<u64>,
    tiles_x: usize,
}

impl Frame {
    fn blank(width: u16, height: u16, generation: u64) -> Frame {
        let tiles_x = usize::from(width).div_ceil(TILE);
        let tiles_y = usize::from(height).div_ceil(TILE);
        Frame {
            width,
            height,
            generation,
            pixels: vec![0; usize::from(width) * usize::from(height) * 4],
            tile_gen: vec![generation; tiles_x * tiles_y],
            tiles_x,
        }
    }

    pub fn stride(&self) -> usize {
        usize::from(self.width) * 4
    }

    pub fn source(&self) -> crate::pixel::Source<'_> {
        crate::pixel::Source::new(&self.pixels, self.width, self.height, self.stride())
            // A frame's buffer is always width * height * 4 bytes, so this never falls back.
            .unwrap_or(crate::pixel::Source::EMPTY)
    }

    /// Rectangles (tile-aligned, clipped to the frame and to `within`) covering every tile that
    /// changed after generation `since`. Runs of changed tiles in a tile row become one
    /// rectangle, and equal runs in consecutive rows are merged.
    pub fn changed_since(&self, since: u64, within: Rect) -> Vec<Rect> {
        let mut rows: Vec<Vec<(usize, usize)>> = Vec::new();
        for (ty, row) in self.tile_gen.chunks(self.tiles_x.max(1)).enumerate() {
            let mut runs = Vec::new();
            let mut tx = 0;
            while tx < row.len() {
                if row[tx] > since {
                    let start = tx;
                    while tx < row.len() && row[tx] > since {
                        tx += 1;
                    }
                    runs.push((start, tx));
                } else {
                    tx += 1;
                }
            }
            let _ = ty;
            rows.push(runs);
        }
        let mut out: Vec<(usize, usize, usize, usize)> = Vec::new(); // x0, x1, y0, y1 in tiles
        let mut open: Vec<usize> = Vec::new(); // indices in `out` that end at the previous row
        for (ty, runs) in rows.iter().enumerate() {
            let mut next_open = Vec::new();
            for &(a, b) in runs {
                if let Some(&i) = open.iter().find(|&&i| out[i].0 == a && out[i].1 == b) {
                    out[i].3 = ty + 1;
                    next_open.push(i);
                } else {
                    out.push((a, b, ty, ty + 1));
                    next_open.push(out.len() - 1);
                }
            }
            open = next_open;
        }
        let (w, h) = (self.width, self.height);
        out.into_iter()
            .map(|(x0, x1, y0, y1)| {
                let t = |v: usize| u16::try_from(v * TILE).unwrap_or(u16::MAX);
                Rect::new(t(x0), t(y0), t(x1).saturating_sub(t(x0)), t(y1).saturating_sub(t(y0))).clip(w, h)
            })
            .map(|r| r.intersect(&within))
            .filter(|r| !r.is_empty())
            .collect()
    }

    /// Tile columns and rows.
    pub fn tiles(&self) -> (usize, usize) {
        (self.tiles_x, self.tile_gen.len() / self.tiles_x.max(1))
    }

    /// The generation at which tile `i` (row-major) last changed (0 if out of range).
    pub fn tile_generation(&self, i: usize) -> u64 {
        self.tile_gen.get(i).copied().unwrap_or(0)
    }

    /// The rectangle of tile `i`, clipped to the frame.
    pub fn tile_rect(&self, i: usize) -> Rect {
        let t = |v: usize| u16::try_from(v * TILE).unwrap_or(u16::MAX);
        let (tx, ty) = (i % self.tiles_x.max(1), i / self.tiles_x.max(1));
        Rect::new(t(tx), t(ty), t(1), t(1)).clip(self.width, self.height)
    }

    /// Pixels in tiles that changed after `since` (for the traffic estimate).
    pub fn changed_area(&self, since: u64) -> u64 {
        self.changed_since(since, Rect::new(0, 0, self.width, self.height)).iter().map(Rect::area).sum()
    }
}

/// Turns a [`FrameSource`] into a stream of [`Frame`]s.
#[derive(Debug, Default)]
pub struct DamageTracker {
    current: Option<Arc<Frame>>,
    /// Tiles compared and found changed in the last capture.
    pub last_compared_tiles: usize,
    pub last_changed_tiles: usize,
}

impl DamageTracker {
    pub fn new() -> DamageTracker {
        DamageTracker::default()
    }

    /// The latest frame, if any was captured.
    pub fn current(&self) -> Option<Arc<Frame>> {
        self.current.clone()
    }

    /// Captures what changed. Returns a new frame if anything did (always on the first call or
    /// after a geometry change), `None` otherwise. A source with an unusable geometry (zero
    /// size, over 65535, stride too small, buffer too short) is treated as unchanged.
    pub fn capture(&mut self, src: &mut dyn FrameSource) -> Option<Arc<Frame>> {
        let (w, h, stride) = src.geometry();
        let dirty = src.take_dirty_pages();
        let (Ok(w16), Ok(h16), Ok(stride)) = (u16::try_from(w), u16::try_from(h), usize::try_from(stride)) else {
            return None;
        };
        let pixels = src.pixels();
        let row = usize::from(w16) * 4;
        if w16 == 0 || h16 == 0 || stride < row || pixels.len() < stride * (usize::from(h16) - 1) + row {
            return None;
        }
        let (wu, hu) = (usize::from(w16), usize::from(h16));
        let prev = self.current.clone();
        let resized = prev.as_ref().is_none_or(|f| f.width != w16 || f.height != h16);
        let generation = prev.as_ref().map_or(1, |f| f.generation + 1);
        let mut frame = match &prev {
            Some(f) if !resized => Frame { generation, ..(**f).clone() },
            _ => Frame::blank(w16, h16, generation),
        };
        let tiles_x = frame.tiles_x;
        let tiles_y = hu.div_ceil(TILE);
        let mut candidate = vec![resized; tiles_x * tiles_y];
        if !resized {
            for (word_i, &word) in dirty.iter().enumerate() {
                let mut bits = word;
                while bits != 0 {
                    let page = word_i * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let start = page * PAGE;
                    let end = start + PAGE - 1;
                    let (r0, r1) = (start / stride, end / stride);
                    if r0 >= hu {
                        continue;
                    }
                    let (c0, c1) = if r0 == r1 { ((start % stride) / 4, (end % stride) / 4) } else { (0, wu - 1) };
                    if c0 >= wu {
                        continue;
                    }
                    for ty in r0 / TILE..=(r1.min(hu - 1) / TILE) {
                        for tx in c0 / TILE..=(c1.min(wu - 1) / TILE) {
                            candidate[ty * tiles_x + tx] = true;
                        }
                    }
                }
            }
        }
        let mut compared = 0;
        let mut changed = 0;
        for ty in 0..tiles_y {
            for tx in 0..tiles_x {
                if !candidate[ty * tiles_x + tx] {
                    continue;
                }
                compared += 1;
                let (x0, x1) = (tx * TILE * 4, ((tx + 1) * TILE).min(wu) * 4);
                let mut differs = resized;
                for y in ty * TILE..((ty + 1) * TILE).min(hu) {
                    let s = &pixels[y * stride + x0..y * stride + x1];
                    let d = &mut frame.pixels[y * row + x0..y * row + x1];
                    if s != d {
                        d.copy_from_slice(s);
                        differs = true;
                    }
                }
                if differs {
                    changed += 1;
                    frame.tile_gen[ty * tiles_x + tx] = generation;
                }
            }
        }
        self.last_compared_tiles = compared;
        self.last_changed_tiles = changed;
        if changed == 0 && !resized {
            return None;
        }
        let frame = Arc::new(frame);
        self.current = Some(frame.clone());
        Some(frame)
    }
}

/// A [`FrameSource`] over a plain buffer that marks pages dirty as it is written: the
/// framebuffer tests and the pattern server drive.
#[derive(Debug, Clone)]
pub struct BufferSource {
    pub width: u32,
    pub height: u32,
    pixels: Vec<u8>,
    dirty: Vec<u64>,
}

impl BufferSource {
    pub fn new(width: u32, height: u32) -> BufferSource {
        let len = width as usize * height as usize * 4;
        BufferSource { width, height, pixels: vec![0; len], dirty: vec![u64::MAX; len.div_ceil(PAGE).div_ceil(64)] }
    }

    /// Writes `bytes` at byte offset `at` (clamped to the buffer) and marks the pages dirty.
    pub fn write(&mut self, at: usize, bytes: &[u8]) {
        let end = (at + bytes.len()).min(self.pixels.len());
        if at >= end {
            return;
        }
        self.pixels[at..end].copy_from_slice(&bytes[..end - at]);
        for page in at / PAGE..=(end - 1) / PAGE {
            self.dirty[page / 64] |= 1 << (page % 64);
        }
    }

    /// Replaces the whole buffer, marking only pages whose bytes differ (as a guest that
    /// redraws everything but changes little would, page-tracked).
    pub fn replace(&mut self, pixels: &[u8]) {
        let n = pixels.len().min(self.pixels.len());
        for (page, (a, b)) in self.pixels[..n].chunks_mut(PAGE).zip(pixels[..n].chunks(PAGE)).enumerate() {
            if a != b {
                a.copy_from_slice(b);
                self.dirty[page / 64] |= 1 << (page % 64);
            }
        }
    }

    /// Marks every page dirty without changing it (a guest rewriting equal bytes).
    pub fn touch_all(&mut self) {
        self.dirty.iter_mut().for_each(|w| *w = u64::MAX);
    }
}

impl FrameSource for BufferSource {
    fn geometry(&self) -> (u32, u32, u32) {
        (self.width, self.height, self.width * 4)
    }

    fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    fn take_dirty_pages(&mut self) -> Vec<u64> {
        let n = self.dirty.len();
        std::mem::replace(&mut self.dirty, vec![0; n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_really_changed_tiles_advance() {
        let mut src = BufferSource::new(200, 130);
        let mut t = DamageTracker::new();
        let f1 = t.capture(&mut src).unwrap();
        assert_eq!(f1.changed_since(0, Rect::new(0, 0, 200, 130)), vec![Rect::new(0, 0, 200, 130)]);
        assert!(t.capture(&mut src).is_none(), "nothing dirty");
        src.touch_all();
        assert!(t.capture(&mut src).is_none(), "dirty but equal");
        assert_eq!(t.last_compared_tiles, 4 * 3);
        // One pixel at (130, 70): tile (2, 1).
        src.write((70 * 200 + 130) * 4, &[1, 2, 3, 0]);
        let f2 = t.capture(&mut src).unwrap();
        assert_eq!(t.last_changed_tiles, 1);
        assert_eq!(f2.changed_since(f1.generation, Rect::new(0, 0, 200, 130)), vec![Rect::new(128, 64, 64, 64)]);
        assert_eq!(f2.changed_since(f1.generation, Rect::new(0, 0, 150, 100)), vec![Rect::new(128, 64, 22, 36)]);
        assert!(f2.changed_since(f2.generation, Rect::new(0, 0, 200, 130)).is_empty());
        assert_eq!(f2.source().get(130, 70), 0x030201);
        // Two changes seen by a viewer still at f1: merged.
        src.write((10 * 200 + 5) * 4, &[9, 9, 9, 0]);
        src.write((100 * 200 + 199) * 4, &[9, 9, 9, 0]);
        let f3 = t.capture(&mut src).unwrap();
        let mut r = f3.changed_since(f1.generation, Rect::new(0, 0, 200, 130));
        r.sort_by_key(|r| (r.y, r.x));
        assert_eq!(r, vec![Rect::new(0, 0, 64, 64), Rect::new(128, 64, 72, 64)]);
    }

    #[test]
    fn resize_and_bad_geometry() {
        struct Odd(u32, u32, u32, Vec<u8>);
        impl FrameSource for Odd {
            fn geometry(&self) -> (u32, u32, u32) {
                (self.0, self.1, self.2)
            }
            fn pixels(&self) -> &[u8] {
                &self.3
            }
            fn take_dirty_pages(&mut self) -> Vec<u64> {
                vec![u64::MAX; 1000]
            }
        }
        let mut t = DamageTracker::new();
        assert!(t.capture(&mut Odd(100, 100, 300, vec![0; 40000])).is_none(), "stride too small");
        assert!(t.capture(&mut Odd(100, 100, 400, vec![0; 39999])).is_none(), "buffer too short");
        assert!(t.capture(&mut Odd(70_000, 1, 280_000, vec![0; 280_000])).is_none(), "too wide");
        let f = t.capture(&mut Odd(100, 100, 512, vec![7; 51200])).unwrap();
        assert_eq!((f.width, f.height, f.source().get(99, 99)), (100, 100, 0x070707));
        let f = t.capture(&mut Odd(50, 20, 200, vec![8; 4000])).unwrap();
        assert_eq!((f.width, f.height, f.changed_area(0)), (50, 20, 1000));
    }
}
