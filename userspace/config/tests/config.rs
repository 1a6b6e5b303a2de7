//! End-to-end tests of `Config::from_str`: the reference example, one test per error kind
//! (exact line and field), error collection, and robustness against arbitrary input.

use std::net::Ipv6Addr;
use std::path::PathBuf;

use proptest::prelude::*;
use tandem_config::{
    AddressPool, Config, ConfigError, Datapath, DatapathMode, Ipv6Prefix, PdPool, Reservation,
    Server, Subnet, SubnetOptions, XdpMode, parse_core_list,
};

const EXAMPLE: &str = include_str!("../examples/tandem.toml");

fn a(s: &str) -> Ipv6Addr {
    s.parse().expect("test address")
}

fn p(s: &str) -> Ipv6Prefix {
    s.parse().expect("test prefix")
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
    assert!(e.to_string().starts_with(&format!("t.toml:{line}:")), "{e}");
}

/// A valid one-subnet file; `extra` is appended inside the subnet (line 5 onwards).
fn subnet_with(extra: &str) -> String {
    format!(
        "[[interface]]\nname = \"eth0\"\n[[subnet]]\nprefix = \"2001:db8:1::/64\"\n\
         preferred-lifetime = 3600\nvalid-lifetime = 7200\n{extra}"
    )
}

#[test]
fn example_valid_parses_to_expected_config() {
    let config = Config::from_str(EXAMPLE, "tandem.toml").unwrap();
    let expected = Config {
        server: Server {
            state_dir: PathBuf::from("/var/lib/tandem"),
            preference: 10,
        },
        datapath: Datapath::default(),
        interfaces: vec!["eth0".into(), "eth1".into()],
        subnets: vec![
            Subnet {
                prefix: p("2001:db8:1::/64"),
                interface: Some("eth0".into()),
                relay_link_addresses: vec![a("2001:db8:ffff::1")],
                interface_id: Some(b"ge-0/0/1.100".to_vec()),
                rapid_commit: true,
                rebind_creates_bindings: false,
                preferred_lifetime: 3600,
                valid_lifetime: 7200,
                t1: 1800,
                t2: 2880,
                pools: vec![
                    AddressPool {
                        first: a("2001:db8:1::1000"),
                        last: a("2001:db8:1::ffff"),
                    },
                    AddressPool {
                        first: a("2001:db8:1:0:1::"),
                        last: a("2001:db8:1:0:1:ffff:ffff:ffff"),
                    },
                ],
                pd_pools: vec![PdPool {
                    prefix: p("2001:db8:8000::/40"),
                    delegated_len: 56,
                }],
                reservations: vec![
                    Reservation {
                        duid: vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 1],
                        address: Some(a("2001:db8:1::5")),
                        prefix: Some(p("2001:db8:9000::/56")),
                    },
                    Reservation {
                        duid: vec![0, 1, 0, 1, 0x2a, 0x3b, 0x4c, 0x5d, 2, 0, 0, 0, 0, 2],
                        address: Some(a("2001:db8:1::6")),
                        prefix: None,
                    },
                ],
                options: SubnetOptions {
                    dns_servers: vec![a("2001:db8::53"), a("2001:db8::54")],
                    domain_search: vec!["example.net".into(), "lab.example.net".into()],
                    sol_max_rt: Some(3600),
                    inf_max_rt: Some(3600),
                    information_refresh_time: Some(86400),
                },
            },
            Subnet {
                prefix: p("2001:db8:2::/64"),
                interface: None,
                relay_link_addresses: vec![],
                interface_id: None,
                rapid_commit: false,
                rebind_creates_bindings: false,
                preferred_lifetime: 1000,
                valid_lifetime: 2000,
                t1: 500,
                t2: 800,
                pools: vec![AddressPool {
                    first: a("2001:db8:2::"),
                    last: a("2001:db8:2::ff"),
                }],
                pd_pools: vec![],
                reservations: vec![],
                options: SubnetOptions::default(),
            },
        ],
        failover: vec![],
    };
    assert_eq!(config, expected);
}

