//! File layer → [`Config`]: value checks and cross-checks, collecting every error.

use core::ops::{Range, RangeInclusive};
use std::collections::HashMap;
use std::net::Ipv6Addr;
use std::path::PathBuf;

use toml::Spanned;

use crate::DEFAULT_STATE_DIR;
use crate::error::{Collector, ConfigErrors};
use crate::file::{self, DatapathFile, Document, PdPoolFile, PoolFile, ReservationFile, SubnetDoc};
use crate::model::{
    AddressPool, Config, Datapath, DatapathMode, INFINITY, MAX_FINITE_LIFETIME, MAX_QUEUES,
    MAX_SHARDS, PdPool, Reservation, Server, Subnet, SubnetOptions, XdpMode, parse_core_list,
};
use crate::prefix::Ipv6Prefix;

/// A span of addresses claimed by some field, for the overlap sweeps.
struct Claim {
    first: u128,
    last: u128,
    span: Range<usize>,
    field: String,
    label: String,
}

pub(crate) fn config(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
    let mut errors = Collector::new(text, file_name);
    let config = file::parse(text, &mut errors).map(|doc| build(doc, &mut errors));
    let errors = errors.finish();
    match config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => Err(ConfigErrors(errors)),
    }
}

fn build(doc: Document, errors: &mut Collector<'_>) -> Config {
    let Document {
        server,
        datapath,
        interfaces,
        subnets,
        failovers,
    } = doc;
    let datapath = datapath
        .map(|d| build_datapath(&d, errors))
        .unwrap_or_default();
    let server = server.unwrap_or_default();
    let mut state_dir = PathBuf::from(DEFAULT_STATE_DIR);
    if let Some(dir) = server.state_dir {
        if dir.get_ref().starts_with('/') {
            state_dir = PathBuf::from(dir.get_ref());
        } else {
            errors.push(dir.span(), "server.state-dir", "must be an absolute path");
        }
    }
    let preference = server
        .preference
        .and_then(|p| int(&p, 0..=255, "server.preference", "(RFC 8415 §21.8)", errors))
        .and_then(|p| u8::try_from(p).ok())
        .unwrap_or(0);

    let mut names: Vec<String> = Vec::new();
    for (i, iface) in interfaces.iter().enumerate() {
        let Some(file) = &iface.value else { continue };
        let field = format!("interface[{i}].name");
        let name = file.name.get_ref();
        if let Err(msg) = check_interface_name(name) {
            errors.push(file.name.span(), &field, msg);
        } else if let Some(k) = names.iter().position(|n| n == name) {
            errors.push(
                file.name.span(),
                &field,
                format!("declared twice (see interface[{k}])"),
            );
        }
        names.push(name.clone());
    }

    let mut ctx = Cross::default();
    let mut out = Vec::new();
    for (i, doc) in subnets.into_iter().enumerate() {
        if let Some(subnet) = subnet(doc, &format!("subnet[{i}]"), &names, &mut ctx, errors) {
            out.push(subnet);
        }
    }
    sweep(ctx.prefixes, errors);
    sweep(ctx.pools, errors);
    sweep(ctx.pd_pools, errors);
    let failover = crate::failover::build(failovers, &out, errors);
    Config {
        server: Server {
            state_dir,
            preference,
        },
        datapath,
        interfaces: names,
        subnets: out,
        failover,
    }
}

/// `[datapath]`: every key checked, defaults for the rest.
fn build_datapath(file: &DatapathFile, errors: &mut Collector<'_>) -> Datapath {
    let mut d = Datapath::default();
    if let Some(m) = &file.mode {
        match DatapathMode::parse(m.get_ref()) {
            Some(mode) => d.mode = mode,
            None => errors.push(
                m.span(),
                "datapath.mode",
                format!("unknown mode `{}`, expected `socket` or `xdp`", m.get_ref()),
            ),
        }
    }
    if let Some(m) = &file.xdp_mode {
        match XdpMode::parse(m.get_ref()) {
            Some(mode) => d.xdp_mode = mode,
            None => errors.push(
                m.span(),
                "datapath.xdp-mode",
                format!(
                    "unknown XDP mode `{}`, expected `auto`, `native` or `generic`",
                    m.get_ref()
                ),
            ),
        }
    }
    d.busy_poll = file.busy_poll.unwrap_or(false);
    if let Some(c) = &file.cores {
        match parse_core_list(c.get_ref()) {
            Ok(list) => d.cores = Some(list),
            Err(msg) => errors.push(c.span(), "datapath.cores", msg),
        }
    }
    let count = |v: &Option<Spanned<i64>>, max: u32, field: &str, why: &str, errors: &mut _| {
        v.as_ref()
            .and_then(|v| int(v, 0..=i64::from(max), field, why, errors))
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(0)
    };
    d.queues = count(
        &file.queues,
        MAX_QUEUES,
        "datapath.queues",
        "(the XDP program steers at most 64 queues)",
        errors,
    );
    d.shards = count(&file.shards, MAX_SHARDS, "datapath.shards", "", errors);
    d
}

