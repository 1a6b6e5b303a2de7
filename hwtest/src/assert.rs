//! Helpers shared by the privileged tests that serve real DHCPv6 clients with `tandem run`
//! (`tests/netns_clients.rs` over the kernel's UDP stack, `tests/netns_xdp_run.rs` over XDP):
//! the test subnet's pools and configuration, waiting for a client with the server's log on
//! failure, and the check that what a client got is in the pools and in the lease table.

use std::net::Ipv6Addr;
use std::time::Duration;

use crate::clients::{ClientResult, LeaseRow, RunningClient, TandemRun};

/// Lifetimes of a test subnet, in seconds (RFC 8415 §21.6 and §21.4).
#[derive(Clone, Copy, Debug)]
pub struct Lifetimes {
    /// `preferred-lifetime`.
    pub preferred: u32,
    /// `valid-lifetime`.
    pub valid: u32,
    /// `t1`.
    pub t1: u32,
    /// `t2`.
    pub t2: u32,
}

impl Lifetimes {
    /// Long enough that no client renews during a test: 600/1200 s, T1 300 s, T2 480 s.
    pub const LONG: Self = Self {
        preferred: 600,
        valid: 1200,
        t1: 300,
        t2: 480,
    };
}

/// What [`TestPools::config`] writes besides the pools.
#[derive(Clone, Copy, Debug)]
pub struct SubnetConfig<'a> {
    /// The interface the server listens on.
    pub server_if: &'a str,
    /// Ties the subnet to `server_if`; else it is chosen by a relay's link-address.
    pub direct: bool,
    /// TOML written between `[server]` and `[[interface]]` (e.g. a `[datapath]` table), or "".
    pub datapath: &'a str,
    /// The subnet's `rapid-commit` (RFC 8415 §21.14), or `None` to leave it out.
    pub rapid_commit: Option<bool>,
    /// The subnet's lifetimes.
    pub lifetimes: Lifetimes,
    /// Adds `[subnet.options] dns-servers` with [`TestPools::dns`].
    pub dns: bool,
}

/// The pools of one test subnet: `<net>::/64` with addresses `::1000-::1fff`, PD pool
/// `fd10:<tag>::/48` cut into /56s (`<tag>` being the second group of `<net>`), DNS server
/// `<net>::53`.
#[derive(Clone, Copy, Debug)]
pub struct TestPools {
    /// `<net>::`, the /64.
    pub subnet: Ipv6Addr,
    /// First address of the address pool.
    pub first: Ipv6Addr,
    /// Last address of the address pool.
    pub last: Ipv6Addr,
    /// The /48 the delegated /56s come from.
    pub pd: Ipv6Addr,
    /// The DNS server of the subnet options.
    pub dns: Ipv6Addr,
}

impl TestPools {
    /// The pools of the /64 holding `subnet`.
    pub fn new(subnet: Ipv6Addr) -> Self {
        let s = subnet.segments();
        let at = |last: u16| Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, last);
        Self {
            subnet: at(0),
            first: at(0x1000),
            last: at(0x1fff),
            pd: Ipv6Addr::new(0xfd10, s[1], 0, 0, 0, 0, 0, 0),
            dns: at(0x53),
        }
    }

    /// A `tandem run` configuration serving these pools as described by `c`.
    pub fn config(&self, c: &SubnetConfig<'_>) -> String {
        let SubnetConfig {
            server_if,
            direct,
            datapath,
            rapid_commit,
            lifetimes:
                Lifetimes {
                    preferred,
                    valid,
                    t1,
                    t2,
                },
            dns,
        } = *c;
        let interface = if direct {
            format!("interface = \"{server_if}\"\n")
        } else {
            String::new()
        };
        let rapid_commit =
            rapid_commit.map_or_else(String::new, |r| format!("rapid-commit = {r}\n"));
        let options = if dns {
            format!("\n[subnet.options]\ndns-servers = [\"{}\"]\n", self.dns)
        } else {
            String::new()
        };
        format!(
            "[server]\npreference = 255\n\n{datapath}[[interface]]\nname = \"{server_if}\"\n\n\
             [[subnet]]\nprefix = \"{}/64\"\n{interface}{rapid_commit}\
             preferred-lifetime = {preferred}\nvalid-lifetime = {valid}\nt1 = {t1}\nt2 = {t2}\n\n\
             [[subnet.pool]]\nrange = \"{}-{}\"\n\n\
             [[subnet.pd-pool]]\nprefix = \"{}/48\"\ndelegated-length = 56\n{options}",
            self.subnet, self.first, self.last, self.pd
        )
    }

    /// `a` is in the address pool.
    pub fn has_address(&self, a: Ipv6Addr) -> bool {
        (u128::from(self.first)..=u128::from(self.last)).contains(&u128::from(a))
    }

    /// `(p, len)` is a /56 out of the PD pool.
    pub fn has_prefix(&self, (p, len): (Ipv6Addr, u8)) -> bool {
        len == 56 && u128::from(p) >> 80 == u128::from(self.pd) >> 80
    }
}

