//! The `proto_request` harness: `tandem_proto::Engine` driven by a sequence of steps decoded
//! from the fuzzer's input, against a `tandem_lease::MemStore`, with invariants checked after
//! every step (house style §3.5: "any reply must parse; no address bound twice").
//!
//! Only the engine's public API is used: [`Engine::new`], [`Engine::handle`],
//! [`Engine::reclaim`], [`RxMeta`], [`Outcome`] and [`Engine::counters`]. Everything that
//! builds messages or checks invariants is in this module, so a change of the engine's
//! internals touches nothing else.
//!
//! # The configuration
//!
//! [`CONFIG`], parsed by `tandem_config`: subnet 0 on `eth0` with 6 addresses and 4 delegated
//! /56s (so pools run out), two reservations (one address inside the pool plus a prefix inside
//! the PD pool, one address outside the pool), and relayed subnet 1 (selected by Interface-Id
//! `relay-port-7` or a link-address in its prefix) with Rapid Commit, 4 addresses and 4 /64s.
//! `eth1` is a configured interface without a subnet; `eth9` is not configured at all. Valid
//! lifetimes are minutes, so the time steps expire leases.
//!
//! # The input
//!
//! A sequence of steps, each starting with one byte; the step reads what it needs after it
//! (a missing byte reads as 0, so every input is a valid sequence). `op % 16`:
//!
//! * `0` ([`RAW_OP`]): a raw datagram: a big-endian `u16` length (mod 1500), that many bytes,
//!   received on `eth0`.
//! * `1..=8`: a client message built from the input: SOLICIT, REQUEST, RENEW, REBIND,
//!   RELEASE, DECLINE, CONFIRM, INFORMATION-REQUEST, from one of [`CLIENTS`] (or none), with
//!   IA_NAs and IA_PDs whose hints are leases granted so far (to anyone), pool members,
//!   reservations or arbitrary; the Server Identifier is the engine's in most messages that
//!   need one, so they are not all dropped.
//! * `9`, `10`: the same, relayed through one to three RELAY-FORW levels.
//! * `11`: a built client message with one byte overwritten.
//! * `12`, `13`: time moves forward (up to 34 min, up to 12 days).
//! * `14`: time moves back (up to 18 h).
//! * `15`: [`Engine::reclaim`] with a budget of 0..=255.
//!
//! # Invariants, after every step
//!
//! * Nothing panics.
//! * Every answer parses with `tandem_wire`: ADVERTISE or REPLY (inside RELAY-REPL levels
//!   mirroring the request's, Interface-Id echoed, RFC 8415 §19.3), our Server Identifier, the
//!   request's transaction id and Client Identifier, every option and IA decodes, preferred ≤
//!   valid lifetime (RFC 8415 §21.6, §21.22) and T1 ≤ T2 (§21.4, §21.21).
//! * Every address or prefix in a REPLY with a nonzero valid lifetime is ACTIVE, unexpired, for
//!   that client (DUID and IAID) in the store (RFC 8415 §18.3.2: committed before replying).
//! * No address or prefix is granted to a client while another client holds it: a grant ends
//!   when its valid lifetime has passed (at the latest time seen so far, since time may go
//!   back), or when a message of its holder gave it up. Checked on every grant, and on the
//!   store: a lease granted and not ended is still ACTIVE for its holder, and no two ACTIVE,
//!   unexpired prefixes of different clients overlap.
//! * Every ACTIVE lease in the store is in a pool of its subnet (a whole delegated prefix of a
//!   PD pool), or is its client's reservation.
//! * The counters agree with the outcomes: replies sent, and drops per reason.

use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::sync::OnceLock;

use tandem_config::{Config, Ipv6Prefix, Subnet};
use tandem_lease::{
    AddressShare, Binding, BindingStatus, FailoverTime, LeaseKind, LeaseStore, MemStore,
    PrefixShare, Responsiveness, ServingPolicy,
};
use tandem_proto::{DropReason, Engine, Outcome, RxMeta, SplitMix64};
use tandem_wire::dhcp::message::Message;
use tandem_wire::dhcp::relay::RelayMessage;
use tandem_wire::dhcp::{MessageType, Packet};
use tandem_wire::option::OptionCode;

/// The engine's configuration (see the module docs).
pub const CONFIG: &str = r#"
[server]
preference = 3

[[interface]]
name = "eth0"

[[interface]]
name = "eth1"

[[subnet]]
prefix = "2001:db8:1::/64"
interface = "eth0"
preferred-lifetime = 300
valid-lifetime = 600
t1 = 150
t2 = 240

  [[subnet.pool]]
  range = "2001:db8:1::100-2001:db8:1::105"

  [[subnet.pd-pool]]
  prefix = "2001:db8:8000::/54"
  delegated-length = 56

  [[subnet.reservation]]
  duid = "00:03:00:01:aa:bb:cc:dd:ee:01"
  address = "2001:db8:1::101"
  prefix = "2001:db8:8000:200::/56"

  [[subnet.reservation]]
  duid = "00:03:00:01:aa:bb:cc:dd:ee:02"
  address = "2001:db8:1::5"

  [subnet.options]
  dns-servers = ["2001:db8::53"]
  domain-search = ["example.net"]