#[test]
fn example_lookups_select_expected_subnet() {
    let config = Config::from_str(EXAMPLE, "tandem.toml").unwrap();
    let first = Some(&config.subnets[0]);
    let second = Some(&config.subnets[1]);
    assert_eq!(config.subnet_for_link_address(a("2001:db8:ffff::1")), first);
    assert_eq!(config.subnet_for_link_address(a("2001:db8:1::77")), first);
    assert_eq!(config.subnet_for_link_address(a("2001:db8:2::1")), second);
    assert_eq!(config.subnet_for_link_address(a("2001:db8:3::1")), None);
    assert_eq!(config.subnet_for_interface_id(b"ge-0/0/1.100"), first);
    assert_eq!(config.subnet_for_interface_id(b"ge-0/0/1.101"), None);
    assert_eq!(config.subnet_for_interface("eth0"), first);
    assert_eq!(config.subnet_for_interface("eth1"), None);
    let r = config.subnets[0]
        .reservation_for_duid(&[0, 3, 0, 1, 2, 0, 0, 0, 0, 1])
        .unwrap();
    assert_eq!(r.address, Some(a("2001:db8:1::5")));
    assert_eq!(config.subnets[0].pools[0].len(), 0xf000);
    assert_eq!(config.subnets[0].pd_pools[0].count(), 1 << 16);
}

#[test]
fn pool_sizes_saturate_not_overflow() {
    let all = AddressPool {
        first: Ipv6Addr::UNSPECIFIED,
        last: Ipv6Addr::from(u128::MAX),
    };
    assert_eq!(all.len(), u128::MAX);
    assert!(!all.is_empty());
    let pd = PdPool {
        prefix: p("::/0"),
        delegated_len: 128,
    };
    assert_eq!(pd.count(), u128::MAX);
    assert_eq!(
        PdPool {
            prefix: p("::/0"),
            delegated_len: 127
        }
        .count(),
        1 << 127
    );
    assert_eq!(
        PdPool {
            prefix: p("2001:db8::/48"),
            delegated_len: 40
        }
        .count(),
        0
    );
}

#[test]
fn minimal_file_uses_defaults() {
    let config = Config::from_str("", "empty.toml").unwrap();
    assert_eq!(config.server.state_dir, PathBuf::from("/var/lib/tandem"));
    assert_eq!(config.server.preference, 0);
    assert!(config.interfaces.is_empty() && config.subnets.is_empty());
    let config = Config::from_str(&subnet_with(""), "t.toml").unwrap();
    assert_eq!((config.subnets[0].t1, config.subnets[0].t2), (1800, 2880));
}

#[test]
fn infinite_preferred_defaults_t1_t2_to_infinity() {
    let text = "[[subnet]]\nprefix = \"2001:db8::/64\"\npreferred-lifetime = 4294967295\n\
                valid-lifetime = 4294967295\n";
    let config = Config::from_str(text, "t.toml").unwrap();
    assert_eq!(
        (config.subnets[0].t1, config.subnets[0].t2),
        (u32::MAX, u32::MAX)
    );
}

#[test]
fn syntax_error_reports_position() {
    let errs = errors("[server]\npreference = = 1\n");
    assert!(!errs.is_empty());
    assert_eq!(errs[0].line, 2);
    assert_eq!(errs[0].field, "");
}

#[test]
fn unknown_top_level_key_reported() {
    assert_one("[server]\n[serverz]\n", 2, "serverz", "unknown key");
}

#[test]
fn unknown_server_key_reported() {
    assert_one(
        "[server]\npreference = 1\nstate_dir = \"/x\"\n",
        3,
        "server.state_dir",
        "unknown field",
    );
}

#[test]
fn unknown_subnet_key_reported() {
    assert_one(
        &subnet_with("lease-time = 5\n"),
        7,
        "subnet[0].lease-time",
        "unknown field",
    );
}

#[test]
fn unknown_pool_key_reported() {
    let text = subnet_with("[[subnet.pool]]\nrange = \"2001:db8:1::1-2001:db8:1::2\"\nsize = 3\n");
    assert_one(&text, 9, "subnet[0].pool[0].size", "unknown field");
}

