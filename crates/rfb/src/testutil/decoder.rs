//! A small RFB client-side decoder, written from the protocol documents independently of the
//! server's encoders, so round-trip tests check the encoders against the specification rather
//! than against themselves. It reads from any `std::io::Read` (a byte slice or a socket).

use std::io::Read;

use flate2::{Decompress, FlushDecompress};

use crate::wire::{Encoding, PixelFormat};

/// An ExtendedDesktopSize as received: (reason, status, width, height, screens).
pub type ExtendedDesktopSize = (u16, u16, usize, usize, Vec<[u8; 16]>);

/// What a server message was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMessage {
    /// A FramebufferUpdate with the encodings of its rectangles in order.
    Update(Vec<Encoding>),
    ColourMap { first: u16, colours: Vec<(u16, u16, u16)> },
    Bell,
    CutText(Vec<u8>),
    EndOfContinuousUpdates,
    Fence { flags: u32, payload: Vec<u8> },
}

/// A cursor as received: hotspot x, y, width, height, pixel values, mask bytes.
pub type Cursor = (u16, u16, u16, u16, Vec<u32>, Vec<u8>);

/// The client's view of the framebuffer, in its own pixel values.
pub struct Decoder {
    pub pf: PixelFormat,
    pub width: usize,
    pub height: usize,
    /// Client pixel values, row-major.
    pub fb: Vec<u32>,
    pub name: Option<Vec<u8>>,
    /// (hot x, hot y, w, h, pixel values, mask bytes)
    pub cursor: Option<Cursor>,
    pub qemu_ext_key: bool,
    /// The last ExtendedDesktopSize: (reason, status, width, height, screens).
    pub extended_desktop_size: Option<ExtendedDesktopSize>,
    /// H.264 rectangles decoded.
    pub h264_frames: u64,
    #[cfg(feature = "h264")]
    h264: std::collections::HashMap<(usize, usize, usize, usize), openh264::decoder::Decoder>,
    zrle: Decompress,
    tight: [Decompress; 4],
}

type R<T> = Result<T, String>;

fn rd<const N: usize>(r: &mut impl Read) -> R<[u8; N]> {
    let mut b = [0u8; N];
    r.read_exact(&mut b).map_err(|e| format!("read: {e}"))?;
    Ok(b)
}
fn u8_(r: &mut impl Read) -> R<u8> {
    Ok(rd::<1>(r)?[0])
}
fn u16_(r: &mut impl Read) -> R<u16> {
    Ok(u16::from_be_bytes(rd(r)?))
}
fn u32_(r: &mut impl Read) -> R<u32> {
    Ok(u32::from_be_bytes(rd(r)?))
}
fn bytes(r: &mut impl Read, n: usize) -> R<Vec<u8>> {
    if n > 64 << 20 {
        return Err(format!("length {n} too large"));
    }
    let mut b = vec![0u8; n];
    r.read_exact(&mut b).map_err(|e| format!("read {n}: {e}"))?;
    Ok(b)
}

fn inflate(z: &mut Decompress, input: &[u8], expect: Option<usize>) -> R<Vec<u8>> {
    let mut out = Vec::with_capacity(expect.unwrap_or(input.len() * 4) + 64);
    let mut inp = input;
    loop {
        if out.capacity() == out.len() {
            out.reserve(out.len() + 1024);
        }
        let before = z.total_in();
        z.decompress_vec(inp, &mut out, FlushDecompress::Sync).map_err(|e| format!("inflate: {e}"))?;
        let used = (z.total_in() - before) as usize;
        inp = &inp[used..];
        if inp.is_empty() && out.len() < out.capacity() {
            break;
        }
    }
    if let Some(n) = expect {
        if out.len() != n {
            return Err(format!("inflated {} bytes, expected {n}", out.len()));
        }
    }
    Ok(out)
}

