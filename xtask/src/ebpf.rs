//! `cargo xtask build-ebpf`: the XDP program alone, built for `bpfel-unknown-none` into
//! `target/bpf` (docs/toolchain.md §4). tandem-datapath's build.rs builds the same object through
//! aya-build for embedding; this copy is for looking at (`llvm-objdump -S`, `bpftool btf dump`).

use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result};

use crate::step;

/// The XDP program's package and bin name.
const PACKAGE: &str = "tandem-xdp";

/// `CARGO_ENCODED_RUSTFLAGS` for the BPF build: what aya-build passes (BTF needs debuginfo).
fn bpf_rustflags() -> String {
    [
        "--cfg=bpf_target_arch=\"x86_64\"",
        "-Cdebuginfo=2",
        "-Clink-arg=--btf",
    ]
    .join("\x1f")
}

/// Entry point of `cargo xtask build-ebpf`.
pub(crate) fn build() -> Result<ExitCode> {
    let root = crate::workspace_root();
    let target_dir = root.join("target/bpf");
    let mut cmd = Command::new(crate::cargo());
    cmd.current_dir(&root)
        .args([
            "build",
            "--locked",
            "--package",
            PACKAGE,
            "--bins",
            "--release",
        ])
        .args(["--target", "bpfel-unknown-none", "-Z", "build-std=core"])
        .arg("--target-dir")
        .arg(&target_dir)
        // Stable cargo/rustc accept -Z build-std with this (docs/toolchain.md §4).
        .env("RUSTC_BOOTSTRAP", "1")
        .env("CARGO_ENCODED_RUSTFLAGS", bpf_rustflags())
        // A host rustc wrapper (sccache, clippy-driver) must not see the BPF build.
        .env_remove("RUSTC")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTFLAGS");
    step::header("build-ebpf", &step::render(&cmd));
    let (result, elapsed) = step::timed(|| step::run(&mut cmd));
    result.context("the BPF build failed; `cargo xtask check-env` shows missing tools")?;
    step::footer("build-ebpf", "ok", elapsed);

    let built = target_dir.join("bpfel-unknown-none/release").join(PACKAGE);
    let object = target_dir.join(format!("{PACKAGE}.bpf.o"));
    std::fs::copy(&built, &object)
        .with_context(|| format!("cannot copy {} to {}", built.display(), object.display()))?;
    let size = std::fs::metadata(&object)?.len();
    println!("{} ({size} bytes)", object.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bpf_rustflags_are_unit_separated() {
        let flags = bpf_rustflags();
        let parts: Vec<_> = flags.split('\x1f').collect();
        assert_eq!(
            parts,
            [
                "--cfg=bpf_target_arch=\"x86_64\"",
                "-Cdebuginfo=2",
                "-Clink-arg=--btf"
            ]
        );
    }
}
