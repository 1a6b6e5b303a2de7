//! The control socket of a running server: `<state-dir>/tandem.sock`, a unix stream socket
//! (mode 0600) that `tandem status` and `tandem tune` talk to.
//!
//! Protocol: the client sends one request line, the server answers with text and closes the
//! connection. Requests:
//!
//! * `status [--json]`: datapath and attach mode, interfaces, lease shards and bindings, the
//!   workers (interface, queue, core, packet counters), the XDP program's, the engine's and
//!   the socket layer's counters.
//! * `tune show [--json]`: the workers with their current core and RX/TX packet rates over
//!   the last second or so, the RX queues of each configured interface and the interrupts of
//!   its queues with their CPU affinity.
//! * `tune cores LIST`: moves the workers to the cores of LIST (worker i to the (i mod
//!   len)-th core); the workers apply it on their next wake-up.
//!
//! A request the server cannot serve gets one line `error: <why>`. With `--json` the answer is
//! one JSON object on one line; otherwise it is text for people.
//!
//! The server side ([`ControlServer`]) never blocks the loop that drives it: the listener is
//! non-blocking, each client gets at most [`CLIENT_READ_TIMEOUT`] to send its line, and packet
//! rates come from counter snapshots that [`ControlServer::serve_pending`] keeps once a second.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, RawFd};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tandem_datapath::sys::cpu::allowed_cores;
use tandem_datapath::udp::SocketCounters;
use tandem_datapath::worker::{WorkerHandle, parse_core_list};
use tandem_proto::Counters;
use tandem_wire::dhcp::MessageType;

use crate::tune::{self, Irqs, NicReport};

/// File name of the control socket in the state directory.
pub const SOCKET_NAME: &str = "tandem.sock";
/// Longest a client may take to send its request line.
pub const CLIENT_READ_TIMEOUT: Duration = Duration::from_millis(100);
/// Longest the server waits to hand an answer to a client that does not read it.
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest request line accepted.
const MAX_REQUEST: usize = 256;
/// Most bytes read from a client whose request line is too long.
const MAX_DRAIN: usize = 64 * 1024;
/// Clients served per [`ControlServer::serve_pending`] call; the rest wait for the next one.
const MAX_CLIENTS_PER_CALL: usize = 8;
/// Interval of the counter snapshots that packet rates are computed from.
const RATE_INTERVAL: Duration = Duration::from_secs(1);
/// A snapshot younger than this gives no meaningful rate.
const MIN_RATE_INTERVAL: Duration = Duration::from_millis(100);

/// The path of the control socket of `state_dir`.
pub fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(SOCKET_NAME)
}

/// One worker as the control socket shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkerView {
    /// Interface served.
    pub iface: String,
    /// RX queue served.
    pub queue: u32,
    /// Core the worker runs on now (`None`: not pinned).
    pub core: Option<usize>,
    /// Frames received.
    pub rx: u64,
    /// Replies the kernel reported sent.
    pub tx: u64,
    /// Frames not answered (handler drops, TX ring full, bad descriptors).
    pub dropped: u64,
    /// Frames answered.
    pub replies: u64,
}

impl WorkerView {
    /// The view of a running AF_XDP worker of `iface`.
    pub fn of_handle(iface: &str, worker: &WorkerHandle) -> Self {
        let s = worker.stats().snapshot();
        Self {
            iface: iface.to_owned(),
            queue: worker.queue(),
            core: worker.current_core(),
            rx: s.rx,
            tx: s.tx,
            dropped: s
                .dropped
                .saturating_add(s.tx_full)
                .saturating_add(s.bad_desc)
                .saturating_add(s.outbound_dropped),
            replies: s.replies,
        }
    }
}

/// What `status` reports. Counter lists are `(name, value)` in display order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusReport {
    /// `socket` or `xdp`.
    pub datapath: String,
    /// XDP attach mode (`native`, `generic`); `None` in socket mode.
    pub attach_mode: Option<String>,
    /// The configured interfaces.
    pub interfaces: Vec<String>,
    /// Lease database shards.
    pub shards: usize,
    /// Bindings stored, over all shards.
    pub bindings: usize,
    /// Store capacity in bindings, over all shards.
    pub capacity: u64,
    /// The AF_XDP workers (empty in socket mode).
    pub workers: Vec<WorkerView>,
    /// The XDP program's counters (see [`xdp_counters`]); empty in socket mode.
    pub xdp: Vec<(String, u64)>,
    /// The engine's counters (see [`engine_counters`]).
    pub engine: Vec<(String, u64)>,
    /// The socket layer's counters (see [`socket_counters`]); empty in XDP mode.
    pub socket: Vec<(String, u64)>,
}

/// The running server, as the control socket sees it. Implemented by each datapath's run
/// loop (see [`SocketModeTarget`]).
pub trait ControlTarget {
    /// Everything `status` shows.
    fn status(&self) -> StatusReport;
    /// The workers and their counters (for the packet rates of `tune show`).
    fn workers(&self) -> Vec<WorkerView>;
    /// Moves the workers to `cores` (already checked to be allowed for this process); returns
    /// `(queue, core)` per worker, or why it cannot.
    ///
    /// # Errors
    /// The datapath has nothing to pin, or `cores` is unusable.
    fn set_cores(&mut self, cores: &[usize]) -> Result<Vec<(u32, usize)>, String>;
}

