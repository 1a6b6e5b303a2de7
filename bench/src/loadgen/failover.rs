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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::thread::JoinHandle;
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
/// How often the primary's binding sync is sampled while the load runs.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);

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

/// One reading of the primary's binding sync (`tandem status --json`, its relationship's
/// fields; `docs/operations.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct SyncSample {
    /// Seconds since sampling began.
    pub(crate) t_s: f64,
    /// The run under way (warm-up included); 0 after the last run (the drain).
    pub(crate) run: u32,
    /// `update_backlog`: leases waiting for the partner's window.
    pub(crate) backlog: u64,
    /// `unacked`: BNDUPDs sent and not acknowledged.
    pub(crate) unacked: u64,
    /// `bndupd_sent_per_s` (over the server's last 10 s).
    pub(crate) sent_per_s: u64,
    /// `update_latency_count`: updates acknowledged in the server's last 10 s and timed.
    pub(crate) latency_count: u64,
    /// `update_latency_p50_us`, `…_p99_us`, `…_max_us`: commit → the partner's ack, over
    /// the server's last 10 s.
    pub(crate) latency_us: [u64; 3],
}

impl SyncSample {
    /// The sample in a `tandem status --json` (`None` if a field is missing: an older server,
    /// or no relationship).
    pub(crate) fn parse(status: &str, t_s: f64, run: u32) -> Option<Self> {
        let n = |k: &str| failover_field(status, k).and_then(|v| v.parse::<u64>().ok());
        Some(Self {
            t_s,
            run,
            backlog: n("update_backlog")?,
            unacked: n("unacked")?,
            sent_per_s: n("bndupd_sent_per_s")?,
            latency_count: n("update_latency_count")?,
            latency_us: [
                n("update_latency_p50_us")?,
                n("update_latency_p99_us")?,
                n("update_latency_max_us")?,
            ],
        })
    }

    /// The compact line printed as the sample is taken.
    pub(crate) fn line(&self) -> String {
        let phase = if self.run == 0 {
            "drain".to_owned()
        } else {
            format!("run {}", self.run)
        };
        format!(
            "failover t={:5.1}s {phase}: backlog {} unacked {} BNDUPD {}/s latency p50 {} p99 {} \
             max {} (n={}, last 10 s)",
            self.t_s,
            self.backlog,
            self.unacked,
            self.sent_per_s,
            ms(self.latency_us[0]),
            ms(self.latency_us[1]),
            ms(self.latency_us[2]),
            self.latency_count
        )
    }
}

/// Microseconds as milliseconds with two decimals (`1.25ms`).
fn ms(us: u64) -> String {
    format!("{:.2}ms", us as f64 / 1000.0)
}

/// Samples the primary's binding sync once a second on a thread of its own (the `tandem
/// status` it runs is a process on the generator's CPU, like the thread), printing each
/// sample's line as it comes.
#[derive(Debug)]
pub(crate) struct Sampler {
    stop: Arc<AtomicBool>,
    run: Arc<AtomicU32>,
    handle: Option<JoinHandle<Vec<SyncSample>>>,
}

impl Sampler {
    /// Starts sampling the server with state directory `state`.
    pub(crate) fn start(bin: PathBuf, state: PathBuf) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let run = Arc::new(AtomicU32::new(0));
        let (stop_t, run_t) = (Arc::clone(&stop), Arc::clone(&run));
        let handle = std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut next = t0;
            let mut samples = Vec::new();
            while !stop_t.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now < next {
                    std::thread::sleep((next - now).min(Duration::from_millis(50)));
                    continue;
                }
                next += SAMPLE_EVERY;
                let t_s = now.duration_since(t0).as_secs_f64();
                let phase = run_t.load(Ordering::Relaxed);
                match status(&bin, &state) {
                    Ok(s) => match SyncSample::parse(&s, t_s, phase) {
                        Some(sample) => {
                            println!("{}", sample.line());
                            samples.push(sample);
                        }
                        None => println!("failover t={t_s:5.1}s: no binding-sync fields"),
                    },
                    Err(e) => println!("failover t={t_s:5.1}s: ({e:#})"),
                }
            }
            samples
        });
        Self {
            stop,
            run,
            handle: Some(handle),
        }
    }

    /// Tags the following samples with run `run` (0: no run, the drain).
    pub(crate) fn set_run(&self, run: u32) {
        self.run.store(run, Ordering::Relaxed);
    }

    /// Stops sampling; every sample taken.
    pub(crate) fn finish(mut self) -> Vec<SyncSample> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// What a set of samples says: the backlog (largest, last), the largest unacked count, the
/// median send rate, and the latency: the median of the sampled p50s, the largest sampled
/// p99 and max (each sample covers the server's last 10 s, so percentiles of different
/// samples cannot be merged exactly), and the most updates a sample timed.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct SyncSummary {
    pub(crate) samples: usize,
    pub(crate) backlog_max: u64,
    pub(crate) backlog_last: u64,
    pub(crate) unacked_max: u64,
    pub(crate) sent_per_s_median: u64,
    pub(crate) latency_p50_us_median: u64,
    pub(crate) latency_p99_us_max: u64,
    pub(crate) latency_max_us: u64,
    pub(crate) latency_count_max: u64,
}

