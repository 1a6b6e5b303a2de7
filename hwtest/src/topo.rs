//! The two-namespace veth topology of docs/toolchain.md §7.

use std::io;
use std::net::Ipv6Addr;
use std::sync::atomic::{AtomicU16, Ordering};

use crate::netns::NetNs;

/// Server end of the veth pair (inside the server namespace).
const SERVER_IF: &str = "tandem0";
/// Client end of the veth pair (inside the client namespace).
const CLIENT_IF: &str = "client0";
/// Locally administered, fixed MACs ("td" in the second and third octets).
const SERVER_MAC: [u8; 6] = [0x02, 0x74, 0x64, 0x00, 0x00, 0x01];
const CLIENT_MAC: [u8; 6] = [0x02, 0x74, 0x64, 0x00, 0x00, 0x02];

/// A server namespace and a client namespace joined by a veth pair with `queues` RX and TX
/// queues on each end (`numrxqueues N numtxqueues N`):
///
/// ```text
///  <prefix>-srv-<pid>-<k>                      <prefix>-cli-<pid>-<k>
///  tandem0 02:74:64:00:00:01  <---- veth ---->  client0 02:74:64:00:00:02
///  fd00:<n>::1/64, fe80::74:64ff:fe00:1         fd00:<n>::2/64, fe80::74:64ff:fe00:2
/// ```
///
/// The client end has TX checksum offload off (see [`NetNs::set_tx_checksum`]), so the server
/// receives fully checksummed datagrams, as from a real NIC. Both ends use fixed MACs, link-local addresses derived from them (modified EUI-64, RFC 4291
/// §2.5.1; set explicitly, `addrgenmode none`) and `nodad` addresses, so everything is usable at
/// once, and permanent neighbour entries for each other's addresses. Dropping the lab deletes
/// both namespaces, which deletes the veth pair too.
#[derive(Debug)]
pub struct Lab {
    index: u16,
    queues: u32,
    client_ifindex: u32,
    // Dropped in this order: the client namespace, then the server's (with the veth pair).
    client: NetNs,
    server: NetNs,
}

