//! Helpers of the robustness tests of `tandem run` (tests/netns_run_robustness.rs): a seeded
//! generator of malformed DHCPv6 datagrams with an independent classifier of those that the
//! RFC 8415 §16 discard rules force a server to drop, stateful client exchanges
//! (SOLICIT/REQUEST/RENEW with hints, RFC 8415 §18.2) whose replies are read down to the
//! addresses and prefixes granted, and `tandem run` as a child that can be killed with SIGKILL
//! and restarted on the same state directory.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead as _};
use std::net::{Ipv6Addr, SocketAddrV6, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use tandem_wire::Error as WireError;
use tandem_wire::dhcp::message::Message;
use tandem_wire::dhcp::option::DhcpOption;
use tandem_wire::dhcp::relay::{RelayMessage, RelayPayload};
use tandem_wire::dhcp::{Duid, IaAddr, IaNa, IaPd, IaPrefix, MessageType, Packet};
use tandem_wire::option::{EmitOption, Options};

use crate::netns::NetNs;
use crate::process::wait_timeout;

/// xorshift64* (Vigna): a small seeded generator, so every run of a test sends the same bytes
/// for the same seed.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator seeded with `seed` (0 is replaced: the all-zero state is a fixed point).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % u64::try_from(n).unwrap_or(u64::MAX)).unwrap_or(0)
    }

    /// One random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64().to_le_bytes()[0]
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}

/// A seed from the clock (printed by the tests, so a failure can be replayed).
pub fn time_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos());
    u64::try_from(nanos & u128::from(u64::MAX)).unwrap_or(1) ^ u64::from(std::process::id())
}

/// Client message types a server answers (RFC 8415 §7.3): SOLICIT, REQUEST, CONFIRM, RENEW,
/// REBIND, RELEASE, DECLINE, INFORMATION-REQUEST. RELAY-FORW (12) is handled separately.
const ANSWERED: [u8; 8] = [1, 3, 4, 5, 6, 8, 9, 11];
/// Types that must carry a Client Identifier (RFC 8415 §16.2 – §16.9).
const NEED_CLIENT_ID: [u8; 7] = [1, 3, 4, 5, 6, 8, 9];
/// Types that must carry a Server Identifier (RFC 8415 §16.4, §16.6, §16.8, §16.9).
const NEED_SERVER_ID: [u8; 4] = [3, 5, 8, 9];
/// Types that must not carry a Server Identifier (RFC 8415 §16.2, §16.5, §16.7).
const NO_SERVER_ID: [u8; 3] = [1, 4, 6];
/// Options that may appear once per message (RFC 8415 §21): Client ID, Server ID, ORO,
/// Preference, Elapsed Time, Rapid Commit, Reconfigure Accept.
const SINGLETONS: [u16; 7] = [1, 2, 6, 7, 8, 14, 20];
/// The relay nesting limit of this server (`tandem_wire::dhcp::relay::MAX_RELAY_DEPTH`).
pub const MAX_RELAY_DEPTH: usize = 32;
/// RELAY-FORW header: type, hop count, link address, peer address (RFC 8415 §9).
const RELAY_HEADER: usize = 34;

/// The `(code, data)` options of a TLV block (RFC 8415 §21.1), or `None` when an option
/// header or body runs past the end. Written without `tandem-wire` so it checks the server's
/// parser instead of repeating it.
pub fn tlv_options(mut block: &[u8]) -> Option<Vec<(u16, &[u8])>> {
    let mut out = Vec::new();
    while !block.is_empty() {
        let [c0, c1, l0, l1, rest @ ..] = block else {
            return None;
        };
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        let data = rest.get(..len)?;
        out.push((u16::from_be_bytes([*c0, *c1]), data));
        block = rest.get(len..)?;
    }
    Some(out)
}

/// Whether a server following RFC 8415 must drop `datagram` whatever else it holds: shorter
/// than a header, a type it does not answer (server-only, unassigned or unhandled types,
/// §16), options that do not form a TLV sequence (§21.1), a singleton option twice (§21), a
/// missing Client Identifier (§16.2 – §16.9), a Server Identifier missing where required or
/// present where forbidden (§16.2 – §16.9), a RELAY-FORW without a Relay Message (§19.2) or
/// nested deeper than [`MAX_RELAY_DEPTH`]. `false` means "may be answered", not "valid".
pub fn must_drop(datagram: &[u8]) -> bool {
    must_drop_at(datagram, 1)
}

