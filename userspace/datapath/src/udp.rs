//! The plain UDP-socket datapath of `tandem run`: one IPv6 UDP socket on port 547 for every
//! configured interface.
//!
//! * Bound to `[::]:547` (IPV6_V6ONLY, SO_REUSEADDR), it receives unicast requests (relay
//!   agents, RFC 8415 §19.1; clients told to use unicast) on any interface.
//! * It joins All_DHCP_Relay_Agents_and_Servers (`ff02::1:2`, RFC 8415 §7.1) on each
//!   configured interface, where direct clients send.
//! * IPV6_RECVPKTINFO (RFC 3542 §6) gives, per datagram, the receiving interface (which picks
//!   the subnet of a direct client) and the destination address (multicast or unicast).
//!   Datagrams from interfaces not in the configuration are dropped and counted.
//! * Replies go back to the source address and port of the request (RFC 8415 §18.3, §19.3):
//!   with IPV6_PKTINFO pinning the interface when the destination is link-local (a direct
//!   client), and the source address to the request's unicast destination when there was one
//!   (so a relay sees the reply come from the address it sent to).
//!
//! The control-message buffers are parsed and built as bytes with the Linux `cmsghdr` layout
//! (no pointer arithmetic); only the system calls are `unsafe`.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd as _, OwnedFd, RawFd};
use std::time::Duration;

use crate::iface::interface_index;

/// The DHCPv6 server port (RFC 8415 §7.2).
pub const SERVER_PORT: u16 = 547;
/// All_DHCP_Relay_Agents_and_Servers (RFC 8415 §7.1).
pub const ALL_DHCP_RELAY_AGENTS_AND_SERVERS: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 1, 2);

/// Receive buffer size asked for (bytes; the kernel doubles it for bookkeeping).
const RCVBUF: libc::c_int = 4 << 20;
/// `sizeof(struct cmsghdr)` rounded up to the control-message alignment (`CMSG_LEN(0)`).
const CMSG_HDR_LEN: usize = align(size_of::<libc::cmsghdr>());
/// `sizeof(struct in6_pktinfo)`: a 16-byte address and a 4-byte interface index.
const PKTINFO_LEN: usize = 20;
/// Room for the control messages we receive (only IPV6_PKTINFO is enabled; generous).
const RX_CONTROL_LEN: usize = 128;
/// `CMSG_SPACE(sizeof(struct in6_pktinfo))`.
const TX_CONTROL_LEN: usize = CMSG_HDR_LEN + align(PKTINFO_LEN);

/// Rounds up to the control-message alignment (`CMSG_ALIGN`: the size of `size_t`).
const fn align(len: usize) -> usize {
    let a = size_of::<usize>();
    (len + a - 1) & !(a - 1)
}

/// A control-message buffer aligned for `struct cmsghdr`.
#[repr(C, align(8))]
struct ControlBuf<const N: usize>([u8; N]);

/// Why the socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// A configured interface does not exist in this network namespace.
    #[error(
        "configured interface `{0}` does not exist in this network namespace (see `ip link \
         show`)"
    )]
    NoSuchInterface(String),
    /// A system call failed; the text says which.
    #[error("{0}: {1}")]
    Io(String, #[source] io::Error),
}

/// One received datagram (the payload is in the caller's buffer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram {
    /// Payload length (bytes at the start of the caller's buffer).
    pub len: usize,
    /// Source address and port (with the scope id of a link-local source).
    pub src: SocketAddrV6,
    /// Destination address (`ff02::1:2` or one of ours).
    pub dst: Ipv6Addr,
    /// Receiving interface index.
    pub ifindex: u32,
}

/// What [`ServerSocket::recv`] got.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// A datagram from a configured interface ([`ServerSocket::interface_name`] names it).
    Datagram(Datagram),
    /// A datagram dropped by the socket layer (unknown interface, no packet info, truncated);
    /// already counted.
    Dropped,
    /// Nothing more to read now.
    WouldBlock,
}

