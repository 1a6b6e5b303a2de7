//! Builds the XDP program (`ebpf/xdp`, package `tandem-xdp`) for `bpfel-unknown-none` with
//! aya-build and leaves the object at `$OUT_DIR/tandem-xdp`, where `src/xdp.rs` embeds it.
//!
//! Works on stable rustc (the XDP toolchain recipe, §4): aya-build adds `-Z build-std=core` only
//! when it sees `RUSTC_BOOTSTRAP=1`, and it runs `rustup run <toolchain> cargo`, so we hand it the
//! outer toolchain instead of its default "nightly". Needs `bpf-linker` on PATH and the `rust-src`
//! component; both are installed by `bash .ci/install`.

use std::{path::Path, process::Command};

use anyhow::{Context as _, bail};

fn main() -> anyhow::Result<()> {
    println!("cargo:rerun-if-env-changed=PATH");
    println!("cargo:rerun-if-env-changed=RUSTUP_TOOLCHAIN");
    check_prerequisites()?;

    // SAFETY: the build script is single-threaded at this point (aya-build has not spawned its
    // output-relaying thread yet), so nothing reads the environment concurrently. The variable
    // only reaches the nested cargo that builds the BPF target.
    unsafe { std::env::set_var("RUSTC_BOOTSTRAP", "1") };

    // rustup exports RUSTUP_TOOLCHAIN (e.g. "stable-x86_64-unknown-linux-gnu") to cargo and
    // build scripts.
    let toolchain = std::env::var("RUSTUP_TOOLCHAIN").unwrap_or_else(|_| "stable".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ebpf/xdp");
    let root = root
        .canonicalize()
        .with_context(|| format!("finding {}", root.display()))?;
    let root = root.to_str().context("the ebpf/xdp path is not UTF-8")?;
    let package = aya_build::Package {
        name: "tandem-xdp",
        root_dir: root,
        ..Default::default()
    };
    aya_build::build_ebpf([package], aya_build::Toolchain::Custom(&toolchain))
        .context("building the XDP program (ebpf/xdp) for bpfel-unknown-none")
}

/// Fails early, with the fix, when a tool the BPF build needs is missing, instead of letting the
/// nested cargo die with "linker `bpf-linker` not found" deep in its output.
fn check_prerequisites() -> anyhow::Result<()> {
    if let Err(err) = which::which("bpf-linker") {
        let msg = format!(
            "`bpf-linker` is not on PATH ({err}); it links the XDP program (ebpf/xdp). Install it \
             with `bash .ci/install` (bpf-linker 0.13 built against rustc's own LLVM) and \
             make sure ~/.cargo/bin is on PATH"
        );
        println!("cargo:warning={msg}");
        bail!(msg);
    }

    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .with_context(|| format!("running `{rustc} --print sysroot`"))?;
    let sysroot = String::from_utf8_lossy(&sysroot.stdout);
    let core_src = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library/core");
    if !core_src.is_dir() {
        let msg = format!(
            "the rust-src component is missing ({} does not exist); the XDP program is built \
             with `-Z build-std=core`. Install it with `bash .ci/install` or \
             `rustup component add rust-src`",
            core_src.display()
        );
        println!("cargo:warning={msg}");
        bail!(msg);
    }
    Ok(())
}