/// The middle value (the lower of the two middle ones for an even count); 0 if empty.
fn median_u64(mut v: Vec<u64>) -> u64 {
    v.sort_unstable();
    v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or(0)
}

impl SyncSummary {
    /// The summary of `samples` (`None` if there are none).
    pub(crate) fn of<'a>(samples: impl IntoIterator<Item = &'a SyncSample>) -> Option<Self> {
        let samples: Vec<&SyncSample> = samples.into_iter().collect();
        let last = samples.last()?;
        let max = |f: fn(&SyncSample) -> u64| samples.iter().map(|s| f(s)).max().unwrap_or(0);
        Some(Self {
            samples: samples.len(),
            backlog_max: max(|s| s.backlog),
            backlog_last: last.backlog,
            unacked_max: max(|s| s.unacked),
            sent_per_s_median: median_u64(samples.iter().map(|s| s.sent_per_s).collect()),
            latency_p50_us_median: median_u64(
                samples
                    .iter()
                    .filter(|s| s.latency_count > 0)
                    .map(|s| s.latency_us[0])
                    .collect(),
            ),
            latency_p99_us_max: max(|s| s.latency_us[1]),
            latency_max_us: max(|s| s.latency_us[2]),
            latency_count_max: max(|s| s.latency_count),
        })
    }

    /// One line for the report.
    pub(crate) fn text(&self) -> String {
        format!(
            "backlog max {} last {}; unacked max {}; BNDUPD {}/s (median); update latency p50 {} \
             (median of samples), p99 {} / max {} (largest sampled); {} samples",
            self.backlog_max,
            self.backlog_last,
            self.unacked_max,
            self.sent_per_s_median,
            ms(self.latency_p50_us_median),
            ms(self.latency_p99_us_max),
            ms(self.latency_max_us),
            self.samples
        )
    }

    /// A JSON object.
    pub(crate) fn json(&self) -> String {
        format!(
            "{{\"samples\":{},\"backlog_max\":{},\"backlog_last\":{},\"unacked_max\":{},\
             \"bndupd_sent_per_s_median\":{},\"latency_p50_us_median\":{},\
             \"latency_p99_us_max\":{},\"latency_max_us\":{},\"latency_count_max\":{}}}",
            self.samples,
            self.backlog_max,
            self.backlog_last,
            self.unacked_max,
            self.sent_per_s_median,
            self.latency_p50_us_median,
            self.latency_p99_us_max,
            self.latency_max_us,
            self.latency_count_max
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The relationship part of a `tandem status --json`, as the daemon renders it.
    const STATUS: &str = "{\"datapath\":\"xdp\",\"failover\":[{\"name\":\"loadgen\",\
        \"unacked\":37,\"update_backlog\":120,\"bndupd_sent_per_s\":51234,\
        \"bndupd_received_per_s\":0,\"update_latency_count\":498000,\
        \"update_latency_p50_us\":1250,\"update_latency_p99_us\":4700,\
        \"update_latency_max_us\":9100,\"mclt\":3600,\
        \"counters\":{\"update_backlog\":120}}]}";

    #[test]
    fn a_sample_reads_the_relationships_fields() {
        let s = SyncSample::parse(STATUS, 2.0, 1).unwrap();
        assert_eq!(
            s,
            SyncSample {
                t_s: 2.0,
                run: 1,
                backlog: 120,
                unacked: 37,
                sent_per_s: 51_234,
                latency_count: 498_000,
                latency_us: [1250, 4700, 9100],
            }
        );
        assert_eq!(
            s.line(),
            "failover t=  2.0s run 1: backlog 120 unacked 37 BNDUPD 51234/s latency p50 1.25ms \
             p99 4.70ms max 9.10ms (n=498000, last 10 s)"
        );
        assert_eq!(SyncSample::parse("{\"failover\":[]}", 0.0, 0), None);
    }

    #[test]
    fn a_summary_takes_the_largest_backlog_the_last_and_the_median_p50() {
        let at = |backlog, p50, p99, count| SyncSample {
            backlog,
            latency_count: count,
            latency_us: [p50, p99, p99 * 2],
            ..SyncSample::default()
        };
        let v = [
            at(5, 0, 0, 0),
            at(900, 2000, 8000, 10),
            at(40, 1000, 3000, 20),
            at(0, 1500, 4000, 30),
        ];
        let s = SyncSummary::of(&v).unwrap();
        assert_eq!((s.backlog_max, s.backlog_last), (900, 0));
        // The sample without timed updates has no p50 to count.
        assert_eq!(s.latency_p50_us_median, 1500);
        assert_eq!((s.latency_p99_us_max, s.latency_max_us), (8000, 16000));
        assert_eq!((s.latency_count_max, s.samples), (30, 4));
        assert_eq!(SyncSummary::of(&[]), None);
    }
}
