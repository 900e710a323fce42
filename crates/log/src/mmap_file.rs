//! A file mapped read-write into memory, for the sparse indexes.
//!
//! Invariant: while a map exists, the file's length is the map's length; the file is only resized
//! after the map is dropped (truncating a mapped file makes later accesses fault with SIGBUS).
//! Nothing else writes these files: a partition directory belongs to one `Log` in one process.
//! Not thread-safe; owned by one index.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use memmap2::{Advice, MmapMut};

use crate::error::{IoContext, LogError};

#[derive(Debug)]
pub(crate) struct MmapFile {
    path: PathBuf,
    file: File,
    /// `None` when the file is empty (a zero-length map is an error on some platforms).
    mmap: Option<MmapMut>,
}

impl MmapFile {
    /// Opens `path` (creating it when `create`) and maps its current length.
    pub(crate) fn open(path: &Path, create: bool) -> Result<MmapFile, LogError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(create)
            .truncate(false)
            .open(path)
            .ctx(path, "open index")?;
        let mut f = MmapFile {
            path: path.to_path_buf(),
            file,
            mmap: None,
        };
        f.map()?;
        Ok(f)
    }

    fn map(&mut self) -> Result<(), LogError> {
        let len = self.file.metadata().ctx(&self.path, "stat index")?.len();
        self.mmap = if len == 0 {
            None
        } else {
            // SAFETY: the file belongs to this index alone (one Log per partition directory, one
            // process per log dir), so no one else truncates or writes it while it is mapped; this
            // type only calls set_len after dropping the map (see `resize`).
            let map = unsafe { MmapMut::map_mut(&self.file) }.ctx(&self.path, "mmap index")?;
            // An index is read by binary search and written one entry at a time, and the
            // active segment's file is mostly a preallocated hole. Without this hint a fault on
            // the first entry makes the kernel read ahead (zero-fill) up to the whole file
            // into the page cache: megabytes per partition for a few bytes of entries. With
            // it, a fault brings in only the page touched. Advisory: failure is harmless.
            let _ = map.advise(Advice::Random);
            Some(map)
        };
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn len(&self) -> usize {
        self.mmap.as_ref().map_or(0, |m| m.len())
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.mmap.as_deref().unwrap_or(&[])
    }

    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        self.mmap.as_deref_mut().unwrap_or(&mut [])
    }

    /// Unmaps, sets the file length, and maps again.
    pub(crate) fn resize(&mut self, new_len: usize) -> Result<(), LogError> {
        if new_len == self.len() && (new_len == 0 || self.mmap.is_some()) {
            return Ok(());
        }
        // Unmapping keeps the written pages in the page cache; durability is `flush`'s job (and
        // an index is rebuilt after an unclean shutdown anyway), so no msync here: on a
        // recovery of many partitions it would cost an inode write per index.
        drop(self.mmap.take());
        self.file
            .set_len(new_len as u64)
            .ctx(&self.path, "resize index")?;
        self.map()
    }

    /// Writes dirty pages and the file's metadata to disk.
    pub(crate) fn flush(&self) -> Result<(), LogError> {
        if let Some(m) = &self.mmap {
            m.flush().ctx(&self.path, "flush index")?;
        }
        self.file.sync_all().ctx(&self.path, "fsync index")
    }
}
