//! The XDP program loads into this kernel and passes the verifier (`tandem xdp-verify`).

use std::process::Command;
use std::time::Duration;

use tandem_hwtest::{require_privileges, run_bounded};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem-hw");

#[test]
fn bpf_program_loads_and_passes_verifier() {
    require_privileges!();
    let out = run_bounded(
        Command::new(TANDEM).arg("xdp-verify"),
        Duration::from_secs(60),
    )
    .expect("run tandem xdp-verify");
    assert!(!out.timed_out, "xdp-verify hung; stderr:\n{}", out.stderr);
    assert!(
        out.status.success(),
        "xdp-verify failed ({}); stdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("verified "))
        .unwrap_or_else(|| panic!("no `verified ...` line in:\n{}", out.stdout));
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
    };
    assert_eq!(field("prog"), "tandem_xdp", "{line}");
    let insns: u64 = field("insns").parse().expect("insns is a number");
    assert!(insns > 0, "{line}");
}
