//! The resynchronisation benchmark of issue 9 (RFC 8156 §8.5: a secondary that lost its disk
//! asks for everything with UPDREQALL and the primary streams every binding as BNDUPD before
//! UPDDONE): run by `bench`'s `resync` binary for any size and by
//! `tests/netns_failover_resync.rs` at a CI size. Two real `tandem run` processes in two
//! namespaces joined by a veth, the failover link over mutual TLS (or insecure):
//!
//! ```text
//!  <prefix>-srv-…                                       <prefix>-cli-…
//!  primary  tandem0 fd00:<n>::1  <--- veth, TCP 647 --->  client0 fd00:<n>::2  secondary
//!  state: N ACTIVE bindings, PARTNER-DOWN                 state: empty (a lost disk)
//! ```
//!
//! 1. **Prepare** the primary's state directory with the store API directly
//!    ([`prepare_primary`], not through DHCP): N ACTIVE bindings, two of three IA_NA addresses
//!    and one of three IA_PD prefixes (client c holds an address, every even c a prefix too),
//!    DUID-LL clients, every lease inside the configured pools, in the shard of its client's
//!    DUID and in a pool slot of that shard (docs/failover.md D26, checked against the
//!    engine's own [`tandem_proto::Engine::lease_shard`]), as acknowledged by the partner before
//!    it lost its disk; and a failover state record saying the primary has been in
//!    PARTNER-DOWN (its partner gone) — what an operator's server looks like when the
//!    secondary's disk is replaced.
//! 2. **Start** the primary and wait for PARTNER-DOWN (out of STARTUP); then start the
//!    secondary on an empty state directory (t = 0). It starts in RECOVER (D8), and once the
//!    primary has connected it sends UPDREQALL (§8.5.2); the primary streams every binding
//!    (D28's request scan) within the secondary's MAX_UNACKED_BNDUPD window; UPDDONE follows
//!    the last BNDREPLY and moves the secondary to RECOVER-WAIT (§8.5.2, §8.6).
//! 3. **Measure** from the logs' timestamps (µs): the link up, the primary receiving UPDREQALL,
//!    the secondary entering RECOVER-WAIT (UPDDONE received); the bytes both ways on the veth;
//!    each server's CPU time (utime + stime, all threads, `/proc/<pid>/stat`) over the run.
//! 4. **Check** after a clean stop of both: the secondary's store holds every binding the
//!    primary holds, each in the same shard, with the same status, client, prefix length,
//!    start time of state and expiry (the store API over every shard file of both state
//!    directories); and `tandem leases --json` on the secondary lists as many leases.
//!
//! Timings are reported, never asserted: the CI test checks correctness only.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, BufRead as _, BufReader};
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use tandem::failover::state_file;
use tandem::server::shard::{open_all_read_only, resolve_shards, shard_file_name};
use tandem_failover::{FailoverTime, PartnerRecord, Persisted, StateName};
use tandem_lease::{
    Binding, BindingEvent, BindingFlags, BindingStatus, DuidBuf, LeaseKind, LeaseStore as _,
};
use tandem_proto::{Engine, duid_hash};
use tandem_store::{Store, StoreOptions};
use tandem_wire::failover::option::ServerFlags;

use crate::burst::{self, ServerProcess};
use crate::clients::ScratchDir;
use crate::lab::failover::{failover_field, make_ca};
use crate::netns::NetNs;
use crate::process::run_bounded;
use crate::topo::Lab;

/// The relationship's name in both configurations.
pub const RELATIONSHIP: &str = "resync";
/// The PD pool of the subnet: a /32 cut into /56s (2^24 prefixes).
pub const PD_POOL: Ipv6Addr = Ipv6Addr::new(0x2001, 0x0db8, 0, 0, 0, 0, 0, 0);
/// Length of [`PD_POOL`].
pub const PD_POOL_LEN: u8 = 32;
/// Delegated prefix length.
pub const DELEGATED_LEN: u8 = 56;
/// Preferred and valid lifetimes of the subnet and of the prepared bindings, seconds.
pub const LIFETIMES: (u32, u32) = (1800, 3600);
/// The MCLT of the pair, seconds (RFC 8156 §1's minimum: RECOVER-WAIT is not waited for).
pub const MCLT: u32 = 30;
/// Address slots below this (per shard) are left alone: the lab's own addresses live there.
const ADDR_SLOT_BASE: u128 = 4096;
/// Most bindings a run may prepare (the PD pool has 2^24 prefixes, one in three is used).
pub const MAX_BINDINGS: u64 = 20_000_000;
/// How long a `tandem status` or `tandem partner-down` call may take.
const CTL_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the logs are looked at while waiting.
const POLL: Duration = Duration::from_millis(20);

/// What [`run`] does.
#[derive(Clone, Debug)]
pub struct ResyncOptions {
    /// Bindings the primary holds (and the secondary must receive).
    pub bindings: u64,
    /// Mutual TLS on the failover link (RFC 8156 §10); `false`: `insecure = true`.
    pub tls: bool,
    /// Lease shards of both servers (`[datapath] shards`, the same on both, D26).
    pub shards: u32,
    /// Where the scratch directory (configurations, state directories, logs) is made; `None`:
    /// the system's temporary directory. A tmpfs (`/dev/shm`) makes msync free.
    pub scratch_parent: Option<PathBuf>,
    /// `max-unacked-bndupd` of both servers (the secondary's is the window the primary
    /// streams in, §6.1.1); `None`: the configuration's default.
    pub max_unacked_bndupd: Option<u32>,
    /// How long the secondary may take from its start to RECOVER-WAIT before the run fails.
    pub timeout: Duration,
    /// Also count the secondary's leases with `tandem leases --json` (and time it).
    pub leases_json: bool,
    /// Profile both servers from the secondary's start to RECOVER-WAIT with
    /// `perf record -e cpu-clock -g` into `<dir>/primary.perf.data` and
    /// `<dir>/secondary.perf.data` (read them with `perf report -i FILE`).
    pub perf_dir: Option<PathBuf>,
}

