//! Non-DHCP traffic: a UDP echo server and a TCP listener in one namespace, and the client
//! calls that exercise them from another. Used to show that the XDP program passes everything
//! but DHCPv6 to the kernel.

use std::io::{self, Read as _, Write as _};
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::client::retry_eintr;
use crate::netns::NetNs;

/// How often the server threads look at their stop flag.
const POLL: Duration = Duration::from_millis(50);
/// What the TCP listener writes to every connection.
pub const TCP_GREETING: &[u8] = b"tandem-hwtest\n";

/// A kernel service running on a thread of its own, stopped (and joined) on drop.
#[derive(Debug)]
pub struct Service {
    port: u16,
    served: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Service {
    /// A UDP echo server on `[::]:port` inside `ns`.
    pub fn udp_echo(ns: &NetNs, port: u16) -> io::Result<Self> {
        let sock =
            ns.run(|| UdpSocket::bind(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0)))?;
        sock.set_read_timeout(Some(POLL))?;
        Ok(Self::spawn(port, move |stop, served| {
            let mut buf = [0u8; 2048];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf)
                    && let Some(data) = buf.get(..n)
                {
                    // Counted before the echo leaves, so a client holding the echo sees it.
                    served.fetch_add(1, Ordering::Relaxed);
                    let _ = sock.send_to(data, from);
                }
            }
        }))
    }

    /// A TCP listener on `[::]:port` inside `ns` that writes [`TCP_GREETING`] to every
    /// connection and closes it.
    pub fn tcp_greeter(ns: &NetNs, port: u16) -> io::Result<Self> {
        let listener =
            ns.run(|| TcpListener::bind(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0)))?;
        listener.set_nonblocking(true)?;
        Ok(Self::spawn(port, move |stop, served| {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        // Counted before the greeting leaves (see the UDP echo).
                        served.fetch_add(1, Ordering::Relaxed);
                        if conn.set_nonblocking(false).is_ok() {
                            let _ = conn.write_all(TCP_GREETING);
                        }
                    }
                    Err(_) => thread::sleep(POLL / 5),
                }
            }
        }))
    }

    fn spawn(port: u16, body: impl FnOnce(&AtomicBool, &AtomicU64) + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, served) = (Arc::clone(&stop), Arc::clone(&served));
            thread::spawn(move || body(&stop, &served))
        };
        Self {
            port,
            served,
            stop,
            thread: Some(thread),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Datagrams received (and echoed) / connections accepted (and greeted) so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sends `payload` from an ephemeral UDP port in `ns` to `dest` and returns what came back
/// within `timeout`.
pub fn udp_roundtrip(
    ns: &NetNs,
    dest: SocketAddrV6,
    payload: &[u8],
    timeout: Duration,
) -> io::Result<Vec<u8>> {
    let sock = ns.run(|| UdpSocket::bind(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0)))?;
    sock.set_read_timeout(Some(timeout))?;
    retry_eintr(|| sock.send_to(payload, dest))?;
    let mut buf = [0u8; 2048];
    // (A retried wait restarts the timeout; the bound is still finite.)
    let (n, from) = retry_eintr(|| sock.recv_from(&mut buf))?;
    if from != SocketAddr::V6(dest) {
        return Err(io::Error::other(format!(
            "reply from {from}, expected {dest}"
        )));
    }
    Ok(buf.get(..n).unwrap_or_default().to_vec())
}

/// Connects from `ns` to `dest` (bounded by `timeout`) and reads what the server writes until
/// it closes the connection.
pub fn tcp_fetch(ns: &NetNs, dest: SocketAddrV6, timeout: Duration) -> io::Result<Vec<u8>> {
    let mut conn = ns.run(|| TcpStream::connect_timeout(&SocketAddr::V6(dest), timeout))?;
    conn.set_read_timeout(Some(timeout))?;
    let mut got = Vec::new();
    conn.read_to_end(&mut got)?;
    Ok(got)
}
