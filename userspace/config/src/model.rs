//! The validated configuration: plain types, defaults resolved, every cross-check done.

use std::net::Ipv6Addr;
use std::path::PathBuf;

use crate::prefix::Ipv6Prefix;

/// Lifetime value meaning "infinity" (RFC 8415 §7.7).
pub const INFINITY: u32 = tandem_wire::failover::INFINITE_LIFETIME;

/// The longest finite lifetime accepted, in seconds (2^30 − 1, 34 years): what fits the
/// RFC 8156 §3 time arithmetic ([`tandem_wire::failover::MAX_FINITE_LIFETIME`]).
pub const MAX_FINITE_LIFETIME: u32 = tandem_wire::failover::MAX_FINITE_LIFETIME;

/// A validated Tandem configuration. Build it with [`Config::from_str`] or [`crate::load`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// `[server]`.
    pub server: Server,
    /// `[datapath]`: how packets reach the engine (issue 4).
    pub datapath: Datapath,
    /// `[[interface]]` names, in file order, no duplicates.
    pub interfaces: Vec<String>,
    /// `[[subnet]]`s in file order; prefixes, address pools and PD pools do not overlap.
    pub subnets: Vec<Subnet>,
    /// `[[failover]]` relationships (RFC 8156); each subnet is in at most one.
    pub failover: Vec<crate::failover::Failover>,
}

/// Server-wide settings, `[server]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    /// Where leases and the server DUID are kept (default `/var/lib/tandem`).
    pub state_dir: PathBuf,
    /// Value of the Preference option in Advertise (RFC 8415 §21.8, default 0).
    pub preference: u8,
}

/// The packet path of `tandem run`, `[datapath]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Datapath {
    /// UDP socket or XDP/AF_XDP workers (default: socket).
    pub mode: DatapathMode,
    /// How the XDP program is attached (xdp mode only; default: auto).
    pub xdp_mode: XdpMode,
    /// Workers spin on their rings instead of sleeping in `poll()` (xdp mode only).
    pub busy_poll: bool,
    /// Cores for the workers, in order (worker i gets the (i mod len)-th); `None`: the cores
    /// the process may run on, in turn.
    pub cores: Option<Vec<usize>>,
    /// RX queues served per interface, `0..queues`; 0 means all of them.
    pub queues: u32,
    /// Lease database shards; 0 means the number of XDP workers (xdp mode) or what the state
    /// directory already has, else 1 (socket mode).
    pub shards: u32,
}

/// `[datapath] mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DatapathMode {
    /// One UDP socket on port 547, one thread (`"socket"`).
    #[default]
    Socket,
    /// XDP steering to per-queue AF_XDP workers (`"xdp"`).
    Xdp,
}

impl DatapathMode {
    /// The name used in the file and on the command line.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Socket => "socket",
            Self::Xdp => "xdp",
        }
    }

    /// Parses `socket` or `xdp`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "socket" => Some(Self::Socket),
            "xdp" => Some(Self::Xdp),
            _ => None,
        }
    }
}

/// `[datapath] xdp-mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum XdpMode {
    /// Native, falling back to generic with a warning (`"auto"`).
    #[default]
    Auto,
    /// Native (driver) mode only (`"native"`).
    Native,
    /// Generic (SKB) mode only (`"generic"`).
    Generic,
}

impl XdpMode {
    /// The name used in the file.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Native => "native",
            Self::Generic => "generic",
        }
    }

    /// Parses `auto`, `native` or `generic`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "auto" => Some(Self::Auto),
            "native" => Some(Self::Native),
            "generic" => Some(Self::Generic),
            _ => None,
        }
    }
}

/// Most RX queues per interface `[datapath] queues` may name (the XDP program's XSKMAP size).
pub const MAX_QUEUES: u32 = 64;
/// Most lease database shards `[datapath] shards` may name.
pub const MAX_SHARDS: u32 = 256;

