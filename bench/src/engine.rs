//! The workload behind benches/engine.rs: DHCPv6 exchanges of **new** clients through
//! `tandem_proto::Engine::handle` with the real memory-mapped lease store (`tandem_store`, in a
//! temporary directory), kept here so that unit tests check it does the real work.
//!
//! Every exchange is a client the server has never seen: a fresh DUID-EN (RFC 8415 §11.3,
//! enterprise number 32473, RFC 5612) with a 64-bit counter as its identifier. The subnet's
//! address pool is a whole /64, so it never runs out; the store does (its capacity is fixed
//! when the file is created), and [`EngineBench::renew_store`] replaces it with an empty one, which
//! the benchmark does outside its timed sections.
//!
//! Only the engine's public API is used: `Engine::new`, `Engine::handle`, `RxMeta`, `Outcome`.

use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tandem_config::Config;
use tandem_lease::{FailoverTime, LeaseStore};
use tandem_proto::{Engine, Outcome, RxMeta, SplitMix64};
use tandem_store::{Store, StoreError, StoreOptions};
use tandem_wire::dhcp::MessageType;
use tandem_wire::dhcp::message::Message;
use tandem_wire::option::OptionCode;

/// The served configuration: one subnet on `eth0` whose whole /64 is the address pool.
pub const CONFIG: &str = r#"
[[interface]]
name = "eth0"

[[subnet]]
prefix = "2001:db8:1::/64"
interface = "eth0"
preferred-lifetime = 3600
valid-lifetime = 7200

  [[subnet.pool]]
  prefix = "2001:db8:1::/64"

  [subnet.options]
  dns-servers = ["2001:db8::53"]
  domain-search = ["example.net"]
"#;

/// The server DUID (DUID-LLT, RFC 8415 §11.2).
pub const SERVER_DUID: &[u8] = &[0, 1, 0, 1, 0x2a, 0, 0, 1, 2, 0, 0, 0, 0, 0x01];

/// DUID-EN type and enterprise number 32473 (RFC 5612, for documentation).
const DUID_EN_PREFIX: [u8; 6] = [0, 2, 0, 0, 0x7e, 0xd9];

/// Length of a client DUID: the DUID-EN prefix and an 8-byte counter.
const CLIENT_DUID_LEN: usize = DUID_EN_PREFIX.len() + 8;

/// The clock the engine is given (one fixed second: nothing here expires).
const NOW: FailoverTime = FailoverTime(1_000_000_000);

/// An engine, a lease store file of its own and message templates for new clients.
#[derive(Debug)]
pub struct EngineBench {
    engine: Engine,
    store: Store,
    /// The temporary directory; the store lives in `<dir>/<generation>`.
    dir: PathBuf,
    generation: u32,
    capacity: u64,
    rng: SplitMix64,
    clients: u64,
    solicit: Template,
    request: Template,
    out: Vec<u8>,
}

/// A client message whose DUID (and, for a REQUEST, IA Address) is patched in place.
#[derive(Debug)]
struct Template {
    bytes: Vec<u8>,
    duid_at: usize,
    /// Offset of the IA Address option's address, if the message has one.
    addr_at: Option<usize>,
}

