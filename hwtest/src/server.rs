//! `tandem xdp-demo` as a child process inside a namespace: started, awaited until `READY`,
//! stopped with SIGTERM, and its `COUNTERS` / `WORKER` report parsed.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, BufRead as _, BufReader};
use std::net::Ipv6Addr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::netns::NetNs;
use crate::process::{drain, join, wait_timeout};

/// How long the server may take to attach XDP and open its sockets.
pub const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the server may take to exit after SIGTERM.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// `--mode` of `tandem xdp-demo`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum XdpMode {
    /// Native, falling back to generic with a warning.
    #[default]
    Auto,
    /// Driver mode (veth supports it).
    Native,
    /// SKB mode: every packet shows up on RX queue 0 on veth (docs/toolchain.md §7).
    Generic,
}

impl XdpMode {
    /// The value of `--mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Native => "native",
            Self::Generic => "generic",
        }
    }
}

/// Command-line arguments of `tandem xdp-demo` (see the datapath contract).
#[derive(Clone, Debug, Default)]
pub struct DemoArgs {
    /// `--iface`.
    pub iface: String,
    /// `--queues` (default: all RX queues of the interface).
    pub queues: Option<u32>,
    /// `--mode`.
    pub mode: XdpMode,
    /// `--busy-poll`.
    pub busy_poll: bool,
    /// `--cores`, e.g. `0,1` or `0-3`.
    pub cores: Option<String>,
    /// `--server-addr`.
    pub server_addr: Option<Ipv6Addr>,
    /// `--duration` in seconds.
    pub duration: Option<u64>,
}

impl DemoArgs {
    /// Defaults for `iface`.
    pub fn new(iface: &str) -> Self {
        Self {
            iface: iface.to_owned(),
            ..Self::default()
        }
    }

    /// The argument vector after the program name, starting with `xdp-demo`.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "xdp-demo".to_owned(),
            "--iface".to_owned(),
            self.iface.clone(),
        ];
        if let Some(q) = self.queues {
            args.extend(["--queues".to_owned(), q.to_string()]);
        }
        args.extend(["--mode".to_owned(), self.mode.as_str().to_owned()]);
        if self.busy_poll {
            args.push("--busy-poll".to_owned());
        }
        if let Some(cores) = &self.cores {
            args.extend(["--cores".to_owned(), cores.clone()]);
        }
        if let Some(addr) = self.server_addr {
            args.extend(["--server-addr".to_owned(), addr.to_string()]);
        }
        if let Some(secs) = self.duration {
            args.extend(["--duration".to_owned(), secs.to_string()]);
        }
        args
    }
}