#[test]
fn wrong_type_reported() {
    assert_one(
        "[server]\npreference = \"high\"\n",
        2,
        "server.preference",
        "invalid type",
    );
}

#[test]
fn missing_required_field_reported() {
    let text = "[[subnet]]\nprefix = \"2001:db8::/64\"\nvalid-lifetime = 7200\n";
    assert_one(
        text,
        1,
        "subnet[0].preferred-lifetime",
        "missing required field",
    );
}

#[test]
fn bad_ipv6_address_reported() {
    let text = subnet_with("relay-link-addresses = [\"2001:db8::1\", \"2001:zz::1\"]\n");
    assert_one(
        &text,
        7,
        "subnet[0].relay-link-addresses[1]",
        "not a valid IPv6 address",
    );
}

#[test]
fn bad_prefix_reported() {
    let text = "[[subnet]]\nprefix = \"2001:db8::\"\npreferred-lifetime = 1\nvalid-lifetime = 2\n";
    assert_one(text, 2, "subnet[0].prefix", "address/length");
}

#[test]
fn prefix_length_out_of_range_reported() {
    let text =
        "[[subnet]]\nprefix = \"2001:db8::/129\"\npreferred-lifetime = 1\nvalid-lifetime = 2\n";
    assert_one(text, 2, "subnet[0].prefix", "out of range 0..=128");
}

#[test]
fn prefix_host_bits_reported() {
    let text =
        "[[subnet]]\nprefix = \"2001:db8::1/64\"\npreferred-lifetime = 1\nvalid-lifetime = 2\n";
    assert_one(text, 2, "subnet[0].prefix", "host bits are set");
}

#[test]
fn pool_outside_subnet_reported() {
    let text = subnet_with("[[subnet.pool]]\nrange = \"2001:db8:1::1-2001:db8:2::1\"\n");
    assert_one(
        &text,
        8,
        "subnet[0].pool[0].range",
        "outside the subnet prefix",
    );
    let text = subnet_with("[[subnet.pool]]\nprefix = \"2001:db8::/48\"\n");
    assert_one(
        &text,
        8,
        "subnet[0].pool[0].prefix",
        "outside the subnet prefix",
    );
}

#[test]
fn pool_range_inverted_reported() {
    let text = subnet_with("[[subnet.pool]]\nrange = \"2001:db8:1::9 - 2001:db8:1::1\"\n");
    assert_one(&text, 8, "subnet[0].pool[0].range", "greater than end");
}

#[test]
fn pool_without_range_or_prefix_reported() {
    assert_one(
        &subnet_with("[[subnet.pool]]\n"),
        7,
        "subnet[0].pool[0]",
        "exactly one of",
    );
}

#[test]
fn overlapping_pools_in_subnet_reported() {
    let text = subnet_with(
        "[[subnet.pool]]\nrange = \"2001:db8:1::1-2001:db8:1::10\"\n\
         [[subnet.pool]]\nprefix = \"2001:db8:1::/124\"\n",
    );
    assert_one(
        &text,
        10,
        "subnet[0].pool[1].prefix",
        "overlaps subnet[0].pool[0].range",
    );
}

#[test]
fn overlapping_pools_across_subnets_reported() {
    let text = "[[subnet]]\nprefix = \"2001:db8::/48\"\npreferred-lifetime = 1\nvalid-lifetime = 2\n\
                [[subnet.pool]]\nrange = \"2001:db8::1-2001:db8::9\"\n\
                [[subnet]]\nprefix = \"2001:db8::/64\"\npreferred-lifetime = 1\nvalid-lifetime = 2\n\
                [[subnet.pool]]\nrange = \"2001:db8::5-2001:db8::6\"\n";
    let errs = errors(text);
    let fields: Vec<_> = errs.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        fields,
        [(8, "subnet[1].prefix"), (12, "subnet[1].pool[0].range")],
        "{errs:#?}"
    );
    assert!(errs[1].message.contains("overlaps subnet[0].pool[0].range"));
}

