//! The replay log on the wire: a header, then framed records. Parsing is checked and total: any
//! byte string gives a record, a clear error, or "need more bytes", never a panic.
//!
//! # Layout
//!
//! ```text
//! header (86 bytes, fixed):
//!   magic "DOPPELRR" | version u16 LE | fingerprint [32] | start icount u64 LE
//!   | start state hash [32] | CRC-32 of the preceding 82 bytes, u32 LE
//! frame (repeated):
//!   body length (LEB128 varint, 1..=MAX_BODY) | body = kind u8, payload | CRC-32 u32 LE
//! ```
//!
//! The frame CRC covers the frame's sequence number (u64 LE, counting from 0, never sent), the
//! length varint and the body. A flipped bit fails the CRC; two frames swapped fail it too (each
//! is checked against the position it was written at); a stream cut at any byte leaves an
//! incomplete frame, reported as truncated when the stream ends.
//!
//! Instruction counts are delta-coded: each record carries the distance from the previous
//! record's instruction count (the header's start icount for the first), so an idle or CPU-bound
//! stretch costs a few bytes per record. Payloads:
//!
//! | kind | record     | payload                                                        |
//! |------|------------|----------------------------------------------------------------|
//! | 1    | Event      | delta, event tag u8, event fields (below)                      |
//! | 2    | Warp       | delta, ticks                                                   |
//! | 3    | Entropy    | delta, length, bytes                                           |
//! | 4    | Checkpoint | delta, flags u8 (bit 0: `full` hash present), hash [32], full [32]? |
//! | 5    | End        | delta                                                          |
//! | 6    | DiskRead   | delta, byte offset, length, bytes (output-replayed disk)       |
//!
//! Event tags: 0 UART bytes (length, bytes), 1 key (code, down u8), 2 pointer move (x, y),
//! 3 pointer button (code, down u8), 4 wheel (zigzag delta), 5 received frame (length, bytes).
//! All integers in payloads are LEB128 varints. Trailing bytes in a body are an error.
//!
//! # Versioning
//!
//! [`VERSION`] is bumped whenever any of this changes; a reader refuses every other version with
//! [`WireError::Version`] rather than guess. An unknown record kind in a known version is corruption.

// Varint and zigzag coding keep the low bits of a value on purpose.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_possible_wrap)]

use doppel_machine::{InputEvent, InstructionCount, Ticks};

/// Magic bytes opening a replay log.
pub const MAGIC: [u8; 8] = *b"DOPPELRR";
/// The format version this build writes and reads.
pub const VERSION: u16 = 2;
/// Length of the fixed header.
pub const HEADER_LEN: usize = 86;
/// Largest frame body a reader accepts (a received packet or an entropy request fits easily).
pub const MAX_BODY: u64 = 1 << 20;

/// Why bytes are not a valid replay log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("not a doppel replay log (bad magic)")]
    BadMagic,
    #[error("replay log format version {found}, this build reads version {supported}")]
    Version { found: u16, supported: u16 },
    #[error("replay log header checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    HeaderChecksum { stored: u32, computed: u32 },
    #[error("frame {frame} at byte {offset}: checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the log is corrupt or its frames are out of order")]
    FrameChecksum { frame: u64, offset: u64, stored: u32, computed: u32 },
    #[error("frame {frame} at byte {offset}: length {len} is outside 1..={MAX_BODY}")]
    FrameLength { frame: u64, offset: u64, len: u64 },
    #[error("frame {frame} at byte {offset}: bad length varint")]
    LengthVarint { frame: u64, offset: u64 },
    #[error("frame {frame} at byte {offset}: unknown record kind {kind}")]
    UnknownKind { frame: u64, offset: u64, kind: u8 },
    #[error("frame {frame} at byte {offset}: malformed {what}")]
    Malformed { frame: u64, offset: u64, what: &'static str },
    #[error("frame {frame} at byte {offset}: instruction count overflows")]
    IcountOverflow { frame: u64, offset: u64 },
    #[error("replay log truncated at byte {offset} ({what})")]
    Truncated { offset: u64, what: &'static str },
    #[error("frame {frame} at byte {offset} follows the End record")]
    AfterEnd { frame: u64, offset: u64 },
    #[error("record at instruction {icount} precedes the previous one at {previous}")]
    Backwards { icount: InstructionCount, previous: InstructionCount },
}

/// The log's header: which machine it belongs to and where it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Identifies the machine configuration (see [`crate::fingerprint`]).
    pub fingerprint: [u8; 32],
    /// Instruction count at which the log starts (0 for a log from reset).
    pub start_icount: InstructionCount,
    /// [`doppel_machine::Machine::state_hash`] at the start.
    pub start_hash: [u8; 32],
}

