//! The server side of the control socket (see the [module docs](super)).

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd as _, RawFd};
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::annotate;
use super::commands::{ControlTarget, execute};
use super::protocol::socket_path;
use super::rates::RateSampler;

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
                execute(&line, target, &self.rates)
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
