//! The `tandem` command line: the arguments, parsed into each command's options, and the
//! dispatch to the module that runs the command ([`crate::server`] for `run`, [`crate::demo`]
//! for `xdp-demo`); the small commands (`check`, `leases`, `status`, `tune`, `xdp-verify`) are
//! a call or two each, here.
//!
//! stdout carries only the machine-readable lines of the contract (`F: OK …`, `verified …`,
//! `READY …`, `COUNTERS …`, `WORKER …`, the lease listing), each flushed at once; logs go to
//! stderr (level from `RUST_LOG`, default `info`).

use std::io::{self, IsTerminal as _};
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use tandem_datapath::sys::cpu::allowed_cores;
use tandem_datapath::worker::parse_core_list;
use tandem_datapath::xdp::{AttachMode, LogLevel, XdpProgram};

use crate::demo::DemoOptions;
use crate::output::emit_line;
use crate::placement::MAX_QUEUES;
use crate::server::RunOptions;
use crate::timefmt::unix_now;

/// Tandem: a DHCPv6 server appliance (RFC 8415) with an XDP/AF_XDP datapath.
///
/// `run` serves DHCPv6 on a UDP socket (needs CAP_NET_BIND_SERVICE); `check` and `leases` need
/// no privileges beyond reading their files; the `xdp-*` commands need root (CAP_BPF,
/// CAP_NET_ADMIN and CAP_NET_RAW).
///
/// Logs go to stderr; set RUST_LOG (e.g. `RUST_LOG=debug`, `RUST_LOG=tandem_xdp=debug`) to
/// change their level (default: info). stdout carries only the result lines described in each
/// command's help.
#[derive(Debug, Parser)]
#[command(name = "tandem", version, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a configuration file.
    ///
    /// Prints `F: OK (N subnets, M pools, K PD pools, R reservations)` and exits 0, or prints
    /// every problem found, one per line (`file:line:column: field: message`), on stderr and
    /// exits 1.
    Check(CheckArgs),
    /// Run the DHCPv6 server (foreground) on a UDP socket or on XDP/AF_XDP workers.
    ///
    /// Socket datapath (default): listens on UDP port 547 on the configured interfaces
    /// (joining ff02::1:2 on each, and taking unicast from relay agents). XDP datapath
    /// (`[datapath] mode = "xdp"` or `--datapath xdp`, root): attaches the XDP program to each
    /// interface and serves every RX queue with a pinned worker. Leases live in memory-mapped
    /// tables in the state directory, sharded by client DUID (`leases.tdb`, or
    /// `leases-<k>-of-<S>.tdb`), the server DUID next to them. Prints `READY mode=socket
    /// shards=S` or `READY mode=xdp attach=native|generic workers=W shards=S` once serving. On
    /// SIGHUP/SIGINT/SIGTERM it flushes the stores, prints `COUNTERS rx_<type>=N …
    /// tx_<type>=N … drop_<reason>=N … <event>=N …` (xdp: then `xdp_<name>=N …` and
    /// `handoff_*=N`, and one `WORKER …` line per worker) and exits 0. Exits 1 with the reason
    /// on a configuration or setup error.
    Run(RunArgs),
    /// List the leases in a state directory (of a running or a stopped server).
    ///
    /// Default: a table (type, address or prefix, state, client DUID, IAID, preferred and
    /// valid lifetimes, expiry in UTC). With --json, one JSON object per lease and line:
    /// `{"type":"na"|"pd","address"|"prefix":…,"duid":"hex","iaid":N,"state":"active"|…,
    /// "preferred_lifetime":N,"valid_lifetime":N,"cltt":RFC3339|null,"expires":RFC3339|null}`.
    Leases(LeasesArgs),
    /// Show the state of a running server, asked through its control socket.
    ///
    /// Datapath and XDP attach mode, interfaces, lease bindings and shards, the workers
    /// (interface, queue, core, rx/tx/dropped/replies) and the XDP, engine and socket
    /// counters, and per failover relationship its role, state (since when, previous), the
    /// partner's state, the link (up/down and why, the TLS peer), last contact, skew and
    /// counters. With --json, one JSON object on one line:
    /// `{"datapath":"xdp"|"socket","attach_mode":…|null,"interfaces":[…],"shards":N,
    /// "bindings":N,"capacity":N,"workers":[{"iface":…,"queue":N,"core":N|null,"rx":N,
    /// "tx":N,"dropped":N,"replies":N}],"xdp":{…},"engine":{…},"socket":{…},
    /// "failover":[{"name":…,"role":…,"state":…,…}]}` (docs/operations.md).
    /// Exits 1 if no server runs with that state directory.
    Status(StatusArgs),
    /// Inspect or change where a running server's workers run.
    Tune(TuneArgs),
    /// Tell a running server that its failover partner is down (RFC 8156 §8.4).
    ///
    /// Moves the relationship (RELATIONSHIP, or the only one) from NORMAL,
    /// COMMUNICATIONS-INTERRUPTED or RESOLUTION-INTERRUPTED to PARTNER-DOWN (the "external
    /// command" of §8.8.2, §8.9.2, §8.11.2). Only do this when the partner is really not
    /// serving: in PARTNER-DOWN this server takes over its clients after the MCLT. Prints
    /// `failover NAME: OLD -> PARTNER-DOWN` and exits 0; exits 1 with the server's reason when
    /// the state does not allow it.
    PartnerDown(PartnerDownArgs),
    /// Load the XDP program into the kernel (runs the verifier) without attaching it.
    ///
    /// Prints one line, `verified prog=tandem_xdp insns=<xlated insns> jited_bytes=<n> …`, and
    /// exits 0; if the kernel rejects the program, prints why (with the verifier log) and
    /// exits 1.
    XdpVerify(VerifyArgs),
    /// Answer DHCPv6 from AF_XDP sockets on an interface (the datapath demo).
    ///
    /// Attaches the XDP program to IF, opens one AF_XDP socket per RX queue, each served by a
    /// worker thread pinned to a core, and answers DHCPv6 from the AF_XDP rings without any
    /// address pool: SOLICIT (direct or inside RELAY-FORW) gets an ADVERTISE with our Server
    /// ID (DUID-LL of IF's MAC), the client's Client ID and each IA_NA / IA_PD marked
    /// NoAddrsAvail / NoPrefixAvail; INFORMATION-REQUEST gets a REPLY; relayed requests get a
    /// RELAY-REPL chain; everything else is dropped and counted. Other traffic (ND, ping,
    /// SSH, other UDP) still reaches the kernel.
    ///
    /// Once serving, prints `READY iface=IF mode=native|generic queues=N`. On
    /// SIGHUP/SIGINT/SIGTERM or after --duration it prints `COUNTERS xdp_<name>=<n> …` (the XDP
    /// program's counters summed over CPUs) and one `WORKER queue=Q core=C rx=N tx=N dropped=N
    /// replies=N` line per queue (rx: frames received, replies: frames answered, tx: replies
    /// the kernel reports sent, dropped: frames not answered; core=- when not pinned), then
    /// exits 0.
    /// Exits 1 with the reason on any setup error.
    XdpDemo(DemoArgs),
}

