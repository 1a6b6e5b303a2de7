//! Unit tests that need the store's internals (journal, indexes, header), and the
//! differential test against `MemStore`.

use std::sync::atomic::AtomicU64;

use proptest::prelude::*;
use tandem_lease::{BindingStatus, DuidBuf, FailoverTime, MemStore};

use super::*;

/// A unique directory under the system temp dir, removed on drop.
#[derive(Debug)]
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(name: &str) -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!(
            "tandem-store-{name}-{}-{n}-{:x}",
            std::process::id(),
            random_u64()
        ));
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn opts(capacity: u64) -> StoreOptions {
    StoreOptions {
        capacity,
        flush_interval: Duration::from_secs(1),
    }
}

fn binding(i: u32, duid: u8, iaid: u32) -> Binding {
    let addr = Ipv6Addr::from(0x2001_0db8_0000_0000_0000_0000_0000_0000u128 | u128::from(i));
    let mut b = Binding::free(LeaseKind::Address, addr, 128, 1);
    b.status = BindingStatus::ACTIVE;
    b.duid = DuidBuf::new(&[0, 3, 0, 1, duid]).unwrap();
    b.iaid = iaid;
    b.valid = i;
    b.state_expiration_time = FailoverTime(1000 + i);
    b
}

fn client_addrs(s: &impl LeaseStore, key: &ClientKey) -> Vec<Ipv6Addr> {
    let mut v = Vec::new();
    s.for_client(key, &mut |b| v.push(b.addr));
    v.sort();
    v
}

fn all(s: &impl LeaseStore) -> Vec<Binding> {
    let mut v = Vec::new();
    let mut c = Some(0);
    while let Some(cur) = c {
        c = s.scan(cur, 7, &mut |b| v.push(*b));
    }
    v.sort_by_key(|b| (b.kind, u128::from(b.addr)));
    v
}

#[test]
fn store_put_then_get_and_for_client_find_binding() {
    let dir = TempDir::new("basic");
    let mut s = Store::open(dir.path(), opts(100)).unwrap();
    let a = binding(1, 1, 7);
    let b = binding(2, 1, 7);
    s.put(&a).unwrap();
    s.put(&b).unwrap();
    assert_eq!(s.get(LeaseKind::Address, a.addr), Some(a));
    assert_eq!(s.get(LeaseKind::Prefix, a.addr), None);
    assert_eq!(client_addrs(&s, &a.client()), [a.addr, b.addr]);
    assert_eq!(s.len(), 2);
    // Reassign `a` to another client: it leaves the first client's list.
    let a2 = binding(1, 2, 7);
    s.put(&a2).unwrap();
    assert_eq!(client_addrs(&s, &b.client()), [b.addr]);
    assert_eq!(client_addrs(&s, &a2.client()), [a.addr]);
    assert_eq!(s.len(), 2);
    assert!(s.verify().is_ok());
}

#[test]
fn store_reopened_after_drop_keeps_everything() {
    let dir = TempDir::new("reopen");
    let mut expect = Vec::new();
    {
        let mut s = Store::open(dir.path(), opts(1000)).unwrap();
        for i in 0..500 {
            let b = binding(i, (i % 7) as u8, i % 3);
            s.put(&b).unwrap();
            expect.push(b);
        }
    }
    let s = Store::open(dir.path(), opts(1000)).unwrap();
    assert!(s.recovery().clean_shutdown);
    assert_eq!(
        s.recovery(),
        Recovery {
            clean_shutdown: true,
            ..Recovery::default()
        }
    );
    assert_eq!(all(&s), expect);
    for b in &expect {
        assert_eq!(s.get(b.kind, b.addr), Some(*b));
        assert!(client_addrs(&s, &b.client()).contains(&b.addr));
    }
    assert!(s.verify().is_ok());
}

