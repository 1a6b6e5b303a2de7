//! The "file" layer: serde structs mirroring the TOML schema one to one, and the walk that
//! deserializes them while collecting every error.
//!
//! To report as many errors as possible, the document is parsed into a spanned tree first;
//! then each table (`[server]`, each `[[interface]]`, each `[[subnet]]` without its sub-tables,
//! each `[[subnet.pool]]`, …) is deserialized on its own. When serde refuses a table, the
//! offending key is located from the error span, the error is recorded, the key is dropped and
//! the table is tried again, so several bad keys in one table are all reported.

use core::ops::Range;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::error::Collector;
use crate::failover::FailoverItem;

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ServerFile {
    pub(crate) state_dir: Option<Spanned<String>>,
    pub(crate) preference: Option<Spanned<i64>>,
}

/// `[datapath]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct DatapathFile {
    pub(crate) mode: Option<Spanned<String>>,
    pub(crate) xdp_mode: Option<Spanned<String>>,
    pub(crate) busy_poll: Option<bool>,
    pub(crate) cores: Option<Spanned<String>>,
    pub(crate) queues: Option<Spanned<i64>>,
    pub(crate) shards: Option<Spanned<i64>>,
}

/// `[[interface]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct InterfaceFile {
    pub(crate) name: Spanned<String>,
}

/// `[[subnet]]` without its sub-tables (`pool`, `pd-pool`, `reservation`, `options`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct SubnetFile {
    // Required, but optional here so that a bad value elsewhere does not hide the other
    // checks of the subnet; validation reports the missing ones.
    pub(crate) prefix: Option<Spanned<String>>,
    pub(crate) interface: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) relay_link_addresses: Vec<Spanned<String>>,
    pub(crate) interface_id: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) rapid_commit: bool,
    #[serde(default)]
    pub(crate) rebind_creates_bindings: bool,
    pub(crate) preferred_lifetime: Option<Spanned<i64>>,
    pub(crate) valid_lifetime: Option<Spanned<i64>>,
    pub(crate) t1: Option<Spanned<i64>>,
    pub(crate) t2: Option<Spanned<i64>>,
}

/// `[[subnet.pool]]`: exactly one of `range`, `prefix`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct PoolFile {
    pub(crate) range: Option<Spanned<String>>,
    pub(crate) prefix: Option<Spanned<String>>,
}

/// `[[subnet.pd-pool]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct PdPoolFile {
    pub(crate) prefix: Spanned<String>,
    pub(crate) delegated_length: Spanned<i64>,
}

/// `[[subnet.reservation]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct ReservationFile {
    pub(crate) duid: Spanned<String>,
    pub(crate) address: Option<Spanned<String>>,
    pub(crate) prefix: Option<Spanned<String>>,
}

/// `[subnet.options]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(crate) struct OptionsFile {
    #[serde(default)]
    pub(crate) dns_servers: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) domain_search: Vec<Spanned<String>>,
    pub(crate) sol_max_rt: Option<Spanned<i64>>,
    pub(crate) inf_max_rt: Option<Spanned<i64>>,
    pub(crate) information_refresh_time: Option<Spanned<i64>>,
}

/// One table that may have failed to deserialize; `span` locates it for table-level errors.
#[derive(Debug)]
pub(crate) struct Item<T> {
    pub(crate) span: Range<usize>,
    pub(crate) value: Option<T>,
}

/// A `[[subnet]]` with its sub-tables.
#[derive(Debug)]
pub(crate) struct SubnetDoc {
    pub(crate) item: Item<SubnetFile>,
    /// Keys present in the file, so a key dropped for a bad value is not also "missing".
    pub(crate) keys: Vec<String>,
    pub(crate) pools: Vec<Item<PoolFile>>,
    pub(crate) pd_pools: Vec<Item<PdPoolFile>>,
    pub(crate) reservations: Vec<Item<ReservationFile>>,
    pub(crate) options: Option<OptionsFile>,
}

/// The whole file, deserialized as far as possible.
#[derive(Debug, Default)]
pub(crate) struct Document {
    pub(crate) server: Option<ServerFile>,
    pub(crate) datapath: Option<DatapathFile>,
    pub(crate) interfaces: Vec<Item<InterfaceFile>>,
    pub(crate) subnets: Vec<SubnetDoc>,
    pub(crate) failovers: Vec<FailoverItem>,
}