/// Asks each of `workers` to move: worker i to `cores[i mod len]` (the placement of
/// `--cores`). Returns `(queue, core)` per worker.
///
/// # Errors
/// `cores` is empty.
pub fn pin_workers<'a>(
    workers: impl IntoIterator<Item = &'a WorkerHandle>,
    cores: &[usize],
) -> Result<Vec<(u32, usize)>, String> {
    if cores.is_empty() {
        return Err("no cores given".to_owned());
    }
    Ok(workers
        .into_iter()
        .zip(cores.iter().cycle())
        .map(|(worker, &core)| {
            worker.set_core(Some(core));
            (worker.queue(), core)
        })
        .collect())
}

/// The engine counters as `status` lists them: `rx_<type>` for the client message types
/// (and any other type seen), `tx_advertise`, `tx_reply`, `drop_<reason>`, then the lease
/// events — the names of the `COUNTERS` line of `tandem run`.
pub fn engine_counters(c: &Counters) -> Vec<(String, u64)> {
    const CLIENT_TYPES: [MessageType; 9] = [
        MessageType::SOLICIT,
        MessageType::REQUEST,
        MessageType::CONFIRM,
        MessageType::RENEW,
        MessageType::REBIND,
        MessageType::RELEASE,
        MessageType::DECLINE,
        MessageType::INFORMATION_REQUEST,
        MessageType::RELAY_FORW,
    ];
    let name = |t: MessageType| {
        t.name()
            .map_or_else(|| format!("type{}", t.0), str::to_ascii_lowercase)
    };
    let mut out = Vec::new();
    for t in (0..=u8::MAX).map(MessageType) {
        if CLIENT_TYPES.contains(&t) || c.received(t) != 0 {
            out.push((format!("rx_{}", name(t)), c.received(t)));
        }
    }
    for t in [MessageType::ADVERTISE, MessageType::REPLY] {
        out.push((format!("tx_{}", name(t)), c.replies(t)));
    }
    for (reason, n) in c.drop_counts() {
        out.push((format!("drop_{}", reason.name()), n));
    }
    for (event, n) in [
        ("committed", c.committed),
        ("released", c.released),
        ("declined", c.declined),
        ("expired", c.expired),
        ("unquarantined", c.unquarantined),
        ("store_errors", c.store_errors),
    ] {
        out.push((event.to_owned(), n));
    }
    out
}

/// The socket layer's drop counters, named as in the `COUNTERS` line.
pub fn socket_counters(s: &SocketCounters) -> Vec<(String, u64)> {
    vec![
        ("drop_unknown_interface".to_owned(), s.unknown_interface),
        ("drop_no_pktinfo".to_owned(), s.no_pktinfo),
        ("drop_truncated".to_owned(), s.truncated),
    ]
}

/// The XDP program's counters, named `xdp_<name>` as in the `COUNTERS` line.
pub fn xdp_counters(c: &tandem_datapath::xdp::Counters) -> Vec<(String, u64)> {
    c.iter().map(|(n, v)| (format!("xdp_{n}"), v)).collect()
}

/// [`ControlTarget`] of the socket datapath: one thread, no workers. Build it from the run
/// loop's state right before [`ControlServer::serve_pending`] (with several shard engines,
/// [`Counters::merge`] them into one first).
///
/// `tune cores` is refused: the socket datapath has no per-queue workers to pin.
#[derive(Debug)]
pub struct SocketModeTarget<'a> {
    /// The configured interfaces.
    pub interfaces: &'a [String],
    /// The engine's counters.
    pub engine: &'a Counters,
    /// The socket layer's counters.
    pub socket: &'a SocketCounters,
    /// Lease database shards.
    pub shards: usize,
    /// Bindings stored, over all shards.
    pub bindings: usize,
    /// Store capacity, over all shards.
    pub capacity: u64,
}

impl ControlTarget for SocketModeTarget<'_> {
    fn status(&self) -> StatusReport {
        StatusReport {
            datapath: "socket".to_owned(),
            attach_mode: None,
            interfaces: self.interfaces.to_vec(),
            shards: self.shards,
            bindings: self.bindings,
            capacity: self.capacity,
            workers: Vec::new(),
            xdp: Vec::new(),
            engine: engine_counters(self.engine),
            socket: socket_counters(self.socket),
        }
    }

    fn workers(&self) -> Vec<WorkerView> {
        Vec::new()
    }

    fn set_cores(&mut self, _cores: &[usize]) -> Result<Vec<(u32, usize)>, String> {
        Err(
            "the socket datapath has no workers to pin (per-queue workers run with \
             `[datapath] mode = \"xdp\"` or `tandem run --datapath xdp`)"
                .to_owned(),
        )
    }
}

/// A parsed request line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// `status [--json]`.
    Status {
        /// One JSON object instead of text.
        json: bool,
    },
    /// `tune show [--json]`.
    TuneShow {
        /// One JSON object instead of text.
        json: bool,
    },
    /// `tune cores LIST`.
    TuneCores(Vec<usize>),
}

/// Parses one request line (see the module docs).
///
/// # Errors
/// Unknown command, bad core list, extra words.
pub fn parse_request(line: &str) -> Result<Request, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["status"] => Ok(Request::Status { json: false }),
        ["status", "--json"] => Ok(Request::Status { json: true }),
        ["tune", "show"] => Ok(Request::TuneShow { json: false }),
        ["tune", "show", "--json"] => Ok(Request::TuneShow { json: true }),
        ["tune", "cores", list] => parse_core_list(list)
            .map(Request::TuneCores)
            .map_err(|e| e.to_string()),
        _ => Err(format!(
            "unknown request {:?} (expected `status [--json]`, `tune show [--json]` or \
             `tune cores LIST`)",
            line.trim()
        )),
    }
}

/// Counter snapshots of the workers, one a second, for the rates of `tune show`.
#[derive(Debug, Default)]
struct RateSampler {
    /// The newest snapshot and the one before it.
    last: Option<Snapshot>,
    prev: Option<Snapshot>,
}

