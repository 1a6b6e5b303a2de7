//! Tandem's lease store (layer L2: OS-facing): every [`Binding`] in one memory-mapped file,
//! `<state-dir>/leases.tdb`, with persistent indexes, so that a restart is an `mmap` and a
//! header check (no parsing, no scan) and a killed process loses no committed lease.
//!
//! [`Store`] implements [`tandem_lease::LeaseStore`]. [`server_duid`] keeps the server's DUID.
//!
//! # File layout (format version 1, all integers little-endian)
//!
//! | offset               | size               | content                                   |
//! |----------------------|--------------------|-------------------------------------------|
//! | 0                    | 4096               | header (below)                            |
//! | 4096                 | 224 × capacity     | record array ([`record`] module docs)     |
//! | `addr_index_off`     | 8 × slots          | index (kind, address) → record            |
//! | `client_index_off`   | 8 × slots          | index (kind, DUID, IAID) → record         |
//! | `journal_off`        | 4096               | undo journal (one record)                 |
//!
//! `slots` = 2 × capacity, so the file takes 224 + 32 = 256 bytes per binding (plus 8 KiB).
//!
//! Header words (u64 each): 0 magic `b"TANDEMLS"`, 8 format version (1), 16 record size (224),
//! 24 capacity, 32 records offset, 40 address index offset, 48 client index offset, 56 slots
//! per index, 64 journal offset, 72 random file id (seeds the index hash), 80 CRC-32C of bytes
//! 0..80; then the mutable words: 128 `next_free` (records `0..next_free` are committed),
//! 136 clean-shutdown flag, 144 / 152 tombstones in the address / client index, 160 / 168
//! "index rebuild in progress" flags, 176 "indexes may be older on disk than the records"
//! (set by [`Store::sync_records`], cleared after a full [`Store::flush`]; a file written
//! before that word existed holds 0 there).
//!
//! Index slot (u64): `tag << 32 | (record index + 1)`, where `tag` is the high half of the key's
//! hash; 0 = empty, `u64::MAX` = tombstone. Open addressing with linear probing; the home slot
//! is derived from the low half of the hash. The hash is seeded by the file's random id, so a
//! client cannot precompute DUIDs that collide (it is a fast mixing hash, not a keyed PRF).
//! Every lookup verifies the key against the record, so stale or duplicate entries are harmless.
//!
//! # Writing and crash safety
//!
//! Every word of the map is written with an aligned 8-byte atomic store (never torn), and
//! `fence(SeqCst)` separates the steps below. Records are never deleted (the engine changes
//! their status instead), so slots are allocated append-only.
//!
//! * **New binding** at slot `n = next_free`: write the record; insert its address and client
//!   index entries; then store `next_free = n + 1` (the commit point).
//! * **Update** of record `i`: copy the old record into the journal (with `i` and a CRC); store
//!   the journal's marker `i + 1` (journal valid); overwrite record `i`; if its client changed,
//!   insert the new client entry (if absent) and tombstone the old one; clear the marker.
//!
//! [`LeaseStore::put`] returns only after the commit point, so a Reply sent after `put` is
//! backed by the mapped table.
//!
//! Invariants after [`Store::open`] (recovery makes them true again after a kill):
//!
//! 1. Records `0..next_free` are USED with a valid CRC (or set aside as corrupt, see below),
//!    and have an address index entry; each one with a non-empty DUID has a client index
//!    entry. Slots `next_free..` are EMPTY (zero).
//! 2. The journal marker is 0 (no update in flight).
//! 3. Index entries pointing at `next_free` or beyond, or at a record with another key, are
//!    ignored by lookups.
//!
//! Recovery at open, for a process killed at any instruction:
//!
//! * killed during a new binding: `next_free` was not bumped, so the put never returned and is
//!   discarded: slot `next_free` is zeroed (only that one slot can be dirty, puts are
//!   sequential). Index entries it may have got point at `next_free` (ignored by invariant 3;
//!   the next put reuses the slot and its key check rejects the stale entry).
//! * killed during an update (journal marker set): if record `i` fails its CRC it was torn, and
//!   the journal's copy is restored; otherwise it is entirely old or entirely new, both fine as
//!   the put never returned. Then the record's client entry is inserted if missing (the kill
//!   may have fallen between the record and the index write), and the marker is cleared.
//! * killed during an index rebuild: the in-progress flag is set, so the rebuild is redone.
//! * stopped (killed, or a power loss) after [`Store::sync_records`] and before the next full
//!   [`Store::flush`]: word 176 is set, so both indexes are rebuilt from the records (one pass
//!   over them: about a second per million bindings).
//!
//! * any stop without a clean close (kill, crash, power loss): every committed record's CRC is
//!   checked once ([`Recovery::corrupt_records`]; about 60 ms per million bindings with a warm
//!   page cache). A record that fails (after a power loss: records straddle pages, and pages
//!   reach the disk in any order) is set aside as absent, and the daemon logs its index.
//!
//! A torn record whose bytes happen to pass CRC-32C (probability 2^-32) is not detected.
//!
//! # Reads
//!
//! The writer checks the records' CRCs at recovery (above) and computes one on every write;
//! it reads records without the check, so a lookup costs the copy of one record and its field
//! decoding, not a CRC over 220 octets. After a clean close nothing is torn and the open
//! checks nothing (a 10 M-binding store opens in a fraction of a millisecond). Silent media
//! corruption of a cleanly closed file is not the store's to detect (as with any file the
//! server reads): [`Store::verify`] checks every CRC, and fields are range-checked on every
//! read, so no bytes decode to a panic. Readers ([`Store::open_read_only`]) check every
//! record's CRC, since they race the writer.
//!
//! # Durability
//!
//! * Process crash (kill -9, panic, OOM kill): nothing committed is lost, the kernel's page cache
//!   holds the mapped pages and writes them back.
//! * Kernel crash or power loss: changes made since the last [`Store::flush`] (`msync`) may be
//!   lost; the daemon flushes every [`StoreOptions::flush_interval`], so at most that much.
//!   (After power loss the file may even hold a mix of old and new pages; a full check is
//!   [`Store::verify`].)
//! * [`Store::sync_records`] makes the committed *records* survive a power loss at once (the
//!   failover partner's bindings before their BNDREPLY, RFC 8156 §7.5.2) without writing the
//!   indexes, which are derived from the records: the pages a batch of new bindings dirties
//!   are a few record pages and the header, not two random pages of each index per binding
//!   (for a batch of thousands, most of both indexes: 16 bytes of index per binding of
//!   capacity). The header flag above makes the next open rebuild the indexes if the
//!   process stopped before a full flush wrote them.
//!
//! # Capacity and versions
//!
//! The capacity is fixed when the file is created ([`StoreOptions::capacity`]). Opening with a
//! larger capacity than the file has is refused ([`StoreError::CapacityMismatch`]); growing a
//! file (offline copy into a larger one) is future work. A file of another format version is
//! refused with [`StoreError::Version`].
//!
//! # Readers
//!
//! [`Store::open_read_only`] maps the file read-only without locking, for `tandem leases` on a
//! running or stopped server. It copies each record out, checks its CRC and retries if a
//! concurrent write tore it; it never writes, so it does not recover (it falls back to the
//! journal's copy of a record that is mid-update). While the writer rebuilds an index (rare: many
//! client changes), a reader's client lookups may miss entries; `get` and `scan` are unaffected
//! unless the address index is the one being rebuilt.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use tandem_lease::{Binding, ClientKey, LeaseKind, LeaseStore};

