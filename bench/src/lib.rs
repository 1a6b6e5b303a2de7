//! The workloads behind `cargo bench -p tandem-bench` (benches/wire.rs), kept here so that
//! unit tests check they do the real work: each one parses what a server receives and emits
//! what it would send, with `tandem-wire` alone, no allocation.
//!
//! * [`advertise`]: SOLICIT → ADVERTISE (Server ID, Client ID, each IA_NA answered with
//!   NoAddrsAvail), RFC 8415 §18.3.9.
//! * [`relayed_reply`]: RELAY-FORW chain around a REQUEST → RELAY-REPL chain around a REPLY
//!   that assigns each requested address (RFC 8415 §18.3.10, §19.3).
//! * [`frame_reply`]: a whole Ethernet/IPv6/UDP frame parsed (checksum verified), then the
//!   reply's headers written in front of a DHCPv6 payload with a new checksum.
//!
//! [`Fixtures`] builds typical inputs with the wire crate's own emitters.
//!
//! [`engine`] is the workload of benches/engine.rs: whole exchanges of new clients through the
//! DHCPv6 engine and the memory-mapped lease store.

pub mod engine;

use core::net::Ipv6Addr;

use tandem_wire::dhcp::message::Message;
use tandem_wire::dhcp::option::DhcpOption;
use tandem_wire::dhcp::relay::{RelayChain, RelayMessage, RelayPayload};
use tandem_wire::dhcp::{Duid, IaAddr, IaNa, MessageType, Packet, StatusCode, StatusCodeOption};
use tandem_wire::frame::ethernet::EthernetAddress;
use tandem_wire::frame::{Frame, FrameRepr, build_udp_frame};
use tandem_wire::option::{EmitOption, OptionCode, Options, RawOption};
use tandem_wire::{Error, Result};

/// Most IA_NAs (and addresses per IA_NA) the workloads answer; more are ignored.
pub const MAX_IAS: usize = 4;

/// T1, T2, preferred and valid lifetimes the relayed REPLY grants (seconds).
pub const LIFETIMES: [u32; 4] = [1800, 2880, 3600, 7200];

/// Our MAC address in the frame workload.
pub const SERVER_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]);

/// Our link-local address in the frame workload.
pub const SERVER_IP: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

const NO_POOLS: &str = "no pools configured";

/// SOLICIT → ADVERTISE: parses `solicit`, writes the ADVERTISE into `out`, returns its length.
///
/// Errors: what parsing reports, [`Error::Unsupported`] for anything but a SOLICIT or one
/// without a Client Identifier (RFC 8415 §16.2 says to discard it), and emit errors.
pub fn advertise(solicit: &[u8], server_id: Duid<'_>, out: &mut [u8]) -> Result<usize> {
    let Packet::Client(msg) = Packet::parse(solicit)? else {
        return Err(Error::Unsupported("relayed message"));
    };
    if msg.msg_type != MessageType::SOLICIT {
        return Err(Error::Unsupported("not a SOLICIT"));
    }
    let client_id = msg
        .client_id()?
        .ok_or(Error::Unsupported("SOLICIT without Client ID"))?;

    let status = StatusCodeOption::new(StatusCode::NO_ADDRS_AVAIL, NO_POOLS);
    let status_list: [&dyn EmitOption; 1] = [&status];
    let empty = IaNa {
        iaid: 0,
        t1: 0,
        t2: 0,
        options: Options::List(&status_list),
    };
    let mut ias = [empty; MAX_IAS];
    let mut n_ias = 0;
    for (slot, ia) in ias.iter_mut().zip(msg.ia_nas()) {
        slot.iaid = ia?.iaid;
        n_ias += 1;
    }
    let server = DhcpOption::ServerId(server_id);
    let client = DhcpOption::ClientId(client_id);
    let mut list: [&dyn EmitOption; 2 + MAX_IAS] = [&server; 2 + MAX_IAS];
    list[1] = &client;
    for (slot, ia) in list[2..].iter_mut().zip(&ias[..n_ias]) {
        *slot = ia;
    }
    let reply = Message {
        msg_type: MessageType::ADVERTISE,
        transaction_id: msg.transaction_id,
        options: Options::List(&list[..2 + n_ias]),
    };
    reply.emit(out)
}

