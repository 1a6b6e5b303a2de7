//! [`Ipv6Prefix`]: an IPv6 address plus a prefix length, with no host bits set.

use core::fmt;
use core::str::FromStr;
use std::net::Ipv6Addr;

/// An IPv6 prefix such as `2001:db8::/32` (RFC 4291 §2.3). The address never has bits set
/// beyond the prefix length; [`Ipv6Prefix::new`] refuses such input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv6Prefix {
    addr: Ipv6Addr,
    len: u8,
}

/// Why a string or an (address, length) pair is not an [`Ipv6Prefix`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrefixError {
    /// No `/length` part.
    MissingLength,
    /// The address part does not parse as an IPv6 address.
    BadAddress(String),
    /// The length part is not a decimal number.
    BadLength(String),
    /// The length is greater than 128.
    LengthOutOfRange(u32),
    /// Bits beyond the prefix length are set; `canonical` is the prefix with them cleared.
    HostBitsSet {
        /// The prefix with the host bits cleared.
        canonical: Ipv6Prefix,
    },
}

impl fmt::Display for PrefixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingLength => f.write_str("expected an IPv6 prefix `address/length`"),
            Self::BadAddress(a) => write!(f, "`{a}` is not a valid IPv6 address"),
            Self::BadLength(l) => write!(f, "prefix length `{l}` is not a number"),
            Self::LengthOutOfRange(l) => write!(f, "prefix length {l} is out of range 0..=128"),
            Self::HostBitsSet { canonical } => {
                write!(
                    f,
                    "host bits are set beyond the prefix length (did you mean {canonical}?)"
                )
            }
        }
    }
}

impl std::error::Error for PrefixError {}

impl Ipv6Prefix {
    /// The prefix length of the whole address space, `::/0`.
    pub const MAX_LEN: u8 = 128;

    /// The netmask of a `len`-bit prefix as a `u128` (`len` is clamped to 128).
    #[must_use]
    pub const fn mask(len: u8) -> u128 {
        if len == 0 {
            0
        } else if len >= 128 {
            u128::MAX
        } else {
            u128::MAX << (128 - len as u32)
        }
    }

    /// Builds a prefix, refusing a length above 128 and an address with host bits set.
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Self, PrefixError> {
        if len > Self::MAX_LEN {
            return Err(PrefixError::LengthOutOfRange(u32::from(len)));
        }
        let bits = u128::from(addr);
        let net = bits & Self::mask(len);
        if net != bits {
            return Err(PrefixError::HostBitsSet {
                canonical: Self {
                    addr: Ipv6Addr::from(net),
                    len,
                },
            });
        }
        Ok(Self { addr, len })
    }

    /// The network address (all host bits zero).
    #[must_use]
    pub const fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// The prefix length, 0..=128.
    #[must_use]
    pub const fn prefix_len(&self) -> u8 {
        self.len
    }

    /// The first address of the prefix (same as [`Ipv6Prefix::addr`]).
    #[must_use]
    pub const fn first(&self) -> Ipv6Addr {
        self.addr
    }

    /// The last address of the prefix (all host bits one).
    #[must_use]
    pub fn last(&self) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) | !Self::mask(self.len))
    }

    /// Whether `addr` lies inside this prefix.
    #[must_use]
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        u128::from(addr) & Self::mask(self.len) == u128::from(self.addr)
    }

    /// Whether `other` lies entirely inside this prefix (a prefix contains itself).
    #[must_use]
    pub fn contains_prefix(&self, other: &Self) -> bool {
        other.len >= self.len && self.contains(other.addr)
    }

    /// Whether the two prefixes share at least one address (one then contains the other).
    #[must_use]
    pub fn overlaps(&self, other: &Self) -> bool {
        self.contains_prefix(other) || other.contains_prefix(self)
    }
}

impl fmt::Display for Ipv6Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl FromStr for Ipv6Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, len) = s.split_once('/').ok_or(PrefixError::MissingLength)?;
        let addr: Ipv6Addr = addr
            .parse()
            .map_err(|_| PrefixError::BadAddress(addr.to_owned()))?;
        if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PrefixError::BadLength(len.to_owned()));
        }
        let len: u32 = len
            .parse()
            .map_err(|_| PrefixError::BadLength(len.to_owned()))?;
        let len = u8::try_from(len)
            .ok()
            .filter(|l| *l <= Self::MAX_LEN)
            .ok_or(PrefixError::LengthOutOfRange(len))?;
        Self::new(addr, len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Ipv6Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn prefix_parse_display_round_trips() {
        for s in ["2001:db8::/32", "::/0", "2001:db8::1/128", "fe80::/10"] {
            assert_eq!(p(s).to_string(), s);
        }
    }

    #[test]
    fn prefix_host_bits_set_rejected_with_canonical() {
        let err = "2001:db8::1/64".parse::<Ipv6Prefix>().unwrap_err();
        assert_eq!(
            err,
            PrefixError::HostBitsSet {
                canonical: p("2001:db8::/64")
            }
        );
        assert!(err.to_string().contains("did you mean 2001:db8::/64"));
    }

    #[test]
    fn prefix_bad_inputs_rejected() {
        assert_eq!(
            "2001:db8::".parse::<Ipv6Prefix>(),
            Err(PrefixError::MissingLength)
        );
        assert_eq!(
            "2001:db8::/129".parse::<Ipv6Prefix>(),
            Err(PrefixError::LengthOutOfRange(129))
        );
        assert_eq!(
            "2001:db8::/99999999999".parse::<Ipv6Prefix>(),
            Err(PrefixError::BadLength("99999999999".into()))
        );
        assert_eq!(
            "2001:db8::/+6".parse::<Ipv6Prefix>(),
            Err(PrefixError::BadLength("+6".into()))
        );
        assert_eq!(
            "10.0.0.0/8".parse::<Ipv6Prefix>(),
            Err(PrefixError::BadAddress("10.0.0.0".into()))
        );
        assert_eq!(
            Ipv6Prefix::new(Ipv6Addr::UNSPECIFIED, 200),
            Err(PrefixError::LengthOutOfRange(200))
        );
    }

    #[test]
    fn prefix_contains_checks_boundaries() {
        let net = p("2001:db8:1::/64");
        assert!(net.contains("2001:db8:1::".parse().unwrap()));
        assert!(net.contains("2001:db8:1::ffff:ffff:ffff:ffff".parse().unwrap()));
        assert!(!net.contains("2001:db8:1:1::".parse().unwrap()));
        assert_eq!(
            net.last(),
            "2001:db8:1:0:ffff:ffff:ffff:ffff"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
        assert!(net.contains_prefix(&p("2001:db8:1::/120")));
        assert!(!net.contains_prefix(&p("2001:db8::/48")));
        assert!(p("2001:db8::/32").overlaps(&net));
        assert!(!net.overlaps(&p("2001:db8:2::/64")));
        assert!(p("::/0").contains(Ipv6Addr::LOCALHOST));
        assert_eq!(p("::/0").last(), Ipv6Addr::from(u128::MAX));
    }
}
