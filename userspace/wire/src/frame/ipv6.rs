//! The IPv6 fixed header ([RFC 8200 §3](https://www.rfc-editor.org/rfc/rfc8200#section-3))
//! and a bounded walk over its extension headers (RFC 8200 §4) to the upper-layer header.

use core::net::Ipv6Addr;

use crate::codec::{Reader, Writer};
use crate::registry::registry;
use crate::{Error, Result};

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;

/// Most extension headers [`skip_extension_headers`] walks before giving up with
/// [`Error::Unsupported`]; keeps the work per packet bounded. Real DHCPv6 traffic rarely
/// carries any.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// Largest flow label (20 bits).
pub const MAX_FLOW_LABEL: u32 = 0x000f_ffff;

registry! {
    /// IANA "Assigned Internet Protocol Numbers": the values met in an IPv6 header chain.
    pub struct IpProtocol(u8) {
        HOPOPT = 0, ICMP = 1, TCP = 6, UDP = 17, IPV6_ROUTE = 43, IPV6_FRAG = 44, ESP = 50,
        AH = 51, IPV6_ICMP = 58, IPV6_NONXT = 59, IPV6_OPTS = 60, MOBILITY = 135, HIP = 139,
        SHIM6 = 140, EXPERIMENT_253 = 253, EXPERIMENT_254 = 254,
    }
}

/// The fixed IPv6 header (RFC 8200 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Traffic class (DSCP and ECN).
    pub traffic_class: u8,
    /// Flow label, 20 bits (RFC 6437).
    pub flow_label: u32,
    /// Payload length: everything after the fixed header, extension headers included.
    pub payload_len: u16,
    /// Protocol of the first header after the fixed one.
    pub next_header: IpProtocol,
    /// Hop limit.
    pub hop_limit: u8,
    /// Source address.
    pub src: Ipv6Addr,
    /// Destination address.
    pub dst: Ipv6Addr,
}

impl Header {
    /// Parses the fixed header at the start of `buf` (anything after it is ignored).
    /// [`Error::Malformed`] unless the version is 6.
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        let first = r.u32("IPv6 header")?;
        if first >> 28 != 6 {
            return Err(Error::Malformed("IP version is not 6"));
        }
        let payload_len = r.u16("IPv6 header")?;
        let next_header = IpProtocol(r.u8("IPv6 header")?);
        let hop_limit = r.u8("IPv6 header")?;
        let src = r.ipv6("IPv6 header")?;
        let dst = r.ipv6("IPv6 header")?;
        Ok(Self {
            traffic_class: (first >> 20) as u8,
            flow_label: first & MAX_FLOW_LABEL,
            payload_len,
            next_header,
            hop_limit,
            src,
            dst,
        })
    }

    /// Writes the 40-byte fixed header. [`Error::Malformed`] for a flow label over 20 bits.
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        if self.flow_label > MAX_FLOW_LABEL {
            return Err(Error::Malformed("IPv6 flow label over 20 bits"));
        }
        let out = w.reserve(HEADER_LEN)?;
        let mut w = Writer::new(out);
        w.u32(6 << 28 | u32::from(self.traffic_class) << 20 | self.flow_label)?;
        w.u16(self.payload_len)?;
        w.u8(self.next_header.0)?;
        w.u8(self.hop_limit)?;
        w.ipv6(self.src)?;
        w.ipv6(self.dst)
    }
}

/// An IPv6 packet: the fixed header and exactly `payload_len` bytes of payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    header: Header,
    payload: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Parses an IPv6 packet at the start of `buf`. [`Error::BadLength`] if the payload
    /// length runs past `buf`; bytes after the payload (Ethernet padding to the 60-byte
    /// minimum frame) are ignored.
    ///
    /// Jumbograms (payload length 0 with a Hop-by-Hop Jumbo Payload option, RFC 2675) cannot
    /// occur on Ethernet and are read as an empty payload.
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        let header = Header::parse(buf)?;
        let payload = buf
            .get(HEADER_LEN..)
            .and_then(|rest| rest.get(..usize::from(header.payload_len)))
            .ok_or(Error::BadLength("IPv6 payload length"))?;
        Ok(Self { header, payload })
    }

    /// The fixed header.
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// The payload: extension headers, then the upper-layer header and data.
    pub const fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// Walks the extension headers; see [`skip_extension_headers`].
    pub fn upper_layer(&self) -> Result<UpperLayer<'a>> {
        skip_extension_headers(self.header.next_header, self.payload)
    }
}

/// The upper-layer header found after the extension headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpperLayer<'a> {
    /// Its protocol (e.g. [`IpProtocol::UDP`]).
    pub protocol: IpProtocol,
    /// Its offset from the start of the IPv6 payload, i.e. the total length of the
    /// extension headers skipped.
    pub offset: usize,
    /// The upper-layer header and data: the rest of the IPv6 payload.
    pub data: &'a [u8],
    /// How many extension headers were skipped.
    pub extension_headers: usize,
}