impl Default for ResyncOptions {
    fn default() -> Self {
        Self {
            bindings: 100_000,
            tls: true,
            shards: 1,
            scratch_parent: None,
            max_unacked_bndupd: None,
            timeout: Duration::from_secs(300),
            leases_json: true,
            perf_dir: None,
        }
    }
}

/// What one run measured and found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResyncReport {
    /// Bindings prepared on the primary: addresses and prefixes.
    pub bindings: u64,
    /// Of which IA_NA addresses.
    pub addresses: u64,
    /// Of which IA_PD prefixes.
    pub prefixes: u64,
    /// Shards of each server.
    pub shards: u32,
    /// Mutual TLS on the link.
    pub tls: bool,
    /// The secondary's MAX_UNACKED_BNDUPD (the window), as configured.
    pub window: u32,
    /// Where the state directories were.
    pub scratch: String,
    /// Seconds to write the primary's state directory.
    pub prepare_s: f64,
    /// Seconds from the secondary's start to its `READY`.
    pub ready_s: f64,
    /// Seconds from the secondary's start to communications OK (includes the primary's next
    /// connection attempt, `connect-retry`, and the TLS handshake).
    pub link_up_s: f64,
    /// Seconds from the secondary's start to the primary receiving UPDREQALL.
    pub updreqall_s: f64,
    /// Seconds from the secondary's start to RECOVER-WAIT (UPDDONE received).
    pub upddone_s: f64,
    /// Seconds from UPDREQALL to UPDDONE: the resynchronisation itself.
    pub transfer_s: f64,
    /// Bindings the secondary stored per second of the transfer.
    pub bindings_per_s: f64,
    /// Octets on the veth from the primary to the secondary over the run (IPv6, TCP, TLS).
    pub wire_bytes_to_secondary: u64,
    /// Octets from the secondary to the primary.
    pub wire_bytes_to_primary: u64,
    /// The primary's CPU seconds (utime + stime) from the secondary's start to RECOVER-WAIT.
    pub primary_cpu_s: f64,
    /// The secondary's CPU seconds from its start to RECOVER-WAIT.
    pub secondary_cpu_s: f64,
    /// BNDUPDs the primary sent (its `status`).
    pub bndupd_sent: u64,
    /// Leases of BNDUPDs the secondary accepted and stored (its `status`).
    pub leases_accepted: u64,
    /// Leases of BNDUPDs the secondary rejected.
    pub leases_rejected: u64,
    /// Bindings in the primary's store after the run (the prepared ones, plus any prefixes
    /// the primary gave the secondary, §4.2.2).
    pub primary_stored: u64,
    /// Bindings in the secondary's store after the run.
    pub secondary_stored: u64,
    /// ACTIVE bindings in the secondary's store.
    pub secondary_active: u64,
    /// Bindings of the primary that the secondary lacks, holds in another shard, or holds
    /// with other values (0 when the tables agree).
    pub mismatches: u64,
    /// A few of them, described.
    pub mismatch_examples: Vec<String>,
    /// Lines of `tandem leases --json` on the secondary (`None`: not run).
    pub leases_json_lines: Option<u64>,
    /// Seconds `tandem leases --json` took.
    pub leases_json_s: Option<f64>,
    /// WARN and ERROR lines the two servers logged from the secondary's start to
    /// RECOVER-WAIT (at most 20).
    pub log_problems: Vec<String>,
}

