//! Two `tandem run` processes in two namespaces joined by a veth pair, an RFC 8156 failover
//! pair over TCP 647: the primary in the lab's server namespace, the secondary in its client
//! namespace. Every wait polls `tandem status --json` (or the log) with a bound.
//!
//! * mutual TLS: both reach NORMAL, each names the other's certificate; SIGTERM on the primary
//!   sends DISCONNECT and the secondary goes COMMUNICATIONS-INTERRUPTED; `tandem partner-down`
//!   then takes it to PARTNER-DOWN (§8.9.2);
//! * a certificate of another CA is refused (never NORMAL, TLS failures counted and logged);
//! * insecure: SIGKILL of the primary gives COMMUNICATIONS-INTERRUPTED, auto-partner-down
//!   (3 s) PARTNER-DOWN, and restarting the primary on its state directory goes through
//!   STARTUP and RECOVER… back to NORMAL on both (MCLT 30 s: RECOVER-WAIT takes ~30 s).
//!
//! * link down/up: both COMMUNICATIONS-INTERRUPTED on keepalive expiry, both back to NORMAL;
//! * a primary with a new (empty) state directory: RECOVER, RECOVER-WAIT (the MCLT),
//!   RECOVER-DONE, NORMAL;
//! * a connection from an address that is not the partner: dropped without a reply, counted.
//!
//! The insecure pair's link is captured with tcpdump and decoded by tshark with the RFC 8156
//! dissector (`contrib/wireshark`): every message must decode, nothing malformed or unknown.
//!
//! Certificates are made at test time with rcgen.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use tandem_hwtest::burst::{self, ServerProcess};
use tandem_hwtest::capture::{self, Capture};
use tandem_hwtest::clients::ScratchDir;
use tandem_hwtest::lab::failover::{self, failover_field};
use tandem_hwtest::{Lab, require_privileges};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem-hw");
const CAPACITY: u64 = 1024;

fn tandem_bin() -> &'static Path {
    Path::new(TANDEM)
}

/// How one side protects the link.
enum Sec {
    Insecure,
    /// CA file, own name (files `<name>.pem` / `<name>.key`), the partner's name.
    Tls {
        ca: String,
        me: String,
        peer: String,
    },
}

/// One server of the pair: its config, state directory and log.
struct Side {
    config: PathBuf,
    state: PathBuf,
    log: PathBuf,
}

impl Side {
    fn start(&self, lab_ns: &tandem_hwtest::NetNs) -> ServerProcess {
        ServerProcess::start(
            tandem_bin(),
            lab_ns,
            &self.config,
            &self.state,
            CAPACITY,
            &self.log,
        )
        .expect("tandem run")
    }

    /// `tandem status --json`, or `None` if the server does not answer.
    fn status(&self) -> Option<String> {
        failover::status_json(tandem_bin(), &self.state)
    }