#[test]
fn store_full_capacity_refuses_new_binding_but_updates() {
    let dir = TempDir::new("full");
    let mut s = Store::open(dir.path(), opts(3)).unwrap();
    for i in 0..3 {
        s.put(&binding(i, 1, 1)).unwrap();
    }
    let e = s.put(&binding(3, 1, 1)).unwrap_err();
    assert!(matches!(e, StoreError::Full { capacity: 3 }), "{e}");
    let mut u = binding(1, 1, 1);
    u.valid = 77;
    s.put(&u).unwrap();
    assert_eq!(s.get(u.kind, u.addr).unwrap().valid, 77);
}

#[test]
fn store_other_format_version_is_refused_naming_both() {
    let dir = TempDir::new("version");
    drop(Store::open(dir.path(), opts(10)).unwrap());
    let path = dir.path().join(FILE_NAME);
    let mut bytes = fs::read(&path).unwrap();
    bytes[H_VERSION..H_VERSION + 8].copy_from_slice(&2u64.to_le_bytes());
    fs::write(&path, &bytes).unwrap();
    let e = Store::open(dir.path(), opts(10)).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::Version {
                found: 2,
                expected: 1,
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("version 2") && msg.contains("version 1"),
        "{msg}"
    );
    assert!(matches!(
        Store::open_read_only(dir.path()),
        Err(StoreError::Version { .. })
    ));
    bytes[0] = b'X';
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        Store::open(dir.path(), opts(10)),
        Err(StoreError::BadMagic { .. })
    ));
}

#[test]
fn store_larger_capacity_than_file_is_refused_smaller_is_fine() {
    let dir = TempDir::new("capacity");
    drop(Store::open(dir.path(), opts(10)).unwrap());
    let e = Store::open(dir.path(), opts(11)).unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::CapacityMismatch {
                file: 10,
                requested: 11,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("not supported yet"));
    assert_eq!(Store::open(dir.path(), opts(5)).unwrap().capacity(), 10);
    assert!(matches!(
        Store::open(dir.path(), opts(0)),
        Err(StoreError::BadCapacity(0))
    ));
}

#[test]
fn store_corrupted_header_is_refused() {
    let dir = TempDir::new("hdrcrc");
    drop(Store::open(dir.path(), opts(10)).unwrap());
    let path = dir.path().join(FILE_NAME);
    let mut bytes = fs::read(&path).unwrap();
    bytes[H_FILE_ID] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let e = Store::open(dir.path(), opts(10)).unwrap_err();
    assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
}

#[test]
fn store_second_writer_is_locked_out_reader_is_not() {
    let dir = TempDir::new("lock");
    let mut w = Store::open(dir.path(), opts(10)).unwrap();
    assert!(matches!(
        Store::open(dir.path(), opts(10)),
        Err(StoreError::Locked { .. })
    ));
    let mut r = Store::open_read_only(dir.path()).unwrap();
    let b = binding(1, 1, 1);
    w.put(&b).unwrap();
    // The reader sees the writer's commits through the shared mapping.
    assert_eq!(r.get(b.kind, b.addr), Some(b));
    assert_eq!(r.len(), 1);
    assert!(matches!(r.put(&b), Err(StoreError::ReadOnly)));
}

#[test]
fn index_probing_with_identical_hashes_finds_every_entry() {
    let dir = TempDir::new("probe");
    let mut s = Store::open(dir.path(), opts(16)).unwrap();
    for i in 0..16 {
        s.put(&binding(i, 1, 1)).unwrap();
    }
    // Home slot at the very end of the table, so the chain wraps around.
    let h = 0xabcd_0000_ffff_ffff;
    assert_eq!(s.home(h), s.slots - 1);
    for idx in 0..16 {
        s.insert(Table::Client, h, idx).unwrap();
        s.insert(Table::Client, h, idx).unwrap(); // idempotent
    }
    let collect = |s: &Store| {
        let mut v = Vec::new();
        s.probe(Table::Client, h, |i| {
            v.push(i);
            false
        });
        v.sort_unstable();
        v
    };
    assert_eq!(collect(&s), (0..16).collect::<Vec<_>>());
    s.remove(Table::Client, h, 5);
    assert_eq!(s.map.load(H_TOMBS[1]), 1);
    let mut want: Vec<u64> = (0..16).filter(|&i| i != 5).collect();
    assert_eq!(collect(&s), want);
    s.insert(Table::Client, h, 5).unwrap();
    assert_eq!(s.map.load(H_TOMBS[1]), 0, "the tombstone was reused");
    want.push(5);
    want.sort_unstable();
    assert_eq!(collect(&s), want);
    // Every real binding is still found through the crowded client table.
    for i in 0..16 {
        assert_eq!(
            s.get(LeaseKind::Address, binding(i, 1, 1).addr),
            Some(binding(i, 1, 1))
        );
    }
    assert_eq!(client_addrs(&s, &binding(0, 1, 1).client()).len(), 16);
}