/// Skips the extension headers at the start of `payload` (RFC 8200 §4), starting from the
/// fixed header's Next Header value `first`, and returns the upper-layer protocol and offset.
///
/// * Hop-by-Hop (0), Routing (43), Destination Options (60) and the other headers of the
///   RFC 6564 uniform format (Mobility 135, HIP 139, Shim6 140, experimental 253 and 254)
///   are `(Hdr Ext Len + 1) * 8` bytes long; AH (51) is `(Payload Len + 2) * 4` bytes
///   (RFC 4302 §2.2). Their contents are not interpreted: a server does not act on options.
/// * A Hop-by-Hop header anywhere but first is [`Error::Malformed`] (RFC 8200 §4.1).
/// * A Fragment header (44) is [`Error::Unsupported`]: reassembly needs per-flow state, and
///   DHCPv6 messages are not fragmented in practice (they are small, and RFC 8415 §18.3 has
///   servers heed the packet-size advice of RFC 8200 §5). ESP (50) is unsupported
///   (encrypted), and No Next Header (59) means there is no upper layer.
/// * More than [`MAX_EXTENSION_HEADERS`] headers is [`Error::Unsupported`].
pub fn skip_extension_headers(first: IpProtocol, payload: &[u8]) -> Result<UpperLayer<'_>> {
    let mut protocol = first;
    let mut rest = payload;
    let mut offset = 0usize;
    let mut count = 0usize;
    loop {
        let len = match protocol {
            IpProtocol::HOPOPT if count > 0 => {
                return Err(Error::Malformed("Hop-by-Hop Options header not first"));
            }
            IpProtocol::HOPOPT
            | IpProtocol::IPV6_ROUTE
            | IpProtocol::IPV6_OPTS
            | IpProtocol::MOBILITY
            | IpProtocol::HIP
            | IpProtocol::SHIM6
            | IpProtocol::EXPERIMENT_253
            | IpProtocol::EXPERIMENT_254 => ExtLen::Octets8,
            IpProtocol::AH => ExtLen::Octets4,
            IpProtocol::IPV6_FRAG => return Err(Error::Unsupported("IPv6 fragment")),
            IpProtocol::ESP => return Err(Error::Unsupported("IPv6 ESP payload")),
            IpProtocol::IPV6_NONXT => return Err(Error::Unsupported("no upper-layer header")),
            _ => {
                return Ok(UpperLayer {
                    protocol,
                    offset,
                    data: rest,
                    extension_headers: count,
                });
            }
        };
        if count == MAX_EXTENSION_HEADERS {
            return Err(Error::Unsupported("more than 8 IPv6 extension headers"));
        }
        let [next, raw_len] = *rest
            .first_chunk::<2>()
            .ok_or(Error::Truncated("IPv6 extension header"))?;
        let size = match len {
            ExtLen::Octets8 => (usize::from(raw_len) + 1) * 8,
            ExtLen::Octets4 => (usize::from(raw_len) + 2) * 4,
        };
        rest = rest
            .get(size..)
            .ok_or(Error::BadLength("IPv6 extension header length"))?;
        offset += size;
        count += 1;
        protocol = IpProtocol(next);
    }
}

/// How an extension header's length byte is scaled.
#[derive(Clone, Copy)]
enum ExtLen {
    /// `(len + 1) * 8` (RFC 8200 §4.3–4.6, RFC 6564).
    Octets8,
    /// `(len + 2) * 4` (AH, RFC 4302 §2.2).
    Octets4,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            traffic_class: 0xb8,
            flow_label: 0x12345,
            payload_len: 0,
            next_header: IpProtocol::UDP,
            hop_limit: 1,
            src: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
            dst: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2),
        }
    }

    #[test]
    fn header_round_trips_every_field() {
        let mut buf = [0xa5; HEADER_LEN];
        header().emit(&mut Writer::new(&mut buf)).unwrap();
        assert_eq!(buf[..4], [0x6b, 0x81, 0x23, 0x45]);
        assert_eq!(Header::parse(&buf), Ok(header()));
    }

    #[test]
    fn header_flow_label_over_20_bits_is_malformed() {
        let bad = Header {
            flow_label: 0x10_0000,
            ..header()
        };
        let mut buf = [0; HEADER_LEN];
        assert_eq!(
            bad.emit(&mut Writer::new(&mut buf)),
            Err(Error::Malformed("IPv6 flow label over 20 bits"))
        );
    }

    #[test]
    fn walk_without_extension_headers_returns_first() {
        let up = skip_extension_headers(IpProtocol::UDP, &[1, 2, 3]).unwrap();
        assert_eq!(
            (up.protocol, up.offset, up.data, up.extension_headers),
            (IpProtocol::UDP, 0, &[1u8, 2, 3][..], 0)
        );
    }

    #[test]
    fn walk_ah_uses_four_octet_units() {
        // AH with Payload Len 1 → (1 + 2) * 4 = 12 bytes, then UDP.
        let mut payload = [0u8; 14];
        payload[0] = 17;
        payload[1] = 1;
        let up = skip_extension_headers(IpProtocol::AH, &payload).unwrap();
        assert_eq!(
            (up.protocol, up.offset, up.data.len()),
            (IpProtocol::UDP, 12, 2)
        );
    }

    #[test]
    fn walk_hop_by_hop_after_another_header_is_malformed() {
        let payload = [0u8, 0, 0, 0, 0, 0, 0, 0, 17, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            skip_extension_headers(IpProtocol::IPV6_OPTS, &payload),
            Err(Error::Malformed("Hop-by-Hop Options header not first"))
        );
    }

    #[test]
    fn walk_length_past_payload_is_bad_length() {
        assert_eq!(
            skip_extension_headers(IpProtocol::IPV6_OPTS, &[17, 1, 0, 0, 0, 0, 0, 0]),
            Err(Error::BadLength("IPv6 extension header length"))
        );
        assert_eq!(
            skip_extension_headers(IpProtocol::IPV6_OPTS, &[17]),
            Err(Error::Truncated("IPv6 extension header"))
        );
    }
}