impl Header {
    /// Parse a header from the start of `buf`. `Ok(None)`: not enough bytes yet.
    pub fn parse(buf: &[u8]) -> Result<Option<Header>, WireError> {
        let magic_len = buf.len().min(8);
        if buf[..magic_len] != MAGIC[..magic_len] {
            return Err(WireError::BadMagic);
        }
        let Some(v) = buf.get(8..10) else { return Ok(None) };
        let found = u16::from_le_bytes([v[0], v[1]]);
        if found != VERSION {
            return Err(WireError::Version { found, supported: VERSION });
        }
        let Some(h) = buf.get(..HEADER_LEN) else { return Ok(None) };
        let stored = u32::from_le_bytes(arr(&h[82..86]));
        let computed = crc32fast::hash(&h[..82]);
        if stored != computed {
            return Err(WireError::HeaderChecksum { stored, computed });
        }
        Ok(Some(Header {
            fingerprint: arr(&h[10..42]),
            start_icount: u64::from_le_bytes(arr(&h[42..50])),
            start_hash: arr(&h[50..82]),
        }))
    }

    /// Append the header's bytes to `out`.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let at = out.len();
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.fingerprint);
        out.extend_from_slice(&self.start_icount.to_le_bytes());
        out.extend_from_slice(&self.start_hash);
        let crc = crc32fast::hash(&out[at..]);
        out.extend_from_slice(&crc.to_le_bytes());
    }
}

/// Copy a slice of known length into an array (callers slice exactly `N` bytes).
fn arr<const N: usize>(s: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&s[..N]);
    a
}

/// One entry of the log, with its absolute instruction count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// An input event returned by `poll` at `icount`.
    Event { icount: InstructionCount, event: InputEvent },
    /// The environment let `ticks` of guest time pass while the hart idled at `icount`.
    Warp { icount: InstructionCount, ticks: Ticks },
    /// Entropy handed to the guest at `icount`.
    Entropy { icount: InstructionCount, bytes: Vec<u8> },
    /// A hash of the hart and device state (see [`crate::checkpoint_hash`]) and, optionally, the
    /// full [`doppel_machine::Machine::state_hash`] including RAM.
    Checkpoint { icount: InstructionCount, hash: [u8; 32], full: Option<[u8; 32]> },
    /// The recording ended here.
    End { icount: InstructionCount },
    /// Bytes of the disk's base image read at `icount` (output-replayed disk only).
    DiskRead { icount: InstructionCount, offset: u64, bytes: Vec<u8> },
}

impl Record {
    pub fn icount(&self) -> InstructionCount {
        match *self {
            Record::Event { icount, .. }
            | Record::Warp { icount, .. }
            | Record::Entropy { icount, .. }
            | Record::Checkpoint { icount, .. }
            | Record::End { icount }
            | Record::DiskRead { icount, .. } => icount,
        }
    }

    fn kind(&self) -> u8 {
        match self {
            Record::Event { .. } => 1,
            Record::Warp { .. } => 2,
            Record::Entropy { .. } => 3,
            Record::Checkpoint { .. } => 4,
            Record::End { .. } => 5,
            Record::DiskRead { .. } => 6,
        }
    }

    /// A short description for divergence reports.
    pub fn describe(&self) -> String {
        match self {
            Record::Event { icount, event } => format!("input {event:?} at instruction {icount}"),
            Record::Warp { icount, ticks } => format!("an idle warp of {ticks} ticks at instruction {icount}"),
            Record::Entropy { icount, bytes } => {
                format!("a request for {} entropy bytes at instruction {icount}", bytes.len())
            }
            Record::Checkpoint { icount, .. } => format!("a checkpoint at instruction {icount}"),
            Record::End { icount } => format!("the end of the log at instruction {icount}"),
            Record::DiskRead { icount, offset, bytes } => {
                format!("a disk read of {} bytes at offset {offset} at instruction {icount}", bytes.len())
            }
        }
    }
}

