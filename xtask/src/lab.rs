//! `cargo xtask lab`: build `tandem`, then run the lab of tandem-hwtest: `tandem run` serving
//! real Debian DHCPv6 clients (dhclient, dhcpcd, dibbler, WIDE dhcp6c, and dhclient behind the
//! WIDE relay) in network namespaces, printing what each client configured, the lease table and
//! the server's counters. `--datapath socket|xdp` picks the server's datapath (default socket);
//! with xdp the report adds the XDP program's `xdp_*` counters and fails unless
//! `xdp_redirected > 0`.
//!
//! `cargo xtask lab --failover` runs the lab as an RFC 8156 failover pair: a primary and a
//! secondary `tandem run` in two namespaces joined by a veth (mutual TLS), clients on each
//! side, both failover states printed as they move; then SIGKILL of the primary,
//! `tandem partner-down` on the secondary, and the restart back to NORMAL
//! (tandem-hwtest's `lab::failover`). `--failover --datapath xdp` runs both servers on the XDP
//! datapath (the XDP program on their client links, AF_XDP workers; the failover link stays
//! TCP) and also checks that the serving policy reached the workers.
//!
//! `cargo xtask lab --xdp-demo` runs the older XDP steering demo instead (multi-queue veth, XDP
//! attached, DHCPv6 answered from AF_XDP rings by `tandem xdp-demo`, simulated clients).
//!
//! tandem-hwtest depends on the whole datapath, so it sits behind xtask's `lab` feature (see
//! xtask/Cargo.toml): without the feature this command re-runs xtask through cargo with it.

use std::process::ExitCode;

use anyhow::Result;

/// Options of `cargo xtask lab`.
#[derive(Debug, clap::Args)]
pub(crate) struct LabArgs {
    /// Run the XDP steering demo (`tandem xdp-demo`, simulated clients) instead of the real
    /// clients against `tandem run`.
    #[arg(long)]
    pub(crate) xdp_demo: bool,
    /// Run the lab as an RFC 8156 failover pair: a primary and a secondary `tandem run`
    /// (socket datapath, mutual TLS over a veth) with clients on each side; show both
    /// failover states until NORMAL, the clients, then SIGKILL of the primary,
    /// COMMUNICATIONS-INTERRUPTED, `tandem partner-down`, and the restart back to NORMAL.
    /// With --datapath xdp both servers serve their client links on the XDP datapath.
    #[arg(long, conflicts_with = "xdp_demo")]
    pub(crate) failover: bool,
    /// The datapath of the lab's `tandem run`, or of both servers with --failover (not
    /// --xdp-demo).
    #[arg(long, value_enum, default_value_t = Datapath::Socket)]
    pub(crate) datapath: Datapath,
    /// Seconds all clients together may take to configure (the lab, not --xdp-demo).
    #[arg(long, value_name = "SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub(crate) client_timeout: u64,
    /// --xdp-demo: RX/TX queues of the lab's veth pair (one AF_XDP socket and worker per queue).
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) queues: u32,
    /// --xdp-demo: XDP attach mode.
    #[arg(long, value_enum, default_value_t = Mode::Native)]
    pub(crate) mode: Mode,
}

/// `--datapath` of `cargo xtask lab`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Datapath {
    /// One UDP socket on port 547.
    Socket,
    /// The XDP program on every server interface, DHCPv6 served by AF_XDP workers.
    Xdp,
}

impl Datapath {
    fn as_str(self) -> &'static str {
        match self {
            Self::Socket => "socket",
            Self::Xdp => "xdp",
        }
    }
}

/// `--mode` of `cargo xtask lab`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Mode {
    /// Driver mode (veth supports it).
    Native,
    /// SKB mode (slower; every frame arrives on queue 0 on veth).
    Generic,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Generic => "generic",
        }
    }
}

/// Entry point of `cargo xtask lab`.
pub(crate) fn run(args: &LabArgs) -> Result<ExitCode> {
    imp::run(args)
}

#[cfg(not(feature = "lab"))]
mod imp {
    use std::process::{Command, ExitCode};

    use anyhow::{Context as _, Result};

    use super::LabArgs;

