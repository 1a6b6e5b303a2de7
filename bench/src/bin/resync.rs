//! `resync`: the failover resynchronisation benchmark of issue 9 ("1 M bindings
//! resynchronised over the veth link in under 10 s").
//!
//! A primary `tandem run` whose state directory holds `--bindings` ACTIVE bindings (IA_NA and
//! IA_PD, written with the store API, each in its client's shard), a secondary with an empty
//! state directory (a lost disk), in two namespaces over a veth, mutual TLS by default. The
//! secondary starts in RECOVER, sends UPDREQALL, the primary streams every binding as BNDUPD,
//! UPDDONE moves the secondary to RECOVER-WAIT (RFC 8156 §8.5.2). Reported per run: the time
//! from the secondary's start and from UPDREQALL to UPDDONE, bindings/s, MB on the wire, both
//! servers' CPU time; both stores are then compared binding by binding and
//! `tandem leases --json` counts the secondary's. A few lines for people, then one JSON line
//! per run. The work is `tandem_hwtest::resync`; see bench/README.md. Needs root.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use tandem_hwtest::resync::{self, MAX_BINDINGS, ResyncOptions};

/// Failover resynchronisation benchmark: a secondary with an empty disk receives every
/// binding of its primary (UPDREQALL → BNDUPD … → UPDDONE) over a veth link.
#[derive(Debug, Parser)]
#[command(name = "resync", max_term_width = 100)]
struct Cli {
    /// The `tandem` binary (a release build).
    #[arg(long, value_name = "PATH")]
    server_bin: PathBuf,
    /// ACTIVE bindings on the primary (two in three IA_NA addresses, one in three IA_PD
    /// prefixes).
    #[arg(long, default_value_t = 1_000_000,
          value_parser = clap::value_parser!(u64).range(1..=MAX_BINDINGS))]
    bindings: u64,
    /// Mutual TLS on the failover link (the default).
    #[arg(long, conflicts_with = "insecure")]
    tls: bool,
    /// The failover link in the clear (`insecure = true`).
    #[arg(long)]
    insecure: bool,
    /// Lease shards of both servers (`[datapath] shards`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    shards: u32,
    /// `max-unacked-bndupd` of both servers (the secondary's is the window the primary
    /// streams in); default: the configuration's default.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=65535))]
    window: Option<u32>,
    /// Directory the scratch directory (configurations, state directories, logs) is made in
    /// (default: the system temp dir, i.e. a disk here; /dev/shm is a tmpfs, where msync
    /// writes nothing back).
    #[arg(long, value_name = "DIR")]
    scratch_dir: Option<PathBuf>,
    /// Seconds the secondary may take from its start to RECOVER-WAIT.
    #[arg(long, default_value_t = 600)]
    timeout: u64,
    /// Skip counting the secondary's leases with `tandem leases --json`.
    #[arg(long)]
    no_leases_json: bool,
    /// Profile both servers from the secondary's start to RECOVER-WAIT with
    /// `perf record -e cpu-clock -g` into DIR/primary.perf.data and DIR/secondary.perf.data.
    #[arg(long, value_name = "DIR")]
    perf_dir: Option<PathBuf>,
    /// Runs, each on a fresh lab and fresh state directories.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    runs: u32,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match bench(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("resync: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the benchmark `--runs` times; `false` if a run found the tables differ.
fn bench(cli: &Cli) -> anyhow::Result<bool> {
    let bin = std::fs::canonicalize(&cli.server_bin)
        .with_context(|| format!("--server-bin {}", cli.server_bin.display()))?;
    let opts = ResyncOptions {
        bindings: cli.bindings,
        tls: !cli.insecure,
        shards: cli.shards,
        scratch_parent: cli.scratch_dir.clone(),
        max_unacked_bndupd: cli.window,
        timeout: Duration::from_secs(cli.timeout),
        leases_json: !cli.no_leases_json,
        perf_dir: cli.perf_dir.clone(),
    };
    let mut ok = true;
    let mut jsons = Vec::new();
    for run in 1..=cli.runs {
        let report = resync::run(&bin, &opts, &mut |line| eprintln!("resync [{run}]: {line}"))?;
        print!("{}", report.render());
        ok &= report.failures().is_empty();
        jsons.push(report.json());
    }
    for j in jsons {
        println!("{j}");
    }
    Ok(ok)
}
