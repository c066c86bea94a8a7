//! One viewer: the protocol [`Engine`], its encoder state, its input state and what it has been
//! sent. Still sans-IO: the adapter feeds bytes and frames and sends what comes out.
//!
//! Update rules: an update is sent only while the viewer has a request outstanding or has
//! continuous updates on. A non-incremental request is answered at once with its whole area; an
//! incremental one waits until some tile inside it changed after the generation last sent. The
//! viewer is always served from the latest frame, so skipped frames coalesce.

use doppel_machine::InputEvent;

use crate::damage::Frame;
use crate::encode::{emit_cursor, emit_desktop_name, emit_desktop_size, emit_qemu_ext_key_ack, Encoders};
use crate::engine::{Engine, EngineConfig, EngineError, Event};
use crate::input::InputMapper;
use crate::meter;
use crate::wire::{emit_update_header, Encoding, Rect};

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
}

#[derive(Debug)]
pub struct Session {
    engine: Engine,
    encoders: Encoders,
    input: InputMapper,
    sent_generation: u64,
    sent_size: Option<(u16, u16)>,
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

impl Session {
    pub fn new(config: EngineConfig, challenge: [u8; 16]) -> Session {
        let name = config.name.clone();
        Session {
            engine: Engine::new(config, challenge),
            encoders: Encoders::new(),
            input: InputMapper::new(),
            sent_generation: 0,
            sent_size: None,
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
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, for the adapter's TLS switch ([`Engine::tls_established`]).
    pub fn engine_mut(&mut self) -> &mut Engine {
        &mut self.engine
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
                }
                Event::FenceResponse { .. } | Event::DesktopSizeRequest { .. } => {}
            }
        }
        Ok(())
    }

    /// Releases held buttons (on disconnect).
    pub fn release_input(&mut self, input: &mut Vec<InputEvent>) {
        self.input.release_all(input);
    }

    fn pseudo_pending(&self) -> bool {
        self.name_pending || self.ext_key_pending || (self.cursor_pending && self.engine.settings().supports(Encoding::CURSOR))
    }

    /// Whether [`Session::update`] would send something for `frame`.
    pub fn wants_update(&self, frame: &Frame) -> bool {
        if !self.engine.is_normal() {
            return false;
        }
        let Some(region) = self.continuous.or(self.requested) else { return false };
        self.full.is_some()
            || self.pseudo_pending()
            || self.sent_size != Some((frame.width, frame.height))
            || (frame.generation > self.sent_generation && !frame.changed_since(self.sent_generation, region).is_empty())
    }

    /// Encodes and queues an update from `frame` if one is due.
    pub fn update(&mut self, frame: &Frame) -> Option<UpdateStats> {
        if !self.wants_update(frame) {
            return None;
        }
        let region = self.continuous.or(self.requested)?;
        let settings = self.engine.settings().clone();
        let tr = &settings.translator;
        let mut body = Vec::new();
        let mut rects = 0usize;
        let whole = Rect::new(0, 0, frame.width, frame.height);
        let mut areas: Vec<Rect> = Vec::new();
        if self.sent_size.is_some_and(|s| s != (frame.width, frame.height)) {
            if settings.supports(Encoding::DESKTOP_SIZE) {
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
        let src = frame.source();
        let mut pixels = 0;
        for a in areas.iter().filter(|a| !a.is_empty()) {
            pixels += a.area();
            rects += self.encoders.encode(settings.preferred, &src, *a, tr, &settings.tight, &mut body);
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
        self.engine.push_output(&out);
        self.sent_generation = frame.generation;
        self.sent_size = Some((frame.width, frame.height));
        self.full = None;
        self.requested = None;
        Some(UpdateStats {
            bytes: out.len() as u64,
            rects: rects as u64,
            pixels,
            slot: meter::slot(settings.preferred, settings.tight.quality_level.is_some()),
        })
    }
}