#[test]
fn overlapping_pd_pools_reported() {
    let text = subnet_with(
        "[[subnet.pd-pool]]\nprefix = \"2001:db8:8000::/40\"\ndelegated-length = 56\n\
         [[subnet.pd-pool]]\nprefix = \"2001:db8:8000::/48\"\ndelegated-length = 60\n",
    );
    assert_one(
        &text,
        11,
        "subnet[0].pd-pool[1].prefix",
        "overlaps subnet[0].pd-pool[0].prefix",
    );
}

#[test]
fn delegated_length_shorter_than_pool_reported() {
    let text =
        subnet_with("[[subnet.pd-pool]]\nprefix = \"2001:db8:8000::/40\"\ndelegated-length = 32\n");
    assert_one(
        &text,
        9,
        "subnet[0].pd-pool[0].delegated-length",
        "shorter than the pool prefix",
    );
}

#[test]
fn delegated_length_above_128_reported() {
    let text = subnet_with(
        "[[subnet.pd-pool]]\nprefix = \"2001:db8:8000::/40\"\ndelegated-length = 129\n",
    );
    assert_one(
        &text,
        9,
        "subnet[0].pd-pool[0].delegated-length",
        "out of range",
    );
}

#[test]
fn preferred_above_valid_reported() {
    let text = "[[subnet]]\nprefix = \"2001:db8::/64\"\npreferred-lifetime = 9000\nvalid-lifetime = 7200\n";
    assert_one(
        text,
        3,
        "subnet[0].preferred-lifetime",
        "greater than valid-lifetime",
    );
}

#[test]
fn finite_lifetime_that_wraps_failover_time_is_refused() {
    // RFC 8156 §3: 2^31 s would make `now + valid` compare as earlier than now.
    let text = "[[subnet]]\nprefix = \"2001:db8::/64\"\npreferred-lifetime = 3600\nvalid-lifetime = 2147483648\n";
    assert_one(
        text,
        4,
        "subnet[0].valid-lifetime",
        "neither infinity (4294967295) nor at most 1073741823 s",
    );
    let text = "[[subnet]]\nprefix = \"2001:db8::/64\"\npreferred-lifetime = 4294967294\nvalid-lifetime = 4294967295\n";
    assert_one(text, 3, "subnet[0].preferred-lifetime", "RFC 8156 §3");
    assert_one(
        &subnet_with("t2 = 1073741824\n"),
        7,
        "subnet[0].t2",
        "neither infinity",
    );
}

#[test]
fn longest_finite_and_infinite_lifetimes_are_accepted() {
    for (p, v) in [
        (
            tandem_config::MAX_FINITE_LIFETIME,
            tandem_config::MAX_FINITE_LIFETIME,
        ),
        (3600, tandem_config::INFINITY),
        (tandem_config::INFINITY, tandem_config::INFINITY),
    ] {
        let text = format!(
            "[[subnet]]\nprefix = \"2001:db8::/64\"\npreferred-lifetime = {p}\nvalid-lifetime = {v}\n"
        );
        let c = Config::from_str(&text, "t.toml").unwrap();
        assert_eq!(
            (c.subnets[0].preferred_lifetime, c.subnets[0].valid_lifetime),
            (p, v)
        );
    }
}

#[test]
fn rebind_creates_bindings_is_off_unless_configured() {
    let c = Config::from_str(&subnet_with(""), "t.toml").unwrap();
    assert!(!c.subnets[0].rebind_creates_bindings);
    let c = Config::from_str(&subnet_with("rebind-creates-bindings = true\n"), "t.toml").unwrap();
    assert!(c.subnets[0].rebind_creates_bindings);
    assert_one(
        &subnet_with("rebind-creates-bindings = 1\n"),
        7,
        "subnet[0].rebind-creates-bindings",
        "expected a boolean",
    );
}