/// Datagrams the socket layer dropped, by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketCounters {
    /// Arrived on an interface that is not configured.
    pub unknown_interface: u64,
    /// Came without IPV6_PKTINFO (should not happen with IPV6_RECVPKTINFO set).
    pub no_pktinfo: u64,
    /// Larger than the receive buffer.
    pub truncated: u64,
}

/// The server's UDP socket (see the module docs).
#[derive(Debug)]
pub struct ServerSocket {
    fd: OwnedFd,
    interfaces: HashMap<u32, String>,
    counters: SocketCounters,
}

impl ServerSocket {
    /// Opens the socket on `port` (547 in production, anything in tests; 0 picks a free one)
    /// and joins `ff02::1:2` on each of `interfaces`.
    ///
    /// # Errors
    /// [`SocketError::NoSuchInterface`] naming the first interface that does not exist (checked
    /// before anything is bound), [`SocketError::Io`] if a system call fails.
    pub fn open(interfaces: &[String], port: u16) -> Result<Self, SocketError> {
        let mut by_index = HashMap::new();
        for name in interfaces {
            let index =
                interface_index(name).ok_or_else(|| SocketError::NoSuchInterface(name.clone()))?;
            by_index.insert(index, name.clone());
        }
        let io_err = |what: &str| SocketError::Io(what.to_owned(), io::Error::last_os_error());

        // SAFETY: plain socket(2); the result is checked and owned by OwnedFd below.
        let raw = unsafe {
            libc::socket(
                libc::AF_INET6,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                libc::IPPROTO_UDP,
            )
        };
        if raw < 0 {
            return Err(io_err("creating the UDP socket"));
        }
        // SAFETY: `raw` is a fresh descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let one: libc::c_int = 1;
        set_opt(&fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &one)
            .map_err(|e| SocketError::Io("setting IPV6_V6ONLY".into(), e))?;
        set_opt(&fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &one)
            .map_err(|e| SocketError::Io("setting SO_REUSEADDR".into(), e))?;
        set_opt(&fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &one)
            .map_err(|e| SocketError::Io("setting IPV6_RECVPKTINFO".into(), e))?;
        // A deep receive queue absorbs bursts (many clients after a link flap). Best effort:
        // SO_RCVBUFFORCE passes net.core.rmem_max but needs CAP_NET_ADMIN; SO_RCVBUF is capped.
        if set_opt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &RCVBUF).is_err() {
            let _ = set_opt(&fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &RCVBUF);
        }