impl Decoder {
    pub fn new(pf: PixelFormat, width: usize, height: usize) -> Decoder {
        Decoder {
            pf,
            width,
            height,
            fb: vec![0; width * height],
            name: None,
            cursor: None,
            qemu_ext_key: false,
            extended_desktop_size: None,
            h264_frames: 0,
            #[cfg(feature = "h264")]
            h264: std::collections::HashMap::new(),
            zrle: Decompress::new(true),
            tight: std::array::from_fn(|_| Decompress::new(true)),
        }
    }

    /// The 8-bit (r, g, b) a client shows for pixel (x, y).
    pub fn rgb(&self, x: usize, y: usize) -> (u8, u8, u8) {
        let v = self.fb[y * self.width + x];
        let pf = &self.pf;
        let c = |max: u16, shift: u8| ((((v >> shift) & u32::from(max)) * 255 + u32::from(max) / 2) / u32::from(max)) as u8;
        (c(pf.red_max, pf.red_shift), c(pf.green_max, pf.green_shift), c(pf.blue_max, pf.blue_shift))
    }

    /// The client pixel value for 8-bit r, g, b (how this decoder turns JPEG output into pixels).
    pub fn value(&self, r: u8, g: u8, b: u8) -> u32 {
        let pf = &self.pf;
        let c = |v: u8, max: u16, shift: u8| ((u32::from(v) * u32::from(max) + 127) / 255) << shift;
        c(r, pf.red_max, pf.red_shift) | c(g, pf.green_max, pf.green_shift) | c(b, pf.blue_max, pf.blue_shift)
    }

    fn pixel(&self, r: &mut impl Read) -> R<u32> {
        Ok(match (self.pf.bits_per_pixel, self.pf.big_endian) {
            (8, _) => u32::from(u8_(r)?),
            (16, false) => u32::from(u16::from_le_bytes(rd(r)?)),
            (16, true) => u32::from(u16::from_be_bytes(rd(r)?)),
            (32, false) => u32::from_le_bytes(rd(r)?),
            (32, true) => u32::from_be_bytes(rd(r)?),
            (b, _) => return Err(format!("bpp {b}")),
        })
    }

    /// ZRLE CPIXEL: 3 bytes when 32 bpp, depth <= 24 and all colour bits in 3 of the 4 bytes.
    fn cpixel(&self, r: &mut impl Read) -> R<u32> {
        let pf = &self.pf;
        if pf.bits_per_pixel == 32 && pf.depth <= 24 {
            let mask = (u32::from(pf.red_max) << pf.red_shift)
                | (u32::from(pf.green_max) << pf.green_shift)
                | (u32::from(pf.blue_max) << pf.blue_shift);
            let [a, b, c] = rd::<3>(r)?;
            if mask >> 24 == 0 {
                // value fits in the low three bytes
                return Ok(if pf.big_endian { u32::from_be_bytes([0, a, b, c]) } else { u32::from_le_bytes([a, b, c, 0]) });
            }
            if mask & 0xff == 0 {
                return Ok(if pf.big_endian { u32::from_be_bytes([a, b, c, 0]) } else { u32::from_le_bytes([0, a, b, c]) });
            }
            return Err("cpixel: cannot be 3 bytes, but read 3".into());
        }
        self.pixel(r)
    }

    fn tight_888(&self) -> bool {
        let pf = &self.pf;
        pf.bits_per_pixel == 32 && pf.depth == 24 && pf.red_max == 255 && pf.green_max == 255 && pf.blue_max == 255
    }

    fn tpixel(&self, r: &mut impl Read) -> R<u32> {
        if self.tight_888() {
            let [rr, g, b] = rd::<3>(r)?;
            Ok(self.value(rr, g, b))
        } else {
            self.pixel(r)
        }
    }

    fn put(&mut self, x: usize, y: usize, v: u32) -> R<()> {
        if x >= self.width || y >= self.height {
            return Err(format!("pixel ({x},{y}) outside {}x{}", self.width, self.height));
        }
        self.fb[y * self.width + x] = v;
        Ok(())
    }

