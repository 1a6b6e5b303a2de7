//! `cargo xtask check-env`: what this machine has and lacks for building and testing Tandem.
//!
//! The toolchain (rustc, rust-src, bpf-linker against rustc's LLVM, cargo-fuzz, cargo-deny),
//! privileges, kernel features the privileged tests use (network namespaces with veth pairs, a
//! private mount namespace with bind and overlay mounts, IPv6, BTF), every program the hwtest
//! suites and the lab run, and the fixed directories the DHCPv6 clients' scratch directories are
//! mounted over (present, or creatable). Programs and paths come from tandem-hwtest's `needs`
//! list, included here by path, so what is checked is what the tests use. Each missing piece
//! is printed with what to install or create.
//!
//! `cargo xtask test` runs the same checks first; in strict mode (CI) a missing piece stops it
//! before any test runs.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::Result;

use crate::step;

/// tandem-hwtest's list of programs and fixed paths (`hwtest/src/needs.rs`), shared by path:
/// xtask builds without tandem-hwtest (which pulls in the datapath and bpf-linker).
#[expect(
    unreachable_pub,
    reason = "the items are public in tandem-hwtest, which includes the same file"
)]
#[path = "../../hwtest/src/needs.rs"]
mod needs;

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
pub(crate) struct Check {
    name: &'static str,
    state: State,
    detail: String,
    /// The command or action that fixes a `Missing`/`Warn` state.
    fix: Option<String>,
    /// The Debian package that provides what is missing, if that is the fix.
    package: Option<&'static str>,
}

impl Check {
    fn ok(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            state: State::Ok,
            detail: detail.into(),
            fix: None,
            package: None,
        }
    }
    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            state: State::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
            package: None,
        }
    }
    fn missing(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            state: State::Missing,
            detail: detail.into(),
            fix: Some(fix.into()),
            package: None,
        }
    }
}