/// Append a LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v & 0x7f) as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint longer than 10 bytes or overflowing 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("varint longer than 10 bytes, above 2^64, or not in its shortest form")]
pub struct BadVarint;

/// Read a LEB128 varint from the start of `buf`: `Ok(Some((value, length)))`, `Ok(None)` if
/// `buf` ends inside it.
pub fn get_varint(buf: &[u8]) -> Result<Option<(u64, usize)>, BadVarint> {
    let mut v = 0u64;
    for i in 0..10 {
        let Some(&b) = buf.get(i) else { return Ok(None) };
        if i == 9 && b > 1 {
            return Err(BadVarint);
        }
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            // Only the shortest encoding is valid, so every log has one byte string.
            if b == 0 && i > 0 {
                return Err(BadVarint);
            }
            return Ok(Some((v, i + 1)));
        }
    }
    Err(BadVarint)
}

fn zigzag(v: i32) -> u64 {
    u64::from(((v << 1) ^ (v >> 31)) as u32)
}

fn unzigzag(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Writes records as frames: keeps the sequence number and the previous instruction count.
#[derive(Debug, Clone)]
pub struct Encoder {
    seq: u64,
    last: InstructionCount,
    body: Vec<u8>,
}

impl Encoder {
    /// Emit `header` into `out` and return an encoder for the frames that follow it.
    pub fn new(header: &Header, out: &mut Vec<u8>) -> Encoder {
        header.emit(out);
        Encoder { seq: 0, last: header.start_icount, body: Vec::new() }
    }

    /// Append one framed record to `out`. Records must come in instruction-count order.
    pub fn emit(&mut self, record: &Record, out: &mut Vec<u8>) -> Result<(), WireError> {
        let icount = record.icount();
        if icount < self.last {
            return Err(WireError::Backwards { icount, previous: self.last });
        }
        let b = &mut self.body;
        b.clear();
        b.push(record.kind());
        put_varint(b, icount - self.last);
        match record {
            Record::Event { event, .. } => match event {
                InputEvent::UartRx(bytes) => {
                    b.push(0);
                    put_bytes(b, bytes);
                }
                InputEvent::Key { code, down } => {
                    b.push(1);
                    put_varint(b, u64::from(*code));
                    b.push(u8::from(*down));
                }
                InputEvent::PointerMove { x, y } => {
                    b.push(2);
                    put_varint(b, u64::from(*x));
                    put_varint(b, u64::from(*y));
                }
                InputEvent::PointerButton { code, down } => {
                    b.push(3);
                    put_varint(b, u64::from(*code));
                    b.push(u8::from(*down));
                }
                InputEvent::Wheel { delta } => {
                    b.push(4);
                    put_varint(b, zigzag(*delta));
                }
                InputEvent::NetRx(frame) => {
                    b.push(5);
                    put_bytes(b, frame);
                }
            },
            Record::Warp { ticks, .. } => put_varint(b, *ticks),
            Record::Entropy { bytes, .. } => put_bytes(b, bytes),
            Record::DiskRead { offset, bytes, .. } => {
                put_varint(b, *offset);
                put_bytes(b, bytes);
            }
            Record::Checkpoint { hash, full, .. } => {
                b.push(u8::from(full.is_some()));
                b.extend_from_slice(hash);
                if let Some(full) = full {
                    b.extend_from_slice(full);
                }
            }
            Record::End { .. } => {}
        }
        let at = out.len();
        put_varint(out, b.len() as u64);
        out.extend_from_slice(b);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&self.seq.to_le_bytes());
        crc.update(&out[at..]);
        out.extend_from_slice(&crc.finalize().to_le_bytes());
        self.seq += 1;
        self.last = icount;
        Ok(())
    }
}

