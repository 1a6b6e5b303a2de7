//! The memory map and 8-byte atomic accesses into it (with `hwcrc`, the only `unsafe` of the
//! crate).
//!
//! Every access to the mapped file goes through [`Map::load`] / [`Map::store`] on 8-byte
//! aligned offsets, as `AtomicU64` operations. Another process (a `tandem leases` reader, or a
//! writer while we read) may touch the same pages at any time, so plain references into the map
//! would be data races; aligned atomic words cannot tear, which is what the index slots rely on
//! (a slot is always either its old or its new value).

use std::fs::File;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use memmap2::{Mmap, MmapMut, MmapOptions};

use crate::record::{RECORD_SIZE, RecordBytes};

/// Keeps the mapping alive; never read directly.
#[derive(Debug)]
enum Keep {
    Rw(MmapMut),
    Ro(#[expect(dead_code, reason = "owns the mapping that `ptr` points into")] Mmap),
}

/// A shared mapping of a whole store file, accessed as 8-byte words.
#[derive(Debug)]
pub(crate) struct Map {
    ptr: *mut u8,
    len: usize,
    writable: bool,
    keep: Keep,
}

impl Map {
    /// Maps `file` read-write, `MAP_SHARED`.
    pub(crate) fn rw(file: &File, len: usize) -> io::Result<Self> {
        // SAFETY: the mapping is MAP_SHARED over a file that this process holds an exclusive
        // lock on (`File::try_lock`); other processes only map it read-only. The file is never
        // truncated while mapped. All accesses go through aligned atomics (see module docs), so
        // concurrent modification by a reader process cannot cause UB on our side.
        let mut m = unsafe { MmapOptions::new().len(len).map_mut(file)? };
        let ptr = m.as_mut_ptr();
        Ok(Self {
            ptr,
            len: m.len(),
            writable: true,
            keep: Keep::Rw(m),
        })
    }

    /// Maps `file` read-only, `MAP_SHARED` (sees a concurrent writer's updates).
    pub(crate) fn ro(file: &File, len: usize) -> io::Result<Self> {
        // SAFETY: read-only MAP_SHARED mapping; a concurrent writer process may change the
        // bytes, which is why every read is an aligned atomic load (see module docs) and every
        // record read is checked by CRC. The writer never shrinks the file.
        let m = unsafe { MmapOptions::new().len(len).map(file)? };
        let ptr = m.as_ptr().cast_mut();
        Ok(Self {
            ptr,
            len: m.len(),
            writable: false,
            keep: Keep::Ro(m),
        })
    }

    fn word(&self, off: usize) -> &AtomicU64 {
        assert!(
            off.is_multiple_of(8) && off.checked_add(8).is_some_and(|e| e <= self.len),
            "map access out of bounds or unaligned: {off}"
        );
        // SAFETY: `off` is 8-aligned and in bounds (checked above) and the mapping base is
        // page-aligned, so the pointer is valid and aligned for an AtomicU64 for as long as
        // `self` (which owns the mapping) lives. AtomicU64 has the same layout as u64, and
        // 8-byte atomic loads from a read-only mapping are allowed on the platforms we support
        // (std::sync::atomic docs, "Atomic accesses to read-only memory").
        unsafe { &*(self.ptr.add(off).cast::<AtomicU64>()) }
    }

    /// Loads the little-endian u64 at `off` (8-aligned).
    pub(crate) fn load(&self, off: usize) -> u64 {
        u64::from_le(self.word(off).load(Ordering::Acquire))
    }

    /// Stores the little-endian u64 `v` at `off` (8-aligned). Panics on a read-only map (an
    /// internal bug: `Store` refuses writes on read-only stores first).
    pub(crate) fn store(&self, off: usize, v: u64) {
        assert!(self.writable, "store into a read-only map");
        self.word(off).store(v.to_le(), Ordering::Release);
    }

    /// Copies the record at `off` out of the map.
    pub(crate) fn read_record(&self, off: usize) -> RecordBytes {
        let mut r = [0u8; RECORD_SIZE];
        for (i, chunk) in r.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&self.load(off + i * 8).to_le_bytes());
        }
        r
    }

    /// Writes a record at `off`, word by word.
    pub(crate) fn write_record(&self, off: usize, r: &RecordBytes) {
        for (i, chunk) in r.chunks_exact(8).enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            self.store(off + i * 8, u64::from_le_bytes(w));
        }
    }

    /// `msync(MS_SYNC)` of the whole mapping (a no-op for a read-only map).
    pub(crate) fn flush(&self) -> io::Result<()> {
        match &self.keep {
            Keep::Rw(m) => m.flush(),
            Keep::Ro(_) => Ok(()),
        }
    }

    /// `msync(MS_SYNC)` of bytes `off..off + len` of the mapping (widened to whole pages; a
    /// no-op for a read-only map): only the dirty pages of that range are written.
    pub(crate) fn flush_range(&self, off: usize, len: usize) -> io::Result<()> {
        match &self.keep {
            Keep::Rw(m) => m.flush_range(off, len.min(self.len.saturating_sub(off))),
            Keep::Ro(_) => Ok(()),
        }
    }
}

// SAFETY: `Map` owns its mapping; the raw pointer is only dereferenced through `word`, as
// atomics, so sharing or moving it between threads is as safe as sharing `AtomicU64`s.
unsafe impl Send for Map {}
// SAFETY: see `Send`: every access is an atomic operation on an aligned word.
unsafe impl Sync for Map {}
