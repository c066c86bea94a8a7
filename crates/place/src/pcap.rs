//! Classic pcap files (wire format only): a reader that turns packets into per-window flow
//! records for one desktop, and a small writer used by tests and for fuzz seeds.
//!
//! Supported: the classic format in either byte order with micro- or nanosecond timestamps;
//! link types Ethernet (1, with 802.1Q tags) and raw IP (101, 228, 229); IPv4 and IPv6 (no
//! extension headers) carrying TCP or UDP. Other packets are counted and skipped. Bytes are the
//! packet's original length on the wire.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::fingerprint::{FlowKey, FlowRecord};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PcapError {
    #[error("pcap file too short for its global header ({len} bytes, need 24)")]
    TooShort { len: usize },
    #[error("not a pcap file: magic {magic:#010x}")]
    BadMagic { magic: u32 },
    #[error("pcap link type {linktype} not supported (Ethernet 1 or raw IP 101/228/229)")]
    LinkType { linktype: u32 },
    #[error("pcap record {index} at byte {offset} is truncated (needs {need} bytes, {left} left)")]
    Truncated {
        index: usize,
        offset: usize,
        need: usize,
        left: usize,
    },
    #[error("pcap record {index} at byte {offset} claims {caplen} captured bytes (limit {limit})")]
    CapLen {
        index: usize,
        offset: usize,
        caplen: u32,
        limit: u32,
    },
}

/// A transport-layer packet seen in a capture.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub ts_s: f64,
    pub proto: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub src_port: u16,
    pub dst_port: u16,
    /// Original length on the wire.
    pub wire_len: u32,
}

/// The packets of a capture, plus how many records were skipped (not TCP/UDP over IP).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Capture {
    pub packets: Vec<Packet>,
    pub skipped: usize,
}

const MAX_CAPLEN: u32 = 256 * 1024;