#[cfg(target_arch = "x86_64")]
mod hwcrc;
mod map;
pub mod record;
pub mod server_duid;

use map::Map;
use record::{RECORD_SIZE, RecordBytes};

/// Name of the lease file inside the state directory.
pub const FILE_NAME: &str = "leases.tdb";
/// The file's magic bytes.
pub const MAGIC: [u8; 8] = *b"TANDEMLS";
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Default capacity (bindings).
pub const DEFAULT_CAPACITY: u64 = 1_048_576;
/// Largest capacity (record indexes must fit an index slot's 32 bits with room for the
/// tombstone, and the home-slot arithmetic needs fewer than 2^32 slots).
pub const MAX_CAPACITY: u64 = (1 << 31) - 1;

const HEADER_SIZE: u64 = 4096;
const JOURNAL_SIZE: u64 = 4096;

const H_MAGIC: usize = 0;
const H_VERSION: usize = 8;
const H_RECORD_SIZE: usize = 16;
const H_CAPACITY: usize = 24;
const H_RECORDS_OFF: usize = 32;
const H_ADDR_OFF: usize = 40;
const H_CLIENT_OFF: usize = 48;
const H_SLOTS: usize = 56;
const H_JOURNAL_OFF: usize = 64;
const H_FILE_ID: usize = 72;
const H_CRC: usize = 80;
const H_NEXT_FREE: usize = 128;
const H_CLEAN: usize = 136;
const H_TOMBS: [usize; 2] = [144, 152];
const H_REBUILDING: [usize; 2] = [160, 168];
const H_INDEX_STALE: usize = 176;

const J_MARKER: usize = 0;
const J_CRC: usize = 8;
const J_RECORD: usize = 16;

const SLOT_EMPTY: u64 = 0;
const SLOT_TOMB: u64 = u64::MAX;

/// How many times a reader re-copies a record that fails its CRC (a concurrent write).
const READ_RETRIES: usize = 8;

/// Options for [`Store::open`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Bindings the file holds; fixed at creation. Default [`DEFAULT_CAPACITY`].
    pub capacity: u64,
    /// How often the daemon should call [`Store::flush`] (`msync`): the window of changes a
    /// power loss may lose. Default 1 s.
    pub flush_interval: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            flush_interval: Duration::from_secs(1),
        }
    }
}

