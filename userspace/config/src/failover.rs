//! `[[failover]]`: the RFC 8156 relationships this server takes part in.
//!
//! An array: a server may be in several relationships (RFC 8156 §6.2, one per partner and
//! relationship name), each covering its own subnets; every subnet belongs to at most one.
//!
//! ```toml
//! [[failover]]
//! name = "dc1-dc2"                 # OPTION_F_RELATIONSHIP_NAME (RFC 8156 §5.5.13)
//! role = "primary"                 # or "secondary"
//! peer = "2001:db8:ffff::2"        # the partner's address
//! local = "2001:db8:ffff::1"       # optional: our address (the secondary listens on it)
//! port = 647                       # optional, RFC 8156 §6.1
//! mclt = 3600                      # optional, seconds, >= 30 (RFC 8156 §1); the primary's wins
//! subnets = ["2001:db8:1::/64"]    # optional when there is one relationship: all subnets
//!   [failover.tls]                 # mutual TLS (RFC 8156 §10); or `insecure = true`
//!   ca = "/etc/tandem/ca.pem"
//!   cert = "/etc/tandem/dc1.pem"
//!   key = "/etc/tandem/dc1.key"
//!   peer-names = ["dc2.example.net"]
//! ```

use core::ops::Range;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

use crate::MAX_FINITE_LIFETIME;
use crate::error::Collector;
use crate::model::Subnet;

/// Default TCP port of the failover link (RFC 8156 §6.1: dhcp-failover, 647).
pub const DEFAULT_FAILOVER_PORT: u16 = 647;
/// Default MCLT in seconds (RFC 8156 §4.4's example: one hour).
pub const DEFAULT_MCLT: u32 = 3600;
/// Shortest MCLT (RFC 8156 §1: failover is not for leases shorter than 30 s, and a new client
/// gets at most the MCLT).
pub const MIN_MCLT: u32 = 30;
/// Default keepalive time in seconds (RFC 8156 §6.5 FO_KEEPALIVE_TIME).
pub const DEFAULT_KEEPALIVE: u32 = 60;
/// Default OPTION_F_MAX_UNACKED_BNDUPD we announce: the partner's window of BNDUPDs to us.
/// Each window's BNDUPDs reach stable storage with one msync before their BNDREPLYs (RFC 8156
/// §7.5.2), so the window bounds how many share that cost: a resynchronisation of a million
/// bindings took 26 s over this VM's disk with 100, 5 s with 1000 (docs/failover.md D39).
/// A window of our BNDUPDs is about 250 KB in flight with one binding each, about 1 MB at most
/// (a client's four bindings each, D61).
pub const DEFAULT_MAX_UNACKED_BNDUPD: u32 = 1000;
/// Default seconds between connection attempts of the primary (RFC 8156 §6.1: "configurable").
pub const DEFAULT_CONNECT_RETRY: u32 = 5;
/// Default startup timer in seconds (RFC 8156 §8.3: "short").
pub const DEFAULT_STARTUP_TIME: u32 = 10;
/// Default share of the available delegable prefixes the primary hands to the secondary, in
/// percent (RFC 8156 §4.2.2).
pub const DEFAULT_PREFIX_SHARE: u32 = 10;
/// Default most delegable prefixes per PD pool the secondary holds (RFC 8156 §4.2.2).
pub const DEFAULT_PREFIX_SHARE_MAX: u32 = 1024;
/// Default heartbeat of the failover state record in seconds: every record vouches that the
/// server operates at most this far ahead (the TIME-OF-FAILURE of RFC 8156 §8.3.2 after a
/// crash), and a fresh record is written every half of it.
pub const DEFAULT_HEARTBEAT: u32 = 60;

/// This server's role in a relationship (RFC 8156 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailoverRole {
    /// Connects to the partner; allocates odd addresses and, initially, every prefix.
    Primary,
    /// Listens for the partner; allocates even addresses and the prefixes it is given.
    Secondary,
}

impl FailoverRole {
    /// `primary` or `secondary`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Primary => "primary",
            Self::Secondary => "secondary",
        }
    }
}