/// A running `ip netns exec <ns> <tandem> xdp-demo ...` that has printed `READY`. Killed on
/// drop if [`Server::stop`] was not called.
#[derive(Debug)]
pub struct Server {
    child: Option<Child>,
    command: String,
    ready: String,
    lines: Receiver<String>,
    stdout: Vec<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Server {
    /// Starts the demo server in `ns` and waits (at most [`READY_TIMEOUT`]) for its `READY`
    /// line. If it exits or stays silent, the error says so and carries its stderr.
    pub fn start(tandem_bin: &Path, ns: &NetNs, args: &DemoArgs) -> io::Result<Self> {
        let argv = args.to_args();
        let command = format!(
            "ip netns exec {} {} {}",
            ns.name(),
            tandem_bin.display(),
            argv.join(" ")
        );
        let mut child = Command::new("ip")
            .args(["netns", "exec", ns.name()])
            .arg(tandem_bin)
            .args(&argv)
            // Plain text in captured logs and reports.
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot spawn `{command}`: {e}")))?;
        let lines = line_reader(child.stdout.take());
        let stderr = Some(drain(child.stderr.take()));
        let mut server = Self {
            child: Some(child),
            command,
            ready: String::new(),
            lines,
            stdout: vec![],
            stderr,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match server.lines.recv_timeout(left) {
                Ok(line) => {
                    let ready = line.starts_with("READY ");
                    server.stdout.push(line);
                    if ready {
                        server.ready = server.stdout.last().cloned().unwrap_or_default();
                        return Ok(server);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(server.fail("exited before printing READY"));
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(server.fail(&format!("printed no READY within {READY_TIMEOUT:?}")));
                }
            }
        }
    }

    /// The `READY iface=.. mode=.. queues=..` line.
    pub fn ready_line(&self) -> &str {
        &self.ready
    }

    /// A `key=value` field of the `READY` line (e.g. `mode`).
    pub fn ready_field(&self, key: &str) -> Option<&str> {
        fields(&self.ready).find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// Sends SIGTERM, waits (at most [`STOP_TIMEOUT`]) for the exit and parses the report.
    pub fn stop(mut self) -> io::Result<ServerOutput> {
        let mut child = self
            .child
            .take()
            .ok_or_else(|| io::Error::other("server already stopped"))?;
        let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
        // SAFETY: plain syscall; `pid` is our own child, not yet reaped (we hold its `Child`),
        // so the pid cannot have been reused.
        if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let Some(status) = wait_timeout(&mut child, STOP_TIMEOUT)? else {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = self.stderr.take().map(join).unwrap_or_default();
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "`{}` did not exit within {STOP_TIMEOUT:?} of SIGTERM; stderr:\n{stderr}",
                    self.command
                ),
            ));
        };
        // The pipe closes when the process exits; the reader then disconnects.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.stdout.push(line);
        }
        let stderr = self.stderr.take().map(join).unwrap_or_default();
        Ok(ServerOutput::parse(
            status,
            std::mem::take(&mut self.stdout),
            stderr,
        ))
    }

    /// Kills the child and turns `what` into an error carrying its stderr.
    fn fail(&mut self, what: &str) -> io::Error {
        let status = self.child.take().and_then(|mut child| {
            let _ = child.kill();
            child.wait().ok()
        });
        let stderr = self.stderr.take().map(join).unwrap_or_default();
        let status = status.map_or_else(|| "unknown status".to_owned(), |s| s.to_string());
        io::Error::other(format!(
            "`{}` {what} ({status}); stdout:\n{}\nstderr:\n{}",
            self.command,
            self.stdout.join("\n"),
            stderr.trim_end()
        ))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            // A test is failing with the server still up: show what the server said.
            if thread::panicking() {
                let stderr = self.stderr.take().map(join).unwrap_or_default();
                use std::io::Write as _;
                let _ = writeln!(
                    io::stderr().lock(),
                    "--- `{}` killed; stdout:\n{}\n--- stderr:\n{}",
                    self.command,
                    self.stdout.join("\n"),
                    stderr.trim_end()
                );
            }
        }
    }
}

/// Forwards stdout line by line; the channel disconnects at end of file.
fn line_reader(stdout: Option<ChildStdout>) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(stdout) = stdout {
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
    }
    rx
}

/// The `key=value` words of a report line (words without `=` are skipped).
fn fields(line: &str) -> impl Iterator<Item = (&str, &str)> {
    line.split_whitespace().filter_map(|w| w.split_once('='))
}

/// What `tandem xdp-demo` reported when it stopped.
#[derive(Debug)]
pub struct ServerOutput {
    /// Its exit status (0 after SIGTERM).
    pub status: ExitStatus,
    /// Every stdout line, `READY` included.
    pub stdout: Vec<String>,
    /// Everything it wrote to stderr (warnings, logs).
    pub stderr: String,
    /// The XDP counters of the `COUNTERS` line, by name (e.g. `xdp_redirected`).
    pub counters: BTreeMap<String, u64>,
    /// One entry per `WORKER` line.
    pub workers: Vec<WorkerStats>,
}

impl ServerOutput {
    fn parse(status: ExitStatus, stdout: Vec<String>, stderr: String) -> Self {
        let mut counters = BTreeMap::new();
        let mut workers = Vec::new();
        for line in &stdout {
            if let Some(rest) = line.strip_prefix("COUNTERS ") {
                for (k, v) in fields(rest) {
                    if let Ok(v) = v.parse() {
                        counters.insert(k.to_owned(), v);
                    }
                }
            } else if let Some(rest) = line.strip_prefix("WORKER ") {
                workers.push(WorkerStats::parse(rest));
            }
        }
        Self {
            status,
            stdout,
            stderr,
            counters,
            workers,
        }
    }

