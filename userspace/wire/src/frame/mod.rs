//! Ethernet, 802.1Q/QinQ, IPv6 and UDP framing for the AF_XDP datapath.
//!
//! [`Frame::parse`] takes a whole received Ethernet frame (Ethernet II, up to two VLAN tags,
//! IPv6 with its extension headers skipped, UDP with a verified checksum) and exposes the
//! fields a DHCPv6 server needs plus the UDP payload, without copying. [`FrameRepr`] builds
//! the reply in place: the DHCPv6 engine writes its message at `buf[repr.header_len()..]`,
//! then [`FrameRepr::emit_headers`] writes the headers in front of it and the checksum.
//!
//! ```
//! # use core::net::Ipv6Addr;
//! # use tandem_wire::frame::{Frame, FrameRepr, build_udp_frame, ethernet::EthernetAddress};
//! # let solicit = FrameRepr {
//! #     dst_mac: EthernetAddress([0x33, 0x33, 0, 1, 0, 2]),
//! #     src_mac: EthernetAddress([2, 0, 0, 0, 0, 2]),
//! #     vlans: Default::default(),
//! #     src_ip: "fe80::2".parse().unwrap(),
//! #     dst_ip: "ff02::1:2".parse().unwrap(),
//! #     hop_limit: 1, traffic_class: 0, flow_label: 0, src_port: 546, dst_port: 547,
//! # };
//! # let mut rx_buf = [0u8; 128];
//! # let n = build_udp_frame(&solicit, &[1, 0, 0, 7], &mut rx_buf).unwrap();
//! # let mut umem_frame = [0u8; 2048];
//! let our_mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
//! let our_ip: Ipv6Addr = "fe80::1".parse().unwrap();
//! let rx = Frame::parse(&rx_buf[..n]).unwrap();
//! let repr = FrameRepr::reply_to(&rx, our_mac, our_ip);
//! // The engine writes the DHCPv6 reply after the headers...
//! let reply = [2, 0, 0, 7];
//! umem_frame[repr.header_len()..][..reply.len()].copy_from_slice(&reply);
//! // ...and the headers go in front of it.
//! let len = repr.emit_headers(&mut umem_frame, reply.len()).unwrap();
//! let tx = Frame::parse(&umem_frame[..len]).unwrap();
//! assert_eq!((tx.dst_ip(), tx.src_ip(), tx.dst_port()), (rx.src_ip(), our_ip, 546));
//! ```
//!
//! Under the crate feature `fuzzing`, [`Frame::parse`] does not verify the UDP checksum (so a
//! fuzzer reaches the code behind it); computing checksums is unaffected.

pub mod ethernet;
pub mod ipv6;
pub mod udp;

use core::net::Ipv6Addr;

use self::ethernet::{EtherType, EthernetAddress, VlanStack, VlanTag};
use self::ipv6::IpProtocol;
use crate::codec::Writer;
use crate::{Error, Result};

/// A received Ethernet frame carrying IPv6 and UDP, parsed and checked: every accessor is
/// infallible. The UDP payload is borrowed from the frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    eth: ethernet::Header,
    ip: ipv6::Header,
    udp: udp::Header,
    payload: &'a [u8],
    ipv6_offset: usize,
    udp_offset: usize,
    extension_headers: usize,
}

impl<'a> Frame<'a> {
    /// Parses Ethernet → up to two VLAN tags → IPv6 → extension headers → UDP and verifies
    /// the UDP checksum (RFC 8200 §8.1; skipped under the `fuzzing` feature).
    ///
    /// Errors: [`Error::Unsupported`] for a non-IPv6 EtherType (`"not IPv6"`), a non-UDP upper
    /// layer (`"not UDP"`), a third VLAN tag, fragments, ESP, No Next Header or more than
    /// [`ipv6::MAX_EXTENSION_HEADERS`] extension headers; [`Error::Malformed`] for an IP
    /// version other than 6; [`Error::BadLength`] for an IPv6 payload length past the frame
    /// or a UDP length under 8 or past the IPv6 payload; [`Error::Checksum`] for a wrong or
    /// zero checksum; [`Error::Truncated`] for a frame that ends inside a header.
    /// Ethernet padding after the IPv6 payload is ignored.
    pub fn parse(frame: &'a [u8]) -> Result<Self> {
        let parsed = Self::parse_unverified(frame)?;
        #[cfg(not(feature = "fuzzing"))]
        udp::verify_checksum(&parsed.ip.src, &parsed.ip.dst, parsed.udp_datagram(frame))?;
        Ok(parsed)
    }