fn must_drop_at(datagram: &[u8], depth: usize) -> bool {
    let Some(&msg_type) = datagram.first() else {
        return true;
    };
    if msg_type == 12 {
        if depth > MAX_RELAY_DEPTH {
            return true;
        }
        let Some(options) = datagram.get(RELAY_HEADER..).and_then(tlv_options) else {
            return true;
        };
        return match options.iter().find(|(code, _)| *code == 9) {
            Some((_, inner)) => must_drop_at(inner, depth + 1),
            None => true,
        };
    }
    if !ANSWERED.contains(&msg_type) {
        return true;
    }
    let Some(options) = datagram.get(4..).and_then(tlv_options) else {
        return true;
    };
    let count = |c: u16| options.iter().filter(|(code, _)| *code == c).count();
    if SINGLETONS.iter().any(|&c| count(c) > 1) {
        return true;
    }
    (NEED_CLIENT_ID.contains(&msg_type) && count(1) == 0)
        || (NEED_SERVER_ID.contains(&msg_type) && count(2) == 0)
        || (NO_SERVER_ID.contains(&msg_type) && count(2) != 0)
}

/// A test client identity: DUID-LL (RFC 8415 §11.4) of MAC `02:b5:<index, 4 bytes>`.
pub fn client_duid(index: u32) -> Vec<u8> {
    let mut duid = vec![0, 3, 0, 1, 0x02, 0xb5];
    duid.extend_from_slice(&index.to_be_bytes());
    duid
}

/// What a client asks for, or holds: an IA_NA (IAID 1) and an IA_PD (IAID 2), each with an
/// optional address / prefix (a hint in a SOLICIT or REQUEST, the lease in a RENEW).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The IA_NA address.
    pub address: Option<Ipv6Addr>,
    /// The IA_PD prefix and its length.
    pub prefix: Option<(Ipv6Addr, u8)>,
}

/// IAID of the one IA_NA of [`client_message`].
pub const NA_IAID: u32 = 1;
/// IAID of the one IA_PD of [`client_message`].
pub const PD_IAID: u32 = 2;

/// A SOLICIT, REQUEST, RENEW, ... (RFC 8415 §18.2): Client Identifier `duid`, Server
/// Identifier if given, Elapsed Time 0, IA_NA [`NA_IAID`] and IA_PD [`PD_IAID`] carrying the
/// address and prefix of `ias` (lifetimes 0: a hint, §18.2.1).
pub fn client_message(
    msg_type: MessageType,
    xid: u32,
    duid: &[u8],
    server_id: Option<&[u8]>,
    ias: Lease,
) -> Result<Vec<u8>, WireError> {
    let client_id = DhcpOption::ClientId(Duid::parse(duid)?);
    let server_id = server_id
        .map(Duid::parse)
        .transpose()?
        .map(DhcpOption::ServerId);
    let elapsed = DhcpOption::ElapsedTime(0);
    let addr = ias.address.map(|addr| IaAddr {
        addr,
        preferred: 0,
        valid: 0,
        options: Options::default(),
    });
    let prefix = ias.prefix.map(|(prefix, prefix_len)| IaPrefix {
        preferred: 0,
        valid: 0,
        prefix_len,
        prefix,
        options: Options::default(),
    });
    let addr_list: Vec<&dyn EmitOption> = addr.iter().map(|a| a as &dyn EmitOption).collect();
    let prefix_list: Vec<&dyn EmitOption> = prefix.iter().map(|p| p as &dyn EmitOption).collect();
    let na = IaNa {
        iaid: NA_IAID,
        t1: 0,
        t2: 0,
        options: Options::List(&addr_list),
    };
    let pd = IaPd {
        iaid: PD_IAID,
        t1: 0,
        t2: 0,
        options: Options::List(&prefix_list),
    };
    let mut list: Vec<&dyn EmitOption> = vec![&client_id];
    if let Some(s) = &server_id {
        list.push(s);
    }
    list.extend([&elapsed as &dyn EmitOption, &na, &pd]);
    let msg = Message {
        msg_type,
        transaction_id: xid,
        options: Options::List(&list),
    };
    let mut out = vec![0; msg.buffer_len()];
    let n = msg.emit(&mut out)?;
    out.truncate(n);
    Ok(out)
}

