//! Reading guest images (kernel, initramfs) from files, with errors that name the file.

use std::path::{Path, PathBuf};

/// Why an image could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what} {path}: cannot read")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {path}: file is empty")]
    Empty { what: &'static str, path: PathBuf },
    #[error("{what} {path}: {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        what: &'static str,
        path: PathBuf,
        size: u64,
        limit: u64,
    },
}

/// Read a whole image file of at most `limit` bytes; `what` names it in errors ("kernel").
pub fn read_image(what: &'static str, path: &Path, limit: u64) -> Result<Vec<u8>, ImageError> {
    let path_buf = || path.to_path_buf();
    let meta = std::fs::metadata(path).map_err(|source| ImageError::Read {
        what,
        path: path_buf(),
        source,
    })?;
    if meta.len() > limit {
        return Err(ImageError::TooLarge {
            what,
            path: path_buf(),
            size: meta.len(),
            limit,
        });
    }
    let bytes = std::fs::read(path).map_err(|source| ImageError::Read {
        what,
        path: path_buf(),
        source,
    })?;
    if bytes.is_empty() {
        return Err(ImageError::Empty {
            what,
            path: path_buf(),
        });
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_empty_and_oversized_files_are_named() {
        let dir = std::env::temp_dir().join(format!("doppel-images-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("nope");
        let err = read_image("kernel", &missing, 10).unwrap_err().to_string();
        assert!(err.contains("kernel") && err.contains("nope"), "{err}");

        let empty = dir.join("empty");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            read_image("initramfs", &empty, 10),
            Err(ImageError::Empty { .. })
        ));

        let big = dir.join("big");
        std::fs::write(&big, [0u8; 11]).unwrap();
        assert!(matches!(
            read_image("kernel", &big, 10),
            Err(ImageError::TooLarge { size: 11, .. })
        ));
        assert_eq!(read_image("kernel", &big, 11).unwrap().len(), 11);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