/// Why the store could not be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An I/O error on the lease file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Every record slot is used ([`StoreOptions::capacity`]).
    #[error("lease table full ({capacity} bindings)")]
    Full {
        /// The file's capacity.
        capacity: u64,
    },
    /// The configured capacity is larger than the file's.
    #[error(
        "{}: the lease file holds {file} bindings but a capacity of {requested} is configured; \
         growing a lease file is not supported yet (lower the capacity, or move the file away \
         to start a new one)",
        path.display()
    )]
    CapacityMismatch {
        /// The lease file.
        path: PathBuf,
        /// The file's capacity.
        file: u64,
        /// The requested capacity.
        requested: u64,
    },
    /// The capacity is 0 or above [`MAX_CAPACITY`].
    #[error("lease store capacity {0} out of range 1..={MAX_CAPACITY}")]
    BadCapacity(u64),
    /// The file has another format version.
    #[error(
        "{}: lease file format version {found}, this build reads version {expected}",
        path.display()
    )]
    Version {
        /// The lease file.
        path: PathBuf,
        /// The version in the file.
        found: u64,
        /// [`FORMAT_VERSION`].
        expected: u32,
    },
    /// The file does not start with [`MAGIC`].
    #[error("{}: not a Tandem lease file (bad magic)", path.display())]
    BadMagic {
        /// The file.
        path: PathBuf,
    },
    /// The header or the tables are inconsistent.
    #[error("{}: corrupt lease file: {what}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Another process has the file open for writing.
    #[error(
        "{}: locked by another process (is another tandem running with this state directory?)",
        path.display()
    )]
    Locked {
        /// The file.
        path: PathBuf,
    },
    /// A write on a store opened with [`Store::open_read_only`].
    #[error("lease store is open read-only")]
    ReadOnly,
}

/// What [`Store::open`] found and repaired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// The previous writer closed the file cleanly.
    pub clean_shutdown: bool,
    /// An update was in flight and its torn record was restored from the journal.
    pub journal_restored: bool,
    /// An update was in flight; its record was intact (old or new) and was kept.
    pub journal_kept: bool,
    /// A new binding was being written when the writer died and was discarded.
    pub orphan_discarded: bool,
    /// Indexes rebuilt (too many tombstones, or a rebuild had been interrupted).
    pub indexes_rebuilt: u8,
    /// Committed records that fail their CRC (torn by a power loss, or corrupted on disk):
    /// each is treated as absent from then on (its lease is lost to this server; the
    /// failover partner, if any, still has it). Their indexes, in ascending order, are in
    /// [`Store::corrupt_records`].
    pub corrupt_records: u64,
}

/// The result of [`Store::verify`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records `0..next_free`.
    pub records: u64,
    /// Records that fail their CRC or do not decode.
    pub bad_records: u64,
    /// Records the address index does not find.
    pub missing_addr_index: u64,
    /// Records with a client that the client index does not find.
    pub missing_client_index: u64,
    /// Records whose (kind, address) an earlier record already has.
    pub duplicate_keys: u64,
    /// Non-empty record slots among the first 64 at or beyond `next_free`.
    pub dirty_free_slots: u64,
}

impl VerifyReport {
    /// `true` if nothing is wrong.
    pub const fn is_ok(&self) -> bool {
        self.bad_records == 0
            && self.missing_addr_index == 0
            && self.missing_client_index == 0
            && self.duplicate_keys == 0
            && self.dirty_free_slots == 0
    }
}

/// Which index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    Addr = 0,
    Client = 1,
}

/// The lease store: see the crate docs.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
    map: Map,
    /// Held for the exclusive lock (writers) and to keep the file open.
    _file: File,
    /// Open for writing and recovered (false for readers).
    writable: bool,
    /// Every committed record's CRC was checked at open (and this process wrote the ones
    /// since), so reads skip it ("Reads" in the crate docs). False for readers.
    verified: bool,
    /// Committed records that failed their CRC at open, ascending (usually none).
    corrupt: Vec<u64>,
    capacity: u64,
    slots: u64,
    records_off: usize,
    index_off: [usize; 2],
    journal_off: usize,
    seed: u64,
    flush_interval: Duration,
    last_flush: Instant,
    recovery: Recovery,
}

struct Geometry {
    capacity: u64,
    slots: u64,
    records_off: u64,
    addr_off: u64,
    client_off: u64,
    journal_off: u64,
    total: u64,
}