impl EngineBench {
    /// An engine serving [`CONFIG`] and an empty store of `capacity` bindings in a new
    /// temporary directory (removed on drop).
    pub fn new(capacity: u64) -> Result<Self, StoreError> {
        static DIRS: AtomicU32 = AtomicU32::new(0);
        let n = DIRS.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("tandem-bench-engine-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = open(&dir.join("0"), capacity)?;
        let config = Config::from_str(CONFIG, "bench.toml")
            .unwrap_or_else(|e| panic!("the bench configuration is invalid: {e:?}"));
        Ok(Self {
            engine: Engine::new(config, SERVER_DUID.to_vec()),
            store,
            dir,
            generation: 0,
            capacity,
            rng: SplitMix64::new(0x007a_4de3),
            clients: 0,
            solicit: Template::solicit(),
            request: Template::request(),
            out: vec![0; 1500],
        })
    }

    /// Bindings the store can still take.
    pub fn room(&self) -> u64 {
        let used = u64::try_from(self.store.len()).unwrap_or(u64::MAX);
        self.capacity.saturating_sub(used)
    }

    /// Bindings in the store.
    pub fn leases(&self) -> usize {
        self.store.len()
    }

    /// Replaces the store with an empty one of the same capacity (the engine keeps no state
    /// about the store's contents, so it serves the new one as it did the old).
    pub fn renew_store(&mut self) -> Result<(), StoreError> {
        let old = self.store_dir();
        self.generation += 1;
        let store = open(&self.store_dir(), self.capacity)?;
        // The old store is dropped (unmapped, unlocked) before its directory goes.
        drop(std::mem::replace(&mut self.store, store));
        let _ = std::fs::remove_dir_all(old);
        Ok(())
    }

    fn store_dir(&self) -> PathBuf {
        self.dir.join(self.generation.to_string())
    }

    /// A new client's SOLICIT (IA_NA) → ADVERTISE; returns the address advertised. Commits
    /// nothing (RFC 8415 §18.3.1).
    pub fn solicit_advertise(&mut self) -> Ipv6Addr {
        self.clients += 1;
        self.solicit.set_client(self.clients);
        let len = self.handle(Which::Solicit);
        advertised(self.out.get(..len).unwrap_or_default())
    }

    /// The current client's REQUEST for `addr` (IA_NA with that address as its hint, RFC 8415
    /// §18.2.2) → REPLY. Commits one binding.
    pub fn request_reply(&mut self, addr: Ipv6Addr) -> usize {
        self.request.set_client(self.clients);
        self.request.set_addr(addr);
        self.handle(Which::Request)
    }

    /// A new client's whole exchange: SOLICIT → ADVERTISE, then REQUEST for the advertised
    /// address → REPLY (the client side, patching two templates and reading the ADVERTISE,
    /// included). Commits one binding.
    pub fn exchange(&mut self) -> usize {
        let addr = self.solicit_advertise();
        self.request_reply(addr)
    }

    /// A new client's REQUEST without a SOLICIT before it, for a random address of the pool
    /// (what an ADVERTISE would have offered: almost surely free) → REPLY. Commits one binding.
    pub fn request_only(&mut self) -> usize {
        self.clients += 1;
        let host = {
            use tandem_proto::Entropy as _;
            self.rng.next_u64()
        };
        let addr = Ipv6Addr::from(0x2001_0db8_0001_0000_u128 << 64 | u128::from(host));
        self.request_reply(addr)
    }

    /// The last answer.
    pub fn last_answer(&self, len: usize) -> &[u8] {
        self.out.get(..len).unwrap_or_default()
    }

    fn handle(&mut self, which: Which) -> usize {
        let payload = match which {
            Which::Solicit => &self.solicit.bytes,
            Which::Request => &self.request.bytes,
        };
        let rx = RxMeta {
            interface: "eth0",
            src: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
            dst: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2),
        };
        let outcome = self.engine.handle(
            NOW,
            &rx,
            payload,
            &mut self.store,
            &mut self.rng,
            &mut self.out,
        );
        match outcome {
            Outcome::Reply { len } => len,
            Outcome::Drop(reason) => {
                panic!("{which:?} of client {} dropped: {reason:?}", self.clients)
            }
        }
    }
}

