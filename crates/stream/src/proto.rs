//! The streaming protocol on the wire, sans-IO: typed messages, their encoding, and a decoder
//! that takes bytes as they arrive. Parsing is checked and total: any byte string gives
//! messages, a clear error, or "need more bytes", never a panic.
//!
//! # Framing
//!
//! ```text
//! frame: body length u32 LE (1..=MAX_BODY) | body = type u8, payload
//! ```
//!
//! All integers are little-endian, fixed width. Byte strings carry a u32 length.
//!
//! # Messages
//!
//! Client to host:
//!
//! | type | message  | payload                                                     |
//! |------|----------|-------------------------------------------------------------|
//! | 1    | Hello    | magic "DOPPELST", version u16                               |
//! | 2    | GetPages | count u32 (1..=1024), page index u32 × count                |
//! | 3    | GetBlocks| count u32 (1..=256), block index u64 × count                |
//! | 4    | Progress | icount u64 (how far the replica has replayed)               |
//!
//! Host to client:
//!
//! | type | message   | payload                                                                 |
//! |------|-----------|-------------------------------------------------------------------------|
//! | 16   | Welcome   | version u16, machine description (see [`MachineInfo`])                  |
//! | 17   | State     | icount u64, encoded `MachineState` (bytes)                              |
//! | 18   | PageTable | first page u32, count u32, presence bitmap (count/8 bytes, count % 8 == 0), hash [16] per set bit |
//! | 19   | TableEnd  | non-zero pages u32                                                      |
//! | 20   | Log       | bytes of the session's replay log (see `doppel_replay::wire`)           |
//! | 21   | Horizon   | icount u64, host clock ms u64                                           |
//! | 22   | FbHash    | icount u64, blake3 of the framebuffer [32]                              |
//! | 23   | Page      | page index u32, 4096 bytes                                              |
//! | 24   | Block     | block index u64, 4096 bytes                                             |
//! | 25   | Error     | reason (bytes, UTF-8)                                                   |
//!
//! # Session state machine
//!
//! ```text
//! client                              host
//!   Hello ─────────────────────────────▶  refuses another magic/version with Error, closes
//!        ◀──────────────────────────── Welcome
//!        ◀──────────────────────────── State (snapshot at icount S, taken for this client)
//!        ◀──────────────────────────── PageTable × n, TableEnd
//!        ◀──────────────────────────── Log (header at S, a checkpoint at S, records…)
//!        ◀──────────────────────────── Horizon / FbHash / Log … (live, until either side closes)
//!   GetPages / GetBlocks ───────────────▶  any time after TableEnd
//!        ◀──────────────────────────── Page / Block (pages as of the snapshot point S)
//!   Progress ───────────────────────────▶  any time (for the host's lag meter)
//! ```
//!
//! A page's hash in the table is the first 16 bytes of its blake3; a page absent from the table
//! is all zeros. A message the receiver does not expect in its state, or any unknown type, is a
//! protocol error and ends the session.
//!
//! # Versioning
//!
//! [`VERSION`] is bumped whenever any of this changes. The host answers a Hello of another
//! version with an Error naming both versions; a client refuses a Welcome of another version.

use doppel_machine::InstructionCount;

/// Magic bytes in Hello.
pub const MAGIC: [u8; 8] = *b"DOPPELST";
/// The protocol version this build speaks.
pub const VERSION: u16 = 1;
/// Largest frame body accepted.
pub const MAX_BODY: usize = (1 << 20) + 64;
/// Bytes in a page and in a disk block.
pub const PAGE: usize = 4096;
/// Most pages one GetPages may ask for.
pub const MAX_GET_PAGES: usize = 1024;
/// Most blocks one GetBlocks may ask for.
pub const MAX_GET_BLOCKS: usize = 256;
/// Most pages one PageTable message describes.
pub const TABLE_CHUNK: u32 = 16384;

/// A page's content address: the first 16 bytes of its blake3.
pub type PageHash = [u8; 16];

/// The content address of `data`.
pub fn page_hash(data: &[u8]) -> PageHash {
    let h = blake3::hash(data);
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.as_bytes()[..16]);
    out
}

