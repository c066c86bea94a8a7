//! The replica's content-addressed page cache, on disk: one 4 KiB file per page, named by the
//! page's content address (see [`crate::proto::page_hash`]) under a two-hex-digit fan-out
//! directory. It persists across sessions, so a replica that reconnects (or a second replica on
//! the same machine) fetches only the pages it has never seen. Every read is checked against
//! its name, so a damaged file is a miss, never wrong guest memory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::proto::{page_hash, PageHash, PAGE};

/// Why the cache cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("cannot use the page cache at {path}")]
pub struct CacheError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// See the module docs.
#[derive(Debug)]
pub struct PageCache {
    dir: PathBuf,
    /// Pages found.
    pub hits: AtomicU64,
    /// Pages looked for and not found.
    pub misses: AtomicU64,
}

fn hex(h: &PageHash) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

impl PageCache {
    /// Open (creating) the cache in `dir`.
    pub fn open(dir: &Path) -> Result<PageCache, CacheError> {
        std::fs::create_dir_all(dir.join("pages")).map_err(|source| CacheError { path: dir.to_path_buf(), source })?;
        Ok(PageCache { dir: dir.to_path_buf(), hits: AtomicU64::new(0), misses: AtomicU64::new(0) })
    }

    fn path(&self, h: &PageHash) -> PathBuf {
        let name = hex(h);
        self.dir.join("pages").join(&name[..2]).join(name)
    }

    /// The page with content address `h`, if cached and intact.
    pub fn get(&self, h: &PageHash) -> Option<Box<[u8; PAGE]>> {
        let got = std::fs::read(self.path(h)).ok().filter(|d| d.len() == PAGE && page_hash(d) == *h).map(|d| {
            let mut b = Box::new([0u8; PAGE]);
            b.copy_from_slice(&d);
            b
        });
        let counter = if got.is_some() { &self.hits } else { &self.misses };
        counter.fetch_add(1, Ordering::Relaxed);
        got
    }

    /// Whether a page is cached (without reading it).
    pub fn contains(&self, h: &PageHash) -> bool {
        self.path(h).is_file()
    }

    /// Store a page (atomically: a partial write is never visible under the page's name).
    pub fn put(&self, data: &[u8; PAGE]) -> Result<(), CacheError> {
        let h = page_hash(data);
        let path = self.path(&h);
        if path.is_file() {
            return Ok(());
        }
        let err = |source| CacheError { path: path.clone(), source };
        let parent = path.parent().unwrap_or(&self.dir);
        std::fs::create_dir_all(parent).map_err(err)?;
        let tmp = parent.join(format!(".{}.{}", hex(&h), std::process::id()));
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(data).map_err(err)?;
        drop(f);
        std::fs::rename(&tmp, &path).map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_survive_reopening_and_damage_is_a_miss() {
        let dir = std::env::temp_dir().join(format!("doppel-cache-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let c = PageCache::open(&dir).unwrap();
        let page = Box::new([7u8; PAGE]);
        let h = page_hash(&page[..]);
        assert!(c.get(&h).is_none());
        c.put(&page).unwrap();
        let c2 = PageCache::open(&dir).unwrap();
        assert_eq!(c2.get(&h).unwrap(), page);
        std::fs::write(c2.path(&h), [8u8; PAGE]).unwrap();
        assert!(c2.get(&h).is_none(), "a damaged page must not be used");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
