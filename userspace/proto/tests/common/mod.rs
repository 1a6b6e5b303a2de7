//! Shared helpers for the engine tests: a test configuration, message builders, reply
//! decoders and a store that counts lookups.

#![allow(
    dead_code,
    unreachable_pub,
    reason = "each test file uses a different subset of the helpers; pub is for the test modules"
)]

use std::cell::Cell;
use std::net::Ipv6Addr;

use tandem_config::Config;
use tandem_lease::{Binding, ClientKey, FailoverTime, LeaseKind, LeaseStore, MemStore};
use tandem_proto::{Engine, Outcome, RxMeta, SplitMix64};
use tandem_wire::dhcp::message::Message;
use tandem_wire::dhcp::relay::RelayChain;
use tandem_wire::dhcp::{MessageType, StatusCode};
use tandem_wire::option::OptionCode;

pub const SERVER_DUID: &[u8] = &[0, 1, 0, 1, 0x2a, 0, 0, 1, 2, 0, 0, 0, 0, 0xee];
pub const RESERVED_DUID: &[u8] = &[0, 3, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff];

pub const CONFIG: &str = r#"
[server]
preference = 7

[[interface]]
name = "eth0"

[[interface]]
name = "eth9"

[[subnet]]
prefix = "2001:db8:1::/64"
interface = "eth0"
preferred-lifetime = 3600
valid-lifetime = 7200
t1 = 1800
t2 = 2880

  [[subnet.pool]]
  range = "2001:db8:1::100-2001:db8:1::103"

  [[subnet.pd-pool]]
  prefix = "2001:db8:8000::/40"
  delegated-length = 56

  [[subnet.reservation]]
  duid = "00:03:00:01:aa:bb:cc:dd:ee:ff"
  address = "2001:db8:1::101"
  prefix = "2001:db8:8000:ff00::/56"

  [subnet.options]
  dns-servers = ["2001:db8::53", "2001:db8::54"]
  domain-search = ["example.net"]
  sol-max-rt = 3600
  information-refresh-time = 86400

[[subnet]]
prefix = "2001:db8:2::/64"
interface-id = "relay-port-7"
rapid-commit = true
preferred-lifetime = 1000
valid-lifetime = 2000

  [[subnet.pool]]
  prefix = "2001:db8:2::/64"

  [[subnet.pd-pool]]
  prefix = "2001:db8:4000::/40"
  delegated-length = 56

  [[subnet.pd-pool]]
  prefix = "2001:db8:5000::/48"
  delegated-length = 60
"#;

pub fn config() -> Config {
    Config::from_str(CONFIG, "test.toml").expect("valid test data")
}

pub fn client_duid(n: u8) -> Vec<u8> {
    vec![0, 3, 0, 1, 2, 0, 0, 0, 0, n]
}

pub fn a(s: &str) -> Ipv6Addr {
    s.parse().expect("valid test data")
}

pub fn opt(code: u16, data: &[u8]) -> Vec<u8> {
    let mut v = code.to_be_bytes().to_vec();
    v.extend_from_slice(
        &u16::try_from(data.len())
            .expect("valid test data")
            .to_be_bytes(),
    );
    v.extend_from_slice(data);
    v
}

pub fn client_id(duid: &[u8]) -> Vec<u8> {
    opt(1, duid)
}

pub fn server_id() -> Vec<u8> {
    opt(2, SERVER_DUID)
}

pub fn oro(codes: &[u16]) -> Vec<u8> {
    let data: Vec<u8> = codes.iter().flat_map(|c| c.to_be_bytes()).collect();
    opt(6, &data)
}

pub fn ia_na(iaid: u32, addrs: &[Ipv6Addr]) -> Vec<u8> {
    let mut d = iaid.to_be_bytes().to_vec();
    d.extend_from_slice(&[0; 8]);
    for ad in addrs {
        let mut x = ad.octets().to_vec();
        x.extend_from_slice(&[0; 8]);
        d.extend(opt(5, &x));
    }
    opt(3, &d)
}

pub fn ia_pd(iaid: u32, prefixes: &[(Ipv6Addr, u8)]) -> Vec<u8> {
    let mut d = iaid.to_be_bytes().to_vec();
    d.extend_from_slice(&[0; 8]);
    for (p, len) in prefixes {
        let mut x = vec![0; 8];
        x.push(*len);
        x.extend_from_slice(&p.octets());
        d.extend(opt(26, &x));
    }
    opt(25, &d)
}

pub fn msg(t: MessageType, xid: u32, opts: &[Vec<u8>]) -> Vec<u8> {
    let mut v = vec![t.0];
    v.extend_from_slice(&xid.to_be_bytes()[1..]);
    for o in opts {
        v.extend_from_slice(o);
    }
    v
}

pub fn relay_forw(
    hop: u8,
    link: Ipv6Addr,
    peer: Ipv6Addr,
    interface_id: Option<&[u8]>,
    inner: &[u8],
) -> Vec<u8> {
    let mut v = vec![12, hop];
    v.extend_from_slice(&link.octets());
    v.extend_from_slice(&peer.octets());
    if let Some(i) = interface_id {
        v.extend(opt(18, i));
    }
    v.extend(opt(9, inner));
    v
}

/// A [`LeaseStore`] that counts `get` calls.
#[derive(Debug, Default)]
pub struct CountingStore {
    pub inner: MemStore,
    pub gets: Cell<usize>,
}