impl Lab {
    /// Builds the topology; namespace names start with `prefix`. `queues` must be at least 1.
    pub fn new(prefix: &str, queues: u32) -> io::Result<Self> {
        static LABS: AtomicU16 = AtomicU16::new(1);
        if queues == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a veth needs at least one queue",
            ));
        }
        // `fd00:<index>::/64`; wraps after 65535 labs in one process, which never happens, and
        // skips 0 to keep the address readable.
        let index = LABS.fetch_add(1, Ordering::Relaxed).max(1);
        let server = NetNs::new(&format!("{prefix}-srv"))?;
        let client = NetNs::new(&format!("{prefix}-cli"))?;
        let q = queues.to_string();
        // Created inside the server namespace (so the names can never collide with another
        // test's), the peer moved straight into the client namespace.
        server.ip(&[
            "link",
            "add",
            SERVER_IF,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "type",
            "veth",
            "peer",
            "name",
            CLIENT_IF,
            "numtxqueues",
            &q,
            "numrxqueues",
            &q,
            "netns",
            client.name(),
        ])?;
        let mut lab = Self {
            index,
            queues,
            client_ifindex: 0,
            client,
            server,
        };
        for (ns, ifname, mac, global, link_local) in [
            (
                &lab.server,
                SERVER_IF,
                SERVER_MAC,
                lab.server_addr(),
                lab.server_link_local(),
            ),
            (
                &lab.client,
                CLIENT_IF,
                CLIENT_MAC,
                lab.client_addr(),
                lab.client_link_local(),
            ),
        ] {
            ns.ip(&["link", "set", "dev", ifname, "address", &mac_string(&mac)])?;
            ns.ip(&["link", "set", "dev", ifname, "addrgenmode", "none"])?;
            ns.ip(&["link", "set", "dev", ifname, "up"])?;
            for (addr, prefix_len) in [(global, 64), (link_local, 64)] {
                let cidr = format!("{addr}/{prefix_len}");
                ns.ip(&["addr", "add", &cidr, "dev", ifname, "nodad"])?;
            }
        }
        for (ns, ifname, peer_mac, peer_addrs) in [
            (
                &lab.server,
                SERVER_IF,
                CLIENT_MAC,
                [lab.client_addr(), lab.client_link_local()],
            ),
            (
                &lab.client,
                CLIENT_IF,
                SERVER_MAC,
                [lab.server_addr(), lab.server_link_local()],
            ),
        ] {
            let mac = mac_string(&peer_mac);
            for addr in peer_addrs {
                let addr = addr.to_string();
                ns.ip(&[
                    "neigh",
                    "add",
                    &addr,
                    "lladdr",
                    &mac,
                    "dev",
                    ifname,
                    "nud",
                    "permanent",
                ])?;
            }
        }
        // Frames must arrive fully checksummed, as from a real NIC: a veth with TX checksum
        // offload leaves only the pseudo-header sum in UDP datagrams it sends to its peer.
        lab.client.set_tx_checksum(CLIENT_IF, false)?;
        lab.client_ifindex = lab.client.ifindex(CLIENT_IF)?;
        Ok(lab)
    }

    /// The namespace the server runs in.
    pub fn server_ns(&self) -> &NetNs {
        &self.server
    }

    /// The namespace the clients run in.
    pub fn client_ns(&self) -> &NetNs {
        &self.client
    }

    /// The server's veth end (in [`Lab::server_ns`]).
    pub fn server_if(&self) -> &'static str {
        SERVER_IF
    }

    /// The client's veth end (in [`Lab::client_ns`]).
    pub fn client_if(&self) -> &'static str {
        CLIENT_IF
    }

    /// Interface index of [`Lab::client_if`] inside the client namespace (the scope id of
    /// link-local and multicast destinations sent from there).
    pub fn client_ifindex(&self) -> u32 {
        self.client_ifindex
    }

    /// RX (and TX) queues of each veth end.
    pub fn queues(&self) -> u32 {
        self.queues
    }

    /// The server end's MAC.
    pub fn server_mac(&self) -> [u8; 6] {
        SERVER_MAC
    }

    /// The client end's MAC.
    pub fn client_mac(&self) -> [u8; 6] {
        CLIENT_MAC
    }

    /// `fd00:<n>::1`, the server's global address (/64).
    pub fn server_addr(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, self.index, 0, 0, 0, 0, 0, 1)
    }

    /// `fd00:<n>::2`, the client's global address (/64).
    pub fn client_addr(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, self.index, 0, 0, 0, 0, 0, 2)
    }

    /// The server's link-local address (modified EUI-64 of its MAC).
    pub fn server_link_local(&self) -> Ipv6Addr {
        link_local(SERVER_MAC)
    }

    /// The client's link-local address (modified EUI-64 of its MAC).
    pub fn client_link_local(&self) -> Ipv6Addr {
        link_local(CLIENT_MAC)
    }
}

/// `fe80::/64` with the modified EUI-64 interface identifier of `mac` (RFC 4291 §2.5.1,
/// appendix A: insert ff:fe, flip the universal/local bit).
pub(crate) fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    let [a, b, c, d, e, f] = mac;
    Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        a ^ 0x02,
        b,
        c,
        0xff,
        0xfe,
        d,
        e,
        f,
    ])
}

/// `aa:bb:cc:dd:ee:ff`.
pub(crate) fn mac_string(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_of_fixed_mac_flips_universal_local_bit() {
        assert_eq!(
            link_local(SERVER_MAC),
            "fe80::74:64ff:fe00:1".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn mac_string_is_colon_separated_lowercase_hex() {
        assert_eq!(
            mac_string(&[0x02, 0xab, 0, 1, 2, 0xff]),
            "02:ab:00:01:02:ff"
        );
    }
}