    fn fill(&mut self, x: usize, y: usize, w: usize, h: usize, v: u32) -> R<()> {
        for yy in y..y + h {
            for xx in x..x + w {
                self.put(xx, yy, v)?;
            }
        }
        Ok(())
    }

    /// Reads one server message.
    pub fn read_message(&mut self, r: &mut impl Read) -> R<ServerMessage> {
        match u8_(r)? {
            0 => {
                u8_(r)?;
                let n = u16_(r)?;
                let mut encs = Vec::new();
                let mut i = 0u32;
                while n == 0xffff || i < u32::from(n) {
                    let (x, y, w, h) = (u16_(r)? as usize, u16_(r)? as usize, u16_(r)? as usize, u16_(r)? as usize);
                    let enc = Encoding(u32_(r)? as i32);
                    encs.push(enc);
                    if enc == Encoding::LAST_RECT {
                        break;
                    }
                    self.rect(r, x, y, w, h, enc)?;
                    i += 1;
                }
                Ok(ServerMessage::Update(encs))
            }
            1 => {
                u8_(r)?;
                let first = u16_(r)?;
                let n = u16_(r)?;
                let mut colours = Vec::new();
                for _ in 0..n {
                    colours.push((u16_(r)?, u16_(r)?, u16_(r)?));
                }
                Ok(ServerMessage::ColourMap { first, colours })
            }
            2 => Ok(ServerMessage::Bell),
            3 => {
                rd::<3>(r)?;
                let n = u32_(r)? as usize;
                Ok(ServerMessage::CutText(bytes(r, n)?))
            }
            150 => Ok(ServerMessage::EndOfContinuousUpdates),
            248 => {
                rd::<3>(r)?;
                let flags = u32_(r)?;
                let n = u8_(r)? as usize;
                Ok(ServerMessage::Fence { flags, payload: bytes(r, n)? })
            }
            t => Err(format!("unknown server message type {t}")),
        }
    }

    fn rect(&mut self, r: &mut impl Read, x: usize, y: usize, w: usize, h: usize, enc: Encoding) -> R<()> {
        match enc {
            Encoding::RAW => {
                for yy in y..y + h {
                    for xx in x..x + w {
                        let v = self.pixel(r)?;
                        self.put(xx, yy, v)?;
                    }
                }
            }
            Encoding::COPY_RECT => {
                let (sx, sy) = (u16_(r)? as usize, u16_(r)? as usize);
                let mut tmp = Vec::with_capacity(w * h);
                for yy in 0..h {
                    for xx in 0..w {
                        let (px, py) = (sx + xx, sy + yy);
                        if px >= self.width || py >= self.height {
                            return Err("copyrect source outside".into());
                        }
                        tmp.push(self.fb[py * self.width + px]);
                    }
                }
                for yy in 0..h {
                    for xx in 0..w {
                        self.put(x + xx, y + yy, tmp[yy * w + xx])?;
                    }
                }
            }
            Encoding::RRE => {
                let n = u32_(r)?;
                let bg = self.pixel(r)?;
                self.fill(x, y, w, h, bg)?;
                for _ in 0..n {
                    let v = self.pixel(r)?;
                    let (sx, sy, sw, sh) = (u16_(r)? as usize, u16_(r)? as usize, u16_(r)? as usize, u16_(r)? as usize);
                    if sx + sw > w || sy + sh > h {
                        return Err("RRE subrect outside its rectangle".into());
                    }
                    self.fill(x + sx, y + sy, sw, sh, v)?;
                }
            }
            Encoding::HEXTILE => self.hextile(r, x, y, w, h)?,
            Encoding::ZRLE => {
                let n = u32_(r)? as usize;
                let data = bytes(r, n)?;
                let plain = inflate(&mut self.zrle, &data, None)?;
                let mut s = plain.as_slice();
                self.zrle_tiles(&mut s, x, y, w, h)?;
                if !s.is_empty() {
                    return Err(format!("ZRLE: {} bytes left over", s.len()));
                }
            }
            Encoding::TIGHT => self.tight(r, x, y, w, h, false)?,
            Encoding::TIGHT_PNG => self.tight(r, x, y, w, h, true)?,
            Encoding::H264 => self.h264(r, x, y, w, h)?,
            Encoding::EXTENDED_DESKTOP_SIZE => {
                let n = usize::from(u8_(r)?);
                rd::<3>(r)?;
                let screens: Vec<[u8; 16]> = (0..n).map(|_| rd::<16>(r)).collect::<R<_>>()?;
                if x == 0 || x == 2 || y == 0 {
                    // A change (not a refused request): the framebuffer is now w x h.
                    if (w, h) != (self.width, self.height) {
                        self.width = w;
                        self.height = h;
                        self.fb = vec![0; w * h];
                    }
                }
                self.extended_desktop_size = Some((x as u16, y as u16, w, h, screens));
            }
            Encoding::DESKTOP_SIZE => {
                self.width = w;
                self.height = h;
                self.fb = vec![0; w * h];
            }
            Encoding::DESKTOP_NAME => {
                let n = u32_(r)? as usize;
                self.name = Some(bytes(r, n)?);
            }
            Encoding::CURSOR => {
                let mut px = Vec::new();
                for _ in 0..w * h {
                    px.push(self.pixel(r)?);
                }
                let mask = bytes(r, w.div_ceil(8) * h)?;
                self.cursor = Some((x as u16, y as u16, w as u16, h as u16, px, mask));
            }
            Encoding::QEMU_EXT_KEY => self.qemu_ext_key = true,
            e => return Err(format!("unexpected encoding {}", e.0)),
        }
        Ok(())
    }

