//! The engine: validation (RFC 8415 §16), message processing (§18.3), relays (§19) and
//! incremental expiry.

use std::net::Ipv6Addr;

use tandem_config::{Config, INFINITY, Subnet};
use tandem_lease::{
    Binding, BindingFlags, BindingStatus, ClientKey, DuidBuf, FailoverTime, LeaseKind, LeaseStore,
};
use tandem_wire::dhcp::message::Message;
use tandem_wire::dhcp::option::CodeList;
use tandem_wire::dhcp::relay::RelayChain;
use tandem_wire::dhcp::{MessageType, Packet, StatusCode};
use tandem_wire::option::OptionCode;

use crate::Entropy;
use crate::alloc::{Lease, MAX_LEASES_PER_IA, Partition, Reservations, Site};
use crate::counters::{Counters, DropReason};
use crate::reply::{self, IaOut, LeaseOut, ReplyParts};

/// How long a declined address stays ABANDONED before [`Engine::reclaim`] frees it
/// (RFC 8415 §18.3.8 leaves the period to the server), in seconds.
pub const DEFAULT_DECLINE_QUARANTINE: u32 = 86_400;

/// Most IA_NA + IA_PD options of one message the engine answers; further IAs are ignored.
const MAX_IAS: usize = 16;

/// Size of the scratch buffer a relayed reply is built in before it is wrapped.
const SCRATCH_LEN: usize = 65_535;

/// Options that may appear at most once at the top level of a client message (RFC 8415 §21).
const SINGLETONS: [OptionCode; 7] = [
    OptionCode::CLIENTID,
    OptionCode::SERVERID,
    OptionCode::ORO,
    OptionCode::ELAPSED_TIME,
    OptionCode::RAPID_COMMIT,
    OptionCode::PREFERENCE,
    OptionCode::RECONF_ACCEPT,
];

/// Where a datagram came from.
#[derive(Clone, Copy, Debug)]
pub struct RxMeta<'a> {
    /// Name of the receiving interface (selects the subnet of direct clients).
    pub interface: &'a str,
    /// Source address (the client or the relay agent); the reply goes there.
    pub src: Ipv6Addr,
    /// Destination address (ff02::1:2 or a unicast address; both are accepted, RFC 9915).
    pub dst: Ipv6Addr,
}

/// What to do with a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Send the first `len` bytes of the output buffer to the source address and port of the
    /// datagram.
    Reply {
        /// Bytes written.
        len: usize,
    },
    /// Send nothing.
    Drop(DropReason),
}

/// What one [`Engine::reclaim`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReclaimReport {
    /// Bindings looked at.
    pub visited: usize,
    /// ACTIVE bindings past their valid lifetime, now EXPIRED.
    pub expired: usize,
    /// ABANDONED bindings past their quarantine, now FREE.
    pub unquarantined: usize,
    /// Writes that failed.
    pub store_errors: usize,
    /// `true` if this call reached the end of the store (the next one starts over).
    pub wrapped: bool,
}

/// The DHCPv6 server engine (see the crate docs).
#[derive(Debug)]
pub struct Engine {
    config: Config,
    server_duid: Vec<u8>,
    decline_quarantine: u32,
    /// Encoded domain search list per subnet.
    domain_lists: Vec<Vec<u8>>,
    reservations: Reservations,
    scratch: Vec<u8>,
    reclaim_cursor: u64,
    counters: Counters,
    partition: Partition,
}

/// One IA of a request, with the leases the client named (at most [`MAX_LEASES_PER_IA`]).
#[derive(Clone, Copy, Debug)]
struct IaIn {
    kind: LeaseKind,
    iaid: u32,
    leases: [Option<Lease>; MAX_LEASES_PER_IA],
}

impl IaIn {
    fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.leases.iter().flatten()
    }
}

/// A validated client message.
#[derive(Debug)]
struct Request<'m> {
    msg: Message<'m>,
    client_id: Option<&'m [u8]>,
    duid: DuidBuf,
    oro: Option<CodeList<'m>>,
    ias: [Option<IaIn>; MAX_IAS],
}