/// How the failover link is protected (RFC 8156 §10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailoverSecurity {
    /// STARTTLS then TLS 1.2+ with mutual authentication.
    Tls(TlsFiles),
    /// Plain TCP, chosen explicitly with `insecure = true` (RFC 7653 §9.1: never the default).
    Insecure,
}

/// `[failover.tls]`: our certificate and key, and whom we accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file of the CA(s) the partner's certificate must chain to.
    pub ca: PathBuf,
    /// PEM file of our certificate chain.
    pub cert: PathBuf,
    /// PEM file of our private key.
    pub key: PathBuf,
    /// Names (DNS names or IP addresses) the partner's certificate must carry.
    pub peer_names: Vec<String>,
}

/// One `[[failover]]` relationship, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failover {
    /// Relationship name (RFC 8156 §5.5.13), unique per partner.
    pub name: String,
    /// Our role.
    pub role: FailoverRole,
    /// The partner's address.
    pub peer: IpAddr,
    /// Our address on the link (the secondary listens on it; the primary connects from it);
    /// `None`: any.
    pub local: Option<IpAddr>,
    /// The TCP port: the primary connects to it, the secondary listens on it (and the primary
    /// too, only to refuse a partner that is also configured as primary).
    pub port: u16,
    /// Maximum client lead time, seconds (RFC 8156 §4.4); the secondary adopts the primary's.
    pub mclt: u32,
    /// Our keepalive time, seconds (RFC 8156 §6.5).
    pub keepalive: u32,
    /// How many BNDUPDs we accept unacknowledged (OPTION_F_MAX_UNACKED_BNDUPD).
    pub max_unacked_bndupd: u32,
    /// Seconds between connection attempts (primary; backs off up to 12 × this).
    pub connect_retry: u32,
    /// The startup timer, seconds (RFC 8156 §8.3).
    pub startup_time: u32,
    /// How far ahead each durable state record vouches for this server, seconds: after a
    /// crash, the TIME-OF-FAILURE of RFC 8156 §8.3.2 (RECOVER-WAIT waits the MCLT beyond it,
    /// §8.6.2; a partner that entered PARTNER-DOWN after it gives RECOVER, before it
    /// POTENTIAL-CONFLICT). A record is written every `heartbeat / 2` seconds.
    pub heartbeat: u32,
    /// Percent of each PD pool's available (not leased) delegable prefixes the primary hands
    /// to the secondary as FREE-BACKUP (RFC 8156 §4.2.2 proportional allocation; the
    /// secondary's pool for new clients when it serves alone).
    pub prefix_share: u32,
    /// At most this many FREE-BACKUP prefixes per PD pool.
    pub prefix_share_max: u32,
    /// COMMUNICATIONS-INTERRUPTED → PARTNER-DOWN after this many seconds (RFC 8156 §8.9.2);
    /// `None`: only an operator moves the server to PARTNER-DOWN.
    pub auto_partner_down: Option<u32>,
    /// Indexes into [`crate::Config::subnets`] of the subnets this relationship covers.
    pub subnets: Vec<usize>,
    /// TLS or explicitly insecure.
    pub security: FailoverSecurity,
}

/// `[[failover]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct FailoverFile {
    name: Option<Spanned<String>>,
    role: Option<Spanned<String>>,
    peer: Option<Spanned<String>>,
    local: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    mclt: Option<Spanned<i64>>,
    keepalive: Option<Spanned<i64>>,
    max_unacked_bndupd: Option<Spanned<i64>>,
    connect_retry: Option<Spanned<i64>>,
    startup_time: Option<Spanned<i64>>,
    heartbeat: Option<Spanned<i64>>,
    prefix_share: Option<Spanned<i64>>,
    prefix_share_max: Option<Spanned<i64>>,
    auto_partner_down: Option<Spanned<i64>>,
    subnets: Option<Spanned<Vec<Spanned<String>>>>,
    insecure: Option<Spanned<bool>>,
    tls: Option<Spanned<TlsFile>>,
}

/// `[failover.tls]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct TlsFile {
    ca: Option<Spanned<String>>,
    cert: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    peer_names: Option<Spanned<Vec<Spanned<String>>>>,
}

