//! A raw disk image file as the block device's read-only base ([`DiskBase`]).
//!
//! The file is opened read-only and read with positioned reads (`pread`), so the machine's
//! copy-on-write overlay is the only place guest writes go and the image can be shared by every
//! replica and by a recorder and its replayer. The machine's determinism assumes the file does not
//! change while it runs: keep images immutable (the size is checked at open and on every read).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use doppel_machine::devices::{DiskBase, DiskError};

/// Why a disk image could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DiskOpenError {
    #[error("cannot open disk image {path} read-only")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("disk image {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error("disk image {path} has {len} bytes, less than one 512-byte sector")]
    TooSmall { path: PathBuf, len: u64 },
}

/// A raw image file, read-only.
#[derive(Debug)]
pub struct FileDisk {
    file: File,
    path: PathBuf,
    len: u64,
}

impl FileDisk {
    /// Open `path` read-only. Its size in whole 512-byte sectors is what the guest sees.
    pub fn open(path: &Path) -> Result<FileDisk, DiskOpenError> {
        let file = File::open(path).map_err(|source| DiskOpenError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        let meta = file.metadata().map_err(|source| DiskOpenError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        if !meta.is_file() {
            return Err(DiskOpenError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let len = meta.len();
        if len < 512 {
            return Err(DiskOpenError::TooSmall {
                path: path.to_path_buf(),
                len,
            });
        }
        Ok(FileDisk {
            file,
            path: path.to_path_buf(),
            len,
        })
    }

    /// Where the image lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl DiskBase for FileDisk {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > self.len)
        {
            return Err(DiskError::OutOfRange {
                offset,
                len: buf.len(),
                size: self.len,
            });
        }
        // A file that shrank under us fails here with UnexpectedEof rather than reading zeros.
        self.file
            .read_exact_at(buf, offset)
            .map_err(|source| DiskError::Io {
                offset,
                len: buf.len(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp(name: &str, bytes: &[u8]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("doppel-disk-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(bytes)
            .unwrap();
        path
    }

    #[test]
    fn reads_ranges_and_refuses_out_of_range() {
        let data: Vec<u8> = (0..4096u32).map(|i| (i % 253) as u8).collect();
        let path = temp("ok.img", &data);
        let mut d = FileDisk::open(&path).unwrap();
        assert_eq!(d.len(), 4096);
        let mut buf = [0u8; 100];
        d.read_at(1000, &mut buf).unwrap();
        assert_eq!(buf[..], data[1000..1100]);
        assert!(matches!(
            d.read_at(4000, &mut buf),
            Err(DiskError::OutOfRange { offset: 4000, .. })
        ));
        assert!(matches!(
            d.read_at(u64::MAX, &mut buf),
            Err(DiskError::OutOfRange { .. })
        ));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn the_machine_serves_it_as_a_block_device_base() {
        use doppel_machine::devices::{Devices, DevicesConfig};
        let path = temp("dev.img", &[9u8; 8192]);
        let d = FileDisk::open(&path).unwrap();
        let devices = Devices::new(DevicesConfig {
            disk: Some(Box::new(d)),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(devices.block().unwrap().capacity(), 16);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn clear_errors_for_missing_small_and_non_files() {
        let missing = std::env::temp_dir().join("doppel-no-such-disk.img");
        let e = FileDisk::open(&missing).unwrap_err();
        assert!(matches!(e, DiskOpenError::Open { .. }));
        assert!(e.to_string().contains("doppel-no-such-disk.img"), "{e}");
        let e = FileDisk::open(&std::env::temp_dir()).unwrap_err();
        assert!(matches!(e, DiskOpenError::NotAFile { .. }), "{e}");
        let small = temp("small.img", &[0; 100]);
        assert!(matches!(
            FileDisk::open(&small),
            Err(DiskOpenError::TooSmall { len: 100, .. })
        ));
        std::fs::remove_file(&small).unwrap();
    }
}
