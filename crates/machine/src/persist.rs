//! The one contract every stateful part of the machine saves and restores through.
//!
//! A part's [`Persist::State`] is a plain serde type; [`Persist::restore`] treats it as untrusted
//! input and validates every field (sizes, indices, addresses) before building the part, the way
//! virtio-queue only turns a `QueueState` into a queue through a checked conversion.
//!
//! A snapshot file frames the encoded states with a [`SnapshotHeader`]: magic, format version,
//! payload length (capped) and CRC-32 of the payload. A header with another version is refused with
//! a clear error rather than misread.

use serde::{de::DeserializeOwned, Serialize};

/// Save and restore one stateful part.
pub trait Persist: Sized {
    /// Everything needed to rebuild the part, as plain data.
    type State: Serialize + DeserializeOwned;
    /// What the part needs besides its state (host-side resources, configuration).
    type ConstructorArgs;
    /// Why a state was refused.
    type Error: std::error::Error;

    fn save(&self) -> Self::State;
    fn restore(args: Self::ConstructorArgs, state: &Self::State) -> Result<Self, Self::Error>;
}

/// Magic bytes opening a doppel snapshot.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"DOPPELSN";
/// Current snapshot format version. Bump it whenever any `State` type changes shape.
pub const SNAPSHOT_VERSION: u32 = 1;
/// Largest payload a snapshot may declare (RAM is stored beside it, page by page).
pub const SNAPSHOT_MAX_PAYLOAD: u64 = 64 << 20;

/// Why a snapshot could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("not a doppel snapshot (bad magic)")]
    BadMagic,
    #[error("snapshot format version {found}, this build reads version {expected}")]
    Version { found: u32, expected: u32 },
    #[error("snapshot truncated: header says {declared} payload bytes, {available} present")]
    Truncated { declared: u64, available: u64 },
    #[error("snapshot payload of {0} bytes exceeds the limit of {SNAPSHOT_MAX_PAYLOAD}")]
    TooLarge(u64),
    #[error("snapshot checksum mismatch (stored {stored:#010x}, computed {computed:#010x})")]
    Checksum { stored: u32, computed: u32 },
    #[error("snapshot payload does not decode: {0}")]
    Decode(String),
}

/// The fixed 24-byte header in front of a snapshot payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotHeader {
    pub version: u32,
    pub payload_len: u64,
    pub crc32: u32,
}

impl SnapshotHeader {
    pub const LEN: usize = 24;

    /// Frame `payload`.
    pub fn seal(payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN + payload.len());
        out.extend_from_slice(&SNAPSHOT_MAGIC);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        out.extend_from_slice(payload);
        out
    }

    /// Check the framing of `bytes` and return the payload.
    pub fn open(bytes: &[u8]) -> Result<&[u8], SnapshotError> {
        if bytes.len() < Self::LEN || bytes[..8] != SNAPSHOT_MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let word = |r: std::ops::Range<usize>| -> [u8; 8] {
            let mut w = [0; 8];
            w[..r.len()].copy_from_slice(&bytes[r]);
            w
        };
        let version = u32::from_le_bytes(word(8..12)[..4].try_into().unwrap_or_default());
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::Version {
                found: version,
                expected: SNAPSHOT_VERSION,
            });
        }
        let declared = u64::from_le_bytes(word(12..20));
        if declared > SNAPSHOT_MAX_PAYLOAD {
            return Err(SnapshotError::TooLarge(declared));
        }
        let stored = u32::from_le_bytes(word(20..24)[..4].try_into().unwrap_or_default());
        let payload = &bytes[Self::LEN..];
        if (payload.len() as u64) < declared {
            return Err(SnapshotError::Truncated {
                declared,
                available: payload.len() as u64,
            });
        }
        // `declared` fits: it is at most the payload length, which is a usize.
        let payload = &payload[..usize::try_from(declared).unwrap_or(payload.len())];
        let computed = crc32fast::hash(payload);
        if computed != stored {
            return Err(SnapshotError::Checksum { stored, computed });
        }
        Ok(payload)
    }
}

/// Encode a state with the snapshot codec.
pub fn encode<T: Serialize>(state: &T) -> Vec<u8> {
    // Serialising plain data into a Vec cannot fail.
    postcard::to_stdvec(state).unwrap_or_default()
}

/// Decode a state with the snapshot codec.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, SnapshotError> {
    postcard::from_bytes(bytes).map_err(|e| SnapshotError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let sealed = SnapshotHeader::seal(b"state");
        assert_eq!(SnapshotHeader::open(&sealed).unwrap(), b"state");
    }

    #[test]
    fn every_single_bit_flip_is_caught() {
        let sealed = SnapshotHeader::seal(b"some machine state");
        for i in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert!(
                SnapshotHeader::open(&bad).is_err(),
                "flip of bit {i} went unnoticed"
            );
        }
    }

    #[test]
    fn truncation_and_version_are_named() {
        let sealed = SnapshotHeader::seal(b"0123456789");
        assert!(matches!(
            SnapshotHeader::open(&sealed[..sealed.len() - 1]),
            Err(SnapshotError::Truncated {
                declared: 10,
                available: 9
            })
        ));
        let mut other = sealed.clone();
        other[8] = 9;
        assert!(matches!(
            SnapshotHeader::open(&other),
            Err(SnapshotError::Version { found: 9, .. })
        ));
    }
}
