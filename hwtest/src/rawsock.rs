//! `AF_PACKET` raw sockets bound to one interface of a namespace: send whole Ethernet frames
//! (VLAN tags and all) and receive them back as they were on the wire.
//!
//! On receive, Linux moves the outer 802.1Q / 802.1ad tag of a frame out of the packet data into
//! skb metadata before packet sockets see it: `__netif_receive_skb_core` calls
//! `skb_vlan_untag` in software for any frame whose ethertype is 0x8100 or 0x88a8, so turning
//! off a veth's rx-vlan-offload (`ethtool -K IF rxvlan off`) would not bring the tag back
//! (docs/toolchain.md §7, "VLAN"). This socket therefore asks for `PACKET_AUXDATA` and puts
//! the stripped tag back after the MAC addresses: [`RawFrame::bytes`] is the frame as sent,
//! and [`RawFrame::stripped_tag`] says which tag came from the metadata. An inner (QinQ) tag is
//! never stripped; it stays in the data.

use std::io;
use std::mem;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::time::{Duration, Instant};

use crate::client::retry_eintr;
use crate::netns::NetNs;

/// Largest frame received: anything longer is reported as an error, not cut silently.
const MAX_FRAME: usize = 65_536;
/// Offset of the ethertype / first TPID in an Ethernet header (after the two MACs).
const MACS_LEN: usize = 12;

/// A VLAN tag the kernel moved from the frame into metadata (`struct tpacket_auxdata`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StrippedTag {
    /// Tag protocol identifier, e.g. 0x8100 or 0x88a8.
    pub tpid: u16,
    /// Tag control information: PCP (3 bits), DEI (1 bit), VID (12 bits).
    pub tci: u16,
}

/// A frame received by [`RawSocket::recv`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFrame {
    /// The whole frame as it was on the wire: a tag the kernel stripped is put back after
    /// the MAC addresses.
    pub bytes: Vec<u8>,
    /// The tag that was put back, if the kernel had stripped one.
    pub stripped_tag: Option<StrippedTag>,
    /// `sll_pkttype`: `PACKET_HOST` (0), `PACKET_BROADCAST` (1), `PACKET_MULTICAST` (2),
    /// `PACKET_OTHERHOST` (3). Outgoing frames (4) are never returned.
    pub pkt_type: u8,
}

/// An `AF_PACKET`/`SOCK_RAW` socket for every protocol (`ETH_P_ALL`), bound to one interface
/// of a namespace (it stays in that namespace), with `PACKET_AUXDATA` on and our own outgoing
/// frames ignored. Closed on drop.
#[derive(Debug)]
pub struct RawSocket {
    fd: OwnedFd,
    iface: String,
    ifindex: u32,
}