/// One deserialized `[[failover]]` and where it is.
#[derive(Debug)]
pub(crate) struct FailoverItem {
    pub(crate) span: Range<usize>,
    pub(crate) value: Option<FailoverFile>,
    /// Keys present in the file, so a key dropped for a bad value is not also "missing".
    pub(crate) keys: Vec<String>,
}

fn int_in(
    v: Option<&Spanned<i64>>,
    range: core::ops::RangeInclusive<i64>,
    default: u32,
    field: &str,
    why: &str,
    errors: &mut Collector<'_>,
) -> Option<u32> {
    let Some(v) = v else {
        return Some(default);
    };
    let x = *v.get_ref();
    if range.contains(&x) {
        u32::try_from(x).ok()
    } else {
        errors.push(
            v.span(),
            field,
            format!(
                "{x} is out of range {}..={} {why}",
                range.start(),
                range.end()
            )
            .trim_end()
            .to_owned(),
        );
        None
    }
}

fn ip(v: &Spanned<String>, field: &str, errors: &mut Collector<'_>) -> Option<IpAddr> {
    v.get_ref()
        .parse()
        .map_err(|_| {
            errors.push(
                v.span(),
                field,
                format!("`{}` is not an IP address", v.get_ref()),
            );
        })
        .ok()
}

fn absolute(v: &Spanned<String>, field: &str, errors: &mut Collector<'_>) -> Option<PathBuf> {
    if v.get_ref().starts_with('/') {
        Some(PathBuf::from(v.get_ref()))
    } else {
        errors.push(v.span(), field, "must be an absolute path");
        None
    }
}

