//! `cargo xtask check-env`: what this machine has and lacks for building and testing Tandem.

use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::Result;

use crate::step;

const INSTALL: &str = "bash .ci/install";

/// Capability bits (linux/capability.h) the datapath and the privileged tests use.
const CAPS: [(u32, &str); 6] = [
    (12, "CAP_NET_ADMIN"),
    (13, "CAP_NET_RAW"),
    (14, "CAP_IPC_LOCK"),
    (21, "CAP_SYS_ADMIN"),
    (38, "CAP_PERFMON"),
    (39, "CAP_BPF"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ok,
    /// Works, but something is worth knowing.
    Warn,
    Missing,
}

#[derive(Debug)]
struct Check {
    name: &'static str,
    state: State,
    detail: String,
    /// The command or action that fixes a `Missing`/`Warn` state.
    fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            state: State::Ok,
            detail: detail.into(),
            fix: None,
        }
    }
    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            state: State::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
    fn missing(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            state: State::Missing,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Entry point of `cargo xtask check-env`.
pub(crate) fn check() -> Result<ExitCode> {
    let rustc_info = step::output(Command::new("rustc").arg("-vV"));
    let llvm_major = rustc_info.as_deref().and_then(rustc_llvm_major);
    let privileges = privileges();
    let mut checks = vec![
        rustc(rustc_info.as_deref()),
        rust_src(),
        bpf_linker(llvm_major),
        cargo_tool("cargo-fuzz", "fuzz"),
        cargo_tool("cargo-deny", "deny"),
        privileges,
    ];
    checks.push(netns(checks.last().is_some_and(|c| c.state == State::Ok)));
    checks.push(kernel());
    checks.push(btf());

    let mut missing = 0;
    for check in &checks {
        let label = match check.state {
            State::Ok => "ok",
            State::Warn => "warn",
            State::Missing => "MISSING",
        };
        println!("{label:<8} {:<12} {}", check.name, check.detail);
        if let Some(fix) = &check.fix {
            println!("{:<8} {:<12} fix: {fix}", "", "");
        }
        missing += usize::from(check.state == State::Missing);
    }
    if missing == 0 {
        println!("check-env: everything needed is present");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("check-env: {missing} missing (see `fix:` lines above)");
        Ok(ExitCode::FAILURE)
    }
}

/// The LLVM major version from `rustc -vV` output.
fn rustc_llvm_major(info: &str) -> Option<u32> {
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("LLVM version: "))?;
    version.split('.').next()?.trim().parse().ok()
}

fn rustc(info: Option<&str>) -> Check {
    let Some(info) = info else {
        return Check::missing(
            "rustc",
            "rustc not found on PATH",
            "install rustup (stable 1.95)",
        );
    };
    let release = info
        .lines()
        .find_map(|l| l.strip_prefix("release: "))
        .unwrap_or("?");
    match rustc_llvm_major(info) {
        Some(major) => Check::ok("rustc", format!("{release} (LLVM {major})")),
        None => Check::warn(
            "rustc",
            format!("{release}, LLVM version unknown"),
            "use rustup's stable",
        ),
    }
}

fn rust_src() -> Check {
    let sysroot = step::output(Command::new("rustc").args(["--print", "sysroot"]));
    let library = sysroot.map(|s| Path::new(s.trim()).join("lib/rustlib/src/rust/library"));
    match library {
        Some(dir) if dir.join("core").is_dir() => Check::ok("rust-src", dir.display().to_string()),
        _ => Check::missing(
            "rust-src",
            "not installed (the BPF target builds core from source)",
            format!("rustup component add rust-src   (or {INSTALL})"),
        ),
    }
}

/// The LLVM major of the `libLLVM.so.NN...` a binary links against, found in its bytes.
fn linked_llvm_major(binary: &[u8]) -> Option<u32> {
    const NEEDLE: &[u8] = b"libLLVM.so.";
    let at = binary.windows(NEEDLE.len()).position(|w| w == NEEDLE)?;
    let rest = binary.get(at + NEEDLE.len()..)?;
    let digits: Vec<u8> = rest
        .iter()
        .copied()
        .take_while(u8::is_ascii_digit)
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

fn bpf_linker(rustc_llvm: Option<u32>) -> Check {
    let Some(path) = which("bpf-linker") else {
        return Check::missing("bpf-linker", "not on PATH", INSTALL);
    };
    let Some(version) = step::output(Command::new(&path).arg("--version")) else {
        return Check::missing(
            "bpf-linker",
            format!(
                "{} does not start (toolchain changed under it?)",
                path.display()
            ),
            format!("{INSTALL}   (it rebuilds a broken bpf-linker with --force)"),
        );
    };
    let version = version.trim().to_owned();
    let linked = std::fs::read(&path)
        .ok()
        .and_then(|bytes| linked_llvm_major(&bytes));
    match (linked, rustc_llvm) {
        (Some(linked), Some(rustc)) if linked == rustc => {
            Check::ok("bpf-linker", format!("{version}, LLVM {linked} = rustc's"))
        }
        (Some(linked), Some(rustc)) => Check::missing(
            "bpf-linker",
            format!("{version} uses LLVM {linked} but rustc emits LLVM {rustc} bitcode"),
            format!("rm {} && {INSTALL}", path.display()),
        ),
        _ => Check::warn(
            "bpf-linker",
            format!("{version}, LLVM version not determined (statically linked?)"),
            "make sure its LLVM major equals `rustc -vV | grep LLVM`",
        ),
    }
}

fn cargo_tool(name: &'static str, subcommand: &str) -> Check {
    match step::output(Command::new(crate::cargo()).args([subcommand, "--version"])) {
        Some(version) => Check::ok(name, version.trim().to_owned()),
        None => Check::missing(name, "not installed", INSTALL),
    }
}

/// `(effective uid, effective capability mask)` from `/proc/self/status` text.
fn parse_status(status: &str) -> Option<(u32, u64)> {
    let field = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
    };
    let euid = field("Uid:")?.split_whitespace().nth(1)?.parse().ok()?;
    let caps = u64::from_str_radix(field("CapEff:")?, 16).ok()?;
    Some((euid, caps))
}

