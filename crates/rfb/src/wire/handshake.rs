//! Handshake values: ProtocolVersion (RFC 6143 §7.1.1), security types (§7.1.2), ServerInit (§7.3.2).

use super::{be16, be32, need, PixelFormat, WireError};

/// The version a client announced, as the 12-byte string `RFB xxx.yyy\n` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProtocolVersion {
    pub major: u16,
    pub minor: u16,
}

impl ProtocolVersion {
    pub const LEN: usize = 12;
    pub const V3_3: ProtocolVersion = ProtocolVersion { major: 3, minor: 3 };
    pub const V3_7: ProtocolVersion = ProtocolVersion { major: 3, minor: 7 };
    pub const V3_8: ProtocolVersion = ProtocolVersion { major: 3, minor: 8 };

    pub fn parse(buf: &[u8]) -> Result<ProtocolVersion, WireError> {
        need(buf, Self::LEN)?;
        let b = &buf[..Self::LEN];
        let digits = |s: &[u8]| -> Option<u16> {
            if s.iter().all(u8::is_ascii_digit) {
                s.iter().try_fold(0u16, |acc, d| acc.checked_mul(10)?.checked_add(u16::from(d - b'0')))
            } else {
                None
            }
        };
        match (&b[..4], digits(&b[4..7]), b[7], digits(&b[8..11]), b[11]) {
            (b"RFB ", Some(major), b'.', Some(minor), b'\n') => Ok(ProtocolVersion { major, minor }),
            _ => Err(WireError::Invalid {
                what: "ProtocolVersion",
                detail: format!("{:?} is not \"RFB xxx.yyy\\n\"", String::from_utf8_lossy(b)),
            }),
        }
    }

    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("RFB {:03}.{:03}\n", self.major % 1000, self.minor % 1000).as_bytes());
    }

    /// The version a server that speaks 3.3, 3.7 and 3.8 uses with a client that announced `self`:
    /// 3.8 for 3.8 and later 3.x (e.g. Apple's 3.889), 3.7 for 3.7, and 3.3 for everything else of
    /// major 3 (RFC 6143 §7.1.1: unknown 3.x below 3.7 is treated as 3.3). `None` for another major.
    pub fn negotiate(&self) -> Option<ProtocolVersion> {
        match (self.major, self.minor) {
            (3, m) if m >= 8 => Some(Self::V3_8),
            (3, 7) => Some(Self::V3_7),
            (3, _) => Some(Self::V3_3),
            _ => None,
        }
    }
}

/// A security type number (RFC 6143 §7.1.2); unknown numbers are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecurityType(pub u8);

impl SecurityType {
    pub const INVALID: SecurityType = SecurityType(0);
    pub const NONE: SecurityType = SecurityType(1);
    pub const VNC_AUTH: SecurityType = SecurityType(2);
}

/// ServerInit: framebuffer size, the server's pixel format and the desktop name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInit {
    pub width: u16,
    pub height: u16,
    pub pixel_format: PixelFormat,
    pub name: Vec<u8>,
}

impl ServerInit {
    pub fn emit(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.width.to_be_bytes());
        out.extend_from_slice(&self.height.to_be_bytes());
        self.pixel_format.emit(out);
        let n = u32::try_from(self.name.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&self.name);
    }

    /// Parses a ServerInit (used by test clients). Names over 64 KiB are refused.
    pub fn parse(buf: &[u8]) -> Result<(ServerInit, usize), WireError> {
        need(buf, 24)?;
        let n = usize::try_from(be32(buf, 20)).unwrap_or(usize::MAX);
        if n > 65536 {
            return Err(WireError::TooLong { what: "desktop name", len: n, max: 65536 });
        }
        need(buf, 24 + n)?;
        Ok((
            ServerInit {
                width: be16(buf, 0),
                height: be16(buf, 2),
                pixel_format: PixelFormat::parse(&buf[4..20])?,
                name: buf[24..24 + n].to_vec(),
            },
            24 + n,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let v = ProtocolVersion::parse(b"RFB 003.889\n").unwrap();
        assert_eq!(v, ProtocolVersion { major: 3, minor: 889 });
        assert_eq!(v.negotiate(), Some(ProtocolVersion::V3_8));
        assert_eq!(ProtocolVersion::parse(b"RFB 003.005\n").unwrap().negotiate(), Some(ProtocolVersion::V3_3));
        assert_eq!(ProtocolVersion::parse(b"RFB 004.000\n").unwrap().negotiate(), None);
        assert!(ProtocolVersion::parse(b"GET / HTTP/1").is_err());
        assert!(ProtocolVersion::parse(b"RFB 003.00x\n").is_err());
        let mut out = Vec::new();
        ProtocolVersion::V3_7.emit(&mut out);
        assert_eq!(out, b"RFB 003.007\n");
    }

    #[test]
    fn server_init_round_trip() {
        let si = ServerInit { width: 800, height: 600, pixel_format: PixelFormat::XRGB8888, name: b"doppel".to_vec() };
        let mut out = Vec::new();
        si.emit(&mut out);
        assert_eq!(ServerInit::parse(&out), Ok((si, out.len())));
    }
}
