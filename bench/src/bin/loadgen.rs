//! `loadgen`: a DHCPv6 load generator and report, the start of Tandem's bench tool.
//!
//! `loadgen lab --server-bin PATH --datapath socket|xdp|xdp-demo …` builds a two-namespace
//! veth lab (`tandem_hwtest::Lab`), starts the server in the server namespace pinned to
//! `--cores` (default CPU 1), and runs the generator pinned to another CPU in the client
//! namespace. Many simulated clients (distinct DUID-LLs) do SOLICIT → ADVERTISE → REQUEST →
//! REPLY (two round trips per exchange; `xdp-demo` answers SOLICIT only, so there an exchange
//! is SOLICIT → ADVERTISE), `--window` exchanges in flight, for `--seconds` after a warm-up.
//!
//! Reported per run: completed exchanges/s, round-trip latency percentiles, timeouts, the
//! server's CPU time per exchange (`/proc/<pid>/stat`, all threads), the generator's CPU and
//! the machine's per-CPU busy, interrupt and steal time, with process time of anyone else
//! flagged as foreign load. A table on stdout, then one JSON line per run and a summary line
//! (medians). With `--failover`, the primary's binding sync is sampled once a second while the
//! load runs (backlog, unacknowledged BNDUPDs, rate, update latency) and summarised per run.
//! See bench/README.md.

// The modules live in bench/src/loadgen/ (a directory under src/bin/ would make Cargo look for
// more binaries there).
#[path = "../loadgen/cpu.rs"]
mod cpu;
#[path = "../loadgen/exchange.rs"]
mod exchange;
#[path = "../loadgen/failover.rs"]
mod failover;
#[path = "../loadgen/server.rs"]
mod server;

use std::io::{self, Write as _};
use std::net::{SocketAddrV6, UdpSocket};
use std::os::fd::AsRawFd as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use tandem_hwtest::Lab;

use crate::cpu::{CpuUse, Snapshot};
use crate::exchange::{Generator, Kind, MAX_WINDOW, OUT_LEN};
use crate::failover::{Sampler, SyncSummary};
use crate::server::{Datapath, Running, ServerSpec};

/// DHCPv6 load generator for Tandem.
#[derive(Debug, Parser)]
#[command(name = "loadgen", max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build a netns veth lab, start the server in it and load it (needs root).
    Lab(LabArgs),
}

#[derive(Debug, Args)]
struct LabArgs {
    /// The `tandem` binary (a release build).
    #[arg(long, value_name = "PATH")]
    server_bin: PathBuf,
    /// socket: `tandem run`; xdp: `tandem run` with `[datapath] mode = "xdp"`; xdp-demo:
    /// `tandem xdp-demo` (answers SOLICIT only: exchanges are SOLICIT → ADVERTISE).
    #[arg(long, value_enum)]
    datapath: Datapath,
    /// RX/TX queues of the veth pair (and XDP workers).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    queues: u32,
    /// Distinct simulated clients (DUIDs) used round-robin, so that after the first pass
    /// every exchange is a known client's (its binding re-committed); 0, the default: a new
    /// client (a DUID never used before) for every exchange, so that every exchange allocates
    /// an address and a prefix.
    #[arg(long, default_value_t = 0)]
    clients: u32,
    /// Lease store capacity of the server (bindings, `tandem run --capacity`); default: 8 Mi
    /// with new clients (two bindings per exchange: 4 M exchanges), else 4 per client (at
    /// least 65 536).
    #[arg(long, value_name = "N")]
    capacity: Option<u64>,
    /// Exchanges kept in flight.
    #[arg(long, default_value_t = 64)]
    window: usize,
    /// Measured seconds per run (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Warm-up seconds before each run (traffic flows, nothing is counted).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Runs; the summary gives medians (min–max).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
    /// CPUs of the server (taskset, and the workers' `--cores`/`[datapath] cores`).
    #[arg(long, value_name = "LIST", default_value = "1")]
    cores: String,
    /// CPU of the generator (default: the first allowed CPU not in --cores).
    #[arg(long, value_name = "CPU")]
    gen_core: Option<usize>,
    /// UDP sockets the generator sends from (distinct source ports spread flows over
    /// queues; default: --queues).
    #[arg(long)]
    sockets: Option<usize>,
    /// Milliseconds before an exchange in flight is abandoned and counted as a timeout.
    #[arg(long, default_value_t = 500)]
    timeout_ms: u64,
    /// XDP workers busy-poll (xdp, xdp-demo).
    #[arg(long)]
    busy_poll: bool,
    /// XDP attach mode (xdp, xdp-demo): auto, native or generic.
    #[arg(long, default_value = "auto")]
    xdp_mode: String,
    /// Directory the server's scratch directory (config, state directory, log) is created in
    /// (default: the system temp dir). Use a tmpfs such as /dev/shm so the lease store's
    /// msync writeback (kernel threads, counted as foreign) does not disturb the measurement.
    #[arg(long, value_name = "DIR")]
    scratch_dir: Option<PathBuf>,
    /// Run the server as the primary of an RFC 8156 failover pair (socket, xdp): a secondary
    /// (`tandem run`, socket datapath) in a namespace of its own receives every committed
    /// lease as a BNDUPD while the load runs; the load starts once the pair is in NORMAL.
    #[arg(long)]
    failover: bool,
    /// CPUs of the failover partner (default: the generator's CPU).
    #[arg(long, value_name = "LIST")]
    partner_cores: Option<String>,
}

