//! The server under test: its configuration, and `tandem run` / `tandem xdp-demo` as a child
//! process in the lab's server namespace, pinned with `taskset`.

use std::fs::{self, File};
use std::io::{BufRead as _, BufReader};
use std::net::Ipv6Addr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use clap::ValueEnum;
use tandem_hwtest::Lab;

/// How long the server may take to print `READY`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long it may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// The PD pool, cut into /56s.
pub(crate) const PD_POOL: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0);
/// Its length: a /32 holds 2^24 /56s, so new clients never run it dry.
pub(crate) const PD_POOL_LEN: u8 = 32;
/// Delegated prefix length.
pub(crate) const DELEGATED_LEN: u8 = 56;

/// Which datapath serves the lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Datapath {
    /// `tandem run` on its UDP socket.
    Socket,
    /// `tandem run` with `[datapath] mode = "xdp"` (AF_XDP workers running the engine).
    Xdp,
    /// `tandem xdp-demo`: AF_XDP workers answering SOLICIT with a refusing ADVERTISE.
    XdpDemo,
}

impl Datapath {
    /// Name in reports.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Socket => "socket",
            Self::Xdp => "xdp",
            Self::XdpDemo => "xdp-demo",
        }
    }
}

/// What to start.
#[derive(Clone, Debug)]
pub(crate) struct ServerSpec {
    /// The `tandem` binary.
    pub(crate) bin: PathBuf,
    /// Datapath.
    pub(crate) datapath: Datapath,
    /// Cores the server (all its threads) is pinned to, as a `taskset -c` / `--cores` list.
    pub(crate) cores: String,
    /// RX queues to serve (XDP).
    pub(crate) queues: u32,
    /// XDP workers busy-poll.
    pub(crate) busy_poll: bool,
    /// XDP attach mode (auto|native|generic).
    pub(crate) xdp_mode: String,
    /// Lease store capacity (`tandem run --capacity`).
    pub(crate) capacity: u64,
    /// Where the scratch directory (config, state directory, log) is created; a tmpfs such as
    /// `/dev/shm` keeps the store's writeback out of the CPU accounting.
    pub(crate) scratch_parent: PathBuf,
    /// TOML appended to the configuration (a `[[failover]]` relationship, `--failover`).
    pub(crate) extra: String,
}

/// `tandem.toml` for the lab: the server interface, one subnet on it with its whole /64 as
/// the address pool and [`PD_POOL`]/[`PD_POOL_LEN`] cut into /[`DELEGATED_LEN`]s, no rapid commit;
/// `[datapath]` for the XDP datapath.
pub(crate) fn config(spec: &ServerSpec, iface: &str, subnet: Ipv6Addr) -> String {
    let mut c = format!(
        "# written by tandem-bench's loadgen\n\
         [server]\npreference = 255\n\n\
         [[interface]]\nname = \"{iface}\"\n\n\
         [[subnet]]\nprefix = \"{subnet}/64\"\ninterface = \"{iface}\"\nrapid-commit = false\n\
         preferred-lifetime = 1800\nvalid-lifetime = 3600\n\n\
         [[subnet.pool]]\nprefix = \"{subnet}/64\"\n\n\
         [[subnet.pd-pool]]\nprefix = \"{PD_POOL}/{PD_POOL_LEN}\"\ndelegated-length = {DELEGATED_LEN}\n"
    );
    if spec.datapath == Datapath::Xdp {
        c.push_str(&format!(
            "\n[datapath]\nmode = \"xdp\"\nxdp-mode = \"{}\"\nbusy-poll = {}\ncores = \"{}\"\n\
             queues = {}\n",
            spec.xdp_mode, spec.busy_poll, spec.cores, spec.queues
        ));
    }
    if !spec.extra.is_empty() {
        c.push('\n');
        c.push_str(&spec.extra);
    }
    c
}

/// A running server that has printed `READY`; stopped with SIGTERM by [`Running::stop`],
/// killed on drop otherwise. Its scratch directory (config, state, log) is removed on drop.
#[derive(Debug)]
pub(crate) struct Running {
    child: Option<Child>,
    pid: u32,
    lines: Receiver<String>,
    /// Everything it printed on stdout so far.
    pub(crate) stdout: Vec<String>,
    dir: PathBuf,
}

impl Running {
    /// Writes the configuration into a fresh scratch directory and starts the server in the
    /// lab's server namespace: `taskset -c CORES ip netns exec NS tandem …` (both exec, so
    /// the child's pid is the server's).
    pub(crate) fn start(spec: &ServerSpec, lab: &Lab) -> anyhow::Result<Self> {
        let subnet = Ipv6Addr::from(u128::from(lab.server_addr()) & !u128::from(u64::MAX));
        let text = config(spec, lab.server_if(), subnet);
        let ns = lab.server_ns().name();
        Self::launch(spec, "", &text, ns, &spec.cores, lab.server_if())
    }