        let addr = sockaddr_in6(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0));
        let addr_len = socklen(size_of::<libc::sockaddr_in6>());
        // SAFETY: `addr` is a valid sockaddr_in6 of the length passed, read during the call.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&raw const addr).cast::<libc::sockaddr>(),
                addr_len,
            )
        };
        if rc != 0 {
            return Err(io_err(&format!("binding UDP [::]:{port}")));
        }

        for (&index, name) in &by_index {
            let mreq = libc::ipv6_mreq {
                ipv6mr_multiaddr: libc::in6_addr {
                    s6_addr: ALL_DHCP_RELAY_AGENTS_AND_SERVERS.octets(),
                },
                ipv6mr_interface: index,
            };
            set_opt(&fd, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq).map_err(|e| {
                SocketError::Io(
                    format!("joining {ALL_DHCP_RELAY_AGENTS_AND_SERVERS} on {name}"),
                    e,
                )
            })?;
        }
        Ok(Self {
            fd,
            interfaces: by_index,
            counters: SocketCounters::default(),
        })
    }

    /// The local port (useful when opened on port 0).
    ///
    /// # Errors
    /// If getsockname fails.
    pub fn local_port(&self) -> io::Result<u16> {
        // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        let mut len = socklen(size_of::<libc::sockaddr_in6>());
        // SAFETY: `addr`/`len` are valid for writes and describe a sockaddr_in6-sized buffer.
        let rc = unsafe {
            libc::getsockname(
                self.fd.as_raw_fd(),
                (&raw mut addr).cast::<libc::sockaddr>(),
                &raw mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(u16::from_be(addr.sin6_port))
    }

    /// Datagrams dropped here so far.
    pub const fn counters(&self) -> &SocketCounters {
        &self.counters
    }

    /// Waits up to `timeout` for a datagram; `Ok(false)` on timeout or a signal.
    ///
    /// # Errors
    /// If poll fails otherwise.
    pub fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `pfd` is one valid pollfd, as the count says.
        let rc = unsafe { libc::poll(&raw mut pfd, 1, ms) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::EINTR) {
                Ok(false)
            } else {
                Err(e)
            };
        }
        Ok(rc > 0)
    }

    /// Reads one datagram into `buf` without blocking.
    ///
    /// # Errors
    /// If recvmsg fails (other than EAGAIN/EINTR).
    pub fn recv(&mut self, buf: &mut [u8]) -> io::Result<Received> {
        // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
        let mut src: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        let mut control = ControlBuf([0u8; RX_CONTROL_LEN]);
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: msghdr is plain old data; all-zero is a valid (empty) value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&raw mut src).cast();
        msg.msg_namelen = socklen(size_of::<libc::sockaddr_in6>());
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = RX_CONTROL_LEN;
        // SAFETY: every pointer in `msg` refers to a live buffer of the length given with it
        // (`src`, `buf` through `iov`, `control`), all exclusively borrowed for the call.
        let n = unsafe { libc::recvmsg(self.fd.as_raw_fd(), &raw mut msg, 0) };
        let Ok(n) = usize::try_from(n) else {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN | libc::EINTR) => Ok(Received::WouldBlock),
                _ => Err(e),
            };
        };
        let controllen = msg.msg_controllen.min(RX_CONTROL_LEN);
        let control = control.0.get(..controllen).unwrap_or_default();
        let Some((dst, ifindex)) = parse_pktinfo(control) else {
            self.counters.no_pktinfo += 1;
            return Ok(Received::Dropped);
        };
        if msg.msg_flags & libc::MSG_TRUNC != 0 {
            self.counters.truncated += 1;
            return Ok(Received::Dropped);
        }
        if !self.interfaces.contains_key(&ifindex) {
            self.counters.unknown_interface += 1;
            return Ok(Received::Dropped);
        }
        let src = SocketAddrV6::new(
            Ipv6Addr::from(src.sin6_addr.s6_addr),
            u16::from_be(src.sin6_port),
            src.sin6_flowinfo,
            src.sin6_scope_id,
        );
        let datagram = Datagram {
            len: n.min(buf.len()),
            src,
            dst,
            ifindex,
        };
        Ok(Received::Datagram(datagram))
    }

    /// The name of configured interface `ifindex` (every [`Received::Datagram`] has one).
    pub fn interface_name(&self, ifindex: u32) -> Option<&str> {
        self.interfaces.get(&ifindex).map(String::as_str)
    }

    /// Sends `payload` to `to` (the request's source), as a reply to a request that arrived on
    /// interface `ifindex` addressed to `request_dst` (see the module docs for the packet
    /// info set).
    ///
    /// # Errors
    /// If sendmsg fails or sends a partial datagram.
    pub fn send(
        &self,
        payload: &[u8],
        to: SocketAddrV6,
        request_dst: Ipv6Addr,
        ifindex: u32,
    ) -> io::Result<()> {
        let (from, out_ifindex) = reply_pktinfo(*to.ip(), request_dst, ifindex);
        let mut control = ControlBuf([0u8; TX_CONTROL_LEN]);
        build_pktinfo(&mut control.0, from, out_ifindex);
        let mut dest = sockaddr_in6(to);
        if is_link_local(*to.ip()) && dest.sin6_scope_id == 0 {
            dest.sin6_scope_id = ifindex;
        }
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr().cast_mut().cast(),
            iov_len: payload.len(),
        };
        // SAFETY: msghdr is plain old data; all-zero is a valid (empty) value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = (&raw mut dest).cast();
        msg.msg_namelen = socklen(size_of::<libc::sockaddr_in6>());
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = TX_CONTROL_LEN;
        // SAFETY: every pointer in `msg` refers to a live buffer of the length given with it;
        // sendmsg only reads them (the payload is not written through the `*mut` of iov).
        let n = unsafe { libc::sendmsg(self.fd.as_raw_fd(), &raw const msg, 0) };
        match usize::try_from(n) {
            Ok(n) if n == payload.len() => Ok(()),
            Ok(n) => Err(io::Error::other(format!(
                "sent {n} of {} bytes",
                payload.len()
            ))),
            Err(_) => Err(io::Error::last_os_error()),
        }
    }
}

