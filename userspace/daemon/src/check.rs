//! `tandem check`: load and validate a configuration file, and the shared config loading of
//! `tandem run`.

use std::io::{self, Write};
use std::path::Path;

use tandem_config::Config;

/// One-line summary of a valid configuration:
/// `F: OK (N subnets, M pools, K PD pools, R reservations)`.
pub fn summary(path: &Path, config: &Config) -> String {
    let subnets = config.subnets.len();
    let pools: usize = config.subnets.iter().map(|s| s.pools.len()).sum();
    let pd_pools: usize = config.subnets.iter().map(|s| s.pd_pools.len()).sum();
    let reservations: usize = config.subnets.iter().map(|s| s.reservations.len()).sum();
    format!(
        "{}: OK ({subnets} subnets, {pools} pools, {pd_pools} PD pools, {reservations} reservations)",
        path.display()
    )
}

/// Reads `path` and validates it with [`Config::from_str`] (the configuration crate does no
/// I/O); on failure writes every error to `err`, one per line (`file:line:col: field: message`,
/// or `tandem: error: cannot read F: …` when the file cannot be read) and returns `None`.
///
/// # Errors
/// Only if writing to `err` fails.
pub fn load_or_report(path: &Path, err: &mut dyn Write) -> io::Result<Option<Config>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            writeln!(err, "tandem: error: cannot read {}: {e}", path.display())?;
            return Ok(None);
        }
    };
    match Config::from_str(&text, &path.display().to_string()) {
        Ok(config) => {
            let problems = failover_problems(path, &config);
            if problems.is_empty() {
                Ok(Some(config))
            } else {
                for p in &problems {
                    writeln!(err, "{p}")?;
                }
                Ok(None)
            }
        }
        Err(errors) => {
            for e in &errors.0 {
                writeln!(err, "{e}")?;
            }
            Ok(None)
        }
    }
}

/// What the configuration asks of failover that this server cannot do, and TLS files that do
/// not load: one `file: field: message` line each (the TLS files are read and checked: PEM
/// certificate chain, private key matching it, CA certificates, peer names).
pub fn failover_problems(path: &Path, config: &Config) -> Vec<String> {
    let file = path.display();
    let mut out: Vec<String> = crate::failover::unsupported(config)
        .into_iter()
        .map(|(field, msg)| format!("{file}: {field}: {msg}"))
        .collect();
    for (i, f) in config.failover.iter().enumerate() {
        if let Err(e) = crate::failover::security_of(f) {
            out.push(format!("{file}: failover[{i}].{}: {e}", e.field.key()));
        }
    }
    out
}

/// `tandem check --config F`: the summary on `out` and `true`, or the errors on `err` and
/// `false`.
///
/// # Errors
/// Only if writing to `out`/`err` fails.
pub fn check(path: &Path, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<bool> {
    match load_or_report(path, err)? {
        Some(config) => {
            writeln!(out, "{}", summary(path, &config))?;
            out.flush()?;
            Ok(true)
        }
        None => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn example() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/examples/tandem.toml")
    }

    fn run_check(path: &Path) -> (bool, String, String) {
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let ok = check(path, &mut out, &mut err).unwrap();
        (
            ok,
            String::from_utf8(out).unwrap(),
            String::from_utf8(err).unwrap(),
        )
    }

    #[test]
    fn check_reference_config_prints_summary() {
        let path = example();
        let (ok, out, err) = run_check(&path);
        assert!(ok, "{err}");
        assert_eq!(
            out,
            format!(
                "{}: OK (2 subnets, 3 pools, 1 PD pools, 2 reservations)\n",
                path.display()
            )
        );
        assert_eq!(err, "");
    }

    #[test]
    fn check_invalid_config_prints_every_error() {
        let dir = std::env::temp_dir().join(format!("tandem-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.toml");
        std::fs::write(
            &path,
            "[[subnet]]\nprefix = \"2001:db8::/64\"\npreferred-lifetime = 100\nvalid-lifetime = 50\nbogus = 1\n",
        )
        .unwrap();
        let (ok, out, err) = run_check(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!ok);
        assert_eq!(out, "");
        let lines: Vec<&str> = err.lines().collect();
        assert!(lines.len() >= 2, "{err}");
        let prefix = format!("{}:", path.display());
        for line in &lines {
            assert!(line.starts_with(&prefix), "{line}");
        }
        assert!(err.contains("bogus"), "{err}");
    }

    fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tandem-check-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const SUBNETS: &str = "[[subnet]]\nprefix = \"2001:db8:1::/64\"\n\
                           preferred-lifetime = 100\nvalid-lifetime = 200\n\
                           [[subnet]]\nprefix = \"2001:db8:2::/64\"\n\
                           preferred-lifetime = 100\nvalid-lifetime = 200\n";

    #[test]
    fn check_failover_tls_files_reported_by_field() {
        let dir = scratch("tls");
        let path = dir.join("fo.toml");
        std::fs::write(dir.join("ca.pem"), "not a certificate\n").unwrap();
        std::fs::write(
            &path,
            format!(
                "{SUBNETS}[[failover]]\nname = \"dc\"\nrole = \"primary\"\npeer = \"2001:db8::2\"\n\
                 [failover.tls]\nca = \"{d}/ca.pem\"\ncert = \"{d}/none.pem\"\n\
                 key = \"{d}/none.key\"\npeer-names = [\"dc2.example\"]\n",
                d = dir.display()
            ),
        )
        .unwrap();
        let (ok, out, err) = run_check(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!ok);
        assert_eq!(out, "");
        assert!(
            err.starts_with(&format!(
                "{}: failover[0].tls.ca: {}/ca.pem: holds no PEM certificate",
                path.display(),
                dir.display()
            )),
            "{err}"
        );
    }

    #[test]
    fn check_failover_limited_to_one_relationship_over_every_subnet() {
        let dir = scratch("limits");
        let path = dir.join("fo.toml");
        std::fs::write(
            &path,
            format!(
                "{SUBNETS}[[failover]]\nname = \"a\"\nrole = \"primary\"\npeer = \"2001:db8::2\"\n\
                 insecure = true\nsubnets = [\"2001:db8:1::/64\"]\n"
            ),
        )
        .unwrap();
        let (ok, _, err) = run_check(&path);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!ok);
        assert!(
            err.contains(": failover[0].subnets: covers 1 of the 2 subnets"),
            "{err}"
        );
    }

    #[test]
    fn check_missing_file_reports_path() {
        let path = Path::new("/nonexistent/tandem.toml");
        let (ok, out, err) = run_check(path);
        assert!(!ok);
        assert_eq!(out, "");
        assert!(
            err.starts_with("tandem: error: cannot read /nonexistent/tandem.toml:"),
            "{err}"
        );
    }
}