/// The server's store capacity with a new client per exchange (the default): two bindings per
/// exchange, so 4 Mi exchanges, e.g. 3 runs of 6 s at 230 000 exchanges/s. The store file is
/// sparse (256 octets per binding of capacity, 2 GiB here), written only as it fills.
const NEW_CLIENTS_CAPACITY: u64 = 8 << 20;

fn main() -> ExitCode {
    let Cmd::Lab(args) = Cli::parse().command;
    match lab(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Parses a CPU list like `1`, `0,2` or `0-3,6`.
fn parse_cpu_list(s: &str) -> anyhow::Result<Vec<usize>> {
    let mut cpus = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<usize>()?, b.trim().parse::<usize>()?),
            None => {
                let n = part.parse::<usize>()?;
                (n, n)
            }
        };
        anyhow::ensure!(lo <= hi && hi < 1024, "bad CPU range `{part}`");
        cpus.extend(lo..=hi);
    }
    Ok(cpus)
}

/// Whether `path` lives on a tmpfs (`statfs` magic `TMPFS_MAGIC`); false if it cannot be told.
fn on_tmpfs(path: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let Ok(cpath) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: an all-zero `statfs` is a valid value of the plain C struct.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `cpath` is a NUL-terminated path and `st` a writable `statfs`, both live across
    // the call.
    let rc = unsafe { libc::statfs(cpath.as_ptr(), &raw mut st) };
    #[allow(
        clippy::useless_conversion,
        reason = "f_type is i64 on x86_64 but narrower elsewhere"
    )]
    let magic = i64::from(st.f_type);
    rc == 0 && magic == TMPFS_MAGIC
}

/// One run's results.
#[derive(Clone, Debug)]
struct RunReport {
    elapsed_s: f64,
    exchanges: u64,
    round_trips: u64,
    rate: f64,
    rtt_us: [f64; 3],
    exchange_us: [f64; 2],
    timeouts: u64,
    stale: u64,
    bad: u64,
    no_lease: u64,
    send_errors: u64,
    cpu: CpuUse,
    server_us_per_exchange: f64,
}