[[subnet]]
prefix = "2001:db8:2::/64"
interface-id = "relay-port-7"
rapid-commit = true
preferred-lifetime = 100
valid-lifetime = 200

  [[subnet.pool]]
  range = "2001:db8:2::10-2001:db8:2::13"

  [[subnet.pd-pool]]
  prefix = "2001:db8:4000::/62"
  delegated-length = 64
"#;

/// The engine's server DUID (DUID-LLT, RFC 8415 §11.2).
pub const SERVER_DUID: &[u8] = &[0, 1, 0, 1, 0x2a, 0, 0, 1, 2, 0, 0, 0, 0, 0xee];

/// Another server's DUID, for messages meant for someone else.
const FOREIGN_DUID: &[u8] = &[0, 1, 0, 1, 0x2a, 0, 0, 1, 2, 0, 0, 0, 0, 0xef];

/// The clients: the two reserved DUIDs of [`CONFIG`], then three others (DUID-LL). Few, so
/// they collide over the small pools.
pub const CLIENTS: [&[u8]; 5] = [
    &[0, 3, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x01],
    &[0, 3, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0x02],
    &[0, 3, 0, 1, 2, 0, 0, 0, 0, 1],
    &[0, 3, 0, 1, 2, 0, 0, 0, 0, 2],
    &[0, 3, 0, 1, 2, 0, 0, 0, 0, 3],
];

/// The step opcode of a raw datagram (`cargo xtask fuzz` seeds the corpus with the wire test
/// vectors as `[RAW_OP, len_hi, len_lo, bytes...]`).
pub const RAW_OP: u8 = 0;

/// Start of the clock. Times stay within `BASE..=BASE + TIME_SPAN`, less than 2^31 seconds
/// wide, so the engine's wrapping comparisons (RFC 8156 §3) agree with plain ones.
const BASE: u32 = 1_000_000_000;
const TIME_SPAN: u32 = 1 << 30;

/// Most steps of one input (keeps an iteration fast).
const MAX_STEPS: usize = 512;

/// Runs the steps of `data` and checks every invariant after each; panics on a violation.
pub fn run(data: &[u8]) {
    let mut input = Input { data };
    let mut h = Harness::new();
    let mut steps = 0;
    while !input.data.is_empty() && steps < MAX_STEPS {
        steps += 1;
        h.step(&mut input);
        h.check_store();
    }
}

/// The fuzzer's bytes, read front to back; reads past the end give zeros.
#[derive(Debug)]
struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn addr(&mut self) -> Ipv6Addr {
        let mut octets = [0; 16];
        for o in &mut octets {
            *o = self.u8();
        }
        Ipv6Addr::from(octets)
    }

    /// Up to `n` bytes (fewer at the end of the input).
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        taken
    }

    /// `true` with probability about `num / den` (`den` ≤ 256).
    fn chance(&mut self, num: u16, den: u16) -> bool {
        u16::from(self.u8()) % den < num
    }

    /// An element of `from`; `None` if it is empty.
    fn pick<T: Copy>(&mut self, from: &[T]) -> Option<T> {
        let i = usize::from(self.u8()) % from.len().max(1);
        from.get(i).copied()
    }
}

/// One lease a REPLY granted, still held as far as the harness knows.
#[derive(Clone, Debug)]
struct Grant {
    /// The holder's DUID (one of [`CLIENTS`], or any DUID a raw datagram carried).
    client: Vec<u8>,
    iaid: u32,
    /// End of the valid lifetime.
    until: u32,
}

/// A lease: kind, address or prefix, length.
type LeaseId = (LeaseKind, Ipv6Addr, u8);

/// What the harness sent in one step, to check the answer against.
#[derive(Debug)]
struct Sent {
    msg_type: MessageType,
    xid: u32,
    /// The Client Identifier sent: one of [`CLIENTS`], or none.
    client_id: Option<Vec<u8>>,
    /// The RELAY-FORW levels, outermost first: hop count, link-address, peer-address,
    /// Interface-Id.
    relays: Vec<RelayLevel>,
}

#[derive(Clone, Debug)]
struct RelayLevel {
    hop_count: u8,
    link: Ipv6Addr,
    peer: Ipv6Addr,
    interface_id: Option<Vec<u8>>,
}

#[derive(Debug)]
struct Harness {
    engine: Engine,
    config: Config,
    store: MemStore,
    rng: SplitMix64,
    now: u32,
    /// The latest time seen: a lease whose valid lifetime ended by then may be gone.
    high_water: u32,
    grants: HashMap<LeaseId, Grant>,
    /// The engine's output buffer.
    out: Vec<u8>,
    /// Answers and drops per reason seen, to compare with the engine's counters.
    replies: u64,
    drops: HashMap<DropReason, u64>,
    /// Addresses of the pools (and just outside them) and of the reservations, for hints.
    address_hints: Vec<Ipv6Addr>,
    /// Delegated prefixes of the PD pools (and just outside them) and reserved prefixes.
    prefix_hints: Vec<(Ipv6Addr, u8)>,
}

