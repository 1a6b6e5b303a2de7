//! The configuration of one failover endpoint (RFC 8156 §6.2: one relationship, one role).

use alloc::string::String;
use core::fmt;

use tandem_wire::failover::option::ConnectFlags;

/// This server's role in the relationship (RFC 8156 §3, §6.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Connects to the secondary and sends CONNECT (§6.1); responsive in NORMAL (§8.8.1);
    /// allocates odd addresses (§4.2.1.1) and FREE prefixes (§4.2.2).
    Primary,
    /// Listens and answers CONNECT with CONNECTREPLY (§6.1.2); renew responsive in NORMAL;
    /// allocates even addresses and FREE-BACKUP prefixes.
    Secondary,
}

/// FO_KEEPALIVE_TIME default (RFC 8156 §6.5): 60 s.
pub const DEFAULT_KEEPALIVE_SECS: u32 = 60;
/// FO_CONTACT_PER_KEEPALIVE_TIME (RFC 8156 §6.5): 4 CONTACTs per partner keepalive period.
pub const CONTACT_PER_KEEPALIVE_TIME: u32 = 4;
/// The shortest MCLT accepted: RFC 8156 §1 forbids failover for new leases shorter than 30 s,
/// and a new lease gets at most the MCLT (§4.4).
pub const MIN_MCLT_SECS: u32 = 30;
/// Smallest keepalive-time accepted in our configuration: the partner sends a CONTACT every
/// keepalive / 4 seconds (§6.5), which should be at least one second.
pub const MIN_KEEPALIVE_SECS: u32 = 4;

/// The configuration of one failover endpoint. Build with [`Config::new`] and adjust the public
/// fields; [`Config::validate`] checks the ranges (the endpoint refuses an invalid one).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Primary or secondary.
    pub role: Role,
    /// OPTION_F_RELATIONSHIP_NAME (§5.5.14, §6.1.1). The primary always sends it; the secondary
    /// refuses a CONNECT naming another relationship (ConfigurationConflict, docs/failover.md
    /// D10). Non-empty UTF-8.
    pub relationship_name: String,
    /// The configured MCLT in seconds (§4.4, §5.5.6), at least [`MIN_MCLT_SECS`]. The
    /// secondary uses the primary's from CONNECT once it has one (§6.1.2) and remembers it
    /// durably ([`crate::Persisted::mclt`]).
    pub mclt: u32,
    /// Our FO_KEEPALIVE_TIME (§6.5): if nothing arrives from the partner for this many seconds
    /// the connection is dead (§6.6). Sent in CONNECT / CONNECTREPLY.
    pub keepalive: u32,
    /// OPTION_F_MAX_UNACKED_BNDUPD we announce (§5.5.5): how many BNDUPDs we accept
    /// unacknowledged. At least 1.
    pub max_unacked_bndupd: u32,
    /// OPTION_F_CONNECT_FLAGS FIXED_PD_LENGTH (§5.5.2): `true` announces that every prefix
    /// delegated from one delegable prefix has one length; it also means we cannot process a
    /// partner that delegates several lengths from one delegable prefix, so a partner without
    /// the flag is refused (§6.1.2, §6.1.3; docs/failover.md D10).
    pub fixed_pd_length: bool,
    /// How long STARTUP lasts without communications (§8.3.2 step 3), in seconds. "Short, but
    /// long enough for a TCP connection to a heavily loaded partner across a slow network":
    /// it must exceed the driver's connect-retry period plus the CONNECT exchange.
    pub startup_secs: u32,
    /// Auto-partner-down (§3, §8.9, §8.9.2): `Some(secs)` moves COMMUNICATIONS-INTERRUPTED to
    /// PARTNER-DOWN after that long. Off by default: the RFC requires that the partner is
    /// not operating when a server is in PARTNER-DOWN (§8.4), which only an operator knows.
    pub auto_partner_down: Option<u32>,
    /// §8.3.2 step 1: "a server SHOULD be configurable in such a way as to move directly
    /// into PARTNER-DOWN state after the startup period expires if it has been unable to
    /// contact its partner" — for a server commissioned into failover while its partner is not
    /// available. Applies only on a first start (no persisted state); off by default
    /// (docs/failover.md D8).
    pub first_start_partner_down: bool,
    /// How far ahead a persisted record vouches that the server may still be operating, in
    /// seconds: every record carries `operating_until = now + heartbeat`, and a fresh one is
    /// asked for every `heartbeat / 2`. After a crash this is the TIME-OF-FAILURE of §8.3.2
    /// step 1 ("a time beyond which the server could not have been operating"). At least 2.
    pub heartbeat: u32,
    /// How long RECOVER and POTENTIAL-CONFLICT wait for the UPDDONE answering our UPDREQ /
    /// UPDREQALL while no BNDUPD arrives before dropping the connection (§8.5.2 "SHOULD be
    /// dropped"), in seconds.
    pub update_timeout: u32,
}

impl Config {
    /// A configuration with the RFC's defaults: MCLT 3600 s (the §4.4.1 example), keepalive
    /// 60 s (§6.5), 64 unacked BNDUPDs, FIXED_PD_LENGTH set, STARTUP 30 s, auto-partner-down
    /// off, no partner-down on first start, heartbeat 60 s, update timeout 300 s (RFC 5460
    /// §5.6's BULK_LQ_DATA_TIMEOUT).
    pub fn new(role: Role, relationship_name: impl Into<String>) -> Self {
        Self {
            role,
            relationship_name: relationship_name.into(),
            mclt: 3600,
            keepalive: DEFAULT_KEEPALIVE_SECS,
            max_unacked_bndupd: 64,
            fixed_pd_length: true,
            startup_secs: 30,
            auto_partner_down: None,
            first_start_partner_down: false,
            heartbeat: 60,
            update_timeout: 300,
        }
    }

    /// Checks every range documented on the fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.relationship_name.is_empty() || self.relationship_name.len() > 255 {
            return Err(ConfigError("relationship name must be 1 to 255 bytes"));
        }
        if self.mclt < MIN_MCLT_SECS {
            return Err(ConfigError("MCLT must be at least 30 s (RFC 8156 §1)"));
        }
        if self.keepalive < MIN_KEEPALIVE_SECS {
            return Err(ConfigError(
                "keepalive must be at least 4 s (RFC 8156 §6.5)",
            ));
        }
        if self.max_unacked_bndupd == 0 {
            return Err(ConfigError("max-unacked-bndupd must be at least 1"));
        }
        if self.startup_secs == 0 {
            return Err(ConfigError("the STARTUP time must be at least 1 s"));
        }
        if self.auto_partner_down == Some(0) {
            return Err(ConfigError(
                "auto-partner-down must be at least 1 s (or off)",
            ));
        }
        if self.heartbeat < 2 {
            return Err(ConfigError("heartbeat must be at least 2 s"));
        }
        if self.update_timeout == 0 {
            return Err(ConfigError("update timeout must be at least 1 s"));
        }
        Ok(())
    }

    /// The OPTION_F_CONNECT_FLAGS we send.
    pub const fn connect_flags(&self) -> ConnectFlags {
        ConnectFlags(if self.fixed_pd_length {
            ConnectFlags::FIXED_PD_LENGTH
        } else {
            0
        })
    }
}

/// Why a [`Config`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError(pub &'static str);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl core::error::Error for ConfigError {}