fn lab(args: &LabArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=MAX_WINDOW).contains(&args.window),
        "--window must be 1..={MAX_WINDOW}"
    );
    anyhow::ensure!(
        args.seconds > 0.0 && args.warmup >= 0.0,
        "--seconds must be > 0"
    );
    tandem_hwtest::privileges().map_err(|why| anyhow::anyhow!("needs root: {why}"))?;
    let server_cores = parse_cpu_list(&args.cores).context("--cores")?;
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    let gen_core = args
        .gen_core
        .or_else(|| allowed.iter().copied().find(|c| !server_cores.contains(c)));
    let kind = match args.datapath {
        Datapath::XdpDemo => Kind::SolicitOnly,
        Datapath::Socket | Datapath::Xdp => Kind::Sarr,
    };
    let spec = ServerSpec {
        bin: args.server_bin.clone(),
        datapath: args.datapath,
        cores: args.cores.clone(),
        queues: args.queues,
        busy_poll: args.busy_poll,
        xdp_mode: args.xdp_mode.clone(),
        // Two bindings (address, prefix) per client, with room to spare.
        capacity: args.capacity.unwrap_or(match args.clients {
            0 => NEW_CLIENTS_CAPACITY,
            n => (u64::from(n) * 4).max(1 << 16),
        }),
        scratch_parent: args.scratch_dir.clone().unwrap_or_else(std::env::temp_dir),
        extra: String::new(),
    };
    anyhow::ensure!(
        !args.failover || args.datapath != Datapath::XdpDemo,
        "--failover needs `tandem run` (--datapath socket or xdp)"
    );

    let lab = Lab::new("lg", args.queues).context("building the netns lab")?;
    let mut spec = spec;
    let pair = if args.failover {
        let (ns, certs, toml) = failover::prepare(&lab, &spec.scratch_parent)?;
        spec.extra = toml;
        Some((ns, certs))
    } else {
        None
    };
    let srv = Running::start(&spec, &lab)?;
    let partner = match pair {
        Some((ns, certs)) => {
            let cores = args
                .partner_cores
                .clone()
                .or_else(|| gen_core.map(|c| c.to_string()))
                .unwrap_or_else(|| "0".to_owned());
            // The same shard count as the primary (D26): its workers on XDP, 1 on sockets.
            let shards = match args.datapath {
                Datapath::Xdp => args.queues,
                Datapath::Socket | Datapath::XdpDemo => 1,
            };
            let p = failover::start(
                &spec,
                &lab,
                ns,
                certs,
                &cores,
                shards,
                &srv.dir().join("state"),
            )?;
            println!("loadgen: failover pair in NORMAL; partner (secondary) on CPUs {cores}");
            Some(p)
        }
        None => None,
    };
    let n_sockets = args.sockets.unwrap_or(args.queues as usize).max(1);
    let sockets: Vec<UdpSocket> = (0..n_sockets)
        .map(|_| open_socket(&lab))
        .collect::<anyhow::Result<_>>()?;
    let dest = SocketAddrV6::new(lab.server_addr(), 547, 0, 0);

    if let Some(core) = gen_core
        && !core_affinity::set_for_current(core_affinity::CoreId { id: core })
    {
        bail!("cannot pin the generator to CPU {core}");
    }
    println!(
        "loadgen: datapath={} exchange={} ({} round trip{} each) queues={} clients={} window={} \
         sockets={} seconds={} warmup={} server-cpus={} generator-cpu={} server-pid={} \
         state-dir={} ({})",
        args.datapath.name(),
        kind.name(),
        kind.round_trips(),
        if kind.round_trips() == 1 { "" } else { "s" },
        args.queues,
        args.clients,
        args.window,
        n_sockets,
        args.seconds,
        args.warmup,
        args.cores,
        gen_core.map_or_else(|| "-".to_owned(), |c| c.to_string()),
        srv.pid(),
        srv.dir().join("state").display(),
        if on_tmpfs(srv.dir()) {
            "tmpfs"
        } else {
            "not tmpfs: store writeback counts as foreign load"
        },
    );
    if kind == Kind::SolicitOnly {
        println!(
            "loadgen: note: xdp-demo answers SOLICIT only, so an exchange here is one round \
             trip (SOLICIT → ADVERTISE), not a SARR"
        );
    }

    let mut lg = Generator::new(
        kind,
        args.window,
        args.clients,
        Duration::from_millis(args.timeout_ms),
    )?;
    // The primary's binding sync once a second, from a thread on the generator's CPU (started
    // after the pinning, which it inherits).
    let sampler = partner
        .as_ref()
        .map(|_| Sampler::start(args.server_bin.clone(), srv.dir().join("state")));
    let clk = cpu::clk_tck();
    let mut reports = Vec::new();
    for run in 1..=args.runs {
        if let Some(s) = &sampler {
            s.set_run(run);
        }
        let r = drive(&mut lg, &sockets, dest, args, srv.pid(), clk)
            .with_context(|| format!("run {run}"))?;
        if r.exchanges == 0 {
            bail!(
                "run {run}: no exchange completed ({} timeouts, {} bad, {} no lease); server \
                 log:\n{}",
                r.timeouts,
                r.bad,
                r.no_lease,
                srv.log_tail()
            );
        }
        reports.push(r);
    }
    let mut fo_lines = Vec::new();
    if let Some(s) = &sampler {
        s.set_run(0);
    }
    if let Some(p) = &partner {
        // Let the last updates drain before reading the counters.
        std::thread::sleep(Duration::from_secs(2));
        let states = [
            ("primary", Some(srv.dir())),
            ("secondary", p.server.as_ref().map(|s| s.dir())),
        ];
        for (role, dir) in states {
            let Some(dir) = dir else { continue };
            let line = failover::status(&args.server_bin, &dir.join("state"))
                .map(|s| failover::counters_text(&s))
                .unwrap_or_else(|e| format!("({e:#})"));
            fo_lines.push(format!("failover {role}: {line}"));
        }
    }
    // Per run, then over everything (the drain's samples included: its last backlog is the
    // one left once the load stopped).
    let samples = sampler.map(Sampler::finish).unwrap_or_default();
    let per_run: Vec<Option<SyncSummary>> = (1..=args.runs)
        .map(|run| SyncSummary::of(samples.iter().filter(|s| s.run == run)))
        .collect();
    let overall = SyncSummary::of(&samples);
    for (run, s) in per_run.iter().enumerate() {
        if let Some(s) = s {
            fo_lines.push(format!("failover sync, run {}: {}", run + 1, s.text()));
        }
    }
    if let Some(s) = &overall {
        fo_lines.push(format!("failover sync, all runs and drain: {}", s.text()));
    }
    let tail = srv.stop()?;
    drop(partner);
    drop(lab);

    print_table(args, &reports);
    for line in &tail {
        println!("server: {line}");
    }
    for line in &fo_lines {
        println!("{line}");
    }
    let mut out = io::stdout().lock();
    for (i, r) in reports.iter().enumerate() {
        let sync = per_run.get(i).copied().flatten();
        writeln!(out, "{}", json_line(args, kind, i + 1, r, sync.as_ref()))?;
    }
    writeln!(
        out,
        "{}",
        summary_json(args, kind, &reports, overall.as_ref())
    )?;
    Ok(())
}

