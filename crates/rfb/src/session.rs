//! One viewer: the protocol [`Engine`], its encoder state, its input state and what it has been
//! sent. Still sans-IO: the adapter feeds bytes, frames and the time, and sends what comes out.
//!
//! Update rules: an update is sent only while the viewer has a request outstanding or has
//! continuous updates on. A non-incremental request is answered at once with its whole area; an
//! incremental one waits until some tile inside it changed after the generation last sent. The
//! viewer is always served from the latest frame, so skipped frames coalesce.
//!
//! What an update holds, in order:
//! 1. pseudo-rectangles (size changes, ExtendedDesktopSize replies, name, cursor, key ack);
//! 2. CopyRects for damage that equals a shifted part of the frame the viewer has
//!    ([`crate::encode::copyrect`]), when the viewer announced CopyRect;
//! 3. the rest of the damage, in the viewer's preferred encoding, except that with H.264 preferred
//!    the screen goes out as one H.264 rectangle only while a large part of it is in motion
//!    (tiles changed in consecutive updates), and small changes (typing) use the viewer's best
//!    lossless encoding;
//! 4. the **lossless refresh**: tiles last sent lossily (JPEG, H.264) that have not changed for
//!    [`REFRESH_DELAY`], sent again losslessly.
//!
//! Pushed updates (continuous updates with Fence) are paced by [`crate::pacing::Congestion`]:
//! each is followed by a Fence request and the next waits while the bytes in flight fill the
//! window.

use std::sync::Arc;
use std::time::Duration;

use doppel_machine::InputEvent;

use crate::damage::{Frame, TILE};
use crate::encode::copyrect::{detect_moves, subtract};
use crate::encode::{
    emit_copy_rect, emit_cursor, emit_desktop_name, emit_desktop_size, emit_extended_desktop_size,
    emit_qemu_ext_key_ack, Encoders, TightOptions,
};
use crate::engine::{Engine, EngineConfig, EngineError, Event};
use crate::input::InputMapper;
use crate::meter;
use crate::pacing::Congestion;
use crate::wire::{emit_fence, emit_update_header, fence_flags, Encoding, Rect};

/// How long a lossily sent tile must stay unchanged before it is sent again losslessly.
pub const REFRESH_DELAY: Duration = Duration::from_millis(300);
/// H.264 is used when at least 1/this of the screen is in motion.
const H264_MOTION_FRACTION: u64 = 16;

/// A cursor image: hotspot, size and 0xAARRGGBB pixels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorImage {
    pub hot_x: u16,
    pub hot_y: u16,
    pub width: u16,
    pub height: u16,
    pub rgba: Vec<u32>,
}

/// What one update cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpdateStats {
    pub bytes: u64,
    pub rects: u64,
    pub pixels: u64,
    pub slot: usize,
    /// CopyRects in it.
    pub copies: u64,
    /// Pixels re-sent by the lossless refresh.
    pub refreshed: u64,
}

/// ExtendedDesktopSize reasons and status codes (rfbproto).
pub mod eds {
    pub const REASON_SERVER: u16 = 0;
    pub const REASON_CLIENT: u16 = 1;
    pub const STATUS_OK: u16 = 0;
    pub const STATUS_PROHIBITED: u16 = 1;
}

#[derive(Debug)]
pub struct Session {
    engine: Engine,
    encoders: Encoders,
    input: InputMapper,
    sent_generation: u64,
    sent_size: Option<(u16, u16)>,
    /// The frame the viewer has (its last update was encoded from it).
    last_sent: Option<Arc<Frame>>,
    requested: Option<Rect>,
    full: Option<Rect>,
    continuous: Option<Rect>,
    name_pending: bool,
    name_sent: bool,
    ext_key_pending: bool,
    ext_key_sent: bool,
    cursor: Option<CursorImage>,
    cursor_pending: bool,
    name: Vec<u8>,
    /// ExtendedDesktopSize rectangle owed: (reason, status).
    eds_pending: Option<(u16, u16)>,
    eds_announced: bool,
    now: Duration,
    /// Per tile: when it was last sent lossily (cleared when sent losslessly).
    lossy: Vec<Option<Duration>>,
    /// Per tile: consecutive updates in which it changed.
    motion: Vec<u8>,
    congestion: Congestion,
}

