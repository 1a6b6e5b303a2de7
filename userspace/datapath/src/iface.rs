//! Interface lookups: the index of an interface (`if_nametoindex`), its hardware address
//! (`SIOCGIFHWADDR`) and the default source address of replies sent on it
//! (`/proc/net/if_inet6`).
//!
//! Every lookup sees the network namespace of the calling thread (`/proc/net` shows the
//! caller's namespace too), so call them from a process that runs where the interface is.

use std::ffi::CString;
use std::fs;
use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};

/// Why an interface lookup failed. The messages say what to check.
#[derive(Debug, thiserror::Error)]
pub enum IfaceError {
    /// The name cannot be an interface name (`IFNAMSIZ` or a NUL byte).
    #[error("interface name {name:?} {why}")]
    InvalidName {
        /// The name asked for.
        name: String,
        /// What is wrong with it.
        why: String,
    },
    /// No interface of that name in this network namespace.
    #[error(
        "no interface named `{0}` in this network namespace (see `ip link show`; inside a \
         namespace run under `ip netns exec NS ...`)"
    )]
    NoSuchInterface(String),
    /// A system call or a `/proc` read failed.
    #[error("{op}: {source}")]
    Io {
        /// What we were doing, e.g. `reading the MAC address of eth0`.
        op: String,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The interface has no Ethernet hardware address.
    #[error("{iface} is not an Ethernet interface (hardware type {hw_type})")]
    NotEthernet {
        /// The interface.
        iface: String,
        /// `sa_family` of its hardware address (`ARPHRD_*`).
        hw_type: u16,
    },
    /// The interface has no IPv6 address that replies could come from.
    #[error("{0} has no usable IPv6 address: add one (`ip addr add ... dev {0}`)")]
    NoAddress(String),
}

/// The index of interface `name` (`if_nametoindex`), `None` if there is no such interface in
/// this network namespace or the name cannot be one.
pub fn interface_index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call; if_nametoindex only
    // reads it.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (index != 0).then_some(index)
}