/// Entry point of `cargo xtask check-env`.
pub(crate) fn check() -> Result<ExitCode> {
    let report = Report::of(checks());
    print!("{}", report.text);
    Ok(if report.missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Runs every check on this machine.
pub(crate) fn checks() -> Vec<Check> {
    let rustc_info = step::output(Command::new("rustc").arg("-vV"));
    let llvm_major = rustc_info.as_deref().and_then(rustc_llvm_major);
    let path_dirs = path_dirs();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let privileges = privileges();
    let privileged = privileges.state == State::Ok;
    let mut checks = vec![
        rustc(rustc_info.as_deref()),
        rust_src(),
        bpf_linker(llvm_major),
        cargo_tool("cargo-fuzz", "fuzz"),
        cargo_tool("cargo-deny", "deny"),
        privileges,
        netns(privileged),
        mount_namespace(privileged),
        ipv6(),
        kernel(),
        btf(),
    ];
    checks.extend(
        needs::PROGRAMS
            .iter()
            .map(|p| program(p, &path_dirs, SBIN_DIRS)),
    );
    checks.extend(
        needs::MOUNT_POINTS
            .iter()
            .map(|dir| mount_point(dir, &mountinfo)),
    );
    checks.push(overlay_lower(needs::DIBBLER_OVERLAY));
    checks
}

/// The printed form of a list of checks, and the ones that are missing.
#[derive(Debug)]
pub(crate) struct Report {
    /// One line per check, a `fix:` line under each that is not ok, and a closing line.
    pub(crate) text: String,
    /// `name: fix` of every missing piece.
    pub(crate) missing: Vec<String>,
}

impl Report {
    pub(crate) fn of(checks: Vec<Check>) -> Self {
        use std::fmt::Write as _;
        let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut text = String::new();
        let mut missing = Vec::new();
        let mut packages: Vec<&str> = Vec::new();
        for check in &checks {
            let label = match check.state {
                State::Ok => "ok",
                State::Warn => "warn",
                State::Missing => "MISSING",
            };
            let _ = writeln!(text, "{label:<8} {:<width$}  {}", check.name, check.detail);
            if let Some(fix) = &check.fix {
                let _ = writeln!(text, "{:<8} {:<width$}  fix: {fix}", "", "");
            }
            if check.state == State::Missing {
                missing.push(format!(
                    "{}: {}",
                    check.name,
                    check.fix.as_deref().unwrap_or("(no fix known)")
                ));
                if let Some(package) = check.package
                    && !packages.contains(&package)
                {
                    packages.push(package);
                }
            }
        }
        if missing.is_empty() {
            text.push_str("check-env: everything needed is present\n");
        } else {
            let _ = writeln!(
                text,
                "check-env: {} missing (see `fix:` lines above)",
                missing.len()
            );
            if !packages.is_empty() {
                let _ = writeln!(
                    text,
                    "check-env: missing Debian packages: apt-get install --no-install-recommends \
                     {}   (or `{INSTALL}`, which also keeps their services from starting)",
                    packages.join(" ")
                );
            }
        }
        Self { text, missing }
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

/// Where root's programs live on Debian, whether or not `PATH` has them.
const SBIN_DIRS: &[&str] = &["/usr/local/sbin", "/usr/sbin", "/sbin"];

/// The directories of `PATH`.
fn path_dirs() -> Vec<PathBuf> {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect())
        .unwrap_or_default()
}

/// The first executable file `program` in `dirs`.
fn find_in(program: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    dirs.iter().map(|dir| dir.join(program)).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

fn which(program: &str) -> Option<PathBuf> {
    find_in(program, &path_dirs())
}

/// A program the tests run by name: found on `PATH` (`path_dirs`), else said how to get it. One
/// that is installed in `sbin_dirs` but not on `PATH` (a non-root shell) needs `PATH` fixed,
/// not a package.
fn program(program: &needs::Program, path_dirs: &[PathBuf], sbin_dirs: &[&str]) -> Check {
    let needs::Program {
        name,
        package,
        used_for,
    } = *program;
    if let Some(path) = find_in(name, path_dirs) {
        return Check::ok(name, format!("{}   [{used_for}]", path.display()));
    }
    let sbin: Vec<PathBuf> = sbin_dirs.iter().map(PathBuf::from).collect();
    if let Some(path) = find_in(name, &sbin) {
        let dir = path.parent().unwrap_or(&path).display().to_string();
        return Check::missing(
            name,
            format!("{} is not on PATH   [{used_for}]", path.display()),
            format!("export PATH=\"$PATH:{dir}\"   (the tests run `{name}` by name)"),
        );
    }
    let mut check = Check::missing(
        name,
        format!("not installed   [{used_for}]"),
        format!("apt-get install --no-install-recommends {package}   (or {INSTALL})"),
    );
    check.package = Some(package);
    check
}

/// The mount a path is on, from `/proc/self/mountinfo` text: `(mount point, read-only)` of the
/// longest mount point that contains `path`.
fn mount_of(mountinfo: &str, path: &Path) -> Option<(PathBuf, bool)> {
    mountinfo
        .lines()
        .filter_map(|line| {
            // `36 35 98:0 /root /mnt rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
            let mut fields = line.split_whitespace();
            let point = unescape_mountinfo(fields.nth(4)?);
            let mount_options = fields.next()?;
            let super_options = line.rsplit(' ').next()?;
            let ro = |options: &str| options.split(',').any(|o| o == "ro");
            path.starts_with(&point)
                .then(|| (point, ro(mount_options) || ro(super_options)))
        })
        .max_by_key(|(point, _)| point.components().count())
}

/// mountinfo's octal escapes (`\040` for a space) undone.
fn unescape_mountinfo(field: &str) -> PathBuf {
    let mut out = Vec::with_capacity(field.len());
    let bytes = field.as_bytes();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let code = bytes
            .get(i + 1..i + 4)
            .filter(|d| b == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .and_then(|d| u8::from_str_radix(std::str::from_utf8(d).ok()?, 8).ok());
        if let Some(code) = code {
            out.push(code);
            i += 4;
        } else {
            out.push(b);
            i += 1;
        }
    }
    PathBuf::from(String::from_utf8_lossy(&out).into_owned())
}

/// A fixed directory the clients' scratch directories are bind-mounted over. Present, or
/// absent and creatable (its nearest existing ancestor is a directory on a writable mount:
/// the client mount wrapper creates it with `mkdir -p`), or else said how to create it.
fn mount_point(dir: &'static str, mountinfo: &str) -> Check {
    const USE: &str = "mount point for a client's scratch directory";
    let path = Path::new(dir);
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => return Check::ok(dir, format!("exists ({USE})")),
        Ok(_) => {
            return Check::missing(
                dir,
                format!("exists but is not a directory ({USE})"),
                format!("rm {dir} && mkdir -p {dir}"),
            );
        }
        Err(_) => {}
    }
    let Some(ancestor) = path.ancestors().skip(1).find(|a| a.exists()) else {
        return Check::missing(dir, "no ancestor exists", format!("mkdir -p {dir}"));
    };
    if !ancestor.is_dir() {
        return Check::missing(
            dir,
            format!(
                "{} is not a directory, so {dir} cannot be created",
                ancestor.display()
            ),
            format!("rm {0} && mkdir -p {dir}", ancestor.display()),
        );
    }
    match mount_of(mountinfo, ancestor) {
        Some((point, true)) => Check::missing(
            dir,
            format!(
                "absent, and {} is on a read-only mount ({})",
                ancestor.display(),
                point.display()
            ),
            format!("mkdir -p {dir}   (with {} writable)", point.display()),
        ),
        _ => Check::ok(
            dir,
            format!(
                "absent; created by the client mount wrapper (mkdir -p, {} is writable)",
                ancestor.display()
            ),
        ),
    }
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
        return Check::missing(
            "netns",
            "`ip` (iproute2) not on PATH",
            "apt-get install iproute2",
        );
    };
    let probe = format!("xtask-probe-{}", std::process::id());
    let added = step::output(Command::new(&ip).args(["netns", "add", &probe])).is_some();
    if !added {
        return Check::missing(
            "netns",
            "`ip netns add` failed",
            "run on a host that allows network namespaces (CONFIG_NET_NS)",
        );
    }
    // The tests join namespaces with veth pairs.
    let veth = step::output(Command::new(&ip).args([
        "-n", &probe, "link", "add", "xtp0", "type", "veth", "peer", "name", "xtp1",
    ]))
    .is_some();
    let deleted = step::output(Command::new(&ip).args(["netns", "del", &probe])).is_some();
    if !veth {
        Check::missing(
            "netns",
            "namespaces work, but `ip link add ... type veth` failed",
            "use a kernel with CONFIG_VETH (modprobe veth)",
        )
    } else if deleted {
        Check::ok("netns", "ip netns add/del and veth pairs work")
    } else {
        Check::warn(
            "netns",
            format!("created but could not delete netns {probe}"),
            format!("ip netns del {probe}"),
        )
    }
}

/// Probes what the client mount wrapper does, in a private mount namespace: a bind mount of a
/// directory and an overlay whose writes land in the upper directory only.
fn mount_namespace(privileged: bool) -> Check {
    const NAME: &str = "mount-ns";
    if !privileged {
        return Check::warn(
            NAME,
            "not probed (needs privileges)",
            "see privileges above",
        );
    }
    let dir = std::env::temp_dir().join(format!("xtask-mount-probe-{}", std::process::id()));
    let result = probe_mounts(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    match result {
        Ok(()) => Check::ok(
            NAME,
            "unshare --mount with bind and overlay mounts works (client isolation)",
        ),
        Err(why) => Check::missing(
            NAME,
            why,
            "run as root on a kernel with overlayfs (modprobe overlay) and util-linux's \
             unshare; the DHCPv6 clients need a private mount namespace",
        ),
    }
}

fn probe_mounts(dir: &Path) -> Result<(), String> {
    let sub = |name: &str| -> Result<PathBuf, String> {
        let p = dir.join(name);
        std::fs::create_dir_all(&p).map_err(|e| format!("cannot create {}: {e}", p.display()))?;
        Ok(p)
    };
    let (lower, upper, work, src, target) = (
        sub("lower")?,
        sub("upper")?,
        sub("work")?,
        sub("src")?,
        sub("target")?,
    );
    let script = format!(
        "mount --bind {src} {target} && mount -t overlay overlay \
         -o lowerdir={lower},upperdir={upper},workdir={work} {lower} && echo x > {lower}/probe",
        src = src.display(),
        target = target.display(),
        lower = lower.display(),
        upper = upper.display(),
        work = work.display(),
    );
    let unshare = which("unshare").ok_or("`unshare` (util-linux) not on PATH")?;
    step::output(
        Command::new(unshare)
            .args(["--mount", "--propagation", "private", "--", "sh", "-c"])
            .arg(&script),
    )
    .ok_or_else(|| format!("`unshare --mount ... sh -c '{script}'` failed"))?;
    if !upper.join("probe").is_file() || lower.join("probe").exists() {
        return Err("an overlay write did not land in the upper directory".to_owned());
    }
    Ok(())
}

/// The directory dibbler gets a private overlay of: the overlay's lower layer, so it must exist.
fn overlay_lower(dir: &'static str) -> Check {
    if Path::new(dir).is_dir() {
        Check::ok(
            dir,
            "exists (overlaid for dibbler-client, writes go to its scratch dir)",
        )
    } else {
        Check::missing(dir, "not a directory", format!("mkdir -p {dir}"))
    }
}

fn ipv6() -> Check {
    const PATH: &str = "/proc/sys/net/ipv6";
    if Path::new(PATH).is_dir() {
        Check::ok("ipv6", "enabled")
    } else {
        Check::missing(
            "ipv6",
            format!("{PATH} absent (IPv6 disabled)"),
            "boot without ipv6.disable=1",
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
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    /// A fresh directory under the temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("xtask-env-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        /// `<dir>/<rel>` as the `&'static str` a check is named by.
        fn leak(&self, rel: &str) -> &'static str {
            Box::leak(self.0.join(rel).display().to_string().into_boxed_str())
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn executable(path: &Path) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    const DHCP6C: needs::Program = needs::Program {
        name: "dhcp6c",
        package: "wide-dhcpv6-client",
        used_for: "WIDE dhcp6c",
    };

    #[test]
    fn program_missing_is_reported_with_its_package() {
        let bin = Scratch::new("bin");
        let check = program(&DHCP6C, std::slice::from_ref(&bin.0), &[]);
        assert_eq!(check.state, State::Missing);
        assert_eq!(check.package, Some("wide-dhcpv6-client"));
        let fix = check.fix.unwrap();
        assert!(
            fix.starts_with("apt-get install --no-install-recommends wide-dhcpv6-client"),
            "{fix}"
        );

        // A file of that name that cannot be executed does not count.
        std::fs::write(bin.0.join("dhcp6c"), "").unwrap();
        let check = program(&DHCP6C, std::slice::from_ref(&bin.0), &[]);
        assert_eq!(check.state, State::Missing);

        executable(&bin.0.join("dhcp6c"));
        let check = program(&DHCP6C, std::slice::from_ref(&bin.0), &[]);
        assert_eq!(check.state, State::Ok, "{check:?}");
        assert!(check.fix.is_none());
    }

    #[test]
    fn program_installed_off_path_asks_for_path_not_a_package() {
        let sbin = Scratch::new("sbin");
        executable(&sbin.0.join("dhcp6c"));
        let sbin_dir = sbin.0.to_str().unwrap();
        let check = program(&DHCP6C, &[], &[sbin_dir]);
        assert_eq!(check.state, State::Missing);
        assert_eq!(check.package, None);
        let fix = check.fix.unwrap();
        assert!(
            fix.starts_with("export PATH=") && fix.contains(sbin_dir),
            "{fix}"
        );
    }

    #[test]
    fn mount_point_present_or_creatable_is_ok() {
        let root = Scratch::new("mnt-ok");
        std::fs::create_dir(root.0.join("dhcpcd")).unwrap();
        let check = mount_point(root.leak("dhcpcd"), "");
        assert_eq!(check.state, State::Ok, "{check:?}");
        // Absent, with missing parents too (a fresh tmpfs /run): mkdir -p makes it.
        let check = mount_point(root.leak("run/dhcpcd"), "");
        assert_eq!(check.state, State::Ok, "{check:?}");
        assert!(check.detail.contains("mkdir -p"), "{check:?}");
    }

    #[test]
    fn mount_point_that_cannot_be_created_is_missing_with_its_fix() {
        let root = Scratch::new("mnt-bad");
        std::fs::write(root.0.join("run"), "a file where a directory should be").unwrap();
        let check = mount_point(root.leak("run/dhcpcd"), "");
        assert_eq!(check.state, State::Missing, "{check:?}");
        let file = root.leak("run");
        assert_eq!(
            check.fix.unwrap(),
            format!("rm {file} && mkdir -p {file}/dhcpcd")
        );

        let check = mount_point(root.leak("run"), "");
        assert_eq!(check.state, State::Missing, "{check:?}");
        assert!(check.detail.contains("not a directory"), "{check:?}");

        // Absent on a read-only mount.
        let mountinfo = format!(
            "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
             40 22 0:5 / {} ro,nosuid shared:9 - tmpfs tmpfs rw\n",
            root.0.display()
        );
        let dir = root.leak("lib/dhcpcd");
        let check = mount_point(dir, &mountinfo);
        assert_eq!(check.state, State::Missing, "{check:?}");
        assert!(check.fix.unwrap().starts_with(&format!("mkdir -p {dir}")));
    }

    #[test]
    fn mount_of_picks_the_longest_mount_point_and_reads_ro() {
        let mountinfo = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                         25 22 0:23 / /run rw,nosuid shared:5 - tmpfs tmpfs rw,mode=755\n\
                         26 22 0:24 / /mnt/my\\040disk rw - ext4 /dev/sdb1 ro\n";
        assert_eq!(
            mount_of(mountinfo, Path::new("/run/dhcpcd")),
            Some((PathBuf::from("/run"), false))
        );
        assert_eq!(
            mount_of(mountinfo, Path::new("/runner")),
            Some((PathBuf::from("/"), false))
        );
        assert_eq!(
            mount_of(mountinfo, Path::new("/mnt/my disk/x")),
            Some((PathBuf::from("/mnt/my disk"), true))
        );
        assert_eq!(mount_of("", Path::new("/run")), None);
    }

    #[test]
    fn report_lists_each_missing_piece_with_its_fix_and_the_packages_once() {
        let bin = Scratch::new("report");
        let dhcpcd = needs::Program {
            name: "dhcpcd",
            package: "dhcpcd-base",
            used_for: "dhcpcd",
        };
        let checks = vec![
            Check::ok("rustc", "1.95.0"),
            program(&DHCP6C, std::slice::from_ref(&bin.0), &[]),
            program(&dhcpcd, std::slice::from_ref(&bin.0), &[]),
            program(&DHCP6C, std::slice::from_ref(&bin.0), &[]),
            Check::warn("kernel", "old", "upgrade"),
        ];
        let report = Report::of(checks);
        assert_eq!(report.missing.len(), 3, "{report:?}");
        assert!(report.missing[0].starts_with("dhcp6c: apt-get install"));
        assert!(report.text.contains("MISSING  dhcp6c"), "{}", report.text);
        assert!(
            report.text.contains(
                "missing Debian packages: apt-get install --no-install-recommends \
                 wide-dhcpv6-client dhcpcd-base   ("
            ),
            "{}",
            report.text
        );
        let all_ok = Report::of(vec![Check::ok("rustc", "1.95.0")]);
        assert!(all_ok.missing.is_empty());
        assert!(all_ok.text.ends_with("everything needed is present\n"));
    }

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