impl ResyncReport {
    /// Everything that is wrong: missing or differing bindings, a count that is not N, a
    /// `tandem leases` count that is not the store's, rejected leases.
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        if self.mismatches > 0 {
            f.push(format!(
                "{} bindings of the primary differ on the secondary, e.g. {:?}",
                self.mismatches, self.mismatch_examples
            ));
        }
        if self.secondary_active != self.bindings {
            f.push(format!(
                "the secondary holds {} ACTIVE bindings, the primary was given {}",
                self.secondary_active, self.bindings
            ));
        }
        if self.secondary_stored != self.primary_stored {
            f.push(format!(
                "the secondary holds {} bindings, the primary {}",
                self.secondary_stored, self.primary_stored
            ));
        }
        if let Some(lines) = self.leases_json_lines
            && lines != self.secondary_stored
        {
            f.push(format!(
                "`tandem leases --json` listed {lines} leases, the store holds {}",
                self.secondary_stored
            ));
        }
        if self.leases_rejected > 0 {
            f.push(format!(
                "the secondary rejected {} leases",
                self.leases_rejected
            ));
        }
        f
    }

    /// The report as one JSON object on one line.
    pub fn json(&self) -> String {
        let opt_u = |v: Option<u64>| v.map_or_else(|| "null".to_owned(), |v| v.to_string());
        let opt_f = |v: Option<f64>| v.map_or_else(|| "null".to_owned(), |v| format!("{v:.3}"));
        format!(
            "{{\"bench\":\"resync\",\"bindings\":{},\"addresses\":{},\"prefixes\":{},\
             \"shards\":{},\"tls\":{},\"window\":{},\"scratch\":\"{}\",\"prepare_s\":{:.3},\
             \"ready_s\":{:.3},\"link_up_s\":{:.3},\"updreqall_s\":{:.3},\"upddone_s\":{:.3},\
             \"transfer_s\":{:.3},\"bindings_per_s\":{:.0},\"wire_mb_to_secondary\":{:.2},\
             \"wire_mb_to_primary\":{:.2},\"primary_cpu_s\":{:.2},\"secondary_cpu_s\":{:.2},\
             \"bndupd_sent\":{},\"leases_accepted\":{},\"leases_rejected\":{},\
             \"primary_stored\":{},\"secondary_stored\":{},\"secondary_active\":{},\
             \"mismatches\":{},\"leases_json_lines\":{},\"leases_json_s\":{},\
             \"log_problems\":{},\"ok\":{}}}",
            self.bindings,
            self.addresses,
            self.prefixes,
            self.shards,
            self.tls,
            self.window,
            self.scratch.replace(['"', '\\'], "_"),
            self.prepare_s,
            self.ready_s,
            self.link_up_s,
            self.updreqall_s,
            self.upddone_s,
            self.transfer_s,
            self.bindings_per_s,
            mb(self.wire_bytes_to_secondary),
            mb(self.wire_bytes_to_primary),
            self.primary_cpu_s,
            self.secondary_cpu_s,
            self.bndupd_sent,
            self.leases_accepted,
            self.leases_rejected,
            self.primary_stored,
            self.secondary_stored,
            self.secondary_active,
            self.mismatches,
            opt_u(self.leases_json_lines),
            opt_f(self.leases_json_s),
            self.log_problems.len(),
            self.failures().is_empty(),
        )
    }

    /// The report for people, several lines.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "resync: {} bindings ({} IA_NA, {} IA_PD), {} shard(s), {}, window {}, state in {}",
            self.bindings,
            self.addresses,
            self.prefixes,
            self.shards,
            if self.tls { "mutual TLS" } else { "insecure" },
            self.window,
            self.scratch
        );
        let _ = writeln!(
            s,
            "  prepared the primary's store in {:.2} s",
            self.prepare_s
        );
        let _ = writeln!(
            s,
            "  secondary start → READY {:.3} s → link up {:.3} s → UPDREQALL {:.3} s → \
             UPDDONE (RECOVER-WAIT) {:.3} s",
            self.ready_s, self.link_up_s, self.updreqall_s, self.upddone_s
        );
        let _ = writeln!(
            s,
            "  UPDREQALL → UPDDONE: {:.3} s, {:.0} bindings/s",
            self.transfer_s, self.bindings_per_s
        );
        let _ = writeln!(
            s,
            "  on the wire: {:.2} MB to the secondary, {:.2} MB back ({:.0} octets per binding)",
            mb(self.wire_bytes_to_secondary),
            mb(self.wire_bytes_to_primary),
            per(
                self.wire_bytes_to_secondary + self.wire_bytes_to_primary,
                self.bindings
            )
        );
        let _ = writeln!(
            s,
            "  CPU: primary {:.2} s, secondary {:.2} s (utime + stime over the run)",
            self.primary_cpu_s, self.secondary_cpu_s
        );
        let _ = writeln!(
            s,
            "  BNDUPD sent {}, leases accepted {}, rejected {}",
            self.bndupd_sent, self.leases_accepted, self.leases_rejected
        );
        let _ = writeln!(
            s,
            "  stores: primary {}, secondary {} ({} ACTIVE), mismatches {}",
            self.primary_stored, self.secondary_stored, self.secondary_active, self.mismatches
        );
        if let (Some(lines), Some(secs)) = (self.leases_json_lines, self.leases_json_s) {
            let _ = writeln!(
                s,
                "  `tandem leases --json` on the secondary: {lines} lines in {secs:.2} s"
            );
        }
        for p in &self.log_problems {
            let _ = writeln!(s, "  log: {p}");
        }
        for f in self.failures() {
            let _ = writeln!(s, "  FAILED: {f}");
        }
        s
    }
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn per(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// What [`prepare_primary`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prepared {
    /// IA_NA bindings.
    pub addresses: u64,
    /// IA_PD bindings.
    pub prefixes: u64,
}

/// The DUID of benchmark client `c`: DUID-LL (RFC 8415 §11.4), hardware type 1 (Ethernet),
/// MAC `02:72:<c, 4 octets>`.
pub fn client_duid(c: u32) -> [u8; 10] {
    let [a, b, x, y] = c.to_be_bytes();
    [0, 3, 0, 1, 0x02, 0x72, a, b, x, y]
}

/// The shard (`0..shards`) of a client's DUID, as `tandem run` computes it
/// (`tandem_proto::duid_hash` mod S, docs/architecture.md).
pub fn shard_of_duid(duid: &[u8], shards: u32) -> u32 {
    u32::try_from(duid_hash(duid) % u64::from(shards.max(1))).unwrap_or(0)
}

/// The N bindings of the benchmark, in order, each with its shard: client c (see
/// [`client_duid`]) holds an IA_NA address (IAID 1); every even c also an IA_PD prefix (IAID
/// 2). Addresses come from `net`'s /64 pool, prefixes from [`PD_POOL`], each from a pool slot
/// of the client's shard (`slot ≡ shard (mod S)`, docs/failover.md D6 / D26), the j-th lease
/// of a shard from its j-th such slot. An address is odd (the primary's half, RFC 8156
/// §4.2.1.1). Each is ACTIVE since its client's last transaction, up to half a preferred
/// lifetime ago, for the valid lifetime, with the partner's acknowledgement of that lifetime
/// recorded (no update pending): a table a partner had fully acknowledged.
#[derive(Debug)]
pub struct Plan {
    net: u128,
    shards: u32,
    now: FailoverTime,
    client: u32,
    /// The client's prefix is next.
    prefix_next: bool,
    next_addr_slot: Vec<u128>,
    next_prefix_slot: Vec<u128>,
    left: u64,
}

