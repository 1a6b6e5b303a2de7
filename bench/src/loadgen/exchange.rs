//! The simulated clients: a table of `window` slots, each carrying one exchange in flight.
//!
//! * SARR (RFC 8415 §18.2.1, §18.2.2, §18.3.9, §18.3.10): SOLICIT (IA_NA + IA_PD) → ADVERTISE,
//!   then REQUEST for what was advertised (Server Identifier, IA Address, IA Prefix) → REPLY.
//!   Two round trips per exchange.
//! * Solicit-only (`tandem xdp-demo`, which answers SOLICIT with an ADVERTISE that refuses every
//!   IA): one round trip per exchange.
//!
//! Transaction ids carry the slot in their low bits and a per-slot generation above, so a
//! reply is matched to its slot without a lookup, and a late reply to an abandoned exchange
//! (a timeout moved the slot on) is recognised as stale. Accounting is per slot, so there is
//! no `sent - received` counter to underflow (docs/toolchain.md §11, pitfall 7): a slot is
//! either busy or not, and the number in flight is the number of busy slots.
//!
//! Messages are built with `tandem-wire` into caller buffers from stack option lists, and
//! replies are parsed in place: no allocation per message.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tandem_wire::dhcp::message::Message;
use tandem_wire::dhcp::option::DhcpOption;
use tandem_wire::dhcp::{
    Duid, IaAddr, IaNa, IaPd, IaPrefix, MAX_DUID_LEN, MessageType, StatusCode, StatusCodeOption,
};
use tandem_wire::option::{EmitOption, Options};

/// Most exchanges in flight: the slot index must fit the transaction id with room for a
/// generation.
pub(crate) const MAX_WINDOW: usize = 4096;
/// IAID of every client's IA_NA.
pub(crate) const IAID_NA: u32 = 1;
/// IAID of every client's IA_PD.
pub(crate) const IAID_PD: u32 = 2;
/// IANA hardware type Ethernet, for the DUID-LL.
const HW_ETHERNET: u16 = 1;
/// Transaction ids are 24 bits (RFC 8415 §8).
const XID_BITS: u32 = 24;

/// What one exchange is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// SOLICIT → ADVERTISE → REQUEST → REPLY: two round trips.
    Sarr,
    /// SOLICIT → ADVERTISE only: one round trip.
    SolicitOnly,
}

impl Kind {
    /// Round trips per exchange.
    pub(crate) fn round_trips(self) -> u64 {
        match self {
            Self::Sarr => 2,
            Self::SolicitOnly => 1,
        }
    }

    /// Name in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Sarr => "sarr",
            Self::SolicitOnly => "solicit-advertise",
        }
    }
}

/// Where a slot is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// No exchange (never started).
    Idle,
    /// SOLICIT sent, waiting for the ADVERTISE.
    Solicit,
    /// REQUEST sent, waiting for the REPLY.
    Request,
}

/// One exchange in flight.
#[derive(Clone, Copy, Debug)]
struct Slot {
    phase: Phase,
    xid: u32,
    generation: u32,
    client: u32,
    started: Instant,
    sent: Instant,
    server_id: [u8; MAX_DUID_LEN],
    server_id_len: usize,
    addr: Ipv6Addr,
    prefix: Ipv6Addr,
    prefix_len: u8,
}

/// What went right and wrong since the last [`Generator::reset_stats`].
#[derive(Clone, Debug)]
pub(crate) struct Stats {
    /// Messages sent.
    pub(crate) sent: u64,
    /// Exchanges completed correctly.
    pub(crate) exchanges: u64,
    /// Replies matched to their request (each a round trip of [`Self::rtt_ns`]).
    pub(crate) round_trips: u64,
    /// Exchanges abandoned after the timeout.
    pub(crate) timeouts: u64,
    /// Replies to no exchange in flight (late, after a timeout, or duplicated).
    pub(crate) stale: u64,
    /// Replies that do not parse or are not what the exchange expects.
    pub(crate) bad: u64,
    /// ADVERTISEs or REPLYs without the address or prefix asked for (pool exhausted?).
    pub(crate) no_lease: u64,
    /// Sends the kernel refused (the exchange then times out).
    pub(crate) send_errors: u64,
    /// Round-trip times, ns.
    pub(crate) rtt_ns: Histogram<u64>,
    /// Whole-exchange times (first send to last reply), ns.
    pub(crate) exchange_ns: Histogram<u64>,
}