impl Harness {
    fn new() -> Self {
        // Parsed once per process: TOML parsing would cost more than a short input's steps.
        static PARSED: OnceLock<Config> = OnceLock::new();
        let config = PARSED
            .get_or_init(|| {
                Config::from_str(CONFIG, "proto_request.toml")
                    .unwrap_or_else(|e| panic!("the fuzz configuration is invalid: {e:?}"))
            })
            .clone();
        let mut address_hints = Vec::new();
        let mut prefix_hints = Vec::new();
        for subnet in &config.subnets {
            for pool in &subnet.pools {
                let first = u128::from(pool.first);
                let last = u128::from(pool.last);
                address_hints
                    .extend((first.saturating_sub(1)..=last.saturating_add(1)).map(Ipv6Addr::from));
            }
            for pool in &subnet.pd_pools {
                let step = 1u128 << (128 - u32::from(pool.delegated_len));
                let first = u128::from(pool.prefix.first());
                let count = pool.count().min(8);
                prefix_hints.extend(
                    (0..=count).map(|i| (Ipv6Addr::from(first + i * step), pool.delegated_len)),
                );
            }
            for r in &subnet.reservations {
                address_hints.extend(r.address);
                prefix_hints.extend(r.prefix.map(|p| (p.addr(), p.prefix_len())));
            }
        }
        Self {
            engine: Engine::new(config.clone(), SERVER_DUID.to_vec()),
            config,
            store: MemStore::new(),
            rng: SplitMix64::new(0x5eed),
            now: BASE,
            high_water: BASE,
            grants: HashMap::new(),
            out: vec![0; 4096],
            replies: 0,
            drops: HashMap::new(),
            address_hints,
            prefix_hints,
        }
    }

    fn step(&mut self, input: &mut Input<'_>) {
        let op = input.u8();
        if op >= 240 {
            // One step in sixteen switches the serving policy (what a failover state would).
            self.engine.set_policy(policy(input));
            return;
        }
        match op % 16 {
            RAW_OP => {
                let len = usize::from(input.u16() % 1500);
                let payload = input.bytes(len).to_vec();
                self.deliver("eth0", &payload, None);
            }
            op @ 1..=8 => {
                let (iface, payload, sent) = self.build(input, op, false);
                self.deliver(iface, &payload, Some(&sent));
            }
            9 | 10 => {
                let op = input.u8() % 8 + 1;
                let (iface, payload, sent) = self.build(input, op, true);
                self.deliver(iface, &payload, Some(&sent));
            }
            11 => {
                let op = input.u8() % 8 + 1;
                let relayed = input.chance(1, 4);
                let (iface, mut payload, _) = self.build(input, op, relayed);
                let at = usize::from(input.u16()) % payload.len().max(1);
                if let Some(b) = payload.get_mut(at) {
                    *b = input.u8();
                }
                self.deliver(iface, &payload, None);
            }
            12 => self.set_time(self.now.saturating_add(u32::from(input.u8()) * 8)),
            13 => self.set_time(self.now.saturating_add(u32::from(input.u16()) * 16)),
            14 => self.set_time(self.now.saturating_sub(u32::from(input.u16())).max(BASE)),
            _ => {
                let budget = usize::from(input.u8());
                self.engine
                    .reclaim(FailoverTime(self.now), &mut self.store, budget);
                self.check_reported_changes();
                // Expiry only ends leases whose valid lifetime has passed.
                self.check_changes(&[], None);
            }
        }
    }

    fn set_time(&mut self, t: u32) {
        self.now = t.clamp(BASE, BASE + TIME_SPAN);
        self.high_water = self.high_water.max(self.now);
        let hw = self.high_water;
        self.grants.retain(|_, g| g.until > hw);
    }

    // ---------------------------------------------------------------------------------------
    // Building client messages.

