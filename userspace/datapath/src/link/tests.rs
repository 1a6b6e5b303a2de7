//! The link over real loopback TCP sockets: framing against a peer that writes octet by octet,
//! the largest frame, garbage, stalls, and STARTTLS / TLS in every combination of RFC 7653
//! §8.2 and §9.1 (certificates made with rcgen at test time).

use std::io::{Read as _, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::thread::sleep;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

use super::*;

/// A CA and certificates it signed, written as PEM files into a scratch directory.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tandem-link-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    /// `<ca>.pem` and leaves `<name>.pem` / `<name>.key` for each of `leaves`.
    fn ca(&self, ca: &str, leaves: &[&str]) {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, ca);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(self.dir.join(format!("{ca}.pem")), issuer.pem()).unwrap();
        for leaf in leaves {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(vec![(*leaf).to_owned()]).unwrap();
            params.distinguished_name.push(DnType::CommonName, *leaf);
            let cert = params.signed_by(&key, &issuer).unwrap();
            std::fs::write(self.dir.join(format!("{leaf}.pem")), cert.pem()).unwrap();
            std::fs::write(self.dir.join(format!("{leaf}.key")), key.serialize_pem()).unwrap();
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Settings of `me` (certificate `me.pem`), trusting `ca`, accepting `peer`.
    fn settings(&self, ca: &str, me: &str, peer: &str) -> Security {
        let (ca, cert, key) = (
            self.path(&format!("{ca}.pem")),
            self.path(&format!("{me}.pem")),
            self.path(&format!("{me}.key")),
        );
        let names = [peer.to_owned()];
        let s = TlsSettings::load(&TlsPaths {
            ca: &ca,
            cert: &cert,
            key: &key,
            peer_names: &names,
        })
        .unwrap();
        Security::Tls(Arc::new(s))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.set_nonblocking(true).unwrap();
    let addr = l.local_addr().unwrap();
    (l, addr)
}

/// Accepts the next connection (waiting up to 5 s).
fn accept(l: &TcpListener) -> (std::net::TcpStream, SocketAddr) {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        match l.accept() {
            Ok(x) => return x,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < until => {
                sleep(Duration::from_millis(1));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

fn acceptor(l: &TcpListener, security: Security) -> Link {
    let (s, peer) = accept(l);
    s.set_nonblocking(true).unwrap();
    Link::accept(TcpStream::from_std(s), peer, security, Instant::now())
}

/// Steps both links until `done` says so (or 5 s pass); the events of each, in order.
fn drive(
    links: &mut [&mut Link],
    mut done: impl FnMut(&[Vec<LinkEvent>]) -> bool,
) -> Vec<Vec<LinkEvent>> {
    let mut seen: Vec<Vec<LinkEvent>> = links.iter().map(|_| Vec::new()).collect();
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        for (link, seen) in links.iter_mut().zip(seen.iter_mut()) {
            link.on_ready(Instant::now());
            while let Some(e) = link.poll_event() {
                seen.push(e);
            }
        }
        if done(&seen) {
            break;
        }
        sleep(Duration::from_millis(1));
    }
    seen
}

fn established(events: &[LinkEvent]) -> Option<&Option<PeerIdentity>> {
    events.iter().find_map(|e| match e {
        LinkEvent::Established { tls } => Some(tls),
        _ => None,
    })
}

fn closed(events: &[LinkEvent]) -> Option<CloseKind> {
    events.iter().find_map(|e| match e {
        LinkEvent::Closed(r) => Some(r.kind),
        _ => None,
    })
}

fn messages(events: &[LinkEvent]) -> Vec<Vec<u8>> {
    events
        .iter()
        .filter_map(|e| match e {
            LinkEvent::Message(m) => Some(m.clone()),
            _ => None,
        })
        .collect()
}

/// A frame with a CONNECT-typed body of `len` octets.
fn frame(len: usize, fill: u8) -> Vec<u8> {
    let mut f = vec![fill; 2 + len];
    f[..2].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
    f[2] = MessageType::CONNECT.0;
    f
}

#[test]
fn link_insecure_frames_arrive_whole_both_ways_up_to_65535_octets() {
    let (l, addr) = listener();
    let mut a = Link::connect(addr, None, Security::Insecure, Instant::now()).unwrap();
    let mut b = acceptor(&l, Security::Insecure);
    let ev = drive(&mut [&mut a], |s| established(&s[0]).is_some());
    assert_eq!(established(&ev[0]), Some(&None));
    let big = frame(65_535, 0x5a);
    a.send(&frame(10, 1));
    a.send(&big);
    let ev = drive(&mut [&mut a, &mut b], |s| messages(&s[1]).len() == 2);
    assert_eq!(established(&ev[1]), Some(&None), "{:?}", ev[1]);
    let got = messages(&ev[1]);
    assert_eq!(got, [frame(10, 1)[2..].to_vec(), big[2..].to_vec()]);
    b.send(&frame(3, 9));
    let ev = drive(&mut [&mut a, &mut b], |s| !messages(&s[0]).is_empty());
    assert_eq!(messages(&ev[0]), [frame(3, 9)[2..].to_vec()]);
    a.close("test over", Instant::now());
    let ev = drive(&mut [&mut a, &mut b], |s| {
        closed(&s[0]).is_some() && closed(&s[1]).is_some()
    });
    assert_eq!(closed(&ev[0]), Some(CloseKind::Local));
    assert_eq!(closed(&ev[1]), Some(CloseKind::PeerClosed));
}

#[test]
fn link_acceptor_reassembles_frames_written_one_octet_at_a_time() {
    let (l, addr) = listener();
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    raw.set_nodelay(true).unwrap();
    let mut b = acceptor(&l, Security::Insecure);
    let mut bytes = frame(40, 7);
    bytes.extend(frame(1, 8));
    for octet in &bytes {
        raw.write_all(&[*octet]).unwrap();
        b.on_ready(Instant::now());
        sleep(Duration::from_micros(200));
    }
    let ev = drive(&mut [&mut b], |s| messages(&s[0]).len() == 2);
    assert_eq!(
        messages(&ev[0]),
        [frame(40, 7)[2..].to_vec(), frame(1, 8)[2..].to_vec()]
    );
}

#[test]
fn link_zero_length_frame_is_garbage_and_closes() {
    let (l, addr) = listener();
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    let mut b = acceptor(&l, Security::Insecure);
    raw.write_all(&frame(4, 1)).unwrap();
    raw.write_all(&[0, 0, 0xff, 0xff]).unwrap();
    let ev = drive(&mut [&mut b], |s| closed(&s[0]).is_some());
    assert_eq!(messages(&ev[0]).len(), 1);
    assert_eq!(closed(&ev[0]), Some(CloseKind::BadFrame));
}

#[test]
fn link_frame_that_never_completes_times_out() {
    let (l, addr) = listener();
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    let mut b = acceptor(&l, Security::Insecure);
    raw.write_all(&frame(4, 1)).unwrap();
    raw.write_all(&frame(100, 1)[..50]).unwrap();
    let ev = drive(&mut [&mut b], |s| !messages(&s[0]).is_empty());
    assert_eq!(messages(&ev[0]).len(), 1);
    drive(&mut [&mut b], |_| true);
    let due = b
        .poll_timeout()
        .expect("a partial frame arms the frame timer");
    assert!(due > Instant::now() + FRAME_TIMEOUT - Duration::from_secs(6));
    b.on_timeout(due);
    let ev = drive(&mut [&mut b], |s| closed(&s[0]).is_some());
    assert_eq!(closed(&ev[0]), Some(CloseKind::FrameTimeout));
}

#[test]
fn link_acceptor_that_hears_nothing_gives_up_after_the_setup_timeout() {
    let (l, addr) = listener();
    let _raw = std::net::TcpStream::connect(addr).unwrap();
    let mut b = acceptor(&l, Security::Insecure);
    let due = b.poll_timeout().unwrap();
    b.on_timeout(due - Duration::from_millis(1));
    assert!(b.poll_event().is_none());
    b.on_timeout(due);
    assert!(matches!(
        b.poll_event(),
        Some(LinkEvent::Closed(CloseReason {
            kind: CloseKind::SetupTimeout,
            ..
        }))
    ));
}

#[test]
fn link_mutual_tls_established_with_peer_identity_and_frames_flow() {
    let pki = Pki::new("ok");
    pki.ca("ca", &["dc1.test", "dc2.test"]);
    let (l, addr) = listener();
    let mut a = Link::connect(
        addr,
        None,
        pki.settings("ca", "dc1.test", "dc2.test"),
        Instant::now(),
    )
    .unwrap();
    // Sent before TLS is up: held until it is.
    a.send(&frame(5, 3));
    let mut b = acceptor(&l, pki.settings("ca", "dc2.test", "dc1.test"));
    let ev = drive(&mut [&mut a, &mut b], |s| !messages(&s[1]).is_empty());
    let a_id = established(&ev[0]).cloned().flatten().expect("TLS on a");
    let b_id = established(&ev[1]).cloned().flatten().expect("TLS on b");
    assert_eq!(a_id.matched, "dc2.test");
    assert_eq!(a_id.subject_cn.as_deref(), Some("dc2.test"));
    assert_eq!(a_id.dns_names, ["dc2.test"]);
    assert_eq!(b_id.matched, "dc1.test");
    assert_eq!(messages(&ev[1]), [frame(5, 3)[2..].to_vec()]);
    b.send(&frame(65_535, 4));
    let ev = drive(&mut [&mut a, &mut b], |s| !messages(&s[0]).is_empty());
    assert_eq!(messages(&ev[0]), [frame(65_535, 4)[2..].to_vec()]);
}

#[test]
fn link_certificate_of_another_ca_is_refused_on_both_sides() {
    let pki = Pki::new("wrong-ca");
    pki.ca("ca", &["dc2.test"]);
    pki.ca("rogue", &["dc1.test"]);
    let (l, addr) = listener();
    // dc1 presents a certificate from the rogue CA but trusts the real one.
    let mut a = Link::connect(
        addr,
        None,
        pki.settings("ca", "dc1.test", "dc2.test"),
        Instant::now(),
    )
    .unwrap();
    let mut b = acceptor(&l, pki.settings("ca", "dc2.test", "dc1.test"));
    let ev = drive(&mut [&mut a, &mut b], |s| {
        closed(&s[0]).is_some() && closed(&s[1]).is_some()
    });
    assert!(established(&ev[1]).is_none(), "{:?}", ev[1]);
    assert_eq!(closed(&ev[1]), Some(CloseKind::Tls), "{:?}", ev[1]);
    assert_eq!(closed(&ev[0]), Some(CloseKind::Tls), "{:?}", ev[0]);
}

#[test]
fn link_certificate_without_an_allowed_peer_name_is_refused() {
    let pki = Pki::new("wrong-name");
    pki.ca("ca", &["dc1.test", "dc2.test", "dc3.test"]);
    let (l, addr) = listener();
    // dc3 (a valid certificate of the right CA) connects where dc1 is expected.
    let mut a = Link::connect(
        addr,
        None,
        pki.settings("ca", "dc3.test", "dc2.test"),
        Instant::now(),
    )
    .unwrap();
    let mut b = acceptor(&l, pki.settings("ca", "dc2.test", "dc1.test"));
    let ev = drive(&mut [&mut a, &mut b], |s| closed(&s[1]).is_some());
    assert!(established(&ev[1]).is_none());
    assert_eq!(closed(&ev[1]), Some(CloseKind::Tls), "{:?}", ev[1]);
}

#[test]
fn link_insecure_acceptor_refuses_starttls_with_tls_connection_refused() {
    let pki = Pki::new("refused");
    pki.ca("ca", &["dc1.test"]);
    let (l, addr) = listener();
    let mut a = Link::connect(
        addr,
        None,
        pki.settings("ca", "dc1.test", "dc2.test"),
        Instant::now(),
    )
    .unwrap();
    let mut b = acceptor(&l, Security::Insecure);
    let ev = drive(&mut [&mut a, &mut b], |s| {
        closed(&s[0]).is_some() && closed(&s[1]).is_some()
    });
    assert_eq!(
        closed(&ev[0]),
        Some(CloseKind::TlsRefusedByPeer),
        "{:?}",
        ev[0]
    );
    assert_eq!(
        closed(&ev[1]),
        Some(CloseKind::StartTlsRefused),
        "{:?}",
        ev[1]
    );
}

#[test]
fn link_secure_acceptor_closes_a_connect_in_the_clear_unanswered() {
    let pki = Pki::new("clear");
    pki.ca("ca", &["dc2.test"]);
    let (l, addr) = listener();
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    let mut b = acceptor(&l, pki.settings("ca", "dc2.test", "dc1.test"));
    raw.write_all(&frame(12, 0)).unwrap();
    let ev = drive(&mut [&mut b], |s| closed(&s[0]).is_some());
    assert_eq!(closed(&ev[0]), Some(CloseKind::PlaintextRefused));
    raw.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 16];
    assert!(
        matches!(raw.read(&mut buf), Ok(0) | Err(_)),
        "nothing sent back"
    );
}

#[test]
fn link_secure_initiator_without_an_answer_to_starttls_gives_up() {
    let pki = Pki::new("silent");
    pki.ca("ca", &["dc1.test"]);
    let (l, addr) = listener();
    let mut a = Link::connect(
        addr,
        None,
        pki.settings("ca", "dc1.test", "dc2.test"),
        Instant::now(),
    )
    .unwrap();
    let (mut raw, _) = accept(&l);
    drive(&mut [&mut a], |_| false);
    let mut buf = [0u8; 6];
    raw.set_nonblocking(false).unwrap();
    raw.read_exact(&mut buf).unwrap();
    assert_eq!(buf, [0, 4, 23, 0, 0, buf[5]], "STARTTLS, 4-octet header");
    let due = a.poll_timeout().unwrap();
    a.on_timeout(due);
    assert!(matches!(
        a.poll_event(),
        Some(LinkEvent::Closed(CloseReason {
            kind: CloseKind::SetupTimeout,
            ..
        }))
    ));
}

#[test]
fn link_tls_handshake_that_stalls_times_out() {
    let pki = Pki::new("stall");
    pki.ca("ca", &["dc2.test"]);
    let (l, addr) = listener();
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    let mut b = acceptor(&l, pki.settings("ca", "dc2.test", "dc1.test"));
    // STARTTLS, then half a ClientHello header and nothing more.
    raw.write_all(&[0, 4, 23, 0, 0, 1, 0x16, 0x03]).unwrap();
    drive(&mut [&mut b], |_| false);
    let due = b.poll_timeout().unwrap();
    b.on_timeout(due);
    let ev = drive(&mut [&mut b], |s| closed(&s[0]).is_some());
    assert_eq!(closed(&ev[0]), Some(CloseKind::SetupTimeout));
}

#[test]
fn link_garbage_instead_of_a_tls_handshake_is_a_tls_error() {
    let pki = Pki::new("garbage");
    pki.ca("ca", &["dc2.test"]);
    let (l, addr) = listener();
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    let mut b = acceptor(&l, pki.settings("ca", "dc2.test", "dc1.test"));
    raw.write_all(&[0, 4, 23, 0, 0, 1]).unwrap();
    raw.write_all(&[0xde; 64]).unwrap();
    let ev = drive(&mut [&mut b], |s| closed(&s[0]).is_some());
    assert_eq!(closed(&ev[0]), Some(CloseKind::Tls), "{:?}", ev[0]);
}

/// A burst queued with `queue` leaves with one `flush_queued`, in order, even past rustls'
/// plaintext buffer limit (64 KiB): the flush hands rustls more each time its records are out
/// instead of leaving the rest for the next send. The sender gets no readiness call after
/// the one flush (loopback takes 150 KB at once).
#[test]
fn link_tls_burst_queued_leaves_whole_with_one_flush() {
    let pki = Pki::new("burst");
    pki.ca("ca", &["dc1.test", "dc2.test"]);
    let (l, addr) = listener();
    let mut a = Link::connect(
        addr,
        None,
        pki.settings("ca", "dc1.test", "dc2.test"),
        Instant::now(),
    )
    .unwrap();
    let mut b = acceptor(&l, pki.settings("ca", "dc2.test", "dc1.test"));
    drive(&mut [&mut a, &mut b], |s| {
        established(&s[0]).is_some() && established(&s[1]).is_some()
    });
    let frames: Vec<Vec<u8>> = (0..150u8).map(|i| frame(1000, i)).collect();
    for f in &frames {
        a.queue(f);
    }
    assert!(!a.is_flushed(), "queued, not written");
    a.flush_queued();
    assert!(a.is_flushed(), "one flush wrote the whole burst");
    let ev = drive(&mut [&mut b], |s| messages(&s[0]).len() == frames.len());
    let want: Vec<Vec<u8>> = frames.iter().map(|f| f[2..].to_vec()).collect();
    assert_eq!(messages(&ev[0]), want);
}
