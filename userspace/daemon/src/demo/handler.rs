//! The demo DHCPv6 responder that `tandem xdp-demo` runs on every AF_XDP queue until the real
//! server exists. It has no pools and keeps no state: it proves the datapath end to end
//! (XDP steering → AF_XDP RX → reply built in place → AF_XDP TX) with replies a real client
//! understands.
//!
//! * SOLICIT (RFC 8415 §16.2: with a Client ID and without a Server ID) → ADVERTISE
//!   (§18.3.9) with our Server ID, the client's Client ID, and each IA_NA / IA_PD of the
//!   Solicit echoed back without leases and with a Status Code NoAddrsAvail / NoPrefixAvail
//!   ([`DEMO_STATUS_MESSAGE`]).
//! * INFORMATION-REQUEST (§16.12: no IA, no foreign Server ID) → REPLY (§18.3.6) with our
//!   Server ID and the Client ID if one was sent.
//! * Either of them inside RELAY-FORW levels (§19.1) → the reply wrapped in one RELAY-REPL
//!   per level, Interface-Id echoed (§19.3, §21.18).
//! * Everything else (other message types, malformed packets, other ports) is dropped; the
//!   worker counts it.
//!
//! Built only from `tandem-wire` codecs, without allocation: the reply is built on the stack
//! while the request is still readable in the frame, then copied behind the headers.

use core::net::Ipv6Addr;

use tandem_datapath::worker::{Action, Handler};
use tandem_wire::dhcp::message::Message;
use tandem_wire::dhcp::relay::RelayChain;
use tandem_wire::dhcp::{Duid, IaNa, IaPd, MessageType, Packet, StatusCode, StatusCodeOption};
use tandem_wire::frame::ethernet::EthernetAddress;
use tandem_wire::frame::{Frame, FrameRepr};
use tandem_wire::option::{EmitOption, OptionCode, Options, RawOption};

/// UDP port of DHCPv6 servers and relay agents (RFC 8415 §7.2).
pub const SERVER_PORT: u16 = 547;
/// The status message of every IA the demo answers.
pub const DEMO_STATUS_MESSAGE: &str = "no pools configured: demo mode";
/// Most IA_NA plus IA_PD options answered in one Solicit; a Solicit with more is dropped.
pub const MAX_IAS: usize = 16;
/// Largest DHCPv6 reply (relay levels included) the demo builds.
const REPLY_BUF_LEN: usize = 1500;
/// Hardware type of Ethernet in DUID-LL (IANA "Hardware Types"; RFC 8415 §11.4).
const HW_TYPE_ETHERNET: u16 = 1;
/// A DUID-LL: 2-byte type, 2-byte hardware type, 6-byte MAC.
const DUID_LL_LEN: usize = 10;

/// The stateless demo responder; one per worker (it is `Clone` and `Send`).
#[derive(Clone, Debug)]
pub struct DemoHandler {
    mac: EthernetAddress,
    server_addr: Ipv6Addr,
    duid: [u8; DUID_LL_LEN],
}

impl DemoHandler {
    /// A responder for an interface with hardware address `mac`. Its Server ID is the DUID-LL
    /// of `mac` (RFC 8415 §11.4); `server_addr` is the source address of replies to
    /// multicast requests (a unicast request is answered from the address it was sent to).
    pub fn new(mac: [u8; 6], server_addr: Ipv6Addr) -> Self {
        let mut duid = [0; DUID_LL_LEN];
        // A 10-byte buffer holds exactly a 6-byte-MAC DUID-LL: this cannot fail.
        let _ = Duid::emit_ll(HW_TYPE_ETHERNET, &mac, &mut duid);
        Self {
            mac: EthernetAddress(mac),
            server_addr,
            duid,
        }
    }

    /// Our Server Identifier (a DUID-LL).
    pub fn server_duid(&self) -> &[u8] {
        &self.duid
    }