    /// Starts the server of `spec` (`tandem run` or `tandem xdp-demo` on `iface`) with the
    /// configuration `text` in the namespace `ns`, pinned to `cores`, its scratch directory
    /// named with `suffix`.
    pub(crate) fn launch(
        spec: &ServerSpec,
        suffix: &str,
        text: &str,
        ns: &str,
        cores: &str,
        iface: &str,
    ) -> anyhow::Result<Self> {
        let dir = spec
            .scratch_parent
            .join(format!("tandem-loadgen-{}{suffix}", std::process::id()));
        if dir.exists() {
            fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let conf = dir.join("tandem.toml");
        fs::write(&conf, text).with_context(|| format!("writing {}", conf.display()))?;
        let log_path = dir.join("server.log");
        let log = File::create(&log_path)?;
        let mut argv: Vec<String> = match spec.datapath {
            Datapath::Socket | Datapath::Xdp => vec![
                "run".into(),
                "--config".into(),
                conf.display().to_string(),
                "--state-dir".into(),
                dir.join("state").display().to_string(),
                "--capacity".into(),
                spec.capacity.to_string(),
            ],
            Datapath::XdpDemo => vec![
                "xdp-demo".into(),
                "--iface".into(),
                iface.into(),
                "--queues".into(),
                spec.queues.to_string(),
                "--mode".into(),
                spec.xdp_mode.clone(),
                "--cores".into(),
                spec.cores.clone(),
                "--log-level".into(),
                "off".into(),
            ],
        };
        if spec.datapath == Datapath::XdpDemo && spec.busy_poll {
            argv.push("--busy-poll".into());
        }
        let mut child = Command::new("taskset")
            .args(["-c", cores, "ip", "netns", "exec", ns])
            .arg(&spec.bin)
            .args(&argv)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "spawning taskset … {} {}",
                    spec.bin.display(),
                    argv.join(" ")
                )
            })?;
        let (tx, lines) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        let pid = child.id();
        let mut server = Self {
            child: Some(child),
            pid,
            lines,
            stdout: vec![],
            dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match server.lines.recv_timeout(left) {
                Ok(line) => {
                    let ready = line.starts_with("READY");
                    server.stdout.push(line);
                    if ready {
                        break;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    bail!("server exited before READY; log:\n{}", server.log_tail())
                }
                Err(RecvTimeoutError::Timeout) => {
                    bail!(
                        "no READY within {READY_TIMEOUT:?}; log:\n{}",
                        server.log_tail()
                    )
                }
            }
        }
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() != "tandem" && !spec.bin.ends_with(comm.trim()) {
            bail!("pid {pid} is `{}`, not the server", comm.trim());
        }
        Ok(server)
    }

    /// The scratch directory (its `state/` subdirectory is the server's state directory).
    pub(crate) fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The server's pid (CPU accounting reads `/proc/<pid>/stat`).
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The last lines of its stderr log.
    pub(crate) fn log_tail(&self) -> String {
        let text = fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGTERM, wait for the exit, and return the stdout lines printed after `READY`
    /// (`COUNTERS …`, `WORKER …`).
    pub(crate) fn stop(mut self) -> anyhow::Result<Vec<String>> {
        let Some(mut child) = self.child.take() else {
            bail!("already stopped");
        };
        let pid = libc::pid_t::try_from(self.pid)?;
        // SAFETY: plain syscall on our own child, not yet reaped (we hold its `Child`), so
        // the pid cannot have been reused.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            bail!("kill: {}", std::io::Error::last_os_error());
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!("server did not exit within {STOP_TIMEOUT:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let ready = self.stdout.len();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
            self.stdout.push(line);
        }
        if !status.success() {
            bail!("server exited with {status}; log:\n{}", self.log_tail());
        }
        Ok(self.stdout.split_off(ready))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(datapath: Datapath) -> ServerSpec {
        ServerSpec {
            bin: PathBuf::from("tandem"),
            datapath,
            cores: "1".into(),
            queues: 2,
            busy_poll: false,
            xdp_mode: "auto".into(),
            capacity: 1 << 16,
            scratch_parent: std::env::temp_dir(),
            extra: String::new(),
        }
    }

    #[test]
    fn config_for_socket_has_pools_and_no_datapath_section() {
        let c = config(
            &spec(Datapath::Socket),
            "tandem0",
            "fd00:7::".parse().unwrap(),
        );
        assert!(c.contains("prefix = \"fd00:7::/64\""));
        assert!(c.contains("prefix = \"2001:db8::/32\"\ndelegated-length = 56"));
        assert!(c.contains("name = \"tandem0\""));
        assert!(!c.contains("[datapath]"));
        let parsed = tandem_config::Config::from_str(&c, "loadgen.toml");
        assert!(parsed.is_ok(), "{c}\n{:?}", parsed.err());
    }

    #[test]
    fn config_for_xdp_selects_xdp_datapath_on_cores() {
        let c = config(&spec(Datapath::Xdp), "tandem0", "fd00:7::".parse().unwrap());
        assert!(c.contains("[datapath]\nmode = \"xdp\""));
        assert!(c.contains("cores = \"1\""));
        assert!(c.contains("queues = 2"));
    }
}
