//! What the privileged tests and the lab need from the machine they run on, in one list shared
//! by the code that uses each piece ([`crate::clients`], [`crate::process`], [`crate::netns`])
//! and by `cargo xtask check-env`, which includes this file with `#[path]` (xtask must build
//! without tandem-hwtest's datapath dependencies, so this file uses `core` only).
//!
//! Kernel features (network namespaces, veth, overlayfs, BPF) and privileges are probed by
//! `cargo xtask check-env` itself; this file lists what is named by path.

/// A program the tests run by name, found on `PATH`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Program {
    /// The executable's name.
    pub name: &'static str,
    /// The Debian package that ships it.
    pub package: &'static str,
    /// What runs it.
    pub used_for: &'static str,
}

/// Every program the hwtest suites, the lab and the load generator run.
pub const PROGRAMS: &[Program] = &[
    Program {
        name: "ip",
        package: "iproute2",
        used_for: "network namespaces, veth pairs, addresses (every netns_* test, the lab)",
    },
    Program {
        name: "unshare",
        package: "util-linux",
        used_for: "a private mount namespace per DHCPv6 client",
    },
    Program {
        name: "mount",
        package: "mount",
        used_for: "bind and overlay mounts in a client's private mount namespace",
    },
    Program {
        name: "mkdir",
        package: "coreutils",
        used_for: "creating missing mount points for the client mount wrapper",
    },
    Program {
        name: "sh",
        package: "dash",
        used_for: "the client mount wrapper",
    },
    Program {
        name: "dhclient",
        package: "isc-dhcp-client",
        used_for: "ISC dhclient -6 (netns_clients, the lab)",
    },
    Program {
        name: "dhcpcd",
        package: "dhcpcd-base",
        used_for: "dhcpcd -6 (netns_clients, the lab)",
    },
    Program {
        name: "dibbler-client",
        package: "dibbler-client",
        used_for: "dibbler-client with Rapid Commit (netns_clients, the lab)",
    },
    Program {
        name: "dhcp6c",
        package: "wide-dhcpv6-client",
        used_for: "WIDE dhcp6c (netns_clients, the lab)",
    },
    Program {
        name: "dhcp6relay",
        package: "wide-dhcpv6-relay",
        used_for: "the WIDE relay agent in front of a relayed client (netns_clients, the lab)",
    },
    Program {
        name: "tcpdump",
        package: "tcpdump",
        used_for: "capturing the failover link for the dissector test (netns_wireshark); lab \
                   exchanges (the captured wire test vectors)",
    },
    Program {
        name: "tshark",
        package: "tshark",
        used_for: "the RFC 8156 Wireshark dissector over a real capture (netns_wireshark)",
    },
    Program {
        name: "taskset",
        package: "util-linux",
        used_for: "pinning the server under the load generator (tandem-bench loadgen)",
    },
];

/// dhcpcd's database directory (DUID, leases).
pub const DHCPCD_DB_DIR: &str = "/var/lib/dhcpcd";
/// dhcpcd's run directory (pid file, control socket); on tmpfs, so absent after every boot
/// until something creates it.
pub const DHCPCD_RUN_DIR: &str = "/run/dhcpcd";
/// dibbler-client's state directory (DUID, `client-AddrMgr.xml`, pid file).
pub const DIBBLER_LIB_DIR: &str = "/var/lib/dibbler";
/// dibbler-client's log directory.
pub const DIBBLER_LOG_DIR: &str = "/var/log/dibbler";
/// WIDE dhcp6c's DUID directory (`dhcp6c_duid`).
pub const WIDE_DB_DIR: &str = "/var/lib/dhcpv6";

/// The fixed directories the clients insist on. In a client's private mount namespace each is
/// bind-mounted from the client's scratch directory; one that does not exist is created first
/// (`mkdir -p`, on the host: mount points have to exist), so their parents must be writable.
pub const MOUNT_POINTS: &[&str] = &[
    DHCPCD_DB_DIR,
    DHCPCD_RUN_DIR,
    DIBBLER_LIB_DIR,
    DIBBLER_LOG_DIR,
    WIDE_DB_DIR,
];

/// The directory dibbler-client gets a private overlay of (overlayfs, the upper layer in its
/// scratch directory): it writes fixed files there (`/etc/dibbler/client.conf` is read,
/// `/etc/resolv.conf` and `/etc/dibbler/radvd.conf` are written), some of which need not exist
/// on the host.
pub const DIBBLER_OVERLAY: &str = "/etc";
