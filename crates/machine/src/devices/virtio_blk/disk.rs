use std::collections::BTreeMap;

/// Granularity of the copy-on-write overlay.
pub const OVERLAY_PAGE: usize = 4096;

/// Why the base image could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("read of {len} bytes at offset {offset} runs past the end of the {size}-byte image")]
    OutOfRange { offset: u64, len: usize, size: u64 },
    #[error("the environment did not serve {len} bytes at offset {offset} of the disk: {reason}")]
    Environment { offset: u64, len: usize, reason: String },
    #[error("reading {len} bytes at offset {offset} of the disk image")]
    Io {
        offset: u64,
        len: usize,
        #[source]
        source: std::io::Error,
    },
}

/// A read-only disk image. Implementations must return the same bytes for the same range every
/// time (the machine's determinism depends on it): the host opens files read-only and replicas
/// must hold identical images.
pub trait DiskBase: Send {
    /// Size in bytes.
    fn len(&self) -> u64;

    /// Whether the image is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fill `buf` from `offset`. The range lies inside the image (callers check).
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError>;

    /// True when the environment serves this base ([`crate::Environment::disk_read`]) and
    /// `read_at` is never called for guest requests. See [`EnvDisk`].
    fn served_by_environment(&self) -> bool {
        false
    }
}

/// A base image the machine does not hold: every read of it goes through
/// [`crate::Environment::disk_read`], at the instruction that makes it. This is the
/// *output-replayed disk*: a recorder logs what its environment read, a replayer answers from
/// the log, and the replaying side needs no image, only its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvDisk {
    /// Size of the image in bytes.
    pub len: u64,
}

impl DiskBase for EnvDisk {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        Err(DiskError::Environment { offset, len: buf.len(), reason: "read outside a request".into() })
    }

    fn served_by_environment(&self) -> bool {
        true
    }
}

/// A base image held in memory, for tests and small images.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemDisk(pub Vec<u8>);

impl DiskBase for MemDisk {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        let range = usize::try_from(offset)
            .ok()
            .and_then(|o| Some(o..o.checked_add(buf.len())?))
            .filter(|r| r.end <= self.0.len())
            .ok_or(DiskError::OutOfRange { offset, len: buf.len(), size: self.len() })?;
        buf.copy_from_slice(&self.0[range]);
        Ok(())
    }
}

/// The pages the guest has written, by page index (byte offset / [`OVERLAY_PAGE`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overlay {
    pub(super) pages: BTreeMap<u64, Box<[u8]>>,
}

impl Overlay {
    /// The page with index `index`, if the guest wrote it.
    pub fn page(&self, index: u64) -> Option<&[u8]> {
        self.pages.get(&index).map(|p| &p[..])
    }

    /// All written pages, in index order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.pages.iter().map(|(&i, p)| (i, &p[..]))
    }

    /// Number of written pages.
    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }
}