#[test]
fn store_torn_update_with_valid_journal_restores_old_record() {
    let dir = TempDir::new("torn");
    let old = binding(1, 1, 7);
    let new = binding(1, 2, 8);
    {
        let mut s = Store::open(dir.path(), opts(10)).unwrap();
        s.put(&old).unwrap();
        // Simulate a kill in the middle of `put(&new)`: journal written and marked, half of
        // the new record written, nothing else.
        let (idx, _) = s.find(old.kind, old.addr).unwrap();
        let off = s.record_off(idx);
        let old_bytes = s.map.read_record(off);
        s.map.write_record(s.journal_off + J_RECORD, &old_bytes);
        s.map.store(
            s.journal_off + J_CRC,
            u64::from(journal_crc(idx + 1, &old_bytes)),
        );
        s.map.store(s.journal_off + J_MARKER, idx + 1);
        let new_bytes = record::encode(&new);
        for w in 0..14 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&new_bytes[w * 8..w * 8 + 8]);
            s.map.store(off + w * 8, u64::from_le_bytes(b));
        }
        assert!(!record::crc_ok(&s.map.read_record(off)));
        // A reader during the outage falls back to the journal's copy.
        let r = Store::open_read_only(dir.path()).unwrap();
        assert_eq!(r.get(old.kind, old.addr), Some(old));
        s.writable = false; // "killed": no clean close
    }
    let s = Store::open(dir.path(), opts(10)).unwrap();
    let rec = s.recovery();
    assert!(rec.journal_restored && !rec.clean_shutdown, "{rec:?}");
    assert_eq!(s.get(old.kind, old.addr), Some(old));
    assert_eq!(client_addrs(&s, &old.client()), [old.addr]);
    assert!(client_addrs(&s, &new.client()).is_empty());
    assert_eq!(s.map.load(s.journal_off + J_MARKER), 0);
    assert!(s.verify().is_ok());
}

#[test]
fn store_update_killed_before_index_write_keeps_new_record_and_indexes_it() {
    let dir = TempDir::new("journal-kept");
    let old = binding(1, 1, 7);
    let new = binding(1, 2, 8);
    {
        let mut s = Store::open(dir.path(), opts(10)).unwrap();
        s.put(&old).unwrap();
        let (idx, _) = s.find(old.kind, old.addr).unwrap();
        let off = s.record_off(idx);
        let old_bytes = s.map.read_record(off);
        s.map.write_record(s.journal_off + J_RECORD, &old_bytes);
        s.map.store(
            s.journal_off + J_CRC,
            u64::from(journal_crc(idx + 1, &old_bytes)),
        );
        s.map.store(s.journal_off + J_MARKER, idx + 1);
        s.map.write_record(off, &record::encode(&new));
        s.writable = false;
    }
    let s = Store::open(dir.path(), opts(10)).unwrap();
    assert!(s.recovery().journal_kept);
    assert_eq!(s.get(new.kind, new.addr), Some(new));
    assert_eq!(client_addrs(&s, &new.client()), [new.addr]);
    assert!(client_addrs(&s, &old.client()).is_empty());
    assert!(s.verify().is_ok());
}

