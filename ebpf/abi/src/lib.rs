//! The contract between Tandem's XDP program (`tandem-xdp`, runs in the kernel) and its loader
//! (`tandem-datapath`, runs in userspace): map names, map sizes, ports and counter ids.
//!
//! Layer L0: `no_std`, no dependencies, no `unsafe`. Both sides compile this crate, so a value
//! changed here changes on both sides at once.
//!
//! # Counters
//!
//! The program keeps one per-CPU `u64` per [`Counter`] in the `COUNTERS` map, indexed by
//! [`Counter::index`]. Every frame the program sees bumps [`Counter::Seen`] and then exactly one
//! *verdict* counter ([`Counter::is_verdict`]), so after the per-CPU values are summed:
//!
//! ```text
//! seen == sum of all verdict counters
//! ```
//!
//! ([`Counter::Vlan`] and [`Counter::ExtHdr`] are observations, not verdicts: a frame counted
//! there is also counted under its verdict.) The names in [`COUNTER_NAMES`] are snake_case and
//! stable; userspace prints them as `xdp_<name>=<value>`.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Name of the XDP program (the `#[xdp]` function) inside the object file.
pub const PROGRAM_NAME: &str = "tandem_xdp";

/// Name of the `XskMap` that maps an RX queue index to the AF_XDP socket serving it.
pub const XSKS_MAP: &str = "XSKS";

/// Name of the `PerCpuArray<u64>` holding one slot per [`Counter`].
pub const COUNTERS_MAP: &str = "COUNTERS";

/// Number of entries in `XSKS`: the highest RX queue index that can be steered is
/// `MAX_QUEUES - 1`. Frames arriving on a higher queue miss the map and go to the kernel
/// ([`Counter::NoSocket`]).
pub const MAX_QUEUES: u32 = 64;

/// UDP port DHCPv6 servers and relay agents listen on (RFC 8415 §7.2). The program steers
/// IPv6/UDP datagrams with this *destination* port.
pub const DHCPV6_SERVER_PORT: u16 = 547;

/// UDP port DHCPv6 clients listen on (RFC 8415 §7.2).
pub const DHCPV6_CLIENT_PORT: u16 = 546;

/// Most VLAN tags (802.1Q/802.1ad) the program looks through: one tag or a QinQ pair. A third
/// tag is [`Counter::PassVlanTooDeep`].
pub const MAX_VLAN_TAGS: usize = 2;

/// Most IPv6 extension headers (hop-by-hop, routing, destination options) the program follows
/// before the UDP header (RFC 8200 §4). A fifth one is [`Counter::PassExtHdrTooMany`].
pub const MAX_EXT_HEADERS: usize = 4;

/// Ethertypes the program recognises (IEEE 802.3 / IANA).
pub mod ethertype {
    /// IPv6 (RFC 8200).
    pub const IPV6: u16 = 0x86dd;
    /// 802.1Q VLAN tag (C-tag).
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service tag (S-tag, QinQ outer tag).
    pub const QINQ: u16 = 0x88a8;
    /// Pre-standard QinQ outer tag still used by some switches.
    pub const QINQ_LEGACY: u16 = 0x9100;
}

/// IPv6 "Next Header" values the program acts on (IANA "Assigned Internet Protocol Numbers";
/// extension headers per RFC 8200 §4 and the IANA "IPv6 Extension Header Types" registry).
pub mod next_header {
    /// Hop-by-Hop Options (RFC 8200 §4.3): followed.
    pub const HOP_BY_HOP: u8 = 0;
    /// UDP (RFC 768): the end of the walk.
    pub const UDP: u8 = 17;
    /// Routing (RFC 8200 §4.4): followed.
    pub const ROUTING: u8 = 43;
    /// Fragment (RFC 8200 §4.5): not followed (no UDP header in non-first fragments).
    pub const FRAGMENT: u8 = 44;
    /// Encapsulating Security Payload (RFC 4303): not followed (encrypted).
    pub const ESP: u8 = 50;
    /// Authentication Header (RFC 4302): not followed.
    pub const AH: u8 = 51;
    /// No Next Header (RFC 8200 §4.7): nothing follows.
    pub const NO_NEXT: u8 = 59;
    /// Destination Options (RFC 8200 §4.6): followed.
    pub const DEST_OPTS: u8 = 60;
    /// Mobility Header (RFC 6275): not followed.
    pub const MOBILITY: u8 = 135;
    /// Host Identity Protocol (RFC 7401): not followed.
    pub const HIP: u8 = 139;
    /// Shim6 (RFC 5533): not followed.
    pub const SHIM6: u8 = 140;
    /// Experimentation and testing (RFC 3692): not followed.
    pub const EXPERIMENTAL_1: u8 = 253;
    /// Experimentation and testing (RFC 3692): not followed.
    pub const EXPERIMENTAL_2: u8 = 254;
}

/// Defines [`Counter`], [`COUNTER_COUNT`] and [`COUNTER_NAMES`] from one list, so ids and names
/// cannot drift apart.
macro_rules! counters {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident = $name:literal, verdict = $verdict:literal;
    )*) => {
        /// One slot of the `COUNTERS` map. The discriminant is the map index.
        #[repr(u32)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Counter {
            $( $(#[doc = $doc])* $variant, )*
        }

        /// Number of counters, and the size of the `COUNTERS` map.
        pub const COUNTER_COUNT: usize = [$($name),*].len();

        /// Counter names, indexed by [`Counter::index`]: snake_case, unique, stable.
        pub const COUNTER_NAMES: [&str; COUNTER_COUNT] = [$($name),*];

        impl Counter {
            /// Every counter, in index order.
            pub const ALL: [Counter; COUNTER_COUNT] = [$(Counter::$variant),*];

            /// The snake_case name (the same as `COUNTER_NAMES[self.index()]`).
            pub const fn name(self) -> &'static str {
                match self { $( Counter::$variant => $name, )* }
            }

            /// Whether this counter is a verdict: every frame lands in exactly one of them.
            pub const fn is_verdict(self) -> bool {
                match self { $( Counter::$variant => $verdict, )* }
            }
        }
    };
}

