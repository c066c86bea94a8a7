//! CopyRect (encoding 1) with move detection: finds parts of the damaged area that equal a
//! shifted part of the frame the viewer already has (scrolled text, a moved window), so the
//! viewer copies them instead of receiving them again.
//!
//! Method, per update:
//! 1. **Probes.** Horizontal runs of [`RUN`] pixels are sampled on a grid inside the damaged
//!    rectangles of the new frame; uniform runs (background) are skipped, since they match
//!    everywhere. At most [`MAX_PROBES`] are kept.
//! 2. **Votes.** One pass of a rolling hash over every run of the old frame inside the damage's
//!    bounding box finds where each probe occurred before (a small bitset filters before the hash
//!    map lookup; every hit is verified pixel by pixel). Each hit votes for an offset
//!    `(source - destination)`; the zero offset (unchanged pixels) does not count.
//! 3. **Rectangles.** For the best few offsets, the damage's bounding box is masked with
//!    "new pixel equals the old pixel at the offset", and the largest all-true rectangle of the
//!    mask (histogram method, linear in the area) becomes a CopyRect if it is big enough.
//!
//! Ordering: the viewer applies rectangles in order, copying from its framebuffer as it is at
//! that moment. Moves are therefore sent first, and a move is only accepted if its source does
//! not overlap the destination of an earlier move; everything else in the update comes after and
//! cannot disturb a source.

use std::collections::HashMap;

use crate::pixel::Source;
use crate::wire::Rect;

/// Pixels per probe run.
pub const RUN: usize = 16;
/// Probes per update at most.
pub const MAX_PROBES: usize = 512;
/// Smallest area worth a CopyRect (a 16-byte rectangle replacing this many pixels).
pub const MIN_AREA: u64 = 1024;
/// Offsets tried per update.
const MAX_OFFSETS: usize = 4;
/// Votes an offset needs to be tried.
const MIN_VOTES: u32 = 3;
const BASE: u64 = 0x100_0000_01b3;
/// A probe found in more places than this does not vote.
const AMBIGUOUS: usize = 8;
/// Histogram passes per mask at most (each is linear in the mask's area).
const MAX_PASSES: usize = 8;

/// A detected move: copy `dest.w x dest.h` pixels from `(src_x, src_y)` to `dest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Move {
    pub dest: Rect,
    pub src_x: u16,
    pub src_y: u16,
}

impl Move {
    pub fn src(&self) -> Rect {
        Rect::new(self.src_x, self.src_y, self.dest.w, self.dest.h)
    }
}

fn bounding(rects: &[Rect]) -> Option<Rect> {
    let mut it = rects.iter().filter(|r| !r.is_empty());
    let first = *it.next()?;
    let (mut x0, mut y0) = (u32::from(first.x), u32::from(first.y));
    let (mut x1, mut y1) = (x0 + u32::from(first.w), y0 + u32::from(first.h));
    for r in it {
        x0 = x0.min(u32::from(r.x));
        y0 = y0.min(u32::from(r.y));
        x1 = x1.max(u32::from(r.x) + u32::from(r.w));
        y1 = y1.max(u32::from(r.y) + u32::from(r.h));
    }
    let c = |v: u32| u16::try_from(v).unwrap_or(u16::MAX);
    Some(Rect::new(c(x0), c(y0), c(x1 - x0), c(y1 - y0)))
}

fn run_hash(src: &Source<'_>, x: usize, y: usize) -> u64 {
    (0..RUN).fold(0u64, |h, i| h.wrapping_mul(BASE).wrapping_add(u64::from(src.get(x + i, y))))
}

fn run_eq(a: &Source<'_>, ax: usize, ay: usize, b: &Source<'_>, bx: usize, by: usize) -> bool {
    a.row(ax, ay, RUN) == b.row(bx, by, RUN) && a.row(ax, ay, RUN).len() == RUN * 4
}

