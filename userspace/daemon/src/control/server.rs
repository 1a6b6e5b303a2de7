//! The server side of the control socket (see the [module docs](super)), a service of the
//! main thread's [`EventLoop`]: the listener and every connection are non-blocking sources of
//! that loop, each connection has a deadline timer, and the rates of `tune show` come from a
//! counter snapshot taken by a once-a-second timer. Nothing here ever blocks the loop: a
//! client that sends nothing is answered `error: no request line within 100 ms` when its
//! deadline passes, while other clients are served.
//!
//! The owner of the loop gives the server a place in its key type (`K: From<ControlKey>`),
//! calls [`ControlServer::register`] once, and hands every [`Wake`] of a [`ControlKey`] to
//! [`ControlServer::handle`] together with its [`ControlTarget`].

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs;
use std::hash::Hash;
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mio::net::UnixStream as MioStream;

use super::annotate;
use super::commands::{ControlTarget, execute};
use super::protocol::socket_path;
use super::rates::{RATE_INTERVAL, RateSampler};
use crate::event_loop::{EventLoop, Interest, Token, Wake};

/// Longest a client may take to send its request line (from its connection being accepted).
pub const CLIENT_READ_TIMEOUT: Duration = Duration::from_millis(100);
/// Longest the server waits to hand an answer to a client that does not read it.
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_millis(500);
/// Longest request line accepted.
const MAX_REQUEST: usize = 256;
/// Most bytes read from a client whose request line is too long.
const MAX_DRAIN: usize = 64 * 1024;
/// Connections served at once; further clients wait in the listen backlog until one is done.
const MAX_CONNECTIONS: usize = 32;
/// How long to wait before accepting again after `accept` failed (e.g. out of descriptors).
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// The control server's sources and timers, as keys of the owner's event loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlKey {
    /// The listening socket; as a timer, the retry of a failed `accept`.
    Listener,
    /// Connection `n` (numbers are never reused): its socket and its deadline.
    Conn(u64),
    /// The once-a-second counter snapshot for the packet rates of `tune show`.
    Rates,
}

/// Where a connection is.
#[derive(Debug)]
enum Phase {
    /// Reading the request line: what is kept of it, and the bytes read in all.
    Reading { line: Vec<u8>, total: usize },
    /// Writing the answer; `at` bytes of it are written.
    Writing { answer: Vec<u8>, at: usize },
}

/// One client connection.
#[derive(Debug)]
struct Conn {
    stream: MioStream,
    token: Token,
    phase: Phase,
}

/// What to do with a connection after it made progress.
enum Next {
    /// Wait for the next readiness or its deadline.
    Wait,
    /// Done (answered, or the client is gone): close it.
    Close,
}