impl LeaseStore for CountingStore {
    type Error = <MemStore as LeaseStore>::Error;
    fn get(&self, kind: LeaseKind, addr: Ipv6Addr) -> Option<Binding> {
        self.gets.set(self.gets.get() + 1);
        self.inner.get(kind, addr)
    }
    fn for_client(&self, key: &ClientKey, f: &mut dyn FnMut(&Binding)) {
        self.inner.for_client(key, f);
    }
    fn put(&mut self, binding: &Binding) -> Result<(), Self::Error> {
        self.inner.put(binding)
    }
    fn scan(&self, cursor: u64, max: usize, f: &mut dyn FnMut(&Binding)) -> Option<u64> {
        self.inner.scan(cursor, max, f)
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
}

/// An engine, a store, a fixed-seed RNG and a clock.
pub struct Harness<S: LeaseStore> {
    pub engine: Engine,
    pub store: S,
    pub rng: SplitMix64,
    pub now: FailoverTime,
}

impl Harness<MemStore> {
    pub fn new() -> Self {
        Self::with_store(MemStore::new())
    }
}

impl<S: LeaseStore> Harness<S> {
    pub fn with_store(store: S) -> Self {
        Self {
            engine: Engine::new(config(), SERVER_DUID.to_vec()),
            store,
            rng: SplitMix64::new(42),
            now: FailoverTime(1_000_000),
        }
    }

    /// Sends `payload` as received on `iface`; returns the outcome and the reply bytes.
    pub fn send_on(&mut self, iface: &str, payload: &[u8]) -> (Outcome, Vec<u8>) {
        let rx = RxMeta {
            interface: iface,
            src: a("fe80::1"),
            dst: a("ff02::1:2"),
        };
        let mut out = vec![0u8; 4096];
        let o = self.engine.handle(
            self.now,
            &rx,
            payload,
            &mut self.store,
            &mut self.rng,
            &mut out,
        );
        let len = match o {
            Outcome::Reply { len } => len,
            Outcome::Drop(_) => 0,
        };
        out.truncate(len);
        (o, out)
    }

    /// Sends on eth0 and expects a reply.
    pub fn reply(&mut self, payload: &[u8]) -> Vec<u8> {
        let (o, out) = self.send_on("eth0", payload);
        assert!(
            matches!(o, Outcome::Reply { .. }),
            "expected a reply, got {o:?}"
        );
        out
    }
}

/// One IA of a reply: IAID, T1, T2, leases (address/prefix, length, preferred, valid), status.
#[derive(Clone, Debug, PartialEq)]
pub struct IaView {
    pub iaid: u32,
    pub t1: u32,
    pub t2: u32,
    pub leases: Vec<(Ipv6Addr, u8, u32, u32)>,
    pub status: Option<StatusCode>,
}

pub fn parse_reply(bytes: &[u8]) -> Message<'_> {
    Message::parse(bytes).expect("valid test data")
}

pub fn ia_nas(bytes: &[u8]) -> Vec<IaView> {
    parse_reply(bytes)
        .ia_nas()
        .map(|ia| {
            let ia = ia.expect("valid test data");
            IaView {
                iaid: ia.iaid,
                t1: ia.t1,
                t2: ia.t2,
                leases: ia
                    .addresses()
                    .map(|x| {
                        let x = x.expect("valid test data");
                        (x.addr, 128, x.preferred, x.valid)
                    })
                    .collect(),
                status: ia.status().expect("valid test data").map(|s| s.code),
            }
        })
        .collect()
}

pub fn ia_pds(bytes: &[u8]) -> Vec<IaView> {
    parse_reply(bytes)
        .ia_pds()
        .map(|ia| {
            let ia = ia.expect("valid test data");
            IaView {
                iaid: ia.iaid,
                t1: ia.t1,
                t2: ia.t2,
                leases: ia
                    .prefixes()
                    .map(|x| {
                        let x = x.expect("valid test data");
                        (x.prefix, x.prefix_len, x.preferred, x.valid)
                    })
                    .collect(),
                status: ia.status().expect("valid test data").map(|s| s.code),
            }
        })
        .collect()
}

pub fn top_status(bytes: &[u8]) -> Option<StatusCode> {
    parse_reply(bytes)
        .status()
        .expect("valid test data")
        .map(|s| s.code)
}

pub fn has_option(bytes: &[u8], code: OptionCode) -> bool {
    parse_reply(bytes).option(code).is_some()
}

/// The client message inside a RELAY-REPL chain and each level's Interface-Id.
pub fn unwrap_relay(bytes: &[u8]) -> (Vec<u8>, Vec<Option<Vec<u8>>>, Vec<Ipv6Addr>) {
    let chain = RelayChain::parse(bytes).expect("valid test data");
    assert!(
        chain
            .levels()
            .iter()
            .all(|l| l.msg_type == MessageType::RELAY_REPL)
    );
    let ids = chain
        .levels()
        .iter()
        .map(|l| l.interface_id().map(<[u8]>::to_vec))
        .collect();
    let links = chain.levels().iter().map(|l| l.link_address).collect();
    let inner = chain.inner();
    let mut buf = vec![0; inner.buffer_len()];
    inner.emit(&mut buf).expect("valid test data");
    (buf, ids, links)
}