#[test]
fn reserved_prefix_inside_a_pd_pool_must_be_one_of_its_delegated_prefixes() {
    let pool = "[[subnet.pd-pool]]\nprefix = \"2001:db8:8000::/40\"\ndelegated-length = 56\n";
    let res = |p: &str| {
        subnet_with(&format!(
            "{pool}[[subnet.reservation]]\nduid = \"00:03:00:01:aa:bb:cc:dd:ee:ff\"\nprefix = \"{p}\"\n"
        ))
    };
    // Found by the engine fuzzer: a /55 over two of the pool's /56s.
    assert_one(
        &res("2001:db8:8000::/55"),
        12,
        "subnet[0].reservation[0].prefix",
        "without being one of its delegated prefixes",
    );
    assert_one(
        &res("2001:db8:8000:100::/60"),
        12,
        "subnet[0].reservation[0].prefix",
        "overlaps subnet[0].pd-pool[0]",
    );
    assert!(Config::from_str(&res("2001:db8:8000:4200::/56"), "t.toml").is_ok());
    assert!(Config::from_str(&res("2001:db8:9000::/48"), "t.toml").is_ok());
}

#[test]
fn t1_above_t2_reported() {
    assert_one(
        &subnet_with("t1 = 2000\nt2 = 1900\n"),
        7,
        "subnet[0].t1",
        "greater than t2",
    );
    // Default t2 (0.8 × 3600 = 2880) is below the explicit t1.
    assert_one(
        &subnet_with("t1 = 3000\n"),
        7,
        "subnet[0].t1",
        "greater than t2 2880",
    );
}

#[test]
fn t2_above_preferred_reported() {
    assert_one(
        &subnet_with("t2 = 3601\n"),
        7,
        "subnet[0].t2",
        "greater than preferred-lifetime",
    );
}

#[test]
fn reservation_address_outside_subnet_reported() {
    let text =
        subnet_with("[[subnet.reservation]]\nduid = \"000100\"\naddress = \"2001:db8:2::5\"\n");
    assert_one(
        &text,
        9,
        "subnet[0].reservation[0].address",
        "outside the subnet prefix",
    );
}

#[test]
fn reservation_duplicate_duid_reported() {
    let text = subnet_with(
        "[[subnet.reservation]]\nduid = \"00:01:00\"\naddress = \"2001:db8:1::5\"\n\
         [[subnet.reservation]]\nduid = \"000100\"\naddress = \"2001:db8:1::6\"\n",
    );
    assert_one(
        &text,
        11,
        "subnet[0].reservation[1].duid",
        "already reserved by subnet[0].reservation[0]",
    );
}

#[test]
fn reservation_bad_duid_hex_reported() {
    let text =
        subnet_with("[[subnet.reservation]]\nduid = \"00:0g:00\"\naddress = \"2001:db8:1::5\"\n");
    assert_one(&text, 8, "subnet[0].reservation[0].duid", "not a hex DUID");
}

#[test]
fn reservation_duid_length_reported() {
    let text =
        subnet_with("[[subnet.reservation]]\nduid = \"0001\"\naddress = \"2001:db8:1::5\"\n");
    assert_one(&text, 8, "subnet[0].reservation[0].duid", "3..=130");
    let long = "00".repeat(131);
    let text = subnet_with(&format!(
        "[[subnet.reservation]]\nduid = \"{long}\"\nprefix = \"2001:db8:9::/56\"\n"
    ));
    assert_one(&text, 8, "subnet[0].reservation[0].duid", "131 bytes");
}

#[test]
fn reservation_without_address_or_prefix_reported() {
    let text = subnet_with("[[subnet.reservation]]\nduid = \"000100\"\n");
    assert_one(
        &text,
        7,
        "subnet[0].reservation[0]",
        "needs `address` and/or `prefix`",
    );
}

#[test]
fn undeclared_interface_reported() {
    assert_one(
        &subnet_with("interface = \"eth9\"\n"),
        7,
        "subnet[0].interface",
        "not declared",
    );
}