/// A committed record torn by a power loss (its page reached the disk, the next one did not):
/// the open finds it by its CRC, once, and it is absent from then on; every other record is
/// read without a CRC check (crate docs, "Reads").
#[test]
fn store_record_failing_its_crc_at_open_is_set_aside_and_the_rest_served() {
    let dir = TempDir::new("corrupt");
    let bindings: Vec<Binding> = (1..=5).map(|i| binding(i, i as u8, 1)).collect();
    {
        let mut s = Store::open(dir.path(), opts(10)).unwrap();
        for b in &bindings {
            s.put(b).unwrap();
        }
        let (idx, _) = s.find(bindings[2].kind, bindings[2].addr).unwrap();
        let off = s.record_off(idx);
        let w = s.map.load(off + 96);
        s.map.store(off + 96, w ^ 0x40);
        s.writable = false; // a power loss: no clean close
    }
    let mut s = Store::open(dir.path(), opts(10)).unwrap();
    assert_eq!(s.recovery().corrupt_records, 1, "{:?}", s.recovery());
    assert_eq!(s.corrupt_records(), [2]);
    assert_eq!(s.get(bindings[2].kind, bindings[2].addr), None);
    for b in bindings.iter().filter(|b| b.addr != bindings[2].addr) {
        assert_eq!(s.get(b.kind, b.addr).as_ref(), Some(b));
    }
    assert_eq!(s.verify().bad_records, 1, "verify still checks every CRC");
    // Its lease can be granted again: a new record, found from then on.
    s.put(&bindings[2]).unwrap();
    assert_eq!(s.get(bindings[2].kind, bindings[2].addr), Some(bindings[2]));
    assert_eq!(all(&s).len(), 5);
}

#[test]
fn store_uncommitted_new_record_is_discarded_at_open() {
    let dir = TempDir::new("orphan");
    let kept = binding(1, 1, 1);
    let lost = binding(2, 1, 1);
    {
        let mut s = Store::open(dir.path(), opts(10)).unwrap();
        s.put(&kept).unwrap();
        // Killed after writing the record and its index entries, before next_free moved.
        let idx = s.next_free();
        s.map
            .write_record(s.record_off(idx), &record::encode(&lost));
        s.index_record(idx, &lost).unwrap();
        assert_eq!(s.get(lost.kind, lost.addr), None, "not committed yet");
        s.writable = false;
    }
    let mut s = Store::open(dir.path(), opts(10)).unwrap();
    assert!(s.recovery().orphan_discarded);
    assert_eq!(s.len(), 1);
    assert_eq!(s.get(lost.kind, lost.addr), None);
    assert!(s.verify().is_ok());
    // The slot is reused by another binding; the stale index entries do not confuse lookups.
    let other = binding(3, 2, 2);
    s.put(&other).unwrap();
    assert_eq!(s.get(lost.kind, lost.addr), None);
    assert_eq!(s.get(other.kind, other.addr), Some(other));
    assert!(client_addrs(&s, &lost.client()) == [kept.addr]);
    s.put(&lost).unwrap();
    assert_eq!(s.get(lost.kind, lost.addr), Some(lost));
    assert!(s.verify().is_ok());
}

#[test]
fn store_many_client_changes_rebuild_client_index() {
    let dir = TempDir::new("tombs");
    let mut s = Store::open(dir.path(), opts(8)).unwrap();
    for i in 0..8 {
        s.put(&binding(i, 0, 0)).unwrap();
    }
    // Each change tombstones the old client entry; the rebuild keeps the table usable.
    for round in 1..200u32 {
        for i in 0..8 {
            s.put(&binding(i, (round % 250) as u8, round)).unwrap();
        }
        assert!(s.map.load(H_TOMBS[1]) <= s.slots / 4);
    }
    for i in 0..8 {
        let b = binding(i, 199, 199);
        assert_eq!(client_addrs(&s, &b.client()).len(), 8);
    }
    assert!(s.verify().is_ok());
}

