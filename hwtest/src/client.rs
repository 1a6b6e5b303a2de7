//! A small DHCPv6 test client: messages built and parsed with `tandem-wire`, sent over
//! `std::net::UdpSocket`s created inside a namespace.
//!
//! Messages: SOLICIT (RFC 8415 §18.2.1) with IA_NA and/or IA_PD, INFORMATION-REQUEST (§18.2.6)
//! and RELAY-FORW (§19.1, a fake relay with an Interface-Id, §21.18). Replies are parsed into
//! owned values ([`Reply`]) that print as one readable line.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::time::{Duration, Instant};

use tandem_wire::Error as WireError;
use tandem_wire::dhcp::message::Message;
use tandem_wire::dhcp::option::DhcpOption;
use tandem_wire::dhcp::relay::{RelayMessage, RelayPayload};
use tandem_wire::dhcp::{
    Duid, IaAddr, IaNa, IaPd, MessageType, Packet, StatusCode, StatusCodeOption,
};
use tandem_wire::option::{EmitOption, Options};

use crate::netns::NetNs;

/// UDP port clients listen on (RFC 8415 §7.2).
pub const CLIENT_PORT: u16 = 546;
/// UDP port servers and relay agents listen on (RFC 8415 §7.2).
pub const SERVER_PORT: u16 = 547;
/// All_DHCP_Relay_Agents_and_Servers, `ff02::1:2` (RFC 8415 §7.1).
pub const ALL_DHCP_RELAY_AGENTS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
/// IANA hardware type of Ethernet, for DUID-LL.
const HW_ETHERNET: u16 = 1;

/// `[ff02::1:2%ifindex]:547`: where clients multicast their messages.
pub fn all_servers(ifindex: u32) -> SocketAddrV6 {
    SocketAddrV6::new(ALL_DHCP_RELAY_AGENTS_AND_SERVERS, SERVER_PORT, 0, ifindex)
}

/// A random 24-bit transaction id (RFC 8415 §16.1), from std's randomly keyed hasher (every
/// `RandomState` gets fresh keys).
pub fn random_xid() -> u32 {
    let mut h = RandomState::new().build_hasher();
    h.write_u8(0);
    u32::try_from(h.finish() & 0xff_ffff).unwrap_or(0)
}

/// A simulated client: a MAC of its own (`02:c1:00:00:hi:lo`) and the DUID-LL built from it
/// (RFC 8415 §11.4), so every client has a distinct Client Identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimClient {
    /// Index given to [`SimClient::new`].
    pub index: u16,
    /// The client's (simulated) MAC.
    pub mac: [u8; 6],
    /// Its DUID-LL bytes.
    pub duid: Vec<u8>,
}

impl SimClient {
    /// Client number `index`.
    pub fn new(index: u16) -> Self {
        let [hi, lo] = index.to_be_bytes();
        let mac = [0x02, 0xc1, 0x00, 0x00, hi, lo];
        let mut buf = [0u8; 16];
        let len = Duid::emit_ll(HW_ETHERNET, &mac, &mut buf).unwrap_or(0);
        Self {
            index,
            mac,
            duid: buf.get(..len).unwrap_or_default().to_vec(),
        }
    }

    /// A SOLICIT from this client with one IA_NA (IAID = index) and, if `with_pd`, one IA_PD.
    pub fn solicit(&self, xid: u32, with_pd: bool) -> Result<Vec<u8>, WireError> {
        let iaid = [u32::from(self.index)];
        solicit(&self.duid, xid, &iaid, if with_pd { &iaid } else { &[] })
    }
}

/// Emits `msg` into a fresh vector of exactly its length.
fn emit_message(msg: &Message<'_>) -> Result<Vec<u8>, WireError> {
    let mut out = vec![0; msg.buffer_len()];
    let n = msg.emit(&mut out)?;
    out.truncate(n);
    Ok(out)
}