/// Claims gathered across subnets.
#[derive(Default)]
struct Cross {
    prefixes: Vec<Claim>,
    pools: Vec<Claim>,
    pd_pools: Vec<Claim>,
    /// First user of each interface / Interface-Id / relay link-address.
    selectors: HashMap<String, String>,
}

impl Cross {
    fn select(&mut self, key: String, field: &str, span: Range<usize>, errors: &mut Collector<'_>) {
        if let Some(prev) = self.selectors.get(&key) {
            errors.push(
                span,
                field,
                format!("already selects {prev}; a subnet selector must be unique"),
            );
        } else {
            let owner = field.split('.').next().unwrap_or(field).to_owned();
            self.selectors.insert(key, owner);
        }
    }
}

fn subnet(
    doc: SubnetDoc,
    path: &str,
    interfaces: &[String],
    cross: &mut Cross,
    errors: &mut Collector<'_>,
) -> Option<Subnet> {
    let SubnetDoc {
        item,
        keys,
        pools,
        pd_pools,
        reservations,
        options,
    } = doc;
    let f = |name: &str| format!("{path}.{name}");
    let file = item.value;
    let prefix_file = file.as_ref().and_then(|s| s.prefix.as_ref());
    if file.is_some() && prefix_file.is_none() && !keys.iter().any(|k| k == "prefix") {
        errors.push(
            item.span.start..item.span.start,
            &f("prefix"),
            "missing required field",
        );
    }
    let prefix = prefix_file.and_then(|s| prefix(s, &f("prefix"), errors));
    if let (Some(p), Some(s)) = (prefix, prefix_file) {
        cross.prefixes.push(claim(p, s.span(), f("prefix")));
    }

    let pools: Vec<AddressPool> = pools
        .iter()
        .enumerate()
        .filter_map(|(j, p)| {
            pool(
                p.value.as_ref()?,
                &p.span,
                &format!("{path}.pool[{j}]"),
                prefix,
                cross,
                errors,
            )
        })
        .collect();
    let pd_pools: Vec<PdPool> = pd_pools
        .iter()
        .enumerate()
        .filter_map(|(j, p)| {
            pd_pool(
                p.value.as_ref()?,
                &format!("{path}.pd-pool[{j}]"),
                cross,
                errors,
            )
        })
        .collect();
    let mut reserved: Vec<Reservation> = Vec::new();
    let mut duids: HashMap<Vec<u8>, usize> = HashMap::new();
    let mut addresses: HashMap<Ipv6Addr, usize> = HashMap::new();
    for (j, r) in reservations.iter().enumerate() {
        let Some(file) = &r.value else { continue };
        let rpath = format!("{path}.reservation[{j}]");
        if let Some(res) = reservation(file, &r.span, &rpath, prefix, errors) {
            if let Some(k) = duids.get(&res.duid) {
                errors.push(
                    file.duid.span(),
                    &format!("{rpath}.duid"),
                    format!("DUID already reserved by {path}.reservation[{k}]"),
                );
            } else {
                duids.insert(res.duid.clone(), j);
            }
            // A reserved prefix inside a PD pool must be one of the pool's delegated prefixes
            // (same length, aligned), or the pool could delegate part of it to another client.
            if let (Some(p), Some(span)) = (res.prefix, file.prefix.as_ref().map(Spanned::span)) {
                let overlaps = |q: &Ipv6Prefix| p.first() <= q.last() && q.first() <= p.last();
                for (k, pool) in pd_pools.iter().enumerate() {
                    let exact =
                        pool.prefix.contains(p.addr()) && p.prefix_len() == pool.delegated_len;
                    if overlaps(&pool.prefix) && !exact {
                        errors.push(
                            span.clone(),
                            &format!("{rpath}.prefix"),
                            format!(
                                "{p} overlaps {path}.pd-pool[{k}] ({}, delegating /{}) without \
                                 being one of its delegated prefixes: the pool could delegate \
                                 part of it to another client",
                                pool.prefix, pool.delegated_len
                            ),
                        );
                    }
                }
            }
            if let (Some(a), Some(span)) = (res.address, file.address.as_ref().map(Spanned::span)) {
                if let Some(k) = addresses.get(&a) {
                    errors.push(
                        span,
                        &format!("{rpath}.address"),
                        format!("address {a} already reserved by {path}.reservation[{k}]"),
                    );
                } else {
                    addresses.insert(a, j);
                }
            }
            reserved.push(res);
        }
    }
    let options = options
        .map(|o| subnet_options(o, &f("options"), errors))
        .unwrap_or_default();

    let file = file?;
    if let Some(name) = &file.interface {
        if interfaces.iter().any(|i| i == name.get_ref()) {
            cross.select(
                format!("interface {}", name.get_ref()),
                &f("interface"),
                name.span(),
                errors,
            );
        } else {
            errors.push(
                name.span(),
                &f("interface"),
                format!(
                    "interface `{}` is not declared in [[interface]]",
                    name.get_ref()
                ),
            );
        }
    }
    let mut relay_link_addresses = Vec::new();
    for (j, a) in file.relay_link_addresses.iter().enumerate() {
        let field = format!("{path}.relay-link-addresses[{j}]");
        if let Some(addr) = address(a, &field, errors) {
            cross.select(format!("link-address {addr}"), &field, a.span(), errors);
            relay_link_addresses.push(addr);
        }
    }
    let interface_id = match &file.interface_id {
        Some(id) if id.get_ref().is_empty() => {
            errors.push(id.span(), &f("interface-id"), "must not be empty");
            None
        }
        Some(id) => {
            cross.select(
                format!("interface-id {:?}", id.get_ref()),
                &f("interface-id"),
                id.span(),
                errors,
            );
            Some(id.get_ref().as_bytes().to_vec())
        }
        None => None,
    };

    // RFC 8415 §7.7: 0xffffffff is infinity; any other value must fit the RFC 8156 §3 time
    // arithmetic (MAX_FINITE_LIFETIME), or an expiry `now + lifetime` would wrap and the lease
    // would be born expired (free for a second client).
    let lifetime = |v: &Spanned<i64>, name: &str, errors: &mut Collector<'_>| {
        let x = int(v, 0..=i64::from(u32::MAX), &f(name), "", errors)?;
        let x = u32::try_from(x).ok()?;
        if x != INFINITY && x > MAX_FINITE_LIFETIME {
            errors.push(
                v.span(),
                &f(name),
                format!(
                    "{x} s is neither infinity ({INFINITY}) nor at most {MAX_FINITE_LIFETIME} s \
                     (34 years): longer finite lifetimes wrap in the failover time arithmetic \
                     (RFC 8156 §3)"
                ),
            );
            return None;
        }
        Some(x)
    };
    let (Some(preferred_file), Some(valid_file)) = (&file.preferred_lifetime, &file.valid_lifetime)
    else {
        required_int(
            file.preferred_lifetime.as_ref(),
            &f("preferred-lifetime"),
            &item.span,
            &keys,
            errors,
        );
        required_int(
            file.valid_lifetime.as_ref(),
            &f("valid-lifetime"),
            &item.span,
            &keys,
            errors,
        );
        return None;
    };
    let preferred = lifetime(preferred_file, "preferred-lifetime", errors);
    let valid = lifetime(valid_file, "valid-lifetime", errors);
    let t1 = file
        .t1
        .as_ref()
        .map(|t| (lifetime(t, "t1", errors), t.span()));
    let t2 = file
        .t2
        .as_ref()
        .map(|t| (lifetime(t, "t2", errors), t.span()));
    if valid == Some(0) {
        errors.push(
            valid_file.span(),
            &f("valid-lifetime"),
            "must be greater than 0",
        );
    }
    if let (Some(p), Some(v)) = (preferred, valid)
        && p > v
    {
        errors.push(
            preferred_file.span(),
            &f("preferred-lifetime"),
            format!("{p} is greater than valid-lifetime {v} (RFC 8415 §21.6)"),
        );
    }
    let preferred = preferred?;
    let valid = valid?;
    let (default_t1, default_t2) = if preferred == INFINITY {
        (INFINITY, INFINITY)
    } else {
        // RFC 8415 §21.4: 0.5 and 0.8 times the shortest preferred lifetime.
        let p = u64::from(preferred);
        (u32::try_from(p / 2).ok()?, u32::try_from(p * 4 / 5).ok()?)
    };
    let t1_value = match &t1 {
        Some((v, _)) => (*v)?,
        None => default_t1,
    };
    let t2_value = match &t2 {
        Some((v, _)) => (*v)?,
        None => default_t2,
    };
    if t1_value > t2_value {
        let (field, span) = match (&t1, &t2) {
            (Some((_, s)), _) => (f("t1"), s.clone()),
            (None, Some((_, s))) => (f("t2"), s.clone()),
            (None, None) => (f("t1"), item.span.clone()),
        };
        errors.push(
            span,
            &field,
            format!("t1 {t1_value} is greater than t2 {t2_value} (RFC 8415 §21.4)"),
        );
    }
    if let Some((_, span)) = &t2
        && t2_value > preferred
    {
        errors.push(
            span.clone(),
            &f("t2"),
            format!("{t2_value} is greater than preferred-lifetime {preferred} (RFC 8415 §21.4)"),
        );
    }

    Some(Subnet {
        prefix: prefix?,
        interface: file.interface.map(Spanned::into_inner),
        relay_link_addresses,
        interface_id,
        rapid_commit: file.rapid_commit,
        rebind_creates_bindings: file.rebind_creates_bindings,
        preferred_lifetime: preferred,
        valid_lifetime: valid,
        t1: t1_value,
        t2: t2_value,
        pools,
        pd_pools,
        reservations: reserved,
        options,
    })
}

