//! Tandem's configuration: the TOML file a DHCPv6 server (RFC 8415) runs from.
//!
//! Two layers, as in dora: serde structs mirroring the file (private, in `file`), then a
//! validated [`Config`] of plain types with defaults resolved and every cross-check done
//! (pools inside their subnet, no overlaps, T1 ≤ T2 ≤ preferred ≤ valid, …).
//! [`Config::from_str`] reports *all* problems it finds, each as `file:line:column: field:
//! message`. The reference configuration, with every key documented, is
//! `userspace/config/examples/tandem.toml`.
//!
//! This crate is pure (layer 1): no sockets, threads or clock. [`load`] is a convenience that
//! reads a file and calls [`Config::from_str`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod error;
mod failover;
mod file;
mod model;
mod prefix;
mod validate;

pub use error::{ConfigError, ConfigErrors};
pub use failover::{
    DEFAULT_CONNECT_RETRY, DEFAULT_FAILOVER_PORT, DEFAULT_HEARTBEAT, DEFAULT_KEEPALIVE,
    DEFAULT_MAX_UNACKED_BNDUPD, DEFAULT_MCLT, DEFAULT_PREFIX_SHARE, DEFAULT_PREFIX_SHARE_MAX,
    DEFAULT_STARTUP_TIME, Failover, FailoverRole, FailoverSecurity, MIN_MCLT, TlsFiles,
};
pub use model::{
    AddressPool, Config, Datapath, DatapathMode, INFINITY, MAX_FINITE_LIFETIME, MAX_QUEUES,
    MAX_SHARDS, PdPool, Reservation, Server, Subnet, SubnetOptions, XdpMode, parse_core_list,
};
pub use prefix::{Ipv6Prefix, PrefixError};

/// Default `[server] state-dir`.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/tandem";

impl Config {
    /// Parses and validates a configuration. `file_name` only labels the errors.
    ///
    /// # Errors
    /// Every problem found (syntax, unknown keys, wrong types, bad values, cross-checks),
    /// sorted by position. A TOML syntax error stops the check after the syntax pass.
    pub fn from_str(text: &str, file_name: &str) -> Result<Self, ConfigErrors> {
        validate::config(text, file_name)
    }
}