/// [`RunningClient::wait_for`] `done`; on failure, panics with the error and the server's log.
pub fn wait_served(
    client: &mut RunningClient,
    server: &TandemRun,
    timeout: Duration,
    done: impl Fn(&ClientResult) -> bool,
) -> ClientResult {
    client
        .wait_for(timeout, done)
        .unwrap_or_else(|e| panic!("{e}\nserver log:\n{}", server.log()))
}

/// The lease table rows of `duid`.
pub fn rows_of(server: &TandemRun, duid: &[u8]) -> Vec<LeaseRow> {
    let rows = server.leases().expect("tandem leases");
    rows.into_iter().filter(|r| r.duid == duid).collect()
}

/// Everything `client` got is in `pools` and stands as an active lease under its DUID in the
/// server's lease table.
pub fn assert_leased(
    server: &TandemRun,
    pools: &TestPools,
    client: &RunningClient,
    got: &ClientResult,
) {
    let duid = client
        .duid()
        .unwrap_or_else(|| panic!("cannot read the DUID of `{}`", client.command()));
    let all = server.leases().expect("tandem leases");
    let mine: Vec<&LeaseRow> = all.iter().filter(|r| r.duid == duid).collect();
    for &a in &got.addresses {
        assert!(pools.has_address(a), "{a} outside the pool; {got:?}");
        assert!(
            mine.iter()
                .any(|r| r.kind == "na" && r.address == Some(a) && r.state == "active"),
            "no active na lease for {a} with DUID {duid:02x?}; table: {all:#?}"
        );
    }
    for &p in &got.prefixes {
        assert!(pools.has_prefix(p), "{p:?} outside the PD pool; {got:?}");
        assert!(
            mine.iter()
                .any(|r| r.kind == "pd" && r.prefix == Some(p) && r.state == "active"),
            "no active pd lease for {p:?} with DUID {duid:02x?}; table: {all:#?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pools() -> TestPools {
        TestPools::new("fd00:7::42".parse().unwrap())
    }

    #[test]
    fn pools_new_derives_ranges_from_subnet() {
        let p = pools();
        assert_eq!(p.subnet, "fd00:7::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.first, "fd00:7::1000".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.last, "fd00:7::1fff".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.pd, "fd10:7::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dns, "fd00:7::53".parse::<Ipv6Addr>().unwrap());
    }

    #[test]
    fn pools_membership_bounds_are_inclusive_and_pd_is_56_only() {
        let p = pools();
        assert!(p.has_address(p.first) && p.has_address(p.last));
        assert!(!p.has_address("fd00:7::2000".parse().unwrap()));
        assert!(!p.has_address("fd00:7::fff".parse().unwrap()));
        assert!(p.has_prefix(("fd10:7:0:ff00::".parse().unwrap(), 56)));
        assert!(!p.has_prefix(("fd10:7:0:ff00::".parse().unwrap(), 64)));
        assert!(!p.has_prefix(("fd10:8::".parse().unwrap(), 56)));
    }

    #[test]
    fn pools_config_writes_optional_parts_only_when_asked() {
        let p = pools();
        let full = p.config(&SubnetConfig {
            server_if: "eth0",
            direct: true,
            datapath: "[datapath]\nmode = \"xdp\"\n\n",
            rapid_commit: Some(true),
            lifetimes: Lifetimes::LONG,
            dns: true,
        });
        assert!(
            full.contains("[datapath]\nmode = \"xdp\"\n\n[[interface]]"),
            "{full}"
        );
        assert!(
            full.contains("interface = \"eth0\"\nrapid-commit = true\n"),
            "{full}"
        );
        assert!(full.contains("t1 = 300\nt2 = 480\n"), "{full}");
        assert!(
            full.contains("range = \"fd00:7::1000-fd00:7::1fff\""),
            "{full}"
        );
        assert!(full.contains("prefix = \"fd10:7::/48\""), "{full}");
        assert!(full.ends_with("dns-servers = [\"fd00:7::53\"]\n"), "{full}");
        let bare = p.config(&SubnetConfig {
            server_if: "eth0",
            direct: false,
            datapath: "",
            rapid_commit: None,
            lifetimes: Lifetimes::LONG,
            dns: false,
        });
        assert!(
            bare.starts_with("[server]\npreference = 255\n\n[[interface]]"),
            "{bare}"
        );
        for absent in [
            "interface = ",
            "rapid-commit",
            "[subnet.options]",
            "[datapath]",
        ] {
            assert!(!bare.contains(absent), "{absent} in {bare}");
        }
        assert!(bare.ends_with("delegated-length = 56\n"), "{bare}");
    }
}