/// RELAY-FORW chain around a REQUEST → RELAY-REPL chain around a REPLY that gives each IA_NA
/// the addresses the client asked for, with [`LIFETIMES`]. Returns the length written.
///
/// Errors: what parsing reports; [`Error::Unsupported`] for anything but a REQUEST to us
/// (RFC 8415 §16.4: Server ID must match), and emit errors.
pub fn relayed_reply(relay_forw: &[u8], server_id: Duid<'_>, out: &mut [u8]) -> Result<usize> {
    let chain = RelayChain::parse(relay_forw)?;
    let msg = chain.inner();
    if msg.msg_type != MessageType::REQUEST {
        return Err(Error::Unsupported("not a REQUEST"));
    }
    let client_id = msg
        .client_id()?
        .ok_or(Error::Unsupported("REQUEST without Client ID"))?;
    if msg.server_id()? != Some(server_id) {
        return Err(Error::Unsupported("REQUEST for another server"));
    }
    let [t1, t2, preferred, valid] = LIFETIMES;

    let unset = IaAddr {
        addr: Ipv6Addr::UNSPECIFIED,
        preferred,
        valid,
        options: Options::List(&[]),
    };
    let mut addrs = [[unset; MAX_IAS]; MAX_IAS];
    let mut n_addrs = [0usize; MAX_IAS];
    let mut iaids = [0u32; MAX_IAS];
    let mut n_ias = 0;
    for (i, ia) in msg.ia_nas().take(MAX_IAS).enumerate() {
        let ia = ia?;
        iaids[i] = ia.iaid;
        for (slot, addr) in addrs[i].iter_mut().zip(ia.addresses()) {
            slot.addr = addr?.addr;
            n_addrs[i] += 1;
        }
        n_ias += 1;
    }
    let mut addr_lists: [[&dyn EmitOption; MAX_IAS]; MAX_IAS] = [[&unset; MAX_IAS]; MAX_IAS];
    for (list, addrs) in addr_lists.iter_mut().zip(&addrs) {
        for (slot, addr) in list.iter_mut().zip(addrs) {
            *slot = addr;
        }
    }
    let empty = IaNa {
        iaid: 0,
        t1,
        t2,
        options: Options::List(&[]),
    };
    let mut ias = [empty; MAX_IAS];
    for i in 0..n_ias {
        ias[i].iaid = iaids[i];
        ias[i].options = Options::List(&addr_lists[i][..n_addrs[i]]);
    }

    let server = DhcpOption::ServerId(server_id);
    let client = DhcpOption::ClientId(client_id);
    let mut list: [&dyn EmitOption; 2 + MAX_IAS] = [&server; 2 + MAX_IAS];
    list[1] = &client;
    for (slot, ia) in list[2..].iter_mut().zip(&ias[..n_ias]) {
        *slot = ia;
    }
    let reply = Message {
        msg_type: MessageType::REPLY,
        transaction_id: msg.transaction_id,
        options: Options::List(&list[..2 + n_ias]),
    };
    chain.emit_reply(&reply, out)
}

/// Parses a received frame (UDP checksum verified) and writes the reply's Ethernet, IPv6 and
/// UDP headers, with its checksum, in front of `payload`, which is copied in as the DHCPv6
/// engine would have written it. Returns the frame length.
pub fn frame_reply(rx_frame: &[u8], payload: &[u8], out: &mut [u8]) -> Result<usize> {
    let rx = Frame::parse(rx_frame)?;
    let repr = FrameRepr::reply_to(&rx, SERVER_MAC, SERVER_IP);
    let start = repr.header_len();
    out.get_mut(start..)
        .and_then(|rest| rest.get_mut(..payload.len()))
        .ok_or(Error::BufferTooSmall)?
        .copy_from_slice(payload);
    repr.emit_headers(out, payload.len())
}

/// Typical inputs, built once with the wire crate's emitters.
#[derive(Debug)]
pub struct Fixtures {
    /// Our DUID-LL (from [`SERVER_MAC`]).
    pub server_duid: Vec<u8>,
    /// A dhclient-like SOLICIT: DUID-LLT Client ID, Elapsed Time, ORO (DNS servers, domain
    /// list), one IA_NA.
    pub solicit: Vec<u8>,
    /// A REQUEST for one address from our server, inside one RELAY-FORW with an Interface-Id.
    pub relay_forw_request: Vec<u8>,
    /// [`Self::solicit`] in an Ethernet + IPv6 + UDP frame, fe80::5054:ff:fea1:b2c3 → ff02::1:2.
    pub solicit_frame: Vec<u8>,
}