fn pool(
    file: &PoolFile,
    span: &Range<usize>,
    path: &str,
    subnet: Option<Ipv6Prefix>,
    cross: &mut Cross,
    errors: &mut Collector<'_>,
) -> Option<AddressPool> {
    let (pool, value_span, field) = match (&file.range, &file.prefix) {
        (Some(range), None) => {
            let field = format!("{path}.range");
            let Some((a, b)) = range.get_ref().split_once('-') else {
                errors.push(
                    range.span(),
                    &field,
                    "expected `first-last`, two IPv6 addresses",
                );
                return None;
            };
            let first = parse_addr(a.trim(), range.span(), &field, errors);
            let last = parse_addr(b.trim(), range.span(), &field, errors);
            let (first, last) = (first?, last?);
            if first > last {
                errors.push(
                    range.span(),
                    &field,
                    format!("range start {first} is greater than end {last}"),
                );
                return None;
            }
            (AddressPool { first, last }, range.span(), field)
        }
        (None, Some(p)) => {
            let field = format!("{path}.prefix");
            let p6 = prefix(p, &field, errors)?;
            (
                AddressPool {
                    first: p6.first(),
                    last: p6.last(),
                },
                p.span(),
                field,
            )
        }
        _ => {
            errors.push(
                span.clone(),
                path,
                "needs exactly one of `range` or `prefix`",
            );
            return None;
        }
    };
    if let Some(net) = subnet
        && !(net.contains(pool.first) && net.contains(pool.last))
    {
        errors.push(
            value_span.clone(),
            &field,
            format!(
                "pool {}-{} is outside the subnet prefix {net}",
                pool.first, pool.last
            ),
        );
    }
    cross.pools.push(Claim {
        first: u128::from(pool.first),
        last: u128::from(pool.last),
        span: value_span,
        label: format!("pool {}-{}", pool.first, pool.last),
        field,
    });
    Some(pool)
}