/// Why bytes are not a valid stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtoError {
    #[error("frame at byte {offset}: body length {len} is outside 1..={MAX_BODY}")]
    FrameLength { offset: u64, len: u64 },
    #[error("frame at byte {offset}: unknown message type {kind}")]
    UnknownType { offset: u64, kind: u8 },
    #[error("frame at byte {offset}: {what} is truncated or malformed")]
    Malformed { offset: u64, what: &'static str },
    #[error("frame at byte {offset}: {len} trailing bytes after the {what} message")]
    Trailing { offset: u64, len: usize, what: &'static str },
    #[error("not a doppel stream (bad magic in Hello)")]
    BadMagic,
    #[error("stream protocol version {found}, this build speaks version {supported}")]
    Version { found: u16, supported: u16 },
    #[error("stream ended in the middle of a frame at byte {offset}")]
    Truncated { offset: u64 },
}

/// What a replica must know to build the host's machine (everything but the images, which the
/// snapshot replaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineInfo {
    /// `doppel_replay::fingerprint` of the host's configuration.
    pub fingerprint: [u8; 32],
    pub ram_size: u64,
    pub framebuffer: Option<(u32, u32)>,
    pub instructions_per_tick: u64,
    pub net: bool,
    pub input: bool,
    pub rng: bool,
    pub bare_metal: bool,
    pub mac: [u8; 6],
    /// Disk size in bytes (0: no disk).
    pub disk_len: u64,
}

/// One protocol message. See the module docs for the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Hello { version: u16 },
    GetPages { pages: Vec<u32> },
    GetBlocks { blocks: Vec<u64> },
    Progress { icount: InstructionCount },
    Welcome { version: u16, info: MachineInfo },
    State { icount: InstructionCount, state: Vec<u8> },
    PageTable { first: u32, count: u32, present: Vec<u8>, hashes: Vec<PageHash> },
    TableEnd { nonzero: u32 },
    Log { bytes: Vec<u8> },
    Horizon { icount: InstructionCount, host_ms: u64 },
    FbHash { icount: InstructionCount, hash: [u8; 32] },
    Page { index: u32, data: Box<[u8; PAGE]> },
    Block { index: u64, data: Box<[u8; PAGE]> },
    Error { reason: String },
}

impl Message {
    fn kind(&self) -> u8 {
        match self {
            Message::Hello { .. } => 1,
            Message::GetPages { .. } => 2,
            Message::GetBlocks { .. } => 3,
            Message::Progress { .. } => 4,
            Message::Welcome { .. } => 16,
            Message::State { .. } => 17,
            Message::PageTable { .. } => 18,
            Message::TableEnd { .. } => 19,
            Message::Log { .. } => 20,
            Message::Horizon { .. } => 21,
            Message::FbHash { .. } => 22,
            Message::Page { .. } => 23,
            Message::Block { .. } => 24,
            Message::Error { .. } => 25,
        }
    }