impl Fixtures {
    /// Builds the fixtures; fails only if the wire crate's emitters do.
    pub fn new() -> Result<Self> {
        let client_mac = [0x52, 0x54, 0x00, 0xa1, 0xb2, 0xc3];
        let mut server_duid = vec![0; 10];
        let n = Duid::emit_ll(1, &SERVER_MAC.0, &mut server_duid)?;
        server_duid.truncate(n);
        let mut client_duid = vec![0; 14];
        let n = Duid::emit_llt(1, 0x2a6f_1c3d, &client_mac, &mut client_duid)?;
        client_duid.truncate(n);
        let server = Duid::parse(&server_duid)?;
        let client = Duid::parse(&client_duid)?;

        let oro = RawOption {
            code: OptionCode::ORO,
            data: &[0, 23, 0, 24],
        };
        let elapsed = DhcpOption::ElapsedTime(0);
        let client_opt = DhcpOption::ClientId(client);
        let ia = IaNa {
            iaid: 0x00a1_b2c3,
            t1: 0,
            t2: 0,
            options: Options::List(&[]),
        };
        let solicit_opts: [&dyn EmitOption; 4] = [&client_opt, &elapsed, &oro, &ia];
        let solicit = emit_message(MessageType::SOLICIT, 0x5a_1b2c, &solicit_opts)?;

        let addr = IaAddr {
            addr: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x1234),
            preferred: 0,
            valid: 0,
            options: Options::List(&[]),
        };
        let addr_list: [&dyn EmitOption; 1] = [&addr];
        let ia = IaNa {
            options: Options::List(&addr_list),
            ..ia
        };
        let server_opt = DhcpOption::ServerId(server);
        let request_opts: [&dyn EmitOption; 5] = [&client_opt, &server_opt, &elapsed, &oro, &ia];
        let request = Message {
            msg_type: MessageType::REQUEST,
            transaction_id: 0x5a_1b2d,
            options: Options::List(&request_opts),
        };
        let interface_id = DhcpOption::InterfaceId(b"ge-0/0/1.100");
        let relay_msg = DhcpOption::RelayMsg(RelayPayload::Message(&request));
        let relay_opts: [&dyn EmitOption; 2] = [&interface_id, &relay_msg];
        let relay = RelayMessage {
            msg_type: MessageType::RELAY_FORW,
            hop_count: 0,
            link_address: Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1),
            peer_address: Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfea1, 0xb2c3),
            options: Options::List(&relay_opts),
        };
        let mut relay_forw_request = vec![0; relay.buffer_len()];
        relay.emit(&mut relay_forw_request)?;

        let client_repr = FrameRepr {
            dst_mac: EthernetAddress([0x33, 0x33, 0, 1, 0, 2]),
            src_mac: EthernetAddress(client_mac),
            vlans: Default::default(),
            src_ip: Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfea1, 0xb2c3),
            dst_ip: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2),
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
            src_port: 546,
            dst_port: 547,
        };
        let mut solicit_frame = vec![0; client_repr.buffer_len(solicit.len())];
        build_udp_frame(&client_repr, &solicit, &mut solicit_frame)?;

        Ok(Self {
            server_duid,
            solicit,
            relay_forw_request,
            solicit_frame,
        })
    }

    /// [`Self::server_duid`] as a [`Duid`].
    pub fn server_id(&self) -> Duid<'_> {
        // Built by `Duid::emit_ll` in `new`, so it parses; the fallback is never taken.
        Duid::parse(&self.server_duid).unwrap_or_else(|_| unreachable!("emitted DUID parses"))
    }
}