    /// Like [`Frame::parse`], but first completes a checksum that a sender using checksum
    /// offload left for the device (the field holds only the pseudo-header sum; see
    /// [`udp::complete_partial_checksum`]). Frames from a local socket over veth look like
    /// that. The completed checksum is written into `frame`, then verified as usual.
    pub fn parse_completing_partial(frame: &'a mut [u8]) -> Result<Self> {
        let (src, dst, start, end) = {
            let parsed = Frame::parse_unverified(frame)?;
            let len = usize::from(parsed.udp.length);
            (
                parsed.ip.src,
                parsed.ip.dst,
                parsed.udp_offset,
                parsed.udp_offset + len,
            )
        };
        if let Some(datagram) = frame.get_mut(start..end) {
            udp::complete_partial_checksum(&src, &dst, datagram)?;
        }
        Self::parse(frame)
    }

    /// The UDP header and payload inside `frame` (the buffer this view was parsed from).
    #[cfg(not(feature = "fuzzing"))]
    fn udp_datagram<'f>(&self, frame: &'f [u8]) -> &'f [u8] {
        let end = self.udp_offset + usize::from(self.udp.length);
        frame.get(self.udp_offset..end).unwrap_or_default()
    }

    /// Parses like [`Frame::parse`] without verifying the UDP checksum.
    fn parse_unverified(frame: &'a [u8]) -> Result<Self> {
        let eth = ethernet::Header::parse(frame)?;
        if eth.ethertype != EtherType::IPV6 {
            return Err(Error::Unsupported("not IPv6"));
        }
        let ipv6_offset = eth.header_len();
        let packet = ipv6::Packet::parse(frame.get(ipv6_offset..).unwrap_or_default())?;
        let upper = packet.upper_layer()?;
        if upper.protocol != IpProtocol::UDP {
            return Err(Error::Unsupported("not UDP"));
        }
        let datagram = udp::Datagram::parse(upper.data)?;
        let ip = *packet.header();
        Ok(Self {
            eth,
            ip,
            udp: *datagram.header(),
            payload: datagram.payload(),
            ipv6_offset,
            udp_offset: ipv6_offset + ipv6::HEADER_LEN + upper.offset,
            extension_headers: upper.extension_headers,
        })
    }

    /// Destination MAC address.
    pub const fn dst_mac(&self) -> EthernetAddress {
        self.eth.dst
    }

    /// Source MAC address.
    pub const fn src_mac(&self) -> EthernetAddress {
        self.eth.src
    }

    /// The VLAN tags, outermost first (0, 1 or 2).
    pub const fn vlans(&self) -> &VlanStack {
        &self.eth.vlans
    }

    /// The Ethernet header with its tags.
    pub const fn ethernet(&self) -> &ethernet::Header {
        &self.eth
    }

    /// The fixed IPv6 header.
    pub const fn ipv6(&self) -> &ipv6::Header {
        &self.ip
    }

    /// The UDP header.
    pub const fn udp(&self) -> &udp::Header {
        &self.udp
    }

    /// Source IPv6 address.
    pub const fn src_ip(&self) -> Ipv6Addr {
        self.ip.src
    }

    /// Destination IPv6 address.
    pub const fn dst_ip(&self) -> Ipv6Addr {
        self.ip.dst
    }

    /// Hop limit.
    pub const fn hop_limit(&self) -> u8 {
        self.ip.hop_limit
    }

    /// Traffic class.
    pub const fn traffic_class(&self) -> u8 {
        self.ip.traffic_class
    }

    /// Flow label (20 bits).
    pub const fn flow_label(&self) -> u32 {
        self.ip.flow_label
    }

    /// UDP source port.
    pub const fn src_port(&self) -> u16 {
        self.udp.src_port
    }

    /// UDP destination port.
    pub const fn dst_port(&self) -> u16 {
        self.udp.dst_port
    }

    /// The UDP payload: exactly UDP length − 8 bytes.
    pub const fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Offset of the fixed IPv6 header in the frame (14 + 4 per VLAN tag).
    pub const fn ipv6_offset(&self) -> usize {
        self.ipv6_offset
    }

    /// Offset of the UDP header in the frame (after any extension headers).
    pub const fn udp_offset(&self) -> usize {
        self.udp_offset
    }

    /// Offset of the UDP payload in the frame.
    pub const fn payload_offset(&self) -> usize {
        self.udp_offset + udp::HEADER_LEN
    }

    /// Number of IPv6 extension headers skipped.
    pub const fn extension_headers(&self) -> usize {
        self.extension_headers
    }

    /// Length of the frame up to the end of the UDP payload (without Ethernet padding or any
    /// bytes after the UDP length).
    pub const fn frame_len(&self) -> usize {
        self.payload_offset() + self.payload.len()
    }
}