fn pd_pool(
    file: &PdPoolFile,
    path: &str,
    cross: &mut Cross,
    errors: &mut Collector<'_>,
) -> Option<PdPool> {
    let field = format!("{path}.prefix");
    let p = prefix(&file.prefix, &field, errors);
    let len_field = format!("{path}.delegated-length");
    let d = int(&file.delegated_length, 1..=128, &len_field, "", errors);
    let (p, d) = (p?, u8::try_from(d?).ok()?);
    if d < p.prefix_len() {
        errors.push(
            file.delegated_length.span(),
            &len_field,
            format!(
                "{d} is shorter than the pool prefix length {}",
                p.prefix_len()
            ),
        );
        return None;
    }
    cross.pd_pools.push(claim(p, file.prefix.span(), field));
    Some(PdPool {
        prefix: p,
        delegated_len: d,
    })
}

fn reservation(
    file: &ReservationFile,
    span: &Range<usize>,
    path: &str,
    subnet: Option<Ipv6Prefix>,
    errors: &mut Collector<'_>,
) -> Option<Reservation> {
    let duid_field = format!("{path}.duid");
    let duid = match parse_duid(file.duid.get_ref()) {
        Ok(d) => Some(d),
        Err(msg) => {
            errors.push(file.duid.span(), &duid_field, msg);
            None
        }
    };
    let addr_field = format!("{path}.address");
    let address = file
        .address
        .as_ref()
        .map(|a| (address(a, &addr_field, errors), a.span()));
    if let (Some((Some(a), span)), Some(net)) = (&address, subnet)
        && !net.contains(*a)
    {
        errors.push(
            span.clone(),
            &addr_field,
            format!("address {a} is outside the subnet prefix {net}"),
        );
    }
    let res_prefix = file
        .prefix
        .as_ref()
        .map(|p| prefix(p, &format!("{path}.prefix"), errors));
    if address.is_none() && res_prefix.is_none() {
        errors.push(span.clone(), path, "needs `address` and/or `prefix`");
        return None;
    }
    let address = match address {
        Some((a, _)) => Some(a?),
        None => None,
    };
    let prefix = match res_prefix {
        Some(p) => Some(p?),
        None => None,
    };
    Some(Reservation {
        duid: duid?,
        address,
        prefix,
    })
}