/// The hardware address of Ethernet interface `iface` (`SIOCGIFHWADDR`, so it works in any
/// network namespace whatever sysfs shows).
///
/// # Errors
/// An invalid name, no such interface, a failed ioctl, or a non-Ethernet interface.
pub fn interface_mac(iface: &str) -> Result<[u8; 6], IfaceError> {
    let invalid = |why: String| IfaceError::InvalidName {
        name: iface.to_owned(),
        why,
    };
    let name = CString::new(iface).map_err(|_| invalid("contains a NUL byte".to_owned()))?;
    let bytes = name.as_bytes_with_nul();
    if bytes.len() > libc::IFNAMSIZ {
        return Err(invalid(format!(
            "is longer than {} bytes",
            libc::IFNAMSIZ - 1
        )));
    }
    if interface_index(iface).is_none() {
        return Err(IfaceError::NoSuchInterface(iface.to_owned()));
    }
    // SAFETY: a plain datagram socket; the result is checked below and closed by OwnedFd.
    let fd = unsafe { libc::socket(libc::AF_INET6, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(IfaceError::Io {
            op: "creating a socket to query the MAC address".to_owned(),
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = libc::c_char::from_ne_bytes([*src]);
    }
    // SAFETY: SIOCGIFHWADDR reads ifr_name and writes the ifr_hwaddr member of `req`, which is
    // a valid, exclusively borrowed ifreq for the duration of the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, &raw mut req) };
    if rc != 0 {
        return Err(IfaceError::Io {
            op: format!("reading the MAC address of {iface}"),
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: a successful SIOCGIFHWADDR filled the `ifru_hwaddr` member of the union.
    let hw = unsafe { req.ifr_ifru.ifru_hwaddr };
    if hw.sa_family != libc::ARPHRD_ETHER {
        return Err(IfaceError::NotEthernet {
            iface: iface.to_owned(),
            hw_type: hw.sa_family,
        });
    }
    let mut mac = [0u8; 6];
    for (dst, src) in mac.iter_mut().zip(hw.sa_data) {
        *dst = src.to_ne_bytes()[0];
    }
    Ok(mac)
}

/// The first global address of `iface`, else its link-local address, from
/// `/proc/net/if_inet6`: the source address of replies to multicast requests. Tentative and
/// DAD-failed addresses are skipped.
///
/// # Errors
/// `/proc/net/if_inet6` is unreadable, or the interface has no usable address.
pub fn server_addr(iface: &str) -> Result<Ipv6Addr, IfaceError> {
    let table = fs::read_to_string("/proc/net/if_inet6").map_err(|source| IfaceError::Io {
        op: "reading /proc/net/if_inet6".to_owned(),
        source,
    })?;
    pick_server_addr(&table, iface).ok_or_else(|| IfaceError::NoAddress(iface.to_owned()))
}

/// Picks the address as [`server_addr`] does from the text of `/proc/net/if_inet6`
/// (`<32 hex addr> <ifindex> <plen> <scope> <flags> <name>` per line).
pub fn pick_server_addr(table: &str, iface: &str) -> Option<Ipv6Addr> {
    const SCOPE_GLOBAL: u8 = 0x00;
    const SCOPE_LINK: u8 = 0x20;
    const IFA_F_DADFAILED: u32 = 0x08;
    const IFA_F_TENTATIVE: u32 = 0x40;
    let mut link_local = None;
    for line in table.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [addr, _index, _plen, scope, flags, name] = fields.as_slice() else {
            continue;
        };
        if *name != iface {
            continue;
        }
        let (Ok(addr), Ok(scope), Ok(flags)) = (
            u128::from_str_radix(addr, 16),
            u8::from_str_radix(scope, 16),
            u32::from_str_radix(flags, 16),
        ) else {
            continue;
        };
        if flags & (IFA_F_DADFAILED | IFA_F_TENTATIVE) != 0 {
            continue;
        }
        let addr = Ipv6Addr::from(addr);
        match scope {
            SCOPE_GLOBAL => return Some(addr),
            SCOPE_LINK if link_local.is_none() => link_local = Some(addr),
            _ => {}
        }
    }
    link_local
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_index_loopback_found_unknown_not() {
        assert!(interface_index("lo").is_some_and(|i| i > 0));
        assert_eq!(interface_index("tandem-nope0"), None);
        assert_eq!(interface_index("a\0b"), None);
    }

    #[test]
    fn interface_mac_errors_explained() {
        let err = interface_mac("tandem-nope0").unwrap_err().to_string();
        assert!(
            err.starts_with("no interface named `tandem-nope0`"),
            "{err}"
        );
        let err = interface_mac("a\0b").unwrap_err().to_string();
        assert_eq!(err, "interface name \"a\\0b\" contains a NUL byte");
        let err = interface_mac(&"x".repeat(20)).unwrap_err().to_string();
        assert!(err.ends_with("is longer than 15 bytes"), "{err}");
        // Loopback has a hardware address of type ARPHRD_LOOPBACK (772).
        let err = interface_mac("lo").unwrap_err().to_string();
        assert_eq!(err, "lo is not an Ethernet interface (hardware type 772)");
    }

    #[test]
    fn server_addr_global_preferred_over_link_local() {
        let table = "\
fe800000000000000000000000000001 02 40 20 80 veth0
fd0000dc000000000000000000000009 03 40 00 80 other
fd0000dc000000000000000000000002 02 40 00 c0 veth0
fd0000dc000000000000000000000001 02 40 00 80 veth0
";
        assert_eq!(
            pick_server_addr(table, "veth0"),
            Some("fd00:dc::1".parse().unwrap())
        );
        let only_ll = "fe800000000000000000000000000001 02 40 20 80 veth0\n";
        assert_eq!(
            pick_server_addr(only_ll, "veth0"),
            Some("fe80::1".parse().unwrap())
        );
        assert_eq!(pick_server_addr(only_ll, "veth1"), None);
    }
}