fn privileges() -> Check {
    const FIX: &str =
        "run as root (e.g. `sudo -E cargo xtask ...`) with CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF";
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let Some((euid, caps)) = parse_status(&status) else {
        return Check::missing("privileges", "cannot read /proc/self/status", FIX);
    };
    let lacking: Vec<&str> = CAPS
        .iter()
        .filter(|(bit, _)| caps & (1 << bit) == 0)
        .map(|(_, name)| *name)
        .collect();
    let who = if euid == 0 {
        "root".to_owned()
    } else {
        format!("uid {euid} (not root)")
    };
    if euid == 0 && lacking.is_empty() {
        Check::ok(
            "privileges",
            format!("{who}, {}", CAPS.map(|(_, n)| n).join(" ")),
        )
    } else {
        let detail = format!("{who}; lacking {}", lacking.join(" "));
        Check::missing(
            "privileges",
            detail,
            format!("{FIX} (privileged tests skip otherwise)"),
        )
    }
}

fn netns(privileged: bool) -> Check {
    if !privileged {
        return Check::warn(
            "netns",
            "not probed (needs privileges)",
            "see privileges above",
        );
    }
    let Some(ip) = which("ip") else {
        return Check::missing("netns", "`ip` (iproute2) not on PATH", INSTALL);
    };
    let probe = format!("xtask-probe-{}", std::process::id());
    let added = step::output(Command::new(&ip).args(["netns", "add", &probe])).is_some();
    if !added {
        return Check::missing(
            "netns",
            "`ip netns add` failed",
            "run on a host that allows netns",
        );
    }
    let deleted = step::output(Command::new(&ip).args(["netns", "del", &probe])).is_some();
    if deleted {
        Check::ok("netns", "ip netns add/del works")
    } else {
        Check::warn(
            "netns",
            format!("created but could not delete netns {probe}"),
            format!("ip netns del {probe}"),
        )
    }
}

/// `(major, minor)` of a kernel release string like `6.18.0-1-amd64`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.trim().split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

fn kernel() -> Check {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim();
    match kernel_version(release) {
        // 5.11: BPF maps are memcg-accounted, so RLIMIT_MEMLOCK (which root here cannot raise,
        // no CAP_SYS_RESOURCE) no longer limits them.
        Some(v) if v >= (5, 11) => Check::ok("kernel", release.to_owned()),
        Some(_) => Check::warn(
            "kernel",
            format!("{release}: older than 5.11, BPF maps are charged to RLIMIT_MEMLOCK"),
            "raise `ulimit -l` or use a kernel >= 5.11",
        ),
        None => Check::warn(
            "kernel",
            format!("cannot parse release `{release}`"),
            "none",
        ),
    }
}

fn btf() -> Check {
    const PATH: &str = "/sys/kernel/btf/vmlinux";
    if Path::new(PATH).exists() {
        Check::ok("btf", PATH)
    } else {
        Check::missing(
            "btf",
            format!("{PATH} absent"),
            "use a kernel built with CONFIG_DEBUG_INFO_BTF=y",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustc_llvm_major_from_verbose_version_is_parsed() {
        let info = "rustc 1.95.0 (59807616e 2026-04-14)\nhost: x86_64-unknown-linux-gnu\n\
                    release: 1.95.0\nLLVM version: 22.1.2\n";
        assert_eq!(rustc_llvm_major(info), Some(22));
        assert_eq!(rustc_llvm_major("release: 1.95.0\n"), None);
    }

    #[test]
    fn linked_llvm_major_from_soname_is_found() {
        let binary = b"\x7fELF junk\0libLLVM.so.22.1-rust-1.95.0-stable\0libc.so.6\0";
        assert_eq!(linked_llvm_major(binary), Some(22));
        assert_eq!(linked_llvm_major(b"\x7fELF libc.so.6"), None);
        assert_eq!(linked_llvm_major(b"libLLVM.so."), None);
    }

    #[test]
    fn parse_status_reads_euid_and_effective_caps() {
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nCapInh:\t0000000000000000\n\
                      CapEff:\t000001fffeffffff\n";
        let (euid, caps) = parse_status(status).unwrap();
        assert_eq!(euid, 0);
        assert_eq!(caps & (1 << 39), 1 << 39);
        assert_eq!(caps & (1 << 24), 0); // CAP_SYS_RESOURCE absent, as on the CI machine kind
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn kernel_version_from_release_is_parsed() {
        assert_eq!(kernel_version("6.18.0-1-amd64\n"), Some((6, 18)));
        assert_eq!(kernel_version("5.4.0"), Some((5, 4)));
        assert_eq!(kernel_version("nonsense"), None);
    }
}