    /// Builds a client message of type `TYPES[op - 1]` (see the module docs), relayed or not.
    fn build(&self, input: &mut Input<'_>, op: u8, relayed: bool) -> (&'static str, Vec<u8>, Sent) {
        const TYPES: [MessageType; 8] = [
            MessageType::SOLICIT,
            MessageType::REQUEST,
            MessageType::RENEW,
            MessageType::REBIND,
            MessageType::RELEASE,
            MessageType::DECLINE,
            MessageType::CONFIRM,
            MessageType::INFORMATION_REQUEST,
        ];
        let msg_type = TYPES[usize::from(op - 1) % TYPES.len()];
        let xid = input.u32() & 0xff_ffff;
        let mut opts = Vec::new();

        let client = usize::from(input.u8()) % (CLIENTS.len() + 1);
        let client_id = CLIENTS.get(client).map(|duid| duid.to_vec());
        if let Some(duid) = &client_id {
            push_opt(&mut opts, OptionCode::CLIENTID, duid);
            if input.chance(1, 32) {
                push_opt(&mut opts, OptionCode::CLIENTID, duid);
            }
        }

        // Request, Renew, Release and Decline need our Server Identifier (RFC 8415 §16.4,
        // §16.6, §16.8, §16.9), Information-request may carry it (§16.12), the others must not
        // (§16.2, §16.5, §16.7). Mostly as the RFC says, sometimes not.
        let needs_server_id = matches!(
            msg_type,
            MessageType::REQUEST | MessageType::RENEW | MessageType::RELEASE | MessageType::DECLINE
        );
        match input.u8() % 16 {
            0 => {}
            1 => push_opt(&mut opts, OptionCode::SERVERID, FOREIGN_DUID),
            2 => push_opt(&mut opts, OptionCode::SERVERID, SERVER_DUID),
            3 if msg_type == MessageType::INFORMATION_REQUEST => {
                push_opt(&mut opts, OptionCode::SERVERID, SERVER_DUID);
            }
            _ if needs_server_id => push_opt(&mut opts, OptionCode::SERVERID, SERVER_DUID),
            _ => {}
        }

        let flags = input.u8();
        if flags & 1 != 0 {
            let codes: Vec<u8> = match input.u8() % 4 {
                0 => {
                    let len = usize::from(input.u8() % 16);
                    input.bytes(len).to_vec()
                }
                _ => [23u16, 24, 82, 83]
                    .iter()
                    .flat_map(|c| c.to_be_bytes())
                    .collect(),
            };
            push_opt(&mut opts, OptionCode::ORO, &codes);
        }
        if flags & 2 != 0 {
            push_opt(
                &mut opts,
                OptionCode::ELAPSED_TIME,
                &input.u16().to_be_bytes(),
            );
        }
        if flags & 4 != 0 {
            push_opt(&mut opts, OptionCode::RAPID_COMMIT, &[]);
        }
        if flags & 8 != 0 && input.chance(1, 4) {
            push_opt(&mut opts, OptionCode::RECONF_ACCEPT, &[]);
        }
        if flags & 16 != 0 && input.chance(1, 4) {
            // An option the message model does not track: a drawn code the model does track
            // (Client / Server Identifier, the IAs, Rapid Commit) moves to the unassigned
            // range, or the model would say "no Client Identifier sent" about one that was.
            let code = match OptionCode(input.u16()) {
                OptionCode::CLIENTID
                | OptionCode::SERVERID
                | OptionCode::IA_NA
                | OptionCode::IA_TA
                | OptionCode::IA_PD
                | OptionCode::RAPID_COMMIT => OptionCode(0xfe00),
                c => c,
            };
            let len = usize::from(input.u8() % 32);
            let data = input.bytes(len).to_vec();
            push_opt(&mut opts, code, &data);
        }

        let no_ias = msg_type == MessageType::INFORMATION_REQUEST && !input.chance(1, 16);
        if !no_ias {
            let n_na = [0, 1, 1, 2][usize::from(input.u8() % 4)];
            for _ in 0..n_na {
                self.push_ia(input, &mut opts, LeaseKind::Address, client);
            }
            let n_pd = [0, 1, 1, 2][usize::from(input.u8() % 4)];
            for _ in 0..n_pd {
                self.push_ia(input, &mut opts, LeaseKind::Prefix, client);
            }
        }

        let mut payload = vec![msg_type.0];
        payload.extend_from_slice(&xid.to_be_bytes()[1..]);
        payload.extend_from_slice(&opts);

        let mut relays = Vec::new();
        let iface = if relayed {
            let levels = 1 + usize::from(input.u8() % 8 / 6);
            for level in 0..levels {
                let innermost = level == 0;
                let (link, interface_id) = match input.u8() % 6 {
                    // Subnet 1 by Interface-Id (RFC 8415 §13.1 leaves the choice to us).
                    0 | 1 if innermost => (Ipv6Addr::UNSPECIFIED, Some(b"relay-port-7".to_vec())),
                    // Subnet 1 by a link-address in its prefix.
                    0..=2 => (Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1), None),
                    // Subnet 0 by link-address.
                    3 => (Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1), None),
                    // No subnet.
                    4 => (input.addr(), None),
                    _ => (Ipv6Addr::UNSPECIFIED, Some(input.bytes(8).to_vec())),
                };
                let r = RelayLevel {
                    hop_count: u8::try_from(level).unwrap_or(u8::MAX),
                    link,
                    peer: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, u16::from(input.u8())),
                    interface_id,
                };
                payload = relay_forw(&r, &payload);
                relays.insert(0, r);
            }
            "eth0"
        } else {
            // Mostly the interface of subnet 0.
            match input.u8() % 8 {
                6 => "eth1",
                7 => "eth9",
                _ => "eth0",
            }
        };
        let sent = Sent {
            msg_type,
            xid,
            client_id,
            relays,
        };
        (iface, payload, sent)
    }

    /// Appends an IA_NA or IA_PD with 0..=2 hints.
    fn push_ia(&self, input: &mut Input<'_>, opts: &mut Vec<u8>, kind: LeaseKind, client: usize) {
        let iaid = u32::from(input.u8() % 3);
        let mut data = iaid.to_be_bytes().to_vec();
        if input.chance(1, 8) {
            data.extend_from_slice(&input.u32().to_be_bytes());
            data.extend_from_slice(&input.u32().to_be_bytes());
        } else {
            data.extend_from_slice(&[0; 8]);
        }
        for _ in 0..input.u8() % 3 {
            let (addr, len) = self.hint(input, kind, client);
            let (preferred, valid) = if input.chance(1, 8) {
                (input.u32(), input.u32())
            } else {
                (0, 0)
            };
            let mut lease = Vec::new();
            match kind {
                LeaseKind::Address => {
                    lease.extend_from_slice(&addr.octets());
                    lease.extend_from_slice(&preferred.to_be_bytes());
                    lease.extend_from_slice(&valid.to_be_bytes());
                    push_opt(&mut data, OptionCode::IAADDR, &lease);
                }
                LeaseKind::Prefix => {
                    lease.extend_from_slice(&preferred.to_be_bytes());
                    lease.extend_from_slice(&valid.to_be_bytes());
                    lease.push(len);
                    lease.extend_from_slice(&addr.octets());
                    push_opt(&mut data, OptionCode::IAPREFIX, &lease);
                }
            }
        }
        let code = match kind {
            LeaseKind::Address => OptionCode::IA_NA,
            LeaseKind::Prefix => OptionCode::IA_PD,
        };
        push_opt(opts, code, &data);
    }

    /// A hint: a lease granted so far (this client's or anyone's), a pool member or
    /// reservation, or arbitrary.
    fn hint(&self, input: &mut Input<'_>, kind: LeaseKind, client: usize) -> (Ipv6Addr, u8) {
        let duid = CLIENTS.get(client).copied();
        let mut granted: Vec<(Ipv6Addr, u8, bool)> = self
            .grants
            .iter()
            .filter(|(id, _)| id.0 == kind)
            .map(|(id, g)| (id.1, id.2, Some(g.client.as_slice()) == duid))
            .collect();
        granted.sort_unstable_by_key(|&(a, len, own)| (!own, a, len));
        let own = granted.iter().filter(|g| g.2).count();
        let (addr, len) = match input.u8() % 8 {
            // Its own grants come first in `granted`.
            0 | 1 => granted.get(..own).and_then(|own| input.pick(own)),
            2 => input.pick(&granted),
            3..=5 => match kind {
                LeaseKind::Address => input.pick(&self.address_hints).map(|a| (a, 128, false)),
                LeaseKind::Prefix => input.pick(&self.prefix_hints).map(|(a, l)| (a, l, false)),
            },
            _ => None,
        }
        .map_or_else(|| (input.addr(), input.u8()), |(a, len, _)| (a, len));
        let len = match (kind, input.u8() % 8) {
            (LeaseKind::Address, _) | (_, 0..=4) => len,
            (LeaseKind::Prefix, 5) => 0,
            (LeaseKind::Prefix, _) => input.u8(),
        };
        (addr, len)
    }

    // ---------------------------------------------------------------------------------------
    // Delivering a datagram and checking the answer.

    fn deliver(&mut self, iface: &'static str, payload: &[u8], sent: Option<&Sent>) {
        let sender = sender_duid(payload);
        let rx = RxMeta {
            interface: iface,
            src: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
            dst: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2),
        };
        let mut out = std::mem::take(&mut self.out);
        let outcome = self.engine.handle(
            FailoverTime(self.now),
            &rx,
            payload,
            &mut self.store,
            &mut self.rng,
            &mut out,
        );
        match outcome {
            Outcome::Reply { len } => {
                self.replies += 1;
                let reply = out
                    .get(..len)
                    .unwrap_or_else(|| panic!("reply length {len} beyond the buffer"));
                self.check_reply(payload, reply, sent);
            }
            Outcome::Drop(reason) => *self.drops.entry(reason).or_default() += 1,
        }
        self.out = out;
        self.check_counters();
        self.check_reported_changes();
        self.check_changes(payload, sender.as_deref());
    }

    /// Every change the engine reports is in the store as reported (it wrote each binding at
    /// most once per call), and no lease outlives the policy's MCLT cap (RFC 8156 §4.4; no
    /// partner ever acknowledges here, so the cap is the MCLT itself).
    fn check_reported_changes(&self) {
        let policy = *self.engine.policy();
        for c in self.engine.changes() {
            let b = &c.binding;
            assert_eq!(
                self.store.get(b.kind, b.addr).as_ref(),
                Some(b),
                "reported change differs from the store"
            );
            if let (Some(mclt), BindingStatus::ACTIVE) = (policy.mclt, b.status) {
                assert!(
                    b.valid <= mclt,
                    "valid {} beyond MCLT {mclt}: {b:?}",
                    b.valid
                );
            }
            if b.status == BindingStatus::ACTIVE && c.from != Some(BindingStatus::ACTIVE) {
                assert!(policy.new_leases, "a new lease without new_leases: {b:?}");
            }
        }
    }

    /// Checks an answer (see the module docs) and records the leases it grants.
    fn check_reply(&mut self, request: &[u8], reply: &[u8], sent: Option<&Sent>) {
        let ctx = || format!("request {}\nreply {}", hex(request), hex(reply));
        // Unwrap RELAY-REPL levels; they mirror the request's RELAY-FORW levels.
        let mut inner = reply;
        let mut levels = Vec::new();
        while inner.first().is_some_and(|&t| MessageType(t).is_relay()) {
            let r = RelayMessage::parse(inner)
                .unwrap_or_else(|e| panic!("RELAY-REPL does not parse ({e:?})\n{}", ctx()));
            assert_eq!(r.msg_type, MessageType::RELAY_REPL, "{}", ctx());
            levels.push(r);
            inner = r
                .relay_msg()
                .unwrap_or_else(|| panic!("RELAY-REPL without Relay Message\n{}", ctx()));
        }
        let m = Message::parse(inner)
            .unwrap_or_else(|e| panic!("answer does not parse ({e:?})\n{}", ctx()));
        assert!(
            matches!(m.msg_type, MessageType::ADVERTISE | MessageType::REPLY),
            "answer type {:?}\n{}",
            m.msg_type,
            ctx()
        );
        for o in m.typed_options() {
            o.unwrap_or_else(|e| panic!("option does not decode ({e:?})\n{}", ctx()));
        }
        let server = m.server_id().ok().flatten().map(|d| d.as_bytes().to_vec());
        assert_eq!(
            server.as_deref(),
            Some(SERVER_DUID),
            "Server Identifier\n{}",
            ctx()
        );
        let client = m.client_id().ok().flatten().map(|d| d.as_bytes().to_vec());
        m.status()
            .unwrap_or_else(|e| panic!("Status Code does not decode ({e:?})\n{}", ctx()));
        if let Some(sent) = sent {
            assert_eq!(m.transaction_id, sent.xid, "transaction id\n{}", ctx());
            assert_eq!(client, sent.client_id, "Client Identifier\n{}", ctx());
            assert_eq!(levels.len(), sent.relays.len(), "relay levels\n{}", ctx());
            for (got, want) in levels.iter().zip(&sent.relays) {
                assert_eq!(got.hop_count, want.hop_count, "hop-count\n{}", ctx());
                assert_eq!(got.link_address, want.link, "link-address\n{}", ctx());
                assert_eq!(got.peer_address, want.peer, "peer-address\n{}", ctx());
                assert_eq!(
                    got.interface_id().map(<[u8]>::to_vec),
                    want.interface_id,
                    "Interface-Id echoed (RFC 8415 §19.3)\n{}",
                    ctx()
                );
            }
            let answers = match sent.msg_type {
                MessageType::SOLICIT => {
                    [MessageType::ADVERTISE, MessageType::REPLY].contains(&m.msg_type)
                }
                _ => m.msg_type == MessageType::REPLY,
            };
            assert!(
                answers,
                "{:?} answered with {:?}\n{}",
                sent.msg_type,
                m.msg_type,
                ctx()
            );
        }

        let mut leases: Vec<(LeaseId, u32, u32)> = Vec::new();
        for ia in m.ia_nas() {
            let ia = ia.unwrap_or_else(|e| panic!("IA_NA does not decode ({e:?})\n{}", ctx()));
            check_timers(ia.t1, ia.t2, &ctx);
            ia.status()
                .unwrap_or_else(|e| panic!("IA_NA status ({e:?})\n{}", ctx()));
            for x in ia.addresses() {
                let x = x.unwrap_or_else(|e| panic!("IAADDR does not decode ({e:?})\n{}", ctx()));
                assert!(
                    x.preferred <= x.valid,
                    "IAADDR preferred > valid\n{}",
                    ctx()
                );
                leases.push(((LeaseKind::Address, x.addr, 128), ia.iaid, x.valid));
            }
        }
        for ia in m.ia_pds() {
            let ia = ia.unwrap_or_else(|e| panic!("IA_PD does not decode ({e:?})\n{}", ctx()));
            check_timers(ia.t1, ia.t2, &ctx);
            ia.status()
                .unwrap_or_else(|e| panic!("IA_PD status ({e:?})\n{}", ctx()));
            for x in ia.prefixes() {
                let x = x.unwrap_or_else(|e| panic!("IAPREFIX does not decode ({e:?})\n{}", ctx()));
                assert!(
                    x.preferred <= x.valid,
                    "IAPREFIX preferred > valid\n{}",
                    ctx()
                );
                leases.push((
                    (LeaseKind::Prefix, x.prefix, x.prefix_len),
                    ia.iaid,
                    x.valid,
                ));
            }
        }
        if m.msg_type != MessageType::REPLY {
            return; // an Advertise commits nothing (RFC 8415 §18.3.1)
        }
        let Some(holder) = client else {
            assert!(
                leases.iter().all(|l| l.2 == 0),
                "a REPLY without Client Identifier grants leases\n{}",
                ctx()
            );
            return;
        };
        for (id, iaid, valid) in leases {
            if valid == 0 {
                continue;
            }
            let (kind, addr, len) = id;
            let b = self.store.get(kind, addr).unwrap_or_else(|| {
                panic!("{addr}/{len} in a REPLY is not in the store\n{}", ctx())
            });
            assert!(
                b.is_active_at(FailoverTime(self.now))
                    && b.duid.as_bytes() == holder.as_slice()
                    && b.iaid == iaid
                    && b.prefix_len == len,
                "{addr}/{len} (IAID {iaid}) in a REPLY to client {} is not ACTIVE for it in the \
                 store: {b:?}\n{}",
                hex(&holder),
                ctx()
            );
            let until = self.now.saturating_add(valid);
            for (other_id, g) in &self.grants {
                if g.client != holder && g.until > self.high_water && overlaps(&id, other_id) {
                    panic!(
                        "{addr}/{len} granted to client {} (now {}) while client {} holds \
                         {}/{} until {} (latest time seen {})\n{}",
                        hex(&holder),
                        self.now,
                        hex(&g.client),
                        other_id.1,
                        other_id.2,
                        g.until,
                        self.high_water,
                        ctx()
                    );
                }
            }
            self.grants.insert(
                id,
                Grant {
                    client: holder.clone(),
                    iaid,
                    until,
                },
            );
        }
    }

    fn check_counters(&self) {
        let c = self.engine.counters();
        let replies = c.replies(MessageType::ADVERTISE) + c.replies(MessageType::REPLY);
        assert_eq!(replies, self.replies, "answer counters vs answers");
        for &reason in DropReason::ALL {
            let seen = self.drops.get(&reason).copied().unwrap_or(0);
            assert_eq!(c.drops(reason), seen, "drop counter {}", reason.name());
        }
    }

    /// After `payload` from `sender` (its Client Identifier, if it parses; no payload for an
    /// expiry run): every lease granted to another client and not expired is still ACTIVE for
    /// that client. Grants of `sender` that are no longer ACTIVE for it (released, declined,
    /// replaced) end here.
    fn check_changes(&mut self, payload: &[u8], sender: Option<&[u8]>) {
        let now = FailoverTime(self.now);
        let hw = self.high_water;
        let store = &self.store;
        self.grants.retain(|&(kind, addr, len), g| {
            if g.until <= hw {
                return false;
            }
            let held = store.get(kind, addr).is_some_and(|b| {
                b.status == BindingStatus::ACTIVE
                    && b.prefix_len == len
                    && b.duid.as_bytes() == g.client.as_slice()
            });
            if held {
                return true;
            }
            assert!(
                sender == Some(g.client.as_slice()),
                "a message from {} ended client {}'s lease {addr}/{len} (IAID {}, valid until {}, \
                 now {now:?}, latest time seen {hw}); now {:?}\nrequest {}",
                sender.map_or_else(|| "no client".to_owned(), hex),
                hex(&g.client),
                g.iaid,
                g.until,
                store.get(kind, addr),
                hex(payload),
            );
            false
        });
    }

    /// Store invariants (see the module docs).
    fn check_store(&self) {
        let now = FailoverTime(self.now);
        let mut prefixes: Vec<(u128, u128, &Binding)> = Vec::new();
        for b in self.store.iter() {
            if b.status != BindingStatus::ACTIVE {
                continue;
            }
            let subnet = usize::try_from(b.subnet)
                .ok()
                .and_then(|i| self.config.subnets.get(i))
                .unwrap_or_else(|| panic!("ACTIVE binding in unknown subnet: {b:?}"));
            assert!(
                in_pool_or_reserved(subnet, b),
                "ACTIVE binding outside its subnet's pools and not its client's reservation: {b:?}"
            );
            if b.kind == LeaseKind::Prefix && b.is_active_at(now) {
                let start = u128::from(b.addr);
                let size = 1u128
                    .checked_shl(128 - u32::from(b.prefix_len))
                    .unwrap_or(0);
                prefixes.push((start, start.wrapping_add(size.wrapping_sub(1)), b));
            }
        }
        prefixes.sort_unstable_by_key(|p| p.0);
        for pair in prefixes.windows(2) {
            let ((_, end, a), (start, _, b)) = (pair[0], pair[1]);
            assert!(
                start > end || a.duid == b.duid,
                "overlapping ACTIVE prefixes of two clients: {a:?} and {b:?}"
            );
        }
    }
}