/// Parses `text`; `None` (with errors recorded) on a TOML syntax error.
pub(crate) fn parse(text: &str, errors: &mut Collector<'_>) -> Option<Document> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        for e in syntax {
            errors.push(e.span().unwrap_or(0..0), "", e.message().trim_end());
        }
        return None;
    }
    let mut doc = Document::default();
    for (key, value) in root.get_ref() {
        match key.get_ref().as_ref() {
            "server" => doc.server = deserialize(value, "server", errors),
            "datapath" => doc.datapath = deserialize(value, "datapath", errors),
            "interface" => {
                for (i, v) in elements(value, "interface", errors).iter().enumerate() {
                    let path = format!("interface[{i}]");
                    doc.interfaces.push(item(v, &path, errors));
                }
            }
            "subnet" => {
                for (i, v) in elements(value, "subnet", errors).iter().enumerate() {
                    doc.subnets.push(subnet(v, &format!("subnet[{i}]"), errors));
                }
            }
            "failover" => {
                for (i, v) in elements(value, "failover", errors).iter().enumerate() {
                    let keys = match v.get_ref() {
                        DeValue::Table(t) => {
                            t.iter().map(|(k, _)| k.get_ref().to_string()).collect()
                        }
                        _ => Vec::new(),
                    };
                    doc.failovers.push(FailoverItem {
                        span: v.span(),
                        value: deserialize(v, &format!("failover[{i}]"), errors),
                        keys,
                    });
                }
            }
            other => errors.push(
                key.span(),
                other,
                "unknown key, expected one of `server`, `datapath`, `interface`, `subnet`, \
                 `failover`",
            ),
        }
    }
    Some(doc)
}

/// The elements of an array of tables (`[[name]]` or `name = [{…}]`).
fn elements<'i>(
    value: &Spanned<DeValue<'i>>,
    path: &str,
    errors: &mut Collector<'_>,
) -> Vec<Spanned<DeValue<'i>>> {
    match value.get_ref() {
        DeValue::Array(items) => items.iter().cloned().collect(),
        other => {
            let msg = format!(
                "expected an array of tables `[[{path}]]`, found {}",
                other.type_str()
            );
            errors.push(value.span(), path, msg);
            Vec::new()
        }
    }
}

fn item<T: DeserializeOwned>(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    errors: &mut Collector<'_>,
) -> Item<T> {
    Item {
        span: value.span(),
        value: deserialize(value, path, errors),
    }
}

/// Splits the sub-tables off a `[[subnet]]` and deserializes every part on its own.
fn subnet(value: &Spanned<DeValue<'_>>, path: &str, errors: &mut Collector<'_>) -> SubnetDoc {
    let mut doc = SubnetDoc {
        item: Item {
            span: value.span(),
            value: None,
        },
        keys: Vec::new(),
        pools: Vec::new(),
        pd_pools: Vec::new(),
        reservations: Vec::new(),
        options: None,
    };
    let DeValue::Table(table) = value.get_ref() else {
        doc.item.value = deserialize(value, path, errors);
        return doc;
    };
    let mut rest = DeTable::new();
    for (key, v) in table {
        doc.keys.push(key.get_ref().to_string());
        let sub = |name: &str| format!("{path}.{name}");
        match key.get_ref().as_ref() {
            "pool" => {
                for (i, e) in elements(v, &sub("pool"), errors).iter().enumerate() {
                    doc.pools
                        .push(item(e, &format!("{path}.pool[{i}]"), errors));
                }
            }
            "pd-pool" => {
                for (i, e) in elements(v, &sub("pd-pool"), errors).iter().enumerate() {
                    doc.pd_pools
                        .push(item(e, &format!("{path}.pd-pool[{i}]"), errors));
                }
            }
            "reservation" => {
                for (i, e) in elements(v, &sub("reservation"), errors).iter().enumerate() {
                    doc.reservations
                        .push(item(e, &format!("{path}.reservation[{i}]"), errors));
                }
            }
            "options" => doc.options = deserialize(v, &sub("options"), errors),
            _ => {
                rest.insert(key.clone(), v.clone());
            }
        }
    }
    let rest = Spanned::new(value.span(), DeValue::Table(rest));
    doc.item.value = deserialize(&rest, path, errors);
    doc
}

/// Deserializes one table, recording every bad key (see the module docs).
fn deserialize<T: DeserializeOwned>(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    errors: &mut Collector<'_>,
) -> Option<T> {
    let span = value.span();
    let DeValue::Table(table) = value.get_ref() else {
        return match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(v) => Some(v),
            Err(e) => {
                errors.push(e.span().unwrap_or(span), path, e.message().trim_end());
                None
            }
        };
    };
    let mut table = table.clone();
    let mut removed: Vec<String> = Vec::new();
    loop {
        let attempt = Spanned::new(span.clone(), DeValue::Table(table.clone()));
        let err = match T::deserialize(ValueDeserializer::from(attempt)) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let message = err.message().trim_end();
        if let Some(name) = missing_field(message) {
            // A key removed for a bad value is missing now; that was reported already.
            if !removed.iter().any(|r| r == name) {
                errors.push(
                    span.start..span.start,
                    &join(path, name),
                    "missing required field",
                );
            }
            return None;
        }
        let err_span = err.span().unwrap_or(span.clone());
        let hit = table
            .iter()
            .find(|(k, v)| within(&k.span(), err_span.start) || within(&v.span(), err_span.start))
            .map(|(k, _)| k.clone());
        let Some(key) = hit else {
            errors.push(err_span, path, message);
            return None;
        };
        let name: &str = key.get_ref().as_ref();
        errors.push(err_span, &join(path, name), message);
        removed.push(name.to_owned());
        table = table.into_iter().filter(|(k, _)| *k != key).collect();
    }
}

fn within(span: &Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// The field name of serde's "missing field `x`" message.
fn missing_field(message: &str) -> Option<&str> {
    message.strip_prefix("missing field `")?.strip_suffix('`')
}