/// A non-blocking UDP socket on an ephemeral port in the client namespace, with a receive
/// buffer big enough for a whole window of replies.
fn open_socket(lab: &Lab) -> anyhow::Result<UdpSocket> {
    let sock = lab
        .client_ns()
        .run(|| UdpSocket::bind("[::]:0"))
        .context("binding a client socket")?;
    sock.set_nonblocking(true)?;
    let size: libc::c_int = 4 << 20;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_SNDBUFFORCE] {
        // SAFETY: setsockopt reads `size_of::<c_int>()` bytes from `&size`, which lives across
        // the call; the fd is open (owned by `sock`). Failure only leaves the default size.
        let _ = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&raw const size).cast(),
                size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
    Ok(sock)
}

/// Sends `msg` on the socket of `slot`; a refused send is counted (the slot then times out).
fn send(lg: &mut Generator, sockets: &[UdpSocket], slot: usize, msg: &[u8], dest: SocketAddrV6) {
    let sock = &sockets[slot % sockets.len()];
    loop {
        match sock.send_to(msg, dest) {
            Ok(_) => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                lg.send_failed();
                return;
            }
        }
    }
}

/// Most datagrams read from one socket before the next gets a turn.
const RECV_BURST: usize = 64;
/// How often slots are checked for timeouts.
const SCAN_EVERY: Duration = Duration::from_millis(10);