/// Reads a payload, turning "ran out" into a `Malformed` error naming the field.
struct Cursor<'a> {
    buf: &'a [u8],
    frame: u64,
    offset: u64,
}

impl<'a> Cursor<'a> {
    fn err(&self, what: &'static str) -> WireError {
        WireError::Malformed { frame: self.frame, offset: self.offset, what }
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        let (&b, rest) = self.buf.split_first().ok_or_else(|| self.err(what))?;
        self.buf = rest;
        Ok(b)
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, WireError> {
        match get_varint(self.buf) {
            Ok(Some((v, n))) => {
                self.buf = &self.buf[n..];
                Ok(v)
            }
            _ => Err(self.err(what)),
        }
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        u16::try_from(self.varint(what)?).map_err(|_| self.err(what))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        u32::try_from(self.varint(what)?).map_err(|_| self.err(what))
    }

    fn bool(&mut self, what: &'static str) -> Result<bool, WireError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(self.err(what)),
        }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(self.err(what));
        }
        let (a, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(a)
    }

    fn bytes(&mut self, what: &'static str) -> Result<Vec<u8>, WireError> {
        let n = usize::try_from(self.varint(what)?).map_err(|_| self.err(what))?;
        Ok(self.take(n, what)?.to_vec())
    }

    fn hash(&mut self, what: &'static str) -> Result<[u8; 32], WireError> {
        Ok(arr(self.take(32, what)?))
    }
}

/// Parse one frame body (kind and payload) whose delta applies to `last`.
fn parse_body(body: &[u8], last: InstructionCount, frame: u64, offset: u64) -> Result<Record, WireError> {
    let mut c = Cursor { buf: body, frame, offset };
    let kind = c.u8("record kind")?;
    let delta = c.varint("instruction count delta")?;
    let icount = last.checked_add(delta).ok_or(WireError::IcountOverflow { frame, offset })?;
    let record = match kind {
        1 => {
            let event = match c.u8("event tag")? {
                0 => InputEvent::UartRx(c.bytes("UART bytes")?),
                1 => InputEvent::Key { code: c.u16("key code")?, down: c.bool("key state")? },
                2 => InputEvent::PointerMove { x: c.u32("pointer x")?, y: c.u32("pointer y")? },
                3 => InputEvent::PointerButton { code: c.u16("button code")?, down: c.bool("button state")? },
                4 => InputEvent::Wheel { delta: unzigzag(c.u32("wheel delta")?) },
                5 => InputEvent::NetRx(c.bytes("received frame")?),
                _ => return Err(c.err("event tag")),
            };
            Record::Event { icount, event }
        }
        2 => Record::Warp { icount, ticks: c.varint("warp ticks")? },
        3 => Record::Entropy { icount, bytes: c.bytes("entropy bytes")? },
        4 => {
            let flags = c.u8("checkpoint flags")?;
            if flags > 1 {
                return Err(c.err("checkpoint flags"));
            }
            let hash = c.hash("checkpoint hash")?;
            let full = if flags == 1 { Some(c.hash("checkpoint full hash")?) } else { None };
            Record::Checkpoint { icount, hash, full }
        }
        5 => Record::End { icount },
        6 => Record::DiskRead { icount, offset: c.varint("disk offset")?, bytes: c.bytes("disk bytes")? },
        kind => return Err(WireError::UnknownKind { frame, offset, kind }),
    };
    if !c.buf.is_empty() {
        return Err(c.err("record (trailing bytes)"));
    }
    Ok(record)
}

