//! `tandem leases`: the lease table as a readable table or as JSON lines.
//!
//! Every stored binding that a client has held is listed (FREE records that never had a
//! client are left out), in storage order, from a [`LeaseStore::scan`].

use std::fmt::Write as _;
use std::io::{self, Write};

use tandem_lease::{Binding, BindingStatus, LeaseKind, LeaseStore};

use crate::output::hex;
use crate::timefmt::failover_rfc3339;

/// Bindings visited per `scan` call.
const SCAN_BATCH: usize = 4096;

/// The `state` of a binding as printed: the RFC 8156 §5.5.1 mnemonic in lower case
/// (`active`, `expired`, `released`, `abandoned`, …), `unknown(N)` for unassigned values.
pub fn state_name(status: BindingStatus) -> String {
    status
        .name()
        .map_or_else(|| format!("unknown({})", status.0), str::to_ascii_lowercase)
}

/// `true` for the bindings `tandem leases` lists: all but never-held FREE records.
pub fn is_listed(b: &Binding) -> bool {
    !(b.status == BindingStatus::FREE && b.duid.is_empty())
}

/// `"na"` or `"pd"`.
const fn kind_name(kind: LeaseKind) -> &'static str {
    match kind {
        LeaseKind::Address => "na",
        LeaseKind::Prefix => "pd",
    }
}

/// The address, or `prefix/len` for a delegated prefix.
fn lease_text(b: &Binding) -> String {
    match b.kind {
        LeaseKind::Address => b.addr.to_string(),
        LeaseKind::Prefix => format!("{}/{}", b.addr, b.prefix_len),
    }
}

/// When the lease's current state ends (the state expiration time, RFC 8156 §5.5.18), as
/// RFC 3339; `None` when it has no end (infinite lifetime, or a state without timeout).
fn expires(b: &Binding, now_unix: u64) -> Option<String> {
    failover_rfc3339(b.state_expiration_time, now_unix)
}

/// One JSON object (no trailing newline):
/// `{"type":"na","address":"…","duid":"hex","iaid":N,"state":"active","preferred_lifetime":N,
/// "valid_lifetime":N,"cltt":"RFC3339"|null,"expires":"RFC3339"|null}`; IA_PD bindings carry
/// `"prefix":"…/len"` instead of `"address"`. Then the RFC 8156 §7.3 failover fields:
/// `"needs_update"` (the partner has not acknowledged the binding's current state),
/// `"partner_lifetime"` (to send in the next BNDUPD), `"acked_partner_lifetime"` (the partner
/// acknowledged; caps the client's lifetime at it + MCLT, §4.4), `"expiration_time"` (the
/// greatest lifetime we acknowledged to the partner), `"partner_raw_cltt"` (when the partner
/// last talked to the client), each RFC 3339 or null. Every string is an address, hex or a
/// fixed name, so nothing needs escaping.
pub fn json_line(b: &Binding, now_unix: u64) -> String {
    let time = |t: Option<String>| t.map_or_else(|| "null".to_owned(), |s| format!("\"{s}\""));
    let key = match b.kind {
        LeaseKind::Address => "address",
        LeaseKind::Prefix => "prefix",
    };
    format!(
        "{{\"type\":\"{}\",\"{key}\":\"{}\",\"duid\":\"{}\",\"iaid\":{},\"state\":\"{}\",\
         \"preferred_lifetime\":{},\"valid_lifetime\":{},\"cltt\":{},\"expires\":{},\
         \"needs_update\":{},\"partner_lifetime\":{},\"acked_partner_lifetime\":{},\
         \"expiration_time\":{},\"partner_raw_cltt\":{}}}",
        kind_name(b.kind),
        lease_text(b),
        hex(b.duid.as_bytes()),
        b.iaid,
        state_name(b.status),
        b.preferred,
        b.valid,
        time(failover_rfc3339(b.cltt, now_unix)),
        time(expires(b, now_unix)),
        b.flags.contains(tandem_lease::BindingFlags::UPDATE_PENDING),
        time(failover_rfc3339(b.partner_lifetime, now_unix)),
        time(failover_rfc3339(b.acked_partner_lifetime, now_unix)),
        time(failover_rfc3339(b.expiration_time, now_unix)),
        time(failover_rfc3339(b.partner_raw_clt_time, now_unix)),
    )
}

/// Column titles of the table.
const HEADER: [&str; 8] = [
    "TYPE",
    "LEASE",
    "STATE",
    "DUID",
    "IAID",
    "PREFERRED",
    "VALID",
    "EXPIRES",
];

/// The table cells of one binding (lifetimes in seconds, `infinity` for 0xffffffff).
fn table_row(b: &Binding, now_unix: u64) -> [String; 8] {
    let life = |v: u32| {
        if v == tandem_config::INFINITY {
            "infinity".to_owned()
        } else {
            v.to_string()
        }
    };
    [
        kind_name(b.kind).to_owned(),
        lease_text(b),
        state_name(b.status),
        hex(b.duid.as_bytes()),
        b.iaid.to_string(),
        life(b.preferred),
        life(b.valid),
        expires(b, now_unix).unwrap_or_else(|| "never".to_owned()),
    ]
}

/// Every listed binding of `store`, in storage order.
pub fn collect<S: LeaseStore + ?Sized>(store: &S) -> Vec<Binding> {
    let mut all = Vec::new();
    let mut cursor = Some(0);
    while let Some(c) = cursor {
        cursor = store.scan(c, SCAN_BATCH, &mut |b| {
            if is_listed(b) {
                all.push(*b);
            }
        });
    }
    all
}