impl Request<'_> {
    fn ias(&self) -> impl Iterator<Item = &IaIn> {
        self.ias.iter().flatten()
    }

    fn key(&self, ia: &IaIn) -> ClientKey {
        ClientKey {
            duid: self.duid,
            iaid: ia.iaid,
            kind: ia.kind,
        }
    }
}

/// The status an IA gets when nothing can be assigned (RFC 8415 §18.3.2, §18.3.9).
const fn unavailable(kind: LeaseKind) -> StatusCode {
    match kind {
        LeaseKind::Address => StatusCode::NO_ADDRS_AVAIL,
        LeaseKind::Prefix => StatusCode::NO_PREFIX_AVAIL,
    }
}

/// The end of a valid lifetime starting at `now`; 0 ("no timeout") for infinity.
fn expiry(now: FailoverTime, valid: u32) -> FailoverTime {
    if valid == INFINITY {
        return FailoverTime(0);
    }
    let t = now.wrapping_add(valid);
    if t.0 == 0 { FailoverTime(1) } else { t }
}

/// Per-request state the handlers share.
struct Ctx<'a> {
    site: Option<Site<'a>>,
    counters: &'a mut Counters,
    now: FailoverTime,
    decline_quarantine: u32,
}

impl Ctx<'_> {
    /// Writes `lease` ACTIVE for `key` with the subnet's lifetimes (RFC 8415 §18.3.2: commit
    /// before replying). Keeps the RFC 8156 history of an existing binding and marks it for the
    /// failover partner.
    fn commit<S: LeaseStore>(
        &mut self,
        site: &Site<'_>,
        key: &ClientKey,
        lease: &Lease,
        cur: Option<Binding>,
        store: &mut S,
    ) -> Option<LeaseOut> {
        let s = site.subnet;
        let subnet = u32::try_from(site.subnet_idx).unwrap_or(u32::MAX);
        let mut b = cur.unwrap_or_else(|| Binding::free(lease.kind, lease.addr, lease.len, subnet));
        let renewing = b.status == BindingStatus::ACTIVE && b.client() == *key;
        b.kind = lease.kind;
        b.addr = lease.addr;
        b.prefix_len = lease.len;
        b.status = BindingStatus::ACTIVE;
        b.duid = key.duid;
        b.iaid = key.iaid;
        b.subnet = subnet;
        b.t1 = s.t1;
        b.t2 = s.t2;
        b.preferred = s.preferred_lifetime;
        b.valid = s.valid_lifetime;
        b.cltt = self.now;
        if !renewing {
            b.start_time_of_state = self.now;
        }
        b.state_expiration_time = expiry(self.now, s.valid_lifetime);
        b.flags.set(BindingFlags::UPDATE_PENDING, true);
        match store.put(&b) {
            Ok(()) => {
                self.counters.committed += 1;
                Some(LeaseOut {
                    lease: *lease,
                    preferred: s.preferred_lifetime,
                    valid: s.valid_lifetime,
                })
            }
            Err(_) => {
                self.counters.store_errors += 1;
                None
            }
        }
    }

    /// Moves a binding to `status` now (RELEASED, ABANDONED) and writes it.
    fn transition<S: LeaseStore>(
        &mut self,
        mut b: Binding,
        status: BindingStatus,
        until: FailoverTime,
        store: &mut S,
    ) -> bool {
        b.status = status;
        b.cltt = self.now;
        b.start_time_of_state = self.now;
        b.state_expiration_time = until;
        b.flags.set(BindingFlags::UPDATE_PENDING, true);
        if store.put(&b).is_ok() {
            true
        } else {
            self.counters.store_errors += 1;
            false
        }
    }

    /// SOLICIT (RFC 8415 §18.3.9, tentative) and REQUEST / Rapid Commit SOLICIT (§18.3.2,
    /// §18.3.1, committed): one lease per IA.
    fn assign<S: LeaseStore>(
        &mut self,
        req: &Request<'_>,
        commit: bool,
        check_on_link: bool,
        store: &mut S,
        rng: &mut dyn Entropy,
        out: &mut [Option<IaOut>; MAX_IAS],
    ) {
        let mut chosen = [None::<Lease>; MAX_IAS];
        for (i, ia) in req.ias().enumerate() {
            let mut o = IaOut::new(ia.kind, ia.iaid);
            let named_off_link = |site: Option<&Site<'_>>| {
                ia.leases().any(|l| {
                    !l.addr.is_unspecified()
                        && site.is_none_or(|s| !s.subnet.prefix.contains(l.addr))
                })
            };
            let site = self.site;
            if check_on_link && ia.kind == LeaseKind::Address && named_off_link(site.as_ref()) {
                // RFC 8415 §18.3.2: addresses not appropriate for the link → NotOnLink.
                o.status = Some(StatusCode::NOT_ON_LINK);
            } else if let Some(site) = site {
                let mut hints = [Lease {
                    kind: ia.kind,
                    addr: Ipv6Addr::UNSPECIFIED,
                    len: 0,
                }; MAX_LEASES_PER_IA];
                let mut nh = 0;
                for (slot, l) in hints.iter_mut().zip(ia.leases()) {
                    *slot = *l;
                    nh += 1;
                }
                let mut excl = [Lease {
                    kind: ia.kind,
                    addr: Ipv6Addr::UNSPECIFIED,
                    len: 0,
                }; MAX_IAS];
                let mut ne = 0;
                for (slot, l) in excl.iter_mut().zip(chosen.iter().flatten()) {
                    *slot = *l;
                    ne += 1;
                }
                let key = req.key(ia);
                let picked = site.choose(
                    &key,
                    hints.get(..nh).unwrap_or_default(),
                    excl.get(..ne).unwrap_or_default(),
                    store,
                    rng,
                );
                let lease_out = picked.and_then(|(lease, cur)| {
                    if let Some(slot) = chosen.get_mut(i) {
                        *slot = Some(lease);
                    }
                    if commit {
                        self.commit(&site, &key, &lease, cur, store)
                    } else {
                        Some(LeaseOut {
                            lease,
                            preferred: site.subnet.preferred_lifetime,
                            valid: site.subnet.valid_lifetime,
                        })
                    }
                });
                match lease_out {
                    Some(l) => {
                        o.t1 = site.subnet.t1;
                        o.t2 = site.subnet.t2;
                        o.push(l);
                    }
                    None => o.status = Some(unavailable(ia.kind)),
                }
            } else {
                o.status = Some(unavailable(ia.kind));
            }
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(o);
            }
        }
    }

    /// RENEW (RFC 8415 §18.3.4) and REBIND (§18.3.5).
    ///
    /// The client's bindings for the IA (ACTIVE or EXPIRED, still naming it) that are
    /// appropriate for the link are extended; others, and leases the client names that are
    /// not its bindings, are returned with lifetimes 0. An IA without bindings gets NoBinding
    /// on Renew; on Rebind its off-link leases get lifetimes 0 and a binding is created as for
    /// a Request (policy: "create bindings on Rebind"), NoAddrsAvail/NoPrefixAvail if none.
    fn extend<S: LeaseStore>(
        &mut self,
        req: &Request<'_>,
        rebind: bool,
        store: &mut S,
        rng: &mut dyn Entropy,
        out: &mut [Option<IaOut>; MAX_IAS],
    ) {
        for (i, ia) in req.ias().enumerate() {
            let key = req.key(ia);
            let mut o = IaOut::new(ia.kind, ia.iaid);
            let mut held = [None::<Binding>; MAX_LEASES_PER_IA];
            let mut n = 0;
            store.for_client(&key, &mut |b| {
                if matches!(b.status, BindingStatus::ACTIVE | BindingStatus::EXPIRED)
                    && let Some(slot) = held.get_mut(n)
                {
                    *slot = Some(*b);
                    n += 1;
                }
            });
            let site = self.site;
            let on_link = |l: &Lease| match (&site, l.kind) {
                (None, _) => false,
                (Some(s), LeaseKind::Address) => {
                    s.subnet.prefix.contains(l.addr) && s.appropriate(l, key.duid.as_bytes())
                }
                (Some(s), LeaseKind::Prefix) => s.appropriate(l, key.duid.as_bytes()),
            };
            let zero = |lease: Lease| LeaseOut {
                lease,
                preferred: 0,
                valid: 0,
            };
            if n > 0 {
                let mut extended = false;
                for b in held.iter().flatten() {
                    let l = Lease::of(b);
                    match site.filter(|_| on_link(&l)) {
                        Some(site) => match self.commit(&site, &key, &l, Some(*b), store) {
                            Some(lo) => {
                                extended = true;
                                o.push(lo);
                            }
                            None => o.status = Some(unavailable(ia.kind)),
                        },
                        None => o.push(zero(l)),
                    }
                }
                for l in ia.leases().filter(|l| !l.addr.is_unspecified()) {
                    if !o.has_lease(l) {
                        o.push(zero(*l));
                    }
                }
                if let (true, Some(site)) = (extended, site) {
                    o.t1 = site.subnet.t1;
                    o.t2 = site.subnet.t2;
                }
            } else if !rebind {
                o.status = Some(StatusCode::NO_BINDING);
            } else {
                for l in ia.leases().filter(|l| !l.addr.is_unspecified()) {
                    if !on_link(l) {
                        o.push(zero(*l));
                    }
                }
                let mut one = [None; MAX_IAS];
                let single = Request {
                    msg: req.msg,
                    client_id: req.client_id,
                    duid: req.duid,
                    oro: None,
                    ias: {
                        let mut a = [None; MAX_IAS];
                        a[0] = Some(*ia);
                        a
                    },
                };
                self.assign(&single, true, false, store, rng, &mut one);
                if let Some(created) = one[0] {
                    o.t1 = created.t1;
                    o.t2 = created.t2;
                    o.status = created.status;
                    for l in created.leases.iter().flatten() {
                        o.push(*l);
                    }
                }
            }
            if let Some(slot) = out.get_mut(i) {
                *slot = Some(o);
            }
        }
    }

    /// RELEASE (RFC 8415 §18.3.7) and DECLINE (§18.3.8, IA_NA only): the named leases the
    /// client holds become RELEASED or ABANDONED (quarantined); IAs in which none does get
    /// NoBinding, the others are left out of the reply.
    fn let_go<S: LeaseStore>(
        &mut self,
        req: &Request<'_>,
        decline: bool,
        store: &mut S,
        out: &mut [Option<IaOut>; MAX_IAS],
    ) {
        for (i, ia) in req.ias().enumerate() {
            if decline && ia.kind != LeaseKind::Address {
                continue;
            }
            let key = req.key(ia);
            let mut found = false;
            for l in ia.leases() {
                let Some(b) = store.get(l.kind, l.addr) else {
                    continue;
                };
                if b.client() != key
                    || !matches!(b.status, BindingStatus::ACTIVE | BindingStatus::EXPIRED)
                {
                    continue;
                }
                found = true;
                let (status, until) = if decline {
                    let until = self.now.wrapping_add(self.decline_quarantine);
                    (
                        BindingStatus::ABANDONED,
                        if until.0 == 0 { FailoverTime(1) } else { until },
                    )
                } else {
                    (BindingStatus::RELEASED, FailoverTime(0))
                };
                if self.transition(b, status, until, store) {
                    if decline {
                        self.counters.declined += 1;
                    } else {
                        self.counters.released += 1;
                    }
                }
            }
            if !found {
                let mut o = IaOut::new(ia.kind, ia.iaid);
                o.status = Some(StatusCode::NO_BINDING);
                if let Some(slot) = out.get_mut(i) {
                    *slot = Some(o);
                }
            }
        }
    }
}