/// `inner` wrapped in `levels` RELAY-FORWs (RFC 8415 §19.1.1), each with only a Relay Message
/// option, hop counts counting up from the innermost.
pub fn nested_relay(inner: &[u8], levels: usize, peer: Ipv6Addr) -> Result<Vec<u8>, WireError> {
    let mut msg = inner.to_vec();
    for hop in 0..levels {
        let option = DhcpOption::RelayMsg(RelayPayload::Bytes(&msg));
        let list: [&dyn EmitOption; 1] = [&option];
        let relay = RelayMessage {
            msg_type: MessageType::RELAY_FORW,
            hop_count: u8::try_from(hop).unwrap_or(u8::MAX),
            link_address: Ipv6Addr::UNSPECIFIED,
            peer_address: peer,
            options: Options::List(&list),
        };
        let mut out = vec![0; relay.buffer_len()];
        let n = relay.emit(&mut out)?;
        out.truncate(n);
        msg = out;
    }
    Ok(msg)
}

/// A reply to one of our client messages, read down to what the tests check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// ADVERTISE or REPLY.
    pub msg_type: MessageType,
    /// Transaction id.
    pub xid: u32,
    /// Client Identifier echoed.
    pub client_id: Option<Vec<u8>>,
    /// The server's DUID.
    pub server_id: Option<Vec<u8>>,
    /// Address of IA_NA [`NA_IAID`] and prefix of IA_PD [`PD_IAID`] with a non-zero valid
    /// lifetime (a lease granted or offered).
    pub lease: Lease,
    /// Status codes seen at any level (0 = Success), for messages.
    pub statuses: Vec<u16>,
}

/// Parses a server's answer (a client/server message; `None` for anything else).
pub fn parse_answer(bytes: &[u8]) -> Option<Answer> {
    let Ok(Packet::Client(m)) = Packet::parse(bytes) else {
        return None;
    };
    let mut lease = Lease::default();
    let mut statuses = Vec::new();
    if let Ok(Some(s)) = m.status() {
        statuses.push(s.code.0);
    }
    for ia in m.ia_nas().flatten() {
        if let Ok(Some(s)) = ia.status() {
            statuses.push(s.code.0);
        }
        for a in ia.addresses().flatten() {
            if ia.iaid == NA_IAID && a.valid > 0 && lease.address.is_none() {
                lease.address = Some(a.addr);
            }
        }
    }
    for ia in m.ia_pds().flatten() {
        if let Ok(Some(s)) = ia.status() {
            statuses.push(s.code.0);
        }
        for p in ia.prefixes().flatten() {
            if ia.iaid == PD_IAID && p.valid > 0 && lease.prefix.is_none() {
                lease.prefix = Some((p.prefix, p.prefix_len));
            }
        }
    }
    Some(Answer {
        msg_type: m.msg_type,
        xid: m.transaction_id,
        client_id: m.client_id().ok().flatten().map(|d| d.as_bytes().to_vec()),
        server_id: m.server_id().ok().flatten().map(|d| d.as_bytes().to_vec()),
        lease,
        statuses,
    })
}

/// A UDP socket in a namespace that counts every datagram it sends.
#[derive(Debug)]
pub struct CountingSocket {
    sock: UdpSocket,
    sent: u64,
}

impl CountingSocket {
    /// Binds `[::]:0` inside `ns`.
    pub fn bind(ns: &NetNs) -> io::Result<Self> {
        let sock = ns.run(|| UdpSocket::bind(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 0, 0, 0)))?;
        Ok(Self { sock, sent: 0 })
    }

    /// Datagrams sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Sends one datagram (a short send is an error).
    pub fn send(&mut self, msg: &[u8], dest: SocketAddrV6) -> io::Result<()> {
        let n = loop {
            match self.sock.send_to(msg, dest) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other?,
            }
        };
        self.sent += 1;
        if n == msg.len() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "short send: {n} of {}",
                msg.len()
            )))
        }
    }

    /// Waits up to `timeout` for an answer with transaction id `xid` (others are skipped).
    pub fn recv_xid(&self, xid: u32, timeout: Duration) -> io::Result<Option<Answer>> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.sock.set_read_timeout(Some(left))?;
            match self.sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    if let Some(a) = buf.get(..n).and_then(parse_answer)
                        && a.xid == xid
                    {
                        return Ok(Some(a));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `msg` and waits for its answer, up to `attempts` sends `timeout` apart.
    pub fn transact(
        &mut self,
        msg: &[u8],
        xid: u32,
        dest: SocketAddrV6,
        timeout: Duration,
        attempts: u32,
    ) -> io::Result<Option<Answer>> {
        for _ in 0..attempts.max(1) {
            self.send(msg, dest)?;
            if let Some(a) = self.recv_xid(xid, timeout)? {
                return Ok(Some(a));
            }
        }
        Ok(None)
    }
}