/// A SOLICIT (RFC 8415 §18.2.1): Client Identifier, Elapsed Time 0, one empty IA_NA per
/// `ia_na` IAID and one empty IA_PD per `ia_pd` IAID.
pub fn solicit(duid: &[u8], xid: u32, ia_na: &[u32], ia_pd: &[u32]) -> Result<Vec<u8>, WireError> {
    let client_id = DhcpOption::ClientId(Duid::parse(duid)?);
    let elapsed = DhcpOption::ElapsedTime(0);
    let nas: Vec<IaNa<'_>> = ia_na
        .iter()
        .map(|&iaid| IaNa {
            iaid,
            t1: 0,
            t2: 0,
            options: Options::default(),
        })
        .collect();
    let pds: Vec<IaPd<'_>> = ia_pd
        .iter()
        .map(|&iaid| IaPd {
            iaid,
            t1: 0,
            t2: 0,
            options: Options::default(),
        })
        .collect();
    let mut list: Vec<&dyn EmitOption> = vec![&client_id, &elapsed];
    list.extend(nas.iter().map(|o| o as &dyn EmitOption));
    list.extend(pds.iter().map(|o| o as &dyn EmitOption));
    emit_message(&Message {
        msg_type: MessageType::SOLICIT,
        transaction_id: xid,
        options: Options::List(&list),
    })
}

/// A REBIND (RFC 8415 §18.2.5) for the address `addr` of IA_NA `iaid`: Client Identifier,
/// Elapsed Time 0, the IA with T1/T2 0 and the address with lifetimes 0 (the client's view
/// does not matter to the server, §18.3.5). No Server Identifier: any server may answer.
pub fn rebind(duid: &[u8], xid: u32, iaid: u32, addr: Ipv6Addr) -> Result<Vec<u8>, WireError> {
    let client_id = DhcpOption::ClientId(Duid::parse(duid)?);
    let elapsed = DhcpOption::ElapsedTime(0);
    let ia_addr = IaAddr {
        addr,
        preferred: 0,
        valid: 0,
        options: Options::default(),
    };
    let inner: [&dyn EmitOption; 1] = [&ia_addr];
    let na = IaNa {
        iaid,
        t1: 0,
        t2: 0,
        options: Options::List(&inner),
    };
    let list: [&dyn EmitOption; 3] = [&client_id, &elapsed, &na];
    emit_message(&Message {
        msg_type: MessageType::REBIND,
        transaction_id: xid,
        options: Options::List(&list),
    })
}

/// An INFORMATION-REQUEST (RFC 8415 §18.2.6): Elapsed Time 0 and, if given, a Client
/// Identifier.
pub fn information_request(duid: Option<&[u8]>, xid: u32) -> Result<Vec<u8>, WireError> {
    let client_id = duid.map(Duid::parse).transpose()?.map(DhcpOption::ClientId);
    let elapsed = DhcpOption::ElapsedTime(0);
    let mut list: Vec<&dyn EmitOption> = vec![&elapsed];
    if let Some(id) = &client_id {
        list.push(id);
    }
    emit_message(&Message {
        msg_type: MessageType::INFORMATION_REQUEST,
        transaction_id: xid,
        options: Options::List(&list),
    })
}

/// A RELAY-FORW (RFC 8415 §19.1.1) wrapping `inner` as a fake relay agent would: its
/// Interface-Id option (§21.18), then the Relay Message option (§21.10).
pub fn relay_forw(
    inner: &[u8],
    hop_count: u8,
    link_address: Ipv6Addr,
    peer_address: Ipv6Addr,
    interface_id: &[u8],
) -> Result<Vec<u8>, WireError> {
    let iface = DhcpOption::InterfaceId(interface_id);
    let msg = DhcpOption::RelayMsg(RelayPayload::Bytes(inner));
    let list: [&dyn EmitOption; 2] = [&iface, &msg];
    let relay = RelayMessage {
        msg_type: MessageType::RELAY_FORW,
        hop_count,
        link_address,
        peer_address,
        options: Options::List(&list),
    };
    let mut out = vec![0; relay.buffer_len()];
    let n = relay.emit(&mut out)?;
    out.truncate(n);
    Ok(out)
}

