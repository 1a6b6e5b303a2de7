//! The server's DUID (RFC 8415 §11), generated once and kept in `<state-dir>/server-duid`.
//!
//! The file holds the DUID as one line of lowercase hex. When it does not exist it is created
//! with a DUID-LLT (RFC 8415 §11.2: type 1, hardware type 1 = Ethernet, the time in seconds
//! since 2000-01-01 UTC modulo 2^32, the MAC address) if a MAC address is given, else a
//! DUID-UUID (RFC 6355 §4: type 4 and the 16 bytes of a random UUID from the kernel). It is
//! written atomically (temporary file, fsync, rename, fsync of the directory), so the server
//! keeps one identity for its lifetime (RFC 8415 §11: "the DUID ... SHOULD NOT change").

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Name of the file inside the state directory.
pub const FILE_NAME: &str = "server-duid";

/// DUID type DUID-LLT (RFC 8415 §11.2).
pub const DUID_LLT: u16 = 1;
/// DUID type DUID-UUID (RFC 6355 §4).
pub const DUID_UUID: u16 = 4;

/// Seconds from the Unix epoch to 2000-01-01T00:00:00Z (RFC 8415 §11.2).
const EPOCH_2000: u64 = 946_684_800;

/// Reads `<dir>/server-duid`, or creates it once: DUID-LLT from `mac` and `now_unix` (seconds
/// since the Unix epoch), or DUID-UUID from the kernel's random UUID when `mac` is `None`.
pub fn load_or_create(dir: &Path, mac: Option<[u8; 6]>, now_unix: u64) -> io::Result<Vec<u8>> {
    let path = dir.join(FILE_NAME);
    match fs::read_to_string(&path) {
        Ok(text) => return parse(&text).map_err(|what| invalid(&path, what)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let duid = match mac {
        Some(mac) => duid_llt(mac, now_unix),
        None => duid_uuid(&fs::read_to_string("/proc/sys/kernel/random/uuid")?)
            .map_err(|what| invalid(Path::new("/proc/sys/kernel/random/uuid"), what))?,
    };
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{FILE_NAME}.tmp.{}", std::process::id()));
    let written = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(format!("{}\n", to_hex(&duid)).as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written.map(|()| duid)
}

fn invalid(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// DUID-LLT (RFC 8415 §11.2) for an Ethernet MAC.
pub fn duid_llt(mac: [u8; 6], now_unix: u64) -> Vec<u8> {
    // Modulo 2^32, as RFC 8415 §11.2 says.
    let time = (now_unix.saturating_sub(EPOCH_2000) & 0xffff_ffff) as u32;
    let mut d = Vec::with_capacity(14);
    d.extend_from_slice(&DUID_LLT.to_be_bytes());
    d.extend_from_slice(&1u16.to_be_bytes());
    d.extend_from_slice(&time.to_be_bytes());
    d.extend_from_slice(&mac);
    d
}

/// DUID-UUID (RFC 6355 §4) from a textual UUID (`8-4-4-4-12` hex digits).
pub fn duid_uuid(uuid: &str) -> Result<Vec<u8>, &'static str> {
    let hex: String = uuid.trim().chars().filter(|c| *c != '-').collect();
    let bytes = from_hex(&hex)?;
    if bytes.len() != 16 {
        return Err("UUID is not 16 bytes");
    }
    let mut d = DUID_UUID.to_be_bytes().to_vec();
    d.extend_from_slice(&bytes);
    Ok(d)
}

/// Parses the file's content: one line of hex, a DUID of 3..=130 bytes (RFC 8415 §11.1).
fn parse(text: &str) -> Result<Vec<u8>, &'static str> {
    let d = from_hex(text.trim())?;
    if !(3..=tandem_lease::MAX_DUID_LEN).contains(&d.len()) {
        return Err("DUID must be 3 to 130 bytes");
    }
    Ok(d)
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn from_hex(s: &str) -> Result<Vec<u8>, &'static str> {
    if !s.len().is_multiple_of(2) {
        return Err("odd number of hex digits");
    }
    s.as_bytes()
        .chunks_exact(2)
        .map(|p| {
            let hi = char::from(p[0]).to_digit(16).ok_or("not hex")?;
            let lo = char::from(p[1]).to_digit(16).ok_or("not hex")?;
            Ok(u8::try_from(hi * 16 + lo).unwrap_or(0))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::TempDir;

    #[test]
    fn duid_llt_has_rfc8415_layout() {
        let d = duid_llt([2, 0, 0, 0, 0, 1], EPOCH_2000 + 0x0102_0304);
        assert_eq!(d, [0, 1, 0, 1, 1, 2, 3, 4, 2, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn server_duid_created_once_then_loaded_unchanged() {
        let dir = TempDir::new("duid-once");
        let a = load_or_create(dir.path(), Some([2, 0, 0, 0, 0, 1]), EPOCH_2000 + 5).unwrap();
        assert_eq!(a, duid_llt([2, 0, 0, 0, 0, 1], EPOCH_2000 + 5));
        // Another MAC and time later: the stored DUID wins.
        let b = load_or_create(dir.path(), Some([2, 0, 0, 0, 0, 9]), EPOCH_2000 + 99).unwrap();
        assert_eq!(a, b);
        let text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(text, "0001000100000005020000000001\n");
    }

    #[test]
    fn server_duid_without_mac_is_duid_uuid() {
        let dir = TempDir::new("duid-uuid");
        let d = load_or_create(dir.path(), None, 0).unwrap();
        assert_eq!(d.len(), 18);
        assert_eq!(d[..2], [0, 4]);
        assert_eq!(load_or_create(dir.path(), None, 0).unwrap(), d);
    }

    #[test]
    fn server_duid_file_with_garbage_is_an_error() {
        let dir = TempDir::new("duid-bad");
        fs::write(dir.path().join(FILE_NAME), "zz11\n").unwrap();
        let e = load_or_create(dir.path(), None, 0).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        fs::write(dir.path().join(FILE_NAME), "0001\n").unwrap();
        assert!(load_or_create(dir.path(), None, 0).is_err());
    }

    #[test]
    fn duid_uuid_parses_kernel_format() {
        let d = duid_uuid("6f1c1f2e-5a5b-4c4d-8e8f-0a0b0c0d0e0f\n").unwrap();
        assert_eq!(d[..4], [0, 4, 0x6f, 0x1c]);
        assert_eq!(d.len(), 18);
        assert!(duid_uuid("abcd").is_err());
    }
}