    /// Builds the DHCPv6 reply to the UDP payload `request` into `out` and returns its
    /// length, or `None` when the request is to be dropped.
    pub fn reply_payload(&self, request: &[u8], out: &mut [u8]) -> Option<usize> {
        match Packet::parse(request).ok()? {
            Packet::Client(msg) => self.answer(&msg, |reply| reply.emit(out).ok()),
            Packet::Relay(_) => {
                // RFC 8415 §16.14 / §19.3: a server only answers RELAY-FORW; a RELAY-REPL is
                // for relays (RelayChain keeps every level of the outermost level's type).
                let chain = RelayChain::parse(request).ok()?;
                if chain.levels().first()?.msg_type != MessageType::RELAY_FORW {
                    return None;
                }
                self.answer(&chain.inner(), |reply| {
                    let len = chain.reply_len(reply);
                    chain.emit_reply(reply, out.get_mut(..len)?).ok()
                })
            }
        }
    }

    /// Decides on the client message `msg` and hands the reply to `emit`.
    fn answer<R>(
        &self,
        msg: &Message<'_>,
        emit: impl FnOnce(&Message<'_>) -> Option<R>,
    ) -> Option<R> {
        let server_id = RawOption {
            code: OptionCode::SERVERID,
            data: &self.duid,
        };
        match msg.msg_type {
            MessageType::SOLICIT => self.advertise(msg, &server_id, emit),
            MessageType::INFORMATION_REQUEST => {
                // RFC 8415 §16.12: discard with an IA or with another server's Server ID.
                if let Some(sid) = msg.option(OptionCode::SERVERID)
                    && sid.data != self.duid
                {
                    return None;
                }
                if msg.count(OptionCode::IA_NA)
                    + msg.count(OptionCode::IA_TA)
                    + msg.count(OptionCode::IA_PD)
                    > 0
                {
                    return None;
                }
                // RFC 8415 §18.3.6: answer even without a Client ID; echo it when present.
                let client_id = msg.client_id().ok()?;
                let client_id = client_id.map(|d| RawOption {
                    code: OptionCode::CLIENTID,
                    data: d.as_bytes(),
                });
                let with_client: [&dyn EmitOption; 2];
                let without_client: [&dyn EmitOption; 1];
                let options: &[&dyn EmitOption] = match &client_id {
                    Some(cid) => {
                        with_client = [&server_id, cid];
                        &with_client
                    }
                    None => {
                        without_client = [&server_id];
                        &without_client
                    }
                };
                emit(&Message {
                    msg_type: MessageType::REPLY,
                    transaction_id: msg.transaction_id,
                    options: Options::List(options),
                })
            }
            _ => None,
        }
    }

    /// RFC 8415 §16.2 checks, then an ADVERTISE (§18.3.9) with every IA marked unavailable.
    fn advertise<R>(
        &self,
        msg: &Message<'_>,
        server_id: &RawOption<'_>,
        emit: impl FnOnce(&Message<'_>) -> Option<R>,
    ) -> Option<R> {
        if msg.count(OptionCode::SERVERID) > 0 {
            return None;
        }
        let client_id = msg.client_id().ok()??;
        let client_id = RawOption {
            code: OptionCode::CLIENTID,
            data: client_id.as_bytes(),
        };

        let no_addrs = StatusCodeOption::new(StatusCode::NO_ADDRS_AVAIL, DEMO_STATUS_MESSAGE);
        let no_prefix = StatusCodeOption::new(StatusCode::NO_PREFIX_AVAIL, DEMO_STATUS_MESSAGE);
        let na_options: [&dyn EmitOption; 1] = [&no_addrs];
        let pd_options: [&dyn EmitOption; 1] = [&no_prefix];
        // T1/T2 0: "the client decides" (RFC 8415 §21.4); nothing is assigned anyway.
        let na = IaNa {
            iaid: 0,
            t1: 0,
            t2: 0,
            options: Options::List(&na_options),
        };
        let pd = IaPd {
            iaid: 0,
            t1: 0,
            t2: 0,
            options: Options::List(&pd_options),
        };
        let mut nas = [na; MAX_IAS];
        let mut pds = [pd; MAX_IAS];
        let n_na = collect_iaids(
            msg.ia_nas().map(|ia| ia.map(|ia| ia.iaid)),
            &mut nas,
            |ia, iaid| ia.iaid = iaid,
        )?;
        let n_pd = collect_iaids(
            msg.ia_pds().map(|ia| ia.map(|ia| ia.iaid)),
            &mut pds,
            |ia, iaid| ia.iaid = iaid,
        )?;
        if n_na + n_pd > MAX_IAS {
            return None;
        }

        let mut list: [&dyn EmitOption; 2 + 2 * MAX_IAS] = [server_id; 2 + 2 * MAX_IAS];
        let mut len = 1;
        let ias = nas.iter().take(n_na).map(|ia| ia as &dyn EmitOption);
        let ias = ias.chain(pds.iter().take(n_pd).map(|ia| ia as &dyn EmitOption));
        for option in core::iter::once(&client_id as &dyn EmitOption).chain(ias) {
            *list.get_mut(len)? = option;
            len += 1;
        }
        emit(&Message {
            msg_type: MessageType::ADVERTISE,
            transaction_id: msg.transaction_id,
            options: Options::List(list.get(..len)?),
        })
    }
}

/// Copies the IAIDs of `iaids` into the first slots of `slots`; `None` if an IA is malformed
/// or there are more than `slots.len()`. Returns the number of IAs.
fn collect_iaids<T>(
    iaids: impl Iterator<Item = tandem_wire::Result<u32>>,
    slots: &mut [T],
    set: impl Fn(&mut T, u32),
) -> Option<usize> {
    let mut n = 0;
    for iaid in iaids {
        set(slots.get_mut(n)?, iaid.ok()?);
        n += 1;
    }
    Some(n)
}

impl Handler for DemoHandler {
    fn handle(&mut self, frame: &mut [u8], len: usize) -> Action {
        self.reply_in_place(frame, len)
            .map_or(Action::Drop, Action::Reply)
    }
}

impl DemoHandler {
    /// The demo's path from a received frame (`frame[..len]`, in its UMEM chunk `frame`) to
    /// the reply frame written over it: its length, or `None` to drop it.
    pub fn reply_in_place(&self, frame: &mut [u8], len: usize) -> Option<usize> {
        let mut reply = [0u8; REPLY_BUF_LEN];
        let (headers, reply_len) = {
            // Local senders over veth leave the UDP checksum to the device (CHECKSUM_PARTIAL).
            let rx = Frame::parse_completing_partial(frame.get_mut(..len)?).ok()?;
            // Never answer a multicast or unspecified source (RFC 4291 §2.7).
            if rx.dst_port() != SERVER_PORT
                || rx.src_ip().is_multicast()
                || rx.src_ip().is_unspecified()
            {
                return None;
            }
            let reply_len = self.reply_payload(rx.payload(), &mut reply)?;
            // RFC 8415 §18.3.10 / §19.3: back to the source address and port of the request.
            (
                FrameRepr::reply_to(&rx, self.mac, self.server_addr),
                reply_len,
            )
        };
        let payload = reply.get(..reply_len)?;
        frame
            .get_mut(headers.header_len()..)?
            .get_mut(..reply_len)?
            .copy_from_slice(payload);
        headers.emit_headers(frame, reply_len).ok()
    }
}

#[cfg(test)]
mod tests {
    use hex_literal::hex;
    use tandem_wire::dhcp::relay::RelayMessage;
    use tandem_wire::frame::build_udp_frame;
    use tandem_wire::frame::udp;

    use super::*;

    const SERVER_MAC: [u8; 6] = [2, 0, 0, 0, 0xdc, 1];
    const CLIENT_MAC: [u8; 6] = [2, 0, 0, 0, 0xdc, 2];

    fn server_ip() -> Ipv6Addr {
        "fd00:dc::1".parse().unwrap()
    }

    fn handler() -> DemoHandler {
        DemoHandler::new(SERVER_MAC, server_ip())
    }

    /// SOLICIT xid 0x0a0b0c: Client ID (DUID-LL 02:00:00:00:dc:02), IA_NA IAID 1, IA_PD
    /// IAID 2, Elapsed Time 0. Hand-built (RFC 8415 §8, §21.2, §21.4, §21.21, §21.9).
    const SOLICIT: [u8; 56] = hex!(
        "01 0a0b0c"
        "0001 000a 0003 0001 020000 00dc02"
        "0003 000c 00000001 00000000 00000000"
        "0019 000c 00000002 00000000 00000000"
        "0008 0002 0000"
    );

    /// A UMEM-like chunk holding `payload` in a UDP frame from the client to `dst`.
    fn frame(
        src: &str,
        dst: &str,
        src_port: u16,
        dst_port: u16,
        payload: &[u8],
    ) -> ([u8; 2048], usize) {
        let repr = FrameRepr {
            dst_mac: EthernetAddress([0x33, 0x33, 0, 1, 0, 2]),
            src_mac: EthernetAddress(CLIENT_MAC),
            vlans: Default::default(),
            src_ip: src.parse().unwrap(),
            dst_ip: dst.parse().unwrap(),
            hop_limit: 1,
            traffic_class: 0,
            flow_label: 0,
            src_port,
            dst_port,
        };
        let mut chunk = [0xa5; 2048];
        let len = build_udp_frame(&repr, payload, &mut chunk).unwrap();
        (chunk, len)
    }

    fn status_of(options: &Options<'_>) -> (StatusCode, Vec<u8>) {
        let raw = options
            .raw()
            .unwrap()
            .find(OptionCode::STATUS_CODE)
            .unwrap();
        let status = StatusCodeOption::parse(raw.data).unwrap();
        (status.code, status.message.to_vec())
    }

    #[test]
    fn solicit_direct_gets_advertise_with_status_per_ia() {
        let (mut chunk, len) = frame("fe80::2", "ff02::1:2", 546, 547, &SOLICIT);
        let out = handler()
            .reply_in_place(&mut chunk, len)
            .expect("a Solicit is answered");

        let tx = Frame::parse(&chunk[..out]).expect("reply frame parses, checksum included");
        assert_eq!(tx.dst_mac(), EthernetAddress(CLIENT_MAC));
        assert_eq!(tx.src_mac(), EthernetAddress(SERVER_MAC));
        assert_eq!(tx.dst_ip(), "fe80::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            tx.src_ip(),
            server_ip(),
            "multicast request: answered from server_addr"
        );
        assert_eq!((tx.src_port(), tx.dst_port()), (547, 546));

        let msg = Message::parse(tx.payload()).unwrap();
        assert_eq!(msg.msg_type, MessageType::ADVERTISE);
        assert_eq!(msg.transaction_id, 0x0a0b0c);
        assert_eq!(
            msg.client_id().unwrap().unwrap().as_bytes(),
            &SOLICIT[8..18]
        );
        let server_id = msg.server_id().unwrap().unwrap();
        assert_eq!(server_id.ll().unwrap().link_layer, &SERVER_MAC);

        let nas: Vec<_> = msg.ia_nas().map(Result::unwrap).collect();
        assert_eq!(nas.len(), 1);
        assert_eq!(nas[0].iaid, 1);
        assert_eq!(nas[0].addresses().count(), 0);
        assert_eq!(
            status_of(&nas[0].options),
            (
                StatusCode::NO_ADDRS_AVAIL,
                DEMO_STATUS_MESSAGE.as_bytes().to_vec()
            )
        );
        let pds: Vec<_> = msg.ia_pds().map(Result::unwrap).collect();
        assert_eq!(pds.len(), 1);
        assert_eq!(pds[0].iaid, 2);
        assert_eq!(status_of(&pds[0].options).0, StatusCode::NO_PREFIX_AVAIL);
    }

    #[test]
    fn solicit_unicast_answered_from_its_destination() {
        let (mut chunk, len) = frame("fd00:dc::2", "fd00:dc::99", 40000, 547, &SOLICIT);
        let out = handler().reply_in_place(&mut chunk, len).unwrap();
        let tx = Frame::parse(&chunk[..out]).unwrap();
        assert_eq!(tx.src_ip(), "fd00:dc::99".parse::<Ipv6Addr>().unwrap());
        assert_eq!(tx.dst_port(), 40000);
    }

    #[test]
    fn relayed_solicit_gets_relay_repl_with_interface_id() {
        // RELAY-FORW hop 0, link fd00:1::1, peer fe80::2, Interface-Id "eth7", Relay Message.
        let mut relay_forw = hex!(
            "0c 00"
            "fd000001000000000000000000000001"
            "fe800000000000000000000000000002"
            "0012 0004 65746837"
            "0009 0038"
        )
        .to_vec();
        relay_forw.extend_from_slice(&SOLICIT);
        let (mut chunk, len) = frame("fd00:1::9", "fd00:dc::1", 547, 547, &relay_forw);
        let out = handler()
            .reply_in_place(&mut chunk, len)
            .expect("a relayed Solicit is answered");

        let tx = Frame::parse(&chunk[..out]).unwrap();
        assert_eq!(tx.dst_ip(), "fd00:1::9".parse::<Ipv6Addr>().unwrap());
        assert_eq!((tx.src_port(), tx.dst_port()), (547, 547));
        let repl = RelayMessage::parse(tx.payload()).unwrap();
        assert_eq!(repl.msg_type, MessageType::RELAY_REPL);
        assert_eq!(repl.link_address, "fd00:1::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(repl.peer_address, "fe80::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(repl.interface_id(), Some(&b"eth7"[..]));
        let inner = Message::parse(repl.relay_msg().unwrap()).unwrap();
        assert_eq!(inner.msg_type, MessageType::ADVERTISE);
        assert_eq!(inner.transaction_id, 0x0a0b0c);
        assert_eq!(inner.ia_nas().count(), 1);
    }

    #[test]
    fn information_request_gets_reply_with_ids() {
        let info_req = hex!("0b 123456 0001 000a 0003 0001 020000 00dc02");
        let (mut chunk, len) = frame("fe80::2", "ff02::1:2", 546, 547, &info_req);
        let out = handler().reply_in_place(&mut chunk, len).unwrap();
        let msg = Message::parse(Frame::parse(&chunk[..out]).unwrap().payload()).unwrap();
        assert_eq!(msg.msg_type, MessageType::REPLY);
        assert_eq!(msg.transaction_id, 0x123456);
        assert_eq!(
            msg.server_id().unwrap().unwrap().as_bytes(),
            handler().server_duid()
        );
        assert_eq!(msg.client_id().unwrap().unwrap().as_bytes(), &info_req[8..]);

        let anonymous = hex!("0b 123456");
        let (mut chunk, len) = frame("fe80::2", "ff02::1:2", 546, 547, &anonymous);
        let out = handler().reply_in_place(&mut chunk, len).unwrap();
        let msg = Message::parse(Frame::parse(&chunk[..out]).unwrap().payload()).unwrap();
        assert_eq!(msg.count(OptionCode::CLIENTID), 0);
        assert_eq!(msg.count(OptionCode::SERVERID), 1);
    }

    #[test]
    fn solicit_without_client_id_or_with_server_id_dropped() {
        let no_client_id = hex!("01 0a0b0c 0008 0002 0000");
        let (mut chunk, len) = frame("fe80::2", "ff02::1:2", 546, 547, &no_client_id);
        assert_eq!(handler().reply_in_place(&mut chunk, len), None);

        let mut with_server_id = SOLICIT.to_vec();
        with_server_id.extend_from_slice(&hex!("0002 000a 0003 0001 020000 00dc01"));
        let (mut chunk, len) = frame("fe80::2", "ff02::1:2", 546, 547, &with_server_id);
        assert_eq!(handler().reply_in_place(&mut chunk, len), None);
    }

    #[test]
    fn other_message_types_dropped() {
        let mut request = SOLICIT;
        request[0] = MessageType::REQUEST.0;
        let (mut chunk, len) = frame("fe80::2", "ff02::1:2", 546, 547, &request);
        assert_eq!(handler().reply_in_place(&mut chunk, len), None);

        let info_req_with_ia = hex!("0b 123456 0003 000c 00000001 00000000 00000000");
        let (mut chunk, len) = frame("fe80::2", "ff02::1:2", 546, 547, &info_req_with_ia);
        assert_eq!(handler().reply_in_place(&mut chunk, len), None);
    }

    #[test]
    fn garbage_frames_dropped() {
        let h = handler();
        let mut chunk = [0xa5u8; 2048];
        assert_eq!(h.reply_in_place(&mut chunk, 0), None);
        assert_eq!(h.reply_in_place(&mut chunk, 100), None);
        assert_eq!(
            h.reply_in_place(&mut chunk, 4000),
            None,
            "len past the chunk"
        );
        // A valid frame with a garbage DHCPv6 payload (option length past the end).
        let (mut chunk, len) = frame(
            "fe80::2",
            "ff02::1:2",
            546,
            547,
            &hex!("01 000001 0001 00ff 00"),
        );
        assert_eq!(h.reply_in_place(&mut chunk, len), None);
        // A truncated frame (checksum and lengths no longer match).
        let (mut chunk, len) = frame("fe80::2", "ff02::1:2", 546, 547, &SOLICIT);
        assert_eq!(h.reply_in_place(&mut chunk, len - 1), None);
    }

    #[test]
    fn solicit_with_partial_checksum_answered() {
        let (mut chunk, len) = frame("fd00:dc::2", "fd00:dc::1", 40000, 547, &SOLICIT);
        let udp_at = 14 + 40;
        let udp_len = len - udp_at;
        // What a sender with checksum offload puts in the field: the pseudo-header sum only.
        let partial = udp::pseudo_header_sum(
            &"fd00:dc::2".parse().unwrap(),
            &"fd00:dc::1".parse().unwrap(),
            udp_len,
        );
        chunk[udp_at + 6..udp_at + 8].copy_from_slice(&partial.to_be_bytes());
        assert_eq!(
            Frame::parse(&chunk[..len]),
            Err(tandem_wire::Error::Checksum)
        );
        let out = handler()
            .reply_in_place(&mut chunk, len)
            .expect("partial checksum accepted");
        assert_eq!(
            Message::parse(Frame::parse(&chunk[..out]).unwrap().payload())
                .unwrap()
                .msg_type,
            MessageType::ADVERTISE
        );

        // Any other wrong checksum is still a drop.
        let (mut chunk, len) = frame("fd00:dc::2", "fd00:dc::1", 40000, 547, &SOLICIT);
        chunk[udp_at + 6] ^= 0x40;
        assert_eq!(handler().reply_in_place(&mut chunk, len), None);
    }

    #[test]
    fn non_server_port_dropped() {
        let (mut chunk, len) = frame("fe80::2", "ff02::1:2", 546, 546, &SOLICIT);
        assert_eq!(handler().reply_in_place(&mut chunk, len), None);
        let (mut chunk, len) = frame("fe80::2", "fd00:dc::1", 546, 5353, &SOLICIT);
        assert_eq!(handler().reply_in_place(&mut chunk, len), None);
    }

    #[test]
    fn multicast_source_dropped() {
        let (mut chunk, len) = frame("ff02::1", "ff02::1:2", 546, 547, &SOLICIT);
        assert_eq!(handler().reply_in_place(&mut chunk, len), None);
    }

    #[test]
    fn solicit_with_too_many_ias_dropped() {
        let mut solicit = SOLICIT[..18].to_vec();
        for iaid in 0..=u32::try_from(MAX_IAS).unwrap() {
            solicit.extend_from_slice(&hex!("0003 000c"));
            solicit.extend_from_slice(&iaid.to_be_bytes());
            solicit.extend_from_slice(&[0; 8]);
        }
        let (mut chunk, len) = frame("fe80::2", "ff02::1:2", 546, 547, &solicit);
        assert_eq!(handler().reply_in_place(&mut chunk, len), None);
    }

    #[test]
    fn relay_repl_received_dropped() {
        let mut relay_repl = hex!(
            "0d 00"
            "fd000001000000000000000000000001"
            "fe800000000000000000000000000002"
            "0009 0038"
        )
        .to_vec();
        relay_repl.extend_from_slice(&SOLICIT);
        let (mut chunk, len) = frame("fd00:1::9", "fd00:dc::1", 547, 547, &relay_repl);
        assert_eq!(handler().reply_in_place(&mut chunk, len), None);
    }
}