/// A Status Code option, owned (RFC 8415 §21.13).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The code.
    pub code: StatusCode,
    /// The message (lossily decoded).
    pub message: String,
}

impl Status {
    fn from_wire(s: StatusCodeOption<'_>) -> Self {
        Self {
            code: s.code,
            message: String::from_utf8_lossy(s.message).into_owned(),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {:?}", self.code, self.message)
    }
}

/// An IA_NA or IA_PD of a reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IaReply {
    /// The IAID.
    pub iaid: u32,
    /// T1 seconds.
    pub t1: u32,
    /// T2 seconds.
    pub t2: u32,
    /// Its Status Code option, if any.
    pub status: Option<Status>,
    /// Number of IA Address (IA_NA) or IA Prefix (IA_PD) options.
    pub leases: usize,
}

impl fmt::Display for IaReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "iaid={} leases={}", self.iaid, self.leases)?;
        match &self.status {
            Some(s) => write!(f, " status={s}"),
            None => f.write_str(" status=(none)"),
        }
    }
}

/// A client/server message received, with what the tests look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientReply {
    /// Message type (ADVERTISE, REPLY, ...).
    pub msg_type: MessageType,
    /// Transaction id.
    pub xid: u32,
    /// Client Identifier DUID bytes.
    pub client_id: Option<Vec<u8>>,
    /// Server Identifier DUID bytes.
    pub server_id: Option<Vec<u8>>,
    /// Top-level Status Code.
    pub status: Option<Status>,
    /// IA_NA options, in order.
    pub ia_na: Vec<IaReply>,
    /// IA_PD options, in order.
    pub ia_pd: Vec<IaReply>,
}

/// A RELAY-REPL (or RELAY-FORW) level and what it carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayReply {
    /// RELAY-REPL, normally.
    pub msg_type: MessageType,
    /// Hop count copied from the RELAY-FORW.
    pub hop_count: u8,
    /// Link address copied from the RELAY-FORW.
    pub link_address: Ipv6Addr,
    /// Peer address copied from the RELAY-FORW.
    pub peer_address: Ipv6Addr,
    /// The echoed Interface-Id.
    pub interface_id: Option<Vec<u8>>,
    /// The Relay Message option's contents.
    pub inner: Box<Reply>,
}

/// Any DHCPv6 message received by a test client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Not a relay message.
    Client(ClientReply),
    /// A relay message with its nested message.
    Relay(RelayReply),
}

impl Reply {
    /// Parses a received datagram (and, for relay messages, the nested messages).
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        match Packet::parse(bytes)? {
            Packet::Client(m) => {
                let mut ia_na = Vec::new();
                for ia in m.ia_nas() {
                    let ia = ia?;
                    ia_na.push(IaReply {
                        iaid: ia.iaid,
                        t1: ia.t1,
                        t2: ia.t2,
                        status: ia.status()?.map(Status::from_wire),
                        leases: ia.addresses().count(),
                    });
                }
                let mut ia_pd = Vec::new();
                for ia in m.ia_pds() {
                    let ia = ia?;
                    ia_pd.push(IaReply {
                        iaid: ia.iaid,
                        t1: ia.t1,
                        t2: ia.t2,
                        status: ia.status()?.map(Status::from_wire),
                        leases: ia.prefixes().count(),
                    });
                }
                Ok(Self::Client(ClientReply {
                    msg_type: m.msg_type,
                    xid: m.transaction_id,
                    client_id: m.client_id()?.map(|d| d.as_bytes().to_vec()),
                    server_id: m.server_id()?.map(|d| d.as_bytes().to_vec()),
                    status: m.status()?.map(Status::from_wire),
                    ia_na,
                    ia_pd,
                }))
            }
            Packet::Relay(r) => {
                let payload = r
                    .relay_msg()
                    .ok_or(WireError::Malformed("relay without RELAY_MSG"))?;
                Ok(Self::Relay(RelayReply {
                    msg_type: r.msg_type,
                    hop_count: r.hop_count,
                    link_address: r.link_address,
                    peer_address: r.peer_address,
                    interface_id: r.interface_id().map(<[u8]>::to_vec),
                    inner: Box::new(Self::parse(payload)?),
                }))
            }
        }
    }

    /// The client/server message at the bottom of any relay nesting.
    pub fn innermost(&self) -> &ClientReply {
        match self {
            Self::Client(c) => c,
            Self::Relay(r) => r.inner.innermost(),
        }
    }

    /// Transaction id of the innermost message.
    pub fn xid(&self) -> u32 {
        self.innermost().xid
    }
}