impl Plan {
    /// `n` bindings for a subnet whose pool is `net`/64, `shards` shards, at `now`.
    pub fn new(net: Ipv6Addr, shards: u32, now: FailoverTime, n: u64) -> Self {
        let shards = shards.max(1);
        let s = usize::try_from(shards).unwrap_or(1);
        Self {
            net: u128::from(net) & !u128::from(u64::MAX),
            shards,
            now,
            client: 0,
            prefix_next: false,
            next_addr_slot: vec![0; s],
            next_prefix_slot: vec![0; s],
            left: n,
        }
    }

    fn binding(&self, kind: LeaseKind, addr: Ipv6Addr, len: u8, duid: &[u8]) -> Binding {
        let (preferred, valid) = LIFETIMES;
        let c = self.client;
        // Spread the clients' last transactions over half a preferred lifetime.
        let age = c.wrapping_mul(7919) % (preferred / 2);
        let cltt = FailoverTime(self.now.0.wrapping_sub(age));
        let until = cltt.expiry_after(valid);
        let mut b = Binding::free(kind, addr, len, 0);
        // Figure 2 (RFC 8156 §7.2): FREE → ACTIVE by an allocation at the CLTT.
        if tandem_lease::transition::apply(&mut b, BindingEvent::Allocate, cltt, until).is_err() {
            unreachable!("FREE → ACTIVE is transition (1) of Figure 2");
        }
        b.duid = DuidBuf::new(duid).unwrap_or(DuidBuf::EMPTY);
        b.iaid = if kind == LeaseKind::Address { 1 } else { 2 };
        b.preferred = preferred;
        b.valid = valid;
        b.t1 = preferred / 2;
        b.t2 = preferred * 4 / 5;
        // Acknowledged by the partner before its disk was lost (§7.7): nothing pending, the
        // partner lifetime it acked (§4.4: the lease plus half of it) recorded.
        b.flags.set(BindingFlags::UPDATE_PENDING, false);
        b.partner_lifetime = FailoverTime(0);
        b.acked_partner_lifetime = until.expiry_after(valid / 2);
        b
    }
}

impl Iterator for Plan {
    type Item = (u32, Binding);

    fn next(&mut self) -> Option<(u32, Binding)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let duid = client_duid(self.client);
        let shard = shard_of_duid(&duid, self.shards);
        let k = usize::try_from(shard).unwrap_or(0);
        let s = u128::from(self.shards);
        let b = if self.prefix_next {
            let slot = self.next_prefix_slot[k] * s + u128::from(shard);
            self.next_prefix_slot[k] += 1;
            let addr = u128::from(PD_POOL) + (slot << (128 - u32::from(DELEGATED_LEN)));
            let b = self.binding(
                LeaseKind::Prefix,
                Ipv6Addr::from(addr),
                DELEGATED_LEN,
                &duid,
            );
            self.prefix_next = false;
            self.client += 1;
            b
        } else {
            let slot = (ADDR_SLOT_BASE + self.next_addr_slot[k]) * s + u128::from(shard);
            self.next_addr_slot[k] += 1;
            // Slot m holds offsets 2m and 2m + 1 (D6); the odd one is the primary's.
            let addr = self.net + 2 * slot + 1;
            let b = self.binding(LeaseKind::Address, Ipv6Addr::from(addr), 128, &duid);
            if self.client.is_multiple_of(2) {
                self.prefix_next = true;
            } else {
                self.client += 1;
            }
            b
        };
        Some((shard, b))
    }
}

/// The configuration of one server of the pair (`role` "primary" or "secondary") on
/// interface `iface` with address `me`, partner `peer`, the subnet `net`/64 with its address
/// pool and [`PD_POOL`].
pub fn config(
    opts: &ResyncOptions,
    dir: &Path,
    role: &str,
    iface: &str,
    me: Ipv6Addr,
    peer: Ipv6Addr,
    net: Ipv6Addr,
) -> String {
    let (preferred, valid) = LIFETIMES;
    let security = if opts.tls {
        let other = if role == "primary" {
            "secondary"
        } else {
            "primary"
        };
        format!(
            "[failover.tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/{role}.test.pem\"\n\
             key = \"{d}/{role}.test.key\"\npeer-names = [\"{other}.test\"]\n",
            d = dir.display()
        )
    } else {
        "insecure = true\n".to_owned()
    };
    let window = opts
        .max_unacked_bndupd
        .map_or_else(String::new, |w| format!("max-unacked-bndupd = {w}\n"));
    format!(
        "# written by tandem-hwtest's resync benchmark\n[server]\npreference = 255\n\n\
         [datapath]\nmode = \"socket\"\nshards = {shards}\n\n\
         [[interface]]\nname = \"{iface}\"\n\n\
         [[subnet]]\nprefix = \"{net}/64\"\ninterface = \"{iface}\"\n\
         preferred-lifetime = {preferred}\nvalid-lifetime = {valid}\n\n\
         [[subnet.pool]]\nprefix = \"{net}/64\"\n\n\
         [[subnet.pd-pool]]\nprefix = \"{PD_POOL}/{PD_POOL_LEN}\"\ndelegated-length = {DELEGATED_LEN}\n\n\
         [[failover]]\nname = \"{RELATIONSHIP}\"\nrole = \"{role}\"\npeer = \"{peer}\"\n\
         local = \"{me}\"\nmclt = {MCLT}\nconnect-retry = 1\nstartup-time = 2\n{window}{security}",
        shards = opts.shards.max(1),
    )
}