/// Arguments of `tandem check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
}

/// Arguments of `tandem run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// State directory (leases, server DUID); default: `[server] state-dir` of the
    /// configuration. Created if missing.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Lease store capacity in bindings, fixed when the lease file is created.
    #[arg(long, value_name = "N", default_value_t = tandem_store::DEFAULT_CAPACITY)]
    pub capacity: u64,
    /// Seconds between msyncs of the lease store: what a power loss may lose (a killed
    /// process loses nothing committed). Decimals allowed.
    #[arg(long, value_name = "SECS", default_value = "1", value_parser = parse_duration)]
    pub flush_interval: Duration,
    /// Datapath: `socket` (UDP socket, one thread) or `xdp` (XDP steering to per-queue AF_XDP
    /// workers; needs root). Overrides `[datapath] mode`.
    #[arg(long, value_name = "MODE", value_parser = parse_datapath)]
    pub datapath: Option<tandem_config::DatapathMode>,
    /// Cores for the XDP workers, e.g. `0,1`, `0-3` or `0-1,3`; worker i gets the
    /// (i mod len)-th core. Overrides `[datapath] cores`.
    #[arg(long, value_name = "LIST", value_parser = parse_cores)]
    pub cores: Option<Cores>,
}

fn parse_datapath(s: &str) -> Result<tandem_config::DatapathMode, String> {
    tandem_config::DatapathMode::parse(s)
        .ok_or_else(|| format!("unknown datapath `{s}`, expected `socket` or `xdp`"))
}