impl Geometry {
    fn new(capacity: u64) -> Option<Self> {
        let slots = capacity.checked_mul(2)?;
        let records_off = HEADER_SIZE;
        let addr_off = records_off.checked_add(capacity.checked_mul(RECORD_SIZE as u64)?)?;
        let client_off = addr_off.checked_add(slots.checked_mul(8)?)?;
        let journal_off = client_off.checked_add(slots.checked_mul(8)?)?;
        let total = journal_off.checked_add(JOURNAL_SIZE)?;
        Some(Self {
            capacity,
            slots,
            records_off,
            addr_off,
            client_off,
            journal_off,
            total,
        })
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn to_usize(v: u64) -> usize {
    // The map covers every offset we compute, and it lives in our address space.
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// A random 64-bit value from the kernel (falls back to time and pid).
fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    if File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
    {
        return u64::from_le_bytes(b);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    mix(t ^ u64::from(std::process::id()).rotate_left(32))
}

/// The murmur3 / splitmix64 finaliser.
const fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// Seeded hash of `bytes` (stable across builds: it is part of the file format).
fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for chunk in bytes.chunks(8) {
        let mut w = [0u8; 8];
        w.get_mut(..chunk.len())
            .unwrap_or_default()
            .copy_from_slice(chunk);
        h = (h ^ u64::from_le_bytes(w))
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }
    mix(h)
}

fn addr_hash(seed: u64, kind: LeaseKind, addr: Ipv6Addr) -> u64 {
    let mut k = [0u8; 17];
    k[0] = kind as u8;
    k[1..].copy_from_slice(&addr.octets());
    hash_bytes(seed, &k)
}

fn client_hash(seed: u64, key: &ClientKey) -> u64 {
    let duid = key.duid.as_bytes();
    let mut k = [0u8; 5 + tandem_lease::MAX_DUID_LEN];
    k[0] = key.kind as u8;
    k[1..5].copy_from_slice(&key.iaid.to_le_bytes());
    let end = 5 + duid.len();
    if let Some(d) = k.get_mut(5..end) {
        d.copy_from_slice(duid);
    }
    hash_bytes(seed, k.get(..end).unwrap_or_default())
}

const fn slot_value(hash: u64, idx: u64) -> u64 {
    (hash & 0xffff_ffff_0000_0000) | (idx + 1)
}

impl Store {
    /// Opens (or creates) `<dir>/leases.tdb` for writing, recovering from a crash of the
    /// previous writer (see the crate docs). Takes an exclusive lock on the file.
    pub fn open(dir: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        Self::open_file(dir, FILE_NAME, options)
    }

    /// Opens (or creates) `<dir>/<name>` for writing, like [`Self::open`] does for
    /// [`FILE_NAME`]: a sharded server keeps one store file per shard in the same directory.
    pub fn open_file(dir: &Path, name: &str, options: StoreOptions) -> Result<Self, StoreError> {
        if options.capacity == 0 || options.capacity > MAX_CAPACITY {
            return Err(StoreError::BadCapacity(options.capacity));
        }
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(name);
        if !path.exists() {
            create_file(dir, name, &path, options.capacity)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(StoreError::Locked { path }),
            Err(fs::TryLockError::Error(e)) => return Err(StoreError::Io { path, source: e }),
        }
        // `writable` stays false until recovery is done, so that dropping the store on an
        // error below neither writes nor marks the file cleanly closed.
        let mut store = Self::map_file(path, file, true, options.flush_interval)?;
        if options.capacity > store.capacity {
            return Err(StoreError::CapacityMismatch {
                path: store.path.clone(),
                file: store.capacity,
                requested: options.capacity,
            });
        }
        store.recover()?;
        store.writable = true;
        Ok(store)
    }

    /// Opens `<dir>/leases.tdb` read-only (no lock, no recovery), for dumping the leases of a
    /// running or stopped server. [`LeaseStore::put`] fails with [`StoreError::ReadOnly`].
    pub fn open_read_only(dir: &Path) -> Result<Self, StoreError> {
        Self::open_file_read_only(dir, FILE_NAME)
    }

    /// Opens `<dir>/<name>` read-only, like [`Self::open_read_only`] does for [`FILE_NAME`].
    pub fn open_file_read_only(dir: &Path, name: &str) -> Result<Self, StoreError> {
        let path = dir.join(name);
        let file = File::open(&path).map_err(io_err(&path))?;
        Self::map_file(path, file, false, Duration::MAX)
    }

    fn map_file(
        path: PathBuf,
        file: File,
        rw: bool,
        flush_interval: Duration,
    ) -> Result<Self, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt {
            path: path.clone(),
            what,
        };
        let len = file.metadata().map_err(io_err(&path))?.len();
        if len < HEADER_SIZE {
            return Err(corrupt(format!(
                "file is {len} bytes, shorter than the header"
            )));
        }
        let map = if rw {
            Map::rw(&file, to_usize(len))
        } else {
            Map::ro(&file, to_usize(len))
        }
        .map_err(io_err(&path))?;
        if map.load(H_MAGIC).to_le_bytes() != MAGIC {
            return Err(StoreError::BadMagic { path });
        }
        let version = map.load(H_VERSION);
        if version != u64::from(FORMAT_VERSION) {
            return Err(StoreError::Version {
                path,
                found: version,
                expected: FORMAT_VERSION,
            });
        }
        if map.load(H_CRC) != u64::from(header_crc(&map)) {
            return Err(corrupt("header CRC mismatch".into()));
        }
        let record_size = map.load(H_RECORD_SIZE);
        if record_size != RECORD_SIZE as u64 {
            return Err(corrupt(format!(
                "record size {record_size}, expected {RECORD_SIZE}"
            )));
        }
        let capacity = map.load(H_CAPACITY);
        let g = Geometry::new(capacity)
            .filter(|_| (1..=MAX_CAPACITY).contains(&capacity))
            .ok_or_else(|| corrupt(format!("capacity {capacity} out of range")))?;
        let fields = [
            (H_RECORDS_OFF, g.records_off),
            (H_ADDR_OFF, g.addr_off),
            (H_CLIENT_OFF, g.client_off),
            (H_SLOTS, g.slots),
            (H_JOURNAL_OFF, g.journal_off),
        ];
        for (off, want) in fields {
            let got = map.load(off);
            if got != want {
                return Err(corrupt(format!(
                    "header word at {off} is {got}, expected {want}"
                )));
            }
        }
        if len < g.total {
            return Err(corrupt(format!(
                "file is {len} bytes, expected {}",
                g.total
            )));
        }
        let next_free = map.load(H_NEXT_FREE);
        if next_free > capacity {
            return Err(corrupt(format!(
                "next_free {next_free} > capacity {capacity}"
            )));
        }
        let seed = map.load(H_FILE_ID);
        Ok(Self {
            path,
            map,
            _file: file,
            writable: false,
            verified: false,
            corrupt: Vec::new(),
            capacity,
            slots: g.slots,
            records_off: to_usize(g.records_off),
            index_off: [to_usize(g.addr_off), to_usize(g.client_off)],
            journal_off: to_usize(g.journal_off),
            seed,
            flush_interval,
            last_flush: Instant::now(),
            recovery: Recovery::default(),
        })
    }

    /// What the last [`Store::open`] found and repaired.
    pub const fn recovery(&self) -> Recovery {
        self.recovery
    }

    /// The indexes of the committed records that failed their CRC at open (ascending; see
    /// [`Recovery::corrupt_records`]).
    pub fn corrupt_records(&self) -> &[u64] {
        &self.corrupt
    }

    /// The file's capacity (bindings).
    pub const fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Path of the lease file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `true` if [`StoreOptions::flush_interval`] has passed since the last [`Store::flush`].
    pub fn needs_flush(&self, now: Instant) -> bool {
        self.writable && now.saturating_duration_since(self.last_flush) >= self.flush_interval
    }

    /// Writes the mapped pages to disk (`msync(MS_SYNC)`), making every committed change
    /// survive a power loss, indexes included.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        self.map.flush().map_err(io_err(&self.path))?;
        self.last_flush = Instant::now();
        if self.writable && self.map.load(H_INDEX_STALE) != 0 {
            // The indexes on disk are as new as the records now. The cleared flag reaches
            // the disk with the next flush; until then the disk says "stale", which only
            // costs a rebuild (crate docs, "Durability").
            fence(Ordering::SeqCst);
            self.map.store(H_INDEX_STALE, 0);
        }
        Ok(())
    }

