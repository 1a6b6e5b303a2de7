//! DHCPv6 messages and options: RFC 8415, with the changes of RFC 9915 (IA_TA, Server Unicast
//! and UseMulticast obsolete: parsed, never produced by Tandem).

use crate::registry::registry;

registry! {
    /// IANA "Message Types" (DHCPv6 Parameters), including the RFC 8156 failover messages
    /// (24–35) and the leasequery messages that share the numbering.
    pub struct MessageType(u8) {
        SOLICIT = 1, ADVERTISE = 2, REQUEST = 3, CONFIRM = 4, RENEW = 5, REBIND = 6, REPLY = 7,
        RELEASE = 8, DECLINE = 9, RECONFIGURE = 10, INFORMATION_REQUEST = 11, RELAY_FORW = 12,
        RELAY_REPL = 13, LEASEQUERY = 14, LEASEQUERY_REPLY = 15, LEASEQUERY_DONE = 16,
        LEASEQUERY_DATA = 17, RECONFIGURE_REQUEST = 18, RECONFIGURE_REPLY = 19,
        DHCPV4_QUERY = 20, DHCPV4_RESPONSE = 21, ACTIVELEASEQUERY = 22, STARTTLS = 23,
        BNDUPD = 24, BNDREPLY = 25, POOLREQ = 26, POOLRESP = 27, UPDREQ = 28, UPDREQALL = 29,
        UPDDONE = 30, CONNECT = 31, CONNECTREPLY = 32, DISCONNECT = 33, STATE = 34,
        CONTACT = 35,
    }
}

impl MessageType {
    /// `true` for RELAY-FORW and RELAY-REPL, which have the relay header (RFC 8415 §9).
    pub const fn is_relay(self) -> bool {
        matches!(self.0, 12 | 13)
    }

    /// `true` for the twelve RFC 8156 failover messages (BNDUPD 24 … CONTACT 35).
    pub const fn is_failover(self) -> bool {
        matches!(self.0, 24..=35)
    }
}

registry! {
    /// IANA "Status Codes" (DHCPv6 Parameters), RFC 8415 §21.13 and the leasequery, active
    /// leasequery and failover (RFC 8156 §5.6) additions.
    pub struct StatusCode(u16) {
        SUCCESS = 0, UNSPEC_FAIL = 1, NO_ADDRS_AVAIL = 2, NO_BINDING = 3, NOT_ON_LINK = 4,
        USE_MULTICAST = 5, NO_PREFIX_AVAIL = 6, UNKNOWN_QUERY_TYPE = 7, MALFORMED_QUERY = 8,
        NOT_CONFIGURED = 9, NOT_ALLOWED = 10, QUERY_TERMINATED = 11, DATA_MISSING = 12,
        CATCH_UP_COMPLETE = 13, NOT_SUPPORTED = 14, TLS_CONNECTION_REFUSED = 15,
        ADDRESS_IN_USE = 16, CONFIGURATION_CONFLICT = 17, MISSING_BINDING_INFORMATION = 18,
        OUTDATED_BINDING_INFORMATION = 19, SERVER_SHUTTING_DOWN = 20,
        DNS_UPDATE_NOT_SUPPORTED = 21, EXCESSIVE_TIME_SKEW = 22,
    }
}
