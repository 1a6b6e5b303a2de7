//! The client side of the control socket: what `tandem status` and `tandem tune` send.

use std::io::{self, Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::annotate;
use super::protocol::socket_path;

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

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;

    use super::*;

    /// A unique, short temporary directory (unix socket paths are limited to 107 bytes).
    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tctl-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
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
}