fn emit_message(msg_type: MessageType, xid: u32, options: &[&dyn EmitOption]) -> Result<Vec<u8>> {
    let msg = Message {
        msg_type,
        transaction_id: xid,
        options: Options::List(options),
    };
    let mut buf = vec![0; msg.buffer_len()];
    msg.emit(&mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use tandem_wire::dhcp::relay::RelayChain;

    use super::*;

    fn fixtures() -> Fixtures {
        Fixtures::new().unwrap()
    }

    #[test]
    fn advertise_for_solicit_echoes_ids_and_refuses_the_ia() {
        let f = fixtures();
        let mut out = [0u8; 512];
        let n = advertise(&f.solicit, f.server_id(), &mut out).unwrap();
        let solicit = Message::parse(&f.solicit).unwrap();
        let adv = Message::parse(&out[..n]).unwrap();
        assert_eq!(adv.msg_type, MessageType::ADVERTISE);
        assert_eq!(adv.transaction_id, solicit.transaction_id);
        assert_eq!(adv.server_id().unwrap(), Some(f.server_id()));
        assert_eq!(adv.client_id().unwrap(), solicit.client_id().unwrap());
        let ias: Vec<_> = adv.ia_nas().map(Result::unwrap).collect();
        assert_eq!(ias.len(), 1);
        assert_eq!(ias[0].iaid, 0x00a1_b2c3);
        let status = ias[0].status().unwrap().unwrap();
        assert_eq!(status.code, StatusCode::NO_ADDRS_AVAIL);
        assert_eq!(status.message_str(), Some(NO_POOLS));
    }

    #[test]
    fn advertise_for_request_is_unsupported() {
        let f = fixtures();
        let chain = RelayChain::parse(&f.relay_forw_request).unwrap();
        let inner = f.relay_forw_request.len() - chain.inner().buffer_len();
        let err = advertise(&f.relay_forw_request[inner..], f.server_id(), &mut [0; 512]);
        assert_eq!(err, Err(Error::Unsupported("not a SOLICIT")));
    }

    #[test]
    fn relayed_reply_wraps_reply_with_requested_address() {
        let f = fixtures();
        let mut out = [0u8; 512];
        let n = relayed_reply(&f.relay_forw_request, f.server_id(), &mut out).unwrap();
        let chain = RelayChain::parse(&out[..n]).unwrap();
        let level = chain.levels()[0];
        assert_eq!(level.msg_type, MessageType::RELAY_REPL);
        assert_eq!(level.interface_id(), Some(&b"ge-0/0/1.100"[..]));
        let reply = chain.inner();
        assert_eq!(reply.msg_type, MessageType::REPLY);
        assert_eq!(reply.transaction_id, 0x5a_1b2d);
        let ia = reply.ia_nas().next().unwrap().unwrap();
        assert_eq!(
            (ia.iaid, ia.t1, ia.t2),
            (0x00a1_b2c3, LIFETIMES[0], LIFETIMES[1])
        );
        let addr = ia.addresses().next().unwrap().unwrap();
        assert_eq!(
            addr.addr,
            Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x1234)
        );
        assert_eq!((addr.preferred, addr.valid), (LIFETIMES[2], LIFETIMES[3]));
    }

    #[test]
    fn relayed_reply_for_other_server_is_unsupported() {
        let f = fixtures();
        let mut other = vec![0; 10];
        Duid::emit_ll(1, &[2, 0, 0, 0, 0, 9], &mut other).unwrap();
        let err = relayed_reply(
            &f.relay_forw_request,
            Duid::parse(&other).unwrap(),
            &mut [0; 512],
        );
        assert_eq!(err, Err(Error::Unsupported("REQUEST for another server")));
    }

    #[test]
    fn frame_reply_addresses_the_client_with_valid_checksum() {
        let f = fixtures();
        let payload = [2, 0x5a, 0x1b, 0x2c];
        let mut out = [0u8; 512];
        let n = frame_reply(&f.solicit_frame, &payload, &mut out).unwrap();
        let tx = Frame::parse(&out[..n]).unwrap(); // verifies the checksum
        let rx = Frame::parse(&f.solicit_frame).unwrap();
        assert_eq!(tx.dst_mac(), rx.src_mac());
        assert_eq!((tx.src_ip(), tx.dst_ip()), (SERVER_IP, rx.src_ip()));
        assert_eq!((tx.src_port(), tx.dst_port()), (547, 546));
        assert_eq!(tx.payload(), payload);
    }

    #[test]
    fn frame_reply_with_corrupt_checksum_is_rejected() {
        let f = fixtures();
        let mut frame = f.solicit_frame.clone();
        let last = frame.len() - 1;
        frame[last] ^= 0xff;
        assert_eq!(
            frame_reply(&frame, &[2, 0, 0, 1], &mut [0; 512]),
            Err(Error::Checksum)
        );
    }
}