fn subnet_options(
    file: file::OptionsFile,
    path: &str,
    errors: &mut Collector<'_>,
) -> SubnetOptions {
    let f = |name: &str| format!("{path}.{name}");
    let dns_servers = file
        .dns_servers
        .iter()
        .enumerate()
        .filter_map(|(i, a)| address(a, &format!("{path}.dns-servers[{i}]"), errors))
        .collect();
    let mut domain_search = Vec::new();
    for (i, name) in file.domain_search.iter().enumerate() {
        match check_domain(name.get_ref()) {
            Ok(n) => domain_search.push(n),
            Err(msg) => errors.push(name.span(), &format!("{path}.domain-search[{i}]"), msg),
        }
    }
    let mut bounded =
        |v: &Option<Spanned<i64>>, name: &str, range: RangeInclusive<i64>, rfc: &str| {
            v.as_ref()
                .and_then(|v| int(v, range, &f(name), rfc, errors))
                .and_then(|v| u32::try_from(v).ok())
        };
    SubnetOptions {
        dns_servers,
        domain_search,
        sol_max_rt: bounded(
            &file.sol_max_rt,
            "sol-max-rt",
            60..=86400,
            "(RFC 8415 §21.24)",
        ),
        inf_max_rt: bounded(
            &file.inf_max_rt,
            "inf-max-rt",
            60..=86400,
            "(RFC 8415 §21.25)",
        ),
        information_refresh_time: bounded(
            &file.information_refresh_time,
            "information-refresh-time",
            600..=i64::from(u32::MAX),
            "(RFC 8415 §21.23)",
        ),
    }
}

/// Reports, for each claim, the first earlier-starting claim it overlaps.
fn sweep(mut claims: Vec<Claim>, errors: &mut Collector<'_>) {
    claims.sort_by_key(|c| (c.first, c.last));
    let mut widest: Option<&Claim> = None;
    for c in &claims {
        if let Some(w) = widest {
            if c.first <= w.last {
                // Report on whichever comes later in the file, naming the earlier one.
                let (c, w) = if c.span.start >= w.span.start {
                    (c, w)
                } else {
                    (w, c)
                };
                errors.push(
                    c.span.clone(),
                    &c.field,
                    format!("{} overlaps {} ({})", c.label, w.field, w.label),
                );
            }
            if c.last <= w.last {
                continue;
            }
        }
        widest = Some(c);
    }
}