/// Which running server to talk to: `--state-dir D`, or `--config F` for its
/// `[server] state-dir`; default: the default state directory.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// State directory of the running server (its control socket is `DIR/tandem.sock`).
    #[arg(long, value_name = "DIR", conflicts_with = "config")]
    pub state_dir: Option<PathBuf>,
    /// Configuration file of the running server: its `[server] state-dir` is used.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Arguments of `tandem status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `tandem partner-down`.
#[derive(Debug, Args)]
pub struct PartnerDownArgs {
    /// The relationship name (`[[failover]] name`); optional with one relationship.
    #[arg(value_name = "RELATIONSHIP")]
    pub relationship: Option<String>,
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Arguments of `tandem tune`.
#[derive(Debug, Args)]
pub struct TuneArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: TuneCommand,
}

/// The `tandem tune` subcommands.
#[derive(Debug, Subcommand)]
pub enum TuneCommand {
    /// Show the workers (interface, queue, current core, RX/TX packets per second over about
    /// a second), the RX queues of each interface and the interrupts of its queues with their
    /// CPU affinity (`/proc/irq/N/smp_affinity_list`).
    ///
    /// With --json, one JSON object: `{"datapath":…,"rate_interval_s":S|null,"workers":[{…,
    /// "rx_pps":R|null,"tx_pps":R|null}],"interfaces":[{"name":…,"rx_queues":[…]|null,
    /// "rx_queues_error":…|null,"irq_status":"found"|"virtual"|"not_found"|"…error…",
    /// "irqs":[{"irq":N,"name":…,"affinity":…|null}]}]}`.
    Show(TuneShowArgs),
    /// Move the workers to other cores at runtime: worker i goes to the (i mod len)-th core
    /// of LIST (`0,1`, `0-3` or `0-1,3`). Prints the new placement; the workers apply it on
    /// their next wake-up (see `tandem tune show`).
    Cores(TuneCoresArgs),
}

/// Arguments of `tandem tune show`.
#[derive(Debug, Args)]
pub struct TuneShowArgs {
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
    /// One JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `tandem tune cores`.
#[derive(Debug, Args)]
pub struct TuneCoresArgs {
    /// The cores, e.g. `0,1`, `0-3` or `0-1,3`.
    #[arg(value_name = "LIST", value_parser = parse_cores)]
    pub cores: Cores,
    /// The server.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// How long `status` and `tune` wait for the server's answer.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// Arguments of `tandem leases`.
#[derive(Debug, Args)]
pub struct LeasesArgs {
    /// State directory of the server.
    #[arg(long, value_name = "DIR")]
    pub state_dir: PathBuf,
    /// One JSON object per lease and line instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `tandem xdp-verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Kernel-side log level compiled into the program: off|error|warn|info|debug|trace.
    #[arg(long, value_name = "LEVEL", default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
}

/// Arguments of `tandem xdp-demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Interface to serve.
    #[arg(long, value_name = "IF")]
    pub iface: String,
    /// Number of RX queues to serve, 0..N (default: all RX queues of IF).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_QUEUES)))]
    pub queues: Option<u32>,
    /// XDP attach mode: auto (native, else generic with a warning), native or generic.
    #[arg(long, value_name = "MODE", default_value_t = AttachMode::Auto)]
    pub mode: AttachMode,
    /// Workers spin on their rings instead of sleeping in poll(): lower latency, and each
    /// worker keeps its core 100% busy.
    #[arg(long)]
    pub busy_poll: bool,
    /// Cores to pin the workers to, e.g. `0,1`, `0-3` or `0-1,3`; queue i gets the
    /// (i mod len)-th core of the list (default: the cores this process may run on, in turn).
    #[arg(long, value_name = "LIST", value_parser = parse_cores)]
    pub cores: Option<Cores>,
    /// Source address of replies to multicast requests (default: the first global address of
    /// IF, else its link-local address).
    #[arg(long, value_name = "IPV6")]
    pub server_addr: Option<Ipv6Addr>,
    /// Stop after this many seconds (decimals allowed), as on SIGTERM.
    #[arg(long, value_name = "SECS", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Kernel-side log level compiled into the XDP program: off|error|warn|info|debug|trace.
    #[arg(long, value_name = "LEVEL", default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
}

impl RunArgs {
    /// What the server is asked to do.
    fn options(&self) -> RunOptions {
        RunOptions {
            config: self.config.clone(),
            state_dir: self.state_dir.clone(),
            capacity: self.capacity,
            flush_interval: self.flush_interval,
            datapath: self.datapath,
            cores: self.cores.as_ref().map(|c| c.0.clone()),
        }
    }
}

impl DemoArgs {
    /// What the demo is asked to do.
    fn options(&self) -> DemoOptions {
        DemoOptions {
            iface: self.iface.clone(),
            queues: self.queues,
            mode: self.mode,
            busy_poll: self.busy_poll,
            cores: self.cores.as_ref().map(|c| c.0.clone()),
            server_addr: self.server_addr,
            duration: self.duration,
            log_level: self.log_level,
        }
    }
}

/// A parsed `--cores` list (see [`parse_core_list`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cores(pub Vec<usize>);

fn parse_cores(s: &str) -> Result<Cores, String> {
    parse_core_list(s).map(Cores).map_err(|e| e.to_string())
}

pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(secs).map_err(|_| format!("`{s}` is not a usable duration"))
}