/// Moves from `old` (what the viewer shows) to `new` inside `damage`. Both frames must have the
/// same size. Returned moves are in the order they must be sent.
pub fn detect_moves(old: &Source<'_>, new: &Source<'_>, damage: &[Rect]) -> Vec<Move> {
    if old.width() != new.width() || old.height() != new.height() {
        return Vec::new();
    }
    let Some(bbox) = bounding(damage) else { return Vec::new() };
    let bbox = bbox.clip(new.width(), new.height());
    // 1. probes
    let mut cands: Vec<(usize, usize)> = Vec::new();
    for r in damage {
        let (x0, y0, w, h) = (usize::from(r.x), usize::from(r.y), usize::from(r.w), usize::from(r.h));
        if w < RUN {
            continue;
        }
        for y in (y0..y0 + h).step_by(4) {
            for x in (x0..=x0 + w - RUN).step_by(RUN / 2) {
                let first = new.get(x, y);
                if (1..RUN).any(|i| new.get(x + i, y) != first) {
                    cands.push((x, y));
                }
            }
        }
    }
    if cands.is_empty() {
        return Vec::new();
    }
    let step = cands.len().div_ceil(MAX_PROBES);
    let mut probes: HashMap<u64, Vec<(usize, usize)>> = HashMap::new();
    let mut filter = vec![0u64; 64];
    for &(x, y) in cands.iter().step_by(step) {
        let h = run_hash(new, x, y);
        let bit = usize::try_from(h >> 52).unwrap_or(0);
        filter[bit / 64] |= 1 << (bit % 64);
        probes.entry(h).or_default().push((x, y));
    }
    // 2. votes
    // Hits per probe; a probe found in many places (a common glyph pair, a repeated pattern) is
    // ambiguous and does not vote.
    let mut hits_of: HashMap<(usize, usize), Vec<(i32, i32)>> = HashMap::new();
    let top = (0..RUN - 1).fold(1u64, |p, _| p.wrapping_mul(BASE));
    let (bx0, by0, bw, bh) = (usize::from(bbox.x), usize::from(bbox.y), usize::from(bbox.w), usize::from(bbox.h));
    if bw >= RUN {
        for oy in by0..by0 + bh {
            let mut h = run_hash(old, bx0, oy);
            for ox in bx0..=bx0 + bw - RUN {
                if ox > bx0 {
                    let out = u64::from(old.get(ox - 1, oy));
                    let inn = u64::from(old.get(ox + RUN - 1, oy));
                    h = h.wrapping_sub(out.wrapping_mul(top)).wrapping_mul(BASE).wrapping_add(inn);
                }
                let bit = usize::try_from(h >> 52).unwrap_or(0);
                if filter[bit / 64] & (1 << (bit % 64)) == 0 {
                    continue;
                }
                let Some(hits) = probes.get(&h) else { continue };
                for &(px, py) in hits {
                    let list = hits_of.entry((px, py)).or_default();
                    if list.len() <= AMBIGUOUS && (px, py) != (ox, oy) && run_eq(new, px, py, old, ox, oy) {
                        list.push((signed(ox) - signed(px), signed(oy) - signed(py)));
                    }
                }
            }
        }
    }
    let mut votes: HashMap<(i32, i32), u32> = HashMap::new();
    for list in hits_of.values().filter(|l| l.len() <= AMBIGUOUS) {
        for &d in list {
            *votes.entry(d).or_default() += 1;
        }
    }
    let mut offsets: Vec<((i32, i32), u32)> = votes.into_iter().filter(|&(_, v)| v >= MIN_VOTES).collect();
    offsets.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    offsets.truncate(MAX_OFFSETS);
    // 3. rectangles
    // Every offset's rectangles compete; the largest win, in order, as long as they are disjoint
    // and read nothing an earlier one wrote.
    let mut cands: Vec<Move> = offsets
        .iter()
        .flat_map(|&((dx, dy), _)| matches(old, new, bbox, dx, dy))
        .collect();
    cands.sort_by_key(|m| std::cmp::Reverse(m.dest.area()));
    let mut moves: Vec<Move> = Vec::new();
    for m in cands {
        if moves.iter().all(|p| p.dest.intersect(&m.dest).is_empty()) {
            moves.push(m);
        }
    }
    // Order: a move whose source lies where a later one writes must go first. Sorting by the
    // direction of the copy handles a scroll split in pieces; anything still reading an earlier
    // destination is dropped.
    moves.sort_by_key(|m| {
        let up = i32::from(m.src_y) >= i32::from(m.dest.y);
        let left = i32::from(m.src_x) >= i32::from(m.dest.x);
        (if up { i32::from(m.dest.y) } else { -i32::from(m.dest.y) }, if left { i32::from(m.dest.x) } else { -i32::from(m.dest.x) })
    });
    let mut ordered: Vec<Move> = Vec::with_capacity(moves.len());
    for m in moves {
        if ordered.iter().all(|p| p.dest.intersect(&m.src()).is_empty()) {
            ordered.push(m);
        }
    }
    ordered
}

fn signed(v: usize) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Rectangles per offset and damaged rectangle at most.
const MAX_PER_MASK: usize = 4;