impl Stats {
    fn new() -> Self {
        // 1 ns .. 60 s at 3 significant digits; the bounds are valid, so this cannot fail.
        let hist = || {
            Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .unwrap_or_else(|e| unreachable!("constant histogram bounds: {e}"))
        };
        Self {
            sent: 0,
            exchanges: 0,
            round_trips: 0,
            timeouts: 0,
            stale: 0,
            bad: 0,
            no_lease: 0,
            send_errors: 0,
            rtt_ns: hist(),
            exchange_ns: hist(),
        }
    }

    /// Everything back to zero: fresh histograms, so a field added to [`Stats`] cannot be
    /// missed here.
    fn reset(&mut self) {
        *self = Self::new();
    }
}

/// The slot table and the clients behind it.
#[derive(Debug)]
pub(crate) struct Generator {
    kind: Kind,
    slots: Vec<Slot>,
    slot_bits: u32,
    /// Distinct clients used round-robin; 0: a new client for every exchange.
    clients: u32,
    next_client: u32,
    timeout: Duration,
    /// Counters and histograms.
    pub(crate) stats: Stats,
}

/// Emit buffer size that holds every message we build.
pub(crate) const OUT_LEN: usize = 512;

impl Generator {
    /// `window` slots (1..=[`MAX_WINDOW`]) over `clients` distinct clients used round-robin,
    /// or with `clients` = 0 a new client (a DUID not used before in this generator's life:
    /// the index counts up through 2^32, ten hours at 100 000 exchanges a second) for every
    /// exchange, so that every exchange allocates (issue "new clients allocating").
    pub(crate) fn new(
        kind: Kind,
        window: usize,
        clients: u32,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            (1..=MAX_WINDOW).contains(&window),
            "window must be 1..={MAX_WINDOW}"
        );
        let now = Instant::now();
        let idle = Slot {
            phase: Phase::Idle,
            xid: 0,
            generation: 0,
            client: 0,
            started: now,
            sent: now,
            server_id: [0; MAX_DUID_LEN],
            server_id_len: 0,
            addr: Ipv6Addr::UNSPECIFIED,
            prefix: Ipv6Addr::UNSPECIFIED,
            prefix_len: 0,
        };
        // Bits for the slot index; the rest of the 24-bit xid is the generation.
        let slot_bits = usize::BITS - (window - 1).leading_zeros();
        Ok(Self {
            kind,
            slots: vec![idle; window],
            slot_bits,
            clients,
            next_client: 0,
            timeout,
            stats: Stats::new(),
        })
    }

    /// Number of slots.
    pub(crate) fn window(&self) -> usize {
        self.slots.len()
    }

    /// Exchanges in flight (busy slots).
    pub(crate) fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.phase != Phase::Idle).count()
    }

    /// Zeroes the counters and histograms (end of warm-up).
    pub(crate) fn reset_stats(&mut self) {
        self.stats.reset();
    }

    /// Starts a new exchange (a SOLICIT from the next client) in slot `i`; writes it into
    /// `out` and returns its length.
    pub(crate) fn start(
        &mut self,
        i: usize,
        now: Instant,
        out: &mut [u8],
    ) -> anyhow::Result<usize> {
        let client = self.next_client;
        self.next_client = match self.clients {
            0 => client.wrapping_add(1),
            n => (client + 1) % n,
        };
        let generation_mask = (1u32 << (XID_BITS - self.slot_bits)) - 1;
        let Some(slot) = self.slots.get_mut(i) else {
            anyhow::bail!("slot {i} out of range");
        };
        slot.generation = (slot.generation + 1) & generation_mask;
        // `i` < MAX_WINDOW, so it fits u32 and the slot bits.
        slot.xid = slot.generation << self.slot_bits | i as u32;
        slot.client = client;
        slot.phase = Phase::Solicit;
        slot.started = now;
        slot.sent = now;
        let n = solicit(client, slot.xid, out)?;
        self.stats.sent += 1;
        Ok(n)
    }

    /// Whether slot `i` has waited longer than the timeout for its reply.
    pub(crate) fn timed_out(&self, i: usize, now: Instant) -> bool {
        self.slots
            .get(i)
            .is_some_and(|s| s.phase != Phase::Idle && now.duration_since(s.sent) > self.timeout)
    }

    /// Abandons the exchange of slot `i` (counted as a timeout) and starts a new one, as
    /// [`Self::start`].
    pub(crate) fn restart_after_timeout(
        &mut self,
        i: usize,
        now: Instant,
        out: &mut [u8],
    ) -> anyhow::Result<usize> {
        self.stats.timeouts += 1;
        self.start(i, now, out)
    }

    /// Counts a send the kernel refused (the slot then waits for its timeout).
    pub(crate) fn send_failed(&mut self) {
        self.stats.send_errors += 1;
    }

    /// Handles a received datagram. When its slot has a message to send next (a REQUEST, or
    /// the SOLICIT of the next exchange), it is written into `out` and `(slot, len)` returned.
    pub(crate) fn on_datagram(
        &mut self,
        bytes: &[u8],
        now: Instant,
        out: &mut [u8],
    ) -> Option<(usize, usize)> {
        let Ok(msg) = Message::parse(bytes) else {
            self.stats.bad += 1;
            return None;
        };
        let xid = msg.transaction_id;
        let i = (xid & ((1 << self.slot_bits) - 1)) as usize;
        let Some(slot) = self.slots.get(i).copied() else {
            self.stats.stale += 1;
            return None;
        };
        if slot.phase == Phase::Idle || slot.xid != xid {
            self.stats.stale += 1;
            return None;
        }
        let expected = match slot.phase {
            Phase::Request => MessageType::REPLY,
            _ => MessageType::ADVERTISE,
        };
        if msg.msg_type != expected || !echoes_client(&msg, slot.client) {
            self.stats.bad += 1;
            return None;
        }
        let rtt = now.duration_since(slot.sent);
        self.stats.round_trips += 1;
        self.stats.rtt_ns.saturating_record(nanos(rtt));
        let next = match (slot.phase, self.kind) {
            (Phase::Solicit, Kind::SolicitOnly) => {
                self.complete(i, now);
                self.start(i, now, out)
            }
            (Phase::Solicit, Kind::Sarr) => match Offer::from_advertise(&msg) {
                Ok(offer) => self.request(i, offer, now, out),
                Err(problem) => {
                    self.count(problem);
                    self.start(i, now, out)
                }
            },
            _ => {
                match check_reply(&msg) {
                    Ok(()) => self.complete(i, now),
                    Err(problem) => self.count(problem),
                }
                self.start(i, now, out)
            }
        };
        // Building our own messages fails only if an emitter does: count it and let the slot
        // time out.
        match next {
            Ok(n) => Some((i, n)),
            Err(_) => {
                self.stats.bad += 1;
                None
            }
        }
    }

    fn count(&mut self, problem: Problem) {
        match problem {
            Problem::Bad => self.stats.bad += 1,
            Problem::NoLease => self.stats.no_lease += 1,
        }
    }

    fn complete(&mut self, i: usize, now: Instant) {
        if let Some(slot) = self.slots.get(i) {
            self.stats.exchanges += 1;
            let t = nanos(now.duration_since(slot.started));
            self.stats.exchange_ns.saturating_record(t);
        }
    }

    fn request(
        &mut self,
        i: usize,
        offer: Offer,
        now: Instant,
        out: &mut [u8],
    ) -> anyhow::Result<usize> {
        let generation_mask = (1u32 << (XID_BITS - self.slot_bits)) - 1;
        let Some(slot) = self.slots.get_mut(i) else {
            anyhow::bail!("slot {i} out of range");
        };
        slot.generation = (slot.generation + 1) & generation_mask;
        slot.xid = slot.generation << self.slot_bits | i as u32;
        slot.phase = Phase::Request;
        slot.sent = now;
        slot.server_id = offer.server_id;
        slot.server_id_len = offer.server_id_len;
        slot.addr = offer.addr;
        slot.prefix = offer.prefix;
        slot.prefix_len = offer.prefix_len;
        let server_id = slot
            .server_id
            .get(..slot.server_id_len)
            .ok_or_else(|| anyhow::anyhow!("server id length"))?;
        let n = request(
            slot.client,
            slot.xid,
            server_id,
            (slot.addr, slot.prefix, slot.prefix_len),
            out,
        )?;
        self.stats.sent += 1;
        Ok(n)
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Why a reply did not complete its exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Problem {
    /// Malformed or missing what RFC 8415 requires.
    Bad,
    /// No address or no prefix (or an IA status other than Success).
    NoLease,
}

/// What an ADVERTISE offered, copied out of it.
#[derive(Clone, Copy, Debug)]
struct Offer {
    server_id: [u8; MAX_DUID_LEN],
    server_id_len: usize,
    addr: Ipv6Addr,
    prefix: Ipv6Addr,
    prefix_len: u8,
}

impl Offer {
    /// RFC 8415 §18.3.9: Server Identifier, our IA_NA with an address, our IA_PD with a
    /// prefix.
    fn from_advertise(msg: &Message<'_>) -> Result<Self, Problem> {
        let duid = msg.server_id().ok().flatten().ok_or(Problem::Bad)?;
        let mut server_id = [0; MAX_DUID_LEN];
        let bytes = duid.as_bytes();
        server_id
            .get_mut(..bytes.len())
            .ok_or(Problem::Bad)?
            .copy_from_slice(bytes);
        let (addr, prefix, prefix_len) = leases(msg)?;
        Ok(Self {
            server_id,
            server_id_len: bytes.len(),
            addr,
            prefix,
            prefix_len,
        })
    }
}

/// The first address of IA_NA [`IAID_NA`] and first prefix of IA_PD [`IAID_PD`], each with a
/// non-zero valid lifetime and no failing status.
fn leases(msg: &Message<'_>) -> Result<(Ipv6Addr, Ipv6Addr, u8), Problem> {
    let mut addr = None;
    for ia in msg.ia_nas() {
        let ia = ia.map_err(|_| Problem::Bad)?;
        if ia.iaid != IAID_NA {
            continue;
        }
        if let Some(a) = first_valid(ia.status(), ia.addresses(), |a| a.valid)? {
            addr = Some(a.addr);
        }
    }
    let mut prefix = None;
    for ia in msg.ia_pds() {
        let ia = ia.map_err(|_| Problem::Bad)?;
        if ia.iaid != IAID_PD {
            continue;
        }
        if let Some(p) = first_valid(ia.status(), ia.prefixes(), |p| p.valid)? {
            prefix = Some((p.prefix, p.prefix_len));
        }
    }
    match (addr, prefix) {
        (Some(a), Some((p, len))) => Ok((a, p, len)),
        _ => Err(Problem::NoLease),
    }
}

/// An IA's (or a message's) Status Code (RFC 8415 §21.13): [`Problem::NoLease`] unless absent
/// or Success, [`Problem::Bad`] if malformed.
fn check_status(status: tandem_wire::Result<Option<StatusCodeOption<'_>>>) -> Result<(), Problem> {
    if status.map_err(|_| Problem::Bad)?.is_some_and(failing) {
        return Err(Problem::NoLease);
    }
    Ok(())
}

/// The first of an IA's `leases` (IA Address or IA Prefix) with a non-zero `valid` lifetime,
/// after [`check_status`] of the IA's `status`.
fn first_valid<T>(
    status: tandem_wire::Result<Option<StatusCodeOption<'_>>>,
    leases: impl Iterator<Item = tandem_wire::Result<T>>,
    valid: impl Fn(&T) -> u32,
) -> Result<Option<T>, Problem> {
    check_status(status)?;
    for lease in leases {
        let lease = lease.map_err(|_| Problem::Bad)?;
        if valid(&lease) > 0 {
            return Ok(Some(lease));
        }
    }
    Ok(None)
}

fn failing(s: StatusCodeOption<'_>) -> bool {
    s.code != StatusCode::SUCCESS
}

/// A REPLY to our REQUEST (RFC 8415 §18.3.10): a Server Identifier, no failing top-level
/// status, and both leases granted.
fn check_reply(msg: &Message<'_>) -> Result<(), Problem> {
    if msg.server_id().ok().flatten().is_none() {
        return Err(Problem::Bad);
    }
    check_status(msg.status())?;
    leases(msg).map(|_| ())
}

/// Whether the reply carries client `index`'s Client Identifier (RFC 8415 §18.3.9).
fn echoes_client(msg: &Message<'_>, index: u32) -> bool {
    let mut buf = [0u8; 10];
    let Ok(n) = client_duid(index, &mut buf) else {
        return false;
    };
    matches!(msg.client_id(), Ok(Some(id)) if Some(id.as_bytes()) == buf.get(..n))
}

/// Client `index`'s DUID-LL (RFC 8415 §11.4) of MAC `02:b0:<index, 4 bytes>`; returns its
/// length (10).
pub(crate) fn client_duid(index: u32, buf: &mut [u8; 10]) -> tandem_wire::Result<usize> {
    let [a, b, c, d] = index.to_be_bytes();
    Duid::emit_ll(HW_ETHERNET, &[0x02, 0xb0, a, b, c, d], buf)
}

/// Client `index`'s Client Identifier option (RFC 8415 §21.2), its DUID written into `buf`.
fn client_id(index: u32, buf: &mut [u8; 10]) -> tandem_wire::Result<DhcpOption<'_>> {
    let n = client_duid(index, buf)?;
    Ok(DhcpOption::ClientId(Duid::parse(
        buf.get(..n).unwrap_or_default(),
    )?))
}