/// The socket's descriptor, for an event loop (the socket is non-blocking).
impl AsFd for ServerSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for ServerSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// `true` for fe80::/10.
const fn is_link_local(addr: Ipv6Addr) -> bool {
    addr.segments()[0] & 0xffc0 == 0xfe80
}

/// The packet info of a reply to `to` for a request sent to `request_dst` on `ifindex`:
/// `(source address, outgoing interface)`. The source is the request's destination when it was
/// unicast (else unspecified: the kernel picks one on the outgoing link); the interface is
/// pinned only for a link-local destination (a global one, e.g. a relay agent, is routed).
pub fn reply_pktinfo(to: Ipv6Addr, request_dst: Ipv6Addr, ifindex: u32) -> (Ipv6Addr, u32) {
    let from = if request_dst.is_multicast() {
        Ipv6Addr::UNSPECIFIED
    } else {
        request_dst
    };
    let out = if is_link_local(to) { ifindex } else { 0 };
    (from, out)
}

/// Finds the IPV6_PKTINFO control message in a received control buffer and returns its
/// `(address, interface index)`. The buffer has the Linux layout: `cmsghdr { size_t len; int
/// level; int type; }` then the data, each message padded to `size_t` alignment.
pub fn parse_pktinfo(mut control: &[u8]) -> Option<(Ipv6Addr, u32)> {
    const LEN: usize = size_of::<usize>();
    const INT: usize = size_of::<libc::c_int>();
    while control.len() >= CMSG_HDR_LEN {
        let len = usize::from_ne_bytes(control.get(..LEN)?.try_into().ok()?);
        let level = libc::c_int::from_ne_bytes(control.get(LEN..LEN + INT)?.try_into().ok()?);
        let kind =
            libc::c_int::from_ne_bytes(control.get(LEN + INT..LEN + 2 * INT)?.try_into().ok()?);
        if len < CMSG_HDR_LEN {
            return None;
        }
        let data = control.get(CMSG_HDR_LEN..len)?;
        if level == libc::IPPROTO_IPV6 && kind == libc::IPV6_PKTINFO {
            let addr: [u8; 16] = data.get(..16)?.try_into().ok()?;
            let index = u32::from_ne_bytes(data.get(16..PKTINFO_LEN)?.try_into().ok()?);
            return Some((Ipv6Addr::from(addr), index));
        }
        control = control.get(align(len)..).unwrap_or_default();
    }
    None
}