#[test]
fn overlapping_subnet_prefixes_reported() {
    let text = "[[subnet]]\nprefix = \"2001:db8::/48\"\npreferred-lifetime = 1\nvalid-lifetime = 2\n\
                [[subnet]]\nprefix = \"2001:db8:0:1::/64\"\npreferred-lifetime = 1\nvalid-lifetime = 2\n";
    assert_one(text, 6, "subnet[1].prefix", "overlaps subnet[0].prefix");
}

#[test]
fn duplicate_interface_id_reported() {
    let text = "[[subnet]]\nprefix = \"2001:db8:1::/64\"\npreferred-lifetime = 1\nvalid-lifetime = 2\n\
                interface-id = \"x\"\n\
                [[subnet]]\nprefix = \"2001:db8:2::/64\"\npreferred-lifetime = 1\nvalid-lifetime = 2\n\
                interface-id = \"x\"\n";
    assert_one(
        text,
        10,
        "subnet[1].interface-id",
        "already selects subnet[0]",
    );
}

#[test]
fn domain_label_too_long_reported() {
    let label = "a".repeat(64);
    let text = subnet_with(&format!(
        "[subnet.options]\ndomain-search = [\"ok.net\", \"{label}.net\"]\n"
    ));
    assert_one(
        &text,
        8,
        "subnet[0].options.domain-search[1]",
        "64 bytes long (max 63",
    );
}

#[test]
fn domain_name_too_long_reported() {
    let name = vec!["a".repeat(60); 5].join(".");
    let text = subnet_with(&format!("[subnet.options]\ndomain-search = [\"{name}\"]\n"));
    assert_one(&text, 8, "subnet[0].options.domain-search[0]", "max 255");
}

#[test]
fn option_values_out_of_range_reported() {
    assert_one(
        &subnet_with("[subnet.options]\nsol-max-rt = 59\n"),
        8,
        "subnet[0].options.sol-max-rt",
        "60..=86400",
    );
    assert_one(
        &subnet_with("[subnet.options]\ninf-max-rt = 86401\n"),
        8,
        "subnet[0].options.inf-max-rt",
        "60..=86400",
    );
    assert_one(
        &subnet_with("[subnet.options]\ninformation-refresh-time = 599\n"),
        8,
        "subnet[0].options.information-refresh-time",
        "600..=",
    );
    assert_one(
        "[server]\npreference = 256\n",
        2,
        "server.preference",
        "0..=255",
    );
}

#[test]
fn several_errors_all_reported_in_order() {
    let text = "\
[server]
preference = 300
colour = \"blue\"
[[interface]]
name = \"eth0\"
[[subnet]]
prefix = \"2001:db8:1::1/64\"
interface = \"eth7\"
preferred-lifetime = \"long\"
valid-lifetime = 7200
[[subnet.pool]]
range = \"2001:db8:1::9-2001:db8:1::1\"
[[subnet.reservation]]
duid = \"xyz\"
address = \"2001:db8:1::5\"
[subnet.options]
sol-max-rt = 1
";
    let errs = errors(text);
    let got: Vec<_> = errs.iter().map(|e| (e.line, e.field.as_str())).collect();
    assert_eq!(
        got,
        [
            (2, "server.preference"),
            (3, "server.colour"),
            (7, "subnet[0].prefix"),
            (8, "subnet[0].interface"),
            (9, "subnet[0].preferred-lifetime"),
            (12, "subnet[0].pool[0].range"),
            (14, "subnet[0].reservation[0].duid"),
            (17, "subnet[0].options.sol-max-rt"),
        ],
        "{errs:#?}"
    );
    let shown = tandem_config::ConfigErrors(errs).to_string();
    assert_eq!(shown.lines().count(), 8);
    assert!(
        shown.starts_with("t.toml:2:14: server.preference: 300 is out of range 0..=255"),
        "{shown}"
    );
}