/// The headers of a frame to send: Ethernet, 0–2 VLAN tags, IPv6 without extension headers,
/// UDP. Built with [`Self::reply_to`] (or by hand), emitted with [`Self::emit_headers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FrameRepr {
    /// Destination MAC address.
    pub dst_mac: EthernetAddress,
    /// Source MAC address.
    pub src_mac: EthernetAddress,
    /// VLAN tags, outermost first.
    pub vlans: VlanStack,
    /// Source IPv6 address.
    pub src_ip: Ipv6Addr,
    /// Destination IPv6 address.
    pub dst_ip: Ipv6Addr,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class.
    pub traffic_class: u8,
    /// Flow label; must fit 20 bits.
    pub flow_label: u32,
    /// UDP source port.
    pub src_port: u16,
    /// UDP destination port.
    pub dst_port: u16,
}

impl FrameRepr {
    /// Hop limit of replies: 64, a common default for unicast traffic (the IANA
    /// "ip-parameters" default TTL; 255 is only needed by Neighbor Discovery, RFC 4861 §4).
    /// A link-local client is on-link, so any non-zero value reaches it.
    pub const REPLY_HOP_LIMIT: u8 = 64;

    /// The headers of a reply to `rx`: MACs swapped with `our_mac` as source, the VLAN tags
    /// kept as received, destination = the request's source address (RFC 8415 §18.3.10) and
    /// source port (546 from a client, 547 from a relay; RFC 9915 clarifies that replies go
    /// to the port the request came from), source port = the request's destination (547). The source address is the request's destination if
    /// that is unicast, else (a request to `ff02::1:2` or `ff05::1:3`) `our_ip`.
    /// Hop limit [`Self::REPLY_HOP_LIMIT`], traffic class and flow label 0.
    ///
    /// The request's source is not checked here (a multicast source is invalid, RFC 4291
    /// §2.7); the caller decides whether to answer.
    pub fn reply_to(rx: &Frame<'_>, our_mac: EthernetAddress, our_ip: Ipv6Addr) -> Self {
        let to = rx.dst_ip();
        let src_ip = if to.is_multicast() || to.is_unspecified() {
            our_ip
        } else {
            to
        };
        Self {
            dst_mac: rx.src_mac(),
            src_mac: our_mac,
            vlans: *rx.vlans(),
            src_ip,
            dst_ip: rx.src_ip(),
            hop_limit: Self::REPLY_HOP_LIMIT,
            traffic_class: 0,
            flow_label: 0,
            src_port: rx.dst_port(),
            dst_port: rx.src_port(),
        }
    }

    /// The VLAN tags as a slice, outermost first.
    pub fn vlan_tags(&self) -> &[VlanTag] {
        self.vlans.as_slice()
    }

    /// Bytes of headers: 14 + 4 per VLAN tag + 40 (IPv6) + 8 (UDP). The UDP payload starts
    /// at this offset.
    pub const fn header_len(&self) -> usize {
        ethernet::HEADER_LEN
            + ethernet::VLAN_TAG_LEN * self.vlans.len()
            + ipv6::HEADER_LEN
            + udp::HEADER_LEN
    }