    /// The message's name, for errors and meters.
    pub fn name(&self) -> &'static str {
        name_of(self.kind())
    }

    /// Append the framed message to `out`. Panics never; a message too large for a frame (only
    /// a caller bug can make one: oversized Log or State) is split by the caller.
    pub fn emit(&self, out: &mut Vec<u8>) {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        out.push(self.kind());
        match self {
            Message::Hello { version } => {
                out.extend_from_slice(&MAGIC);
                out.extend_from_slice(&version.to_le_bytes());
            }
            Message::GetPages { pages } => {
                put_u32(out, len32(pages.len()));
                for p in pages {
                    put_u32(out, *p);
                }
            }
            Message::GetBlocks { blocks } => {
                put_u32(out, len32(blocks.len()));
                for b in blocks {
                    out.extend_from_slice(&b.to_le_bytes());
                }
            }
            Message::Progress { icount } => out.extend_from_slice(&icount.to_le_bytes()),
            Message::Welcome { version, info } => {
                out.extend_from_slice(&version.to_le_bytes());
                out.extend_from_slice(&info.fingerprint);
                out.extend_from_slice(&info.ram_size.to_le_bytes());
                let (w, h) = info.framebuffer.unwrap_or((0, 0));
                put_u32(out, w);
                put_u32(out, h);
                out.extend_from_slice(&info.instructions_per_tick.to_le_bytes());
                let flags = u8::from(info.net)
                    | u8::from(info.input) << 1
                    | u8::from(info.rng) << 2
                    | u8::from(info.bare_metal) << 3;
                out.push(flags);
                out.extend_from_slice(&info.mac);
                out.extend_from_slice(&info.disk_len.to_le_bytes());
            }
            Message::State { icount, state } => {
                out.extend_from_slice(&icount.to_le_bytes());
                put_bytes(out, state);
            }
            Message::PageTable { first, count, present, hashes } => {
                put_u32(out, *first);
                put_u32(out, *count);
                out.extend_from_slice(present);
                for h in hashes {
                    out.extend_from_slice(h);
                }
            }
            Message::TableEnd { nonzero } => put_u32(out, *nonzero),
            Message::Log { bytes } => put_bytes(out, bytes),
            Message::Horizon { icount, host_ms } => {
                out.extend_from_slice(&icount.to_le_bytes());
                out.extend_from_slice(&host_ms.to_le_bytes());
            }
            Message::FbHash { icount, hash } => {
                out.extend_from_slice(&icount.to_le_bytes());
                out.extend_from_slice(hash);
            }
            Message::Page { index, data } => {
                put_u32(out, *index);
                out.extend_from_slice(&data[..]);
            }
            Message::Block { index, data } => {
                out.extend_from_slice(&index.to_le_bytes());
                out.extend_from_slice(&data[..]);
            }
            Message::Error { reason } => put_bytes(out, reason.as_bytes()),
        }
        let body = len32(out.len() - at - 4);
        out[at..at + 4].copy_from_slice(&body.to_le_bytes());
    }

    /// The framed message as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.emit(&mut v);
        v
    }

    /// Parse one frame body (type and payload).
    pub fn parse(body: &[u8], offset: u64) -> Result<Message, ProtoError> {
        let Some((&kind, payload)) = body.split_first() else {
            return Err(ProtoError::FrameLength { offset, len: 0 });
        };
        let what = name_of(kind);
        let mut r = Reader { buf: payload, pos: 0, offset, what };
        let msg = match kind {
            1 => {
                let magic: [u8; 8] = r.array()?;
                if magic != MAGIC {
                    return Err(ProtoError::BadMagic);
                }
                Message::Hello { version: r.u16()? }
            }
            2 => {
                let n = r.count(MAX_GET_PAGES)?;
                Message::GetPages { pages: (0..n).map(|_| r.u32()).collect::<Result<_, _>>()? }
            }
            3 => {
                let n = r.count(MAX_GET_BLOCKS)?;
                Message::GetBlocks { blocks: (0..n).map(|_| r.u64()).collect::<Result<_, _>>()? }
            }
            4 => Message::Progress { icount: r.u64()? },
            16 => {
                let version = r.u16()?;
                let fingerprint = r.array()?;
                let ram_size = r.u64()?;
                let (w, h) = (r.u32()?, r.u32()?);
                let instructions_per_tick = r.u64()?;
                let flags = r.u8()?;
                if flags & !0x0f != 0 {
                    return Err(r.malformed());
                }
                let mac = r.array()?;
                let disk_len = r.u64()?;
                Message::Welcome {
                    version,
                    info: MachineInfo {
                        fingerprint,
                        ram_size,
                        framebuffer: (w != 0 || h != 0).then_some((w, h)),
                        instructions_per_tick,
                        net: flags & 1 != 0,
                        input: flags & 2 != 0,
                        rng: flags & 4 != 0,
                        bare_metal: flags & 8 != 0,
                        mac,
                        disk_len,
                    },
                }
            }
            17 => Message::State { icount: r.u64()?, state: r.bytes()?.to_vec() },
            18 => {
                let first = r.u32()?;
                let count = r.u32()?;
                if count == 0 || count > TABLE_CHUNK || count % 8 != 0 || first.checked_add(count).is_none() {
                    return Err(r.malformed());
                }
                let present = r.take(count as usize / 8)?.to_vec();
                let n: u32 = present.iter().map(|b| b.count_ones()).sum();
                let hashes = (0..n).map(|_| r.array()).collect::<Result<_, _>>()?;
                Message::PageTable { first, count, present, hashes }
            }
            19 => Message::TableEnd { nonzero: r.u32()? },
            20 => Message::Log { bytes: r.bytes()?.to_vec() },
            21 => Message::Horizon { icount: r.u64()?, host_ms: r.u64()? },
            22 => Message::FbHash { icount: r.u64()?, hash: r.array()? },
            23 => Message::Page { index: r.u32()?, data: Box::new(r.array()?) },
            24 => Message::Block { index: r.u64()?, data: Box::new(r.array()?) },
            25 => {
                let bytes = r.bytes()?;
                Message::Error { reason: String::from_utf8_lossy(bytes).into_owned() }
            }
            _ => return Err(ProtoError::UnknownType { offset, kind }),
        };
        if r.pos != r.buf.len() {
            return Err(ProtoError::Trailing { offset, len: r.buf.len() - r.pos, what });
        }
        Ok(msg)
    }
}