fn bounding(a: Rect, b: Rect) -> Rect {
    let x = a.x.min(b.x);
    let y = a.y.min(b.y);
    let x2 = (u32::from(a.x) + u32::from(a.w)).max(u32::from(b.x) + u32::from(b.w));
    let y2 = (u32::from(a.y) + u32::from(a.h)).max(u32::from(b.y) + u32::from(b.h));
    Rect::new(
        x,
        y,
        u16::try_from(x2 - u32::from(x)).unwrap_or(u16::MAX),
        u16::try_from(y2 - u32::from(y)).unwrap_or(u16::MAX),
    )
}

/// Indices of the tiles `r` touches in a frame `tiles_x` tiles wide.
fn tiles_of(r: Rect, tiles_x: usize, tiles_y: usize) -> impl Iterator<Item = usize> {
    let (x0, y0) = (usize::from(r.x) / TILE, usize::from(r.y) / TILE);
    let x1 = (usize::from(r.x) + usize::from(r.w)).div_ceil(TILE).min(tiles_x);
    let y1 = (usize::from(r.y) + usize::from(r.h)).div_ceil(TILE).min(tiles_y);
    let empty = r.is_empty();
    (y0..y1).flat_map(move |ty| (x0..x1).map(move |tx| ty * tiles_x + tx)).filter(move |_| !empty)
}