#[derive(Debug)]
struct Snapshot {
    at: Instant,
    /// `(iface, queue)` → `(rx, tx)`.
    counts: HashMap<(String, u32), (u64, u64)>,
}

impl Snapshot {
    fn of(at: Instant, workers: &[WorkerView]) -> Self {
        Self {
            at,
            counts: workers
                .iter()
                .map(|w| ((w.iface.clone(), w.queue), (w.rx, w.tx)))
                .collect(),
        }
    }
}

/// Rates of one worker, packets per second.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Rates {
    rx: f64,
    tx: f64,
}

impl RateSampler {
    /// Takes a snapshot if the newest is [`RATE_INTERVAL`] old (or there is none).
    fn tick(&mut self, now: Instant, workers: impl FnOnce() -> Vec<WorkerView>) {
        let due = self
            .last
            .as_ref()
            .is_none_or(|s| now.saturating_duration_since(s.at) >= RATE_INTERVAL);
        if due {
            self.prev = self.last.take();
            self.last = Some(Snapshot::of(now, &workers()));
        }
    }

    /// The snapshot to measure from at `now`: the newest one at least [`RATE_INTERVAL`] old,
    /// else the oldest one at least [`MIN_RATE_INTERVAL`] old.
    fn baseline(&self, now: Instant) -> Option<&Snapshot> {
        let age = |s: &Snapshot| now.saturating_duration_since(s.at);
        let candidates = [self.last.as_ref(), self.prev.as_ref()];
        candidates
            .iter()
            .flatten()
            .find(|s| age(s) >= RATE_INTERVAL)
            .or_else(|| {
                candidates
                    .iter()
                    .rev()
                    .flatten()
                    .find(|s| age(s) >= MIN_RATE_INTERVAL)
            })
            .copied()
    }

    /// The measuring interval and each worker's rates (`None`: no baseline for it).
    fn rates(
        &self,
        now: Instant,
        workers: &[WorkerView],
    ) -> (Option<Duration>, Vec<Option<Rates>>) {
        let Some(base) = self.baseline(now) else {
            return (None, vec![None; workers.len()]);
        };
        let interval = now.saturating_duration_since(base.at);
        let secs = interval.as_secs_f64();
        let rates = workers
            .iter()
            .map(|w| {
                let &(rx, tx) = base.counts.get(&(w.iface.clone(), w.queue))?;
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "packet rates are shown with one decimal"
                )]
                let per_sec = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
                Some(Rates {
                    rx: per_sec(w.rx, rx),
                    tx: per_sec(w.tx, tx),
                })
            })
            .collect();
        (Some(interval), rates)
    }
}

/// The server side of the control socket (see the module docs). The socket file is removed
/// when this is dropped.
#[derive(Debug)]
pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    /// `(st_dev, st_ino)` of the socket file we created, so that drop removes only ours.
    id: (u64, u64),
    rates: RateSampler,
}

impl ControlServer {
    /// Creates `<state_dir>/tandem.sock` (mode 0600), non-blocking. A socket file left by a
    /// server that is gone is replaced.
    ///
    /// # Errors
    /// Another server answers on the socket, the path exists and is not a socket, or the
    /// socket cannot be created.
    pub fn bind(state_dir: &Path) -> io::Result<Self> {
        let path = socket_path(state_dir);
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(annotate(e, &format!("inspecting {}", path.display()))),
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{} exists and is not a socket: remove it to start the server",
                        path.display()
                    ),
                ));
            }
            Ok(_) => {
                if UnixStream::connect(&path).is_ok() {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        format!(
                            "another Tandem server is running with state dir {} (its control \
                             socket {} answers)",
                            state_dir.display(),
                            path.display()
                        ),
                    ));
                }
                tracing::info!("removing the stale control socket {}", path.display());
                fs::remove_file(&path).map_err(|e| {
                    annotate(e, &format!("removing the stale socket {}", path.display()))
                })?;
            }
        }
        let listener = UnixListener::bind(&path).map_err(|e| {
            annotate(
                e,
                &format!("creating the control socket {}", path.display()),
            )
        })?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600))
            .map_err(|e| annotate(e, &format!("chmod 0600 {}", path.display())))?;
        listener.set_nonblocking(true)?;
        let meta = fs::symlink_metadata(&path)?;
        Ok(Self {
            listener,
            path,
            id: (meta.dev(), meta.ino()),
            rates: RateSampler::default(),
        })
    }

    /// The listening socket, to poll for readability with the datapath's own sockets.
    pub fn fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// The socket file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves the clients waiting on the socket (at most a few per call, each for at most
    /// [`CLIENT_READ_TIMEOUT`] to send its request), and keeps the once-a-second counter
    /// snapshot for packet rates. Returns at once when nobody is waiting: call it on every
    /// turn of the run loop.
    pub fn serve_pending(&mut self, target: &mut dyn ControlTarget) {
        self.rates.tick(Instant::now(), || target.workers());
        for _ in 0..MAX_CLIENTS_PER_CALL {
            match self.listener.accept() {
                Ok((stream, _)) => self.serve_client(stream, target),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::warn!("control socket {}: accept: {e}", self.path.display());
                    break;
                }
            }
        }
    }

    fn serve_client(&self, mut stream: UnixStream, target: &mut dyn ControlTarget) {
        let answer = match read_request(&mut stream) {
            Ok(line) => {
                tracing::debug!("control request {line:?}");
                self.answer(&line, target)
            }
            Err(e) => format!("error: {e}\n"),
        };
        let written = stream
            .set_nonblocking(false)
            .and_then(|()| stream.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT)))
            .and_then(|()| stream.write_all(answer.as_bytes()));
        if let Err(e) = written {
            tracing::debug!("control socket: writing the answer: {e}");
        }
    }

    /// The answer to one request line (ending in a newline).
    fn answer(&self, line: &str, target: &mut dyn ControlTarget) -> String {
        let request = match parse_request(line) {
            Ok(r) => r,
            Err(e) => return format!("error: {e}\n"),
        };
        match request {
            Request::Status { json } => {
                let report = target.status();
                if json {
                    status_json(&report)
                } else {
                    status_text(&report)
                }
            }
            Request::TuneShow { json } => {
                let report = target.status();
                let (interval, rates) = self.rates.rates(Instant::now(), &report.workers);
                let nics: Vec<NicReport> = report
                    .interfaces
                    .iter()
                    .map(|iface| tune::inspect(iface))
                    .collect();
                let show = TuneShow {
                    datapath: &report.datapath,
                    workers: &report.workers,
                    interval,
                    rates: &rates,
                    nics: &nics,
                };
                if json { show.json() } else { show.text() }
            }
            Request::TuneCores(cores) => {
                if let Err(e) = tune::check_cores(&cores, &allowed_cores()) {
                    return format!("error: {e}\n");
                }
                match target.set_cores(&cores) {
                    Err(e) => format!("error: {e}\n"),
                    Ok(placed) => {
                        let mut out = format!(
                            "{} worker(s) moving to cores {} (applied on their next wake-up; \
                             see `tandem tune show`)\n",
                            placed.len(),
                            tune::compress_list(&cores)
                        );
                        for (queue, core) in placed {
                            let _ = writeln!(out, "  queue {queue} -> core {core}");
                        }
                        out
                    }
                }
            }
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        let ours = fs::symlink_metadata(&self.path)
            .is_ok_and(|m| (m.dev(), m.ino()) == self.id && m.file_type().is_socket());
        if ours && let Err(e) = fs::remove_file(&self.path) {
            tracing::warn!("removing the control socket {}: {e}", self.path.display());
        }
    }
}

fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Reads the request line (up to the first newline or the end of the stream) within
/// [`CLIENT_READ_TIMEOUT`]. An overlong line is read to its end (up to [`MAX_DRAIN`] bytes)
/// so that the client gets the error answer rather than a connection reset.
fn read_request(stream: &mut UnixStream) -> Result<String, String> {
    stream
        .set_nonblocking(false)
        .map_err(|e| format!("setting up the connection: {e}"))?;
    let deadline = Instant::now() + CLIENT_READ_TIMEOUT;
    let mut line: Vec<u8> = Vec::with_capacity(64);
    let mut total = 0usize;
    let mut chunk = [0u8; 1024];
    let too_slow = || {
        format!(
            "no request line within {} ms",
            CLIENT_READ_TIMEOUT.as_millis()
        )
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(too_slow());
        }
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| format!("setting up the connection: {e}"))?;
        let n = match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(too_slow());
            }
            Err(e) => return Err(format!("reading the request: {e}")),
        };
        let data = chunk.get(..n).unwrap_or_default();
        total = total.saturating_add(n);
        let end = data.iter().position(|&b| b == b'\n');
        if line.len() <= MAX_REQUEST {
            line.extend_from_slice(data.get(..end.unwrap_or(n)).unwrap_or_default());
        }
        if end.is_some() || total > MAX_DRAIN {
            break;
        }
    }
    if line.len() > MAX_REQUEST {
        return Err(format!("request longer than {MAX_REQUEST} bytes"));
    }
    String::from_utf8(line).map_err(|_| "the request is not UTF-8".to_owned())
}

/// Sends `line` to the server of `state_dir` and returns its whole answer.
///
/// # Errors
/// No server runs there (the message says so and names the socket path), the socket is not
/// ours to use, or the server does not answer within `timeout`.
pub fn request(state_dir: &Path, line: &str, timeout: Duration) -> io::Result<String> {
    let path = socket_path(state_dir);
    let mut stream = UnixStream::connect(&path).map_err(|e| {
        let dir = state_dir.display();
        let sock = path.display();
        let msg = match e.kind() {
            io::ErrorKind::NotFound => {
                format!(
                    "no Tandem server is running with state dir {dir} (no control socket at {sock})"
                )
            }
            io::ErrorKind::ConnectionRefused => format!(
                "no Tandem server is running with state dir {dir} (nothing answers on the \
                 control socket {sock})"
            ),
            io::ErrorKind::PermissionDenied => format!(
                "cannot connect to the control socket {sock}: permission denied (it is \
                 mode 0600: run as the user of the server)"
            ),
            _ => format!("connecting to the control socket {sock}: {e}"),
        };
        io::Error::new(e.kind(), msg)
    })?;
    let timed_out = |e: io::Error| {
        if matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            io::Error::new(
                io::ErrorKind::TimedOut,
                format!(
                    "the server did not answer on {} within {:.1} s",
                    path.display(),
                    timeout.as_secs_f64()
                ),
            )
        } else {
            annotate(e, &format!("talking to the server on {}", path.display()))
        }
    };
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream
        .write_all(format!("{}\n", line.trim_end()).as_bytes())
        .map_err(timed_out)?;
    // The server may answer and close before reading everything: a failed shutdown is fine.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(timed_out)?;
    if answer.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("the server closed {} without answering", path.display()),
        ));
    }
    Ok(answer)
}

/// A JSON string literal of `s`.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_owned(), |v| v.to_string())
}

