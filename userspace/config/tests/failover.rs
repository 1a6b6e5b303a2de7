//! `[[failover]]` (RFC 8156 relationships): the defaults, every field checked with its exact
//! line and field, the subnets a relationship covers, and TLS or the explicit insecure switch.

use std::net::IpAddr;
use std::path::PathBuf;

use tandem_config::{
    Config, ConfigError, DEFAULT_CONNECT_RETRY, DEFAULT_FAILOVER_PORT, DEFAULT_HEARTBEAT,
    DEFAULT_KEEPALIVE, DEFAULT_MAX_UNACKED_BNDUPD, DEFAULT_MCLT, DEFAULT_PREFIX_SHARE,
    DEFAULT_PREFIX_SHARE_MAX, DEFAULT_STARTUP_TIME, Failover, FailoverRole, FailoverSecurity,
    TlsFiles,
};

/// Two subnets (lines 1-6), then `extra` from line 7 on.
fn with(extra: &str) -> String {
    format!(
        "[[subnet]]\nprefix = \"2001:db8:1::/64\"\npreferred-lifetime = 3600\nvalid-lifetime = 7200\n\
         [[subnet]]\nprefix = \"2001:db8:2::/64\"\npreferred-lifetime = 3600\nvalid-lifetime = 7200\n{extra}"
    )
}

fn errors(text: &str) -> Vec<ConfigError> {
    Config::from_str(text, "t.toml")
        .expect_err("config should be invalid")
        .0
}

/// Exactly one error, on `line`, for `field`, whose message contains `needle`.
fn assert_one(text: &str, line: usize, field: &str, needle: &str) {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got: {errs:#?}");
    let e = &errs[0];
    assert_eq!((e.line, e.field.as_str()), (line, field), "{e}");
    assert!(e.message.contains(needle), "`{needle}` not in `{e}`");
}

const MINIMAL: &str = "[[failover]]\nname = \"dc1-dc2\"\nrole = \"primary\"\npeer = \"2001:db8:ffff::2\"\ninsecure = true\n";

#[test]
fn minimal_relationship_gets_the_defaults_and_covers_every_subnet() {
    let c = Config::from_str(&with(MINIMAL), "t.toml").unwrap();
    assert_eq!(
        c.failover,
        [Failover {
            name: "dc1-dc2".into(),
            role: FailoverRole::Primary,
            peer: "2001:db8:ffff::2".parse::<IpAddr>().unwrap(),
            local: None,
            port: DEFAULT_FAILOVER_PORT,
            mclt: DEFAULT_MCLT,
            keepalive: DEFAULT_KEEPALIVE,
            max_unacked_bndupd: DEFAULT_MAX_UNACKED_BNDUPD,
            connect_retry: DEFAULT_CONNECT_RETRY,
            startup_time: DEFAULT_STARTUP_TIME,
            heartbeat: DEFAULT_HEARTBEAT,
            prefix_share: DEFAULT_PREFIX_SHARE,
            prefix_share_max: DEFAULT_PREFIX_SHARE_MAX,
            auto_partner_down: None,
            subnets: vec![0, 1],
            security: FailoverSecurity::Insecure,
        }]
    );
    assert_eq!((DEFAULT_FAILOVER_PORT, DEFAULT_KEEPALIVE), (647, 60));
}

#[test]
fn full_relationship_with_tls_parses() {
    let text = with(
        "[[failover]]\nname = \"dc1-dc2\"\nrole = \"secondary\"\npeer = \"192.0.2.1\"\n\
         local = \"192.0.2.2\"\nport = 6470\nmclt = 1800\nkeepalive = 30\nmax-unacked-bndupd = 500\n\
         connect-retry = 2\nstartup-time = 5\nheartbeat = 4\nauto-partner-down = 600\nsubnets = [\"2001:db8:2::/64\"]\n\
         [failover.tls]\nca = \"/etc/tandem/ca.pem\"\ncert = \"/etc/tandem/b.pem\"\nkey = \"/etc/tandem/b.key\"\n\
         peer-names = [\"a.example.net\"]\n",
    );
    let c = Config::from_str(&text, "t.toml").unwrap();
    let f = &c.failover[0];
    assert_eq!(f.role, FailoverRole::Secondary);
    assert_eq!(f.local, Some("192.0.2.2".parse().unwrap()));
    assert_eq!(
        (f.port, f.mclt, f.keepalive, f.max_unacked_bndupd),
        (6470, 1800, 30, 500)
    );
    assert_eq!(
        (
            f.connect_retry,
            f.startup_time,
            f.heartbeat,
            f.auto_partner_down
        ),
        (2, 5, 4, Some(600))
    );
    assert_eq!(f.subnets, [1]);
    assert_eq!(
        f.security,
        FailoverSecurity::Tls(TlsFiles {
            ca: PathBuf::from("/etc/tandem/ca.pem"),
            cert: PathBuf::from("/etc/tandem/b.pem"),
            key: PathBuf::from("/etc/tandem/b.key"),
            peer_names: vec!["a.example.net".into()],
        })
    );
}

#[test]
fn neither_tls_nor_insecure_is_refused() {
    let text = with("[[failover]]\nname = \"x\"\nrole = \"primary\"\npeer = \"::2\"\n");
    assert_one(&text, 9, "failover[0].tls", "insecure = true");
    let text = with(&MINIMAL.replace("insecure = true", "insecure = false"));
    assert_one(&text, 9, "failover[0].tls", "RFC 8156 §10");
}

#[test]
fn tls_and_insecure_together_are_refused() {
    let text = with(&format!(
        "{MINIMAL}[failover.tls]\nca = \"/a\"\ncert = \"/b\"\nkey = \"/c\"\npeer-names = [\"p\"]\n"
    ));
    assert_one(&text, 14, "failover[0].tls", "choose one");
}

#[test]
fn tls_needs_absolute_paths_and_peer_names() {
    let text = with(
        "[[failover]]\nname = \"x\"\nrole = \"primary\"\npeer = \"::2\"\n[failover.tls]\n\
         ca = \"ca.pem\"\ncert = \"/b\"\nkey = \"/c\"\npeer-names = []\n",
    );
    let errs = errors(&text);
    let got: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        [
            (14, "failover[0].tls.ca"),
            (17, "failover[0].tls.peer-names")
        ],
        "{errs:#?}"
    );
    // A missing key inside [failover.tls] is reported once, not also as "no tls".
    let text = with(
        "[[failover]]\nname = \"x\"\nrole = \"primary\"\npeer = \"::2\"\n[failover.tls]\n\
         ca = \"/a\"\ncert = \"/b\"\npeer-names = [\"p\"]\n",
    );
    assert_one(&text, 13, "failover[0].tls.key", "missing required field");
}