impl RawSocket {
    /// Opens the socket inside `ns` and binds it to `iface` there.
    pub fn open(ns: &NetNs, iface: &str) -> io::Result<Self> {
        let ifindex = ns.ifindex(iface)?;
        let index = i32::try_from(ifindex).map_err(io::Error::other)?;
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        let fd = ns.run(|| {
            // SAFETY: plain syscall with constant arguments; a non-negative result is a new
            // descriptor that nothing else owns.
            let raw = unsafe {
                libc::socket(
                    libc::AF_PACKET,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    i32::from(protocol),
                )
            };
            if raw < 0 {
                return Err(os_error("socket(AF_PACKET, SOCK_RAW)"));
            }
            // SAFETY: `raw` is a fresh descriptor owned by nobody else; OwnedFd closes it.
            Ok(unsafe { OwnedFd::from_raw_fd(raw) })
        })?;
        let sock = Self {
            fd,
            iface: iface.to_owned(),
            ifindex,
        };
        sock.set_option(libc::PACKET_AUXDATA, "PACKET_AUXDATA")?;
        sock.set_option(libc::PACKET_IGNORE_OUTGOING, "PACKET_IGNORE_OUTGOING")?;
        // SAFETY: `sockaddr_ll` is plain old data for which all-zero bytes are valid.
        let mut addr: libc::sockaddr_ll = unsafe { mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = protocol;
        addr.sll_ifindex = index;
        // SAFETY: `addr` is a valid `sockaddr_ll` on this stack frame and the length passed is
        // its size; bind only reads it.
        let rc = unsafe {
            libc::bind(
                sock.fd.as_raw_fd(),
                (&raw const addr).cast(),
                socklen::<libc::sockaddr_ll>(),
            )
        };
        if rc != 0 {
            return Err(os_error(&format!("binding a packet socket to {iface}")));
        }
        Ok(sock)
    }

    /// The interface the socket is bound to.
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// Its index in the socket's namespace.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends `frame` (a whole Ethernet frame, without FCS) out of the interface as it is.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let sent = retry_eintr(|| {
            // SAFETY: `frame` is a valid readable buffer of `frame.len()` bytes for the whole
            // call; a bound packet socket needs no destination address.
            let n =
                unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
            usize::try_from(n).map_err(|_| os_error(&format!("sending a frame on {}", self.iface)))
        })?;
        if sent == frame.len() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "sent {sent} of {} bytes on {}",
                frame.len(),
                self.iface
            )))
        }
    }

    /// The next incoming frame, or `None` if none came within `timeout`.
    pub fn recv(&self, timeout: Duration) -> io::Result<Option<RawFrame>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if !self.wait_readable(left)? {
                return Ok(None);
            }
            if let Some(frame) = self.recv_one()? {
                return Ok(Some(frame));
            }
        }
    }

    /// Receives frames until `pick` returns `Some` for one (that value is returned) or
    /// `timeout` has passed (`None`). Frames `pick` rejects are dropped.
    pub fn recv_until<T>(
        &self,
        timeout: Duration,
        mut pick: impl FnMut(&RawFrame) -> Option<T>,
    ) -> io::Result<Option<T>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(frame) = self.recv(left)? else {
                return Ok(None);
            };
            if let Some(found) = pick(&frame) {
                return Ok(Some(found));
            }
        }
    }

    /// Waits up to `timeout` for the socket to become readable.
    fn wait_readable(&self, timeout: Duration) -> io::Result<bool> {
        let ms = i32::try_from(timeout.as_millis().max(1)).unwrap_or(i32::MAX);
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        let n = retry_eintr(|| {
            // SAFETY: `pfd` is one valid `pollfd` on this stack frame for the whole call.
            let n = unsafe { libc::poll(&raw mut pfd, 1, ms) };
            if n < 0 {
                Err(os_error("poll on a packet socket"))
            } else {
                Ok(n)
            }
        })?;
        Ok(n > 0)
    }

    /// Reads one datagram without blocking; `None` for an outgoing frame (or nothing ready).
    fn recv_one(&self) -> io::Result<Option<RawFrame>> {
        let mut buf = vec![0u8; MAX_FRAME];
        // u64s keep the control buffer aligned for `cmsghdr`; room for several messages.
        let mut control = [0u64; 16];
        // SAFETY: `sockaddr_ll` is plain old data for which all-zero bytes are valid.
        let mut from: libc::sockaddr_ll = unsafe { mem::zeroed() };
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: `msghdr` is plain old data for which all-zero bytes are valid.
        let mut msg: libc::msghdr = unsafe { mem::zeroed() };
        msg.msg_name = (&raw mut from).cast();
        msg.msg_namelen = socklen::<libc::sockaddr_ll>();
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = mem::size_of_val(&control);
        let n = retry_eintr(|| {
            // SAFETY: every pointer in `msg` (name, iovec → `buf`, control) points to a live
            // buffer of the stated length on this stack frame for the whole call.
            let n = unsafe {
                libc::recvmsg(
                    self.fd.as_raw_fd(),
                    &raw mut msg,
                    libc::MSG_DONTWAIT | libc::MSG_TRUNC,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::WouldBlock {
                    return Ok(None);
                }
                return Err(io::Error::new(
                    e.kind(),
                    format!("receiving on {}: {e}", self.iface),
                ));
            }
            Ok(usize::try_from(n).ok())
        })?;
        let Some(len) = n else { return Ok(None) };
        if len > buf.len() {
            return Err(io::Error::other(format!(
                "a {len}-byte frame on {} exceeds the {MAX_FRAME}-byte buffer",
                self.iface
            )));
        }
        if from.sll_pkttype == libc::PACKET_OUTGOING {
            return Ok(None);
        }
        buf.truncate(len);
        let stripped_tag = auxdata_tag(&msg);
        if let Some(tag) = stripped_tag {
            let at = MACS_LEN.min(buf.len());
            let mut word = [0u8; 4];
            word[..2].copy_from_slice(&tag.tpid.to_be_bytes());
            word[2..].copy_from_slice(&tag.tci.to_be_bytes());
            buf.splice(at..at, word);
        }
        Ok(Some(RawFrame {
            bytes: buf,
            stripped_tag,
            pkt_type: from.sll_pkttype,
        }))
    }

    /// Sets a `SOL_PACKET` boolean option to 1.
    fn set_option(&self, option: libc::c_int, name: &str) -> io::Result<()> {
        let one: libc::c_int = 1;
        // SAFETY: `one` is a live `c_int` and the length passed is its size; setsockopt only
        // reads it.
        let rc = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                option,
                (&raw const one).cast(),
                socklen::<libc::c_int>(),
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(os_error(&format!("setsockopt({name}) on a packet socket")))
        }
    }
}