    /// A field of the (only) failover relationship in `status --json`.
    fn field(&self, key: &str) -> Option<String> {
        let status = self.status()?;
        failover_field(&status, key)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits (at most `within`) for the relationship's state to be `state`.
    fn wait_state(&self, state: &str, within: Duration) {
        if let Err(e) = failover::wait_state(tandem_bin(), &self.state, state, within) {
            panic!("{e}\nlog:\n{}", self.log());
        }
    }
}

/// A counter of the relationship in `status --json`.
fn counter(status: &str, name: &str) -> u64 {
    failover_field(status, name)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A CA with leaf certificates (DNS name = file name) in `dir` (the lab's).
fn make_ca(dir: &Path, ca: &str, leaves: &[&str]) {
    failover::make_ca(dir, ca, leaves).expect("test certificates");
}

/// A pair in a fresh lab.
struct Pair {
    lab: Lab,
    dir: ScratchDir,
    primary: Side,
    secondary: Side,
}

impl Pair {
    fn new(prefix: &str, sec: [Sec; 2], auto_partner_down: Option<u32>) -> Self {
        let lab = Lab::new(prefix, 1).expect("lab");
        let dir = ScratchDir::new(prefix).expect("scratch dir");
        let s = lab.server_addr().segments();
        let net = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
        let [psec, ssec] = sec;
        let side = |role: &str, iface: &str, me: std::net::Ipv6Addr, peer, sec: &Sec| {
            let security = match sec {
                Sec::Insecure => "insecure = true\n".to_owned(),
                Sec::Tls { ca, me, peer } => format!(
                    "[failover.tls]\nca = \"{d}/{ca}.pem\"\ncert = \"{d}/{me}.pem\"\n\
                     key = \"{d}/{me}.key\"\npeer-names = [\"{peer}\"]\n",
                    d = dir.path().display()
                ),
            };
            let apd = auto_partner_down
                .map_or_else(String::new, |s| format!("auto-partner-down = {s}\n"));
            let config = format!(
                "[server]\npreference = 255\n\n[[interface]]\nname = \"{iface}\"\n\n\
                 [[subnet]]\nprefix = \"{net}/64\"\ninterface = \"{iface}\"\n\
                 preferred-lifetime = 600\nvalid-lifetime = 1200\n\n\
                 [[subnet.pool]]\nprefix = \"{net}/64\"\n\n\
                 [[failover]]\nname = \"lab\"\nrole = \"{role}\"\npeer = \"{peer}\"\n\
                 local = \"{me}\"\nmclt = 30\nkeepalive = 4\nconnect-retry = 1\n\
                 startup-time = 3\nheartbeat = 2\n{apd}{security}"
            );
            let config = dir
                .write(&format!("{role}.toml"), &config, 0o644)
                .expect("config");
            let log = dir.file(&format!("{role}.log"));
            burst::fresh_log(&log).expect("log");
            Side {
                config,
                state: dir.file(&format!("{role}-state")),
                log,
            }
        };
        let primary = side(
            "primary",
            lab.server_if(),
            lab.server_addr(),
            lab.client_addr(),
            &psec,
        );
        let secondary = side(
            "secondary",
            lab.client_if(),
            lab.client_addr(),
            lab.server_addr(),
            &ssec,
        );
        Self {
            lab,
            dir,
            primary,
            secondary,
        }
    }

    fn start_primary(&self) -> ServerProcess {
        self.primary.start(self.lab.server_ns())
    }

    fn start_secondary(&self) -> ServerProcess {
        self.secondary.start(self.lab.client_ns())
    }
}

fn tls(me: &str, peer: &str) -> Sec {
    Sec::Tls {
        ca: "ca".to_owned(),
        me: me.to_owned(),
        peer: peer.to_owned(),
    }
}

#[test]
fn netns_failover_tls_pair_reaches_normal_then_disconnect_and_partner_down() {
    require_privileges!();
    let pair = Pair::new(
        "fo-tls",
        [
            tls("primary.test", "secondary.test"),
            tls("secondary.test", "primary.test"),
        ],
        None,
    );
    make_ca(pair.dir.path(), "ca", &["primary.test", "secondary.test"]);
    let secondary = pair.start_secondary();
    let primary = pair.start_primary();
    // (a) NORMAL on both, over mutual TLS.
    pair.primary.wait_state("NORMAL", Duration::from_secs(30));
    pair.secondary.wait_state("NORMAL", Duration::from_secs(30));
    let p = pair.primary.status().expect("failover test");
    let s = pair.secondary.status().expect("failover test");
    assert_eq!(failover_field(&p, "security").as_deref(), Some("tls"));
    let peer = failover_field(&p, "tls_peer").unwrap_or_default();
    assert!(
        peer.starts_with("secondary.test (CN=secondary.test DNS:secondary.test"),
        "{p}"
    );
    let peer = failover_field(&s, "tls_peer").unwrap_or_default();
    assert!(peer.starts_with("primary.test (CN=primary.test"), "{s}");
    assert_eq!(failover_field(&s, "link").as_deref(), Some("up"));
    assert_eq!(
        failover_field(&s, "partner_state").as_deref(),
        Some("NORMAL")
    );
    assert_eq!(failover_field(&p, "unacked").as_deref(), Some("0"));
    assert!(
        failover_field(&p, "last_contact").is_some_and(|v| v != "null"),
        "{p}"
    );
    // The state file exists and holds a record.
    let file = pair.primary.state.join("failover-lab.state");
    assert_eq!(std::fs::metadata(&file).map(|m| m.len()).ok(), Some(31));

    // (f) SIGTERM: the primary sends DISCONNECT (ServerShuttingDown) before it exits.
    let lines = primary.stop().expect("primary stops cleanly");
    assert!(lines.iter().any(|l| l.starts_with("COUNTERS")), "{lines:?}");
    pair.secondary
        .wait_state("COMMUNICATIONS-INTERRUPTED", Duration::from_secs(10));
    let s = pair.secondary.status().expect("failover test");
    assert_eq!(counter(&s, "disconnects_received"), 1, "{s}");
    assert!(
        pair.primary.log().contains("link down: shut down"),
        "{}",
        pair.primary.log()
    );
    assert!(
        pair.secondary
            .log()
            .contains("partner sent DISCONNECT (status 20)"),
        "{}",
        pair.secondary.log()
    );

    // (d) The operator: PARTNER-DOWN from COMMUNICATIONS-INTERRUPTED (§8.9.2).
    let out = Command::new(TANDEM)
        .args(["partner-down", "lab", "--state-dir"])
        .arg(&pair.secondary.state)
        .output()
        .expect("failover test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        text,
        "failover lab: COMMUNICATIONS-INTERRUPTED -> PARTNER-DOWN\n"
    );
    pair.secondary
        .wait_state("PARTNER-DOWN", Duration::from_secs(2));
    // A second one is refused with the endpoint's reason.
    let out = Command::new(TANDEM)
        .args(["partner-down", "--state-dir"])
        .arg(&pair.secondary.state)
        .output()
        .expect("failover test");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("only from NORMAL, COMMUNICATIONS-INTERRUPTED"),
        "{err}"
    );
    secondary.stop().expect("secondary stops cleanly");
}

#[test]
fn netns_failover_certificate_of_another_ca_is_refused() {
    require_privileges!();
    let pair = Pair::new(
        "fo-badcert",
        [
            Sec::Tls {
                ca: "ca".to_owned(),
                me: "primary.test".to_owned(),
                peer: "secondary.test".to_owned(),
            },
            tls("secondary.test", "primary.test"),
        ],
        None,
    );
    make_ca(pair.dir.path(), "ca", &["secondary.test"]);
    // The primary's certificate comes from a CA the secondary does not trust.
    make_ca(pair.dir.path(), "rogue", &["primary.test"]);
    let _secondary = pair.start_secondary();
    let _primary = pair.start_primary();
    let until = Instant::now() + Duration::from_secs(30);
    let mut refused = 0;
    while Instant::now() < until {
        if let Some(s) = pair.secondary.status() {
            assert_ne!(
                failover_field(&s, "state").as_deref(),
                Some("NORMAL"),
                "{s}"
            );
            refused = counter(&s, "close_tls_error");
            if refused >= 2 {
                break;
            }
        }
        sleep(Duration::from_millis(300));
    }
    assert!(
        refused >= 2,
        "TLS refusals counted: {refused}; log:\n{}",
        pair.secondary.log()
    );
    for side in [&pair.primary, &pair.secondary] {
        let s = side.status().expect("failover test");
        assert_ne!(
            failover_field(&s, "state").as_deref(),
            Some("NORMAL"),
            "{s}"
        );
        assert_eq!(failover_field(&s, "link").as_deref(), Some("down"), "{s}");
        assert!(counter(&s, "close_tls_error") >= 1, "{s}");
        assert!(side.log().contains("tls_error"), "{}", side.log());
    }
    assert!(
        pair.secondary.log().contains("UnknownIssuer"),
        "{}",
        pair.secondary.log()
    );
}

#[test]
fn netns_failover_sigkill_interrupts_auto_partner_down_and_restart_recovers() {
    require_privileges!();
    let pair = Pair::new("fo-kill", [Sec::Insecure, Sec::Insecure], Some(3));
    // The link in the clear, for the dissector (tcpdump and tshark come with .ci/install).
    let pcap = capture::capture_dir("fo-kill")
        .expect("capture dir")
        .join("link.pcap");
    let dump = Capture::start(
        pair.lab.server_ns(),
        pair.lab.server_if(),
        &pcap,
        &["tcp", "port", "647"],
    )
    .expect("tcpdump on the failover link");
    let secondary = pair.start_secondary();
    let primary = pair.start_primary();
    pair.primary.wait_state("NORMAL", Duration::from_secs(30));
    pair.secondary.wait_state("NORMAL", Duration::from_secs(30));
    assert_eq!(
        pair.secondary.field("security").as_deref(),
        Some("insecure")
    );

    // (c) SIGKILL: no DISCONNECT, the connection just ends.
    primary.kill9().expect("kill");
    pair.secondary
        .wait_state("COMMUNICATIONS-INTERRUPTED", Duration::from_secs(15));
    // (d) auto-partner-down = 3 s.
    pair.secondary
        .wait_state("PARTNER-DOWN", Duration::from_secs(15));
    let s = pair.secondary.status().expect("failover test");
    assert_eq!(counter(&s, "disconnects_received"), 0, "{s}");
    assert_eq!(
        failover_field(&s, "policy")
            .as_deref()
            .map(|p| p.contains("no MCLT cap")),
        Some(true),
        "{s}"
    );

    // (e) Restart on the same state directory: the recorded state, STARTUP (its STATE carries
    // the STARTUP flag and the previous state), then RECOVER → RECOVER-WAIT → RECOVER-DONE →
    // NORMAL (RFC 8156 §8.3.2 step 5): the secondary entered PARTNER-DOWN (auto, 3 s after the
    // loss) later than the primary's last record vouched for it (heartbeat = 2: at most 2 s
    // past the SIGKILL, docs/failover.md D15), so the primary takes its partner's bindings and
    // waits the MCLT beyond that TIME-OF-FAILURE before serving again (§8.6.2).
    let before = pair.primary.log().len();
    let secondary_before = pair.secondary.log().len();
    let primary = pair.start_primary();
    pair.primary.wait_state("NORMAL", Duration::from_secs(90));
    pair.secondary.wait_state("NORMAL", Duration::from_secs(30));
    let log = pair.primary.log()[before..].to_owned();
    assert!(log.contains("recorded state NORMAL"), "{log}");
    let steps = [
        "STARTUP -> RECOVER",
        "RECOVER -> RECOVER-WAIT",
        "RECOVER-WAIT -> RECOVER-DONE",
        "RECOVER-DONE -> NORMAL",
    ];
    if let Err(e) = failover::steps_in_order(&log, &steps) {
        panic!("{e}: {log}");
    }
    assert!(
        !log.contains("POTENTIAL-CONFLICT"),
        "the partner went PARTNER-DOWN after our TIME-OF-FAILURE: {log}"
    );
    let log = pair.secondary.log()[secondary_before..].to_owned();
    assert!(
        log.contains("partner in COMMUNICATIONS-INTERRUPTED since") && log.contains("(STARTUP)"),
        "the partner's STARTUP flag and previous state seen: {log}"
    );
    assert!(log.contains("PARTNER-DOWN -> NORMAL"), "{log}");
    primary.stop().expect("primary stops");
    secondary.stop().expect("secondary stops");
    dump.stop().expect("tcpdump stops");
    // Both connections, decoded: the handshake, STATEs (STARTUP ones included), the RECOVER
    // resynchronisation (UPDREQ / UPDDONE) and the DISCONNECTs of the clean stop.
    let seen = capture::message_types(&pcap, "tcp");
    for (t, name) in [
        (28, "UPDREQ"),
        (30, "UPDDONE"),
        (31, "CONNECT"),
        (32, "CONNECTREPLY"),
        (33, "DISCONNECT"),
        (34, "STATE"),
    ] {
        assert!(
            seen.contains(&t),
            "{name} not on the captured link: {seen:?}"
        );
    }
    let flagged = capture::tshark_fields(
        &pcap,
        capture::FLAGGED,
        &["frame.number", "_ws.expert.message"],
    );
    assert!(
        flagged.trim().is_empty(),
        "the dissector flagged:\n{flagged}"
    );
    if std::env::var_os("FO_DEBUG").is_some() {
        eprintln!(
            "PRIMARY:\n{}\nSECONDARY:\n{}",
            pair.primary.log(),
            pair.secondary.log()
        );
    }
}

/// `ip link set down` on the partner link, then `up`: both sides lose the partner when their
/// keepalive runs out (RFC 8156 §6.6: nothing heard within FO_KEEPALIVE_TIME, here 4 s) and go
/// COMMUNICATIONS-INTERRUPTED (§8.8.2); once the link is back the primary reconnects and both,
/// each seeing the other in COMMUNICATIONS-INTERRUPTED, return to NORMAL (§8.9.2).
#[test]
fn netns_failover_link_down_and_up_goes_through_communications_interrupted_to_normal() {
    require_privileges!();
    let pair = Pair::new("fo-link", [Sec::Insecure, Sec::Insecure], None);
    let secondary = pair.start_secondary();
    let primary = pair.start_primary();
    pair.primary.wait_state("NORMAL", Duration::from_secs(30));
    pair.secondary.wait_state("NORMAL", Duration::from_secs(30));
    let (p_before, s_before) = (pair.primary.log().len(), pair.secondary.log().len());

    let ns = pair.lab.server_ns();
    // The lab's addresses are static: keep them over the down/up, as an interface whose
    // addresses are managed would get them back (IPv6 flushes them on `down` by default).
    ns.sysctl(
        &format!("net/ipv6/conf/{}/keep_addr_on_down", pair.lab.server_if()),
        "1",
    )
    .expect("keep_addr_on_down");
    ns.ip(&["link", "set", pair.lab.server_if(), "down"])
        .expect("link down");
    pair.primary
        .wait_state("COMMUNICATIONS-INTERRUPTED", Duration::from_secs(20));
    pair.secondary
        .wait_state("COMMUNICATIONS-INTERRUPTED", Duration::from_secs(20));
    // Nobody is in PARTNER-DOWN without an operator or auto-partner-down.
    sleep(Duration::from_secs(2));
    for side in [&pair.primary, &pair.secondary] {
        let s = side.status().expect("status");
        assert_eq!(
            failover_field(&s, "state").as_deref(),
            Some("COMMUNICATIONS-INTERRUPTED"),
            "{s}"
        );
    }

    ns.ip(&["link", "set", pair.lab.server_if(), "up"])
        .expect("link up");
    pair.primary.wait_state("NORMAL", Duration::from_secs(30));
    pair.secondary.wait_state("NORMAL", Duration::from_secs(30));
    for (side, before) in [(&pair.primary, p_before), (&pair.secondary, s_before)] {
        let log = side.log()[before..].to_owned();
        let down = log
            .find("NORMAL -> COMMUNICATIONS-INTERRUPTED")
            .unwrap_or_else(|| panic!("no NORMAL -> COMMUNICATIONS-INTERRUPTED: {log}"));
        assert!(
            log[down..].contains("COMMUNICATIONS-INTERRUPTED -> NORMAL"),
            "no COMMUNICATIONS-INTERRUPTED -> NORMAL after it: {log}"
        );
    }
    primary.stop().expect("primary stops");
    secondary.stop().expect("secondary stops");
}

/// A primary that lost its state directory (a new disk) comes back as a first start: RECOVER,
/// asks for everything (UPDREQALL), waits the MCLT in RECOVER-WAIT because its partner has
/// talked to a primary before, then RECOVER-DONE and NORMAL on both (RFC 8156 §8.5.2, §8.6.2,
/// §8.7.2; docs/failover.md D8).
#[test]
fn netns_failover_primary_with_a_new_disk_recovers_through_recover_wait() {
    require_privileges!();
    let pair = Pair::new("fo-disk", [Sec::Insecure, Sec::Insecure], None);
    let secondary = pair.start_secondary();
    let primary = pair.start_primary();
    pair.primary.wait_state("NORMAL", Duration::from_secs(30));
    pair.secondary.wait_state("NORMAL", Duration::from_secs(30));
    primary.kill9().expect("kill");
    pair.secondary
        .wait_state("COMMUNICATIONS-INTERRUPTED", Duration::from_secs(15));
    std::fs::remove_dir_all(&pair.primary.state).expect("the primary's disk is lost");

    let before = pair.primary.log().len();
    let primary = pair.start_primary();
    // MCLT 30 s in RECOVER-WAIT, plus the handshakes.
    pair.primary.wait_state("NORMAL", Duration::from_secs(90));
    pair.secondary.wait_state("NORMAL", Duration::from_secs(30));
    let log = pair.primary.log()[before..].to_owned();
    assert!(log.contains("no recorded state"), "{log}");
    let steps = [
        "-> RECOVER",
        "RECOVER -> RECOVER-WAIT",
        "RECOVER-WAIT -> RECOVER-DONE",
        "RECOVER-DONE -> NORMAL",
    ];
    if let Err(e) = failover::steps_in_order(&log, &steps) {
        panic!("{e}: {log}");
    }
    primary.stop().expect("primary stops");
    secondary.stop().expect("secondary stops");
}

/// A TCP connection to the secondary's port 647 from an address that is not its partner is
/// closed without a reply (RFC 8156 §6.1: "it MUST drop the connection"), counted and logged,
/// and the relationship stays in NORMAL.
#[test]
fn netns_failover_connection_from_an_unknown_address_is_dropped_without_reply() {
    require_privileges!();
    let pair = Pair::new("fo-stranger", [Sec::Insecure, Sec::Insecure], None);
    let secondary = pair.start_secondary();
    let primary = pair.start_primary();
    pair.secondary.wait_state("NORMAL", Duration::from_secs(30));
    // From the secondary's own namespace: the source is its own address, not the partner's.
    let addr = std::net::SocketAddr::from((pair.lab.client_addr(), 647));
    let got = pair
        .lab
        .client_ns()
        .run(|| {
            use std::io::{Read as _, Write as _};
            let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            // A CONNECT-looking frame: it must not be answered.
            let _ = s.write_all(&[0, 8, 31, 0, 0, 1, 0, 0, 0, 0]);
            let mut buf = Vec::new();
            match s.read_to_end(&mut buf) {
                Ok(_) => Ok(buf),
                // Closed with our bytes unread: the kernel answers with a reset. Still no reply.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(buf),
                Err(e) => Err(e),
            }
        })
        .expect("the connection is closed, not left hanging");
    assert!(got.is_empty(), "the stranger got an answer: {got:?}");
    let s = pair.secondary.status().expect("status");
    assert!(counter(&s, "dropped_unknown_peer") >= 1, "{s}");
    assert_eq!(
        failover_field(&s, "state").as_deref(),
        Some("NORMAL"),
        "{s}"
    );
    primary.stop().expect("primary stops");
    secondary.stop().expect("secondary stops");
}

/// The pair with real clients on each side's link (the `cargo xtask lab --failover` run, in
/// CI): dhclient, dhcpcd and WIDE dhcp6c on the primary's links get their leases from the
/// primary in NORMAL while the renew-responsive secondary drops what it sees on the shared link;
/// after a SIGKILL of the primary and `tandem partner-down`, the secondary's own client gets its
/// lease from the secondary; the restarted primary and the secondary return to NORMAL.
#[test]
fn netns_failover_lab_pair_serves_real_clients_on_each_side() {
    require_privileges!();
    failover::main_job(tandem_bin(), &failover::FailoverOptions::default())
        .expect("the failover lab reports problems");
}

/// `tandem status` for people (not `--json`) of `side`.
fn status_text(side: &Side) -> String {
    let out = Command::new(TANDEM)
        .args(["status", "--state-dir"])
        .arg(&side.state)
        .output()
        .expect("tandem status");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Rewrites `side`'s configuration to `role` (the pair's other helpers are reused as they are).
fn configure_role(side: &Side, from: &str, to: &str) {
    let text = std::fs::read_to_string(&side.config).expect("config");
    let from = format!("role = \"{from}\"");
    assert!(text.contains(&from), "{text}");
    std::fs::write(
        &side.config,
        text.replace(&from, &format!("role = \"{to}\"")),
    )
    .expect("config");
}

/// Waits (at most `within`) until `side`'s `status --json` satisfies `done`; its last status.
fn wait_status(side: &Side, within: Duration, what: &str, done: impl Fn(&str) -> bool) -> String {
    let until = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < until {
        if let Some(s) = side.status() {
            if done(&s) {
                return s;
            }
            last = s;
        }
        sleep(Duration::from_millis(200));
    }
    panic!(
        "{}: not {what} within {within:?}; status:\n{last}\nlog:\n{}",
        side.state.display(),
        side.log()
    );
}

/// Both servers configured `role = "primary"` (docs/failover.md D23): RFC 8156 §6.1 has only
/// the primary connect, so each one's CONNECT reaches the other's listener, which (after the
/// mutual TLS handshake, RFC 7653 §9.1) answers
/// CONNECTREPLY ConfigurationConflict "both servers are configured as primary for relationship
/// "lab"" and closes. Both `tandem status` outputs (text and JSON) say it as the problem and
/// show the refusal received with the partner's text; both logs say it at ERROR, once per
/// episode although the attempts go on (counted as `role_conflict`); neither reaches NORMAL.
#[test]
fn netns_failover_both_primary_both_statuses_show_the_conflict() {
    require_privileges!();
    // Over mutual TLS: each listener authenticates the other primary before anything is said.
    let pair = Pair::new(
        "fo-2prim",
        [
            tls("primary.test", "secondary.test"),
            tls("secondary.test", "primary.test"),
        ],
        None,
    );
    make_ca(pair.dir.path(), "ca", &["primary.test", "secondary.test"]);
    configure_role(&pair.secondary, "secondary", "primary");
    let a = pair.start_primary();
    let b = pair.start_secondary();
    let conflict = "both servers are configured as primary for relationship \\\"lab\\\"";
    let sides = [
        (&pair.primary, pair.lab.client_addr()),
        (&pair.secondary, pair.lab.server_addr()),
    ];
    for (side, peer) in sides {
        let s = wait_status(side, Duration::from_secs(15), "showing the conflict", |s| {
            failover_field(s, "problem").is_some_and(|p| p.starts_with("both servers"))
                && failover_field(s, "last_refusal_received").is_some_and(|r| r != "null")
        });
        assert!(
            s.contains(&format!(
                "\"problem\":\"{conflict}: {peer} connected to this primary"
            )),
            "{s}"
        );
        assert_eq!(
            failover_field(&s, "role").as_deref(),
            Some("primary"),
            "{s}"
        );
        assert!(
            s.contains(&format!(
                "\"last_refusal_received\":{{\"status\":\"ConfigurationConflict\",\"code\":17,\
                 \"text\":\"{conflict}\""
            )),
            "the partner's refusal and its text: {s}"
        );
        assert!(counter(&s, "role_conflict") >= 1, "{s}");
        assert!(counter(&s, "connects_refused_by_partner") >= 1, "{s}");
        let text = status_text(side);
        assert!(
            text.contains(
                "failover lab: primary\n  PROBLEM: both servers are configured as primary for \
                 relationship \"lab\""
            ),
            "{text}"
        );
        assert!(
            text.contains("  last refusal received: ")
                && text.contains(": ConfigurationConflict (17): \"both servers are configured"),
            "{text}"
        );
    }
    // The attempts go on (§6.1 "MUST continue to attempt"), the ERROR lines do not.
    for (side, _) in sides {
        wait_status(
            side,
            Duration::from_secs(20),
            "refusing a second CONNECT",
            |s| counter(s, "role_conflict") >= 2,
        );
        let log = side.log();
        let errors = |needle: &str| {
            log.lines()
                .filter(|l| l.contains("ERROR") && l.contains(needle))
                .count()
        };
        assert_eq!(
            errors("connected to this primary and sent CONNECT"),
            1,
            "one ERROR per episode for the CONNECT we refused:\n{log}"
        );
        // The refused connection (its address and port in the ERROR line) was authenticated
        // first: its TLS handshake is logged before.
        let line = log
            .lines()
            .find(|l| l.contains("connected to this primary and sent CONNECT"))
            .expect("logged");
        let from = line
            .split("\"lab\": ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .expect("the connection's address");
        let tls = log
            .find(&format!("TLS with {from} established: partner "))
            .unwrap_or_else(|| panic!("no TLS handshake with {from}:\n{log}"));
        assert!(tls < log.find(line).unwrap_or(0), "TLS first:\n{log}");
        assert_eq!(
            errors("the partner refused our CONNECT with ConfigurationConflict (17): both servers"),
            1,
            "one ERROR per episode for the refusal received:\n{log}"
        );
        assert_ne!(side.field("state").as_deref(), Some("NORMAL"));
        if std::env::var_os("FO_DEBUG").is_some() {
            eprintln!("STATUS:\n{}\nLOG:\n{log}", status_text(side));
        }
    }
    a.stop().expect("stops");
    b.stop().expect("stops");
}

/// Both servers configured `role = "secondary"` (D23): both listen, nobody connects. After the
/// startup time (3 s here) each logs one WARN and its status (text and JSON) shows the problem
/// "no connection from the primary (PEER) for N s: is the partner running and configured as
/// role = "primary"?".
#[test]
fn netns_failover_both_secondary_both_statuses_show_no_connection_from_the_primary() {
    require_privileges!();
    let pair = Pair::new("fo-2sec", [Sec::Insecure, Sec::Insecure], None);
    configure_role(&pair.primary, "primary", "secondary");
    let a = pair.start_primary();
    let b = pair.start_secondary();
    let started = Instant::now();
    let sides = [
        (&pair.primary, pair.lab.client_addr()),
        (&pair.secondary, pair.lab.server_addr()),
    ];
    for (side, peer) in sides {
        let s = wait_status(side, Duration::from_secs(10), "showing the silence", |s| {
            failover_field(s, "problem").is_some_and(|p| p.starts_with("no connection"))
        });
        assert!(
            started.elapsed() >= Duration::from_secs(3),
            "not before the startup time"
        );
        let problem = format!("\"problem\":\"no connection from the primary ({peer}) for ");
        assert!(s.contains(&problem), "{s}");
        assert!(
            s.contains(" s: is the partner running and configured as role = \\\"primary\\\"?\""),
            "{s}"
        );
        assert_eq!(
            failover_field(&s, "role").as_deref(),
            Some("secondary"),
            "{s}"
        );
        for key in ["last_refusal_received", "last_refusal_sent"] {
            assert_eq!(failover_field(&s, key).as_deref(), Some("null"), "{s}");
        }
        let text = status_text(side);
        assert!(
            text.contains(&format!(
                "failover lab: secondary\n  PROBLEM: no connection from the primary ({peer}) for "
            )) && text.contains("configured as role = \"primary\"?\n"),
            "{text}"
        );
    }
    // One WARN each, not one per check.
    sleep(Duration::from_secs(2));
    for (side, peer) in sides {
        let log = side.log();
        let warns = log
            .lines()
            .filter(|l| {
                l.contains("WARN")
                    && l.contains(&format!("no connection from the primary ({peer}) for "))
            })
            .count();
        assert_eq!(warns, 1, "{log}");
        if std::env::var_os("FO_DEBUG").is_some() {
            eprintln!("STATUS:\n{}\nLOG:\n{log}", status_text(side));
        }
    }
    a.stop().expect("stops");
    b.stop().expect("stops");
}