    /// Makes every committed record survive a power loss (`msync(MS_SYNC)` of the header and
    /// the records in use), without writing the indexes: a batch of new bindings dirties
    /// two random index pages each, up to most of both indexes, but only a few record pages
    /// (crate docs, "Durability"). The header notes that the indexes on disk may be older
    /// than the records until the next [`Store::flush`]; [`Store::open`] after a stop that
    /// left that note rebuilds them from the records.
    pub fn sync_records(&mut self) -> Result<(), StoreError> {
        if !self.writable {
            return Ok(());
        }
        self.map.store(H_INDEX_STALE, 1);
        fence(Ordering::SeqCst);
        let end = self.records_off + to_usize(self.next_free()) * RECORD_SIZE;
        self.map.flush_range(0, end).map_err(io_err(&self.path))
    }

    /// Flushes and marks the file cleanly closed; reports errors that `Drop` would swallow.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.close_inner()
    }

    fn close_inner(&mut self) -> Result<(), StoreError> {
        if self.writable {
            self.flush()?;
            self.map.store(H_CLEAN, 1);
            self.flush()?;
            self.writable = false;
        }
        Ok(())
    }

    fn next_free(&self) -> u64 {
        self.map.load(H_NEXT_FREE).min(self.capacity)
    }

    fn record_off(&self, idx: u64) -> usize {
        self.records_off + to_usize(idx) * RECORD_SIZE
    }

    fn slot_off(&self, table: Table, pos: u64) -> usize {
        self.index_off[table as usize] + to_usize(pos) * 8
    }

    fn home(&self, hash: u64) -> u64 {
        ((hash & 0xffff_ffff) * self.slots) >> 32
    }

    /// Reads record `idx`; readers retry torn copies and fall back to the journal.
    fn read(&self, idx: u64) -> Option<Binding> {
        let off = self.record_off(idx);
        if self.verified {
            if !self.corrupt.is_empty() && self.corrupt.binary_search(&idx).is_ok() {
                return None;
            }
            return record::decode_verified(&self.map.read_record(off)).ok();
        }
        let tries = if self.writable { 1 } else { READ_RETRIES };
        for _ in 0..tries {
            match record::decode(&self.map.read_record(off)) {
                Ok(b) => return Some(b),
                Err(record::DecodeError::BadCrc) => std::thread::yield_now(),
                Err(_) => return None,
            }
        }
        if self.writable {
            return None;
        }
        self.journal()
            .filter(|(i, _)| *i == idx)
            .and_then(|(_, r)| record::decode(&r).ok())
    }

    /// The journal's record, if its marker is set and its CRC holds.
    fn journal(&self) -> Option<(u64, RecordBytes)> {
        let marker = self.map.load(self.journal_off + J_MARKER);
        if marker == 0 {
            return None;
        }
        let r = self.map.read_record(self.journal_off + J_RECORD);
        (self.map.load(self.journal_off + J_CRC) == u64::from(journal_crc(marker, &r)))
            .then(|| (marker - 1, r))
    }

    /// Visits candidate record indexes for `hash` in `table` until `f` returns `true` (found)
    /// or an empty slot ends the chain. Returns the position of the accepted slot.
    fn probe(&self, table: Table, hash: u64, mut f: impl FnMut(u64) -> bool) -> Option<u64> {
        let tag = hash >> 32;
        let next_free = self.next_free();
        let mut pos = self.home(hash);
        for _ in 0..self.slots {
            let v = self.map.load(self.slot_off(table, pos));
            if v == SLOT_EMPTY {
                return None;
            }
            if v != SLOT_TOMB && v >> 32 == tag {
                let idx = (v & 0xffff_ffff) - 1;
                if idx < next_free && f(idx) {
                    return Some(pos);
                }
            }
            pos += 1;
            if pos == self.slots {
                pos = 0;
            }
        }
        None
    }

    /// Inserts `(hash, idx)` into `table` unless the same entry is already there.
    fn insert(&self, table: Table, hash: u64, idx: u64) -> Result<(), StoreError> {
        let want = slot_value(hash, idx);
        let mut pos = self.home(hash);
        let mut reuse = None;
        for _ in 0..self.slots {
            let off = self.slot_off(table, pos);
            let v = self.map.load(off);
            if v == want {
                return Ok(());
            }
            if v == SLOT_TOMB && reuse.is_none() {
                reuse = Some(off);
            }
            if v == SLOT_EMPTY {
                if reuse.is_none() {
                    self.map.store(off, want);
                    return Ok(());
                }
                break;
            }
            pos += 1;
            if pos == self.slots {
                pos = 0;
            }
        }
        if let Some(t) = reuse {
            self.map.store(t, want);
            let tombs = H_TOMBS[table as usize];
            self.map
                .store(tombs, self.map.load(tombs).saturating_sub(1));
            return Ok(());
        }
        Err(StoreError::Corrupt {
            path: self.path.clone(),
            what: format!("{table:?} index has no free slot"),
        })
    }

    /// Replaces the entry `(hash, idx)` in `table` by a tombstone, if present.
    fn remove(&self, table: Table, hash: u64, idx: u64) {
        let want = slot_value(hash, idx);
        let mut pos = self.home(hash);
        for _ in 0..self.slots {
            let off = self.slot_off(table, pos);
            let v = self.map.load(off);
            if v == SLOT_EMPTY {
                return;
            }
            if v == want {
                self.map.store(off, SLOT_TOMB);
                let tombs = H_TOMBS[table as usize];
                self.map.store(tombs, self.map.load(tombs) + 1);
                return;
            }
            pos += 1;
            if pos == self.slots {
                pos = 0;
            }
        }
    }

    fn find(&self, kind: LeaseKind, addr: Ipv6Addr) -> Option<(u64, Binding)> {
        let mut found = None;
        self.probe(Table::Addr, addr_hash(self.seed, kind, addr), |idx| {
            found = self
                .read(idx)
                .filter(|b| b.kind == kind && b.addr == addr)
                .map(|b| (idx, b));
            found.is_some()
        });
        found
    }

    fn index_record(&self, idx: u64, b: &Binding) -> Result<(), StoreError> {
        self.insert(Table::Addr, addr_hash(self.seed, b.kind, b.addr), idx)?;
        if !b.duid.is_empty() {
            self.insert(Table::Client, client_hash(self.seed, &b.client()), idx)?;
        }
        Ok(())
    }

    /// Crash recovery (crate docs, "Recovery at open").
    fn recover(&mut self) -> Result<(), StoreError> {
        self.recovery.clean_shutdown = self.map.load(H_CLEAN) == 1;
        self.map.store(H_CLEAN, 0);
        fence(Ordering::SeqCst);
        let next_free = self.next_free();
        // 1. An update in flight.
        if self.map.load(self.journal_off + J_MARKER) != 0 {
            if let Some((idx, old)) = self.journal().filter(|(i, _)| *i < next_free) {
                let off = self.record_off(idx);
                if !record::crc_ok(&self.map.read_record(off)) {
                    self.map.write_record(off, &old);
                    self.recovery.journal_restored = true;
                } else {
                    self.recovery.journal_kept = true;
                }
                fence(Ordering::SeqCst);
                if let Some(b) = self.read(idx) {
                    self.index_record(idx, &b)?;
                }
            }
            fence(Ordering::SeqCst);
            self.map.store(self.journal_off + J_MARKER, 0);
        }
        // 2. A new record that was never committed.
        if next_free < self.capacity {
            let off = self.record_off(next_free);
            if self.map.read_record(off) != [0; RECORD_SIZE] {
                self.map.write_record(off, &[0; RECORD_SIZE]);
                self.recovery.orphan_discarded = true;
            }
        }
        // 3. After a stop without a clean close, every committed record's CRC, once, so that
        // reads need not check it. A record that fails (torn by a power loss: records
        // straddle pages, and pages reach the disk in any order) is set aside as absent. A
        // clean close msynced everything, so no record is torn (crate docs, "Reads").
        for idx in (0..next_free).filter(|_| !self.recovery.clean_shutdown) {
            if !record::crc_ok(&self.map.read_record(self.record_off(idx))) {
                self.corrupt.push(idx);
            }
        }
        self.recovery.corrupt_records = self.corrupt.len() as u64;
        self.verified = true;
        // 4. Indexes with too many tombstones, whose rebuild was interrupted, or that may be
        // older than the records (`sync_records` since the last full flush: after a power
        // loss the records are on disk and index entries may not be). The flag stays set
        // until a full flush has written the rebuilt indexes.
        let stale = self.map.load(H_INDEX_STALE) != 0;
        for table in [Table::Addr, Table::Client] {
            if stale
                || self.map.load(H_REBUILDING[table as usize]) != 0
                || self.map.load(H_TOMBS[table as usize]) > self.slots / 4
            {
                self.rebuild(table)?;
                self.recovery.indexes_rebuilt += 1;
            }
        }
        fence(Ordering::SeqCst);
        Ok(())
    }

    /// Clears `table` and indexes every committed record again.
    fn rebuild(&self, table: Table) -> Result<(), StoreError> {
        self.map.store(H_REBUILDING[table as usize], 1);
        fence(Ordering::SeqCst);
        for pos in 0..self.slots {
            self.map.store(self.slot_off(table, pos), SLOT_EMPTY);
        }
        self.map.store(H_TOMBS[table as usize], 0);
        for idx in 0..self.next_free() {
            let Some(b) = self.read(idx) else { continue };
            match table {
                Table::Addr => {
                    self.insert(table, addr_hash(self.seed, b.kind, b.addr), idx)?;
                }
                Table::Client if !b.duid.is_empty() => {
                    self.insert(table, client_hash(self.seed, &b.client()), idx)?;
                }
                Table::Client => {}
            }
        }
        fence(Ordering::SeqCst);
        self.map.store(H_REBUILDING[table as usize], 0);
        Ok(())
    }

    /// Checks every committed record (CRC, decoding, unique key) and that both indexes find
    /// it, and that the free slots are empty. O(records); allocates a set of keys.
    pub fn verify(&self) -> VerifyReport {
        let mut rep = VerifyReport::default();
        let next_free = self.next_free();
        let mut keys = std::collections::HashSet::new();
        for idx in 0..next_free {
            rep.records += 1;
            let crc_ok = record::crc_ok(&self.map.read_record(self.record_off(idx)));
            let Some(b) = self.read(idx).filter(|_| crc_ok) else {
                rep.bad_records += 1;
                continue;
            };
            if !keys.insert((b.kind, u128::from(b.addr))) {
                rep.duplicate_keys += 1;
            }
            if self.find(b.kind, b.addr).map(|(i, _)| i) != Some(idx) {
                rep.missing_addr_index += 1;
            }
            if !b.duid.is_empty() {
                let key = b.client();
                let hit = self.probe(Table::Client, client_hash(self.seed, &key), |i| i == idx);
                if hit.is_none() {
                    rep.missing_client_index += 1;
                }
            }
        }
        for idx in next_free..self.capacity.min(next_free + 64) {
            if self.map.read_record(self.record_off(idx)) != [0; RECORD_SIZE] {
                rep.dirty_free_slots += 1;
            }
        }
        rep
    }

    fn put_inner(&mut self, b: &Binding) -> Result<(), StoreError> {
        if !self.writable {
            return Err(StoreError::ReadOnly);
        }
        let new = record::encode(b);
        if let Some((idx, old)) = self.find(b.kind, b.addr) {
            let off = self.record_off(idx);
            let old_bytes = self.map.read_record(off);
            if old_bytes == new {
                return Ok(());
            }
            // Undo journal: copy, then mark valid.
            let marker = idx + 1;
            self.map
                .write_record(self.journal_off + J_RECORD, &old_bytes);
            self.map.store(
                self.journal_off + J_CRC,
                u64::from(journal_crc(marker, &old_bytes)),
            );
            fence(Ordering::SeqCst);
            self.map.store(self.journal_off + J_MARKER, marker);
            fence(Ordering::SeqCst);
            self.map.write_record(off, &new);
            fence(Ordering::SeqCst);
            let result = if old.client() == b.client() {
                Ok(())
            } else {
                let r = if b.duid.is_empty() {
                    Ok(())
                } else {
                    self.insert(Table::Client, client_hash(self.seed, &b.client()), idx)
                };
                if !old.duid.is_empty() {
                    self.remove(Table::Client, client_hash(self.seed, &old.client()), idx);
                }
                r
            };
            fence(Ordering::SeqCst);
            self.map.store(self.journal_off + J_MARKER, 0);
            fence(Ordering::SeqCst);
            result?;
            if self.map.load(H_TOMBS[Table::Client as usize]) > self.slots / 4 {
                self.rebuild(Table::Client)?;
            }
            return Ok(());
        }
        let idx = self.next_free();
        if idx >= self.capacity {
            return Err(StoreError::Full {
                capacity: self.capacity,
            });
        }
        self.map.write_record(self.record_off(idx), &new);
        fence(Ordering::SeqCst);
        // Index entries for `idx` are ignored until next_free passes it (invariant 3), so
        // they may be written before the commit point.
        self.insert(Table::Addr, addr_hash(self.seed, b.kind, b.addr), idx)?;
        if !b.duid.is_empty() {
            self.insert(Table::Client, client_hash(self.seed, &b.client()), idx)?;
        }
        fence(Ordering::SeqCst);
        self.map.store(H_NEXT_FREE, idx + 1);
        fence(Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Errors cannot be reported here; `close` reports them.
        let _ = self.close_inner();
    }
}

