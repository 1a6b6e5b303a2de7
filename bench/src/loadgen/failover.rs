//! `loadgen lab --failover`: the server under test as the primary of an RFC 8156 pair, so that
//! every lease it commits goes to a partner as a BNDUPD while it is loaded (binding sync,
//! RFC 8156 §7; on XDP through the workers' change rings, `docs/failover.md` D27).
//!
//! The partner is a second `tandem run` (socket datapath, the secondary) in a namespace of its
//! own, joined to the server's by a veth `fo0` (`fd0f::1`) ↔ `fo1` (`fd0f::2`) carrying the
//! failover link (TCP 647, mutual TLS with certificates made at run time). It serves the same
//! subnet and pools as a relayed subnet (RFC 8156 §4: the partners have the same pools), with
//! the same number of shards (D26). The load starts once the primary is in NORMAL.

use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use tandem_hwtest::lab::failover::{
    PRIMARY_ADDR, SECONDARY_ADDR, failover_field, failover_link, make_ca,
};
use tandem_hwtest::{Lab, NetNs, run_bounded};

use crate::server::{Datapath, Running, ServerSpec, config};

/// How long the pair may take to reach NORMAL (STARTUP, RECOVER, … with a fresh pair, D8).
const NORMAL_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest a `tandem status` may take.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);

/// The failover counters printed after the runs (of `tandem status --json`).
pub(crate) const COUNTERS: &[&str] = &[
    "bndupd_sent",
    "bndreply_received",
    "bndupd_received",
    "bndreply_sent",
    "bndupd_refused",
    "update_changes",
    "update_overflow",
    "update_ring_overflow",
    "update_backlog",
    "update_scans",
    "leases_acked_by_partner",
    "partner_leases_accepted",
    "partner_leases_rejected",
    "worker_requests",
    "worker_timeouts",
    "worker_late_answers",
];

/// The partner and what it needs (its namespace and certificates).
#[derive(Debug)]
pub(crate) struct Partner {
    /// The secondary; stopped before the namespace goes.
    pub(crate) server: Option<Running>,
    /// Its namespace (removed on drop).
    _ns: NetNs,
    /// CA, certificates and keys.
    certs: PathBuf,
}

impl Drop for Partner {
    fn drop(&mut self) {
        drop(self.server.take());
        let _ = std::fs::remove_dir_all(&self.certs);
    }
}

/// The `[[failover]]` table of `role` (TLS with the certificates in `certs`).
fn failover_toml(certs: &Path, role: &str, me: Ipv6Addr, peer: Ipv6Addr) -> String {
    let other = if role == "primary" {
        "secondary"
    } else {
        "primary"
    };
    format!(
        "[[failover]]\nname = \"loadgen\"\nrole = \"{role}\"\npeer = \"{peer}\"\nlocal = \"{me}\"\n\
         mclt = 3600\nkeepalive = 10\nconnect-retry = 1\nstartup-time = 3\n\n\
         [failover.tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/{role}.lg.pem\"\n\
         key = \"{d}/{role}.lg.key\"\npeer-names = [\"{other}.lg\"]\n",
        d = certs.display()
    )
}

/// Makes the certificates and the failover link, and returns the `[[failover]]` table the
/// server under test (the primary) appends to its configuration.
pub(crate) fn prepare(lab: &Lab, scratch: &Path) -> anyhow::Result<(NetNs, PathBuf, String)> {
    let certs = scratch.join(format!("tandem-loadgen-{}-certs", std::process::id()));
    std::fs::create_dir_all(&certs).with_context(|| format!("creating {}", certs.display()))?;
    make_ca(&certs, "ca", &["primary.lg", "secondary.lg"]).context("certificates")?;
    let ns = NetNs::new("lgp").context("the partner's namespace")?;
    failover_link(lab.server_ns(), &ns).context("the failover veth")?;
    let toml = failover_toml(&certs, "primary", PRIMARY_ADDR, SECONDARY_ADDR);
    Ok((ns, certs, toml))
}

/// Starts the secondary on `cores` in `ns` with `shards` shards, serving the lab's subnet as a
/// relayed subnet, and waits until `primary_state` reports NORMAL.
pub(crate) fn start(
    spec: &ServerSpec,
    lab: &Lab,
    ns: NetNs,
    certs: PathBuf,
    cores: &str,
    shards: u32,
    primary_state: &Path,
) -> anyhow::Result<Partner> {
    let partner_spec = ServerSpec {
        datapath: Datapath::Socket,
        extra: failover_toml(&certs, "secondary", SECONDARY_ADDR, PRIMARY_ADDR),
        ..spec.clone()
    };
    let subnet = std::net::Ipv6Addr::from(u128::from(lab.server_addr()) & !u128::from(u64::MAX));
    // The same subnet and pools, without an interface (relayed: RFC 8156 §4); the failover
    // link is its one interface.
    let text = config(&partner_spec, "fo1", subnet)
        .replacen("interface = \"fo1\"\n", "", 1)
        .replacen(
            "[[failover]]",
            &format!("[datapath]\nmode = \"socket\"\nshards = {shards}\n\n[[failover]]"),
            1,
        );
    let server = Running::launch(&partner_spec, "-partner", &text, ns.name(), cores, "fo1")?;
    let mut partner = Partner {
        server: Some(server),
        _ns: ns,
        certs,
    };
    let deadline = Instant::now() + NORMAL_TIMEOUT;
    loop {
        let state = status(&spec.bin, primary_state)
            .ok()
            .and_then(|s| failover_field(&s, "state"));
        if state.as_deref() == Some("NORMAL") {
            break;
        }
        if Instant::now() > deadline {
            let log = partner
                .server
                .as_ref()
                .map(Running::log_tail)
                .unwrap_or_default();
            partner.server = None;
            bail!(
                "the pair did not reach NORMAL within {NORMAL_TIMEOUT:?} (primary: {state:?}); \
                 partner log:\n{log}"
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(partner)
}

/// `tandem status --json` of the server with state directory `state`.
pub(crate) fn status(bin: &Path, state: &Path) -> anyhow::Result<String> {
    let out = run_bounded(
        Command::new(bin)
            .args(["status", "--json", "--state-dir"])
            .arg(state),
        STATUS_TIMEOUT,
    )
    .context("tandem status")?;
    if !out.status.success() {
        bail!("tandem status: {}", out.stderr.trim());
    }
    Ok(out.stdout)
}

/// `name=value` of each of [`COUNTERS`] found in a `tandem status --json`.
pub(crate) fn counters_text(status: &str) -> String {
    COUNTERS
        .iter()
        .filter_map(|k| failover_field(status, k).map(|v| format!("{k}={v}")))
        .collect::<Vec<_>>()
        .join(" ")
}