impl Drop for EngineBench {
    fn drop(&mut self) {
        // Best effort: a leftover directory under the temp dir is harmless.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Clone, Copy, Debug)]
enum Which {
    Solicit,
    Request,
}

fn open(dir: &std::path::Path, capacity: u64) -> Result<Store, StoreError> {
    // The daemon msyncs every flush interval from its own loop; nothing here calls flush.
    let options = StoreOptions {
        capacity,
        flush_interval: Duration::from_secs(3600),
    };
    Store::open(dir, options)
}

impl Template {
    /// SOLICIT: Client ID, Elapsed Time, ORO (DNS servers, domain list), IA_NA 1 (RFC 8415
    /// §18.2.1).
    fn solicit() -> Self {
        let mut b = header(MessageType::SOLICIT);
        let duid_at = push_client_id(&mut b);
        push_common(&mut b);
        push_opt(&mut b, OptionCode::IA_NA, &ia_na_fixed());
        Self {
            bytes: b,
            duid_at,
            addr_at: None,
        }
    }

    /// REQUEST: Client ID, our Server ID, Elapsed Time, ORO, IA_NA 1 with one IA Address
    /// (RFC 8415 §18.2.2).
    fn request() -> Self {
        let mut b = header(MessageType::REQUEST);
        let duid_at = push_client_id(&mut b);
        push_opt(&mut b, OptionCode::SERVERID, SERVER_DUID);
        push_common(&mut b);
        let mut ia = ia_na_fixed();
        let mut iaaddr = vec![0; 16];
        iaaddr.extend_from_slice(&[0; 8]); // preferred, valid: the client's hint is 0
        // IA_NA option header (4) + IAID, T1, T2 (12) + IAADDR header (4).
        let addr_at = b.len() + 4 + ia.len() + 4;
        push_opt(&mut ia, OptionCode::IAADDR, &iaaddr);
        push_opt(&mut b, OptionCode::IA_NA, &ia);
        Self {
            bytes: b,
            duid_at,
            addr_at: Some(addr_at),
        }
    }

    fn set_client(&mut self, client: u64) {
        let at = self.duid_at + DUID_EN_PREFIX.len();
        if let Some(id) = self.bytes.get_mut(at..at + 8) {
            id.copy_from_slice(&client.to_be_bytes());
        }
    }

    fn set_addr(&mut self, addr: Ipv6Addr) {
        if let Some(at) = self.addr_at
            && let Some(a) = self.bytes.get_mut(at..at + 16)
        {
            a.copy_from_slice(&addr.octets());
        }
    }
}

/// Message type and a fixed transaction id (RFC 8415 §8).
fn header(t: MessageType) -> Vec<u8> {
    vec![t.0, 0x12, 0x34, 0x56]
}

/// Appends a Client Identifier with a zero counter; returns where its DUID starts.
fn push_client_id(b: &mut Vec<u8>) -> usize {
    let mut duid = DUID_EN_PREFIX.to_vec();
    duid.resize(CLIENT_DUID_LEN, 0);
    push_opt(b, OptionCode::CLIENTID, &duid);
    b.len() - CLIENT_DUID_LEN
}

/// Elapsed Time 0 and an ORO for DNS servers and the domain list (RFC 3646).
fn push_common(b: &mut Vec<u8>) {
    push_opt(b, OptionCode::ELAPSED_TIME, &[0, 0]);
    let oro: Vec<u8> = [OptionCode::DNS_SERVERS, OptionCode::DOMAIN_LIST]
        .iter()
        .flat_map(|c| c.0.to_be_bytes())
        .collect();
    push_opt(b, OptionCode::ORO, &oro);
}

/// IAID 1, T1 0, T2 0 (the server chooses, RFC 8415 §21.4).
fn ia_na_fixed() -> Vec<u8> {
    let mut ia = 1u32.to_be_bytes().to_vec();
    ia.extend_from_slice(&[0; 8]);
    ia
}

fn push_opt(b: &mut Vec<u8>, code: OptionCode, data: &[u8]) {
    b.extend_from_slice(&code.0.to_be_bytes());
    let len = u16::try_from(data.len()).expect("bench options are short");
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(data);
}

/// The first address of the first IA_NA of an ADVERTISE.
fn advertised(advertise: &[u8]) -> Ipv6Addr {
    let first = Message::parse(advertise)
        .ok()
        .and_then(|m| m.ia_nas().next()?.ok())
        .and_then(|ia| ia.addresses().next()?.ok());
    first.map_or_else(|| panic!("an ADVERTISE without an address"), |a| a.addr)
}

#[cfg(test)]
mod tests {
    use tandem_lease::{BindingStatus, LeaseKind};

    use super::*;

    #[test]
    fn exchange_commits_an_active_lease_for_each_new_client() {
        let mut bench = EngineBench::new(16).unwrap();
        let mut seen = Vec::new();
        for client in 1..=3u64 {
            let addr = bench.solicit_advertise();
            assert_eq!(
                bench.leases(),
                usize::try_from(client - 1).unwrap(),
                "ADVERTISE commits"
            );
            let len = bench.request_reply(addr);
            let reply = Message::parse(bench.last_answer(len)).unwrap();
            assert_eq!(reply.msg_type, MessageType::REPLY);
            let duid = reply.client_id().unwrap().unwrap();
            assert_eq!(&duid.as_bytes()[6..], client.to_be_bytes());
            let got = advertised(bench.last_answer(len));
            assert_eq!(got, addr, "the REPLY grants the advertised address");
            let b = bench.store.get(LeaseKind::Address, addr).unwrap();
            assert_eq!(b.status, BindingStatus::ACTIVE);
            assert_eq!(b.duid.as_bytes(), duid.as_bytes());
            seen.push(addr);
        }
        seen.dedup();
        assert_eq!(seen.len(), 3);
        assert_eq!(bench.room(), 13);
    }

    #[test]
    fn request_only_commits_and_renewed_store_is_empty() {
        let mut bench = EngineBench::new(2).unwrap();
        bench.request_only();
        bench.exchange();
        assert_eq!(bench.room(), 0);
        let old = bench.store_dir();
        bench.renew_store().unwrap();
        assert_eq!((bench.room(), bench.leases()), (2, 0));
        assert!(!old.exists(), "the old store's directory is removed");
        bench.exchange();
        assert_eq!(bench.leases(), 1);
    }
}