/// `0x`-less lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Client(c) => {
                write!(f, "{:?} xid={:#08x}", c.msg_type, c.xid)?;
                if let Some(id) = &c.client_id {
                    write!(f, " client-id={}", hex(id))?;
                }
                if let Some(id) = &c.server_id {
                    write!(f, " server-id={}", hex(id))?;
                }
                if let Some(s) = &c.status {
                    write!(f, " status={s}")?;
                }
                for ia in &c.ia_na {
                    write!(f, " IA_NA({ia})")?;
                }
                for ia in &c.ia_pd {
                    write!(f, " IA_PD({ia})")?;
                }
                Ok(())
            }
            Self::Relay(r) => {
                write!(
                    f,
                    "{:?} hop={} link={} peer={}",
                    r.msg_type, r.hop_count, r.link_address, r.peer_address
                )?;
                if let Some(id) = &r.interface_id {
                    write!(f, " interface-id={:?}", String::from_utf8_lossy(id))?;
                }
                write!(f, " {{ {} }}", r.inner)
            }
        }
    }
}

/// A UDP socket living in a namespace, used as a DHCPv6 client or fake relay.
#[derive(Debug)]
pub struct DhcpSocket {
    sock: UdpSocket,
}

impl DhcpSocket {
    /// Binds `[::]:port` (0 = ephemeral) inside `ns`.
    pub fn bind(ns: &NetNs, port: u16) -> io::Result<Self> {
        let sock =
            ns.run(|| UdpSocket::bind(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0)))?;
        Ok(Self { sock })
    }

    /// The bound local port.
    pub fn local_port(&self) -> io::Result<u16> {
        Ok(self.sock.local_addr()?.port())
    }

    /// Sends one datagram.
    pub fn send_to(&self, msg: &[u8], dest: SocketAddrV6) -> io::Result<()> {
        let n = retry_eintr(|| self.sock.send_to(msg, dest))?;
        if n == msg.len() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "short send: {n} of {} bytes",
                msg.len()
            )))
        }
    }

    /// Waits up to `timeout` for a DHCPv6 message whose innermost transaction id is `xid`;
    /// datagrams that do not parse or carry another id are skipped. `Ok(None)` on timeout.
    pub fn recv_xid(&self, xid: u32, timeout: Duration) -> io::Result<Option<(Reply, SocketAddr)>> {
        let deadline = Instant::now() + timeout;
        let mut buf = [0u8; 2048];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.sock.set_read_timeout(Some(left))?;
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let Some(bytes) = buf.get(..n) else { continue };
                    if let Ok(reply) = Reply::parse(bytes)
                        && reply.xid() == xid
                    {
                        return Ok(Some((reply, from)));
                    }
                }
                // A signal to the test process is no reason to give up.
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `msg` to `dest` and waits for the reply with transaction id `xid`, sending again
    /// (same bytes) up to `attempts` times in all, `timeout` apart.
    pub fn transact(
        &self,
        msg: &[u8],
        xid: u32,
        dest: SocketAddrV6,
        timeout: Duration,
        attempts: u32,
    ) -> io::Result<Transaction> {
        let mut sent = 0;
        for _ in 0..attempts.max(1) {
            self.send_to(msg, dest)?;
            sent += 1;
            if let Some((reply, from)) = self.recv_xid(xid, timeout)? {
                return Ok(Transaction {
                    sent,
                    reply: Some(reply),
                    from: Some(from),
                });
            }
        }
        Ok(Transaction {
            sent,
            reply: None,
            from: None,
        })
    }
}