/// RFC 8415 §21.4, §21.21: a client discards an IA with T1 > T2 (both nonzero).
fn check_timers(t1: u32, t2: u32, ctx: &dyn Fn() -> String) {
    assert!(
        t1 == 0 || t2 == 0 || t1 <= t2,
        "T1 {t1} > T2 {t2}\n{}",
        ctx()
    );
}

/// Whether an ACTIVE binding is in a pool of `subnet` or is its client's reservation.
fn in_pool_or_reserved(subnet: &Subnet, b: &Binding) -> bool {
    let reservation = subnet.reservation_for_duid(b.duid.as_bytes());
    match b.kind {
        LeaseKind::Address => {
            b.prefix_len == 128
                && (subnet.pools.iter().any(|p| p.contains(b.addr))
                    || reservation.is_some_and(|r| r.address == Some(b.addr)))
        }
        LeaseKind::Prefix => {
            let Ok(prefix) = Ipv6Prefix::new(b.addr, b.prefix_len) else {
                return false;
            };
            subnet
                .pd_pools
                .iter()
                .any(|p| p.delegated_len == b.prefix_len && p.prefix.contains_prefix(&prefix))
                || reservation.is_some_and(|r| r.prefix == Some(prefix))
        }
    }
}

/// Whether two leases share an address.
fn overlaps(a: &LeaseId, b: &LeaseId) -> bool {
    if a.0 != b.0 {
        return false;
    }
    let range = |(_, addr, len): &LeaseId| {
        let start = u128::from(*addr);
        let size = 1u128
            .checked_shl(128 - u32::from((*len).min(128)))
            .unwrap_or(0);
        (start, start.wrapping_add(size.wrapping_sub(1)))
    };
    let (a0, a1) = range(a);
    let (b0, b1) = range(b);
    a0 <= b1 && b0 <= a1
}