counters! {
    /// Every frame the program ran on (not a verdict: the sum of all verdicts).
    Seen = "seen", verdict = false;
    /// IPv6/UDP to port 547, redirected to the AF_XDP socket of its RX queue.
    Redirected = "redirected", verdict = true;
    /// IPv6/UDP to port 547, but `XSKS` has no socket for the frame's RX queue (or the queue index
    /// is `>= MAX_QUEUES`): passed to the kernel stack. Logged at `info` level.
    NoSocket = "no_socket", verdict = true;
    /// Ethertype (after any VLAN tags) is not IPv6, or the IPv6 version nibble is not 6: passed.
    PassNotIpv6 = "pass_not_ipv6", verdict = true;
    /// IPv6, but the upper-layer protocol (after extension headers) is not UDP, e.g. ICMPv6 or
    /// TCP: passed.
    PassNotUdp = "pass_not_udp", verdict = true;
    /// IPv6/UDP, but the destination port is not 547: passed.
    PassNotDhcpPort = "pass_not_dhcp_port", verdict = true;
    /// More than [`MAX_VLAN_TAGS`] VLAN tags: passed unparsed.
    PassVlanTooDeep = "pass_vlan_too_deep", verdict = true;
    /// More than [`MAX_EXT_HEADERS`] followable IPv6 extension headers: passed unparsed.
    PassExtHdrTooMany = "pass_ext_hdr_too_many", verdict = true;
    /// An IPv6 extension header the program does not follow (fragment, ESP, AH, no-next-header,
    /// mobility, HIP, shim6, experimental): passed to the kernel, which reassembles or decrypts.
    PassExtHdrUnsupported = "pass_ext_hdr_unsupported", verdict = true;
    /// Frame shorter than an Ethernet header (14 bytes): passed.
    TruncatedEth = "truncated_eth", verdict = true;
    /// Frame ends inside a VLAN tag: passed.
    TruncatedVlan = "truncated_vlan", verdict = true;
    /// Frame ends inside the fixed 40-byte IPv6 header: passed.
    TruncatedIpv6 = "truncated_ipv6", verdict = true;
    /// Frame ends inside an IPv6 extension header (or its declared length runs past the end):
    /// passed.
    TruncatedExtHdr = "truncated_ext_hdr", verdict = true;
    /// Frame ends inside the 8-byte UDP header: passed.
    TruncatedUdp = "truncated_udp", verdict = true;
    /// Frames carrying at least one VLAN tag (not a verdict).
    Vlan = "vlan", verdict = false;
    /// IPv6 frames carrying at least one extension header (not a verdict).
    ExtHdr = "ext_hdr", verdict = false;
}

impl Counter {
    /// The slot of this counter in the `COUNTERS` map.
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// The counter stored at `index`, if any.
    pub const fn from_index(index: u32) -> Option<Self> {
        let i = index as usize;
        if i < COUNTER_COUNT {
            Some(Self::ALL[i])
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use std::collections::HashSet;

    use super::*;

    #[test]
    fn counter_names_are_unique() {
        let unique: HashSet<&str> = COUNTER_NAMES.iter().copied().collect();
        assert_eq!(unique.len(), COUNTER_NAMES.len());
    }

    #[test]
    fn counter_count_matches_variants_and_names() {
        assert_eq!(COUNTER_NAMES.len(), COUNTER_COUNT);
        assert_eq!(Counter::ALL.len(), COUNTER_COUNT);
        // The last variant's discriminant is COUNT - 1, so indices are exactly 0..COUNT.
        assert_eq!(Counter::ExtHdr.index() as usize, COUNTER_COUNT - 1);
        assert_eq!(COUNTER_COUNT, 16);
    }

    #[test]
    fn counter_index_round_trips_through_from_index() {
        for (i, counter) in Counter::ALL.iter().enumerate() {
            assert_eq!(counter.index() as usize, i);
            assert_eq!(Counter::from_index(counter.index()), Some(*counter));
            assert_eq!(counter.name(), COUNTER_NAMES[i]);
        }
        assert_eq!(Counter::from_index(COUNTER_COUNT as u32), None);
        assert_eq!(Counter::from_index(u32::MAX), None);
    }

    #[test]
    fn counter_names_are_snake_case() {
        for name in COUNTER_NAMES {
            assert!(!name.is_empty(), "empty counter name");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{name} is not snake_case"
            );
            assert!(!name.starts_with('_') && !name.ends_with('_') && !name.contains("__"));
        }
    }

    #[test]
    fn counter_verdicts_exclude_only_observations() {
        let observations: std::vec::Vec<&str> = Counter::ALL
            .iter()
            .filter(|c| !c.is_verdict())
            .map(|c| c.name())
            .collect();
        assert_eq!(observations, ["seen", "vlan", "ext_hdr"]);
        // Parse failures and pass reasons are all verdicts.
        for counter in Counter::ALL {
            let name = counter.name();
            if name.starts_with("pass_") || name.starts_with("truncated_") {
                assert!(counter.is_verdict(), "{name} must be a verdict");
            }
        }
    }

    #[test]
    fn constants_match_rfc_and_contract() {
        assert_eq!(DHCPV6_SERVER_PORT, 547);
        assert_eq!(DHCPV6_CLIENT_PORT, 546);
        assert_eq!(MAX_QUEUES, 64);
        assert_eq!(PROGRAM_NAME, "tandem_xdp");
    }
}