/// Runs `op` again while it fails with EINTR.
pub(crate) fn retry_eintr<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// The outcome of [`DhcpSocket::transact`].
#[derive(Clone, Debug)]
pub struct Transaction {
    /// Datagrams sent (1 unless retransmitted).
    pub sent: u32,
    /// The reply, if one came.
    pub reply: Option<Reply>,
    /// Who sent it.
    pub from: Option<SocketAddr>,
}

/// What a correct answer to one of our messages looks like (the datapath contract's demo
/// behaviour): checked by [`Expect::problems`].
#[derive(Clone, Copy, Debug)]
pub struct Expect<'a> {
    /// ADVERTISE for a SOLICIT, REPLY for an INFORMATION-REQUEST.
    pub msg_type: MessageType,
    /// The transaction id sent.
    pub xid: u32,
    /// The Client Identifier sent (echoed back, RFC 8415 §18.3.9), if any.
    pub client_id: Option<&'a [u8]>,
    /// IAIDs of the IA_NAs sent: each must come back with NoAddrsAvail.
    pub ia_na: &'a [u32],
    /// IAIDs of the IA_PDs sent: each must come back with NoPrefixAvail.
    pub ia_pd: &'a [u32],
}

impl Expect<'_> {
    /// Everything wrong with `reply` (empty when it is correct): type, transaction id, Client
    /// Identifier, a Server Identifier present, and one IA per IA sent with the right status
    /// (RFC 8415 §18.3.9: an IA without addresses carries NoAddrsAvail / NoPrefixAvail).
    pub fn problems(&self, reply: &Reply) -> Vec<String> {
        let mut bad = Vec::new();
        let c = match reply {
            Reply::Client(c) => c,
            Reply::Relay(r) => {
                bad.push(format!(
                    "expected {:?}, got a relay message {:?}",
                    self.msg_type, r.msg_type
                ));
                return bad;
            }
        };
        if c.msg_type != self.msg_type {
            bad.push(format!(
                "type {:?}, expected {:?}",
                c.msg_type, self.msg_type
            ));
        }
        if c.xid != self.xid {
            bad.push(format!("xid {:#08x}, expected {:#08x}", c.xid, self.xid));
        }
        if c.client_id.as_deref() != self.client_id {
            bad.push(format!(
                "client id {:?}, expected {:?}",
                c.client_id.as_deref().map(hex),
                self.client_id.map(hex)
            ));
        }
        if c.server_id.is_none() {
            bad.push("no Server Identifier".to_owned());
        }
        for (kind, sent, got, want) in [
            ("IA_NA", self.ia_na, &c.ia_na, StatusCode::NO_ADDRS_AVAIL),
            ("IA_PD", self.ia_pd, &c.ia_pd, StatusCode::NO_PREFIX_AVAIL),
        ] {
            let got_iaids: Vec<u32> = got.iter().map(|ia| ia.iaid).collect();
            if got_iaids != sent {
                bad.push(format!("{kind} IAIDs {got_iaids:?}, expected {sent:?}"));
            }
            for ia in got {
                let code = ia.status.as_ref().map(|s| s.code);
                if code != Some(want) || ia.leases != 0 {
                    bad.push(format!(
                        "{kind} {}: {ia}, expected {want:?} and no leases",
                        ia.iaid
                    ));
                }
            }
        }
        bad
    }
}