impl Session {
    pub fn new(config: EngineConfig, challenge: [u8; 16]) -> Session {
        let name = config.name.clone();
        Session {
            engine: Engine::new(config, challenge),
            encoders: Encoders::new(),
            input: InputMapper::new(),
            sent_generation: 0,
            sent_size: None,
            last_sent: None,
            requested: None,
            full: None,
            continuous: None,
            name_pending: false,
            name_sent: false,
            ext_key_pending: false,
            ext_key_sent: false,
            cursor: None,
            cursor_pending: false,
            name,
            eds_pending: None,
            eds_announced: false,
            now: Duration::ZERO,
            lossy: Vec::new(),
            motion: Vec::new(),
            congestion: Congestion::new(),
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, for the adapter's TLS switch ([`Engine::tls_established`]).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
    }

    pub fn congestion(&self) -> &Congestion {
        &self.congestion
    }

    /// The current time, as a duration since any fixed epoch (the adapter's clock). Drives the
    /// lossless refresh and the RTT estimate; without it neither happens.
    pub fn set_now(&mut self, now: Duration) {
        self.now = now;
    }

    /// Sets the framebuffer size announced at ServerInit.
    pub fn set_initial_size(&mut self, width: u16, height: u16) {
        self.engine.set_size(width, height);
    }

    /// Sets the cursor shape; sent to viewers that support the Cursor pseudo-encoding.
    pub fn set_cursor(&mut self, cursor: CursorImage) {
        self.cursor = Some(cursor);
        self.cursor_pending = true;
    }

    pub fn take_output(&mut self) -> Vec<u8> {
        self.engine.take_output()
    }

    /// Feeds client bytes; input events for the machine are appended to `input`.
    pub fn receive(&mut self, data: &[u8], input: &mut Vec<InputEvent>) -> Result<(), EngineError> {
        self.engine.receive(data)?;
        while let Some(ev) = self.engine.poll_event() {
            tracing::trace!(event = ?ev, "viewer event");
            match ev {
                Event::Initialised { .. } => {}
                Event::Key { down, keysym } => self.input.key(keysym, down, input),
                Event::ExtKey { down, keysym, scancode } => self.input.ext_key(keysym, scancode, down, input),
                Event::Pointer { buttons, x, y } => self.input.pointer(buttons, x, y, input),
                Event::CutText(_) => {}
                Event::UpdateRequest { incremental, rect } => {
                    if !incremental {
                        self.full = Some(self.full.map_or(rect, |f| bounding(f, rect)));
                    }
                    self.requested = Some(self.requested.map_or(rect, |r| bounding(r, rect)));
                }
                Event::ContinuousUpdates { enable, rect } => {
                    self.continuous = enable.then_some(rect);
                }
                Event::FormatChanged => {
                    let s = self.engine.settings();
                    if s.supports(Encoding::DESKTOP_NAME) && !self.name_sent {
                        self.name_pending = true;
                    }
                    if s.supports(Encoding::QEMU_EXT_KEY) && !self.ext_key_sent {
                        self.ext_key_pending = true;
                    }
                    if s.supports(Encoding::CURSOR) && self.cursor.is_some() {
                        self.cursor_pending = true;
                    }
                    if s.supports(Encoding::EXTENDED_DESKTOP_SIZE) && !self.eds_announced {
                        // Tells the viewer the server understands SetDesktopSize.
                        self.eds_announced = true;
                        self.eds_pending = Some((eds::REASON_SERVER, eds::STATUS_OK));
                    }
                }
                Event::FenceResponse { payload, .. } => {
                    self.congestion.pong(&payload, self.now);
                }
                Event::DesktopSizeRequest { width, height } => {
                    // The guest owns the framebuffer size: a request for another size is
                    // refused (prohibited), one for the current size succeeds trivially.
                    let status = if self.sent_size == Some((width, height)) {
                        eds::STATUS_OK
                    } else {
                        eds::STATUS_PROHIBITED
                    };
                    if self.engine.settings().supports(Encoding::EXTENDED_DESKTOP_SIZE) {
                        self.eds_pending = Some((eds::REASON_CLIENT, status));
                    }
                }
            }
        }
        Ok(())
    }

    /// Releases held buttons (on disconnect).
    pub fn release_input(&mut self, input: &mut Vec<InputEvent>) {
        self.input.release_all(input);
    }

    fn pseudo_pending(&self) -> bool {
        self.name_pending
            || self.ext_key_pending
            || self.eds_pending.is_some()
            || (self.cursor_pending && self.engine.settings().supports(Encoding::CURSOR))
    }

    fn paced(&self) -> bool {
        self.continuous.is_some() && self.engine.settings().supports(Encoding::FENCE)
    }

    /// Tiles due for the lossless refresh: sent lossily at least [`REFRESH_DELAY`] ago and
    /// unchanged since.
    fn refresh_due<'a>(&'a self, frame: &'a Frame) -> impl Iterator<Item = usize> + 'a {
        let sent = self.sent_generation;
        let now = self.now;
        let same = self.sent_size == Some((frame.width, frame.height));
        let n = if same { self.lossy.len() } else { 0 };
        (0..n).filter(move |&i| {
            self.lossy[i].is_some_and(|t| t + REFRESH_DELAY <= now) && frame.tile_generation(i) <= sent
        })
    }

    /// Whether [`Session::update`] would send something for `frame`.
    pub fn wants_update(&self, frame: &Frame) -> bool {
        if !self.engine.is_normal() {
            return false;
        }
        let Some(region) = self.continuous.or(self.requested) else { return false };
        if self.full.is_none() && self.paced() && !self.congestion.can_send() {
            return false;
        }
        self.full.is_some()
            || self.pseudo_pending()
            || self.sent_size != Some((frame.width, frame.height))
            || (frame.generation > self.sent_generation && !frame.changed_since(self.sent_generation, region).is_empty())
            || self.refresh_due(frame).next().is_some()
    }

    /// When the session next has something to do without new input or frames (the earliest
    /// lossless refresh), as a time on the [`Session::set_now`] clock.
    pub fn next_wakeup(&self) -> Option<Duration> {
        self.continuous.or(self.requested)?;
        self.lossy.iter().flatten().map(|&t| t + REFRESH_DELAY).filter(|&t| t > self.now).min()
    }

    /// The best lossless encoding the viewer accepts, in its order of preference.
    fn lossless_encoding(&self) -> Encoding {
        let s = self.engine.settings();
        s.encodings
            .iter()
            .copied()
            .find(|&e| e != Encoding::H264 && Encoders::can_encode(e))
            .unwrap_or(Encoding::RAW)
    }

    /// Encodes and queues an update from `frame` if one is due.
    pub fn update(&mut self, frame: &Arc<Frame>) -> Option<UpdateStats> {
        if !self.wants_update(frame) {
            return None;
        }
        let region = self.continuous.or(self.requested)?;
        let settings = self.engine.settings().clone();
        let tr = &settings.translator;
        let mut body = Vec::new();
        let mut rects = 0usize;
        let whole = Rect::new(0, 0, frame.width, frame.height);
        let (tiles_x, tiles_y) = frame.tiles();
        let resized = self.sent_size.is_some_and(|s| s != (frame.width, frame.height));
        if self.lossy.len() != tiles_x * tiles_y || resized {
            self.lossy = vec![None; tiles_x * tiles_y];
            self.motion = vec![0; tiles_x * tiles_y];
        }
        let mut areas: Vec<Rect> = Vec::new();
        let mut incremental = false;
        if resized {
            if settings.supports(Encoding::EXTENDED_DESKTOP_SIZE) {
                emit_extended_desktop_size(eds::REASON_SERVER, eds::STATUS_OK, frame.width, frame.height, &mut body);
                rects += 1;
                self.eds_pending = None;
            } else if settings.supports(Encoding::DESKTOP_SIZE) {
                emit_desktop_size(frame.width, frame.height, &mut body);
                rects += 1;
            } else {
                tracing::warn!("framebuffer resized but the viewer does not support DesktopSize");
            }
            areas.push(whole);
        } else if let Some(full) = self.full {
            areas.push(full.clip(frame.width, frame.height));
            areas.extend(frame.changed_since(self.sent_generation, region).into_iter().filter(|r| r.intersect(&full) != *r));
        } else if self.sent_size.is_none() {
            areas.push(region.clip(frame.width, frame.height));
        } else {
            areas = frame.changed_since(self.sent_generation, region);
            incremental = true;
        }
        if let Some((reason, status)) = self.eds_pending.take() {
            emit_extended_desktop_size(reason, status, frame.width, frame.height, &mut body);
            rects += 1;
        }
        if self.name_pending {
            emit_desktop_name(&self.name, &mut body);
            rects += 1;
            self.name_pending = false;
            self.name_sent = true;
        }
        if self.ext_key_pending {
            emit_qemu_ext_key_ack(&mut body);
            rects += 1;
            self.ext_key_pending = false;
            self.ext_key_sent = true;
        }
        if self.cursor_pending && settings.supports(Encoding::CURSOR) {
            if let Some(c) = &self.cursor {
                emit_cursor(c.hot_x, c.hot_y, c.width, c.height, &c.rgba, tr, &mut body);
                rects += 1;
            }
            self.cursor_pending = false;
        }
        // Motion: tiles changed in consecutive updates.
        let mut changed = vec![false; tiles_x * tiles_y];
        for a in &areas {
            for i in tiles_of(*a, tiles_x, tiles_y) {
                changed[i] = true;
            }
        }
        for (m, c) in self.motion.iter_mut().zip(&changed) {
            *m = if *c { m.saturating_add(1) } else { 0 };
        }
        // Lossless refresh of quiet lossy tiles inside the region.
        let refresh: Vec<Rect> = if resized {
            Vec::new()
        } else {
            let due: Vec<usize> = self.refresh_due(frame).filter(|&i| !changed[i]).collect();
            due.into_iter().map(|i| frame.tile_rect(i).intersect(&region)).filter(|r| !r.is_empty()).collect()
        };
        let src = frame.source();
        // Moves first.
        let mut copies = 0u64;
        if incremental && settings.supports(Encoding::COPY_RECT) {
            if let Some(old) = self.last_sent.as_ref().filter(|o| o.width == frame.width && o.height == frame.height) {
                let moves = detect_moves(&old.source(), &src, &areas);
                for m in &moves {
                    emit_copy_rect(m.dest, m.src_x, m.src_y, &mut body);
                    rects += 1;
                    copies += 1;
                    let was_lossy = tiles_of(m.src(), tiles_x, tiles_y).any(|i| self.lossy[i].is_some());
                    for i in tiles_of(m.dest, tiles_x, tiles_y) {
                        if was_lossy {
                            self.lossy[i] = Some(self.now);
                        }
                    }
                }
                if !moves.is_empty() {
                    let dests: Vec<Rect> = moves.iter().map(|m| m.dest).collect();
                    areas = areas.iter().flat_map(|a| subtract(*a, &dests)).collect();
                }
            }
        }
        let mut pixels = 0;
        let mut slot = meter::slot(settings.preferred, settings.tight.quality_level.is_some());
        let mut used_h264 = false;
        if settings.preferred == Encoding::H264 {
            let moving: u64 = (0..self.motion.len()).filter(|&i| self.motion[i] >= 2).map(|i| frame.tile_rect(i).area()).sum();
            if moving * H264_MOTION_FRACTION >= whole.area() {
                let even = Rect::new(0, 0, frame.width & !1, frame.height & !1);
                if let Some(n) = self.encoders.encode_h264(&src, even, settings.tight.quality_level, &mut body) {
                    rects += n;
                    pixels += even.area();
                    used_h264 = true;
                    // The viewer draws the whole decoded picture: everything is lossy now.
                    self.lossy.iter_mut().for_each(|t| *t = Some(self.now));
                    // An odd last column or row is not in the picture.
                    areas = areas.iter().flat_map(|a| subtract(*a, &[even])).collect();
                }
            }
        }
        let main = if settings.preferred == Encoding::H264 { self.lossless_encoding() } else { settings.preferred };
        if !used_h264 {
            slot = meter::slot(main, settings.tight.quality_level.is_some());
            for a in &areas {
                for i in tiles_of(*a, tiles_x, tiles_y) {
                    self.lossy[i] = None;
                }
            }
        }
        for a in areas.iter().filter(|a| !a.is_empty()) {
            pixels += a.area();
            rects += self.encoders.encode(main, &src, *a, tr, &settings.tight, &mut body);
        }
        let mut refreshed = 0;
        if !used_h264 {
            let lossless = TightOptions { quality_level: None, ..settings.tight };
            let enc = self.lossless_encoding();
            for r in &refresh {
                for i in tiles_of(*r, tiles_x, tiles_y) {
                    self.lossy[i] = None;
                }
                refreshed += r.area();
                rects += self.encoders.encode(enc, &src, *r, tr, &lossless, &mut body);
            }
        }
        for r in self.encoders.take_lossy() {
            for i in tiles_of(r, tiles_x, tiles_y) {
                self.lossy[i] = Some(self.now);
            }
        }
        let mut out = Vec::with_capacity(body.len() + 4);
        let count = match u16::try_from(rects) {
            Ok(n) if n < u16::MAX => n,
            _ => {
                crate::encode::emit_last_rect(&mut body);
                u16::MAX
            }
        };
        emit_update_header(&mut out, count);
        out.extend_from_slice(&body);
        // Only pushed updates count as in flight: a pulled one is paced by the viewer's requests
        // and never acknowledged by a fence.
        if self.paced() {
            self.congestion.sent(out.len() as u64);
            let payload = self.congestion.ping(self.now);
            let before = out.len();
            emit_fence(&mut out, fence_flags::REQUEST | fence_flags::BLOCK_BEFORE, &payload);
            self.congestion.sent((out.len() - before) as u64);
        }
        self.engine.push_output(&out);
        self.sent_generation = frame.generation;
        self.sent_size = Some((frame.width, frame.height));
        self.last_sent = Some(frame.clone());
        self.full = None;
        self.requested = None;
        let stats = UpdateStats { bytes: out.len() as u64, rects: rects as u64, pixels, slot, copies, refreshed };
        tracing::trace!(?stats, in_flight = self.congestion.in_flight(), window = self.congestion.window(), "update sent");
        Some(stats)
    }
}