/// The server side of the control socket (see the module docs). The socket file is removed
/// when this is dropped; open connections are closed unanswered.
#[derive(Debug)]
pub struct ControlServer {
    listener: mio::net::UnixListener,
    /// Set once registered with an event loop.
    listener_token: Option<Token>,
    path: PathBuf,
    /// `(st_dev, st_ino)` of the socket file we created, so that drop removes only ours.
    id: (u64, u64),
    rates: RateSampler,
    conns: BTreeMap<u64, Conn>,
    next_conn: u64,
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
            listener: mio::net::UnixListener::from_std(listener),
            listener_token: None,
            path,
            id: (meta.dev(), meta.ino()),
            rates: RateSampler::default(),
            conns: BTreeMap::new(),
            next_conn: 0,
        })
    }

    /// The socket file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The number of client connections being served.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Registers the listener with `ev` and starts the rate snapshots.
    ///
    /// # Errors
    /// If the listener cannot be registered.
    pub fn register<K>(&mut self, ev: &mut EventLoop<K>) -> io::Result<()>
    where
        K: From<ControlKey> + Copy + Eq + Hash + Debug,
    {
        let token = ev.register(
            &mut self.listener,
            Interest::READABLE,
            ControlKey::Listener.into(),
        )?;
        self.listener_token = Some(token);
        ev.set_timer(ControlKey::Rates.into(), Instant::now());
        Ok(())
    }

    /// Handles one wake-up of a [`ControlKey`] source or timer: accepts clients, reads their
    /// request lines, answers them from `target`, enforces their deadlines, samples rates.
    pub fn handle<K>(
        &mut self,
        wake: Wake<ControlKey>,
        ev: &mut EventLoop<K>,
        target: &mut dyn ControlTarget,
    ) where
        K: From<ControlKey> + Copy + Eq + Hash + Debug,
    {
        match wake {
            Wake::Ready {
                key: ControlKey::Listener,
                ..
            }
            | Wake::Timer(ControlKey::Listener) => self.accept(ev),
            Wake::Ready {
                key: ControlKey::Conn(id),
                ..
            } => self.progress(id, false, ev, target),
            Wake::Timer(ControlKey::Conn(id)) => self.progress(id, true, ev, target),
            Wake::Timer(ControlKey::Rates) => {
                let now = Instant::now();
                self.rates.tick(now, || target.workers());
                ev.set_timer(ControlKey::Rates.into(), now + RATE_INTERVAL);
            }
            Wake::Ready {
                key: ControlKey::Rates,
                ..
            } => {}
        }
    }

    /// Accepts waiting clients, up to [`MAX_CONNECTIONS`] at once.
    fn accept<K>(&mut self, ev: &mut EventLoop<K>)
    where
        K: From<ControlKey> + Copy + Eq + Hash + Debug,
    {
        while self.conns.len() < MAX_CONNECTIONS {
            let mut stream = match self.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    tracing::warn!("control socket {}: accept: {e}", self.path.display());
                    ev.set_timer(ControlKey::Listener.into(), Instant::now() + ACCEPT_RETRY);
                    return;
                }
            };
            let id = self.next_conn;
            self.next_conn += 1;
            let key = ControlKey::Conn(id);
            let token = match ev.register(
                &mut stream,
                Interest::READABLE | Interest::WRITABLE,
                key.into(),
            ) {
                Ok(token) => token,
                Err(e) => {
                    tracing::warn!("control socket: registering a connection: {e}");
                    continue;
                }
            };
            ev.set_timer(key.into(), Instant::now() + CLIENT_READ_TIMEOUT);
            self.conns.insert(
                id,
                Conn {
                    stream,
                    token,
                    phase: Phase::Reading {
                        line: Vec::with_capacity(64),
                        total: 0,
                    },
                },
            );
        }
    }

    /// Moves connection `id` on: reads its request, answers it, writes the answer; `expired`
    /// when its deadline has passed.
    fn progress<K>(
        &mut self,
        id: u64,
        expired: bool,
        ev: &mut EventLoop<K>,
        target: &mut dyn ControlTarget,
    ) where
        K: From<ControlKey> + Copy + Eq + Hash + Debug,
    {
        let Some(conn) = self.conns.get_mut(&id) else {
            // Closed already (a readiness or a deadline from the same turn).
            return;
        };
        if let Phase::Reading { line, total } = &mut conn.phase {
            let answer = if expired {
                Some(format!(
                    "error: no request line within {} ms\n",
                    CLIENT_READ_TIMEOUT.as_millis()
                ))
            } else {
                read_request(&mut conn.stream, line, total).map(|request| match request {
                    Ok(line) => {
                        tracing::debug!("control request {line:?}");
                        execute(&line, target, &self.rates)
                    }
                    Err(e) => format!("error: {e}\n"),
                })
            };
            let Some(answer) = answer else {
                return;
            };
            conn.phase = Phase::Writing {
                answer: answer.into_bytes(),
                at: 0,
            };
            ev.set_timer(
                ControlKey::Conn(id).into(),
                Instant::now() + CLIENT_WRITE_TIMEOUT,
            );
        } else if expired {
            tracing::debug!("control socket: writing the answer: timed out");
            self.close(id, ev);
            return;
        }
        if let Next::Close = write_answer(conn) {
            self.close(id, ev);
        }
    }

    /// Closes connection `id` and accepts clients that waited for room.
    fn close<K>(&mut self, id: u64, ev: &mut EventLoop<K>)
    where
        K: From<ControlKey> + Copy + Eq + Hash + Debug,
    {
        let Some(mut conn) = self.conns.remove(&id) else {
            return;
        };
        ev.cancel_timer(ControlKey::Conn(id).into());
        if let Err(e) = ev.deregister(&mut conn.stream, conn.token) {
            tracing::debug!("control socket: deregistering a connection: {e}");
        }
        drop(conn);
        if self.conns.len() + 1 == MAX_CONNECTIONS {
            self.accept(ev);
        }
    }
}

/// Reads what the client has sent of its request line (up to the first newline or the end of
/// the stream): `None` while the line is incomplete; the line, or why it is refused. An
/// overlong line is read to its end (up to [`MAX_DRAIN`] bytes) so that the client gets the
/// error answer rather than a connection reset.
fn read_request(
    stream: &mut MioStream,
    line: &mut Vec<u8>,
    total: &mut usize,
) -> Option<Result<String, String>> {
    let mut chunk = [0u8; 1024];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) => return Some(Err(format!("reading the request: {e}"))),
        };
        let data = chunk.get(..n).unwrap_or_default();
        *total = total.saturating_add(n);
        let end = data.iter().position(|&b| b == b'\n');
        if line.len() <= MAX_REQUEST {
            line.extend_from_slice(data.get(..end.unwrap_or(n)).unwrap_or_default());
        }
        if end.is_some() || *total > MAX_DRAIN {
            break;
        }
    }
    if line.len() > MAX_REQUEST {
        return Some(Err(format!("request longer than {MAX_REQUEST} bytes")));
    }
    Some(String::from_utf8(std::mem::take(line)).map_err(|_| "the request is not UTF-8".to_owned()))
}