/// Up to [`MAX_PER_MASK`] disjoint rectangles inside `r` whose pixels equal the old frame's at
/// offset (dx, dy), largest first. A rectangle whose pixels are all unchanged in place is useless
/// (nothing to send there anyway) and skipped.
fn matches(old: &Source<'_>, new: &Source<'_>, r: Rect, dx: i32, dy: i32) -> Vec<Move> {
    let (w, h) = (i64::from(new.width()), i64::from(new.height()));
    // Destinations whose source is inside the frame.
    let x0 = i64::from(r.x).max(-i64::from(dx));
    let y0 = i64::from(r.y).max(-i64::from(dy));
    let x1 = (i64::from(r.x) + i64::from(r.w)).min(w - i64::from(dx));
    let y1 = (i64::from(r.y) + i64::from(r.h)).min(h - i64::from(dy));
    if x1 - x0 < 1 || y1 - y0 < 1 {
        return Vec::new();
    }
    let u = |v: i64| usize::try_from(v).unwrap_or(0);
    let (x0, y0, x1, y1) = (u(x0), u(y0), u(x1), u(y1));
    let sx = |x: usize| u(i64::try_from(x).unwrap_or(0) + i64::from(dx));
    let sy = |y: usize| u(i64::try_from(y).unwrap_or(0) + i64::from(dy));
    let (width, height) = (x1 - x0, y1 - y0);
    // mask: 0 no match, 1 match (pixel unchanged in place), 2 match and changed
    let mut mask = vec![0u8; width * height];
    for y in y0..y1 {
        let a = new.row(x0, y, width);
        let b = old.row(sx(x0), sy(y), width);
        let same = old.row(x0, y, width);
        let row = &mut mask[(y - y0) * width..(y - y0 + 1) * width];
        for (i, m) in row.iter_mut().enumerate() {
            let p = a.get(i * 4..i * 4 + 4);
            if p.is_some() && p == b.get(i * 4..i * 4 + 4) {
                *m = if p == same.get(i * 4..i * 4 + 4) { 1 } else { 2 };
            }
        }
    }
    let mut out = Vec::new();
    let mut heights = vec![0usize; width];
    let mut stack: Vec<(usize, usize)> = Vec::with_capacity(width + 1); // (start, height)
    let mut passes = 0;
    while out.len() < MAX_PER_MASK && passes < MAX_PASSES {
        passes += 1;
        heights.iter_mut().for_each(|v| *v = 0);
        let mut best = (0usize, 0usize, 0usize, 0usize, 0usize); // area, x, y, w, h (mask coords)
        for y in 0..height {
            for (i, hgt) in heights.iter_mut().enumerate() {
                *hgt = if mask[y * width + i] != 0 { *hgt + 1 } else { 0 };
            }
            stack.clear();
            for i in 0..=width {
                let cur = heights.get(i).copied().unwrap_or(0);
                let mut start = i;
                while let Some(&(s, hh)) = stack.last() {
                    if hh < cur {
                        break;
                    }
                    stack.pop();
                    let area = hh * (i - s);
                    if area > best.0 {
                        best = (area, s, y + 1 - hh, i - s, hh);
                    }
                    start = s;
                }
                if cur > 0 {
                    stack.push((start, cur));
                }
            }
        }
        let (area, bx, by, bw, bh) = best;
        if (area as u64) < MIN_AREA {
            break;
        }
        let mut changed = 0u64;
        for y in by..by + bh {
            for m in &mut mask[y * width + bx..y * width + bx + bw] {
                changed += u64::from(*m == 2);
                *m = 0;
            }
        }
        if changed * 4 < MIN_AREA {
            continue;
        }
        let c = |v: usize| u16::try_from(v).ok();
        let (dxs, dys) = (x0 + bx, y0 + by);
        if let (Some(x), Some(y), Some(w), Some(h), Some(fx), Some(fy)) = (c(dxs), c(dys), c(bw), c(bh), c(sx(dxs)), c(sy(dys))) {
            out.push(Move { dest: Rect::new(x, y, w, h), src_x: fx, src_y: fy });
        }
    }
    out
}

/// `r` minus the `holes`, as disjoint rectangles.
pub fn subtract(r: Rect, holes: &[Rect]) -> Vec<Rect> {
    let mut parts = vec![r];
    for hole in holes {
        let mut next = Vec::with_capacity(parts.len() + 3);
        for p in parts {
            let i = p.intersect(hole);
            if i.is_empty() {
                next.push(p);
                continue;
            }
            let (px2, py2) = (p.x.saturating_add(p.w), p.y.saturating_add(p.h));
            let (ix2, iy2) = (i.x.saturating_add(i.w), i.y.saturating_add(i.h));
            if i.y > p.y {
                next.push(Rect::new(p.x, p.y, p.w, i.y - p.y));
            }
            if iy2 < py2 {
                next.push(Rect::new(p.x, iy2, p.w, py2 - iy2));
            }
            if i.x > p.x {
                next.push(Rect::new(p.x, i.y, i.x - p.x, i.h));
            }
            if ix2 < px2 {
                next.push(Rect::new(ix2, i.y, px2 - ix2, i.h));
            }
        }
        parts = next;
    }
    parts
}