impl Engine {
    /// An engine serving `config` under `server_duid` (RFC 8415 §11; generated once and
    /// persisted by the daemon).
    pub fn new(config: Config, server_duid: Vec<u8>) -> Self {
        let domain_lists = config
            .subnets
            .iter()
            .map(|s| reply::encode_domain_list(&s.options.domain_search))
            .collect();
        let reservations = Reservations::new(&config);
        Self {
            config,
            server_duid,
            decline_quarantine: DEFAULT_DECLINE_QUARANTINE,
            domain_lists,
            reservations,
            scratch: vec![0; SCRATCH_LEN],
            reclaim_cursor: 0,
            counters: Counters::default(),
            partition: Partition::WHOLE,
        }
    }

    /// Sets how long declined addresses stay quarantined, in seconds.
    #[must_use]
    pub const fn with_decline_quarantine(mut self, secs: u32) -> Self {
        self.decline_quarantine = secs;
        self
    }

    /// Makes this engine shard `shard` of `shards` of a sharded lease database (issue 4): it
    /// allocates only pool offsets ≡ `shard` (mod `shards`) — address offsets from the pool's
    /// first address, prefix indexes within the PD pool — and ignores hints at other offsets
    /// (the client still gets a lease of this shard). Reservations and a client's existing
    /// bindings are unaffected. Engines for every shard of the same configuration therefore
    /// never allocate the same lease; each must be given only the clients of its shard
    /// ([`crate::shard_of`]). `shards` 0 counts as 1; `shard` is taken mod `shards`.
    #[must_use]
    pub fn with_partition(mut self, shard: u32, shards: u32) -> Self {
        self.partition = Partition::new(shard, shards);
        self
    }