/// Runs the program: parses the command line, sets up logging, runs the command. Errors are
/// printed to stderr with their causes; the exit code is 0 on success, 1 on error (2 for a bad
/// command line, as clap does).
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Check(args) => check(&args),
        Command::Run(args) => crate::server::run(&args.options()),
        Command::Leases(args) => leases(&args),
        Command::Status(args) => status(&args),
        Command::Tune(args) => tune(&args),
        Command::PartnerDown(args) => partner_down(&args),
        Command::XdpVerify(args) => verify(&args),
        Command::XdpDemo(args) => crate::demo::run(&args.options()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tandem: error: {}", render_error(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, `: `-separated, leaving out a cause whose text the
/// line already holds (the datapath's errors quote their source in their own message).
fn render_error(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // `try_init` also installs the `log` → tracing bridge (tracing-log), so the datapath's and
    // aya's `log` records show up. A second init (tests) is harmless.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .with_target(true)
        .try_init();
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let ok = crate::check::check(&args.config, &mut io::stdout(), &mut io::stderr())
        .context("writing the result")?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The state directory of the server `args` names; `None` if its configuration is invalid
/// (the errors are printed).
fn server_state_dir(args: &ServerArgs) -> anyhow::Result<Option<PathBuf>> {
    if let Some(dir) = &args.state_dir {
        return Ok(Some(dir.clone()));
    }
    let Some(path) = &args.config else {
        return Ok(Some(PathBuf::from(tandem_config::DEFAULT_STATE_DIR)));
    };
    let config = crate::check::load_or_report(path, &mut io::stderr()).context("writing errors")?;
    Ok(config.map(|c| c.server.state_dir))
}

/// Sends `line` to the server of `state_dir` and writes its answer to `out`; an `error: …`
/// answer becomes the error.
fn control_call(
    state_dir: &std::path::Path,
    line: &str,
    out: &mut dyn io::Write,
) -> anyhow::Result<()> {
    let answer = crate::control::request(state_dir, line, CONTROL_TIMEOUT)?;
    if let Some(e) = answer.strip_prefix("error: ") {
        bail!("the server refused `{line}`: {}", e.trim_end());
    }
    out.write_all(answer.as_bytes())
        .and_then(|()| out.flush())
        .context("writing to stdout")
}

fn status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let Some(dir) = server_state_dir(&args.server)? else {
        return Ok(ExitCode::FAILURE);
    };
    let line = if args.json { "status --json" } else { "status" };
    control_call(&dir, line, &mut io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

fn partner_down(args: &PartnerDownArgs) -> anyhow::Result<ExitCode> {
    let Some(dir) = server_state_dir(&args.server)? else {
        return Ok(ExitCode::FAILURE);
    };
    let line = match &args.relationship {
        Some(name) => format!("partner-down {name}"),
        None => "partner-down".to_owned(),
    };
    control_call(&dir, &line, &mut io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

fn tune(args: &TuneArgs) -> anyhow::Result<ExitCode> {
    let (server, line) = match &args.command {
        TuneCommand::Show(a) => (
            &a.server,
            if a.json {
                "tune show --json"
            } else {
                "tune show"
            }
            .to_owned(),
        ),
        TuneCommand::Cores(a) => {
            tune_cores_allowed(&a.cores.0, &allowed_cores())?;
            let list: Vec<String> = a.cores.0.iter().map(ToString::to_string).collect();
            (&a.server, format!("tune cores {}", list.join(",")))
        }
    };
    let Some(dir) = server_state_dir(server)? else {
        return Ok(ExitCode::FAILURE);
    };
    control_call(&dir, &line, &mut io::stdout().lock())?;
    Ok(ExitCode::SUCCESS)
}

/// `tune cores`: every core must be one this process may run on (the server checks again
/// against its own CPU set).
fn tune_cores_allowed(cores: &[usize], allowed: &[usize]) -> anyhow::Result<()> {
    crate::tune::check_cores(cores, allowed).map_err(|e| anyhow!("tune cores: {e}"))
}

fn leases(args: &LeasesArgs) -> anyhow::Result<ExitCode> {
    let stores = crate::server::shard::open_all_read_only(&args.state_dir)?;
    let bindings: Vec<_> = stores.iter().flat_map(crate::leases::collect).collect();
    crate::leases::write_listing(&bindings, args.json, unix_now(), &mut io::stdout().lock())
        .context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn verify(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let program = XdpProgram::load(args.log_level)?;
    let stats = program.verifier_stats()?;
    emit_line(&format!("verified {stats}"))?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn demo_args_full_set_parsed() {
        let cli = Cli::try_parse_from([
            "tandem",
            "xdp-demo",
            "--iface",
            "veth0",
            "--queues",
            "2",
            "--mode",
            "generic",
            "--busy-poll",
            "--cores",
            "0-1,3",
            "--server-addr",
            "fd00::1",
            "--duration",
            "1.5",
        ])
        .unwrap();
        let Command::XdpDemo(args) = cli.command else {
            panic!("not xdp-demo")
        };
        assert_eq!(args.iface, "veth0");
        assert_eq!(args.queues, Some(2));
        assert_eq!(args.mode, AttachMode::Generic);
        assert!(args.busy_poll);
        assert_eq!(args.cores, Some(Cores(vec![0, 1, 3])));
        assert_eq!(args.server_addr, Some("fd00::1".parse().unwrap()));
        assert_eq!(args.duration, Some(Duration::from_millis(1500)));
        assert_eq!(args.log_level, LogLevel::Info);
    }

    #[test]
    fn demo_args_bad_cores_explained() {
        let err = Cli::try_parse_from(["tandem", "xdp-demo", "--iface", "x", "--cores", "3-1"])
            .unwrap_err();
        assert!(err.to_string().contains("runs backwards"), "{err}");
        let err = Cli::try_parse_from(["tandem", "xdp-demo", "--iface", "x", "--cores", "a"])
            .unwrap_err();
        assert!(err.to_string().contains("0-1,3"), "{err}");
    }

    #[test]
    fn demo_args_out_of_range_queues_rejected() {
        assert!(
            Cli::try_parse_from(["tandem", "xdp-demo", "--iface", "x", "--queues", "0"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["tandem", "xdp-demo", "--iface", "x", "--queues", "65"]).is_err()
        );
        assert!(
            Cli::try_parse_from(["tandem", "xdp-demo", "--iface", "x", "--mode", "turbo"]).is_err()
        );
    }

    #[test]
    fn run_args_defaults_and_overrides_parsed() {
        let cli = Cli::try_parse_from(["tandem", "run", "--config", "t.toml"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.config, PathBuf::from("t.toml"));
        assert_eq!(args.state_dir, None);
        assert_eq!(args.capacity, tandem_store::DEFAULT_CAPACITY);
        assert_eq!(args.flush_interval, Duration::from_secs(1));
        let cli = Cli::try_parse_from([
            "tandem",
            "run",
            "--config",
            "t.toml",
            "--state-dir",
            "/s",
            "--capacity",
            "10",
            "--flush-interval",
            "0.25",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.state_dir, Some(PathBuf::from("/s")));
        assert_eq!(args.capacity, 10);
        assert_eq!(args.flush_interval, Duration::from_millis(250));
        assert!(Cli::try_parse_from(["tandem", "run"]).is_err());
    }

    #[test]
    fn status_and_tune_args_parsed() {
        let cli = Cli::try_parse_from(["tandem", "status", "--state-dir", "/s", "--json"]).unwrap();
        let Command::Status(args) = cli.command else {
            panic!("not status")
        };
        assert_eq!(args.server.state_dir, Some(PathBuf::from("/s")));
        assert!(args.json);
        let cli = Cli::try_parse_from(["tandem", "tune", "cores", "0-1,3", "--config", "t.toml"])
            .unwrap();
        let Command::Tune(TuneArgs {
            command: TuneCommand::Cores(args),
        }) = cli.command
        else {
            panic!("not tune cores")
        };
        assert_eq!(args.cores, Cores(vec![0, 1, 3]));
        assert_eq!(args.server.config, Some(PathBuf::from("t.toml")));
        let cli = Cli::try_parse_from(["tandem", "tune", "show", "--json"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Tune(TuneArgs {
                command: TuneCommand::Show(TuneShowArgs { json: true, .. })
            })
        ));
    }

    #[test]
    fn status_and_tune_bad_args_rejected() {
        let both = [
            "tandem",
            "status",
            "--state-dir",
            "/s",
            "--config",
            "t.toml",
        ];
        assert!(Cli::try_parse_from(both).is_err());
        let err = Cli::try_parse_from(["tandem", "tune", "cores", "3-1"]).unwrap_err();
        assert!(err.to_string().contains("runs backwards"), "{err}");
        assert!(Cli::try_parse_from(["tandem", "tune", "cores"]).is_err());
        assert!(Cli::try_parse_from(["tandem", "tune"]).is_err());
    }

    #[test]
    fn tune_cores_outside_cpu_set_refused() {
        assert!(tune_cores_allowed(&[0, 1], &[0, 1, 2, 3]).is_ok());
        let err = tune_cores_allowed(&[1, 7], &[0, 1]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tune cores: core 7 is not one this process may run on (allowed: 0-1)"
        );
    }

    #[test]
    fn control_call_without_server_explains() {
        let dir = std::env::temp_dir().join(format!("tandem-cli-ctl-{}", std::process::id()));
        let mut out = Vec::new();
        let err = control_call(&dir, "status", &mut out).unwrap_err();
        assert_eq!(
            render_error(&err),
            format!(
                "no Tandem server is running with state dir {0} (no control socket at \
                 {0}/tandem.sock)",
                dir.display()
            )
        );
        assert!(out.is_empty());
    }

    #[test]
    fn server_state_dir_from_flag_config_or_default() {
        let flag = ServerArgs {
            state_dir: Some(PathBuf::from("/s")),
            config: None,
        };
        assert_eq!(server_state_dir(&flag).unwrap(), Some(PathBuf::from("/s")));
        let none = ServerArgs {
            state_dir: None,
            config: None,
        };
        assert_eq!(
            server_state_dir(&none).unwrap(),
            Some(PathBuf::from(tandem_config::DEFAULT_STATE_DIR))
        );
        let missing = ServerArgs {
            state_dir: None,
            config: Some(PathBuf::from("/nonexistent/tandem.toml")),
        };
        assert_eq!(server_state_dir(&missing).unwrap(), None);
    }

    #[test]
    fn leases_args_json_flag_parsed() {
        let cli = Cli::try_parse_from(["tandem", "leases", "--state-dir", "/s", "--json"]).unwrap();
        let Command::Leases(args) = cli.command else {
            panic!("not leases")
        };
        assert_eq!(args.state_dir, PathBuf::from("/s"));
        assert!(args.json);
        assert!(Cli::try_parse_from(["tandem", "leases"]).is_err());
    }

    #[test]
    fn verify_log_level_parsed() {
        let cli = Cli::try_parse_from(["tandem", "xdp-verify", "--log-level", "off"]).unwrap();
        let Command::XdpVerify(args) = cli.command else {
            panic!("not xdp-verify")
        };
        assert_eq!(args.log_level, LogLevel::Off);
    }

    #[test]
    fn render_error_skips_causes_already_quoted() {
        let inner = io::Error::other("os error 1");
        let e = anyhow::Error::new(inner)
            .context("map XSKS: os error 1")
            .context("loading");
        assert_eq!(render_error(&e), "loading: map XSKS: os error 1");
    }

    #[test]
    fn duration_parse_rejects_negative() {
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }
}