#[cfg(test)]
#[allow(clippy::cast_possible_truncation)] // synthetic pictures
mod tests {
    use super::*;

    fn text(w: usize, h: usize, seed: u32) -> Vec<u8> {
        // "Text lines": 16-pixel rows of pseudo-random glyph blocks on a dark background.
        let mut px = vec![0u8; w * h * 4];
        for y in 0..h {
            for x in 0..w {
                let line = (y / 16) as u32 + seed;
                let glyph = (x / 8) as u32;
                let on = (line.wrapping_mul(2654435761) ^ glyph.wrapping_mul(40503) ^ ((y % 16) as u32 * 7 + (x % 8) as u32)).is_multiple_of(5)
                    && y % 16 < 12;
                let v: u32 = if on { 0x00c0_c0c0 } else { 0x0010_1020 };
                px[(y * w + x) * 4..(y * w + x) * 4 + 4].copy_from_slice(&v.to_le_bytes());
            }
        }
        px
    }

    fn src(px: &[u8], w: usize, h: usize) -> Source<'_> {
        Source::new(px, w as u16, h as u16, w * 4).unwrap()
    }

    #[test]
    fn vertical_scroll_is_found() {
        let (w, h) = (320, 240);
        let old = text(w, h, 0);
        let new = text(w, h, 1); // every line moved up by 16 pixels; a new last line
        let moves = detect_moves(&src(&old, w, h), &src(&new, w, h), &[Rect::new(0, 0, 320, 240)]);
        assert_eq!(moves.len(), 1, "{moves:?}");
        assert_eq!(moves[0], Move { dest: Rect::new(0, 0, 320, 224), src_x: 0, src_y: 16 });
    }

    #[test]
    fn moved_window_is_found() {
        let (w, h) = (320, 240);
        let bg = text(w, h, 7);
        let mut old = vec![0u8; w * h * 4];
        let mut new = vec![0u8; w * h * 4];
        // A 100x80 "window" (a patch of another text) at (20, 30), then at (90, 110).
        let win = text(100, 80, 3);
        let place = |dst: &mut Vec<u8>, wx: usize, wy: usize| {
            dst.copy_from_slice(&vec![0x20u8; w * h * 4]);
            for y in 0..80 {
                let at = ((wy + y) * w + wx) * 4;
                dst[at..at + 400].copy_from_slice(&win[y * 400..y * 400 + 400]);
            }
        };
        let _ = bg;
        place(&mut old, 20, 30);
        place(&mut new, 90, 110);
        let moves = detect_moves(&src(&old, w, h), &src(&new, w, h), &[Rect::new(0, 0, 256, 192), Rect::new(0, 192, 320, 48)]);
        let m = moves.iter().find(|m| m.dest.area() >= 100 * 80 / 2).expect("window move");
        assert_eq!((i32::from(m.src_x) - i32::from(m.dest.x), i32::from(m.src_y) - i32::from(m.dest.y)), (-70, -80));
    }

    #[test]
    fn nothing_moved_nothing_found() {
        let (w, h) = (128, 64);
        let a = text(w, h, 0);
        let mut b = a.clone();
        b[400..800].iter_mut().for_each(|v| *v = v.wrapping_add(91));
        assert!(detect_moves(&src(&a, w, h), &src(&b, w, h), &[Rect::new(0, 0, 128, 64)]).is_empty());
        let flat = vec![0u8; w * h * 4];
        assert!(detect_moves(&src(&flat, w, h), &src(&flat, w, h), &[Rect::new(0, 0, 128, 64)]).is_empty());
    }

    #[test]
    fn subtract_covers_exactly() {
        let r = Rect::new(10, 10, 100, 50);
        let parts = subtract(r, &[Rect::new(30, 20, 20, 10), Rect::new(0, 55, 200, 20)]);
        let area: u64 = parts.iter().map(Rect::area).sum();
        assert_eq!(area, 100 * 50 - 20 * 10 - 100 * 5);
        for (i, a) in parts.iter().enumerate() {
            for b in &parts[i + 1..] {
                assert!(a.intersect(b).is_empty());
            }
        }
    }
}