fn header_crc(map: &Map) -> u32 {
    let mut bytes = [0u8; H_CRC];
    for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&map.load(i * 8).to_le_bytes());
    }
    record::crc32c(&bytes)
}

fn journal_crc(marker: u64, r: &RecordBytes) -> u32 {
    let mut bytes = [0u8; 8 + RECORD_SIZE];
    bytes[..8].copy_from_slice(&marker.to_le_bytes());
    bytes[8..].copy_from_slice(r);
    record::crc32c(&bytes)
}

/// Creates an initialised lease file atomically (temp file, fsync, link, fsync dir).
fn create_file(dir: &Path, name: &str, path: &Path, capacity: u64) -> Result<(), StoreError> {
    let g = Geometry::new(capacity).ok_or(StoreError::BadCapacity(capacity))?;
    let tmp = dir.join(format!("{name}.new.{}", std::process::id()));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    let result = (|| -> Result<(), StoreError> {
        file.set_len(g.total).map_err(io_err(&tmp))?;
        let mut header = [0u8; HEADER_SIZE as usize];
        let words = [
            (H_MAGIC, u64::from_le_bytes(MAGIC)),
            (H_VERSION, u64::from(FORMAT_VERSION)),
            (H_RECORD_SIZE, RECORD_SIZE as u64),
            (H_CAPACITY, g.capacity),
            (H_RECORDS_OFF, g.records_off),
            (H_ADDR_OFF, g.addr_off),
            (H_CLIENT_OFF, g.client_off),
            (H_SLOTS, g.slots),
            (H_JOURNAL_OFF, g.journal_off),
            (H_FILE_ID, random_u64()),
            (H_CLEAN, 1),
        ];
        for (off, v) in words {
            header[off..off + 8].copy_from_slice(&v.to_le_bytes());
        }
        let crc = record::crc32c(&header[..H_CRC]);
        header[H_CRC..H_CRC + 8].copy_from_slice(&u64::from(crc).to_le_bytes());
        (&file).write_all(&header).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        // A hard link, not a rename: if another process created the file meanwhile, theirs
        // wins (ours is discarded) instead of being replaced under its feet.
        match fs::hard_link(&tmp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(path)(e)),
        }
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))
    })();
    let _ = fs::remove_file(&tmp);
    result
}