#[test]
fn store_interrupted_rebuild_is_redone_at_open() {
    let dir = TempDir::new("rebuild");
    {
        let mut s = Store::open(dir.path(), opts(8)).unwrap();
        for i in 0..8 {
            s.put(&binding(i, 1, 1)).unwrap();
        }
        s.map.store(H_REBUILDING[1], 1);
        for pos in 0..s.slots {
            s.map.store(s.slot_off(Table::Client, pos), SLOT_EMPTY);
        }
        s.writable = false;
    }
    let s = Store::open(dir.path(), opts(8)).unwrap();
    assert_eq!(s.recovery().indexes_rebuilt, 1);
    assert_eq!(client_addrs(&s, &binding(0, 1, 1).client()).len(), 8);
    assert!(s.verify().is_ok());
}

/// The words of both indexes, as the disk would hold them after a flush.
fn index_words(s: &Store) -> Vec<u64> {
    (s.index_off[0]..s.journal_off)
        .step_by(8)
        .map(|off| s.map.load(off))
        .collect()
}

#[test]
fn store_records_synced_without_indexes_are_found_after_a_power_loss() {
    let dir = TempDir::new("stale-index");
    let early = binding(1, 1, 1);
    let late = binding(2, 2, 2);
    {
        let mut s = Store::open(dir.path(), opts(16)).unwrap();
        s.put(&early).unwrap();
        s.flush().unwrap();
        let on_disk = index_words(&s);
        s.put(&late).unwrap();
        s.sync_records().unwrap();
        // A power loss now: the header and the records reached the disk, the index pages
        // are as the full flush left them.
        for (i, w) in on_disk.into_iter().enumerate() {
            s.map.store(s.index_off[0] + i * 8, w);
        }
        assert_eq!(s.get(late.kind, late.addr), None, "the old index misses it");
        s.writable = false;
    }
    let s = Store::open(dir.path(), opts(16)).unwrap();
    assert_eq!(s.recovery().indexes_rebuilt, 2, "{:?}", s.recovery());
    assert_eq!(s.get(late.kind, late.addr), Some(late));
    assert_eq!(s.get(early.kind, early.addr), Some(early));
    assert_eq!(client_addrs(&s, &late.client()), [late.addr]);
    assert!(s.verify().is_ok());
}

#[test]
fn store_index_flag_clears_only_after_a_full_flush() {
    let dir = TempDir::new("stale-flag");
    {
        let mut s = Store::open(dir.path(), opts(16)).unwrap();
        s.put(&binding(1, 1, 1)).unwrap();
        s.sync_records().unwrap();
        assert_eq!(s.map.load(H_INDEX_STALE), 1);
        s.put(&binding(2, 1, 1)).unwrap();
        s.flush().unwrap();
        assert_eq!(s.map.load(H_INDEX_STALE), 0);
        s.sync_records().unwrap();
        // Killed before the next full flush: the indexes are rebuilt at open.
        s.writable = false;
    }
    {
        let s = Store::open(dir.path(), opts(16)).unwrap();
        assert_eq!(s.recovery().indexes_rebuilt, 2);
        assert_eq!(s.len(), 2);
        assert!(s.verify().is_ok());
        // Still set: the rebuilt indexes are not on disk before a full flush.
        assert_eq!(s.map.load(H_INDEX_STALE), 1);
        s.close().unwrap();
    }
    // A clean close flushed everything: nothing to rebuild.
    let s = Store::open(dir.path(), opts(16)).unwrap();
    assert!(s.recovery().clean_shutdown);
    assert_eq!(s.recovery().indexes_rebuilt, 0);
    assert_eq!(s.map.load(H_INDEX_STALE), 0);
}