/// One run: warm-up, then `--seconds` measured; the window stays full throughout (slots
/// still in flight at the end carry over into the next run).
fn drive(
    lg: &mut Generator,
    sockets: &[UdpSocket],
    dest: SocketAddrV6,
    args: &LabArgs,
    server_pid: u32,
    clk: u64,
) -> anyhow::Result<RunReport> {
    let mut out = [0u8; OUT_LEN];
    let mut rx = [0u8; 2048];
    let mut pollfds: Vec<libc::pollfd> = sockets
        .iter()
        .map(|s| libc::pollfd {
            fd: s.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let t0 = Instant::now();
    if lg.in_flight() == 0 {
        for i in 0..lg.window() {
            let n = lg.start(i, t0, &mut out)?;
            send(lg, sockets, i, &out[..n], dest);
        }
    }
    let warm_end = t0 + Duration::from_secs_f64(args.warmup);
    let measure = Duration::from_secs_f64(args.seconds);
    let mut start: Option<(Instant, Snapshot)> = None;
    let mut last_scan = t0;
    loop {
        let mut got = 0;
        for (k, sock) in sockets.iter().enumerate() {
            for _ in 0..RECV_BURST {
                match sock.recv(&mut rx) {
                    Ok(n) => {
                        got += 1;
                        let now = Instant::now();
                        let bytes = rx.get(..n).unwrap_or_default();
                        if let Some((slot, len)) = lg.on_datagram(bytes, now, &mut out) {
                            send(lg, sockets, slot, &out[..len], dest);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e).with_context(|| format!("recv on socket {k}")),
                }
            }
        }
        let now = Instant::now();
        match &start {
            None if now >= warm_end => {
                lg.reset_stats();
                start = Some((now, Snapshot::take(server_pid)?));
            }
            Some((t, before)) if now.duration_since(*t) >= measure => {
                let after = Snapshot::take(server_pid)?;
                let elapsed = now.duration_since(*t).as_secs_f64();
                return Ok(report(
                    lg,
                    elapsed,
                    &CpuUse::between(before, &after, elapsed, clk),
                ));
            }
            _ => {}
        }
        if now.duration_since(last_scan) >= SCAN_EVERY {
            last_scan = now;
            for i in 0..lg.window() {
                if lg.timed_out(i, now) {
                    let n = lg.restart_after_timeout(i, now, &mut out)?;
                    send(lg, sockets, i, &out[..n], dest);
                }
            }
        }
        if got == 0 {
            // SAFETY: `pollfds` is a valid array of `len` pollfd structs for the duration of
            // the call; the fds are open (owned by `sockets`).
            let rc = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as libc::nfds_t, 1) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e).context("poll");
                }
            }
        }
    }
}

fn report(lg: &Generator, elapsed_s: f64, cpu: &CpuUse) -> RunReport {
    let s = &lg.stats;
    let us = |h: &hdrhistogram::Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1e3;
    RunReport {
        elapsed_s,
        exchanges: s.exchanges,
        round_trips: s.round_trips,
        rate: s.exchanges as f64 / elapsed_s,
        rtt_us: [
            us(&s.rtt_ns, 0.5),
            us(&s.rtt_ns, 0.99),
            us(&s.rtt_ns, 0.999),
        ],
        exchange_us: [us(&s.exchange_ns, 0.5), us(&s.exchange_ns, 0.99)],
        timeouts: s.timeouts,
        stale: s.stale,
        bad: s.bad,
        no_lease: s.no_lease,
        send_errors: s.send_errors,
        server_us_per_exchange: if s.exchanges > 0 {
            cpu.server_us / s.exchanges as f64
        } else {
            f64::NAN
        },
        cpu: cpu.clone(),
    }
}