    /// Length of the whole frame for a payload of `payload_len` bytes.
    pub const fn buffer_len(&self, payload_len: usize) -> usize {
        self.header_len().saturating_add(payload_len)
    }

    /// Writes the headers at the front of `frame`, for a UDP payload of `payload_len` bytes
    /// that is already in place at `frame[self.header_len()..][..payload_len]`: fills the
    /// IPv6 payload length and UDP length and computes the UDP checksum (RFC 8200 §8.1).
    /// Returns the frame length, `header_len() + payload_len`.
    ///
    /// Errors (nothing is written then): [`Error::Malformed`] for a payload over 65527
    /// bytes, a flow label over 20 bits or an out-of-range VLAN field;
    /// [`Error::BufferTooSmall`] if `frame` is shorter than the frame.
    pub fn emit_headers(&self, frame: &mut [u8], payload_len: usize) -> Result<usize> {
        if payload_len > udp::MAX_PAYLOAD_LEN {
            return Err(Error::Malformed("UDP payload over 65527 bytes"));
        }
        if self.flow_label > ipv6::MAX_FLOW_LABEL {
            return Err(Error::Malformed("IPv6 flow label over 20 bits"));
        }
        for tag in self.vlans.as_slice() {
            tag.tci()?;
        }
        let header_len = self.header_len();
        let total = header_len + payload_len;
        let udp_len = payload_len + udp::HEADER_LEN;
        let frame = frame.get_mut(..total).ok_or(Error::BufferTooSmall)?;
        // Cannot fail: payload_len ≤ 65527 was checked above.
        let udp_len16 = u16::try_from(udp_len).map_err(|_| Error::Malformed("UDP length"))?;

        let (headers, _) = frame
            .split_at_mut_checked(header_len)
            .ok_or(Error::BufferTooSmall)?;
        let mut w = Writer::new(headers);
        ethernet::Header {
            dst: self.dst_mac,
            src: self.src_mac,
            vlans: self.vlans,
            ethertype: EtherType::IPV6,
        }
        .emit(&mut w)?;
        ipv6::Header {
            traffic_class: self.traffic_class,
            flow_label: self.flow_label,
            payload_len: udp_len16,
            next_header: IpProtocol::UDP,
            hop_limit: self.hop_limit,
            src: self.src_ip,
            dst: self.dst_ip,
        }
        .emit(&mut w)?;
        udp::Header {
            src_port: self.src_port,
            dst_port: self.dst_port,
            length: udp_len16,
            checksum: 0,
        }
        .emit(&mut w)?;

        let udp_bytes = frame
            .get_mut(header_len - udp::HEADER_LEN..)
            .unwrap_or_default();
        udp::fill_checksum(&self.src_ip, &self.dst_ip, udp_bytes)?;
        Ok(total)
    }
}

impl From<&Frame<'_>> for FrameRepr {
    /// The headers of a received frame itself (its extension headers are not kept).
    fn from(rx: &Frame<'_>) -> Self {
        Self {
            dst_mac: rx.dst_mac(),
            src_mac: rx.src_mac(),
            vlans: *rx.vlans(),
            src_ip: rx.src_ip(),
            dst_ip: rx.dst_ip(),
            hop_limit: rx.hop_limit(),
            traffic_class: rx.traffic_class(),
            flow_label: rx.flow_label(),
            src_port: rx.src_port(),
            dst_port: rx.dst_port(),
        }
    }
}

/// Builds a whole frame in `out`: copies `payload` after the headers, then
/// [`FrameRepr::emit_headers`]. Returns the frame length. For tests, tools and `AF_PACKET`
/// injection; the datapath builds in place instead.
pub fn build_udp_frame(repr: &FrameRepr, payload: &[u8], out: &mut [u8]) -> Result<usize> {
    if payload.len() > udp::MAX_PAYLOAD_LEN {
        return Err(Error::Malformed("UDP payload over 65527 bytes"));
    }
    let start = repr.header_len();
    out.get_mut(start..)
        .and_then(|rest| rest.get_mut(..payload.len()))
        .ok_or(Error::BufferTooSmall)?
        .copy_from_slice(payload);
    repr.emit_headers(out, payload.len())
}