/// A sans-IO reader of a replay log: push bytes as they arrive, pull records out.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    pos: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    header: Option<Header>,
    seq: u64,
    last: InstructionCount,
    ended: bool,
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Add bytes received from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.base += self.pos as u64;
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > (1 << 16) {
            self.base += self.pos as u64;
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// The header, once enough bytes have arrived. `Ok(None)`: not yet.
    pub fn header(&mut self) -> Result<Option<Header>, WireError> {
        if self.header.is_none() {
            if let Some(h) = Header::parse(&self.buf[self.pos..])? {
                self.pos += HEADER_LEN;
                self.last = h.start_icount;
                self.header = Some(h);
            }
        }
        Ok(self.header)
    }

    /// The End record has been read.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// The next record. `Ok(None)`: more bytes are needed (or, after End, there are none).
    pub fn next_record(&mut self) -> Result<Option<Record>, WireError> {
        if self.header()?.is_none() {
            return Ok(None);
        }
        let offset = self.offset();
        let frame = self.seq;
        let rest = &self.buf[self.pos..];
        if rest.is_empty() {
            return Ok(None);
        }
        if self.ended {
            return Err(WireError::AfterEnd { frame, offset });
        }
        let (len, n) = match get_varint(rest) {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(None),
            Err(BadVarint) => return Err(WireError::LengthVarint { frame, offset }),
        };
        if len == 0 || len > MAX_BODY {
            return Err(WireError::FrameLength { frame, offset, len });
        }
        // MAX_BODY keeps this in range on every platform.
        let body_len = usize::try_from(len).map_err(|_| WireError::FrameLength { frame, offset, len })?;
        let total = n + body_len + 4;
        if rest.len() < total {
            return Ok(None);
        }
        let stored = u32::from_le_bytes(arr(&rest[n + body_len..total]));
        let mut crc = crc32fast::Hasher::new();
        crc.update(&frame.to_le_bytes());
        crc.update(&rest[..n + body_len]);
        let computed = crc.finalize();
        if stored != computed {
            return Err(WireError::FrameChecksum { frame, offset, stored, computed });
        }
        let record = parse_body(&rest[n..n + body_len], self.last, frame, offset)?;
        self.pos += total;
        self.seq += 1;
        self.last = record.icount();
        self.ended = matches!(record, Record::End { .. });
        Ok(Some(record))
    }

    /// The stream has ended: is what arrived a complete log?
    pub fn finish(&self) -> Result<(), WireError> {
        let offset = self.base + self.buf.len() as u64;
        if self.header.is_none() {
            return Err(WireError::Truncated { offset, what: "inside the header" });
        }
        if self.pos < self.buf.len() {
            return Err(WireError::Truncated { offset, what: "inside a frame" });
        }
        if !self.ended {
            return Err(WireError::Truncated { offset, what: "before the End record" });
        }
        Ok(())
    }
}

/// Decode a whole log held in memory: the header and every record, checking it is complete.
pub fn decode_all(bytes: &[u8]) -> Result<(Header, Vec<Record>), WireError> {
    let mut d = Decoder::new();
    d.push(bytes);
    let mut records = Vec::new();
    while let Some(r) = d.next_record()? {
        records.push(r);
    }
    d.finish()?;
    let header = d.header()?.ok_or(WireError::Truncated { offset: 0, what: "inside the header" })?;
    Ok((header, records))
}