    fn hextile(&mut self, r: &mut impl Read, x: usize, y: usize, w: usize, h: usize) -> R<()> {
        let (mut bg, mut fg) = (0u32, 0u32);
        for ty in (y..y + h).step_by(16) {
            for tx in (x..x + w).step_by(16) {
                let tw = (x + w - tx).min(16);
                let th = (y + h - ty).min(16);
                let flags = u8_(r)?;
                if flags & 1 != 0 {
                    for yy in ty..ty + th {
                        for xx in tx..tx + tw {
                            let v = self.pixel(r)?;
                            self.put(xx, yy, v)?;
                        }
                    }
                    continue;
                }
                if flags & 2 != 0 {
                    bg = self.pixel(r)?;
                }
                self.fill(tx, ty, tw, th, bg)?;
                if flags & 4 != 0 {
                    fg = self.pixel(r)?;
                }
                if flags & 8 != 0 {
                    let n = u8_(r)?;
                    for _ in 0..n {
                        let v = if flags & 16 != 0 { self.pixel(r)? } else { fg };
                        let xy = u8_(r)?;
                        let wh = u8_(r)?;
                        let (sx, sy) = ((xy >> 4) as usize, (xy & 15) as usize);
                        let (sw, sh) = ((wh >> 4) as usize + 1, (wh & 15) as usize + 1);
                        if sx + sw > tw || sy + sh > th {
                            return Err("hextile subrect outside its tile".into());
                        }
                        self.fill(tx + sx, ty + sy, sw, sh, v)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn zrle_tiles(&mut self, s: &mut &[u8], x: usize, y: usize, w: usize, h: usize) -> R<()> {
        for ty in (y..y + h).step_by(64) {
            for tx in (x..x + w).step_by(64) {
                let tw = (x + w - tx).min(64);
                let th = (y + h - ty).min(64);
                let sub = u8_(s)?;
                let mut px = Vec::with_capacity(tw * th);
                match sub {
                    0 => {
                        for _ in 0..tw * th {
                            px.push(self.cpixel(s)?);
                        }
                    }
                    1 => {
                        let v = self.cpixel(s)?;
                        px.resize(tw * th, v);
                    }
                    2..=16 => {
                        let pal: Vec<u32> = (0..sub).map(|_| self.cpixel(s)).collect::<R<_>>()?;
                        let bits = match sub {
                            2 => 1,
                            3 | 4 => 2,
                            _ => 4,
                        };
                        for _ in 0..th {
                            let row = bytes(s, (tw * bits).div_ceil(8))?;
                            for i in 0..tw {
                                let bit = i * bits;
                                let idx = (row[bit / 8] >> (8 - bits - bit % 8)) & ((1 << bits) - 1);
                                px.push(*pal.get(idx as usize).ok_or("ZRLE packed index")?);
                            }
                        }
                    }
                    128 | 130..=255 => {
                        let pal: Vec<u32> = if sub == 128 {
                            Vec::new()
                        } else {
                            (0..sub - 128).map(|_| self.cpixel(s)).collect::<R<_>>()?
                        };
                        while px.len() < tw * th {
                            let (v, run) = if sub == 128 {
                                (self.cpixel(s)?, true)
                            } else {
                                let i = u8_(s)?;
                                (*pal.get((i & 127) as usize).ok_or("ZRLE RLE index")?, i & 128 != 0)
                            };
                            let mut len = 1;
                            if run {
                                loop {
                                    let b = u8_(s)?;
                                    len += b as usize;
                                    if b != 255 {
                                        break;
                                    }
                                }
                            }
                            if px.len() + len > tw * th {
                                return Err("ZRLE run past tile end".into());
                            }
                            px.resize(px.len() + len, v);
                        }
                    }
                    _ => return Err(format!("ZRLE sub-encoding {sub}")),
                }
                for (i, v) in px.into_iter().enumerate() {
                    self.put(tx + i % tw, ty + i / tw, v)?;
                }
            }
        }
        Ok(())
    }

    fn compact_len(r: &mut impl Read) -> R<usize> {
        let mut len = 0usize;
        for i in 0..3 {
            let b = u8_(r)?;
            if i == 2 {
                len |= (b as usize) << 14;
                break;
            }
            len |= ((b & 0x7f) as usize) << (7 * i);
            if b & 0x80 == 0 {
                break;
            }
        }
        Ok(len)
    }

    fn tight_data(&mut self, r: &mut impl Read, stream: usize, len: usize) -> R<Vec<u8>> {
        if len < 12 {
            return bytes(r, len);
        }
        let n = Self::compact_len(r)?;
        let data = bytes(r, n)?;
        inflate(&mut self.tight[stream], &data, Some(len))
    }

    #[cfg(feature = "h264")]
    fn h264(&mut self, r: &mut impl Read, x: usize, y: usize, w: usize, h: usize) -> R<()> {
        let len = u32_(r)? as usize;
        let flags = u32_(r)?;
        let data = bytes(r, len)?;
        if flags & 2 != 0 {
            self.h264.clear();
        } else if flags & 1 != 0 {
            self.h264.remove(&(x, y, w, h));
        }
        if len == 0 {
            return Ok(());
        }
        let dec = match self.h264.entry((x, y, w, h)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(openh264::decoder::Decoder::new().map_err(|e| format!("h264 decoder: {e}"))?)
            }
        };
        let mut rgb = vec![0u8; w * h * 3];
        {
            use openh264::formats::YUVSource;
            let yuv = dec.decode(&data).map_err(|e| format!("h264: {e}"))?.ok_or("h264: no picture")?;
            if yuv.dimensions() != (w, h) {
                return Err(format!("h264 picture {:?} in a {w}x{h} rectangle", yuv.dimensions()));
            }
            yuv.write_rgb8(&mut rgb);
        }
        for (i, c) in rgb.chunks_exact(3).enumerate() {
            let v = self.value(c[0], c[1], c[2]);
            self.put(x + i % w, y + i / w, v)?;
        }
        self.h264_frames += 1;
        Ok(())
    }

    #[cfg(not(feature = "h264"))]
    fn h264(&mut self, _: &mut impl Read, _: usize, _: usize, _: usize, _: usize) -> R<()> {
        Err("H.264 rectangle, but this build has no H.264 decoder".into())
    }

    fn tight(&mut self, r: &mut impl Read, x: usize, y: usize, w: usize, h: usize, png: bool) -> R<()> {
        if w > 2048 {
            return Err(format!("Tight rectangle {w} wide"));
        }
        let ctrl = u8_(r)?;
        for i in 0..4 {
            if ctrl & (1 << i) != 0 {
                self.tight[i] = Decompress::new(true);
            }
        }
        let comp = ctrl >> 4;
        if comp == 8 {
            let v = self.tpixel(r)?;
            return self.fill(x, y, w, h, v);
        }
        if comp == 9 {
            let n = Self::compact_len(r)?;
            let data = bytes(r, n)?;
            let mut d = jpeg_decoder::Decoder::new(data.as_slice());
            let rgb = d.decode().map_err(|e| format!("jpeg: {e}"))?;
            let info = d.info().ok_or("jpeg info")?;
            if usize::from(info.width) != w || usize::from(info.height) != h {
                return Err("jpeg size differs from rectangle".into());
            }
            if info.pixel_format != jpeg_decoder::PixelFormat::RGB24 {
                return Err(format!("jpeg pixel format {:?}", info.pixel_format));
            }
            for (i, c) in rgb.chunks_exact(3).enumerate() {
                let v = self.value(c[0], c[1], c[2]);
                self.put(x + i % w, y + i / w, v)?;
            }
            return Ok(());
        }
        if comp == 10 && png {
            let n = Self::compact_len(r)?;
            let data = bytes(r, n)?;
            let mut d = png::Decoder::new(std::io::Cursor::new(data));
            d.set_transformations(png::Transformations::EXPAND);
            let mut reader = d.read_info().map_err(|e| format!("png: {e}"))?;
            let mut buf = vec![0u8; reader.output_buffer_size().ok_or("png size")?];
            let info = reader.next_frame(&mut buf).map_err(|e| format!("png: {e}"))?;
            if (info.width as usize, info.height as usize) != (w, h) {
                return Err("png size differs from rectangle".into());
            }
            let step = match info.color_type {
                png::ColorType::Rgb => 3,
                png::ColorType::Rgba => 4,
                c => return Err(format!("png colour type {c:?}")),
            };
            for (i, c) in buf[..info.buffer_size()].chunks_exact(step).enumerate() {
                let v = self.value(c[0], c[1], c[2]);
                self.put(x + i % w, y + i / w, v)?;
            }
            return Ok(());
        }
        if comp & 8 != 0 {
            return Err(format!("Tight compression {comp:#x}"));
        }
        if png {
            return Err("basic compression in a TightPNG rectangle".into());
        }
        let stream = (comp & 3) as usize;
        let filter = if comp & 4 != 0 { u8_(r)? } else { 0 };
        match filter {
            0 => {
                let size = if self.tight_888() { 3 } else { self.pf.bytes_per_pixel() };
                let data = self.tight_data(r, stream, w * h * size)?;
                let mut s = data.as_slice();
                for i in 0..w * h {
                    let v = self.tpixel(&mut s)?;
                    self.put(x + i % w, y + i / w, v)?;
                }
            }
            1 => {
                let n = u8_(r)? as usize + 1;
                let pal: Vec<u32> = (0..n).map(|_| self.tpixel(r)).collect::<R<_>>()?;
                if n == 2 {
                    let row = w.div_ceil(8);
                    let data = self.tight_data(r, stream, row * h)?;
                    for yy in 0..h {
                        for xx in 0..w {
                            let bit = (data[yy * row + xx / 8] >> (7 - xx % 8)) & 1;
                            self.put(x + xx, y + yy, pal[bit as usize])?;
                        }
                    }
                } else {
                    let data = self.tight_data(r, stream, w * h)?;
                    for (i, &idx) in data.iter().enumerate() {
                        let v = *pal.get(idx as usize).ok_or("Tight palette index")?;
                        self.put(x + i % w, y + i / w, v)?;
                    }
                }
            }
            f => return Err(format!("Tight filter {f} not supported by the test decoder")),
        }
        Ok(())
    }
}