/// Prefix of the error of an exchange that got no answer in time ([`checked`]).
pub const TIMEOUT: &str = "timeout";

/// The answer to a client message, checked for the parts every answer needs (RFC 8415 §18.3):
/// it came (else an error starting with [`TIMEOUT`]), it is a `want` with transaction id `xid`,
/// it echoes the Client Identifier `duid` and carries a Server Identifier, which is
/// `server_id` when given.
///
/// # Errors
/// What is missing or wrong, with the answer.
pub fn checked(
    answer: Option<Answer>,
    want: MessageType,
    xid: u32,
    duid: &[u8],
    server_id: Option<&[u8]>,
) -> Result<Answer, String> {
    let a = answer.ok_or_else(|| format!("{TIMEOUT}: no {want:?} to xid {xid:#x}"))?;
    if a.msg_type != want || a.xid != xid || a.client_id.as_deref() != Some(duid) {
        return Err(format!(
            "expected {want:?} xid {xid:#x} for {duid:02x?}, got {a:?}"
        ));
    }
    match (&a.server_id, server_id) {
        (None, _) => Err(format!("no Server Identifier in {a:?}")),
        (Some(got), Some(sid)) if got != sid => Err(format!("server DUID changed: {a:?}")),
        _ => Ok(a),
    }
}

/// SOLICIT (with `hints`) → ADVERTISE → REQUEST → REPLY for client `duid` (RFC 8415 §18.2.1,
/// §18.2.2): the REQUEST names the server that advertised and asks for what it offered. Each
/// message is sent up to `attempts` times, `timeout` apart; the REQUEST uses transaction id
/// `xid + 1`. Returns the ADVERTISE and the REPLY, both [`checked`].
///
/// # Errors
/// As [`checked`] (an unanswered message gives an error starting with [`TIMEOUT`]), or a
/// socket error.
pub fn solicit_request(
    sock: &mut CountingSocket,
    dest: SocketAddrV6,
    duid: &[u8],
    xid: u32,
    hints: Lease,
    (timeout, attempts): (Duration, u32),
) -> Result<(Answer, Answer), String> {
    let io = |e: io::Error| e.to_string();
    let wire = |e: WireError| format!("{e:?}");
    let solicit = client_message(MessageType::SOLICIT, xid, duid, None, hints).map_err(wire)?;
    let adv = sock
        .transact(&solicit, xid, dest, timeout, attempts)
        .map_err(io)?;
    let adv = checked(adv, MessageType::ADVERTISE, xid, duid, None)?;
    let sid = adv.server_id.clone().unwrap_or_default();
    let xid2 = (xid + 1) & 0xff_ffff;
    let request =
        client_message(MessageType::REQUEST, xid2, duid, Some(&sid), adv.lease).map_err(wire)?;
    let reply = sock
        .transact(&request, xid2, dest, timeout, attempts)
        .map_err(io)?;
    let reply = checked(reply, MessageType::REPLY, xid2, duid, Some(&sid))?;
    Ok((adv, reply))
}

/// Kernel counters of the calling thread's network namespace (`/proc/thread-self/net/snmp6`)
/// that count datagrams lost before any socket read them: UDP receive errors (full receive
/// buffer, bad checksum) and failed reassemblies.
pub fn kernel_rx_losses(ns: &NetNs) -> io::Result<u64> {
    let text = ns.run(|| fs::read_to_string("/proc/thread-self/net/snmp6"))?;
    let field = |name: &str| -> io::Result<u64> {
        text.lines()
            .find_map(|l| {
                let mut it = l.split_whitespace();
                (it.next() == Some(name)).then(|| it.next())?
            })
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no {name} in snmp6")))
    };
    Ok(field("Udp6InErrors")? + field("Ip6ReasmFails")?)
}