fn u16be(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Parses a whole pcap file.
pub fn parse(data: &[u8]) -> Result<Capture, PcapError> {
    if data.len() < 24 {
        return Err(PcapError::TooShort { len: data.len() });
    }
    let magic_le = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
    let (le, nanos) = match magic_le {
        0xa1b2_c3d4 => (true, false),
        0xa1b2_3c4d => (true, true),
        0xd4c3_b2a1 => (false, false),
        0x4d3c_b2a1 => (false, true),
        magic => return Err(PcapError::BadMagic { magic }),
    };
    let rd32 = |at: usize| {
        let b = [data[at], data[at + 1], data[at + 2], data[at + 3]];
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let linktype = rd32(20) & 0x0fff_ffff;
    if !matches!(linktype, 1 | 101 | 228 | 229) {
        return Err(PcapError::LinkType { linktype });
    }
    let mut cap = Capture::default();
    let mut off = 24;
    let mut index = 0;
    while off < data.len() {
        let left = data.len() - off;
        if left < 16 {
            return Err(PcapError::Truncated {
                index,
                offset: off,
                need: 16,
                left,
            });
        }
        let (sec, frac, caplen, origlen) =
            (rd32(off), rd32(off + 4), rd32(off + 8), rd32(off + 12));
        if caplen > MAX_CAPLEN {
            return Err(PcapError::CapLen {
                index,
                offset: off,
                caplen,
                limit: MAX_CAPLEN,
            });
        }
        let caplen_us = caplen as usize;
        if left - 16 < caplen_us {
            return Err(PcapError::Truncated {
                index,
                offset: off,
                need: 16 + caplen_us,
                left,
            });
        }
        let body = &data[off + 16..off + 16 + caplen_us];
        let ts_s = f64::from(sec) + f64::from(frac) / if nanos { 1e9 } else { 1e6 };
        match decode(linktype, body) {
            Some((proto, src, dst, src_port, dst_port)) => cap.packets.push(Packet {
                ts_s,
                proto,
                src,
                dst,
                src_port,
                dst_port,
                wire_len: origlen.max(caplen),
            }),
            None => cap.skipped += 1,
        }
        off += 16 + caplen_us;
        index += 1;
    }
    Ok(cap)
}

type Decoded = (u8, IpAddr, IpAddr, u16, u16);

fn decode(linktype: u32, b: &[u8]) -> Option<Decoded> {
    let ip = match linktype {
        1 => {
            let mut et = u16be(b, 12)?;
            let mut at = 14;
            while et == 0x8100 || et == 0x88a8 {
                et = u16be(b, at + 2)?;
                at += 4;
            }
            match et {
                0x0800 | 0x86dd => b.get(at..)?,
                _ => return None,
            }
        }
        228 => return decode_ip(b, Some(4)),
        229 => return decode_ip(b, Some(6)),
        _ => b,
    };
    decode_ip(ip, None)
}

fn decode_ip(b: &[u8], want: Option<u8>) -> Option<Decoded> {
    let version = b.first()? >> 4;
    if want.is_some_and(|w| w != version) {
        return None;
    }
    let (proto, src, dst, l4) = match version {
        4 => {
            let ihl = usize::from(b[0] & 0x0f) * 4;
            if ihl < 20 {
                return None;
            }
            // Only first fragments carry ports.
            let frag = u16be(b, 6)? & 0x1fff;
            if frag != 0 {
                return None;
            }
            let s: [u8; 4] = b.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = b.get(16..20)?.try_into().ok()?;
            (b[9], IpAddr::from(s), IpAddr::from(d), b.get(ihl..)?)
        }
        6 => {
            let s: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = b.get(24..40)?.try_into().ok()?;
            (*b.get(6)?, IpAddr::from(s), IpAddr::from(d), b.get(40..)?)
        }
        _ => return None,
    };
    if proto != 6 && proto != 17 {
        return None;
    }
    Some((proto, src, dst, u16be(l4, 0)?, u16be(l4, 2)?))
}

/// Groups the packets to or from `desktop` into flow records per window of `window_s` seconds,
/// windows counted from `start_s`. Returns `(window index, records)` for windows with traffic,
/// in order; records within a window are ordered by flow key.
pub fn flows_by_window(
    cap: &Capture,
    desktop: IpAddr,
    start_s: f64,
    window_s: f64,
) -> Vec<(u64, Vec<FlowRecord>)> {
    let mut windows: BTreeMap<u64, BTreeMap<FlowKey, FlowRecord>> = BTreeMap::new();
    for p in &cap.packets {
        let out = p.src == desktop;
        if !out && p.dst != desktop {
            continue;
        }
        let rel = p.ts_s - start_s;
        if rel.is_nan() || rel < 0.0 || window_s.is_nan() || window_s <= 0.0 {
            continue;
        }
        // Saturating float-to-int conversion: the window index of a non-negative time.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let w = (rel / window_s).floor() as u64;
        let key = if out {
            FlowKey {
                proto: p.proto,
                local_ip: p.src,
                local_port: p.src_port,
                remote_ip: p.dst,
                remote_port: p.dst_port,
            }
        } else {
            FlowKey {
                proto: p.proto,
                local_ip: p.dst,
                local_port: p.dst_port,
                remote_ip: p.src,
                remote_port: p.src_port,
            }
        };
        let r = windows
            .entry(w)
            .or_default()
            .entry(key.clone())
            .or_insert_with(|| FlowRecord {
                key,
                bytes_out: 0,
                bytes_in: 0,
                packets_out: 0,
                packets_in: 0,
                first_s: p.ts_s,
                last_s: p.ts_s,
            });
        if out {
            r.bytes_out += u64::from(p.wire_len);
            r.packets_out += 1;
        } else {
            r.bytes_in += u64::from(p.wire_len);
            r.packets_in += 1;
        }
        r.first_s = r.first_s.min(p.ts_s);
        r.last_s = r.last_s.max(p.ts_s);
    }
    windows
        .into_iter()
        .map(|(w, m)| (w, m.into_values().collect()))
        .collect()
}

/// Writes classic little-endian microsecond pcap files with Ethernet framing.
#[derive(Debug, Clone, Default)]
pub struct PcapWriter {
    buf: Vec<u8>,
}

impl PcapWriter {
    pub fn new() -> Self {
        let mut buf = Vec::new();
        buf.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&0i32.to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        buf.extend_from_slice(&65535u32.to_le_bytes());
        buf.extend_from_slice(&1u32.to_le_bytes());
        PcapWriter { buf }
    }

    /// Appends an Ethernet/IPv4/TCP-or-UDP packet with `payload` zero bytes of payload, captured
    /// whole. `proto` is 6 (TCP) or 17 (UDP); anything else is written as UDP.
    #[allow(clippy::too_many_arguments)]
    pub fn packet(
        &mut self,
        ts_us: u64,
        proto: u8,
        src: [u8; 4],
        src_port: u16,
        dst: [u8; 4],
        dst_port: u16,
        payload: u16,
    ) {
        let tcp = proto == 6;
        let l4_len: u16 = if tcp { 20 } else { 8 };
        let ip_len = 20 + l4_len + payload;
        let mut p = Vec::with_capacity(14 + usize::from(ip_len));
        p.extend_from_slice(&[0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]);
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&ip_len.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0x40, 0, 64, if tcp { 6 } else { 17 }, 0, 0]);
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&src_port.to_be_bytes());
        p.extend_from_slice(&dst_port.to_be_bytes());
        if tcp {
            p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        } else {
            p.extend_from_slice(&(8 + payload).to_be_bytes());
            p.extend_from_slice(&[0, 0]);
        }
        p.resize(14 + usize::from(ip_len), 0);
        self.record(ts_us, &p);
    }

    /// Appends one raw record.
    pub fn record(&mut self, ts_us: u64, bytes: &[u8]) {
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        let sec = u32::try_from(ts_us / 1_000_000).unwrap_or(u32::MAX);
        let usec = u32::try_from(ts_us % 1_000_000).unwrap_or(0);
        for x in [sec, usec, len, len] {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
        self.buf.extend_from_slice(bytes);
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_tcp_and_udp() {
        let mut w = PcapWriter::new();
        w.packet(
            1_500_000,
            6,
            [10, 0, 0, 2],
            5900,
            [10, 0, 0, 9],
            40000,
            1000,
        );
        w.packet(2_000_001, 17, [10, 0, 0, 9], 3478, [10, 0, 0, 2], 5000, 100);
        w.record(2_100_000, &[0u8; 20]); // not IP: skipped
        let cap = parse(&w.finish()).unwrap();
        assert_eq!(cap.skipped, 1);
        assert_eq!(cap.packets.len(), 2);
        let p = &cap.packets[0];
        assert_eq!(
            (p.proto, p.src_port, p.dst_port, p.wire_len),
            (6, 5900, 40000, 14 + 20 + 20 + 1000)
        );
        assert!((p.ts_s - 1.5).abs() < 1e-9);
        assert_eq!(cap.packets[1].proto, 17);
        assert_eq!(cap.packets[1].dst, IpAddr::from([10, 0, 0, 2]));
    }

    #[test]
    fn errors_say_where() {
        assert_eq!(parse(&[0; 10]), Err(PcapError::TooShort { len: 10 }));
        assert!(matches!(
            parse(&[0; 24]),
            Err(PcapError::BadMagic { magic: 0 })
        ));
        let mut w = PcapWriter::new();
        w.packet(0, 6, [1, 1, 1, 1], 1, [2, 2, 2, 2], 2, 10);
        let mut bytes = w.finish();
        bytes.truncate(bytes.len() - 3);
        assert!(matches!(
            parse(&bytes),
            Err(PcapError::Truncated {
                index: 0,
                offset: 24,
                ..
            })
        ));
    }

    #[test]
    fn windows_split_flows_by_direction_and_time() {
        let mut w = PcapWriter::new();
        let d = [10, 0, 0, 2];
        w.packet(0, 6, d, 5900, [10, 0, 0, 9], 40000, 100);
        w.packet(500_000, 6, [10, 0, 0, 9], 40000, d, 5900, 10);
        w.packet(1_200_000, 6, d, 5900, [10, 0, 0, 9], 40000, 100);
        w.packet(1_300_000, 6, [9, 9, 9, 9], 1, [8, 8, 8, 8], 2, 100); // not the desktop's
        let cap = parse(&w.finish()).unwrap();
        let wins = flows_by_window(&cap, IpAddr::from(d), 0.0, 1.0);
        assert_eq!(wins.len(), 2);
        assert_eq!(wins[0].0, 0);
        let r = &wins[0].1[0];
        assert_eq!(
            (r.packets_out, r.packets_in, r.key.local_port),
            (1, 1, 5900)
        );
        assert_eq!(r.bytes_out, 154);
        assert_eq!(wins[1].1[0].packets_out, 1);
    }
}