/// Parses a core list such as `0,1`, `0-3` or `0-1,3` (the `taskset -c` syntax without
/// strides) into core ids in the order given.
///
/// # Errors
/// A message naming the bad entry: empty entries, non-numbers, backwards ranges, duplicates,
/// more than 4096 cores.
pub fn parse_core_list(s: &str) -> Result<Vec<usize>, String> {
    const MAX_CORES: usize = 4096;
    const SYNTAX: &str = "(expected e.g. `0,1`, `0-3` or `0-1,3`)";
    let number = |t: &str| {
        let t = t.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("`{t}` is not a core number {SYNTAX}"));
        }
        t.parse::<usize>()
            .map_err(|_| format!("`{t}` is not a core number {SYNTAX}"))
    };
    let mut cores: Vec<usize> = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(format!("empty entry in core list `{s}` {SYNTAX}"));
        }
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => {
                let n = number(part)?;
                (n, n)
            }
        };
        if first > last {
            return Err(format!("core range `{part}` runs backwards"));
        }
        if last - first >= MAX_CORES || cores.len() + (last - first) >= MAX_CORES {
            return Err(format!("core list `{s}` names more than {MAX_CORES} cores"));
        }
        for core in first..=last {
            if cores.contains(&core) {
                return Err(format!("core {core} is listed twice"));
            }
            cores.push(core);
        }
    }
    Ok(cores)
}

/// One link (or set of relayed links) served from the same pools, `[[subnet]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subnet {
    /// The on-link prefix.
    pub prefix: Ipv6Prefix,
    /// Direct (non-relayed) clients arriving on this interface belong here.
    pub interface: Option<String>,
    /// Relay link-addresses that select this subnet besides those inside `prefix`
    /// (RFC 8415 §9.1, §18.3.10).
    pub relay_link_addresses: Vec<Ipv6Addr>,
    /// Relay Interface-Id option value (RFC 8415 §21.18) that selects this subnet.
    pub interface_id: Option<Vec<u8>>,
    /// Answer a Solicit carrying Rapid Commit with a committed Reply (RFC 8415 §18.3.1).
    pub rapid_commit: bool,
    /// `rebind-creates-bindings`: a Rebind for an IA the server has no binding for creates one
    /// (RFC 8415 §18.3.5 "if the server is configured to create new bindings as a result of
    /// processing Rebind messages"). Default `false`: the IA gets NoBinding and the client
    /// falls back to a Request (RFC 8415 §18.2.10.1), naming its addresses as hints, so it
    /// still gets them back when they are free. Creating bindings on Rebind is what RFC 8415
    /// §18.3.5 advises only where Rapid Commit is allowed (several servers may answer the same
    /// Rebind), and a failover secondary in NORMAL must not answer Rebind at all (RFC 8156
    /// §8.8.1), so it is opt-in.
    pub rebind_creates_bindings: bool,
    /// Preferred lifetime in seconds (RFC 8415 §21.6); [`INFINITY`] means infinite.
    pub preferred_lifetime: u32,
    /// Valid lifetime in seconds, ≥ `preferred_lifetime`.
    pub valid_lifetime: u32,
    /// T1 in seconds, default 0.5 × preferred (RFC 8415 §21.4); ≤ `t2`. What the engine sends
    /// is derived from the lifetimes actually granted: at most this, and at most 0.5 × the
    /// shortest preferred lifetime in the Reply when that is shorter than configured (e.g.
    /// capped by the failover MCLT).
    pub t1: u32,
    /// T2 in seconds, default 0.8 × preferred (RFC 8415 §21.4); sent like `t1`, at most 0.8 ×
    /// the shortest preferred lifetime granted.
    pub t2: u32,
    /// IA_NA address pools, inside `prefix`.
    pub pools: Vec<AddressPool>,
    /// IA_PD prefix pools.
    pub pd_pools: Vec<PdPool>,
    /// Fixed assignments by client DUID.
    pub reservations: Vec<Reservation>,
    /// Options handed out on this subnet.
    pub options: SubnetOptions,
}

impl Subnet {
    /// The reservation for the client with this DUID (compared as opaque bytes, RFC 8415 §11).
    #[must_use]
    pub fn reservation_for_duid(&self, duid: &[u8]) -> Option<&Reservation> {
        self.reservations.iter().find(|r| r.duid == duid)
    }
}