/// How long `tandem run` may take to print `READY`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long it may take to exit after SIGTERM or SIGKILL.
pub const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// `ip netns exec <ns> <bin> run --config <config> --state-dir <state_dir> --capacity <n>`,
/// awaited until `READY`. `ip netns exec` execs the program (it does not fork), so the child's
/// pid is the server's: [`ServerProcess::start`] checks `/proc/<pid>/exe`. Stderr is appended
/// to `log`, so restarts keep one log. SIGKILL on drop.
#[derive(Debug)]
pub struct ServerProcess {
    child: Option<Child>,
    lines: Receiver<String>,
    stdout: Vec<String>,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts the server and waits for `READY`.
    pub fn start(
        bin: &Path,
        ns: &NetNs,
        config: &Path,
        state_dir: &Path,
        capacity: u64,
        log: &Path,
    ) -> io::Result<Self> {
        let log_file = OpenOptions::new().create(true).append(true).open(log)?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(bin)
            .arg("run")
            .arg("--config")
            .arg(config)
            .arg("--state-dir")
            .arg(state_dir)
            .args(["--capacity", &capacity.to_string()])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()?;
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take();
        thread::spawn(move || {
            if let Some(pipe) = stdout {
                for line in io::BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        });
        let mut server = Self {
            child: Some(child),
            lines,
            stdout: vec![],
            log: log.to_owned(),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match server.lines.recv_timeout(left) {
                Ok(line) => {
                    let ready = line.starts_with("READY");
                    server.stdout.push(line);
                    if ready {
                        break;
                    }
                }
                Err(e) => {
                    let why = match e {
                        RecvTimeoutError::Timeout => "printed no READY in time",
                        RecvTimeoutError::Disconnected => "exited before READY",
                    };
                    return Err(io::Error::other(format!(
                        "tandem run {why}; stdout {:?}; log:\n{}",
                        server.stdout,
                        server.log()
                    )));
                }
            }
        }
        let pid = server.pid()?;
        let exe = fs::read_link(format!("/proc/{pid}/exe"))?;
        let want = fs::canonicalize(bin)?;
        if exe != want {
            return Err(io::Error::other(format!(
                "pid {pid} runs {} instead of {}: `ip netns exec` forked?",
                exe.display(),
                want.display()
            )));
        }
        Ok(server)
    }

    /// The server's pid.
    pub fn pid(&self) -> io::Result<libc::pid_t> {
        let child = self
            .child
            .as_ref()
            .ok_or_else(|| io::Error::other("server already gone"))?;
        libc::pid_t::try_from(child.id()).map_err(io::Error::other)
    }

    /// Its `READY …` line (`mode=` names the datapath that serves).
    pub fn ready(&self) -> Option<&str> {
        self.stdout
            .iter()
            .find(|l| l.starts_with("READY"))
            .map(String::as_str)
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> io::Result<bool> {
        match self.child.as_mut() {
            Some(c) => Ok(c.try_wait()?.is_none()),
            None => Ok(false),
        }
    }

    /// The log so far (every run appended to the same file).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, then reaps it; returns after it is gone.
    pub fn kill9(mut self) -> io::Result<()> {
        self.signal_and_reap(libc::SIGKILL).map(|_| ())
    }

    /// SIGTERM, waits for the exit and returns every line printed on stdout (`READY …`,
    /// `COUNTERS …`); an exit status other than 0 is an error.
    pub fn stop(mut self) -> io::Result<Vec<String>> {
        let status = self.signal_and_reap(libc::SIGTERM)?;
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.stdout.push(line);
        }
        if !status.success() {
            return Err(io::Error::other(format!(
                "tandem run exited with {status}; stdout {:?}",
                self.stdout
            )));
        }
        Ok(std::mem::take(&mut self.stdout))
    }

    fn signal_and_reap(&mut self, signal: libc::c_int) -> io::Result<std::process::ExitStatus> {
        let pid = self.pid()?;
        let Some(mut child) = self.child.take() else {
            return Err(io::Error::other("server already gone"));
        };
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!(
                "tandem run had already exited ({status})"
            )));
        }
        // SAFETY: plain syscall on our own unreaped child (we hold its `Child`), so the pid
        // cannot have been reused.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(io::Error::last_os_error());
        }
        match wait_timeout(&mut child, EXIT_TIMEOUT)? {
            Some(status) => Ok(status),
            None => {
                let _ = child.kill();
                child.wait()?;
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("tandem run ignored signal {signal}; killed"),
                ))
            }
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `name=value` fields of a `COUNTERS …` line.
pub fn counter_fields(line: &str) -> Vec<(String, u64)> {
    line.split_whitespace()
        .skip(1)
        .filter_map(|f| {
            let (k, v) = f.split_once('=')?;
            Some((k.to_owned(), v.parse().ok()?))
        })
        .collect()
}