#[test]
fn every_numeric_field_is_range_checked() {
    let cases = [
        ("mclt = 29", "failover[0].mclt", "at least 30 s"),
        ("mclt = 2147483648", "failover[0].mclt", "out of range"),
        (
            "keepalive = 3",
            "failover[0].keepalive",
            "out of range 4..=3600",
        ),
        ("port = 0", "failover[0].port", "out of range 1..=65535"),
        ("port = 70000", "failover[0].port", "out of range"),
        (
            "max-unacked-bndupd = 0",
            "failover[0].max-unacked-bndupd",
            "out of range",
        ),
        (
            "connect-retry = 0",
            "failover[0].connect-retry",
            "out of range",
        ),
        (
            "startup-time = 0",
            "failover[0].startup-time",
            "out of range",
        ),
        (
            "prefix-share = 101",
            "failover[0].prefix-share",
            "out of range 0..=100",
        ),
        (
            "prefix-share-max = -1",
            "failover[0].prefix-share-max",
            "out of range",
        ),
        (
            "heartbeat = 1",
            "failover[0].heartbeat",
            "out of range 2..=3600",
        ),
        (
            "heartbeat = 3601",
            "failover[0].heartbeat",
            "TIME-OF-FAILURE",
        ),
        (
            "auto-partner-down = 0",
            "failover[0].auto-partner-down",
            "leave it out for off",
        ),
    ];
    for (line, field, needle) in cases {
        assert_one(&with(&format!("{MINIMAL}{line}\n")), 14, field, needle);
    }
}

#[test]
fn role_name_and_addresses_are_checked() {
    assert_one(
        &with(&MINIMAL.replace("\"primary\"", "\"backup\"")),
        11,
        "failover[0].role",
        "`backup` is not `primary` or `secondary`",
    );
    assert_one(
        &with(&MINIMAL.replace("\"dc1-dc2\"", "\"\"")),
        10,
        "failover[0].name",
        "1..=255 bytes",
    );
    assert_one(
        &with(&MINIMAL.replace("2001:db8:ffff::2", "dc2.example.net")),
        12,
        "failover[0].peer",
        "not an IP address",
    );
    assert_one(
        &with(&format!("{MINIMAL}local = \"2001:db8:ffff::2\"\n")),
        14,
        "failover[0].local",
        "must differ from `peer`",
    );
    let text = with("[[failover]]\nrole = \"primary\"\ninsecure = true\n");
    let errs = errors(&text);
    let got: Vec<(usize, &str)> = errs.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        [(9, "failover[0].name"), (9, "failover[0].peer")],
        "{errs:#?}"
    );
}

#[test]
fn unknown_key_is_reported_with_its_line() {
    assert_one(
        &with(&format!("{MINIMAL}partner = \"x\"\n")),
        14,
        "failover[0].partner",
        "unknown field",
    );
}

#[test]
fn subnets_must_exist_and_belong_to_one_relationship() {
    let two = |a: &str, b: &str| {
        with(&format!(
            "{}subnets = [{a}]\n{}subnets = [{b}]\n",
            MINIMAL,
            MINIMAL
                .replace("dc1-dc2", "dc1-dc3")
                .replace("ffff::2", "ffff::3")
        ))
    };
    let c = Config::from_str(&two("\"2001:db8:1::/64\"", "\"2001:db8:2::/64\""), "t.toml").unwrap();
    assert_eq!(
        (
            c.failover[0].subnets.as_slice(),
            c.failover[1].subnets.as_slice()
        ),
        ([0].as_slice(), [1].as_slice())
    );
    assert_one(
        &two("\"2001:db8:1::/64\"", "\"2001:db8:1::/64\""),
        20,
        "failover[1].subnets",
        "already covered by failover[0]",
    );
    assert_one(
        &two("\"2001:db8:9::/64\"", "\"2001:db8:2::/64\""),
        14,
        "failover[0].subnets[0]",
        "no [[subnet]] has prefix 2001:db8:9::/64",
    );
    // With two relationships each must say what it covers.
    let text = with(&format!(
        "{MINIMAL}{}",
        MINIMAL
            .replace("dc1-dc2", "dc1-dc3")
            .replace("ffff::2", "ffff::3")
    ));
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(
        errs.iter()
            .all(|e| e.field.ends_with(".subnets") && e.message.contains("more than one"))
    );
}

#[test]
fn the_same_relationship_twice_is_refused() {
    let text = with(&format!(
        "{}subnets = [\"2001:db8:1::/64\"]\n{}subnets = [\"2001:db8:2::/64\"]\n",
        MINIMAL, MINIMAL
    ));
    assert_one(&text, 16, "failover[1].name", "already failover[0]");
}