/// An inclusive range of addresses for IA_NA, `[[subnet.pool]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressPool {
    /// First address.
    pub first: Ipv6Addr,
    /// Last address, ≥ `first`.
    pub last: Ipv6Addr,
}

impl AddressPool {
    /// Number of addresses; saturates at `u128::MAX` for the whole address space.
    #[must_use]
    pub fn len(&self) -> u128 {
        u128::from(self.last)
            .saturating_sub(u128::from(self.first))
            .saturating_add(1)
    }

    /// Always false for a validated pool (`first <= last`); true only if built inverted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.first > self.last
    }

    /// Whether `addr` is in the pool.
    #[must_use]
    pub fn contains(&self, addr: Ipv6Addr) -> bool {
        self.first <= addr && addr <= self.last
    }
}

/// A prefix cut into delegated prefixes of one length for IA_PD, `[[subnet.pd-pool]]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PdPool {
    /// The pool prefix.
    pub prefix: Ipv6Prefix,
    /// Length of each delegated prefix, `prefix.prefix_len()..=128`.
    pub delegated_len: u8,
}

impl PdPool {
    /// Number of delegated prefixes, 2^(delegated_len − prefix_len); saturates at `u128::MAX`
    /// (a /0 cut into /128s), and 0 if `delegated_len` is shorter than the pool prefix.
    #[must_use]
    pub fn count(&self) -> u128 {
        match self.delegated_len.checked_sub(self.prefix.prefix_len()) {
            None => 0,
            Some(bits) => 1u128.checked_shl(u32::from(bits)).unwrap_or(u128::MAX),
        }
    }
}

/// A fixed assignment, `[[subnet.reservation]]`. At least one of `address`, `prefix` is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// The client DUID bytes (RFC 8415 §11), 3..=130 bytes.
    pub duid: Vec<u8>,
    /// Reserved IA_NA address, inside the subnet prefix.
    pub address: Option<Ipv6Addr>,
    /// Reserved IA_PD prefix.
    pub prefix: Option<Ipv6Prefix>,
}

/// Options served on a subnet, `[subnet.options]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubnetOptions {
    /// OPTION_DNS_SERVERS (23, RFC 3646 §3).
    pub dns_servers: Vec<Ipv6Addr>,
    /// OPTION_DOMAIN_LIST (24, RFC 3646 §4), without trailing dots.
    pub domain_search: Vec<String>,
    /// OPTION_SOL_MAX_RT (82, RFC 8415 §21.24), 60..=86400.
    pub sol_max_rt: Option<u32>,
    /// OPTION_INF_MAX_RT (83, RFC 8415 §21.25), 60..=86400.
    pub inf_max_rt: Option<u32>,
    /// OPTION_INFORMATION_REFRESH_TIME (32, RFC 8415 §21.23), ≥ 600.
    pub information_refresh_time: Option<u32>,
}

impl Config {
    /// The subnet a relayed request belongs to, from the innermost non-zero relay
    /// link-address (RFC 8415 §18.3.10, RFC 6221): an explicit `relay-link-addresses` entry
    /// wins, otherwise the subnet whose prefix contains `addr`.
    #[must_use]
    pub fn subnet_for_link_address(&self, addr: Ipv6Addr) -> Option<&Subnet> {
        self.subnets
            .iter()
            .find(|s| s.relay_link_addresses.contains(&addr))
            .or_else(|| self.subnets.iter().find(|s| s.prefix.contains(addr)))
    }

    /// The subnet selected by a relay Interface-Id option value (RFC 8415 §21.18).
    #[must_use]
    pub fn subnet_for_interface_id(&self, interface_id: &[u8]) -> Option<&Subnet> {
        self.subnets
            .iter()
            .find(|s| s.interface_id.as_deref() == Some(interface_id))
    }

    /// The subnet of direct (non-relayed) clients arriving on interface `name`.
    #[must_use]
    pub fn subnet_for_interface(&self, name: &str) -> Option<&Subnet> {
        self.subnets
            .iter()
            .find(|s| s.interface.as_deref() == Some(name))
    }
}
