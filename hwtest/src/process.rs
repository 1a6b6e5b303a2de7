//! Child processes with bounded waits: `ip` invocations and one-shot runs of the program under
//! test. Nothing here may hang a test.

use std::io::{self, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long any `ip` command may take.
const IP_TIMEOUT: Duration = Duration::from_secs(10);

/// What a child printed, and how it ended.
#[derive(Debug)]
pub struct BoundedOutput {
    /// Exit status (after a kill, if it overran its time).
    pub status: ExitStatus,
    /// Everything it wrote to stdout (lossily decoded).
    pub stdout: String,
    /// Everything it wrote to stderr (lossily decoded).
    pub stderr: String,
    /// `true` when it had to be killed because it ran past the timeout.
    pub timed_out: bool,
}

/// Runs `cmd` with stdin closed and both outputs captured, killing it after `timeout`.
pub fn run_bounded(cmd: &mut Command, timeout: Duration) -> io::Result<BoundedOutput> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let (status, timed_out) = match wait_timeout(&mut child, timeout)? {
        Some(status) => (status, false),
        None => {
            // Already exited (between the last poll and now) is the only error here.
            let _ = child.kill();
            (child.wait()?, true)
        }
    };
    Ok(BoundedOutput {
        status,
        stdout: join(stdout),
        stderr: join(stderr),
        timed_out,
    })
}

/// Runs `ip <args>`, returning its stdout; a non-zero exit becomes an error carrying the
/// command line and what `ip` said on stderr.
pub fn ip(args: &[&str]) -> io::Result<String> {
    let out = run_bounded(Command::new("ip").args(args), IP_TIMEOUT).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot run `ip {}`: {e}", args.join(" ")))
    })?;
    if out.status.success() {
        Ok(out.stdout)
    } else {
        Err(io::Error::other(format!(
            "`ip {}` failed ({}{}): {}",
            args.join(" "),
            out.status,
            if out.timed_out { ", timed out" } else { "" },
            out.stderr.trim()
        )))
    }
}

/// Polls `child` until it exits or `timeout` passes (`Ok(None)`).
pub(crate) fn wait_timeout(child: &mut Child, timeout: Duration) -> io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Reads a pipe to its end on a thread of its own (so a full pipe never blocks the child).
pub(crate) fn drain(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            // A read error just ends the capture; whatever was read is kept.
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// The text a [`drain`] thread collected (empty if the thread panicked).
pub(crate) fn join(handle: thread::JoinHandle<String>) -> String {
    handle.join().unwrap_or_default()
}
