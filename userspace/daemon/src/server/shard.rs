//! The sharded lease database (issue 4): S `(Engine, Store)` pairs, one per shard, in one
//! state directory.
//!
//! * Shard of a datagram: [`tandem_proto::Inbound::shard`] (a hash of the client DUID mod S);
//!   datagrams without a parsable Client ID go to shard 0, whose engine answers what needs no
//!   client state and drops and counts the rest.
//! * Shard `k` keeps its leases in `leases-<k>-of-<S>.tdb` (`leases.tdb` when S = 1) and its
//!   engine allocates only the pool offsets ≡ k (mod S) ([`Engine::with_partition`]), so no
//!   two shards can give out the same lease. All shards share the server DUID.
//! * S is fixed per state directory, recorded in `<state-dir>/shards` (one line, the number).
//!   A directory without that file but with a `leases.tdb` has one shard. Asking for another S
//!   is an error that says what to do ([`resolve_shards`]).
//!
//! The socket datapath serves a whole [`ShardSet`] from its one thread; the XDP datapath gives
//! each worker the [`Shard`]s it owns ([`Shard::open`]). Every store is wrapped in a
//! [`LoggingStore`] while the engine writes to it.

use std::fs;
use std::io;
use std::net::Ipv6Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tandem_config::Config;
use tandem_lease::{Binding, BindingStatus, ClientKey, FailoverTime, LeaseKind, LeaseStore};
use tandem_proto::{Counters, Engine, Inbound, ReclaimReport};
use tandem_store::{Store, StoreOptions};

use crate::leases::state_name;
use crate::output::hex;

/// How often the owner of a shard (an XDP worker, or the socket datapath's loop) runs its
/// housekeeping: incremental expiry ([`Engine::reclaim`]) and, on XDP workers, the msync
/// when due.
pub const HOUSEKEEPING_EVERY: Duration = Duration::from_millis(200);
/// Bindings [`Engine::reclaim`] may visit per housekeeping pass and shard.
pub const RECLAIM_BUDGET: usize = 1024;

/// The file recording the shard count of a state directory.
pub const SHARDS_FILE: &str = "shards";

/// The lease file of shard `k` of `shards`: `leases.tdb` for one shard, else
/// `leases-<k>-of-<shards>.tdb`.
pub fn shard_file_name(k: u32, shards: u32) -> String {
    if shards <= 1 {
        tandem_store::FILE_NAME.to_owned()
    } else {
        format!("leases-{k}-of-{shards}.tdb")
    }
}

/// The shard count a state directory already has: the `shards` file, else 1 if it holds a
/// `leases.tdb`, else the `S` of `leases-<k>-of-<S>.tdb` files; `None` for a fresh directory.
///
/// # Errors
/// An unreadable or malformed `shards` file, or shard files of several counts.
pub fn recorded_shards(dir: &Path) -> anyhow::Result<Option<u32>> {
    let path = dir.join(SHARDS_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let n = text
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .with_context(|| {
                    format!(
                        "{} should hold the shard count (a number ≥ 1), it holds {:?}",
                        path.display(),
                        text.trim()
                    )
                })?;
            return Ok(Some(n));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    if dir.join(tandem_store::FILE_NAME).exists() {
        return Ok(Some(1));
    }
    let mut found: Option<u32> = None;
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("listing {}", dir.display())),
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(s) = name
            .to_str()
            .and_then(parse_shard_file_name)
            .map(|(_, s)| s)
        else {
            continue;
        };
        match found {
            Some(f) if f != s => bail!(
                "{} holds lease files of {f} and of {s} shards and no `{SHARDS_FILE}` file: \
                 remove the stale ones",
                dir.display()
            ),
            _ => found = Some(s),
        }
    }
    Ok(found)
}

/// `(k, S)` of a `leases-<k>-of-<S>.tdb` name.
fn parse_shard_file_name(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("leases-")?.strip_suffix(".tdb")?;
    let (k, s) = rest.split_once("-of-")?;
    let (k, s) = (k.parse().ok()?, s.parse::<u32>().ok()?);
    (k < s).then_some((k, s))
}