/// SOLICIT (RFC 8415 §18.2.1) from client `index`: Client Identifier, Elapsed Time, an empty
/// IA_NA and an empty IA_PD.
pub(crate) fn solicit(index: u32, xid: u32, out: &mut [u8]) -> tandem_wire::Result<usize> {
    let mut duid = [0u8; 10];
    let client = client_id(index, &mut duid)?;
    let elapsed = DhcpOption::ElapsedTime(0);
    let na = IaNa {
        iaid: IAID_NA,
        t1: 0,
        t2: 0,
        options: Options::default(),
    };
    let pd = IaPd {
        iaid: IAID_PD,
        t1: 0,
        t2: 0,
        options: Options::default(),
    };
    let list: [&dyn EmitOption; 4] = [&client, &elapsed, &na, &pd];
    Message {
        msg_type: MessageType::SOLICIT,
        transaction_id: xid,
        options: Options::List(&list),
    }
    .emit(out)
}

/// REQUEST (RFC 8415 §18.2.2) from client `index` to `server_id` for the advertised address
/// and prefix `(addr, prefix, prefix_len)`.
pub(crate) fn request(
    index: u32,
    xid: u32,
    server_id: &[u8],
    (addr, prefix, prefix_len): (Ipv6Addr, Ipv6Addr, u8),
    out: &mut [u8],
) -> tandem_wire::Result<usize> {
    let mut duid = [0u8; 10];
    let client = client_id(index, &mut duid)?;
    let server = DhcpOption::ServerId(Duid::parse(server_id)?);
    let elapsed = DhcpOption::ElapsedTime(0);
    let ia_addr = IaAddr {
        addr,
        preferred: 0,
        valid: 0,
        options: Options::default(),
    };
    let addrs: [&dyn EmitOption; 1] = [&ia_addr];
    let na = IaNa {
        iaid: IAID_NA,
        t1: 0,
        t2: 0,
        options: Options::List(&addrs),
    };
    let ia_prefix = IaPrefix {
        preferred: 0,
        valid: 0,
        prefix_len,
        prefix,
        options: Options::default(),
    };
    let prefixes: [&dyn EmitOption; 1] = [&ia_prefix];
    let pd = IaPd {
        iaid: IAID_PD,
        t1: 0,
        t2: 0,
        options: Options::List(&prefixes),
    };
    let list: [&dyn EmitOption; 5] = [&client, &server, &elapsed, &na, &pd];
    Message {
        msg_type: MessageType::REQUEST,
        transaction_id: xid,
        options: Options::List(&list),
    }
    .emit(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER_DUID: [u8; 10] = [0, 3, 0, 1, 2, 0, 0, 0, 0, 1];
    const ADDR: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 0x100);
    const PREFIX: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0);

    /// What a server would answer to `request` (a SOLICIT or REQUEST we built): `msg_type`,
    /// same xid and Client ID, our Server ID, and the IAs with `ADDR` / `PREFIX` or, if
    /// `refuse`, with NoAddrsAvail / NoPrefixAvail.
    fn answer(request: &[u8], msg_type: MessageType, refuse: bool) -> Vec<u8> {
        let req = Message::parse(request).unwrap();
        let client = DhcpOption::ClientId(req.client_id().unwrap().unwrap());
        let server = DhcpOption::ServerId(Duid::parse(&SERVER_DUID).unwrap());
        let ia_addr = IaAddr {
            addr: ADDR,
            preferred: 1800,
            valid: 3600,
            options: Options::default(),
        };
        let ia_prefix = IaPrefix {
            preferred: 1800,
            valid: 3600,
            prefix_len: 56,
            prefix: PREFIX,
            options: Options::default(),
        };
        let no_addrs = StatusCodeOption::new(StatusCode::NO_ADDRS_AVAIL, "none");
        let no_prefix = StatusCodeOption::new(StatusCode::NO_PREFIX_AVAIL, "none");
        let na_list: [&dyn EmitOption; 1] = if refuse { [&no_addrs] } else { [&ia_addr] };
        let pd_list: [&dyn EmitOption; 1] = if refuse { [&no_prefix] } else { [&ia_prefix] };
        let na = IaNa {
            iaid: IAID_NA,
            t1: 900,
            t2: 1440,
            options: Options::List(&na_list),
        };
        let pd = IaPd {
            iaid: IAID_PD,
            t1: 900,
            t2: 1440,
            options: Options::List(&pd_list),
        };
        let list: [&dyn EmitOption; 4] = [&server, &client, &na, &pd];
        let msg = Message {
            msg_type,
            transaction_id: req.transaction_id,
            options: Options::List(&list),
        };
        let mut out = vec![0; msg.buffer_len()];
        msg.emit(&mut out).unwrap();
        out
    }

    fn generator(kind: Kind, window: usize) -> Generator {
        Generator::new(kind, window, 1000, Duration::from_millis(100)).unwrap()
    }

    #[test]
    fn sarr_with_leases_completes_after_two_round_trips() {
        let mut g = generator(Kind::Sarr, 8);
        let now = Instant::now();
        let mut out = [0u8; OUT_LEN];
        let n = g.start(3, now, &mut out).unwrap();
        let sol = Message::parse(&out[..n]).unwrap();
        assert_eq!(sol.msg_type, MessageType::SOLICIT);
        assert_eq!(sol.transaction_id & 7, 3, "slot in the low xid bits");
        let adv = answer(&out[..n], MessageType::ADVERTISE, false);

        let (slot, n) = g.on_datagram(&adv, now, &mut out).unwrap();
        assert_eq!(slot, 3);
        let req = Message::parse(&out[..n]).unwrap();
        assert_eq!(req.msg_type, MessageType::REQUEST);
        assert_eq!(req.server_id().unwrap().unwrap().as_bytes(), SERVER_DUID);
        let ia = req.ia_nas().next().unwrap().unwrap();
        assert_eq!(ia.addresses().next().unwrap().unwrap().addr, ADDR);
        let pd = req.ia_pds().next().unwrap().unwrap();
        let p = pd.prefixes().next().unwrap().unwrap();
        assert_eq!((p.prefix, p.prefix_len), (PREFIX, 56));
        assert_eq!(g.stats.exchanges, 0);

        let reply = answer(&out[..n], MessageType::REPLY, false);
        let (slot, n) = g.on_datagram(&reply, now, &mut out).unwrap();
        assert_eq!(slot, 3);
        assert_eq!(
            Message::parse(&out[..n]).unwrap().msg_type,
            MessageType::SOLICIT,
            "the slot starts its next exchange"
        );
        assert_eq!(
            (g.stats.exchanges, g.stats.round_trips, g.stats.sent),
            (1, 2, 3)
        );
        assert_eq!(g.stats.rtt_ns.len(), 2);
        assert_eq!(g.stats.exchange_ns.len(), 1);
    }

    #[test]
    fn solicit_only_counts_refusing_advertise_as_exchange() {
        let mut g = generator(Kind::SolicitOnly, 1);
        let now = Instant::now();
        let mut out = [0u8; OUT_LEN];
        let n = g.start(0, now, &mut out).unwrap();
        let adv = answer(&out[..n], MessageType::ADVERTISE, true);
        assert!(g.on_datagram(&adv, now, &mut out).is_some());
        assert_eq!((g.stats.exchanges, g.stats.round_trips), (1, 1));
        assert_eq!(g.stats.no_lease, 0);
    }

    #[test]
    fn sarr_advertise_without_leases_counts_no_lease_and_restarts() {
        let mut g = generator(Kind::Sarr, 1);
        let now = Instant::now();
        let mut out = [0u8; OUT_LEN];
        let n = g.start(0, now, &mut out).unwrap();
        let adv = answer(&out[..n], MessageType::ADVERTISE, true);
        let (_, n) = g.on_datagram(&adv, now, &mut out).unwrap();
        assert_eq!(
            Message::parse(&out[..n]).unwrap().msg_type,
            MessageType::SOLICIT
        );
        assert_eq!((g.stats.exchanges, g.stats.no_lease), (0, 1));
    }

    #[test]
    fn reply_after_timeout_is_stale() {
        let mut g = generator(Kind::Sarr, 4);
        let t0 = Instant::now();
        let mut out = [0u8; OUT_LEN];
        let n = g.start(1, t0, &mut out).unwrap();
        let late = answer(&out[..n], MessageType::ADVERTISE, false);
        let later = t0 + Duration::from_millis(150);
        assert!(!g.timed_out(1, t0));
        assert!(g.timed_out(1, later));
        g.restart_after_timeout(1, later, &mut out).unwrap();
        assert!(g.on_datagram(&late, later, &mut out).is_none());
        assert_eq!(
            (g.stats.timeouts, g.stats.stale, g.stats.round_trips),
            (1, 1, 0)
        );
        assert_eq!(g.in_flight(), 1, "slot 1 busy with its new exchange");
    }

    #[test]
    fn wrong_message_type_is_bad() {
        let mut g = generator(Kind::Sarr, 2);
        let now = Instant::now();
        let mut out = [0u8; OUT_LEN];
        let n = g.start(0, now, &mut out).unwrap();
        let reply = answer(&out[..n], MessageType::REPLY, false);
        assert!(g.on_datagram(&reply, now, &mut out).is_none());
        assert!(g.on_datagram(&[1, 2], now, &mut out).is_none());
        assert_eq!((g.stats.bad, g.stats.round_trips), (2, 0));
    }

    #[test]
    fn clients_rotate_and_have_distinct_duids() {
        let mut g = Generator::new(Kind::SolicitOnly, 4, 3, Duration::from_secs(1)).unwrap();
        let now = Instant::now();
        let mut out = [0u8; OUT_LEN];
        let mut ids = Vec::new();
        for i in 0..4 {
            let n = g.start(i, now, &mut out).unwrap();
            let m = Message::parse(&out[..n]).unwrap();
            ids.push(m.client_id().unwrap().unwrap().as_bytes().to_vec());
        }
        assert_ne!(ids[0], ids[1]);
        assert_ne!(ids[1], ids[2]);
        assert_eq!(ids[0], ids[3], "client 3 wraps to client 0 of 3");
    }

    #[test]
    fn with_no_client_count_every_exchange_is_a_new_client() {
        let mut g = Generator::new(Kind::SolicitOnly, 4, 0, Duration::from_secs(1)).unwrap();
        let now = Instant::now();
        let mut out = [0u8; OUT_LEN];
        let mut ids = std::collections::HashSet::new();
        for round in 0..250 {
            for i in 0..4 {
                let n = g.start(i, now, &mut out).unwrap();
                let m = Message::parse(&out[..n]).unwrap();
                let id = m.client_id().unwrap().unwrap().as_bytes().to_vec();
                assert!(
                    ids.insert(id),
                    "a DUID used twice by exchange {}",
                    round * 4 + i
                );
            }
        }
    }

    #[test]
    fn reset_stats_after_exchange_zeroes_counters_and_histograms() {
        let mut g = generator(Kind::SolicitOnly, 1);
        let now = Instant::now();
        let mut out = [0u8; OUT_LEN];
        let n = g.start(0, now, &mut out).unwrap();
        let adv = answer(&out[..n], MessageType::ADVERTISE, false);
        assert!(g.on_datagram(&adv, now, &mut out).is_some());
        assert!(g.on_datagram(&[1, 2], now, &mut out).is_none());
        assert_eq!((g.stats.exchanges, g.stats.bad), (1, 1));
        assert_eq!(g.stats.rtt_ns.len(), 1);
        g.reset_stats();
        let s = &g.stats;
        assert_eq!(
            [
                s.sent,
                s.exchanges,
                s.round_trips,
                s.timeouts,
                s.stale,
                s.bad,
                s.no_lease,
                s.send_errors
            ],
            [0; 8]
        );
        assert_eq!((s.rtt_ns.len(), s.exchange_ns.len()), (0, 0));
    }

    #[test]
    fn generator_with_oversized_window_is_refused() {
        assert!(Generator::new(Kind::Sarr, MAX_WINDOW + 1, 1, Duration::from_secs(1)).is_err());
        assert!(Generator::new(Kind::Sarr, 0, 1, Duration::from_secs(1)).is_err());
    }
}
