//! `cargo xtask lab`: build `tandem`, then run the lab demo of tandem-hwtest (network namespaces,
//! multi-queue veth, XDP attached, DHCPv6 answered from AF_XDP rings).
//!
//! tandem-hwtest depends on the whole datapath, so it sits behind xtask's `lab` feature (see
//! xtask/Cargo.toml): without the feature this command re-runs xtask through cargo with it.

use std::process::ExitCode;

use anyhow::Result;

/// Options of `cargo xtask lab`.
#[derive(Debug, clap::Args)]
pub(crate) struct LabArgs {
    /// RX/TX queues of the lab's veth pair (one AF_XDP socket and worker per queue).
    #[arg(long, value_name = "N", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub(crate) queues: u32,
    /// XDP attach mode.
    #[arg(long, value_enum, default_value_t = Mode::Native)]
    pub(crate) mode: Mode,
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
            .args([
                "lab",
                "--queues",
                &args.queues.to_string(),
                "--mode",
                args.mode.as_str(),
            ])
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
    use std::path::PathBuf;
    use std::process::{Command, ExitCode};

    use anyhow::{Result, bail};
    use tandem_hwtest::XdpMode;
    use tandem_hwtest::lab::DemoOptions;

    use super::{LabArgs, Mode};
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
        step::header("lab", &what);
        // `demo` prints the report and fails when any exchange or probe failed.
        let (report, elapsed) = step::timed(|| tandem_hwtest::lab::demo(&tandem, &opts));
        match report {
            Ok(_) => {
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
}