/// Validates every `[[failover]]` against the subnets; errors name file, line and field.
pub(crate) fn build(
    items: Vec<FailoverItem>,
    subnets: &[Subnet],
    errors: &mut Collector<'_>,
) -> Vec<Failover> {
    let count = items.len();
    let mut out: Vec<Failover> = Vec::new();
    // Which relationship covers each subnet, for the "at most one" rule.
    let mut owner: Vec<Option<usize>> = vec![None; subnets.len()];
    for (i, item) in items.into_iter().enumerate() {
        let path = format!("failover[{i}]");
        let f = |k: &str| format!("{path}.{k}");
        let Some(file) = item.value else { continue };
        let at = item.span.start..item.span.start;
        let present = |k: &str| item.keys.iter().any(|x| x == k);
        let required = |v: &Option<Spanned<String>>, k: &str, errors: &mut Collector<'_>| {
            if v.is_none() && !present(k) {
                errors.push(at.clone(), &f(k), "missing required field");
            }
        };
        required(&file.name, "name", errors);
        required(&file.role, "role", errors);
        required(&file.peer, "peer", errors);
        let name = file.name.as_ref().and_then(|n| {
            let s = n.get_ref();
            if s.is_empty() || s.len() > 255 || s.chars().any(char::is_control) {
                errors.push(
                    n.span(),
                    &f("name"),
                    "must be 1..=255 bytes of printable text (RFC 8156 §5.5.13)",
                );
                None
            } else {
                Some(s.clone())
            }
        });
        let role = file.role.as_ref().and_then(|r| match r.get_ref().as_str() {
            "primary" => Some(FailoverRole::Primary),
            "secondary" => Some(FailoverRole::Secondary),
            other => {
                errors.push(
                    r.span(),
                    &f("role"),
                    format!("`{other}` is not `primary` or `secondary`"),
                );
                None
            }
        });
        let peer = file.peer.as_ref().and_then(|p| ip(p, &f("peer"), errors));
        let local = file.local.as_ref().and_then(|l| ip(l, &f("local"), errors));
        if let (Some(p), Some(l), Some(ls)) = (peer, local, file.local.as_ref())
            && p == l
        {
            errors.push(ls.span(), &f("local"), "must differ from `peer`");
        }
        let port = int_in(
            file.port.as_ref(),
            1..=65535,
            u32::from(DEFAULT_FAILOVER_PORT),
            &f("port"),
            "",
            errors,
        );
        let mclt = int_in(
            file.mclt.as_ref(),
            i64::from(MIN_MCLT)..=i64::from(MAX_FINITE_LIFETIME),
            DEFAULT_MCLT,
            &f("mclt"),
            "(RFC 8156 §1: at least 30 s)",
            errors,
        );
        let keepalive = int_in(
            file.keepalive.as_ref(),
            4..=3600,
            DEFAULT_KEEPALIVE,
            &f("keepalive"),
            "(RFC 8156 §6.5; CONTACT goes every keepalive / 4)",
            errors,
        );
        let max_unacked = int_in(
            file.max_unacked_bndupd.as_ref(),
            1..=65535,
            DEFAULT_MAX_UNACKED_BNDUPD,
            &f("max-unacked-bndupd"),
            "",
            errors,
        );
        let connect_retry = int_in(
            file.connect_retry.as_ref(),
            1..=3600,
            DEFAULT_CONNECT_RETRY,
            &f("connect-retry"),
            "",
            errors,
        );
        let startup_time = int_in(
            file.startup_time.as_ref(),
            1..=3600,
            DEFAULT_STARTUP_TIME,
            &f("startup-time"),
            "(RFC 8156 §8.3)",
            errors,
        );
        let heartbeat = int_in(
            file.heartbeat.as_ref(),
            2..=3600,
            DEFAULT_HEARTBEAT,
            &f("heartbeat"),
            "(seconds each state record vouches ahead, RFC 8156 §8.3.2 TIME-OF-FAILURE; a record is written every heartbeat / 2)",
            errors,
        );
        let prefix_share = int_in(
            file.prefix_share.as_ref(),
            0..=100,
            DEFAULT_PREFIX_SHARE,
            &f("prefix-share"),
            "(percent of each PD pool's available prefixes given to the secondary, RFC 8156 §4.2.2)",
            errors,
        );
        let prefix_share_max = int_in(
            file.prefix_share_max.as_ref(),
            0..=1_048_576,
            DEFAULT_PREFIX_SHARE_MAX,
            &f("prefix-share-max"),
            "(most prefixes per PD pool the secondary holds)",
            errors,
        );
        let auto_partner_down = match &file.auto_partner_down {
            None => Some(None),
            Some(v) => int_in(
                Some(v),
                1..=i64::from(MAX_FINITE_LIFETIME),
                0,
                &f("auto-partner-down"),
                "(seconds in COMMUNICATIONS-INTERRUPTED before PARTNER-DOWN; leave it out for off)",
                errors,
            )
            .map(Some),
        };

        // Subnets: by prefix; all of them when this is the only relationship.
        let mut covered = Vec::new();
        match &file.subnets {
            None if count == 1 => covered.extend(0..subnets.len()),
            None if present("subnets") => {}
            None => errors.push(
                at.clone(),
                &f("subnets"),
                "required when there is more than one [[failover]]: list the subnet prefixes \
                 this relationship covers",
            ),
            Some(list) => {
                if list.get_ref().is_empty() {
                    errors.push(list.span(), &f("subnets"), "must name at least one subnet");
                }
                for (j, s) in list.get_ref().iter().enumerate() {
                    let field = format!("{path}.subnets[{j}]");
                    match s.get_ref().parse::<crate::Ipv6Prefix>() {
                        Err(e) => errors.push(s.span(), &field, format!("{e}")),
                        Ok(p) => match subnets.iter().position(|x| x.prefix == p) {
                            None => errors.push(
                                s.span(),
                                &field,
                                format!("no [[subnet]] has prefix {p}"),
                            ),
                            Some(k) if covered.contains(&k) => {
                                errors.push(s.span(), &field, format!("{p} is listed twice"));
                            }
                            Some(k) => covered.push(k),
                        },
                    }
                }
            }
        }
        for &k in &covered {
            match owner.get(k).copied().flatten() {
                Some(other) => {
                    let span = file.subnets.as_ref().map_or(at.clone(), |s| s.span());
                    errors.push(
                        span,
                        &f("subnets"),
                        format!(
                            "subnet {} is already covered by failover[{other}]; a subnet belongs \
                             to at most one relationship (RFC 8156 §6.2)",
                            subnets
                                .get(k)
                                .map_or(String::new(), |s| s.prefix.to_string())
                        ),
                    );
                }
                None => {
                    if let Some(slot) = owner.get_mut(k) {
                        *slot = Some(i);
                    }
                }
            }
        }

        let insecure = file.insecure.as_ref().map(|b| *b.get_ref());
        let security = match (&file.tls, insecure) {
            (Some(t), Some(true)) => {
                errors.push(
                    t.span(),
                    &f("tls"),
                    "both [failover.tls] and `insecure = true`: choose one",
                );
                None
            }
            (Some(t), _) => {
                let table = t.span().start..t.span().start;
                let t = t.get_ref();
                let path_of = |v: &Option<Spanned<String>>, k: &str, errors: &mut Collector<'_>| {
                    let field = f(&format!("tls.{k}"));
                    match v {
                        Some(v) => absolute(v, &field, errors),
                        None => {
                            errors.push(table.clone(), &field, "missing required field");
                            None
                        }
                    }
                };
                let ca = path_of(&t.ca, "ca", errors);
                let cert = path_of(&t.cert, "cert", errors);
                let key = path_of(&t.key, "key", errors);
                let mut peer_names = Vec::new();
                match &t.peer_names {
                    None => errors.push(
                        table.clone(),
                        &f("tls.peer-names"),
                        "missing required field: the names the partner's certificate carries",
                    ),
                    Some(names) if names.get_ref().is_empty() => errors.push(
                        names.span(),
                        &f("tls.peer-names"),
                        "must name at least one name the partner's certificate carries",
                    ),
                    Some(names) => {
                        for (j, n) in names.get_ref().iter().enumerate() {
                            let s = n.get_ref();
                            if s.is_empty() || s.len() > 253 || s.chars().any(char::is_whitespace) {
                                errors.push(
                                    n.span(),
                                    &format!("{path}.tls.peer-names[{j}]"),
                                    format!("`{s}` is not a DNS name or IP address"),
                                );
                            } else {
                                peer_names.push(s.clone());
                            }
                        }
                    }
                }
                match (ca, cert, key) {
                    (Some(ca), Some(cert), Some(key)) if !peer_names.is_empty() => {
                        Some(FailoverSecurity::Tls(TlsFiles {
                            ca,
                            cert,
                            key,
                            peer_names,
                        }))
                    }
                    _ => None,
                }
            }
            (None, Some(true)) => Some(FailoverSecurity::Insecure),
            // Present but dropped for a bad value (reported already).
            (None, None) if present("tls") || present("insecure") => None,
            (None, _) => {
                errors.push(
                    at.clone(),
                    &f("tls"),
                    "the failover link needs [failover.tls] (ca, cert, key, peer-names), or \
                     `insecure = true` to run it over plain TCP (RFC 8156 §10)",
                );
                None
            }
        };

        if let (Some(n), Some(p)) = (&name, peer)
            && let Some(k) = out.iter().position(|o| o.name == *n && o.peer == p)
        {
            let span = file.name.as_ref().map_or(at.clone(), Spanned::span);
            errors.push(
                span,
                &f("name"),
                format!("relationship `{n}` with {p} is already failover[{k}]"),
            );
        }
        if let (
            Some(name),
            Some(role),
            Some(peer),
            Some(port),
            Some(mclt),
            Some(keepalive),
            Some(max_unacked_bndupd),
            Some(connect_retry),
            Some(startup_time),
            Some(heartbeat),
            Some(prefix_share),
            Some(prefix_share_max),
            Some(auto_partner_down),
            Some(security),
        ) = (
            name,
            role,
            peer,
            port.and_then(|p| u16::try_from(p).ok()),
            mclt,
            keepalive,
            max_unacked,
            connect_retry,
            startup_time,
            heartbeat,
            prefix_share,
            prefix_share_max,
            auto_partner_down,
            security,
        ) {
            out.push(Failover {
                name,
                role,
                peer,
                local,
                port,
                mclt,
                keepalive,
                max_unacked_bndupd,
                connect_retry,
                startup_time,
                heartbeat,
                prefix_share,
                prefix_share_max,
                auto_partner_down,
                subnets: covered,
                security,
            });
        }
    }
    out
}