fn required_int(
    v: Option<&Spanned<i64>>,
    field: &str,
    table: &Range<usize>,
    keys: &[String],
    errors: &mut Collector<'_>,
) {
    let name = field.rsplit('.').next().unwrap_or(field);
    if v.is_none() && !keys.iter().any(|k| k == name) {
        errors.push(table.start..table.start, field, "missing required field");
    }
}

fn claim(p: Ipv6Prefix, span: Range<usize>, field: String) -> Claim {
    Claim {
        first: u128::from(p.first()),
        last: u128::from(p.last()),
        span,
        field,
        label: p.to_string(),
    }
}

fn int(
    v: &Spanned<i64>,
    range: RangeInclusive<i64>,
    field: &str,
    rfc: &str,
    errors: &mut Collector<'_>,
) -> Option<i64> {
    let x = *v.get_ref();
    if range.contains(&x) {
        Some(x)
    } else {
        let msg = format!(
            "{x} is out of range {}..={} {rfc}",
            range.start(),
            range.end()
        );
        errors.push(v.span(), field, msg.trim_end());
        None
    }
}

fn prefix(v: &Spanned<String>, field: &str, errors: &mut Collector<'_>) -> Option<Ipv6Prefix> {
    v.get_ref()
        .parse()
        .map_err(|e| errors.push(v.span(), field, format!("{e}")))
        .ok()
}

fn address(v: &Spanned<String>, field: &str, errors: &mut Collector<'_>) -> Option<Ipv6Addr> {
    parse_addr(v.get_ref(), v.span(), field, errors)
}

fn parse_addr(
    s: &str,
    span: Range<usize>,
    field: &str,
    errors: &mut Collector<'_>,
) -> Option<Ipv6Addr> {
    s.parse()
        .map_err(|_| errors.push(span, field, format!("`{s}` is not a valid IPv6 address")))
        .ok()
}

/// Linux interface names: 1..=15 bytes (IFNAMSIZ − 1), no `/`, no whitespace.
fn check_interface_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!(
            "interface name must be 1..=15 bytes, `{name}` is {}",
            name.len()
        ));
    }
    if name
        .chars()
        .any(|c| c == '/' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "interface name `{name}` contains `/`, a space or a control character"
        ));
    }
    Ok(())
}

/// A DUID as hex, either `00:03:00:01:…` (one or two digits per byte) or `00030001…`;
/// 3..=130 bytes (2-byte type + 1..=128 bytes, RFC 8415 §11.1).
fn parse_duid(s: &str) -> Result<Vec<u8>, String> {
    let bad = || format!("`{s}` is not a hex DUID (`00:03:00:01:…` or `00030001…`)");
    let bytes = if s.contains(':') {
        s.split(':')
            .map(|part| {
                if (1..=2).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_hexdigit()) {
                    u8::from_str_radix(part, 16).map_err(|_| bad())
                } else {
                    Err(bad())
                }
            })
            .collect::<Result<Vec<u8>, String>>()?
    } else {
        if s.is_empty() || !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        (0..s.len() / 2)
            .map(|i| {
                s.get(2 * i..2 * i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(bad)
            })
            .collect::<Result<Vec<u8>, String>>()?
    };
    if !(3..=130).contains(&bytes.len()) {
        return Err(format!(
            "DUID is {} bytes; RFC 8415 §11.1 allows 3..=130",
            bytes.len()
        ));
    }
    Ok(bytes)
}

/// A search-list domain name (RFC 1035 §2.3.1/§2.3.4: labels 1..=63 bytes of letters, digits,
/// `-` or `_`; at most 255 bytes in wire form). Returns it without a trailing dot.
fn check_domain(name: &str) -> Result<String, String> {
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() {
        return Err("empty domain name".to_owned());
    }
    let mut wire_len = 1usize;
    for label in trimmed.split('.') {
        if label.is_empty() {
            return Err(format!("`{name}` has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!(
                "label `{label}` is {} bytes long (max 63, RFC 1035 §2.3.4)",
                label.len()
            ));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(format!("`{name}` contains the invalid character {c:?}"));
        }
        wire_len += 1 + label.len();
    }
    if wire_len > 255 {
        return Err(format!(
            "name is {wire_len} bytes in wire form (max 255, RFC 1035 §2.3.4)"
        ));
    }
    Ok(trimmed.to_owned())
}