/// Lease store capacity per shard for `n` bindings over `shards`: the mean share plus 5 % and
/// 4096 (the DUID hash does not split clients exactly evenly; the primary may hand prefixes
/// to the secondary, §4.2.2).
pub fn capacity(n: u64, shards: u32) -> u64 {
    let per = n.div_ceil(u64::from(shards.max(1)));
    per + per / 20 + 4096
}

/// Writes the primary's state directory `dir` for configuration `config_text` (see the
/// module docs): the shard count, N bindings through the store API (each shard file opened
/// with `capacity`, written, closed cleanly) and a PARTNER-DOWN failover record. Every lease
/// is checked to lie in its client's shard's pool slots by the engine's own rule.
///
/// # Errors
/// A store or file that cannot be written, or a lease the engine places in another shard.
pub fn prepare_primary(
    dir: &Path,
    config_text: &str,
    net: Ipv6Addr,
    shards: u32,
    n: u64,
    capacity: u64,
) -> anyhow::Result<Prepared> {
    let cfg = tandem_config::Config::from_str(config_text, "primary.toml")
        .map_err(|e| anyhow::anyhow!("the benchmark's configuration: {e}"))?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let shards = resolve_shards(dir, shards.max(1), None)?;
    // The slot arithmetic of the daemon's engines (any shard's engine answers for all).
    let engine =
        Engine::new(cfg.clone(), vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1]).with_partition(0, shards);
    let mut stores = (0..shards)
        .map(|k| {
            Store::open_file(
                dir,
                &shard_file_name(k, shards),
                StoreOptions {
                    capacity,
                    ..StoreOptions::default()
                },
            )
            .with_context(|| format!("creating shard {k} in {}", dir.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let now = FailoverTime::from_unix(unix_now());
    let mut done = Prepared::default();
    for (shard, b) in Plan::new(net, shards, now, n) {
        // D26: the slot's shard must be the client's, as the engines decide it.
        let slot_shard = engine.lease_shard(b.kind, b.addr, b.prefix_len);
        if slot_shard != Some(shard) {
            bail!(
                "{} of client shard {shard} lies in shard {slot_shard:?}'s slot",
                b.addr
            );
        }
        let store = stores
            .get_mut(usize::try_from(shard).unwrap_or(usize::MAX))
            .context("a shard out of range")?;
        store
            .put(&b)
            .with_context(|| format!("storing {} in shard {shard}", b.addr))?;
        match b.kind {
            LeaseKind::Address => done.addresses += 1,
            LeaseKind::Prefix => done.prefixes += 1,
        }
    }
    for s in stores {
        s.close().context("closing a prepared shard")?;
    }
    let fo = cfg
        .failover
        .first()
        .context("the benchmark's configuration has no [[failover]]")?;
    // The primary has served alone since the secondary's disk died: PARTNER-DOWN for an hour,
    // the partner last heard of in NORMAL (§8.4; §8.3.2 resumes PARTNER-DOWN after STARTUP).
    let record = Persisted {
        state: StateName::PartnerDown,
        state_since: FailoverTime(now.0.wrapping_sub(3600)),
        previous: Some(StateName::CommunicationsInterrupted),
        partner: Some(PartnerRecord {
            state: StateName::Normal,
            flags: ServerFlags(ServerFlags::COMMUNICATED),
            since: FailoverTime(now.0.wrapping_sub(86_400)),
            partner_down_time: None,
        }),
        last_contact: Some(FailoverTime(now.0.wrapping_sub(3700))),
        communicated: true,
        resync_all: false,
        mclt: fo.mclt,
        operating_until: now,
    };
    state_file::store(&state_file::path(dir, &fo.name), &record)
        .context("writing the primary's failover record")?;
    Ok(done)
}

/// The Unix time now, in seconds.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Seconds since the Unix epoch, with µs.
fn unix_f64(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The time of a log line of `tandem run` (tracing's default format starts with RFC 3339 UTC,
/// `2026-12-01T22:40:01.123456Z`), as seconds since the Unix epoch.
pub fn log_time(line: &str) -> Option<f64> {
    let stamp = line.split_whitespace().next()?.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|v| v.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(|v| v.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let frac: f64 = format!("0.{frac}").parse().ok()?;
    // Days from the civil date (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(secs as f64 + frac)
}

/// The time of the first line of `log` (from byte `from`) containing any of `needles`.
fn first_logged(log: &str, from: usize, needles: &[&str]) -> Option<f64> {
    log.get(from..)?
        .lines()
        .find(|l| needles.iter().any(|n| l.contains(n)))
        .and_then(log_time)
}

/// utime + stime of process `pid` (all threads) in seconds (`/proc/<pid>/stat` fields 14 and
/// 15, counted after the command name's closing parenthesis).
pub fn cpu_seconds(pid: i32) -> io::Result<f64> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = text
        .rfind(')')
        .and_then(|i| text.get(i + 1..))
        .ok_or_else(|| io::Error::other("no command name in /proc/<pid>/stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> io::Result<u64> {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::other("short /proc/<pid>/stat"))
    };
    // After `)`: index 0 is field 3 (state), so utime (14) is index 11, stime 12.
    let ticks = field(11)? + field(12)?;
    // SAFETY: sysconf reads a configuration value; no pointers are involved.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz } else { 100 };
    Ok(ticks as f64 / hz as f64)
}

/// Octets received and sent on `iface` in `ns` (`ip -s -j link`).
fn link_bytes(ns: &NetNs, iface: &str) -> anyhow::Result<(u64, u64)> {
    let out = ns.ip(&["-s", "-j", "link", "show", "dev", iface])?;
    let num = |dir: &str| -> Option<u64> {
        let at = out.find(&format!("\"{dir}\":{{"))?;
        let rest = out.get(at..)?;
        let b = rest.find("\"bytes\":")? + "\"bytes\":".len();
        let rest = rest.get(b..)?;
        let end = rest.find(|c: char| !c.is_ascii_digit())?;
        rest.get(..end)?.parse().ok()
    };
    Ok((
        num("rx").context("no rx bytes in `ip -s -j link`")?,
        num("tx").context("no tx bytes in `ip -s -j link`")?,
    ))
}

/// `perf record -e cpu-clock -g` of one process (software clock samples: this VM has no
/// hardware counters), stopped with SIGINT so perf writes its file.
#[derive(Debug)]
struct Perf(Child);

impl Perf {
    fn record(pid: i32, out: &Path) -> anyhow::Result<Self> {
        let child = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "997", "-g", "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("running perf record (is `perf` installed?)")?;
        Ok(Self(child))
    }

    fn stop(mut self) -> anyhow::Result<()> {
        let pid = i32::try_from(self.0.id()).context("perf's pid")?;
        // SAFETY: plain syscall on our own unreaped child (we hold its `Child`), so the pid
        // cannot have been reused.
        if unsafe { libc::kill(pid, libc::SIGINT) } != 0 {
            return Err(io::Error::last_os_error()).context("stopping perf");
        }
        self.0.wait().context("waiting for perf")?;
        Ok(())
    }
}

/// One server of the pair.
#[derive(Debug)]
struct Side {
    config: PathBuf,
    state: PathBuf,
    log: PathBuf,
}

impl Side {
    fn start(&self, bin: &Path, ns: &NetNs, capacity: u64) -> anyhow::Result<ServerProcess> {
        ServerProcess::start(bin, ns, &self.config, &self.state, capacity, &self.log)
            .with_context(|| format!("starting tandem run on {}", self.state.display()))
    }

    fn status(&self, bin: &Path) -> Option<String> {
        let out = run_bounded(
            Command::new(bin)
                .args(["status", "--json", "--state-dir"])
                .arg(&self.state),
            CTL_TIMEOUT,
        )
        .ok()?;
        out.status.success().then_some(out.stdout)
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Waits until `side`'s log (from byte `from`) has a line with any of `needles`; fails after
/// `within` or when `proc_` exits.
fn wait_logged(
    side: &Side,
    proc_: &mut ServerProcess,
    from: usize,
    needles: &[&str],
    within: Duration,
) -> anyhow::Result<()> {
    let until = Instant::now() + within;
    loop {
        let log = side.log();
        if log
            .get(from..)
            .is_some_and(|l| l.lines().any(|l| needles.iter().any(|n| l.contains(n))))
        {
            return Ok(());
        }
        if !proc_.running()? {
            bail!(
                "{} exited while waiting for {needles:?}; log:\n{}",
                side.state.display(),
                tail(&log)
            );
        }
        if Instant::now() >= until {
            bail!(
                "{} did not log {needles:?} within {within:?}; log:\n{}",
                side.state.display(),
                tail(&log)
            );
        }
        sleep(POLL);
    }
}

/// The last 40 lines of a log.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// A counter of the relationship in `status --json`.
fn counter(status: &str, name: &str) -> u64 {
    failover_field(status, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// What one binding must look like on both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Summary {
    shard: u32,
    status: BindingStatus,
    prefix_len: u8,
    iaid: u32,
    duid: u64,
    start: FailoverTime,
    expiry: FailoverTime,
}

impl Summary {
    fn of(shard: u32, b: &Binding) -> Self {
        Self {
            shard,
            status: b.status,
            prefix_len: b.prefix_len,
            iaid: b.iaid,
            duid: duid_hash(b.duid.as_bytes()),
            start: b.start_time_of_state,
            expiry: b.state_expiration_time,
        }
    }
}

/// Every binding of the stores of state directory `dir`, by shard.
fn each_binding(dir: &Path, f: &mut dyn FnMut(u32, &Binding)) -> anyhow::Result<()> {
    let stores = open_all_read_only(dir)?;
    for (k, store) in stores.iter().enumerate() {
        let k = u32::try_from(k).unwrap_or(u32::MAX);
        let mut cursor = Some(0);
        while let Some(c) = cursor {
            cursor = store.scan(c, 4096, &mut |b| f(k, b));
        }
    }
    Ok(())
}

/// Compares the primary's and the secondary's stores (after both stopped): counts, and every
/// binding of the primary found on the secondary with the same [`Summary`].
fn compare_tables(
    primary: &Path,
    secondary: &Path,
    report: &mut ResyncReport,
) -> anyhow::Result<()> {
    let mut want: HashMap<(LeaseKind, Ipv6Addr), Summary> = HashMap::new();
    each_binding(primary, &mut |k, b| {
        want.insert((b.kind, b.addr), Summary::of(k, b));
    })?;
    report.primary_stored = want.len() as u64;
    let mut stored = 0u64;
    let mut active = 0u64;
    let mut mismatches = 0u64;
    let mut examples = Vec::new();
    each_binding(secondary, &mut |k, b| {
        stored += 1;
        if b.status == BindingStatus::ACTIVE {
            active += 1;
        }
        let got = Summary::of(k, b);
        match want.remove(&(b.kind, b.addr)) {
            Some(w) if w == got => {}
            other => {
                mismatches += 1;
                if examples.len() < 5 {
                    examples.push(format!("{}: primary {other:?}, secondary {got:?}", b.addr));
                }
            }
        }
    })?;
    for ((_, addr), w) in want.iter().take(5usize.saturating_sub(examples.len())) {
        examples.push(format!("{addr}: primary {w:?}, missing on the secondary"));
    }
    mismatches += want.len() as u64;
    report.secondary_stored = stored;
    report.secondary_active = active;
    report.mismatches = mismatches;
    report.mismatch_examples = examples;
    Ok(())
}

/// `tandem leases --json --state-dir <dir>`: its lines, counted as they stream, and the time.
fn leases_json(bin: &Path, dir: &Path) -> anyhow::Result<(u64, f64)> {
    let started = Instant::now();
    let mut child = Command::new(bin)
        .args(["leases", "--json", "--state-dir"])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running tandem leases")?;
    let out = child.stdout.take().context("tandem leases has no stdout")?;
    let mut lines = 0u64;
    let mut reader = BufReader::with_capacity(1 << 20, out);
    let mut buf = Vec::new();
    while reader.read_until(b'\n', &mut buf)? > 0 {
        lines += 1;
        buf.clear();
    }
    let status = child.wait()?;
    if !status.success() {
        bail!("tandem leases --json exited with {status}");
    }
    Ok((lines, started.elapsed().as_secs_f64()))
}

/// Runs the benchmark once (module docs) with the `tandem` program `bin`; `progress` gets a
/// line per step. Needs root (namespaces).
///
/// # Errors
/// The lab, a server, or a step failing, or the secondary not reaching RECOVER-WAIT within
/// [`ResyncOptions::timeout`]; a finished run whose tables differ is *not* an error but
/// [`ResyncReport::failures`].
pub fn run(
    bin: &Path,
    opts: &ResyncOptions,
    progress: &mut dyn FnMut(&str),
) -> anyhow::Result<ResyncReport> {
    if opts.bindings == 0 || opts.bindings > MAX_BINDINGS {
        bail!("--bindings must be 1..={MAX_BINDINGS}");
    }
    let shards = opts.shards.max(1);
    let lab = Lab::new("rsync", 1).context("the lab's namespaces")?;
    let dir = match &opts.scratch_parent {
        Some(p) => ScratchDir::new_in(p, "resync"),
        None => ScratchDir::new("resync"),
    }
    .context("the scratch directory")?;
    let s = lab.server_addr().segments();
    let net = Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
    if opts.tls {
        make_ca(dir.path(), "ca", &["primary.test", "secondary.test"])?;
    }
    let side = |role: &str, iface: &str, me: Ipv6Addr, peer: Ipv6Addr| -> anyhow::Result<Side> {
        let text = config(opts, dir.path(), role, iface, me, peer, net);
        let config = dir.write(&format!("{role}.toml"), &text, 0o644)?;
        let log = dir.file(&format!("{role}.log"));
        burst::fresh_log(&log)?;
        Ok(Side {
            config,
            state: dir.file(&format!("{role}-state")),
            log,
        })
    };
    let primary = side(
        "primary",
        lab.server_if(),
        lab.server_addr(),
        lab.client_addr(),
    )?;
    let secondary = side(
        "secondary",
        lab.client_if(),
        lab.client_addr(),
        lab.server_addr(),
    )?;
    let cap = capacity(opts.bindings, shards);
    let mut report = ResyncReport {
        bindings: opts.bindings,
        shards,
        tls: opts.tls,
        window: opts
            .max_unacked_bndupd
            .unwrap_or(tandem_config::DEFAULT_MAX_UNACKED_BNDUPD),
        scratch: dir.path().display().to_string(),
        ..ResyncReport::default()
    };

    progress(&format!(
        "preparing {} bindings in {} shard(s) of capacity {cap} in {}",
        opts.bindings,
        shards,
        primary.state.display()
    ));
    let started = Instant::now();
    let text = fs::read_to_string(&primary.config)?;
    let prepared = prepare_primary(&primary.state, &text, net, shards, opts.bindings, cap)?;
    report.prepare_s = started.elapsed().as_secs_f64();
    report.addresses = prepared.addresses;
    report.prefixes = prepared.prefixes;

    progress("starting the primary (PARTNER-DOWN after STARTUP)");
    let mut p = primary.start(bin, lab.server_ns(), cap)?;
    wait_logged(
        &primary,
        &mut p,
        0,
        &["STARTUP -> PARTNER-DOWN"],
        Duration::from_secs(30),
    )?;
    let p_pid = p.pid()?;
    let p_log_from = primary.log().len();
    let (rx0, tx0) = link_bytes(lab.server_ns(), lab.server_if())?;
    let p_cpu0 = cpu_seconds(p_pid)?;
    let perf_primary = match &opts.perf_dir {
        Some(d) => Some(Perf::record(p_pid, &d.join("primary.perf.data"))?),
        None => None,
    };

    progress("starting the secondary on an empty state directory (t = 0)");
    let t0 = SystemTime::now();
    let mut sec = secondary.start(bin, lab.client_ns(), cap)?;
    report.ready_s = t0.elapsed().map_or(0.0, |d| d.as_secs_f64());
    let s_pid = sec.pid()?;
    let perf_secondary = match &opts.perf_dir {
        Some(d) => Some(Perf::record(s_pid, &d.join("secondary.perf.data"))?),
        None => None,
    };
    wait_logged(
        &secondary,
        &mut sec,
        0,
        &["RECOVER -> RECOVER-WAIT", "RECOVER -> RECOVER-DONE"],
        opts.timeout,
    )?;
    let p_cpu1 = cpu_seconds(p_pid)?;
    let s_cpu1 = cpu_seconds(s_pid)?;
    let (rx1, tx1) = link_bytes(lab.server_ns(), lab.server_if())?;
    report.primary_cpu_s = p_cpu1 - p_cpu0;
    report.secondary_cpu_s = s_cpu1;
    report.wire_bytes_to_secondary = tx1.saturating_sub(tx0);
    report.wire_bytes_to_primary = rx1.saturating_sub(rx0);
    for perf in [perf_primary, perf_secondary].into_iter().flatten() {
        perf.stop()?;
    }

    let t0 = unix_f64(t0);
    let (plog, slog) = (primary.log(), secondary.log());
    // What went wrong during the run (not the primary's refused attempts before the
    // secondary existed, nor the DISCONNECTs of the stop below).
    for (name, log, from) in [("primary", &plog, p_log_from), ("secondary", &slog, 0)] {
        let lines = log.get(from..).unwrap_or_default().lines();
        for l in lines.filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")) {
            if report.log_problems.len() < 20 {
                report.log_problems.push(format!("{name}: {l}"));
            }
        }
    }
    let at = |log: &str, from: usize, needles: &[&str], what: &str| -> anyhow::Result<f64> {
        first_logged(log, from, needles)
            .map(|t| t - t0)
            .with_context(|| format!("no timestamped line for {what}:\n{}", tail(log)))
    };
    report.link_up_s = at(&slog, 0, &["communications OK"], "the link up")?;
    report.updreqall_s = at(
        &plog,
        p_log_from,
        &["the partner asked for all bindings"],
        "UPDREQALL",
    )?;
    report.upddone_s = at(
        &slog,
        0,
        &["RECOVER -> RECOVER-WAIT", "RECOVER -> RECOVER-DONE"],
        "UPDDONE",
    )?;
    report.transfer_s = report.upddone_s - report.updreqall_s;
    if report.transfer_s > 0.0 {
        report.bindings_per_s = opts.bindings as f64 / report.transfer_s;
    }
    let pst = primary.status(bin).unwrap_or_default();
    let sst = secondary.status(bin).unwrap_or_default();
    report.bndupd_sent = counter(&pst, "bndupd_sent");
    report.leases_accepted = counter(&sst, "partner_leases_accepted");
    report.leases_rejected = counter(&sst, "partner_leases_rejected");
    progress(&format!(
        "RECOVER-WAIT after {:.3} s; stopping both",
        report.upddone_s
    ));
    sec.stop()
        .map_err(|e| anyhow::anyhow!("the secondary's stop: {e}"))?;
    p.stop()
        .map_err(|e| anyhow::anyhow!("the primary's stop: {e}"))?;

    progress("comparing both stores");
    compare_tables(&primary.state, &secondary.state, &mut report)?;
    if opts.leases_json {
        progress("tandem leases --json on the secondary");
        let (lines, secs) = leases_json(bin, &secondary.state)?;
        report.leases_json_lines = Some(lines);
        report.leases_json_s = Some(secs);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_time_reads_tracings_rfc3339_utc_stamp() {
        let t = log_time("2026-12-01T22:40:01.250000Z  INFO tandem: x").unwrap();
        // 2026-12-01T00:00:00Z is 1796083200.
        assert!((t - (1_796_083_200.0 + 22.0 * 3600.0 + 40.0 * 60.0 + 1.25)).abs() < 1e-6);
        assert_eq!(log_time("INFO no stamp"), None);
    }

    #[test]
    fn plan_gives_two_addresses_per_prefix_in_each_clients_shard_slots() {
        let net = Ipv6Addr::new(0xfd00, 7, 0, 0, 0, 0, 0, 0);
        for shards in [1, 2, 3] {
            let all: Vec<_> = Plan::new(net, shards, FailoverTime(1_000_000), 3000).collect();
            assert_eq!(all.len(), 3000);
            let prefixes = all
                .iter()
                .filter(|(_, b)| b.kind == LeaseKind::Prefix)
                .count();
            assert_eq!(prefixes, 1000, "one in three is a prefix");
            let mut keys = std::collections::HashSet::new();
            for (shard, b) in &all {
                assert!(keys.insert((b.kind, b.addr)), "{} twice", b.addr);
                assert_eq!(*shard, shard_of_duid(b.duid.as_bytes(), shards));
                assert_eq!(b.status, BindingStatus::ACTIVE);
                assert!(!b.flags.contains(BindingFlags::UPDATE_PENDING));
                let s = u128::from(shards);
                match b.kind {
                    LeaseKind::Address => {
                        let off = u128::from(b.addr) - u128::from(net);
                        assert_eq!(off % 2, 1, "odd: the primary's (RFC 8156 §4.2.1.1)");
                        assert_eq!((off >> 1) % s, u128::from(*shard));
                        assert_eq!(b.iaid, 1);
                    }
                    LeaseKind::Prefix => {
                        let slot = (u128::from(b.addr) - u128::from(PD_POOL)) >> 72;
                        assert_eq!(slot % s, u128::from(*shard));
                        assert_eq!(b.prefix_len, DELEGATED_LEN);
                        assert_eq!(b.iaid, 2);
                    }
                }
            }
        }
    }

    #[test]
    fn report_fails_on_any_missing_or_differing_binding() {
        let ok = ResyncReport {
            bindings: 10,
            primary_stored: 10,
            secondary_stored: 10,
            secondary_active: 10,
            leases_json_lines: Some(10),
            ..ResyncReport::default()
        };
        assert!(ok.failures().is_empty(), "{:?}", ok.failures());
        assert!(ok.json().ends_with("\"ok\":true}"));
        for bad in [
            ResyncReport {
                mismatches: 1,
                ..ok.clone()
            },
            ResyncReport {
                secondary_active: 9,
                ..ok.clone()
            },
            ResyncReport {
                leases_json_lines: Some(9),
                ..ok.clone()
            },
        ] {
            assert!(!bad.failures().is_empty(), "{bad:?}");
            assert!(bad.json().ends_with("\"ok\":false}"));
        }
    }
}