/// `{"name":N,…}`
fn json_counters(counters: &[(String, u64)]) -> String {
    let fields: Vec<String> = counters
        .iter()
        .map(|(n, v)| format!("{}:{v}", json_str(n)))
        .collect();
    format!("{{{}}}", fields.join(","))
}

fn worker_json(w: &WorkerView) -> String {
    format!(
        "{{\"iface\":{},\"queue\":{},\"core\":{},\"rx\":{},\"tx\":{},\"dropped\":{},\"replies\":{}",
        json_str(&w.iface),
        w.queue,
        json_opt(w.core),
        w.rx,
        w.tx,
        w.dropped,
        w.replies
    )
}

/// `status --json`: one object, `{"datapath":"xdp","attach_mode":"native"|null,
/// "interfaces":[…],"shards":N,"bindings":N,"capacity":N,"workers":[{"iface":…,"queue":N,
/// "core":N|null,"rx":N,"tx":N,"dropped":N,"replies":N}],"xdp":{…},"engine":{…},
/// "socket":{…}}`.
pub fn status_json(r: &StatusReport) -> String {
    let interfaces: Vec<String> = r.interfaces.iter().map(|i| json_str(i)).collect();
    let workers: Vec<String> = r.workers.iter().map(|w| worker_json(w) + "}").collect();
    format!(
        "{{\"datapath\":{},\"attach_mode\":{},\"interfaces\":[{}],\"shards\":{},\
         \"bindings\":{},\"capacity\":{},\"workers\":[{}],\"xdp\":{},\"engine\":{},\
         \"socket\":{}}}\n",
        json_str(&r.datapath),
        r.attach_mode
            .as_deref()
            .map_or_else(|| "null".to_owned(), json_str),
        interfaces.join(","),
        r.shards,
        r.bindings,
        r.capacity,
        workers.join(","),
        json_counters(&r.xdp),
        json_counters(&r.engine),
        json_counters(&r.socket),
    )
}

/// Left-aligned columns, two spaces apart, each row indented by two spaces.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let header: Vec<String> = header.iter().map(|&h| h.to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (cell, w) in row.iter().zip(&widths) {
            let _ = write!(line, "  {cell:<w$}");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn counters_text(counters: &[(String, u64)]) -> String {
    let fields: Vec<String> = counters.iter().map(|(n, v)| format!("{n}={v}")).collect();
    fields.join(" ")
}

fn core_text(core: Option<usize>) -> String {
    core.map_or_else(|| "-".to_owned(), |c| c.to_string())
}

/// `status` for people.
pub fn status_text(r: &StatusReport) -> String {
    let mut out = String::new();
    let _ = match &r.attach_mode {
        Some(mode) => writeln!(out, "datapath: {} ({mode} mode)", r.datapath),
        None => writeln!(out, "datapath: {}", r.datapath),
    };
    let _ = writeln!(out, "interfaces: {}", r.interfaces.join(", "));
    let _ = writeln!(
        out,
        "leases: {} binding(s) in {} shard(s), capacity {}",
        r.bindings, r.shards, r.capacity
    );
    if r.workers.is_empty() {
        let _ = writeln!(out, "workers: none");
    } else {
        let _ = writeln!(out, "workers: {}", r.workers.len());
        let rows: Vec<Vec<String>> = r
            .workers
            .iter()
            .map(|w| {
                vec![
                    w.iface.clone(),
                    w.queue.to_string(),
                    core_text(w.core),
                    w.rx.to_string(),
                    w.tx.to_string(),
                    w.dropped.to_string(),
                    w.replies.to_string(),
                ]
            })
            .collect();
        out.push_str(&table(
            &["IFACE", "QUEUE", "CORE", "RX", "TX", "DROPPED", "REPLIES"],
            &rows,
        ));
    }
    for (title, counters) in [
        ("xdp", &r.xdp),
        ("engine", &r.engine),
        ("socket", &r.socket),
    ] {
        if !counters.is_empty() {
            let _ = writeln!(out, "{title}: {}", counters_text(counters));
        }
    }
    out
}

/// What `tune show` prints.
struct TuneShow<'a> {
    datapath: &'a str,
    workers: &'a [WorkerView],
    interval: Option<Duration>,
    rates: &'a [Option<Rates>],
    nics: &'a [NicReport],
}