/// Decides the shard count of `dir` and records it (writing `<dir>/shards` if missing).
///
/// `wanted` is the configured count (`[datapath] shards`), 0 for "derive it"; `derived` is
/// what 0 means for this datapath (the XDP worker count), `None` to use the directory's own
/// count (socket mode; 1 for a fresh directory).
///
/// # Errors
/// The directory already has another count (the message says how to proceed), or the file
/// cannot be read or written.
pub fn resolve_shards(dir: &Path, wanted: u32, derived: Option<u32>) -> anyhow::Result<u32> {
    let recorded = recorded_shards(dir)?;
    let (count, source) = match (wanted, derived) {
        (0, Some(d)) => (d.max(1), "the number of XDP workers"),
        (0, None) => (recorded.unwrap_or(1), "the state directory"),
        (w, _) => (w, "[datapath] shards"),
    };
    if let Some(r) = recorded
        && r != count
    {
        bail!(
            "the state directory {} holds a lease database of {r} shard(s) but {source} asks for \
             {count}: the shard count of a state directory is fixed (clients are spread over the \
             shards by DUID). Set `[datapath] shards = {r}` in the configuration to keep serving \
             these leases (in xdp mode any worker count works: shard k is served by worker k mod \
             workers), or start with an empty state directory",
            dir.display()
        );
    }
    let path = dir.join(SHARDS_FILE);
    if !path.exists() {
        fs::write(&path, format!("{count}\n"))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(count)
}

/// One shard: its engine (limited to the shard's pool offsets) and its store.
#[derive(Debug)]
pub struct Shard {
    /// The shard number.
    pub index: u32,
    /// The engine.
    pub engine: Engine,
    /// The store (`leases-<k>-of-<S>.tdb`).
    pub store: Store,
}

impl Shard {
    /// Opens shard `index` of `count` in `dir` (creating its file if needed) with an engine
    /// for `config` and the server DUID `duid`.
    ///
    /// # Errors
    /// If the store cannot be opened (locked by another server, corrupt, capacity mismatch).
    pub fn open(
        dir: &Path,
        config: &Config,
        duid: &[u8],
        index: u32,
        count: u32,
        options: StoreOptions,
    ) -> anyhow::Result<Self> {
        let name = shard_file_name(index, count);
        let store = Store::open_file(dir, &name, options)
            .with_context(|| format!("opening the lease store {}", dir.join(&name).display()))?;
        let recovery = store.recovery();
        if !recovery.clean_shutdown {
            tracing::info!("{name} was not closed cleanly; recovered: {recovery:?}");
        }
        if recovery.corrupt_records > 0 {
            tracing::error!(
                "{}: {} committed lease record(s) fail their CRC (torn by a power loss or \
                 corrupted on disk) and are treated as absent; record indexes {:?}",
                dir.join(&name).display(),
                recovery.corrupt_records,
                store.corrupt_records().iter().take(32).collect::<Vec<_>>()
            );
        }
        let engine = Engine::new(config.clone(), duid.to_vec()).with_partition(index, count);
        Ok(Self {
            index,
            engine,
            store,
        })
    }

    /// The engine and its store, wrapped in a [`LoggingStore`], for a call of
    /// [`Engine::handle`] (which commits leases to the store before a Reply exists).
    pub fn engine_and_store(&mut self) -> (&mut Engine, LoggingStore<'_, Store>) {
        (&mut self.engine, LoggingStore(&mut self.store))
    }

    /// Incremental expiry of up to `budget` bindings.
    pub fn reclaim(&mut self, now: FailoverTime, budget: usize) -> ReclaimReport {
        self.engine
            .reclaim(now, &mut LoggingStore(&mut self.store), budget)
    }

    /// msyncs the store if its flush interval has passed; errors are logged.
    pub fn flush_if_due(&mut self, now: Instant) {
        if self.store.needs_flush(now)
            && let Err(e) = self.store.flush()
        {
            tracing::warn!("flushing lease shard {}: {e}", self.index);
        }
    }
}

/// Every shard of a state directory, served from one thread.
#[derive(Debug)]
pub struct ShardSet {
    shards: Vec<Shard>,
}

impl ShardSet {
    /// Opens shards `0..count` of `dir` (see [`Shard::open`]).
    ///
    /// # Errors
    /// If a store cannot be opened.
    pub fn open(
        dir: &Path,
        config: &Config,
        duid: &[u8],
        count: u32,
        options: StoreOptions,
    ) -> anyhow::Result<Self> {
        let count = count.max(1);
        let shards = (0..count)
            .map(|k| Shard::open(dir, config, duid, k, count, options))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { shards })
    }

    /// The number of shards.
    pub fn count(&self) -> u32 {
        u32::try_from(self.shards.len()).unwrap_or(u32::MAX)
    }

    /// The shards.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Bindings stored over all shards.
    pub fn stored(&self) -> usize {
        self.shards
            .iter()
            .map(|s| tandem_lease::LeaseStore::len(&s.store))
            .sum()
    }

    /// The shard of the client whose parsed datagram is `inbound` ([`Inbound::shard`]; shard 0
    /// when it has no parsable Client ID). `None` only for a set without shards, which
    /// [`ShardSet::open`] never makes.
    pub fn shard_for(&mut self, inbound: &Inbound<'_>) -> Option<&mut Shard> {
        let n = self.shards.len();
        let idx = inbound
            .shard(self.count())
            .and_then(|k| usize::try_from(k).ok())
            .filter(|i| *i < n)
            .unwrap_or(0);
        self.shards.get_mut(idx)
    }

    /// Incremental expiry: `budget` bindings per shard; the reports summed. Every binding
    /// that changed goes to `changed` with its shard (for the failover partner).
    pub fn reclaim(
        &mut self,
        now: FailoverTime,
        budget: usize,
        changed: &mut dyn FnMut(u32, &Binding),
    ) -> ReclaimReport {
        let mut total = ReclaimReport::default();
        for s in &mut self.shards {
            let r = s.reclaim(now, budget);
            for c in s.engine.changes() {
                changed(s.index, &c.binding);
            }
            total.visited += r.visited;
            total.expired += r.expired;
            total.unquarantined += r.unquarantined;
            total.store_errors += r.store_errors;
            total.wrapped |= r.wrapped;
        }
        total
    }

    /// msyncs every store whose flush interval has passed.
    pub fn flush_if_due(&mut self, now: Instant) {
        for s in &mut self.shards {
            s.flush_if_due(now);
        }
    }

    /// Installs `policy` in every shard's engine (the failover state's, RFC 8156 §8).
    pub fn set_policy(&mut self, policy: tandem_lease::ServingPolicy) {
        for s in &mut self.shards {
            s.engine.set_policy(policy);
        }
    }

    /// The engines' counters, added up.
    pub fn counters(&self) -> Counters {
        let mut c = Counters::default();
        for s in &self.shards {
            c.merge(s.engine.counters());
        }
        c
    }

    /// Flushes and closes every store (all are closed even if one fails; the first error is
    /// returned).
    ///
    /// # Errors
    /// If a store could not be flushed or closed.
    pub fn close(self) -> anyhow::Result<()> {
        let mut first = None;
        for s in self.shards {
            let index = s.index;
            if let Err(e) = s.store.close() {
                tracing::error!("closing lease shard {index}: {e}");
                first.get_or_insert(
                    anyhow::Error::new(e).context(format!("closing lease shard {index}")),
                );
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl crate::failover::sync::LeaseShards for ShardSet {
    fn count(&self) -> u32 {
        ShardSet::count(self)
    }

    fn shard_of_lease(&self, kind: LeaseKind, addr: Ipv6Addr, len: u8) -> Option<u32> {
        self.shards.first()?.engine.lease_shard(kind, addr, len)
    }

    fn partner_update(
        &mut self,
        shard: u32,
        now: FailoverTime,
        role: tandem_lease::sync::Role,
        upd: &tandem_lease::sync::LeaseUpdate,
        out: &mut dyn FnMut(&Binding),
    ) -> tandem_proto::PartnerOutcome {
        let Some(s) = usize::try_from(shard)
            .ok()
            .and_then(|i| self.shards.get_mut(i))
        else {
            return tandem_proto::PartnerOutcome::OtherShard;
        };
        let outcome = s
            .engine
            .partner_update(now, role, upd, &mut LoggingStore(&mut s.store));
        for c in s.engine.changes() {
            out(&c.binding);
        }
        outcome
    }

    fn partner_ack(
        &mut self,
        shard: u32,
        now: FailoverTime,
        kind: LeaseKind,
        addr: Ipv6Addr,
        info: &tandem_lease::sync::AckInfo,
        out: &mut dyn FnMut(&Binding),
    ) {
        let Some(s) = usize::try_from(shard)
            .ok()
            .and_then(|i| self.shards.get_mut(i))
        else {
            return;
        };
        s.engine
            .partner_ack(now, kind, addr, info, &mut LoggingStore(&mut s.store));
        for c in s.engine.changes() {
            out(&c.binding);
        }
    }

    fn scan(
        &self,
        shard: u32,
        cursor: u64,
        max: usize,
        f: &mut dyn FnMut(&Binding),
    ) -> Option<u64> {
        let s = usize::try_from(shard)
            .ok()
            .and_then(|i| self.shards.get(i))?;
        s.store.scan(cursor, max, f)
    }

    fn rebalance(
        &mut self,
        shard: u32,
        now: FailoverTime,
        share_percent: u32,
        cap: u64,
        out: &mut dyn FnMut(&Binding),
    ) -> bool {
        let Some(s) = usize::try_from(shard)
            .ok()
            .and_then(|i| self.shards.get_mut(i))
        else {
            return true;
        };
        s.engine
            .rebalance_prefixes(now, share_percent, cap, &mut LoggingStore(&mut s.store));
        for c in s.engine.changes() {
            out(&c.binding);
        }
        true
    }

    fn make_durable(&mut self) -> io::Result<()> {
        // The records, not the indexes (rebuilt from the records after a stop before the
        // next periodic flush): RFC 8156 §7.5.2 needs the partner's bindings on stable
        // storage, and the index pages a batch dirties cost several times the records'.
        for s in &mut self.shards {
            s.store.sync_records().map_err(io::Error::other)?;
        }
        Ok(())
    }
}

/// Opens every shard file of `dir` read-only (for `tandem leases`), in shard order.
///
/// # Errors
/// If the shard count cannot be determined or a shard file cannot be opened.
pub fn open_all_read_only(dir: &Path) -> anyhow::Result<Vec<Store>> {
    let Some(count) = recorded_shards(dir)? else {
        bail!(
            "{} holds no lease database (no `{SHARDS_FILE}` file, no lease files)",
            dir.display()
        );
    };
    (0..count)
        .map(|k| {
            let name = shard_file_name(k, count);
            Store::open_file_read_only(dir, &name)
                .with_context(|| format!("opening the lease store {}", dir.join(&name).display()))
        })
        .collect()
}

/// A [`LeaseStore`] adapter that logs each lease write (debug) and each failed write (warn).
#[derive(Debug)]
pub struct LoggingStore<'a, S>(pub &'a mut S);

impl<S: LeaseStore> LeaseStore for LoggingStore<'_, S> {
    type Error = S::Error;

    fn get(&self, kind: LeaseKind, addr: Ipv6Addr) -> Option<Binding> {
        self.0.get(kind, addr)
    }

    fn for_client(&self, key: &ClientKey, f: &mut dyn FnMut(&Binding)) {
        self.0.for_client(key, f);
    }

    fn put(&mut self, binding: &Binding) -> Result<(), Self::Error> {
        match self.0.put(binding) {
            Ok(()) => {
                if binding.status == BindingStatus::ACTIVE {
                    tracing::debug!(
                        "lease committed: {}/{} to DUID {} IAID {} (preferred {} s, valid {} s)",
                        binding.addr,
                        binding.prefix_len,
                        hex(binding.duid.as_bytes()),
                        binding.iaid,
                        binding.preferred,
                        binding.valid,
                    );
                } else {
                    tracing::debug!(
                        "lease {}/{} now {}",
                        binding.addr,
                        binding.prefix_len,
                        state_name(binding.status)
                    );
                }
                Ok(())
            }
            Err(e) => {
                tracing::warn!(
                    "lease store: writing {}/{} failed: {e}",
                    binding.addr,
                    binding.prefix_len
                );
                Err(e)
            }
        }
    }

    fn scan(&self, cursor: u64, max: usize, f: &mut dyn FnMut(&Binding)) -> Option<u64> {
        self.0.scan(cursor, max, f)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn capacity(&self) -> Option<usize> {
        self.0.capacity()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicU32, Ordering};

    use tandem_proto::{DropReason, Outcome, RxMeta, SplitMix64, shard_of};

    use super::*;

    /// One subnet on `eth0` with a 4096-address pool (also used by the worker's tests).
    pub(crate) const CONFIG: &str = r#"
[[interface]]
name = "eth0"

[[subnet]]
prefix = "2001:db8:1::/64"
interface = "eth0"
preferred-lifetime = 3600
valid-lifetime = 7200

  [[subnet.pool]]
  range = "2001:db8:1::1000-2001:db8:1::1fff"
"#;
    const SERVER_DUID: &[u8] = &[0, 3, 0, 1, 2, 0, 0, 0, 0, 0xee];

    /// A scratch directory removed on drop (also used by the worker's tests).
    pub(crate) struct TempDir(pub(crate) PathBuf);

    impl TempDir {
        pub(crate) fn new() -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("tandem-shard-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            Self(p)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn options() -> StoreOptions {
        StoreOptions {
            capacity: 64,
            flush_interval: Duration::from_secs(1),
        }
    }

    /// One DHCPv6 option, header included.
    pub(crate) fn opt(code: u16, data: &[u8]) -> Vec<u8> {
        let mut v = code.to_be_bytes().to_vec();
        v.extend_from_slice(&u16::try_from(data.len()).unwrap().to_be_bytes());
        v.extend_from_slice(data);
        v
    }

    /// A REQUEST with one IA_NA from the client with DUID `duid`.
    fn request(duid: &[u8]) -> Vec<u8> {
        let mut v = vec![3, 0, 0, 1];
        v.extend(opt(1, duid));
        v.extend(opt(2, SERVER_DUID));
        v.extend(opt(3, &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]));
        v
    }

    #[test]
    fn shard_file_name_one_shard_keeps_legacy_name() {
        assert_eq!(shard_file_name(0, 1), "leases.tdb");
        assert_eq!(shard_file_name(2, 4), "leases-2-of-4.tdb");
        assert_eq!(parse_shard_file_name("leases-2-of-4.tdb"), Some((2, 4)));
        assert_eq!(parse_shard_file_name("leases-4-of-4.tdb"), None);
        assert_eq!(parse_shard_file_name("leases.tdb"), None);
    }

    #[test]
    fn resolve_shards_fresh_dir_records_count_then_refuses_another() {
        let dir = TempDir::new();
        assert_eq!(recorded_shards(&dir.0).unwrap(), None);
        assert_eq!(resolve_shards(&dir.0, 0, Some(3)).unwrap(), 3);
        assert_eq!(fs::read_to_string(dir.0.join(SHARDS_FILE)).unwrap(), "3\n");
        // Socket mode serves what the directory has; an explicit equal count is fine.
        assert_eq!(resolve_shards(&dir.0, 0, None).unwrap(), 3);
        assert_eq!(resolve_shards(&dir.0, 3, Some(2)).unwrap(), 3);
        let err = resolve_shards(&dir.0, 0, Some(2)).unwrap_err().to_string();
        assert!(
            err.contains("holds a lease database of 3 shard(s)"),
            "{err}"
        );
        assert!(err.contains("`[datapath] shards = 3`"), "{err}");
    }

    #[test]
    fn resolve_shards_legacy_store_counts_as_one() {
        let dir = TempDir::new();
        Store::open(&dir.0, options()).unwrap().close().unwrap();
        assert_eq!(recorded_shards(&dir.0).unwrap(), Some(1));
        assert!(resolve_shards(&dir.0, 2, None).is_err());
        assert_eq!(resolve_shards(&dir.0, 0, None).unwrap(), 1);
    }

    #[test]
    fn recorded_shards_malformed_file_explained() {
        let dir = TempDir::new();
        fs::write(dir.0.join(SHARDS_FILE), "zero\n").unwrap();
        let err = recorded_shards(&dir.0).unwrap_err().to_string();
        assert!(err.contains("should hold the shard count"), "{err}");
    }

    #[test]
    fn shard_set_routes_each_client_to_its_shard_and_lists_all() {
        let dir = TempDir::new();
        let config = Config::from_str(CONFIG, "t.toml").unwrap();
        let mut set = ShardSet::open(&dir.0, &config, SERVER_DUID, 3, options()).unwrap();
        assert_eq!(set.count(), 3);
        let mut rng = SplitMix64::new(1);
        let mut out = vec![0u8; 4096];
        let rx = RxMeta {
            interface: "eth0",
            src: "fe80::1".parse().unwrap(),
            dst: "ff02::1:2".parse().unwrap(),
        };
        let mut expected = [0usize; 3];
        for n in 0..24u8 {
            let duid = [0, 3, 0, 1, 2, 0, 0, 0, 1, n];
            let payload = request(&duid);
            let k = shard_of(&payload, 3).unwrap();
            expected[usize::try_from(k).unwrap()] += 1;
            let shard = set.shard_for(&Inbound::parse(&payload)).unwrap();
            assert_eq!(shard.index, k);
            let (engine, mut store) = shard.engine_and_store();
            let o = engine.handle(
                FailoverTime(1000),
                &rx,
                &payload,
                &mut store,
                &mut rng,
                &mut out,
            );
            assert!(matches!(o, Outcome::Reply { .. }), "{o:?}");
        }
        // A datagram without a Client ID goes to shard 0 and is counted there.
        let shard = set.shard_for(&Inbound::parse(&[0xff])).unwrap();
        assert_eq!(shard.index, 0);
        let (engine, mut store) = shard.engine_and_store();
        let o = engine.handle(
            FailoverTime(1000),
            &rx,
            &[0xff],
            &mut store,
            &mut rng,
            &mut out,
        );
        assert_eq!(o, Outcome::Drop(DropReason::Malformed));
        for (shard, want) in set.shards().iter().zip(expected) {
            assert_eq!(shard.store.len(), want, "shard {}", shard.index);
            let (k, s) = shard.engine.partition();
            assert_eq!((k, s), (shard.index, 3));
        }
        assert!(expected.iter().all(|n| *n > 0), "{expected:?}");
        let c = set.counters();
        assert_eq!(c.committed, 24);
        assert_eq!(c.drops(DropReason::Malformed), 1);
        assert_eq!(
            set.shards()[0]
                .engine
                .counters()
                .drops(DropReason::Malformed),
            1
        );
        assert_eq!(set.stored(), 24);
        set.close().unwrap();
        resolve_shards(&dir.0, 3, None).unwrap();
        let stores = open_all_read_only(&dir.0).unwrap();
        assert_eq!(stores.len(), 3);
        let listed: usize = stores.iter().map(|s| crate::leases::collect(s).len()).sum();
        assert_eq!(listed, 24);
    }

    #[test]
    fn open_all_read_only_empty_dir_explained() {
        let dir = TempDir::new();
        let err = open_all_read_only(&dir.0).unwrap_err().to_string();
        assert!(err.contains("holds no lease database"), "{err}");
    }

    #[test]
    fn logging_store_passes_writes_through() {
        let mut inner = tandem_lease::MemStore::with_capacity_limit(1);
        let a = Binding::free(LeaseKind::Address, "2001:db8::1".parse().unwrap(), 128, 0);
        let b = Binding::free(LeaseKind::Address, "2001:db8::2".parse().unwrap(), 128, 0);
        let mut logged = LoggingStore(&mut inner);
        logged.put(&a).unwrap();
        assert!(logged.put(&b).is_err());
        assert_eq!(logged.len(), 1);
        assert_eq!(logged.get(LeaseKind::Address, a.addr), Some(a));
    }
}
