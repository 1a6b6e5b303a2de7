//! Tandem's developer and CI tasks, run as `cargo xtask <command>` (alias in `.cargo/config.toml`).
//!
//! * `test`: the whole check CI runs (check-env, fmt, clippy, tests, cargo-deny, fuzz smoke).
//! * `fuzz`: the fuzz smoke run alone.
//! * `lab`: builds `tandem` and runs the lab: `tandem run` serving real DHCPv6 clients in
//!   network namespaces (root), over `--datapath socket|xdp`; `lab --xdp-demo` runs the
//!   XDP/AF_XDP steering demo instead; `lab --failover` runs it as an RFC 8156 failover pair.
//! * `build-ebpf`: builds the XDP object alone into `target/bpf`, for inspection.
//! * `check-env`: says which tools, privileges, kernel features, programs and mount points the
//!   tests need are present, and how to get what is missing.
//!
//! xtask performs its work by running other programs (cargo, ip); it never touches git state.

mod ebpf;
mod env;
mod fuzz;
mod lab;
mod step;
mod test;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `cargo xtask`: Tandem's developer and CI tasks.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run every check CI runs, in order, stopping at the first failure: check-env (in strict
    /// mode anything missing stops here), cargo fmt --check, clippy -D warnings, cargo test,
    /// cargo deny, then a fuzz smoke run of each fuzz target.
    Test(test::TestArgs),
    /// Only the fuzz part of `test`: seed the corpora from the wire test vectors, build every
    /// fuzz target once, then fuzz each for N seconds.
    Fuzz {
        /// Seconds of fuzzing per fuzz target.
        #[arg(long, value_name = "N", default_value_t = 10)]
        fuzz_seconds: u32,
    },
    /// Build `tandem` and run the lab: `tandem run` serving real DHCPv6 clients (dhclient,
    /// dhcpcd, dibbler, WIDE dhcp6c, a relayed dhclient) in network namespaces, then print what
    /// each configured, the lease table and the server's counters. `--datapath xdp`: the server
    /// on its XDP/AF_XDP datapath. `--failover`: the lab as an RFC 8156 failover pair (primary
    /// and secondary over mutual TLS, clients on each side, SIGKILL of the primary,
    /// partner-down, restart back to NORMAL). `--xdp-demo`: the XDP/AF_XDP steering demo
    /// instead. Needs root.
    Lab(lab::LabArgs),
    /// Build the XDP program alone (bpfel-unknown-none) into target/bpf and print the object's
    /// path and size, for inspection with llvm-objdump or bpftool.
    BuildEbpf,
    /// Check the toolchain (rustc, rust-src, bpf-linker, cargo-fuzz, cargo-deny), privileges,
    /// kernel features (netns, veth, mount namespaces with overlayfs, IPv6, BTF), every program
    /// the privileged tests and the lab run, and the clients' mount points; print what is
    /// missing and what to install or create.
    CheckEnv,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Test(args) => test::run(&args),
        Command::Fuzz { fuzz_seconds } => test::fuzz_only(fuzz_seconds),
        Command::Lab(args) => lab::run(&args),
        Command::BuildEbpf => ebpf::build(),
        Command::CheckEnv => env::check(),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root (xtask lives in `<root>/xtask`).
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The cargo binary that runs us (`$CARGO` under `cargo run`), else `cargo` from `PATH`.
fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn cli_definition_is_consistent_passes_debug_assert() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cli_test_flags_parse_into_args() {
        let cli =
            Cli::try_parse_from(["xtask", "test", "--strict", "--fuzz-seconds", "3"]).unwrap();
        let Command::Test(args) = cli.command else {
            panic!("not the test command: {cli:?}")
        };
        assert!(args.strict);
        assert!(!args.no_fuzz);
        assert_eq!(args.fuzz_seconds, 3);
    }

    #[test]
    fn cli_test_without_flags_uses_defaults() {
        let cli = Cli::try_parse_from(["xtask", "test"]).unwrap();
        let Command::Test(args) = cli.command else {
            panic!("not the test command: {cli:?}")
        };
        assert!(!args.strict);
        assert_eq!(args.fuzz_seconds, 10);
    }

    #[test]
    fn cli_lab_bad_mode_is_rejected() {
        assert!(Cli::try_parse_from(["xtask", "lab", "--mode", "turbo"]).is_err());
        assert!(
            Cli::try_parse_from(["xtask", "lab", "--mode", "generic", "--queues", "2"]).is_ok()
        );
    }

    #[test]
    fn cli_lab_defaults_to_real_clients_and_xdp_demo_is_a_flag() {
        let cli = Cli::try_parse_from(["xtask", "lab"]).unwrap();
        let Command::Lab(args) = cli.command else {
            panic!("not the lab command: {cli:?}")
        };
        assert!(!args.xdp_demo);
        assert!(!args.failover);
        assert_eq!(args.client_timeout, 30);
        assert_eq!(args.datapath, lab::Datapath::Socket);
        let cli = Cli::try_parse_from(["xtask", "lab", "--xdp-demo", "--queues", "4"]).unwrap();
        let Command::Lab(args) = cli.command else {
            panic!("not the lab command: {cli:?}")
        };
        assert!(args.xdp_demo);
        assert_eq!(args.queues, 4);
        assert!(Cli::try_parse_from(["xtask", "lab", "--client-timeout", "0"]).is_err());
    }

    #[test]
    fn cli_lab_failover_is_a_flag_that_excludes_xdp_demo_and_takes_a_datapath() {
        let cli = Cli::try_parse_from(["xtask", "lab", "--failover"]).unwrap();
        let Command::Lab(args) = cli.command else {
            panic!("not the lab command: {cli:?}")
        };
        assert!(args.failover && !args.xdp_demo);
        assert_eq!(args.datapath, lab::Datapath::Socket, "socket by default");
        assert!(Cli::try_parse_from(["xtask", "lab", "--failover", "--xdp-demo"]).is_err());
        let cli = Cli::try_parse_from(["xtask", "lab", "--failover", "--datapath", "xdp"]).unwrap();
        let Command::Lab(args) = cli.command else {
            panic!("not the lab command: {cli:?}")
        };
        assert!(args.failover);
        assert_eq!(args.datapath, lab::Datapath::Xdp);
    }

    #[test]
    fn cli_lab_datapath_parses_xdp_and_rejects_others() {
        let cli = Cli::try_parse_from(["xtask", "lab", "--datapath", "xdp"]).unwrap();
        let Command::Lab(args) = cli.command else {
            panic!("not the lab command: {cli:?}")
        };
        assert_eq!(args.datapath, lab::Datapath::Xdp);
        assert!(Cli::try_parse_from(["xtask", "lab", "--datapath", "dpdk"]).is_err());
    }

    #[test]
    fn workspace_root_contains_workspace_manifest() {
        let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
        assert!(manifest.contains("[workspace]"), "{manifest}");
    }
}