/// Writes one IPV6_PKTINFO control message (`CMSG_SPACE(sizeof(in6_pktinfo))` bytes) into `buf`.
fn build_pktinfo(buf: &mut [u8; TX_CONTROL_LEN], addr: Ipv6Addr, ifindex: u32) {
    const LEN: usize = size_of::<usize>();
    const INT: usize = size_of::<libc::c_int>();
    buf.fill(0);
    let fields: [(usize, &[u8]); 5] = [
        (0, &(CMSG_HDR_LEN + PKTINFO_LEN).to_ne_bytes()),
        (LEN, &libc::IPPROTO_IPV6.to_ne_bytes()),
        (LEN + INT, &libc::IPV6_PKTINFO.to_ne_bytes()),
        (CMSG_HDR_LEN, &addr.octets()),
        (CMSG_HDR_LEN + 16, &ifindex.to_ne_bytes()),
    ];
    for (at, bytes) in fields {
        if let Some(dst) = buf.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
}

fn sockaddr_in6(addr: SocketAddrV6) -> libc::sockaddr_in6 {
    // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    sa.sin6_family = libc::sa_family_t::try_from(libc::AF_INET6).unwrap_or_default();
    sa.sin6_port = addr.port().to_be();
    sa.sin6_flowinfo = addr.flowinfo();
    sa.sin6_addr = libc::in6_addr {
        s6_addr: addr.ip().octets(),
    };
    sa.sin6_scope_id = addr.scope_id();
    sa
}

fn socklen(n: usize) -> libc::socklen_t {
    libc::socklen_t::try_from(n).unwrap_or(libc::socklen_t::MAX)
}

/// setsockopt with a typed value.
fn set_opt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live T of the size passed, read during the call.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            std::ptr::from_ref(value).cast(),
            socklen(size_of::<T>()),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;

    use super::*;

    #[test]
    fn control_layout_matches_libc_macros() {
        // SAFETY: CMSG_LEN/CMSG_SPACE are pure arithmetic.
        let (len0, space) = unsafe { (libc::CMSG_LEN(0), libc::CMSG_SPACE(20)) };
        assert_eq!(CMSG_HDR_LEN, len0 as usize);
        assert_eq!(TX_CONTROL_LEN, space as usize);
        assert_eq!(PKTINFO_LEN, size_of::<libc::in6_pktinfo>());
    }

    #[test]
    fn parse_pktinfo_built_message_roundtrips() {
        let mut buf = [0u8; TX_CONTROL_LEN];
        let addr: Ipv6Addr = "fe80::1:2".parse().unwrap();
        build_pktinfo(&mut buf, addr, 7);
        assert_eq!(parse_pktinfo(&buf), Some((addr, 7)));
    }

    #[test]
    fn parse_pktinfo_skips_other_messages() {
        // An IPV6_HOPLIMIT message (int data) first, then the packet info.
        let mut control = vec![0u8; CMSG_HDR_LEN + align(4)];
        control[..size_of::<usize>()].copy_from_slice(&(CMSG_HDR_LEN + 4).to_ne_bytes());
        control[size_of::<usize>()..size_of::<usize>() + 4]
            .copy_from_slice(&libc::IPPROTO_IPV6.to_ne_bytes());
        control[size_of::<usize>() + 4..size_of::<usize>() + 8]
            .copy_from_slice(&libc::IPV6_HOPLIMIT.to_ne_bytes());
        let mut info = [0u8; TX_CONTROL_LEN];
        build_pktinfo(&mut info, ALL_DHCP_RELAY_AGENTS_AND_SERVERS, 3);
        control.extend_from_slice(&info);
        assert_eq!(
            parse_pktinfo(&control),
            Some((ALL_DHCP_RELAY_AGENTS_AND_SERVERS, 3))
        );
    }

    #[test]
    fn parse_pktinfo_malformed_rejected() {
        assert_eq!(parse_pktinfo(&[]), None);
        let mut buf = [0u8; TX_CONTROL_LEN];
        build_pktinfo(&mut buf, Ipv6Addr::LOCALHOST, 1);
        // Truncated data, a length beyond the buffer, and a length below the header.
        assert_eq!(parse_pktinfo(&buf[..CMSG_HDR_LEN + 10]), None);
        let mut long = buf;
        long[..size_of::<usize>()].copy_from_slice(&1000usize.to_ne_bytes());
        assert_eq!(parse_pktinfo(&long), None);
        let mut short = buf;
        short[..size_of::<usize>()].copy_from_slice(&3usize.to_ne_bytes());
        assert_eq!(parse_pktinfo(&short), None);
    }

    #[test]
    fn reply_pktinfo_pins_link_local_only() {
        let ll: Ipv6Addr = "fe80::2".parse().unwrap();
        let relay: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let ours: Ipv6Addr = "2001:db8::547".parse().unwrap();
        assert_eq!(
            reply_pktinfo(ll, ALL_DHCP_RELAY_AGENTS_AND_SERVERS, 4),
            (Ipv6Addr::UNSPECIFIED, 4)
        );
        assert_eq!(reply_pktinfo(relay, ours, 4), (ours, 0));
    }

    #[test]
    fn open_unknown_interface_named_in_error() {
        let err = ServerSocket::open(&["nosuch0if".to_owned()], 0).unwrap_err();
        assert!(matches!(&err, SocketError::NoSuchInterface(n) if n == "nosuch0if"));
        assert!(err.to_string().contains("`nosuch0if`"), "{err}");
    }

    #[test]
    fn recv_on_loopback_reports_interface_and_destination_then_replies() {
        let mut server = ServerSocket::open(&["lo".to_owned()], 0).unwrap();
        let port = server.local_port().unwrap();
        let client = UdpSocket::bind("[::1]:0").unwrap();
        client.send_to(b"hello", ("::1", port)).unwrap();
        assert!(server.wait_readable(Duration::from_secs(2)).unwrap());
        let mut buf = [0u8; 64];
        let lo = interface_index("lo").unwrap();
        let Received::Datagram(datagram) = server.recv(&mut buf).unwrap() else {
            panic!("no datagram")
        };
        assert_eq!(server.interface_name(datagram.ifindex), Some("lo"));
        assert_eq!(datagram.ifindex, lo);
        assert_eq!(datagram.dst, Ipv6Addr::LOCALHOST);
        assert_eq!(&buf[..datagram.len], b"hello");
        assert_eq!(
            datagram.src.port(),
            client.local_addr().unwrap().port(),
            "{datagram:?}"
        );
        assert_eq!(server.recv(&mut buf).unwrap(), Received::WouldBlock);

        server
            .send(b"reply", datagram.src, datagram.dst, datagram.ifindex)
            .unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut rbuf = [0u8; 16];
        let (n, from) = client.recv_from(&mut rbuf).unwrap();
        assert_eq!(&rbuf[..n], b"reply");
        assert_eq!(from.port(), port);
    }

    #[test]
    fn recv_from_unconfigured_interface_dropped_and_counted() {
        let mut server = ServerSocket::open(&[], 0).unwrap();
        let port = server.local_port().unwrap();
        let client = UdpSocket::bind("[::1]:0").unwrap();
        client.send_to(b"x", ("::1", port)).unwrap();
        assert!(server.wait_readable(Duration::from_secs(2)).unwrap());
        let mut buf = [0u8; 64];
        assert_eq!(server.recv(&mut buf).unwrap(), Received::Dropped);
        assert_eq!(server.counters().unknown_interface, 1);
    }

    #[test]
    fn recv_oversized_datagram_dropped_as_truncated() {
        let mut server = ServerSocket::open(&["lo".to_owned()], 0).unwrap();
        let port = server.local_port().unwrap();
        let client = UdpSocket::bind("[::1]:0").unwrap();
        client.send_to(&[0u8; 100], ("::1", port)).unwrap();
        assert!(server.wait_readable(Duration::from_secs(2)).unwrap());
        let mut buf = [0u8; 10];
        assert_eq!(server.recv(&mut buf).unwrap(), Received::Dropped);
        assert_eq!(server.counters().truncated, 1);
    }
}
