//! Named network namespaces (`ip netns`), unique per process and test, deleted on drop.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd as _;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::process::ip;

/// A network namespace this process created: `/run/netns/<prefix>-<pid>-<counter>`, with `lo`
/// up. Deleted on drop (a veth end inside goes with it, and so does its peer). Only ever
/// deletes the namespace it created: other work on the machine may have its own.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates a namespace named `<prefix>-<pid>-<counter>` and brings its loopback up.
    pub fn new(prefix: &str) -> io::Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{prefix}-{}-{n}", std::process::id());
        ip(&["netns", "add", &name])?;
        // From here on, Drop deletes it even if the next step fails.
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// The namespace's name (as `ip netns` knows it).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n <name> <args>`.
    pub fn ip(&self, args: &[&str]) -> io::Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        ip(&all)
    }

    /// Runs `f` on a scoped thread that has joined this namespace with `setns(2)`. Only that
    /// thread moves; sockets it creates stay in this namespace after they are handed back.
    /// A panic in `f` is resumed on the caller's thread.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
        let ns = File::open(format!("/run/netns/{}", self.name))?;
        std::thread::scope(|s| {
            let handle = s.spawn(|| {
                // SAFETY: `ns` is an open namespace file descriptor that outlives the call, and
                // CLONE_NEWNET only moves the calling thread (allowed in multi-threaded
                // processes, unlike user or mount namespaces).
                let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
                if rc != 0 {
                    return Err(io::Error::last_os_error());
                }
                f()
            });
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// The index of interface `name` inside this namespace.
    pub fn ifindex(&self, name: &str) -> io::Result<u32> {
        let c_name = std::ffi::CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
        self.run(|| {
            // SAFETY: `c_name` is a valid NUL-terminated string that lives across the call.
            let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
            if index == 0 {
                Err(io::Error::new(
                    io::Error::last_os_error().kind(),
                    format!("no interface {name} in {}", self.name),
                ))
            } else {
                Ok(index)
            }
        })
    }

    /// Turns TX checksum offload of interface `name` on or off (what `ethtool -K <name> tx
    /// off` does, through the legacy `ETHTOOL_STXCSUM` ioctl, so no `ethtool` binary is
    /// needed). With offload on, a veth hands its peer UDP datagrams whose checksum holds only
    /// the pseudo-header sum (CHECKSUM_PARTIAL); XDP and AF_XDP see those raw bytes, so a
    /// parser that verifies checksums (as a NIC-facing one must) rejects them.
    pub fn set_tx_checksum(&self, name: &str, on: bool) -> io::Result<()> {
        /// `ETHTOOL_STXCSUM` (linux/ethtool.h).
        const ETHTOOL_STXCSUM: u32 = 0x17;
        /// `struct ethtool_value` (linux/ethtool.h).
        #[repr(C)]
        struct EthtoolValue {
            cmd: u32,
            data: u32,
        }
        let bytes = name.as_bytes();
        if bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad interface name",
            ));
        }
        self.run(|| {
            // Any socket of this namespace will do as the ioctl's handle.
            let sock = std::net::UdpSocket::bind("[::]:0")?;
            let mut value = EthtoolValue {
                cmd: ETHTOOL_STXCSUM,
                data: u32::from(on),
            };
            // SAFETY: `ifreq` is plain old data for which all-zero bytes are valid.
            let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
            for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
                *dst = src as libc::c_char;
            }
            req.ifr_ifru.ifru_data = (&raw mut value).cast();
            // SAFETY: SIOCETHTOOL reads `req` (NUL-terminated name, checked above) and the
            // `ethtool_value` it points to; both live on this stack frame across the call.
            let rc = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCETHTOOL, &raw mut req) };
            if rc == 0 {
                Ok(())
            } else {
                let e = io::Error::last_os_error();
                Err(io::Error::new(
                    e.kind(),
                    format!("ETHTOOL_STXCSUM on {name}: {e}"),
                ))
            }
        })
    }

    /// Writes a sysctl of this namespace (`path` below `/proc/sys/`, e.g.
    /// `net/ipv6/conf/default/accept_dad`), from a thread inside it.
    pub fn sysctl(&self, path: &str, value: &str) -> io::Result<()> {
        self.run(|| std::fs::write(format!("/proc/sys/{path}"), value))
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = ip(&["netns", "del", &self.name]) {
            use std::io::Write as _;
            let _ = writeln!(io::stderr().lock(), "warning: {e}");
        }
    }
}
