//! Ethernet II header (IEEE 802.3 §3.2.6) with up to two IEEE 802.1Q VLAN tags (802.1Q §9.6:
//! a single C-tag, or QinQ: an outer S-tag with TPID 0x88a8, or the pre-standard 0x9100,
//! followed by an inner tag).

use core::fmt;

use crate::codec::{Reader, Writer};
use crate::registry::registry;
use crate::{Error, Result};

/// Length of an untagged Ethernet II header: destination, source, EtherType.
pub const HEADER_LEN: usize = 14;

/// Length of one 802.1Q tag: TPID then TCI (IEEE 802.1Q §9.6).
pub const VLAN_TAG_LEN: usize = 4;

/// Most VLAN tags a frame may carry; a deeper stack is [`Error::Unsupported`].
pub const MAX_VLAN_TAGS: usize = 2;

/// A 48-bit IEEE MAC address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// `ff:ff:ff:ff:ff:ff`.
    pub const BROADCAST: Self = Self([0xff; 6]);

    /// `true` for group addresses (the I/G bit, the least significant bit of the first
    /// octet), which includes broadcast and the `33:33:…` IPv6 multicast range (RFC 2464 §7).
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// `true` for `ff:ff:ff:ff:ff:ff`.
    pub const fn is_broadcast(&self) -> bool {
        matches!(self.0, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff])
    }

    /// `true` for individual (non-group) addresses.
    pub const fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }

    /// The Ethernet address an IPv6 multicast group maps to: `33:33` and the group's last
    /// four octets (RFC 2464 §7).
    pub const fn ipv6_multicast(group: &core::net::Ipv6Addr) -> Self {
        let o = group.octets();
        Self([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<[u8; 6]> for EthernetAddress {
    fn from(octets: [u8; 6]) -> Self {
        Self(octets)
    }
}

registry! {
    /// IEEE "EtherType" registry: the values this crate reads or writes.
    pub struct EtherType(u16) {
        IPV4 = 0x0800, ARP = 0x0806, VLAN_8021Q = 0x8100, IPV6 = 0x86dd,
        VLAN_8021AD = 0x88a8, QINQ_9100 = 0x9100,
    }
}

impl EtherType {
    /// `true` for the TPIDs that start a VLAN tag: 0x8100 (C-tag), 0x88a8 (S-tag,
    /// IEEE 802.1ad) and the pre-standard QinQ 0x9100.
    pub const fn is_vlan_tpid(self) -> bool {
        matches!(self.0, 0x8100 | 0x88a8 | 0x9100)
    }
}

/// One IEEE 802.1Q tag (§9.6): the TPID that introduced it and the three TCI fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// Tag protocol identifier: 0x8100, 0x88a8 or 0x9100.
    pub tpid: EtherType,
    /// Priority code point, 0–7.
    pub pcp: u8,
    /// Drop eligible indicator (formerly CFI).
    pub dei: bool,
    /// VLAN identifier, 0–4095.
    pub vid: u16,
}

impl Default for VlanTag {
    fn default() -> Self {
        Self {
            tpid: EtherType::VLAN_8021Q,
            pcp: 0,
            dei: false,
            vid: 0,
        }
    }
}

impl VlanTag {
    /// A C-tag (TPID 0x8100) with priority 0.
    pub const fn c_tag(vid: u16) -> Self {
        Self {
            tpid: EtherType::VLAN_8021Q,
            pcp: 0,
            dei: false,
            vid,
        }
    }

    /// An S-tag (TPID 0x88a8, IEEE 802.1ad) with priority 0.
    pub const fn s_tag(vid: u16) -> Self {
        Self {
            tpid: EtherType::VLAN_8021AD,
            pcp: 0,
            dei: false,
            vid,
        }
    }

    /// Splits a tag control information field: PCP (3 bits), DEI (1 bit), VID (12 bits).
    pub const fn from_tci(tpid: EtherType, tci: u16) -> Self {
        Self {
            tpid,
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }

    /// The tag control information field, or [`Error::Malformed`] if a field is out of range
    /// or the TPID is not a VLAN TPID.
    pub fn tci(&self) -> Result<u16> {
        if !self.tpid.is_vlan_tpid() {
            return Err(Error::Malformed("VLAN TPID"));
        }
        if self.pcp > 7 {
            return Err(Error::Malformed("VLAN PCP over 7"));
        }
        if self.vid > 0x0fff {
            return Err(Error::Malformed("VLAN ID over 4095"));
        }
        Ok(u16::from(self.pcp) << 13 | u16::from(self.dei) << 12 | self.vid)
    }
}

/// Zero, one or two VLAN tags, outermost first. Unused slots are always
/// `VlanTag::default()`, so the derived equality compares only the tags in use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct VlanStack {
    tags: [VlanTag; MAX_VLAN_TAGS],
    len: u8,
}

impl VlanStack {
    /// No tags.
    pub const EMPTY: Self = Self {
        tags: [VlanTag::c_tag(0); MAX_VLAN_TAGS],
        len: 0,
    };

    /// The tags of `tags`, outermost first; [`Error::Unsupported`] for more than two.
    pub fn from_slice(tags: &[VlanTag]) -> Result<Self> {
        let mut stack = Self::EMPTY;
        for &tag in tags {
            stack.push(tag)?;
        }
        Ok(stack)
    }

    /// Appends an inner tag; [`Error::Unsupported`] if two are present already.
    pub fn push(&mut self, tag: VlanTag) -> Result<()> {
        let slot = self
            .tags
            .get_mut(usize::from(self.len))
            .ok_or(Error::Unsupported("VLAN stack deeper than 2"))?;
        *slot = tag;
        self.len += 1;
        Ok(())
    }

    /// The tags in use, outermost first.
    pub fn as_slice(&self) -> &[VlanTag] {
        self.tags.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// The backing array (unused slots hold `VlanTag::default()`); see [`Self::len`].
    pub const fn tags(&self) -> &[VlanTag; MAX_VLAN_TAGS] {
        &self.tags
    }

    /// Number of tags, 0–2.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// `true` for an untagged frame.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The outermost tag, if any.
    pub fn outer(&self) -> Option<&VlanTag> {
        self.as_slice().first()
    }

    /// The innermost tag, if any (the same as [`Self::outer`] for a single tag).
    pub fn inner(&self) -> Option<&VlanTag> {
        self.as_slice().last()
    }
}

/// A parsed Ethernet II header with its VLAN tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Destination address.
    pub dst: EthernetAddress,
    /// Source address.
    pub src: EthernetAddress,
    /// VLAN tags, outermost first.
    pub vlans: VlanStack,
    /// The EtherType after the last tag: the payload's protocol.
    pub ethertype: EtherType,
}

impl Header {
    /// Parses the header at the start of `frame`. Up to two VLAN tags are accepted in any
    /// order of the three VLAN TPIDs; a third is [`Error::Unsupported`]. Frames whose
    /// EtherType field is a length (≤ 1500, IEEE 802.3 LLC) are returned as-is: their
    /// `ethertype` is simply not IPv6.
    pub fn parse(frame: &[u8]) -> Result<Self> {
        let mut r = Reader::new(frame);
        let dst = EthernetAddress(r.array("Ethernet destination")?);
        let src = EthernetAddress(r.array("Ethernet source")?);
        let mut ethertype = EtherType(r.u16("EtherType")?);
        let mut vlans = VlanStack::EMPTY;
        while ethertype.is_vlan_tpid() {
            let tci = r.u16("VLAN tag")?;
            vlans.push(VlanTag::from_tci(ethertype, tci))?;
            ethertype = EtherType(r.u16("EtherType")?);
        }
        Ok(Self {
            dst,
            src,
            vlans,
            ethertype,
        })
    }

    /// Bytes this header occupies: 14 plus 4 per VLAN tag.
    pub const fn header_len(&self) -> usize {
        HEADER_LEN + VLAN_TAG_LEN * self.vlans.len()
    }

    /// Writes the header. [`Error::Malformed`] for an out-of-range tag field,
    /// [`Error::BufferTooSmall`] if `w` has fewer than [`Self::header_len`] bytes left.
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        let mut tcis = [0u16; MAX_VLAN_TAGS];
        for (tci, tag) in tcis.iter_mut().zip(self.vlans.as_slice()) {
            *tci = tag.tci()?;
        }
        let out = w.reserve(self.header_len())?;
        let mut w = Writer::new(out);
        w.put(&self.dst.0)?;
        w.put(&self.src.0)?;
        for (tag, tci) in self.vlans.as_slice().iter().zip(tcis) {
            w.u16(tag.tpid.0)?;
            w.u16(tci)?;
        }
        w.u16(self.ethertype.0)
    }
}

#[cfg(test)]
mod tests {
    use std::format;

    use super::*;

    #[test]
    fn address_display_is_colon_hex() {
        let mac = EthernetAddress([0x02, 0x00, 0x5e, 0x10, 0xab, 0xff]);
        assert_eq!(format!("{mac}"), "02:00:5e:10:ab:ff");
        assert_eq!(format!("{mac:?}"), "02:00:5e:10:ab:ff");
    }

    #[test]
    fn address_multicast_bit_classifies() {
        assert!(EthernetAddress([0x33, 0x33, 0, 1, 0, 2]).is_multicast());
        assert!(EthernetAddress::BROADCAST.is_broadcast());
        assert!(EthernetAddress::BROADCAST.is_multicast());
        assert!(EthernetAddress([0x02, 0, 0, 0, 0, 1]).is_unicast());
        let group = core::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);
        assert_eq!(
            EthernetAddress::ipv6_multicast(&group).0,
            [0x33, 0x33, 0, 1, 0, 2]
        );
    }

    #[test]
    fn tci_round_trips_every_field() {
        let tag = VlanTag {
            tpid: EtherType::QINQ_9100,
            pcp: 5,
            dei: true,
            vid: 0xabc,
        };
        let tci = tag.tci().unwrap();
        assert_eq!(tci, 0b1011_1010_1011_1100); // PCP 101, DEI 1, VID 0xabc
        assert_eq!(VlanTag::from_tci(EtherType::QINQ_9100, tci), tag);
    }

    #[test]
    fn tci_out_of_range_fields_are_malformed() {
        let bad_pcp = VlanTag {
            pcp: 8,
            ..VlanTag::c_tag(1)
        };
        assert_eq!(bad_pcp.tci(), Err(Error::Malformed("VLAN PCP over 7")));
        assert_eq!(
            VlanTag::c_tag(4096).tci(),
            Err(Error::Malformed("VLAN ID over 4095"))
        );
        let bad_tpid = VlanTag {
            tpid: EtherType::IPV6,
            ..VlanTag::c_tag(1)
        };
        assert_eq!(bad_tpid.tci(), Err(Error::Malformed("VLAN TPID")));
    }

    #[test]
    fn vlan_stack_third_push_is_unsupported() {
        let mut stack = VlanStack::from_slice(&[VlanTag::s_tag(1), VlanTag::c_tag(2)]).unwrap();
        assert_eq!(stack.len(), 2);
        assert_eq!(stack.outer(), Some(&VlanTag::s_tag(1)));
        assert_eq!(stack.inner(), Some(&VlanTag::c_tag(2)));
        assert_eq!(
            stack.push(VlanTag::c_tag(3)),
            Err(Error::Unsupported("VLAN stack deeper than 2"))
        );
        assert_eq!(stack.len(), 2);
    }

    #[test]
    fn ethertype_debug_names_known_values() {
        assert_eq!(format!("{:?}", EtherType::IPV6), "IPV6");
        assert_eq!(format!("{:?}", EtherType(0x1234)), "EtherType(0x1234)");
    }
}