/// Median of `v` (mean of the middle two for an even count); NaN if empty.
fn median(v: &[f64]) -> f64 {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if s.is_empty() {
        return f64::NAN;
    }
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// `median (min–max)`, or just the value for one run.
fn summarize(v: &[f64], decimals: usize) -> String {
    let med = median(v);
    if v.len() < 2 {
        return format!("{med:.decimals$}");
    }
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{med:.decimals$} ({min:.decimals$}–{max:.decimals$})")
}

/// Foreign load above this share of one CPU (%) marks a run as disturbed.
const FOREIGN_LIMIT_PCT: f64 = 5.0;

/// The table columns: header, decimals, value.
type Column = (&'static str, usize, fn(&RunReport) -> f64);

const COLUMNS: [Column; 11] = [
    ("exch/s", 0, |r| r.rate),
    ("rtt p50 µs", 1, |r| r.rtt_us[0]),
    ("rtt p99 µs", 1, |r| r.rtt_us[1]),
    ("rtt p99.9 µs", 1, |r| r.rtt_us[2]),
    ("timeouts", 0, |r| r.timeouts as f64),
    ("srv CPU %", 1, |r| r.cpu.server_pct),
    ("srv µs/exch", 2, |r| r.server_us_per_exchange),
    ("gen CPU %", 1, |r| r.cpu.generator_pct),
    ("irq %", 1, |r| r.cpu.irq_pct),
    ("foreign %", 1, |r| r.cpu.foreign_pct),
    ("steal %", 1, |r| r.cpu.steal_pct),
];

fn print_table(args: &LabArgs, reports: &[RunReport]) {
    let mut header = format!("| {:<8} |", "run");
    let mut rule = String::from("| --- |");
    for (name, _, _) in COLUMNS {
        header.push_str(&format!(" {name} |"));
        rule.push_str(" ---: |");
    }
    println!("\n{header}\n{rule}");
    for (i, r) in reports.iter().enumerate() {
        let mut row = format!("| {:<8} |", i + 1);
        for (_, d, f) in COLUMNS {
            row.push_str(&format!(" {:.d$} |", f(r)));
        }
        let flag = if r.cpu.foreign_pct > FOREIGN_LIMIT_PCT {
            format!(
                " foreign load! top: {}",
                r.cpu.top_foreign.as_deref().unwrap_or("?")
            )
        } else {
            String::new()
        };
        println!("{row}{flag}");
    }
    if reports.len() > 1 {
        let mut row = String::from("| median (min–max) |");
        for (_, d, f) in COLUMNS {
            let v: Vec<f64> = reports.iter().map(f).collect();
            row.push_str(&format!(" {} |", summarize(&v, d)));
        }
        println!("{row}");
    }
    println!(
        "\n{} {} exchange(s); CPU % is of one CPU; per-CPU busy: {}",
        args.datapath.name(),
        if args.datapath == Datapath::XdpDemo {
            "SOLICIT→ADVERTISE"
        } else {
            "SARR"
        },
        reports
            .iter()
            .map(|r| {
                r.cpu
                    .busy_pct
                    .iter()
                    .enumerate()
                    .map(|(c, p)| format!("cpu{c} {p:.0}%"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join(" | ")
    );
}

/// `null` for NaN/infinite (not valid JSON numbers), else the number with `d` decimals.
fn num(x: f64, d: usize) -> String {
    if x.is_finite() {
        format!("{x:.d$}")
    } else {
        "null".to_owned()
    }
}

fn json_common(args: &LabArgs, kind: Kind) -> String {
    format!(
        "\"tool\":\"loadgen\",\"datapath\":\"{}\",\"exchange\":\"{}\",\"round_trips_per_exchange\":{},\
         \"queues\":{},\"clients\":{},\"window\":{},\"server_cpus\":\"{}\",\"busy_poll\":{}",
        args.datapath.name(),
        kind.name(),
        kind.round_trips(),
        args.queues,
        args.clients,
        args.window,
        args.cores.replace('"', ""),
        args.busy_poll
    )
}

/// `,"failover_sync":{…}` with `--failover`, else nothing.
fn sync_json(sync: Option<&SyncSummary>) -> String {
    sync.map_or_else(String::new, |s| format!(",\"failover_sync\":{}", s.json()))
}

fn json_line(
    args: &LabArgs,
    kind: Kind,
    run: usize,
    r: &RunReport,
    sync: Option<&SyncSummary>,
) -> String {
    let busy: Vec<String> = r.cpu.busy_pct.iter().map(|p| num(*p, 1)).collect();
    format!(
        "{{{},\"run\":{run},\"seconds\":{},\"exchanges\":{},\"exchanges_per_s\":{},\
         \"round_trips\":{},\"rtt_us\":{{\"p50\":{},\"p99\":{},\"p999\":{}}},\
         \"exchange_us\":{{\"p50\":{},\"p99\":{}}},\"timeouts\":{},\"stale\":{},\"bad\":{},\
         \"no_lease\":{},\"send_errors\":{},\"server_cpu_pct\":{},\
         \"server_cpu_us_per_exchange\":{},\"generator_cpu_pct\":{},\"irq_pct\":{},\
         \"steal_pct\":{},\"foreign_cpu_pct\":{},\"cpu_busy_pct\":[{}]{}}}",
        json_common(args, kind),
        num(r.elapsed_s, 3),
        r.exchanges,
        num(r.rate, 1),
        r.round_trips,
        num(r.rtt_us[0], 1),
        num(r.rtt_us[1], 1),
        num(r.rtt_us[2], 1),
        num(r.exchange_us[0], 1),
        num(r.exchange_us[1], 1),
        r.timeouts,
        r.stale,
        r.bad,
        r.no_lease,
        r.send_errors,
        num(r.cpu.server_pct, 1),
        num(r.server_us_per_exchange, 3),
        num(r.cpu.generator_pct, 1),
        num(r.cpu.irq_pct, 1),
        num(r.cpu.steal_pct, 1),
        num(r.cpu.foreign_pct, 1),
        busy.join(","),
        sync_json(sync)
    )
}

fn summary_json(
    args: &LabArgs,
    kind: Kind,
    reports: &[RunReport],
    sync: Option<&SyncSummary>,
) -> String {
    let field = |f: fn(&RunReport) -> f64, d: usize| {
        let v: Vec<f64> = reports.iter().map(f).collect();
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        format!(
            "{{\"median\":{},\"min\":{},\"max\":{}}}",
            num(median(&v), d),
            num(min, d),
            num(max, d)
        )
    };
    format!(
        "{{{},\"summary\":true,\"runs\":{},\"exchanges_per_s\":{},\"rtt_p50_us\":{},\
         \"rtt_p99_us\":{},\"rtt_p999_us\":{},\"server_cpu_us_per_exchange\":{},\
         \"server_cpu_pct\":{},\"timeouts\":{}{}}}",
        json_common(args, kind),
        reports.len(),
        field(|r| r.rate, 1),
        field(|r| r.rtt_us[0], 1),
        field(|r| r.rtt_us[1], 1),
        field(|r| r.rtt_us[2], 1),
        field(|r| r.server_us_per_exchange, 3),
        field(|r| r.cpu.server_pct, 1),
        field(|r| r.timeouts as f64, 0),
        sync_json(sync)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_cpu_list_expands_ranges() {
        assert_eq!(parse_cpu_list("1").unwrap(), vec![1]);
        assert_eq!(parse_cpu_list("0-2,5").unwrap(), vec![0, 1, 2, 5]);
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("x").is_err());
    }

    #[test]
    fn median_of_even_count_is_mean_of_middle_pair() {
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[5.0, 1.0, 3.0]), 3.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn summarize_shows_median_with_range() {
        assert_eq!(summarize(&[10.0, 30.0, 20.0], 0), "20 (10–30)");
        assert_eq!(summarize(&[7.26], 1), "7.3");
    }

    #[test]
    fn on_tmpfs_tells_dev_shm_from_a_missing_path() {
        assert!(!on_tmpfs(std::path::Path::new("/nonexistent/loadgen")));
        if std::path::Path::new("/dev/shm").is_dir() {
            assert!(on_tmpfs(std::path::Path::new("/dev/shm")));
        }
    }

    #[test]
    fn num_of_nan_is_json_null() {
        assert_eq!(num(f64::NAN, 1), "null");
        assert_eq!(num(1.25, 2), "1.25");
    }
}