impl LeaseStore for Store {
    type Error = StoreError;

    fn get(&self, kind: LeaseKind, addr: Ipv6Addr) -> Option<Binding> {
        self.find(kind, addr).map(|(_, b)| b)
    }

    fn for_client(&self, key: &ClientKey, f: &mut dyn FnMut(&Binding)) {
        if key.duid.is_empty() {
            return;
        }
        self.probe(Table::Client, client_hash(self.seed, key), |idx| {
            if let Some(b) = self.read(idx).filter(|b| b.client() == *key) {
                f(&b);
            }
            false
        });
    }

    fn put(&mut self, binding: &Binding) -> Result<(), StoreError> {
        self.put_inner(binding)
    }

    fn scan(&self, cursor: u64, max: usize, f: &mut dyn FnMut(&Binding)) -> Option<u64> {
        let end = self.next_free();
        let mut idx = cursor;
        let mut n = 0;
        while idx < end && n < max {
            if let Some(b) = self.read(idx) {
                f(&b);
            }
            idx += 1;
            n += 1;
        }
        (idx < end).then_some(idx)
    }

    fn len(&self) -> usize {
        to_usize(self.next_free())
    }

    fn capacity(&self) -> Option<usize> {
        Some(to_usize(Store::capacity(self)))
    }
}

#[cfg(test)]
mod tests;
