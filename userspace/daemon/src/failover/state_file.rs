//! `<state-dir>/failover-<name>.state`: the durable record of one relationship's endpoint
//! ([`Persisted::to_bytes`], 31 octets), replaced atomically and durably (temporary file,
//! fsync, rename, fsync of the directory) before the endpoint is told it is durable.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tandem_datapath::sys::tcp::replace_durably;
use tandem_failover::Persisted;

/// The state file of relationship `name` in `dir`. Characters other than ASCII letters,
/// digits, `.`, `_` and `-` are written `%XX` (UTF-8 octets), so any name gives one file name.
pub fn path(dir: &Path, name: &str) -> PathBuf {
    let mut file = String::from("failover-");
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            file.push(char::from(b));
        } else {
            file.push_str(&format!("%{b:02X}"));
        }
    }
    file.push_str(".state");
    dir.join(file)
}

/// The record in `path`: `None` if there is no file (a first start).
///
/// # Errors
/// The file cannot be read, or does not hold a record (refused: an operator must look, since
/// starting as if for the first time could announce a state the partner must not believe).
pub fn load(path: &Path) -> anyhow::Result<Option<Persisted>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Persisted::from_bytes(&bytes).map(Some).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a failover state record ({e}); move it away only if this server's \
             partner knows it restarts with no memory (RFC 8156 §8.3.2)",
            path.display()
        )
    })
}

/// Writes `record` durably to `path`.
///
/// # Errors
/// Any step of the replacement failing.
pub fn store(path: &Path, record: &Persisted) -> io::Result<()> {
    replace_durably(path, &record.to_bytes())
}

#[cfg(test)]
mod tests {
    use tandem_failover::{FailoverTime, StateName};

    use super::*;

    #[test]
    fn state_file_name_escapes_and_record_round_trips() {
        let dir = std::env::temp_dir().join(format!("tandem-fo-state-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        assert_eq!(
            path(&dir, "dc1/dc 2"),
            dir.join("failover-dc1%2Fdc%202.state")
        );
        let p = path(&dir, "dc1-dc2");
        assert!(load(&p).unwrap().is_none());
        let record = Persisted {
            state: StateName::Normal,
            state_since: FailoverTime(1000),
            previous: Some(StateName::RecoverDone),
            partner: None,
            last_contact: Some(FailoverTime(999)),
            communicated: true,
            resync_all: false,
            mclt: 3600,
            operating_until: FailoverTime(1060),
        };
        store(&p, &record).unwrap();
        assert_eq!(load(&p).unwrap(), Some(record));
        fs::write(&p, b"garbage").unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("not a failover state record"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }
}