fn name_of(kind: u8) -> &'static str {
    match kind {
        1 => "Hello",
        2 => "GetPages",
        3 => "GetBlocks",
        4 => "Progress",
        16 => "Welcome",
        17 => "State",
        18 => "PageTable",
        19 => "TableEnd",
        20 => "Log",
        21 => "Horizon",
        22 => "FbHash",
        23 => "Page",
        24 => "Block",
        25 => "Error",
        _ => "unknown",
    }
}

/// Lengths in this protocol are bounded by [`MAX_BODY`], far below `u32::MAX`.
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_u32(out, len32(b.len()));
    out.extend_from_slice(b);
}

/// A checked cursor over a payload.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    offset: u64,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn malformed(&self) -> ProtoError {
        ProtoError::Malformed { offset: self.offset, what: self.what }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or_else(|| self.malformed())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], ProtoError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, ProtoError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, ProtoError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, ProtoError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, ProtoError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn bytes(&mut self) -> Result<&'a [u8], ProtoError> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn count(&mut self, max: usize) -> Result<usize, ProtoError> {
        let n = self.u32()? as usize;
        if n == 0 || n > max {
            return Err(self.malformed());
        }
        Ok(n)
    }
}

/// Splits a byte stream into messages. Push bytes as they arrive; [`Decoder::next_message`]
/// returns `Ok(None)` when it needs more. After an error the decoder stays failed.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    pos: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    failed: Option<ProtoError>,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Append received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes received but not yet parsed.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, ProtoError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let offset = self.base + self.pos as u64;
        let rest = &self.buf[self.pos..];
        let Some(len) = rest.get(..4) else { return Ok(None) };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len == 0 || len > MAX_BODY {
            let e = ProtoError::FrameLength { offset, len: len as u64 };
            self.failed = Some(e.clone());
            return Err(e);
        }
        let Some(body) = rest.get(4..4 + len) else { return Ok(None) };
        match Message::parse(body, offset) {
            Ok(m) => {
                self.pos += 4 + len;
                Ok(Some(m))
            }
            Err(e) => {
                self.failed = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The stream ended: an error if it ended inside a frame.
    pub fn finish(&self) -> Result<(), ProtoError> {
        if self.buffered() == 0 {
            Ok(())
        } else {
            Err(ProtoError::Truncated { offset: self.base + self.pos as u64 })
        }
    }
}

/// Build the PageTable messages for `hashes` (one entry per page, `None` for a zero page).
pub fn page_table(hashes: &[Option<PageHash>]) -> Vec<Message> {
    let mut out = Vec::new();
    let chunk = TABLE_CHUNK as usize;
    for (i, part) in hashes.chunks(chunk).enumerate() {
        let count = part.len().div_ceil(8) * 8;
        let mut present = vec![0u8; count / 8];
        let mut list = Vec::new();
        for (j, h) in part.iter().enumerate() {
            if let Some(h) = h {
                present[j / 8] |= 1 << (j % 8);
                list.push(*h);
            }
        }
        out.push(Message::PageTable { first: len32(i * chunk), count: len32(count), present, hashes: list });
    }
    out
}

/// Apply one PageTable message to `table` (one entry per page of RAM). Errors if it describes
/// pages beyond RAM.
pub fn apply_page_table(
    table: &mut [Option<PageHash>],
    first: u32,
    count: u32,
    present: &[u8],
    hashes: &[PageHash],
) -> Result<(), ProtoError> {
    let mut next = hashes.iter();
    for j in 0..count as usize {
        if present.get(j / 8).is_some_and(|b| b & (1 << (j % 8)) != 0) {
            let page = first as usize + j;
            let slot = table.get_mut(page).ok_or(ProtoError::Malformed { offset: 0, what: "PageTable (page beyond RAM)" })?;
            *slot = next.next().copied();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Message> {
        vec![
            Message::Hello { version: VERSION },
            Message::GetPages { pages: vec![0, 7, 65535] },
            Message::GetBlocks { blocks: vec![3, u64::MAX] },
            Message::Progress { icount: 123_456_789 },
            Message::Welcome {
                version: VERSION,
                info: MachineInfo {
                    fingerprint: [7; 32],
                    ram_size: 256 << 20,
                    framebuffer: Some((640, 480)),
                    instructions_per_tick: 10,
                    net: true,
                    input: true,
                    rng: false,
                    bare_metal: false,
                    mac: [1, 2, 3, 4, 5, 6],
                    disk_len: 1 << 30,
                },
            },
            Message::State { icount: 5, state: vec![1, 2, 3] },
            Message::PageTable { first: 16, count: 16, present: vec![0b101, 0x80], hashes: vec![[1; 16], [2; 16], [3; 16]] },
            Message::TableEnd { nonzero: 3 },
            Message::Log { bytes: b"DOPPELRR".to_vec() },
            Message::Horizon { icount: 99, host_ms: 12 },
            Message::FbHash { icount: 99, hash: [9; 32] },
            Message::Page { index: 4, data: Box::new([0xab; PAGE]) },
            Message::Block { index: 4, data: Box::new([0xcd; PAGE]) },
            Message::Error { reason: "too slow".into() },
        ]
    }

    #[test]
    fn every_message_round_trips_whole_and_byte_by_byte() {
        let mut stream = Vec::new();
        for m in samples() {
            m.emit(&mut stream);
        }
        let mut d = Decoder::new();
        d.push(&stream);
        let mut got = Vec::new();
        while let Some(m) = d.next_message().unwrap() {
            got.push(m);
        }
        assert_eq!(got, samples());
        d.finish().unwrap();
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for b in &stream {
            d.push(std::slice::from_ref(b));
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, samples());
    }

    #[test]
    fn every_cut_is_incomplete_never_a_wrong_message() {
        let stream = Message::Welcome { version: 1, info: match &samples()[4] {
            Message::Welcome { info, .. } => info.clone(),
            _ => unreachable!(),
        } }
        .to_bytes();
        for cut in 0..stream.len() {
            let mut d = Decoder::new();
            d.push(&stream[..cut]);
            assert_eq!(d.next_message().unwrap(), None);
            assert_eq!(d.finish().is_err(), cut > 0);
        }
    }

    #[test]
    fn bad_frames_are_named_errors() {
        let mut d = Decoder::new();
        d.push(&[0, 0, 0, 0]);
        assert!(matches!(d.next_message(), Err(ProtoError::FrameLength { len: 0, .. })));
        let mut d = Decoder::new();
        d.push(&[1, 0, 0, 0, 200]);
        assert!(matches!(d.next_message(), Err(ProtoError::UnknownType { kind: 200, .. })));
        assert!(d.next_message().is_err(), "a failed decoder stays failed");
        let mut hello = Message::Hello { version: 1 }.to_bytes();
        hello[5] = b'X';
        let mut d = Decoder::new();
        d.push(&hello);
        assert_eq!(d.next_message(), Err(ProtoError::BadMagic));
        // A GetPages whose count says more than the body holds.
        let mut d = Decoder::new();
        d.push(&[5, 0, 0, 0, 2, 9, 0, 0, 0]);
        assert!(matches!(d.next_message(), Err(ProtoError::Malformed { what: "GetPages", .. })));
        // Trailing bytes.
        let mut d = Decoder::new();
        d.push(&[10, 0, 0, 0, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert!(matches!(d.next_message(), Err(ProtoError::Trailing { len: 1, .. })));
        let mut d = Decoder::new();
        d.push(&u32::MAX.to_le_bytes());
        assert!(matches!(d.next_message(), Err(ProtoError::FrameLength { .. })));
    }

    #[test]
    fn page_tables_round_trip_through_messages() {
        let mut hashes = vec![None; 40_000];
        hashes[0] = Some([1; 16]);
        hashes[16_385] = Some([2; 16]);
        hashes[39_999] = Some([3; 16]);
        let msgs = page_table(&hashes);
        assert_eq!(msgs.len(), 3);
        let mut table = vec![None; 40_000];
        for m in msgs {
            let bytes = m.to_bytes();
            let mut d = Decoder::new();
            d.push(&bytes);
            let Some(Message::PageTable { first, count, present, hashes }) = d.next_message().unwrap() else {
                panic!("not a page table")
            };
            apply_page_table(&mut table, first, count, &present, &hashes).unwrap();
        }
        assert_eq!(table, hashes);
        let mut small = vec![None; 8];
        assert!(apply_page_table(&mut small, 8, 8, &[1], &[[1; 16]]).is_err());
    }
}
