//! Packet captures with tcpdump in a namespace, and the RFC 8156 Wireshark dissector
//! (`contrib/wireshark/dhcpv6_failover.lua`) run over them with tshark.

use std::fs;
use std::io::{self, BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::thread;
use std::time::Duration;

use crate::netns::NetNs;

/// The repository root (where `contrib/` is).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The dissector's path.
pub fn dissector() -> PathBuf {
    repo_root().join("contrib/wireshark/dhcpv6_failover.lua")
}

/// A running `tcpdump` in a namespace, writing a pcap file.
#[derive(Debug)]
pub struct Capture {
    child: Child,
    stderr: BufReader<ChildStderr>,
    /// The pcap file.
    pub path: PathBuf,
}

impl Capture {
    /// Starts `tcpdump --immediate-mode -i <iface> -U -w <path> <filter>` in `ns` and waits
    /// until it says it is listening (`--immediate-mode`: packets reach the file as they
    /// come, not when a ring block fills).
    pub fn start(ns: &NetNs, iface: &str, path: &Path, filter: &[&str]) -> io::Result<Self> {
        let mut child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns.name(),
                "tcpdump",
                "--immediate-mode",
                "-i",
                iface,
            ])
            .args(["-U", "-w"])
            .arg(path)
            .args(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| io::Error::other("tcpdump stderr not piped"))?;
        // The pipe stays open until tcpdump exits (it reports its counts there on SIGINT).
        let mut stderr = BufReader::new(stderr);
        let mut line = String::new();
        stderr.read_line(&mut line)?;
        if !line.contains("listening") {
            let _ = child.kill();
            return Err(io::Error::other(format!("tcpdump: {line}")));
        }
        Ok(Self {
            child,
            stderr,
            path: path.to_path_buf(),
        })
    }

    /// Stops tcpdump (SIGINT) after a short grace period and returns what it reported.
    pub fn stop(mut self) -> io::Result<String> {
        thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        self.child.wait()?;
        let mut rest = String::new();
        let _ = self.stderr.read_to_string(&mut rest);
        Ok(rest)
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs tshark with the dissector over `pcap`, display filter `filter`, printing `fields`
/// (`|`-separated, one line per packet). Panics if tshark fails or reports a Lua error.
pub fn tshark_fields(pcap: &Path, filter: &str, fields: &[&str]) -> String {
    let mut cmd = Command::new("tshark");
    cmd.arg("-X")
        .arg(format!("lua_script:{}", dissector().display()))
        .arg("-r")
        .arg(pcap)
        .args(["-Y", filter, "-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {err}");
    assert!(!err.contains("Lua"), "Lua error in the dissector: {err}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The display filter matching anything the dissector (or Wireshark) flags: malformed or
/// unknown fields, and Lua errors (expert group "undecoded").
pub const FLAGGED: &str =
    "dhcpv6fo.malformed || dhcpv6fo.unknown || _ws.malformed || _ws.expert.group == 0x05000000";

/// The failover message types the dissector decoded in `pcap` (sorted, distinct).
pub fn message_types(pcap: &Path, filter: &str) -> Vec<u32> {
    let out = tshark_fields(
        pcap,
        &format!("({filter}) && dhcpv6fo"),
        &["dhcpv6fo.msg_type"],
    );
    let mut v: Vec<u32> = out
        .lines()
        .flat_map(|l| l.split(','))
        .filter_map(|t| t.trim().parse().ok())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// `true` if `tool` is on `PATH`.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A fresh directory for capture files, `/tmp/tandem-cap-<tag>-<pid>`.
pub fn capture_dir(tag: &str) -> io::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("tandem-cap-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d)?;
    Ok(d)
}
