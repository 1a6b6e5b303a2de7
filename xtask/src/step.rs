//! Running commands as named, timed steps with `==> step` headers.

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// Prints a step header (`==> name: what`), flushed so it lands before the child's output.
pub(crate) fn header(name: &str, what: &str) {
    println!("==> {name}: {what}");
    let _ = std::io::stdout().flush();
}

/// Prints a step's closing line with its duration.
pub(crate) fn footer(name: &str, outcome: &str, elapsed: Duration) {
    println!("<== {name}: {outcome} in {}", seconds(elapsed));
    let _ = std::io::stdout().flush();
}

/// `12.3 s`.
pub(crate) fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

/// A shell-like rendering of a command, for headers and error messages.
pub(crate) fn render(cmd: &Command) -> String {
    let mut out = String::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            out.push_str(&format!("{}={} ", key.to_string_lossy(), shell_word(value)));
        }
    }
    let program = cmd.get_program();
    // `$CARGO` is an absolute path under `cargo run`; show it as plain `cargo`.
    let program_name = std::path::Path::new(program)
        .file_name()
        .filter(|name| *name == OsStr::new("cargo"))
        .unwrap_or(program);
    out.push_str(&program_name.to_string_lossy());
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&arg.to_string_lossy());
    }
    out
}

/// `value` as one shell word: quoted when it has spaces or quotes; the `\x1f` separators of
/// `CARGO_ENCODED_RUSTFLAGS` shown as spaces.
fn shell_word(value: &OsStr) -> String {
    let text = value.to_string_lossy().replace('\x1f', " ");
    if text.is_empty() || text.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'') {
        format!("'{}'", text.replace('\'', r"'\''"))
    } else {
        text
    }
}

/// Runs `cmd` with inherited stdout/stderr and no stdin; errors if it cannot start or exits
/// unsuccessfully.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let shown = render(cmd);
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("cannot start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Like [`run`], but also returns what the command wrote on stdout, which is still passed
/// through line by line as it arrives.
pub(crate) fn run_tee(cmd: &mut Command) -> Result<String> {
    let shown = render(cmd);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{shown}`"))?;
    let mut captured = String::new();
    if let Some(pipe) = child.stdout.take() {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        let stdout = std::io::stdout();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let mut out = stdout.lock();
                    let _ = out.write_all(&line);
                    let _ = out.flush();
                    captured.push_str(&String::from_utf8_lossy(&line));
                }
            }
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("cannot wait for `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(captured)
}

/// Runs `cmd` and returns its stdout, or `None` if it cannot start or fails.
pub(crate) fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Times `f`.
pub(crate) fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_with_env_and_args_reads_like_a_shell_line() {
        let mut cmd = Command::new("/usr/local/bin/cargo");
        cmd.args(["test", "--workspace"])
            .env("TANDEM_HWTEST_STRICT", "1");
        assert_eq!(
            render(&cmd),
            "TANDEM_HWTEST_STRICT=1 cargo test --workspace"
        );
    }

    #[test]
    fn render_env_with_separators_is_quoted() {
        let mut cmd = Command::new("cargo");
        cmd.env("FLAGS", "--cfg=a=\"b\"\x1f-Cx").env("EMPTY", "");
        let shown = render(&cmd);
        assert!(shown.contains(r#"FLAGS='--cfg=a="b" -Cx'"#), "{shown}");
        assert!(shown.contains("EMPTY='' "), "{shown}");
    }

    #[test]
    fn render_other_program_keeps_its_path() {
        let cmd = Command::new("/sbin/ip");
        assert_eq!(render(&cmd), "/sbin/ip");
    }

    #[test]
    fn run_failing_command_reports_its_status() {
        let err = run(&mut Command::new("false")).unwrap_err();
        assert!(err.to_string().contains("`false` failed"), "{err}");
    }

    #[test]
    fn run_missing_program_says_it_cannot_start() {
        let err = run(&mut Command::new("/nonexistent/xtask-no-such-program")).unwrap_err();
        assert!(err.to_string().starts_with("cannot start"), "{err}");
    }

    #[test]
    fn run_tee_returns_stdout_and_fails_on_error() {
        let out = run_tee(Command::new("printf").arg("a\\nb")).unwrap();
        assert_eq!(out, "a\nb");
        assert!(run_tee(Command::new("sh").args(["-c", "echo x; exit 3"])).is_err());
    }

    #[test]
    fn output_of_successful_command_is_its_stdout() {
        assert_eq!(
            output(Command::new("echo").arg("hi")).as_deref(),
            Some("hi\n")
        );
        assert_eq!(output(&mut Command::new("false")), None);
    }

    #[test]
    fn seconds_rounds_to_one_decimal() {
        assert_eq!(seconds(Duration::from_millis(12_345)), "12.3 s");
    }
}