    /// Re-runs `cargo xtask lab` with the `lab` feature, which links tandem-hwtest.
    pub(super) fn run(args: &LabArgs) -> Result<ExitCode> {
        let mut forwarded = vec![
            "lab".to_owned(),
            "--client-timeout".to_owned(),
            args.client_timeout.to_string(),
            "--queues".to_owned(),
            args.queues.to_string(),
            "--mode".to_owned(),
            args.mode.as_str().to_owned(),
            "--datapath".to_owned(),
            args.datapath.as_str().to_owned(),
        ];
        if args.xdp_demo {
            forwarded.push("--xdp-demo".to_owned());
        }
        if args.failover {
            forwarded.push("--failover".to_owned());
        }
        let status = Command::new(crate::cargo())
            .current_dir(crate::workspace_root())
            .args([
                "run",
                "--quiet",
                "--locked",
                "--package",
                "xtask",
                "--features",
                "lab",
                "--",
            ])
            .args(&forwarded)
            .status()
            .context("cannot run cargo")?;
        Ok(if status.success() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

#[cfg(feature = "lab")]
mod imp {
    use std::path::{Path, PathBuf};
    use std::process::{Command, ExitCode};
    use std::time::Duration;

    use anyhow::{Result, bail};
    use tandem_hwtest::XdpMode;
    use tandem_hwtest::lab::xdp_demo::DemoOptions;
    use tandem_hwtest::lab::{LabDatapath, LabOptions};

    use super::{Datapath, LabArgs, Mode};
    use crate::step;

    pub(super) fn run(args: &LabArgs) -> Result<ExitCode> {
        // Checked first: no point building for a run that cannot happen.
        if let Err(why) = tandem_hwtest::privileges() {
            bail!(
                "the lab needs root with CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_BPF, and network \
                 namespaces ({why}); run it as root, e.g. `sudo -E cargo xtask lab`"
            );
        }
        let root = crate::workspace_root();
        let mut build = Command::new(crate::cargo());
        build
            .current_dir(&root)
            .args(["build", "--package", "tandem", "--locked"]);
        step::header("lab build", &step::render(&build));
        let (built, elapsed) = step::timed(|| step::run(&mut build));
        built?;
        step::footer("lab build", "ok", elapsed);

        let target_dir =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        let tandem = target_dir.join("debug/tandem");
        if args.xdp_demo {
            xdp_demo(&tandem, args)
        } else if args.failover {
            failover(&tandem, args)
        } else {
            lab(&tandem, args)
        }
    }

    const fn lab_datapath(d: Datapath) -> LabDatapath {
        match d {
            Datapath::Socket => LabDatapath::Socket,
            Datapath::Xdp => LabDatapath::Xdp,
        }
    }

    /// The main job: `tandem run` serving real clients.
    fn lab(tandem: &Path, args: &LabArgs) -> Result<ExitCode> {
        let opts = LabOptions {
            client_timeout: Duration::from_secs(args.client_timeout),
            datapath: lab_datapath(args.datapath),
        };
        let what = format!(
            "{} run --datapath {}, real DHCPv6 clients in network namespaces",
            tandem.display(),
            args.datapath.as_str()
        );
        step::header("lab", &what);
        // `main_job` prints the report and fails when any client or the lease table is wrong.
        let (report, elapsed) = step::timed(|| tandem_hwtest::lab::main_job(tandem, &opts));
        finish(report.map(drop), elapsed)
    }

    /// `--failover`: the lab as an RFC 8156 pair.
    fn failover(tandem: &Path, args: &LabArgs) -> Result<ExitCode> {
        let opts = tandem_hwtest::lab::failover::FailoverOptions {
            client_timeout: Duration::from_secs(args.client_timeout),
            datapath: lab_datapath(args.datapath),
            ..Default::default()
        };
        let what = format!(
            "{} run --datapath {} as a failover pair (primary + secondary, mutual TLS), real \
             DHCPv6 clients",
            tandem.display(),
            args.datapath.as_str()
        );
        step::header("lab --failover", &what);
        // `main_job` prints as it goes and fails with the list of problems.
        let (outcome, elapsed) =
            step::timed(|| tandem_hwtest::lab::failover::main_job(tandem, &opts));
        finish(outcome, elapsed)
    }

    /// `--xdp-demo`: the XDP steering demo with simulated clients.
    fn xdp_demo(tandem: &Path, args: &LabArgs) -> Result<ExitCode> {
        let opts = DemoOptions {
            queues: args.queues,
            mode: match args.mode {
                Mode::Native => XdpMode::Native,
                Mode::Generic => XdpMode::Generic,
            },
            ..DemoOptions::default()
        };
        let what = format!(
            "{} xdp-demo on a {}-queue veth, --mode {}, {} direct + {} relayed clients",
            tandem.display(),
            opts.queues,
            args.mode.as_str(),
            opts.clients,
            opts.relayed
        );
        step::header("lab --xdp-demo", &what);
        // `demo` prints the report and fails when any exchange or probe failed.
        let (report, elapsed) = step::timed(|| tandem_hwtest::lab::xdp_demo::demo(tandem, &opts));
        finish(report.map(drop), elapsed)
    }

    fn finish(outcome: Result<()>, elapsed: Duration) -> Result<ExitCode> {
        match outcome {
            Ok(()) => {
                step::footer("lab", "ok", elapsed);
                Ok(ExitCode::SUCCESS)
            }
            Err(err) => {
                step::footer("lab", "FAILED", elapsed);
                eprintln!("xtask lab: {err:#}");
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_names_match_tandem_cli_values() {
        assert_eq!(Mode::Native.as_str(), "native");
        assert_eq!(Mode::Generic.as_str(), "generic");
    }

    #[test]
    fn datapath_names_match_tandem_cli_values() {
        assert_eq!(Datapath::Socket.as_str(), "socket");
        assert_eq!(Datapath::Xdp.as_str(), "xdp");
    }
}