impl TuneShow<'_> {
    fn text(&self) -> String {
        let mut out = String::new();
        if self.workers.is_empty() {
            let _ = writeln!(
                out,
                "workers: none ({} datapath: one thread serves every interface)",
                self.datapath
            );
        } else {
            let _ = match self.interval {
                Some(d) => writeln!(
                    out,
                    "workers ({} datapath; rates over the last {:.1} s):",
                    self.datapath,
                    d.as_secs_f64()
                ),
                None => writeln!(
                    out,
                    "workers ({} datapath; rates not measured yet, ask again in a second):",
                    self.datapath
                ),
            };
            let rate = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{r:.1}"));
            let rows: Vec<Vec<String>> = self
                .workers
                .iter()
                .zip(self.rates.iter().chain(std::iter::repeat(&None)))
                .map(|(w, r)| {
                    vec![
                        w.iface.clone(),
                        w.queue.to_string(),
                        core_text(w.core),
                        rate(r.map(|r| r.rx)),
                        rate(r.map(|r| r.tx)),
                    ]
                })
                .collect();
            out.push_str(&table(&["IFACE", "QUEUE", "CORE", "RX/S", "TX/S"], &rows));
        }
        for nic in self.nics {
            let queues = match &nic.rx_queues {
                Ok(q) => format!("{} RX queue(s)", q.len()),
                Err(e) => e.clone(),
            };
            let _ = write!(out, "interface {}: {queues}; ", nic.iface);
            match &nic.irqs {
                Irqs::Virtual => out.push_str("no IRQs (virtual device)\n"),
                Irqs::NotFound => {
                    out.push_str("no IRQs of its queues found in /proc/interrupts\n");
                }
                Irqs::Unreadable(e) => {
                    let _ = writeln!(out, "IRQs unknown ({e})");
                }
                Irqs::Found(irqs) => {
                    let _ = writeln!(out, "{} IRQ(s):", irqs.len());
                    let rows: Vec<Vec<String>> = irqs
                        .iter()
                        .map(|i| {
                            vec![
                                i.irq.to_string(),
                                i.affinity.clone().unwrap_or_else(|| "?".to_owned()),
                                i.name.clone(),
                            ]
                        })
                        .collect();
                    out.push_str(&table(&["IRQ", "CPUS", "NAME"], &rows));
                }
            }
        }
        out
    }

    fn json(&self) -> String {
        let rate = |r: Option<f64>| r.map_or_else(|| "null".to_owned(), |r| format!("{r:.1}"));
        let workers: Vec<String> = self
            .workers
            .iter()
            .zip(self.rates.iter().chain(std::iter::repeat(&None)))
            .map(|(w, r)| {
                format!(
                    "{},\"rx_pps\":{},\"tx_pps\":{}}}",
                    worker_json(w),
                    rate(r.map(|r| r.rx)),
                    rate(r.map(|r| r.tx))
                )
            })
            .collect();
        let nics: Vec<String> = self
            .nics
            .iter()
            .map(|nic| {
                let (queues, queues_error) = match &nic.rx_queues {
                    Ok(q) => {
                        let q: Vec<String> = q.iter().map(u32::to_string).collect();
                        (format!("[{}]", q.join(",")), "null".to_owned())
                    }
                    Err(e) => ("null".to_owned(), json_str(e)),
                };
                let (state, irqs) = match &nic.irqs {
                    Irqs::Virtual => ("\"virtual\"".to_owned(), String::new()),
                    Irqs::NotFound => ("\"not_found\"".to_owned(), String::new()),
                    Irqs::Unreadable(e) => (json_str(e), String::new()),
                    Irqs::Found(irqs) => {
                        let list: Vec<String> = irqs
                            .iter()
                            .map(|i| {
                                format!(
                                    "{{\"irq\":{},\"name\":{},\"affinity\":{}}}",
                                    i.irq,
                                    json_str(&i.name),
                                    i.affinity
                                        .as_deref()
                                        .map_or_else(|| "null".to_owned(), json_str)
                                )
                            })
                            .collect();
                        ("\"found\"".to_owned(), list.join(","))
                    }
                };
                format!(
                    "{{\"name\":{},\"rx_queues\":{queues},\"rx_queues_error\":{queues_error},\
                     \"irq_status\":{state},\"irqs\":[{irqs}]}}",
                    json_str(&nic.iface)
                )
            })
            .collect();
        format!(
            "{{\"datapath\":{},\"rate_interval_s\":{},\"workers\":[{}],\"interfaces\":[{}]}}\n",
            json_str(self.datapath),
            self.interval
                .map_or_else(|| "null".to_owned(), |d| format!("{:.3}", d.as_secs_f64())),
            workers.join(","),
            nics.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::*;

    /// A unique, short temporary directory (unix socket paths are limited to 107 bytes).
    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tctl-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[derive(Debug, Default)]
    struct FakeTarget {
        workers: Vec<WorkerView>,
        pinned: Vec<usize>,
    }

    impl ControlTarget for FakeTarget {
        fn status(&self) -> StatusReport {
            StatusReport {
                datapath: "xdp".into(),
                attach_mode: Some("generic".into()),
                interfaces: vec!["lo".into()],
                shards: 2,
                bindings: 5,
                capacity: 100,
                workers: self.workers.clone(),
                xdp: vec![("xdp_seen".into(), 7)],
                engine: engine_counters(&Counters::default()),
                socket: Vec::new(),
            }
        }

        fn workers(&self) -> Vec<WorkerView> {
            self.workers.clone()
        }

        fn set_cores(&mut self, cores: &[usize]) -> Result<Vec<(u32, usize)>, String> {
            self.pinned = cores.to_vec();
            Ok(self
                .workers
                .iter()
                .zip(cores.iter().cycle())
                .map(|(w, &c)| (w.queue, c))
                .collect())
        }
    }

    fn worker(queue: u32, rx: u64, tx: u64) -> WorkerView {
        WorkerView {
            iface: "veth0".into(),
            queue,
            core: Some(usize::try_from(queue).unwrap()),
            rx,
            tx,
            dropped: 1,
            replies: tx,
        }
    }

    /// Runs `serve_pending` on this thread while `f` acts as client on another, until `f`
    /// returns (or panics: the panic is passed on).
    fn with_server<R: Send>(
        server: &mut ControlServer,
        target: &mut FakeTarget,
        f: impl FnOnce() -> R + Send,
    ) -> R {
        std::thread::scope(|s| {
            let client = s.spawn(f);
            while !client.is_finished() {
                server.serve_pending(target);
                std::thread::sleep(Duration::from_millis(2));
            }
            client.join().unwrap()
        })
    }

    #[test]
    fn control_status_round_trip_text_and_json() {
        let dir = temp_dir("rt");
        let mut server = ControlServer::bind(&dir).unwrap();
        let mode = fs::metadata(socket_path(&dir))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut target = FakeTarget {
            workers: vec![worker(0, 10, 9), worker(1, 20, 18)],
            ..FakeTarget::default()
        };
        let (text, json) = with_server(&mut server, &mut target, || {
            let t = Duration::from_secs(5);
            (
                request(&dir, "status", t).unwrap(),
                request(&dir, "status --json", t).unwrap(),
            )
        });
        assert!(text.starts_with("datapath: xdp (generic mode)\n"), "{text}");
        assert!(
            text.contains("leases: 5 binding(s) in 2 shard(s)"),
            "{text}"
        );
        assert!(text.contains("  veth0  1      1     20  18  1"), "{text}");
        assert!(text.contains("xdp: xdp_seen=7\n"), "{text}");
        assert!(text.contains("engine: rx_solicit=0 "), "{text}");
        assert!(!text.contains("socket:"), "{text}");
        assert!(
            json.starts_with(
                "{\"datapath\":\"xdp\",\"attach_mode\":\"generic\",\"interfaces\":[\"lo\"],\
                 \"shards\":2,\"bindings\":5,\"capacity\":100,\"workers\":[{\"iface\":\"veth0\",\
                 \"queue\":0,\"core\":0,\"rx\":10,\"tx\":9,\"dropped\":1,\"replies\":9},"
            ),
            "{json}"
        );
        assert!(json.contains("\"xdp\":{\"xdp_seen\":7},\"engine\":{\"rx_solicit\":0,"));
        assert!(json.ends_with("\"socket\":{}}\n"), "{json}");
        assert_eq!(json.lines().count(), 1);
        drop(server);
        assert!(!socket_path(&dir).exists(), "socket file left behind");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn control_concurrent_clients_all_answered() {
        let dir = temp_dir("cc");
        let mut server = ControlServer::bind(&dir).unwrap();
        let mut target = FakeTarget::default();
        let answers = with_server(&mut server, &mut target, || {
            let barrier = Arc::new(Barrier::new(6));
            let clients: Vec<_> = (0..6)
                .map(|i| {
                    let dir = dir.clone();
                    let barrier = Arc::clone(&barrier);
                    std::thread::spawn(move || {
                        barrier.wait();
                        let line = if i % 2 == 0 {
                            "status"
                        } else {
                            "status --json"
                        };
                        request(&dir, line, Duration::from_secs(5)).unwrap()
                    })
                })
                .collect();
            clients
                .into_iter()
                .map(|c| c.join().unwrap())
                .collect::<Vec<_>>()
        });
        for (i, a) in answers.iter().enumerate() {
            let want = if i % 2 == 0 {
                "datapath: xdp"
            } else {
                "{\"datapath\":\"xdp\""
            };
            assert!(a.starts_with(want), "client {i}: {a}");
        }
        drop(server);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn control_malformed_request_answered_with_error_line() {
        let dir = temp_dir("bad");
        let mut server = ControlServer::bind(&dir).unwrap();
        let mut target = FakeTarget::default();
        let answers = with_server(&mut server, &mut target, || {
            let t = Duration::from_secs(5);
            [
                request(&dir, "reboot", t).unwrap(),
                request(&dir, "tune cores 3-1", t).unwrap(),
                request(&dir, "status --json extra", t).unwrap(),
                request(&dir, &"x".repeat(1000), t).unwrap(),
            ]
        });
        assert!(
            answers[0].starts_with("error: unknown request \"reboot\""),
            "{}",
            answers[0]
        );
        assert!(answers[1].contains("runs backwards"), "{}", answers[1]);
        assert!(
            answers[2].starts_with("error: unknown request"),
            "{}",
            answers[2]
        );
        assert!(
            answers[3].starts_with("error: request longer than 256 bytes"),
            "{}",
            answers[3]
        );
        for a in &answers {
            assert_eq!(a.lines().count(), 1, "{a}");
        }
        drop(server);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn control_silent_client_timed_out_without_blocking() {
        let dir = temp_dir("slow");
        let mut server = ControlServer::bind(&dir).unwrap();
        let mut target = FakeTarget::default();
        let mut silent = UnixStream::connect(socket_path(&dir)).unwrap();
        let started = Instant::now();
        server.serve_pending(&mut target);
        let took = started.elapsed();
        assert!(took < CLIENT_READ_TIMEOUT * 5, "{took:?}");
        let mut answer = String::new();
        silent.read_to_string(&mut answer).unwrap();
        assert_eq!(answer, "error: no request line within 100 ms\n");
        // Nobody waiting: returns at once.
        let started = Instant::now();
        server.serve_pending(&mut target);
        assert!(started.elapsed() < CLIENT_READ_TIMEOUT);
        drop(server);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn control_stale_socket_replaced_live_one_refused() {
        let dir = temp_dir("stale");
        // A socket file nobody listens on, as a killed server leaves it.
        drop(UnixListener::bind(socket_path(&dir)).unwrap());
        assert!(socket_path(&dir).exists());
        let server = ControlServer::bind(&dir).unwrap();
        let err = ControlServer::bind(&dir).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(
            err.to_string().contains("another Tandem server is running"),
            "{err}"
        );
        drop(server);
        fs::write(socket_path(&dir), b"not a socket").unwrap();
        let err = ControlServer::bind(&dir).unwrap_err();
        assert!(err.to_string().contains("is not a socket"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn control_request_without_server_explains() {
        let dir = temp_dir("none");
        let err = request(&dir, "status", Duration::from_secs(1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no Tandem server is running with state dir {} (no control socket at {})",
                dir.display(),
                socket_path(&dir).display()
            )
        );
        drop(UnixListener::bind(socket_path(&dir)).unwrap());
        let err = request(&dir, "status", Duration::from_secs(1)).unwrap_err();
        assert!(err.to_string().contains("nothing answers"), "{err}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn control_tune_cores_pins_and_checks_allowed() {
        let dir = temp_dir("cores");
        let mut server = ControlServer::bind(&dir).unwrap();
        let mut target = FakeTarget {
            workers: vec![worker(0, 0, 0), worker(1, 0, 0)],
            ..FakeTarget::default()
        };
        let allowed = allowed_cores();
        let first = allowed[0];
        let (ok, refused) = with_server(&mut server, &mut target, || {
            let t = Duration::from_secs(5);
            (
                request(&dir, &format!("tune cores {first}"), t).unwrap(),
                request(&dir, "tune cores 1023", t).unwrap(),
            )
        });
        assert_eq!(target.pinned, vec![first]);
        assert!(ok.starts_with("2 worker(s) moving to cores"), "{ok}");
        assert!(ok.contains(&format!("  queue 1 -> core {first}\n")), "{ok}");
        assert!(
            refused.starts_with("error: core 1023 is not one this process may run on"),
            "{refused}"
        );
        drop(server);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn control_tune_show_lists_workers_and_interfaces() {
        let dir = temp_dir("show");
        let mut server = ControlServer::bind(&dir).unwrap();
        let mut target = FakeTarget {
            workers: vec![worker(0, 0, 0)],
            ..FakeTarget::default()
        };
        let (text, json) = with_server(&mut server, &mut target, || {
            let t = Duration::from_secs(5);
            (
                request(&dir, "tune show", t).unwrap(),
                request(&dir, "tune show --json", t).unwrap(),
            )
        });
        assert!(text.starts_with("workers (xdp datapath; "), "{text}");
        assert!(text.contains("IFACE  QUEUE  CORE  RX/S  TX/S"), "{text}");
        assert!(text.contains("interface lo: "), "{text}");
        assert!(text.contains("no IRQs (virtual device)"), "{text}");
        assert!(
            json.starts_with("{\"datapath\":\"xdp\",\"rate_interval_s\":"),
            "{json}"
        );
        assert!(
            json.contains("\"interfaces\":[{\"name\":\"lo\",\"rx_queues\":[0],"),
            "{json}"
        );
        assert!(
            json.contains("\"irq_status\":\"virtual\",\"irqs\":[]"),
            "{json}"
        );
        drop(server);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rates_computed_from_second_old_snapshot() {
        let t0 = Instant::now();
        let mut sampler = RateSampler::default();
        sampler.tick(t0, || vec![worker(0, 100, 50)]);
        // Too soon for a rate.
        let (interval, rates) = sampler.rates(t0, &[worker(0, 150, 60)]);
        assert_eq!((interval, rates), (None, vec![None]));
        // Not due: no new snapshot.
        sampler.tick(t0 + Duration::from_millis(500), || {
            panic!("sampled too early")
        });
        let t1 = t0 + Duration::from_secs(1);
        sampler.tick(t1, || vec![worker(0, 1100, 550)]);
        let now = t0 + Duration::from_millis(1500);
        let (interval, rates) = sampler.rates(now, &[worker(0, 1600, 800), worker(9, 5, 5)]);
        // The snapshot at t1 is only 0.5 s old: measured from t0.
        assert_eq!(interval, Some(Duration::from_millis(1500)));
        assert_eq!(
            rates[0],
            Some(Rates {
                rx: 1000.0,
                tx: 500.0
            })
        );
        assert_eq!(
            rates[1], None,
            "a worker absent from the snapshot has no rate"
        );
        let later = t1 + Duration::from_secs(2);
        let (interval, rates) = sampler.rates(later, &[worker(0, 3100, 550)]);
        assert_eq!(interval, Some(Duration::from_secs(2)));
        assert_eq!(
            rates[0],
            Some(Rates {
                rx: 1000.0,
                tx: 0.0
            })
        );
    }

    #[test]
    fn request_lines_parsed() {
        assert_eq!(
            parse_request("status\n"),
            Ok(Request::Status { json: false })
        );
        assert_eq!(
            parse_request(" tune  show --json"),
            Ok(Request::TuneShow { json: true })
        );
        assert_eq!(
            parse_request("tune cores 0-1,3"),
            Ok(Request::TuneCores(vec![0, 1, 3]))
        );
        assert!(parse_request("").is_err());
        assert!(parse_request("tune cores").is_err());
        assert!(parse_request("tune cores 1 2").is_err());
    }

    #[test]
    fn socket_mode_target_reports_counters_and_refuses_pinning() {
        let interfaces = vec!["eth0".to_owned()];
        let engine = Counters::default();
        let socket = SocketCounters {
            unknown_interface: 4,
            no_pktinfo: 0,
            truncated: 1,
        };
        let mut target = SocketModeTarget {
            interfaces: &interfaces,
            engine: &engine,
            socket: &socket,
            shards: 1,
            bindings: 3,
            capacity: 10,
        };
        let status = target.status();
        assert_eq!(status.datapath, "socket");
        assert_eq!(status.attach_mode, None);
        assert!(status.workers.is_empty());
        assert_eq!(status.socket[0], ("drop_unknown_interface".to_owned(), 4));
        assert_eq!(status.engine.last(), Some(&("store_errors".to_owned(), 0)));
        let text = status_text(&status);
        assert!(
            text.starts_with("datapath: socket\ninterfaces: eth0\n"),
            "{text}"
        );
        assert!(text.contains("workers: none\n"), "{text}");
        assert!(
            text.contains("socket: drop_unknown_interface=4 drop_no_pktinfo=0 drop_truncated=1\n")
        );
        let err = target.set_cores(&[0]).unwrap_err();
        assert!(
            err.contains("socket datapath has no workers to pin"),
            "{err}"
        );
    }

    #[test]
    fn json_strings_escaped() {
        assert_eq!(json_str("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\u0001\"");
    }
}