/// Creates an empty file `path` for a log (truncating an old one).
pub fn fresh_log(path: &Path) -> io::Result<()> {
    File::create(path).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solicit() -> Vec<u8> {
        client_message(
            MessageType::SOLICIT,
            0x0001_0203,
            &client_duid(7),
            None,
            Lease::default(),
        )
        .unwrap()
    }

    #[test]
    fn must_drop_valid_solicit_is_false() {
        assert!(!must_drop(&solicit()));
    }

    #[test]
    fn must_drop_short_unknown_and_server_types_are_true() {
        assert!(must_drop(&[]));
        assert!(must_drop(&[1, 0, 0]));
        let mut s = solicit();
        for t in [0u8, 2, 7, 10, 13, 14, 35, 255] {
            s[0] = t;
            assert!(must_drop(&s), "type {t}");
        }
    }

    #[test]
    fn must_drop_truncated_option_is_true_but_boundary_cut_is_not_forced() {
        let s = solicit();
        let offsets = option_offsets(&s);
        for cut in 4..s.len() {
            assert_eq!(
                must_drop(&s[..cut]),
                // Cut at the start of the IA_NA: Client ID kept, a valid smaller message.
                !offsets.contains(&cut) || cut <= 4,
                "cut at {cut}, boundaries {offsets:?}"
            );
        }
    }

    /// Offsets where the top-level options of a client message start.
    fn option_offsets(msg: &[u8]) -> Vec<usize> {
        let mut at = 4;
        let mut out = vec![];
        for (_, data) in tlv_options(&msg[4..]).unwrap() {
            out.push(at);
            at += 4 + data.len();
        }
        out
    }

    #[test]
    fn must_drop_relay_depth_limit_and_missing_relay_msg() {
        let s = solicit();
        let peer = Ipv6Addr::LOCALHOST;
        assert!(!must_drop(
            &nested_relay(&s, MAX_RELAY_DEPTH, peer).unwrap()
        ));
        assert!(must_drop(
            &nested_relay(&s, MAX_RELAY_DEPTH + 1, peer).unwrap()
        ));
        let mut bare = nested_relay(&s, 1, peer).unwrap();
        bare.truncate(RELAY_HEADER);
        assert!(must_drop(&bare));
    }

    #[test]
    fn must_drop_request_needs_server_id_and_solicit_forbids_it() {
        let duid = client_duid(1);
        let req = |sid: Option<&[u8]>| {
            client_message(MessageType::REQUEST, 1, &duid, sid, Lease::default()).unwrap()
        };
        assert!(must_drop(&req(None)));
        assert!(!must_drop(&req(Some(&[0, 3, 0, 1, 1, 2, 3, 4, 5, 6]))));
        let sol = client_message(
            MessageType::SOLICIT,
            1,
            &duid,
            Some(&duid),
            Lease::default(),
        )
        .unwrap();
        assert!(must_drop(&sol));
    }

    #[test]
    fn parse_answer_reads_hinted_lease_back() {
        let lease = Lease {
            address: Some("fd00::1000".parse().unwrap()),
            prefix: Some(("fd20::".parse().unwrap(), 56)),
        };
        // Our own REQUEST has zero lifetimes: nothing counts as granted.
        let bytes = client_message(MessageType::REQUEST, 9, &client_duid(2), None, lease).unwrap();
        let a = parse_answer(&bytes).unwrap();
        assert_eq!(a.xid, 9);
        assert_eq!(a.lease, Lease::default());
        assert_eq!(a.client_id, Some(client_duid(2)));
    }

    #[test]
    fn xorshift_same_seed_same_stream() {
        let mut a = XorShift::new(42);
        let mut b = XorShift::new(42);
        assert_eq!(a.bytes(32), b.bytes(32));
        assert!(a.below(10) < 10);
        assert_eq!(XorShift::new(0).below(0), 0);
    }
}