#[test]
fn example_with_every_line_removed_never_panics() {
    let lines: Vec<&str> = EXAMPLE.lines().collect();
    for skip in 0..lines.len() {
        let text: Vec<&str> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, l)| *l)
            .collect();
        if let Err(e) = Config::from_str(&text.join("\n"), "t.toml") {
            assert!(e.0.iter().all(|e| e.line >= 1 && e.column >= 1), "{e}");
        }
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in ".{0,400}") {
        if let Err(e) = Config::from_str(&text, "t.toml") {
            prop_assert!(!e.0.is_empty());
        }
    }

    #[test]
    fn example_byte_mutations_never_panic(pos in 0usize..4000, byte in any::<char>()) {
        let mut text = EXAMPLE.to_owned();
        let mut pos = pos.min(text.len());
        while !text.is_char_boundary(pos) {
            pos -= 1;
        }
        text.insert(pos, byte);
        if let Err(e) = Config::from_str(&text, "t.toml") {
            prop_assert!(e.0.iter().all(|e| e.line >= 1 && e.column >= 1));
        }
    }
}

#[test]
fn datapath_full_section_parsed() {
    let text = "[datapath]\nmode = \"xdp\"\nxdp-mode = \"generic\"\nbusy-poll = true\n\
                cores = \"0-1,3\"\nqueues = 2\nshards = 4\n";
    let c = Config::from_str(text, "t.toml").unwrap();
    assert_eq!(
        c.datapath,
        Datapath {
            mode: DatapathMode::Xdp,
            xdp_mode: XdpMode::Generic,
            busy_poll: true,
            cores: Some(vec![0, 1, 3]),
            queues: 2,
            shards: 4,
        }
    );
}

#[test]
fn datapath_absent_defaults_to_socket() {
    let c = Config::from_str("", "t.toml").unwrap();
    assert_eq!(c.datapath.mode, DatapathMode::Socket);
    assert_eq!(c.datapath.xdp_mode, XdpMode::Auto);
    assert_eq!((c.datapath.queues, c.datapath.shards), (0, 0));
    assert_eq!(c.datapath.cores, None);
    assert!(!c.datapath.busy_poll);
}

#[test]
fn datapath_unknown_mode_reported_with_line() {
    assert_one(
        "[datapath]\n\nmode = \"dpdk\"\n",
        3,
        "datapath.mode",
        "unknown mode `dpdk`",
    );
    assert_one(
        "[datapath]\nxdp-mode = \"turbo\"\n",
        2,
        "datapath.xdp-mode",
        "`auto`, `native` or `generic`",
    );
}

#[test]
fn datapath_bad_core_list_reported_with_line() {
    assert_one(
        "[datapath]\ncores = \"3-1\"\n",
        2,
        "datapath.cores",
        "runs backwards",
    );
    assert_one(
        "[datapath]\ncores = \"0,,1\"\n",
        2,
        "datapath.cores",
        "empty entry",
    );
    assert_one("[datapath]\ncores = \"x\"\n", 2, "datapath.cores", "0-1,3");
    assert_one(
        "[datapath]\ncores = \"1,1\"\n",
        2,
        "datapath.cores",
        "listed twice",
    );
}

#[test]
fn datapath_out_of_range_counts_reported() {
    assert_one(
        "[datapath]\nqueues = 65\n",
        2,
        "datapath.queues",
        "out of range 0..=64",
    );
    assert_one(
        "[datapath]\nshards = -1\n",
        2,
        "datapath.shards",
        "out of range",
    );
    assert_one(
        "[datapath]\nshards = 257\n",
        2,
        "datapath.shards",
        "0..=256",
    );
}

#[test]
fn datapath_unknown_key_and_wrong_type_reported() {
    assert_one(
        "[datapath]\nworkers = 3\n",
        2,
        "datapath.workers",
        "unknown field",
    );
    assert_one(
        "[datapath]\nbusy-poll = \"yes\"\n",
        2,
        "datapath.busy-poll",
        "",
    );
}

#[test]
fn core_list_forms_parse_in_order() {
    assert_eq!(parse_core_list("0,1"), Ok(vec![0, 1]));
    assert_eq!(parse_core_list("0-3"), Ok(vec![0, 1, 2, 3]));
    assert_eq!(parse_core_list(" 5 , 2-2 "), Ok(vec![5, 2]));
    assert!(parse_core_list("0-100000").is_err());
    assert!(parse_core_list("").is_err());
}