/// The VLAN tag in the `PACKET_AUXDATA` control message of `msg`, if the kernel stripped one.
/// Without `TP_STATUS_VLAN_TPID_VALID` (kernels before 3.14) the TPID is taken as 0x8100.
fn auxdata_tag(msg: &libc::msghdr) -> Option<StrippedTag> {
    // SAFETY: `msg` was filled by a successful recvmsg; CMSG_FIRSTHDR only reads its control
    // fields and returns null or a pointer inside the control buffer.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: a non-null `cmsg` from CMSG_FIRSTHDR/CMSG_NXTHDR points to a complete
        // `cmsghdr` inside the control buffer, which is aligned for it.
        let header = unsafe { &*cmsg };
        if header.cmsg_level == libc::SOL_PACKET && header.cmsg_type == libc::PACKET_AUXDATA {
            // SAFETY: the kernel wrote a whole `tpacket_auxdata` as this message's data;
            // read_unaligned makes no alignment assumption about CMSG_DATA.
            let aux = unsafe {
                libc::CMSG_DATA(cmsg)
                    .cast::<libc::tpacket_auxdata>()
                    .read_unaligned()
            };
            if aux.tp_status & libc::TP_STATUS_VLAN_VALID == 0 {
                return None;
            }
            let tpid = if aux.tp_status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
                aux.tp_vlan_tpid
            } else {
                0x8100
            };
            return Some(StrippedTag {
                tpid,
                tci: aux.tp_vlan_tci,
            });
        }
        // SAFETY: `msg` and `cmsg` are as above; CMSG_NXTHDR returns null past the end.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    None
}

fn socklen<T>() -> libc::socklen_t {
    libc::socklen_t::try_from(mem::size_of::<T>()).unwrap_or(libc::socklen_t::MAX)
}

fn os_error(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socklen_of_sockaddr_ll_is_twenty() {
        assert_eq!(socklen::<libc::sockaddr_ll>(), 20);
    }

    #[test]
    fn auxdata_tag_without_control_messages_is_none() {
        // SAFETY: `msghdr` is plain old data for which all-zero bytes are valid.
        let msg: libc::msghdr = unsafe { mem::zeroed() };
        assert_eq!(auxdata_tag(&msg), None);
    }
}