/// What a correct RELAY-REPL to our RELAY-FORW looks like (RFC 8415 §19.3: hop count, link
/// and peer address copied; Interface-Id echoed, §21.18; the answer in a Relay Message).
#[derive(Clone, Copy, Debug)]
pub struct ExpectRelay<'a> {
    /// Hop count sent.
    pub hop_count: u8,
    /// Link address sent.
    pub link_address: Ipv6Addr,
    /// Peer address sent.
    pub peer_address: Ipv6Addr,
    /// Interface-Id sent.
    pub interface_id: &'a [u8],
    /// The answer expected inside.
    pub inner: Expect<'a>,
}

impl ExpectRelay<'_> {
    /// Everything wrong with `reply` (empty when it is correct).
    pub fn problems(&self, reply: &Reply) -> Vec<String> {
        let Reply::Relay(r) = reply else {
            return vec![format!("expected RELAY-REPL, got {reply}")];
        };
        let mut bad = Vec::new();
        if r.msg_type != MessageType::RELAY_REPL {
            bad.push(format!("type {:?}, expected RELAY_REPL", r.msg_type));
        }
        if r.hop_count != self.hop_count {
            bad.push(format!(
                "hop count {}, expected {}",
                r.hop_count, self.hop_count
            ));
        }
        if (r.link_address, r.peer_address) != (self.link_address, self.peer_address) {
            bad.push(format!(
                "link/peer {}/{}, expected {}/{}",
                r.link_address, r.peer_address, self.link_address, self.peer_address
            ));
        }
        if r.interface_id.as_deref() != Some(self.interface_id) {
            bad.push(format!(
                "Interface-Id {:?}, expected {:?}",
                r.interface_id.as_deref().map(String::from_utf8_lossy),
                String::from_utf8_lossy(self.interface_id)
            ));
        }
        bad.extend(
            self.inner
                .problems(&r.inner)
                .into_iter()
                .map(|p| format!("inner: {p}")),
        );
        bad
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solicit_round_trips_through_reply_parser() {
        let client = SimClient::new(7);
        let bytes = client.solicit(0x12_3456, true).unwrap();
        let Reply::Client(parsed) = Reply::parse(&bytes).unwrap() else {
            panic!("relay?")
        };
        assert_eq!(parsed.msg_type, MessageType::SOLICIT);
        assert_eq!(parsed.xid, 0x12_3456);
        assert_eq!(parsed.client_id.as_deref(), Some(&client.duid[..]));
        assert_eq!(parsed.ia_na.len(), 1);
        assert_eq!(parsed.ia_na[0].iaid, 7);
        assert_eq!(parsed.ia_pd.len(), 1);
        assert_eq!(parsed.server_id, None);
    }

    #[test]
    fn sim_clients_have_distinct_duid_ll() {
        let a = SimClient::new(1);
        let b = SimClient::new(2);
        assert_ne!(a.duid, b.duid);
        assert_eq!(
            &a.duid[..4],
            &[0, 3, 0, 1],
            "DUID-LL, hardware type Ethernet"
        );
        assert_eq!(a.duid.len(), 10);
    }

    #[test]
    fn relay_forw_nests_solicit_with_interface_id() {
        let inner = information_request(Some(&SimClient::new(3).duid), 42).unwrap();
        let link = Ipv6Addr::new(0xfd00, 0, 1, 0, 0, 0, 0, 1);
        let peer = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 9);
        let bytes = relay_forw(&inner, 0, link, peer, b"port-1").unwrap();
        let Reply::Relay(r) = Reply::parse(&bytes).unwrap() else {
            panic!("not a relay")
        };
        assert_eq!(r.msg_type, MessageType::RELAY_FORW);
        assert_eq!((r.link_address, r.peer_address), (link, peer));
        assert_eq!(r.interface_id.as_deref(), Some(&b"port-1"[..]));
        assert_eq!(
            r.inner.innermost().msg_type,
            MessageType::INFORMATION_REQUEST
        );
        assert_eq!(Reply::Relay(r).xid(), 42);
    }

    #[test]
    fn random_xid_fits_24_bits() {
        assert!((0..64).map(|_| random_xid()).all(|x| x <= 0xff_ffff));
    }
}
