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

/// The file in a state directory that holds the kernel's boot id of the last start
/// (`docs/failover.md` D56).
pub fn boot_id_path(dir: &Path) -> PathBuf {
    dir.join("boot-id")
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`, a new random UUID at every boot), or
/// `None` if it cannot be read.
pub fn current_boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The boot id recorded in `dir` by [`store_boot_id`], if any.
pub fn load_boot_id(dir: &Path) -> Option<String> {
    fs::read_to_string(boot_id_path(dir))
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// Records `id` in `dir`, durably.
///
/// # Errors
/// Any step of the replacement failing.
pub fn store_boot_id(dir: &Path, id: &str) -> io::Result<()> {
    replace_durably(&boot_id_path(dir), format!("{id}\n").as_bytes())
}

/// D56: the lease stores may have lost their latest changes — some store was not closed
/// cleanly (`stores_unclean`) and the machine has restarted since the last start (`recorded`
/// is not `current`, or either is unknown). A process crash leaves the page cache, and with it
/// every committed binding, intact: same boot, nothing lost.
pub fn stores_may_be_set_back(
    stores_unclean: bool,
    current: Option<&str>,
    recorded: Option<&str>,
) -> bool {
    stores_unclean && (current.is_none() || current != recorded)
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
        assert_eq!(load_boot_id(&dir), None);
        store_boot_id(&dir, "b1").unwrap();
        assert_eq!(load_boot_id(&dir).as_deref(), Some("b1"));
        fs::write(&p, b"garbage").unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("not a failover state record"), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stores_are_taken_as_set_back_only_after_an_unclean_stop_and_a_reboot_d56() {
        // A process crash (same boot): the page cache kept everything.
        assert!(!stores_may_be_set_back(true, Some("a"), Some("a")));
        // A power loss: the machine restarted.
        assert!(stores_may_be_set_back(true, Some("b"), Some("a")));
        // Unknown: assume the worst.
        assert!(stores_may_be_set_back(true, None, Some("a")));
        assert!(stores_may_be_set_back(true, Some("a"), None));
        // A clean close loses nothing, whatever happened since.
        assert!(!stores_may_be_set_back(false, Some("b"), Some("a")));
        assert!(current_boot_id().is_some_and(|id| id.len() >= 32));
    }
}