#[test]
fn store_needs_flush_after_interval() {
    let dir = TempDir::new("flush");
    let mut s = Store::open(dir.path(), opts(4)).unwrap();
    let t0 = Instant::now();
    assert!(!s.needs_flush(t0));
    assert!(s.needs_flush(t0 + Duration::from_secs(2)));
    s.flush().unwrap();
    assert!(!s.needs_flush(Instant::now()));
    s.close().unwrap();
    let r = Store::open_read_only(dir.path()).unwrap();
    assert!(!r.needs_flush(t0 + Duration::from_secs(3600)));
}

fn arb_binding() -> impl Strategy<Value = Binding> {
    (
        0u32..40,
        any::<bool>(),
        0u8..4,
        0u32..3,
        any::<u32>(),
        1u8..9,
    )
        .prop_map(|(a, prefix, duid, iaid, valid, status)| {
            let kind = if prefix {
                LeaseKind::Prefix
            } else {
                LeaseKind::Address
            };
            let addr = Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(a) << 8);
            let mut b = Binding::free(kind, addr, if prefix { 56 } else { 128 }, a % 3);
            b.status = BindingStatus(status);
            // duid 0 = no client.
            if duid > 0 {
                b.duid = DuidBuf::new(&[0, 3, 0, 1, duid]).unwrap();
            }
            b.iaid = iaid;
            b.valid = valid;
            b.cltt = FailoverTime(valid / 2);
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn store_matches_memstore_across_reopens(
        ops in proptest::collection::vec((arb_binding(), 0u8..10), 1..120)
    ) {
        let dir = TempDir::new("diff");
        let cap = 50;
        let mut mem = MemStore::with_capacity_limit(cap);
        let mut s = Store::open(dir.path(), opts(cap as u64)).unwrap();
        for (b, action) in &ops {
            if *action == 0 {
                drop(s);
                s = Store::open(dir.path(), opts(cap as u64)).unwrap();
            }
            let m = mem.put(b);
            let r = s.put(b);
            prop_assert_eq!(m.is_ok(), r.is_ok(), "{:?} vs {:?}", m, r);
        }
        drop(s);
        let s = Store::open(dir.path(), opts(cap as u64)).unwrap();
        prop_assert_eq!(s.len(), mem.len());
        prop_assert_eq!(all(&s), all(&mem));
        for (b, _) in &ops {
            prop_assert_eq!(s.get(b.kind, b.addr), mem.get(b.kind, b.addr));
            prop_assert_eq!(client_addrs(&s, &b.client()), client_addrs(&mem, &b.client()));
        }
        prop_assert!(s.verify().is_ok());
        let r = Store::open_read_only(dir.path()).unwrap();
        prop_assert_eq!(all(&r), all(&mem));
    }
}

#[test]
fn open_file_named_files_independent_in_one_dir() {
    let dir = TempDir::new("named");
    let mut a = Store::open_file(dir.path(), "leases-0-of-2.tdb", opts(8)).unwrap();
    let mut b = Store::open_file(dir.path(), "leases-1-of-2.tdb", opts(8)).unwrap();
    a.put(&binding(1, 1, 1)).unwrap();
    b.put(&binding(2, 2, 1)).unwrap();
    b.put(&binding(3, 2, 2)).unwrap();
    assert!(matches!(
        Store::open_file(dir.path(), "leases-0-of-2.tdb", opts(8)),
        Err(StoreError::Locked { .. })
    ));
    assert!(!dir.path().join(FILE_NAME).exists());
    a.close().unwrap();
    b.close().unwrap();
    let ra = Store::open_file_read_only(dir.path(), "leases-0-of-2.tdb").unwrap();
    let rb = Store::open_file_read_only(dir.path(), "leases-1-of-2.tdb").unwrap();
    assert_eq!((ra.len(), rb.len()), (1, 2));
    assert_eq!(
        ra.get(LeaseKind::Address, binding(1, 1, 1).addr),
        Some(binding(1, 1, 1))
    );
    assert_eq!(ra.get(LeaseKind::Address, binding(2, 2, 1).addr), None);
    assert!(Store::open_file_read_only(dir.path(), "leases-2-of-2.tdb").is_err());
}