    /// Counter `name`, also found under `xdp_<name>` (so `redirected` finds `xdp_redirected`).
    pub fn counter(&self, name: &str) -> Option<u64> {
        self.counters
            .get(name)
            .or_else(|| self.counters.get(&format!("xdp_{name}")))
            .copied()
    }

    /// Sum of the workers' `rx`.
    pub fn worker_rx_total(&self) -> u64 {
        self.workers.iter().map(|w| w.rx).sum()
    }

    /// Sum of the workers' `tx`.
    pub fn worker_tx_total(&self) -> u64 {
        self.workers.iter().map(|w| w.tx).sum()
    }

    /// The `COUNTERS` line as `name=value` pairs, for messages.
    pub fn counters_line(&self) -> String {
        self.counters
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// One `WORKER queue=Q core=C rx=.. tx=.. dropped=.. replies=..` line. Missing or unparsable
/// numbers read as 0 (`core` as `None`); every field is also kept verbatim in `fields`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// RX queue the worker's AF_XDP socket is bound to.
    pub queue: u32,
    /// CPU the worker thread is pinned to, if any.
    pub core: Option<u32>,
    /// Frames received.
    pub rx: u64,
    /// Frames transmitted.
    pub tx: u64,
    /// Frames dropped (not answerable).
    pub dropped: u64,
    /// DHCPv6 replies built.
    pub replies: u64,
    /// All `key=value` fields of the line.
    pub fields: BTreeMap<String, String>,
}

impl WorkerStats {
    fn parse(rest: &str) -> Self {
        let fields: BTreeMap<String, String> = self::fields(rest)
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let num = |k: &str| {
            fields
                .get(k)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Self {
            queue: fields
                .get("queue")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            core: fields.get("core").and_then(|v| v.parse().ok()),
            rx: num("rx"),
            tx: num("tx"),
            dropped: num("dropped"),
            replies: num("replies"),
            fields,
        }
    }
}

impl fmt::Display for WorkerStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.core.map_or_else(|| "-".to_owned(), |c| c.to_string());
        write!(
            f,
            "queue {} on core {core}: rx={} tx={} dropped={} replies={}",
            self.queue, self.rx, self.tx, self.dropped, self.replies
        )
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::*;

    #[test]
    fn server_output_parses_counters_and_workers() {
        let stdout = [
            "READY iface=tandem0 mode=native queues=2",
            "COUNTERS xdp_seen=20 xdp_redirected=16 xdp_pass_not_ipv6=4 junk",
            "WORKER queue=0 core=0 rx=9 tx=9 dropped=0 replies=9",
            "WORKER queue=1 core=1 rx=7 tx=7 dropped=1 replies=7 extra=x",
        ];
        let out = ServerOutput::parse(
            ExitStatus::from_raw(0),
            stdout.iter().map(|s| (*s).to_owned()).collect(),
            String::new(),
        );
        assert_eq!(out.counter("redirected"), Some(16));
        assert_eq!(out.counter("xdp_seen"), Some(20));
        assert_eq!(out.counter("nope"), None);
        assert_eq!(out.workers.len(), 2);
        assert_eq!(out.workers[1].queue, 1);
        assert_eq!(out.workers[1].dropped, 1);
        assert_eq!(out.workers[1].fields["extra"], "x");
        assert_eq!(out.worker_rx_total(), 16);
        assert_eq!(out.worker_tx_total(), 16);
    }

    #[test]
    fn demo_args_render_every_option() {
        let args = DemoArgs {
            queues: Some(2),
            mode: XdpMode::Generic,
            busy_poll: true,
            cores: Some("0-1".to_owned()),
            server_addr: Some(Ipv6Addr::LOCALHOST),
            duration: Some(3),
            ..DemoArgs::new("eth9")
        };
        assert_eq!(
            args.to_args().join(" "),
            "xdp-demo --iface eth9 --queues 2 --mode generic --busy-poll --cores 0-1 \
             --server-addr ::1 --duration 3"
        );
    }
}