/// Writes what the socket takes of the answer: [`Next::Close`] once all of it is written (or
/// the client is gone).
fn write_answer(conn: &mut Conn) -> Next {
    let Phase::Writing { answer, at } = &mut conn.phase else {
        return Next::Wait;
    };
    while let Some(rest) = answer.get(*at..).filter(|r| !r.is_empty()) {
        match conn.stream.write(rest) {
            Ok(0) => return Next::Close,
            Ok(n) => *at += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
            Err(e) => {
                tracing::debug!("control socket: writing the answer: {e}");
                return Next::Close;
            }
        }
    }
    Next::Close
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use tandem_datapath::sys::cpu::allowed_cores;
    use tandem_proto::Counters;

    use super::*;
    use crate::control::report::{StatusReport, WorkerView};
    use crate::control::request;
    use crate::counters::engine_counters;

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
                failover: Vec::new(),
            }
        }

        fn workers(&self) -> Vec<WorkerView> {
            self.workers.clone()
        }

        fn partner_down(&mut self, name: Option<&str>) -> Result<String, String> {
            crate::control::partner_down(None, name)
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

    /// The test loop's keys: the server's, and a tick that lets the loop check on the client.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    enum Key {
        Control(ControlKey),
        Tick,
    }

    impl From<ControlKey> for Key {
        fn from(k: ControlKey) -> Self {
            Self::Control(k)
        }
    }

    /// An event loop serving `server`, as a run loop embeds it.
    fn event_loop(server: &mut ControlServer) -> EventLoop<Key> {
        let mut ev = EventLoop::new().unwrap();
        server.register(&mut ev).unwrap();
        ev
    }

    /// One turn of `ev` (at most 2 ms), every control wake handed to `server`.
    fn turn(ev: &mut EventLoop<Key>, server: &mut ControlServer, target: &mut FakeTarget) {
        let mut wakes = Vec::new();
        ev.set_timer(Key::Tick, Instant::now() + Duration::from_millis(2));
        ev.turn(&mut wakes).unwrap();
        for wake in wakes {
            match wake {
                Wake::Ready {
                    key: Key::Control(k),
                    readiness,
                } => server.handle(Wake::Ready { key: k, readiness }, ev, target),
                Wake::Timer(Key::Control(k)) => server.handle(Wake::Timer(k), ev, target),
                _ => {}
            }
        }
    }

    /// Runs the server's event loop on this thread while `f` acts as client on another, until
    /// `f` returns (or panics: the panic is passed on).
    fn with_server<R: Send>(
        server: &mut ControlServer,
        target: &mut FakeTarget,
        f: impl FnOnce() -> R + Send,
    ) -> R {
        let mut ev = event_loop(server);
        std::thread::scope(|s| {
            let client = s.spawn(f);
            while !client.is_finished() {
                turn(&mut ev, server, target);
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
        assert!(json.ends_with("\"socket\":{},\"failover\":[]}\n"), "{json}");
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
        let mut ev = event_loop(&mut server);
        // A client that sends nothing, then one that asks: both wait in the backlog.
        let mut silent = UnixStream::connect(socket_path(&dir)).unwrap();
        silent.set_nonblocking(true).unwrap();
        let mut asking = UnixStream::connect(socket_path(&dir)).unwrap();
        asking.write_all(b"status\n").unwrap();
        asking.shutdown(std::net::Shutdown::Write).unwrap();
        let accepted = Instant::now();
        let mut answer = String::new();
        asking
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        // The asking client is answered while the silent one is still waiting.
        while !answer.ends_with('\n') || answer.is_empty() {
            turn(&mut ev, &mut server, &mut target);
            let _ = asking.read_to_string(&mut answer);
        }
        assert!(answer.starts_with("datapath: xdp"), "{answer}");
        let mut buf = [0u8; 64];
        assert_eq!(
            silent.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "the silent client was answered first"
        );
        assert_eq!(server.connections(), 1);
        // Its deadline passes: answered with the error and closed.
        silent.set_nonblocking(false).unwrap();
        silent
            .set_read_timeout(Some(Duration::from_millis(1)))
            .unwrap();
        let mut silent_answer = String::new();
        while server.connections() > 0 {
            turn(&mut ev, &mut server, &mut target);
        }
        silent.read_to_string(&mut silent_answer).unwrap();
        assert!(accepted.elapsed() >= CLIENT_READ_TIMEOUT);
        assert_eq!(silent_answer, "error: no request line within 100 ms\n");
        drop(server);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn control_clients_beyond_the_limit_wait_and_are_served() {
        let dir = temp_dir("many");
        let mut server = ControlServer::bind(&dir).unwrap();
        let mut target = FakeTarget::default();
        let answers = with_server(&mut server, &mut target, || {
            // More silent clients than the server takes at once, then one that asks.
            let silent: Vec<_> = (0..MAX_CONNECTIONS + 3)
                .map(|_| UnixStream::connect(socket_path(&dir)).unwrap())
                .collect();
            let answer = request(&dir, "status", Duration::from_secs(5)).unwrap();
            (silent.len(), answer)
        });
        assert_eq!(answers.0, MAX_CONNECTIONS + 3);
        assert!(answers.1.starts_with("datapath: xdp"), "{}", answers.1);
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
}