/// Writes the listing: JSON lines, or an aligned table (header, one row per lease, then a
/// `N leases` line).
///
/// # Errors
/// If writing to `out` fails.
pub fn write_listing(
    bindings: &[Binding],
    json: bool,
    now_unix: u64,
    out: &mut dyn Write,
) -> io::Result<()> {
    if json {
        for b in bindings {
            writeln!(out, "{}", json_line(b, now_unix))?;
        }
        return out.flush();
    }
    let rows: Vec<[String; 8]> = bindings.iter().map(|b| table_row(b, now_unix)).collect();
    let mut widths = HEADER.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let header = HEADER.map(str::to_owned);
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    writeln!(
        out,
        "{} lease{}",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    )?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use tandem_lease::{DuidBuf, FailoverTime, MemStore};

    use super::*;

    /// 2026-11-29T16:00:00Z.
    const NOW: u64 = 1_795_968_000;

    fn active_na() -> Binding {
        let mut b = Binding::free(
            LeaseKind::Address,
            "2001:db8:1::1000".parse().unwrap(),
            128,
            0,
        );
        b.status = BindingStatus::ACTIVE;
        b.duid = DuidBuf::new(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 1]).unwrap();
        b.iaid = 7;
        b.preferred = 3600;
        b.valid = 7200;
        b.cltt = FailoverTime::from_unix(NOW);
        b.state_expiration_time = FailoverTime::from_unix(NOW + 7200);
        b.acked_partner_lifetime = FailoverTime::from_unix(NOW + 10_800);
        b.flags = tandem_lease::BindingFlags(tandem_lease::BindingFlags::UPDATE_PENDING);
        b
    }

    fn infinite_pd() -> Binding {
        let mut b = Binding::free(
            LeaseKind::Prefix,
            "2001:db8:8000:100::".parse().unwrap(),
            56,
            0,
        );
        b.status = BindingStatus::RELEASED;
        b.duid = DuidBuf::new(&[0xab, 0xcd, 0xef]).unwrap();
        b.iaid = 0xffff_ffff;
        b.preferred = tandem_config::INFINITY;
        b.valid = tandem_config::INFINITY;
        b
    }

    #[test]
    fn json_line_address_has_every_field() {
        assert_eq!(
            json_line(&active_na(), NOW),
            "{\"type\":\"na\",\"address\":\"2001:db8:1::1000\",\"duid\":\"00030001020000000001\",\
             \"iaid\":7,\"state\":\"active\",\"preferred_lifetime\":3600,\"valid_lifetime\":7200,\
             \"cltt\":\"2026-11-29T16:00:00Z\",\"expires\":\"2026-11-29T18:00:00Z\",\
             \"needs_update\":true,\"partner_lifetime\":null,\
             \"acked_partner_lifetime\":\"2026-11-29T19:00:00Z\",\"expiration_time\":null,\
             \"partner_raw_cltt\":null}"
        );
    }

    #[test]
    fn json_line_prefix_without_times_uses_null() {
        assert_eq!(
            json_line(&infinite_pd(), NOW),
            "{\"type\":\"pd\",\"prefix\":\"2001:db8:8000:100::/56\",\"duid\":\"abcdef\",\
             \"iaid\":4294967295,\"state\":\"released\",\"preferred_lifetime\":4294967295,\
             \"valid_lifetime\":4294967295,\"cltt\":null,\"expires\":null,\
             \"needs_update\":false,\"partner_lifetime\":null,\"acked_partner_lifetime\":null,\
             \"expiration_time\":null,\"partner_raw_cltt\":null}"
        );
    }

    #[test]
    fn state_name_unknown_value_numbered() {
        assert_eq!(state_name(BindingStatus::ABANDONED), "abandoned");
        assert_eq!(state_name(BindingStatus::PENDING_FREE), "pending_free");
        assert_eq!(state_name(BindingStatus(99)), "unknown(99)");
    }

    #[test]
    fn collect_skips_never_held_free_records() {
        let mut store = MemStore::new();
        store.put(&active_na()).unwrap();
        store.put(&infinite_pd()).unwrap();
        store
            .put(&Binding::free(
                LeaseKind::Address,
                "2001:db8:1::9".parse().unwrap(),
                128,
                0,
            ))
            .unwrap();
        let listed = collect(&store);
        assert_eq!(listed.len(), 2);
        assert!(listed.contains(&active_na()));
        assert!(listed.contains(&infinite_pd()));
    }

    #[test]
    fn write_listing_table_aligned_with_count() {
        let mut out = Vec::new();
        write_listing(&[active_na(), infinite_pd()], false, NOW, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("TYPE  LEASE"), "{text}");
        let col = lines[0].find("STATE").unwrap();
        assert_eq!(&lines[1][col..col + 6], "active");
        assert_eq!(&lines[2][col..col + 8], "released");
        assert!(lines[1].ends_with("2026-11-29T18:00:00Z"), "{text}");
        assert!(
            lines[2].contains("infinity") && lines[2].ends_with("never"),
            "{text}"
        );
        assert_eq!(lines[3], "2 leases");
    }

    #[test]
    fn write_listing_json_one_object_per_line() {
        let mut out = Vec::new();
        write_listing(&[active_na(), infinite_pd()], true, NOW, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [json_line(&active_na(), NOW), json_line(&infinite_pd(), NOW)]
        );
    }
}