    /// `(shard, shards)` of this engine (`(0, 1)` unless [`Self::with_partition`] was used).
    pub fn partition(&self) -> (u32, u32) {
        self.partition.get()
    }

    /// The configuration served.
    pub const fn config(&self) -> &Config {
        &self.config
    }

    /// The server DUID.
    pub fn server_duid(&self) -> &[u8] {
        &self.server_duid
    }

    /// The counters.
    pub const fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Handles one datagram received on port 547 and writes the answer, if any, into `out`.
    /// Leases in the answer are committed to `store` before this returns.
    pub fn handle<S: LeaseStore>(
        &mut self,
        now: FailoverTime,
        rx: &RxMeta<'_>,
        payload: &[u8],
        store: &mut S,
        rng: &mut dyn Entropy,
        out: &mut [u8],
    ) -> Outcome {
        match self.dispatch(now, rx, payload, store, rng, out) {
            Ok((t, len)) => {
                self.counters.count_reply(t);
                Outcome::Reply { len }
            }
            Err(reason) => {
                self.counters.count_drop(reason);
                Outcome::Drop(reason)
            }
        }
    }

    fn dispatch<S: LeaseStore>(
        &mut self,
        now: FailoverTime,
        rx: &RxMeta<'_>,
        payload: &[u8],
        store: &mut S,
        rng: &mut dyn Entropy,
        out: &mut [u8],
    ) -> Result<(MessageType, usize), DropReason> {
        let packet = Packet::parse(payload).map_err(|_| DropReason::Malformed)?;
        self.counters.count_received(packet.msg_type());
        match packet {
            Packet::Client(msg) => {
                let subnet = self.config.subnet_for_interface(rx.interface);
                let idx = self.index_of(subnet);
                self.process(now, msg, idx, store, rng, out)
            }
            Packet::Relay(r) if r.msg_type == MessageType::RELAY_REPL => {
                Err(DropReason::ServerMessage)
            }
            Packet::Relay(_) => {
                // RFC 8415 §19: the client message is in the innermost Relay Message option.
                let chain = RelayChain::parse(payload).map_err(|_| DropReason::Malformed)?;
                let msg = chain.inner();
                self.counters.count_received(msg.msg_type);
                // RFC 8415 §13.1, RFC 6221: innermost non-zero link-address, else the
                // innermost Interface-Id.
                let subnet = chain
                    .innermost_link_address()
                    .and_then(|a| self.config.subnet_for_link_address(a))
                    .or_else(|| {
                        chain
                            .interface_id_innermost()
                            .and_then(|id| self.config.subnet_for_interface_id(id))
                    });
                let idx = self.index_of(subnet);
                let mut scratch = std::mem::take(&mut self.scratch);
                let result = self
                    .process(now, msg, idx, store, rng, &mut scratch)
                    .and_then(|(t, len)| {
                        let inner = scratch.get(..len).ok_or(DropReason::ReplyTooLarge)?;
                        let reply = Message::parse(inner).map_err(|_| DropReason::ReplyTooLarge)?;
                        // RFC 8415 §19.3: RELAY-REPL per level, Interface-Id echoed.
                        let n = chain
                            .emit_reply(&reply, out)
                            .map_err(|_| DropReason::ReplyTooLarge)?;
                        Ok((t, n))
                    });
                self.scratch = scratch;
                result
            }
        }
    }