/// The Client Identifier of a datagram's client message (inside any relay levels), if it
/// parses.
fn sender_duid(payload: &[u8]) -> Option<Vec<u8>> {
    let mut bytes = payload;
    for _ in 0..=tandem_wire::dhcp::relay::MAX_RELAY_DEPTH {
        match Packet::parse(bytes).ok()? {
            Packet::Relay(r) => bytes = r.relay_msg()?,
            Packet::Client(m) => return Some(m.client_id().ok()??.as_bytes().to_vec()),
        }
    }
    None
}

/// Appends one option (RFC 8415 §21.1).
fn push_opt(out: &mut Vec<u8>, code: OptionCode, data: &[u8]) {
    out.extend_from_slice(&code.0.to_be_bytes());
    let len = u16::try_from(data.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(data.get(..usize::from(len)).unwrap_or(data));
}

/// A RELAY-FORW around `inner` (RFC 8415 §9.1).
fn relay_forw(r: &RelayLevel, inner: &[u8]) -> Vec<u8> {
    let mut v = vec![MessageType::RELAY_FORW.0, r.hop_count];
    v.extend_from_slice(&r.link.octets());
    v.extend_from_slice(&r.peer.octets());
    if let Some(id) = &r.interface_id {
        push_opt(&mut v, OptionCode::INTERFACE_ID, id);
    }
    push_opt(&mut v, OptionCode::RELAY_MSG, inner);
    v
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A serving policy drawn from the input.
fn policy(input: &mut Input<'_>) -> ServingPolicy {
    let r = input.u8();
    ServingPolicy {
        responsiveness: match r % 3 {
            0 => Responsiveness::Responsive,
            1 => Responsiveness::RenewResponsive,
            _ => Responsiveness::Unresponsive,
        },
        new_leases: r & 0x04 != 0,
        addresses: match (r >> 3) % 3 {
            0 => AddressShare::All,
            1 => AddressShare::Odd,
            _ => AddressShare::Even,
        },
        prefixes: match (r >> 5) % 3 {
            0 => PrefixShare::All,
            1 => PrefixShare::Free,
            _ => PrefixShare::FreeBackup,
        },
        mclt: (r & 0x80 != 0).then(|| 30 + u32::from(input.u16()) % 7200),
        reuse_needs_partner_ack: input.chance(1, 2),
        reuse_wait: input
            .chance(1, 4)
            .then(|| 30 + u32::from(input.u16()) % 7200),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A smoke run's find: the extra option drawn as code 1, a second Client Identifier the
    /// model did not know it sent.
    #[test]
    fn an_extra_option_never_poses_as_a_tracked_one() {
        run(include_bytes!(
            "../regressions/proto_request-unknown-option-as-client-id.bin"
        ));
    }

    #[test]
    fn config_parses_and_hints_cover_the_pools() {
        let h = Harness::new();
        assert_eq!(h.config.subnets.len(), 2);
        assert!(
            h.address_hints
                .contains(&"2001:db8:1::105".parse().unwrap())
        );
        assert!(
            h.prefix_hints
                .contains(&("2001:db8:8000:300::".parse().unwrap(), 56))
        );
    }

    #[test]
    fn solicit_then_request_grants_a_lease() {
        // Op, xid, client 2 (once), Server Identifier as the RFC says, no flags, one IA_NA
        // (IAID 0, no timers, no hint), no IA_PD, on eth0: a SOLICIT, then a REQUEST.
        let solicit = [1, 0, 0, 0, 1, 2, 1, 15, 0, 1, 0, 1, 0, 0, 0];
        let request = [2, 0, 0, 0, 2, 2, 1, 15, 0, 1, 0, 1, 0, 0, 0];
        let mut h = Harness::new();
        for step in [&solicit[..], &request[..]] {
            h.step(&mut Input { data: step });
            h.check_store();
        }
        assert_eq!(h.replies, 2, "{:?}", h.drops);
        assert_eq!(h.grants.len(), 1, "{:?}", h.grants);
        let grant = h.grants.values().next().unwrap();
        assert_eq!(grant.client, CLIENTS[2]);
        assert_eq!(grant.until, BASE + 600);
    }

    #[test]
    fn lease_taken_from_its_holder_is_caught() {
        let mut h = Harness::new();
        let request = [2, 0, 0, 0, 2, 2, 1, 15, 0, 1, 0, 1, 0, 0, 0];
        h.step(&mut Input { data: &request });
        let (&(kind, addr, _), _) = h.grants.iter().next().unwrap();
        // Someone else's write of that lease, as a broken engine would do it.
        let mut b = h.store.get(kind, addr).unwrap();
        b.duid = tandem_lease::DuidBuf::new(CLIENTS[3]).unwrap();
        h.store.put(&b).unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            h.check_changes(&[], Some(CLIENTS[3]));
        }));
        assert!(caught.is_err());
    }
}