/// Encode a header and records into one buffer.
pub fn encode_all(header: &Header, records: &[Record]) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::new();
    let mut e = Encoder::new(header, &mut out);
    for r in records {
        e.emit(r, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header { fingerprint: [7; 32], start_icount: 1000, start_hash: [9; 32] }
    }

    fn records() -> Vec<Record> {
        vec![
            Record::Warp { icount: 1000, ticks: 12345 },
            Record::Event { icount: 1500, event: InputEvent::Key { code: 30, down: true } },
            Record::Event { icount: 1500, event: InputEvent::UartRx(b"ls\n".to_vec()) },
            Record::Event { icount: 1600, event: InputEvent::PointerMove { x: 639, y: 479 } },
            Record::Event { icount: 1600, event: InputEvent::PointerButton { code: 0x110, down: false } },
            Record::Event { icount: 1600, event: InputEvent::Wheel { delta: -3 } },
            Record::Event { icount: 1700, event: InputEvent::NetRx(vec![0xff; 60]) },
            Record::Entropy { icount: 2000, bytes: vec![1, 2, 3, 4] },
            Record::DiskRead { icount: 2000, offset: 1 << 33, bytes: vec![5; 4096] },
            Record::Checkpoint { icount: 100_000_000, hash: [1; 32], full: None },
            Record::Checkpoint { icount: 200_000_000, hash: [2; 32], full: Some([3; 32]) },
            Record::End { icount: u64::MAX },
        ]
    }

    #[test]
    fn records_round_trip() {
        let bytes = encode_all(&header(), &records()).unwrap();
        let (h, r) = decode_all(&bytes).unwrap();
        assert_eq!(h, header());
        assert_eq!(r, records());
    }

    #[test]
    fn varints_round_trip_and_reject_overlong() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(get_varint(&b), Ok(Some((v, b.len()))));
            assert_eq!(get_varint(&b[..b.len() - 1]), Ok(None));
        }
        assert_eq!(get_varint(&[0xff; 10]), Err(BadVarint));
        assert_eq!(get_varint(&[0x80, 0x00]), Err(BadVarint));
        assert_eq!(get_varint(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]), Err(BadVarint));
        for v in [0, 1, -1, i32::MAX, i32::MIN] {
            assert_eq!(unzigzag(u32::try_from(zigzag(v)).unwrap()), v);
        }
    }

    #[test]
    fn a_warp_record_costs_a_few_bytes() {
        let mut out = Vec::new();
        let mut e = Encoder::new(&header(), &mut out);
        let before = out.len();
        e.emit(&Record::Warp { icount: 1_000_100, ticks: 10_000 }, &mut out).unwrap();
        assert!(out.len() - before <= 11, "{} bytes", out.len() - before);
    }

    #[test]
    fn every_cut_is_incomplete_never_a_record_too_many() {
        let bytes = encode_all(&header(), &records()).unwrap();
        for cut in 0..bytes.len() {
            let mut d = Decoder::new();
            d.push(&bytes[..cut]);
            let mut n = 0;
            while d.next_record().unwrap().is_some() {
                n += 1;
            }
            assert!(n < records().len());
            assert!(matches!(d.finish(), Err(WireError::Truncated { .. })), "cut at {cut}");
        }
    }

    #[test]
    fn byte_by_byte_arrival_gives_the_same_records() {
        let bytes = encode_all(&header(), &records()).unwrap();
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for b in &bytes {
            d.push(std::slice::from_ref(b));
            while let Some(r) = d.next_record().unwrap() {
                got.push(r);
            }
        }
        d.finish().unwrap();
        assert_eq!(got, records());
    }

    #[test]
    fn every_flipped_bit_is_an_error() {
        let bytes = encode_all(&header(), &records()).unwrap();
        for i in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[i / 8] ^= 1 << (i % 8);
            assert!(decode_all(&b).is_err(), "bit {i} flipped went unnoticed");
        }
    }

    #[test]
    fn swapped_frames_fail_the_checksum() {
        let h = header();
        let a = Record::Event { icount: 2000, event: InputEvent::Key { code: 1, down: true } };
        let b = Record::Event { icount: 2000, event: InputEvent::Key { code: 2, down: true } };
        let mut out = Vec::new();
        let mut e = Encoder::new(&h, &mut out);
        e.emit(&a, &mut out).unwrap();
        let split = out.len();
        e.emit(&b, &mut out).unwrap();
        let mut swapped = out[..HEADER_LEN].to_vec();
        swapped.extend_from_slice(&out[split..]);
        swapped.extend_from_slice(&out[HEADER_LEN..split]);
        let mut d = Decoder::new();
        d.push(&swapped);
        assert!(matches!(d.next_record(), Err(WireError::FrameChecksum { frame: 0, .. })));
    }

    #[test]
    fn another_version_is_refused_by_number() {
        let mut bytes = encode_all(&header(), &records()).unwrap();
        bytes[8] = 1;
        assert_eq!(decode_all(&bytes), Err(WireError::Version { found: 1, supported: VERSION }));
        assert_eq!(decode_all(b"GARBAGE!and more"), Err(WireError::BadMagic));
    }

    #[test]
    fn records_after_end_and_backwards_records_are_refused() {
        let bytes = encode_all(&header(), &[Record::End { icount: 5000 }, Record::End { icount: 5000 }]).unwrap();
        assert!(matches!(decode_all(&bytes), Err(WireError::AfterEnd { frame: 1, .. })));
        let r = encode_all(&header(), &[Record::End { icount: 5 }]);
        assert_eq!(r, Err(WireError::Backwards { icount: 5, previous: 1000 }));
    }
}