    fn index_of(&self, subnet: Option<&Subnet>) -> Option<usize> {
        let s = subnet?;
        self.config.subnets.iter().position(|x| std::ptr::eq(x, s))
    }

    /// Applies the RFC 8415 §16 discard rules and decodes what the handlers need.
    fn validate<'m>(&self, msg: Message<'m>) -> Result<Request<'m>, DropReason> {
        use DropReason as D;
        if SINGLETONS.iter().any(|c| msg.count(*c) > 1) {
            return Err(D::DuplicateOption);
        }
        let client_id = msg.client_id().map_err(|_| D::Malformed)?;
        let server_id = msg.server_id().map_err(|_| D::Malformed)?;
        let oro = msg.oro().map_err(|_| D::Malformed)?;
        let ours = server_id.map(|s| s.as_bytes() == self.server_duid.as_slice());
        let has_ia = msg.count(OptionCode::IA_NA) > 0 || msg.count(OptionCode::IA_PD) > 0;
        match msg.msg_type {
            // §16.2, §16.5, §16.7.
            MessageType::SOLICIT | MessageType::CONFIRM | MessageType::REBIND => {
                if client_id.is_none() {
                    return Err(D::MissingClientId);
                }
                if server_id.is_some() {
                    return Err(D::UnexpectedServerId);
                }
            }
            // §16.4, §16.6, §16.8, §16.9.
            MessageType::REQUEST
            | MessageType::RENEW
            | MessageType::RELEASE
            | MessageType::DECLINE => {
                if client_id.is_none() {
                    return Err(D::MissingClientId);
                }
                match ours {
                    None => return Err(D::MissingServerId),
                    Some(false) => return Err(D::ForeignServerId),
                    Some(true) => {}
                }
            }
            // §16.12 (IA_TA is obsolete, RFC 9915, and treated as an unknown option).
            MessageType::INFORMATION_REQUEST => {
                if has_ia {
                    return Err(D::IaInInformationRequest);
                }
                if ours == Some(false) {
                    return Err(D::ForeignServerId);
                }
            }
            _ => return Err(D::UnknownMessageType),
        }
        let duid = match client_id {
            Some(c) => DuidBuf::new(c.as_bytes()).ok_or(D::Malformed)?,
            None => DuidBuf::EMPTY,
        };
        let mut ias = [None::<IaIn>; MAX_IAS];
        let mut n = 0;
        let mut push = |ia: IaIn| {
            if let Some(slot) = ias.get_mut(n) {
                *slot = Some(ia);
                n += 1;
            }
        };
        for ia in msg.ia_nas() {
            let ia = ia.map_err(|_| D::Malformed)?;
            let mut leases = [None; MAX_LEASES_PER_IA];
            for (slot, a) in leases.iter_mut().zip(ia.addresses()) {
                let a = a.map_err(|_| D::Malformed)?;
                *slot = Some(Lease {
                    kind: LeaseKind::Address,
                    addr: a.addr,
                    len: 128,
                });
            }
            push(IaIn {
                kind: LeaseKind::Address,
                iaid: ia.iaid,
                leases,
            });
        }
        for ia in msg.ia_pds() {
            let ia = ia.map_err(|_| D::Malformed)?;
            let mut leases = [None; MAX_LEASES_PER_IA];
            for (slot, p) in leases.iter_mut().zip(ia.prefixes()) {
                let p = p.map_err(|_| D::Malformed)?;
                *slot = Some(Lease {
                    kind: LeaseKind::Prefix,
                    addr: p.prefix,
                    len: p.prefix_len,
                });
            }
            push(IaIn {
                kind: LeaseKind::Prefix,
                iaid: ia.iaid,
                leases,
            });
        }
        Ok(Request {
            msg,
            client_id: client_id.map(|c| c.as_bytes()),
            duid,
            oro,
            ias,
        })
    }

    /// Handles a client message (direct or from the innermost relay level) and writes the
    /// Advertise/Reply into `buf`.
    fn process<S: LeaseStore>(
        &mut self,
        now: FailoverTime,
        msg: Message<'_>,
        subnet_idx: Option<usize>,
        store: &mut S,
        rng: &mut dyn Entropy,
        buf: &mut [u8],
    ) -> Result<(MessageType, usize), DropReason> {
        match msg.msg_type {
            MessageType::ADVERTISE
            | MessageType::REPLY
            | MessageType::RECONFIGURE
            | MessageType::RELAY_REPL => return Err(DropReason::ServerMessage),
            _ => {}
        }
        let req = self.validate(msg)?;
        let Self {
            config,
            server_duid,
            decline_quarantine,
            domain_lists,
            reservations,
            counters,
            partition,
            ..
        } = self;
        let site = subnet_idx.and_then(|i| {
            Some(Site {
                config,
                subnet: config.subnets.get(i)?,
                subnet_idx: i,
                reservations,
                now,
                partition: *partition,
            })
        });
        let mut ctx = Ctx {
            site,
            counters,
            now,
            decline_quarantine: *decline_quarantine,
        };
        let mut ias = [None::<IaOut>; MAX_IAS];
        let mut reply_type = MessageType::REPLY;
        let mut status = None;
        let mut rapid_commit = false;
        match msg.msg_type {
            MessageType::SOLICIT => {
                // RFC 8415 §18.3.1: Rapid Commit only when the subnet allows it.
                rapid_commit = msg.rapid_commit() && site.is_some_and(|s| s.subnet.rapid_commit);
                if !rapid_commit {
                    reply_type = MessageType::ADVERTISE;
                }
                ctx.assign(&req, rapid_commit, false, store, rng, &mut ias);
            }
            MessageType::REQUEST => ctx.assign(&req, true, true, store, rng, &mut ias),
            MessageType::RENEW => ctx.extend(&req, false, store, rng, &mut ias),
            MessageType::REBIND => ctx.extend(&req, true, store, rng, &mut ias),
            MessageType::CONFIRM => {
                // RFC 8415 §18.3.3.
                let site = site.ok_or(DropReason::ConfirmUnanswerable)?;
                let mut any = false;
                let mut all_on_link = true;
                for l in req
                    .ias()
                    .filter(|ia| ia.kind == LeaseKind::Address)
                    .flat_map(IaIn::leases)
                {
                    any = true;
                    all_on_link &= site.subnet.prefix.contains(l.addr);
                }
                if !any {
                    return Err(DropReason::ConfirmUnanswerable);
                }
                status = Some(if all_on_link {
                    StatusCode::SUCCESS
                } else {
                    StatusCode::NOT_ON_LINK
                });
            }
            MessageType::RELEASE | MessageType::DECLINE => {
                ctx.let_go(&req, msg.msg_type == MessageType::DECLINE, store, &mut ias);
                status = Some(StatusCode::SUCCESS);
            }
            // INFORMATION-REQUEST (RFC 8415 §18.3.6): options only.
            _ => {}
        }
        let mut list = [IaOut::new(LeaseKind::Address, 0); MAX_IAS];
        let mut n = 0;
        for (slot, ia) in list.iter_mut().zip(ias.iter().flatten()) {
            *slot = *ia;
            n += 1;
        }
        let options = subnet_idx.and_then(|i| {
            Some((
                config.subnets.get(i)?,
                domain_lists.get(i).map_or(&[][..], Vec::as_slice),
            ))
        });
        // RFC 8415 §18.3.9, §21.8: a Preference of 0 equals no option, so it is sent only
        // when configured non-zero.
        let preference = (reply_type == MessageType::ADVERTISE && config.server.preference != 0)
            .then_some(config.server.preference);
        let parts = ReplyParts {
            msg_type: reply_type,
            transaction_id: msg.transaction_id,
            server_duid,
            client_id: req.client_id,
            preference,
            rapid_commit,
            status,
            ias: list.get(..n).unwrap_or_default(),
            options,
            oro: req.oro,
            information_request: msg.msg_type == MessageType::INFORMATION_REQUEST,
        };
        let len = reply::write(buf, &parts).map_err(|_| DropReason::ReplyTooLarge)?;
        Ok((reply_type, len))
    }

    /// Expires leases incrementally (call it periodically): visits up to `budget` bindings
    /// from where the last call stopped. ACTIVE bindings past their valid lifetime become
    /// EXPIRED; ABANDONED bindings past their quarantine become FREE and forget the client
    /// that declined them (RFC 8156 §5.5.1 allows ABANDONED → FREE; the decliner should not
    /// get the address back as "its own"). RELEASED and EXPIRED bindings stay as they are:
    /// they are free for anyone, and their client gets them back first.
    pub fn reclaim<S: LeaseStore>(
        &mut self,
        now: FailoverTime,
        store: &mut S,
        budget: usize,
    ) -> ReclaimReport {
        const CHUNK: usize = 64;
        let mut report = ReclaimReport::default();
        while report.visited < budget {
            let max = CHUNK.min(budget - report.visited);
            let mut todo = [None::<Binding>; CHUNK];
            let mut n = 0;
            let mut seen = 0;
            let next = store.scan(self.reclaim_cursor, max, &mut |b| {
                seen += 1;
                let due = b.has_expired_at(now)
                    && matches!(b.status, BindingStatus::ACTIVE | BindingStatus::ABANDONED);
                if due && let Some(slot) = todo.get_mut(n) {
                    *slot = Some(*b);
                    n += 1;
                }
            });
            report.visited += seen;
            for mut b in todo.into_iter().flatten() {
                let was_active = b.status == BindingStatus::ACTIVE;
                if was_active {
                    b.status = BindingStatus::EXPIRED;
                } else {
                    b.status = BindingStatus::FREE;
                    b.duid = DuidBuf::EMPTY;
                    b.iaid = 0;
                }
                b.start_time_of_state = now;
                b.state_expiration_time = FailoverTime(0);
                b.flags.set(BindingFlags::UPDATE_PENDING, true);
                if store.put(&b).is_ok() {
                    if was_active {
                        report.expired += 1;
                        self.counters.expired += 1;
                    } else {
                        report.unquarantined += 1;
                        self.counters.unquarantined += 1;
                    }
                } else {
                    report.store_errors += 1;
                    self.counters.store_errors += 1;
                }
            }
            match next {
                Some(c) => self.reclaim_cursor = c,
                None => {
                    self.reclaim_cursor = 0;
                    report.wrapped = true;
                    break;
                }
            }
            if seen == 0 {
                break;
            }
        }
        report
    }
}
