//! Engine counters: messages received and answered per type, drops per reason, lease events.

use tandem_wire::dhcp::MessageType;

macro_rules! drop_reasons {
    ($( $(#[$doc:meta])* $name:ident = $text:literal, )*) => {
        /// Why a datagram got no answer. Each has a counter ([`Counters::drops`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum DropReason {
            $( $(#[$doc])* $name, )*
        }

        impl DropReason {
            /// Every reason, in declaration order.
            pub const ALL: &'static [DropReason] = &[$(DropReason::$name,)*];

            /// A snake_case name for logs and counter dumps (`drop_<name>=N`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(DropReason::$name => $text,)*
                }
            }
        }
    };
}

drop_reasons! {
    /// The datagram does not parse as a DHCPv6 message or relay chain, or an option the
    /// engine needs (Client ID, Server ID, ORO, an IA) is malformed (RFC 8415 §16).
    Malformed = "malformed",
    /// A singleton option (Client ID, Server ID, ORO, Elapsed Time, Rapid Commit, Preference,
    /// Reconfigure Accept) appears more than once (RFC 8415 §21).
    DuplicateOption = "duplicate_option",
    /// ADVERTISE, REPLY, RECONFIGURE or RELAY-REPL: only servers send those (RFC 8415 §16.3,
    /// §16.10, §16.11, §16.14).
    ServerMessage = "server_message",
    /// A message type this server does not handle (RFC 8415 §16).
    UnknownMessageType = "unknown_message_type",
    /// No Client Identifier where one is required (RFC 8415 §16.2 – §16.9).
    MissingClientId = "missing_client_id",
    /// A Server Identifier in a Solicit, Confirm or Rebind (RFC 8415 §16.2, §16.5, §16.7).
    UnexpectedServerId = "unexpected_server_id",
    /// No Server Identifier in a Request, Renew, Release or Decline (RFC 8415 §16.4, §16.6,
    /// §16.8, §16.9).
    MissingServerId = "missing_server_id",
    /// A Server Identifier that is not ours (RFC 8415 §16.4, §16.6, §16.8, §16.9, §16.12).
    ForeignServerId = "foreign_server_id",
    /// An Information-Request carrying an IA_NA or IA_PD (RFC 8415 §16.12).
    IaInInformationRequest = "ia_in_information_request",
    /// A Confirm without addresses, or for a link the server knows nothing about: no reply
    /// (RFC 8415 §18.3.3).
    ConfirmUnanswerable = "confirm_unanswerable",
    /// The reply does not fit the output buffer.
    ReplyTooLarge = "reply_too_large",
    /// The serving policy answers nothing (a failover state that is unresponsive, RFC 8156
    /// §8: STARTUP, POTENTIAL-CONFLICT, RECOVER, RECOVER-WAIT).
    Unresponsive = "unresponsive",
    /// The serving policy is renew responsive (RFC 8156 §2, §8.8.1: the secondary in NORMAL)
    /// and the message does not carry this server's Server Identifier (Solicit, Rebind,
    /// Confirm, Information-Request without one).
    RenewResponsiveOnly = "renew_responsive_only",
}

/// What the engine has seen and done since it was created.
#[derive(Clone, Debug)]
pub struct Counters {
    received: [u64; 256],
    replies: [u64; 256],
    drops: [u64; DropReason::ALL.len()],
    /// Leases written ACTIVE (new, renewed or rebound).
    pub committed: u64,
    /// Leases moved to RELEASED by a Release.
    pub released: u64,
    /// Leases moved to ABANDONED by a Decline.
    pub declined: u64,
    /// ACTIVE leases moved to EXPIRED by [`crate::Engine::reclaim`].
    pub expired: u64,
    /// ABANDONED leases freed after their quarantine by [`crate::Engine::reclaim`].
    pub unquarantined: u64,
    /// Store writes that failed (e.g. table full): the IA got NoAddrsAvail / NoPrefixAvail.
    pub store_errors: u64,
    /// IAs not processed because the message had more than [`crate::MAX_IAS`] IAs or the IA
    /// named more than [`crate::MAX_LEASES_PER_IA`] leases; each was answered with a status.
    pub ias_over_limit: u64,
    /// Status changes refused by the RFC 8156 §7.2 transition table (a bug if ever non-zero:
    /// the lease was left as it was and not granted).
    pub illegal_transitions: u64,
    /// Leases of the failover partner's BNDUPDs stored (RFC 8156 §7.5.5).
    pub partner_accepted: u64,
    /// Leases of the partner's BNDUPDs rejected (§7.5.4: outdated, address in use, not in
    /// our configuration or another shard's).
    pub partner_refused: u64,
    /// Our updates the partner acknowledged while still current (§7.7).
    pub partner_acked: u64,
    /// RELEASED, EXPIRED or RESET leases made available after the PARTNER-DOWN wait (§8.4.1),
    /// or after the partner lifetimes an acknowledged one carries (`docs/failover.md` D46).
    pub freed_after_wait: u64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            received: [0; 256],
            replies: [0; 256],
            drops: [0; DropReason::ALL.len()],
            committed: 0,
            released: 0,
            declined: 0,
            expired: 0,
            unquarantined: 0,
            store_errors: 0,
            ias_over_limit: 0,
            illegal_transitions: 0,
            partner_accepted: 0,
            partner_refused: 0,
            partner_acked: 0,
            freed_after_wait: 0,
        }
    }
}

impl Counters {
    /// Messages received of type `t`. A relayed message counts once as RELAY-FORW and once
    /// as the type of the client message it carries.
    pub fn received(&self, t: MessageType) -> u64 {
        self.received[usize::from(t.0)]
    }

    /// Answers sent of type `t` (ADVERTISE or REPLY; relayed answers count as their inner type).
    pub fn replies(&self, t: MessageType) -> u64 {
        self.replies[usize::from(t.0)]
    }

    /// Datagrams dropped for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize]
    }

    /// Every drop counter with its reason, for printing `drop_<name>=N`.
    pub fn drop_counts(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL.iter().map(|r| (*r, self.drops(*r)))
    }

    /// Adds every counter of `other` to this one (merging the counters of several engines,
    /// e.g. one per shard).
    pub fn merge(&mut self, other: &Self) {
        let add = |a: &mut [u64], b: &[u64]| {
            for (x, y) in a.iter_mut().zip(b) {
                *x = x.wrapping_add(*y);
            }
        };
        add(&mut self.received, &other.received);
        add(&mut self.replies, &other.replies);
        add(&mut self.drops, &other.drops);
        self.committed = self.committed.wrapping_add(other.committed);
        self.released = self.released.wrapping_add(other.released);
        self.declined = self.declined.wrapping_add(other.declined);
        self.expired = self.expired.wrapping_add(other.expired);
        self.unquarantined = self.unquarantined.wrapping_add(other.unquarantined);
        self.store_errors = self.store_errors.wrapping_add(other.store_errors);
        self.ias_over_limit = self.ias_over_limit.wrapping_add(other.ias_over_limit);
        self.illegal_transitions = self
            .illegal_transitions
            .wrapping_add(other.illegal_transitions);
        self.partner_accepted = self.partner_accepted.wrapping_add(other.partner_accepted);
        self.partner_refused = self.partner_refused.wrapping_add(other.partner_refused);
        self.partner_acked = self.partner_acked.wrapping_add(other.partner_acked);
        self.freed_after_wait = self.freed_after_wait.wrapping_add(other.freed_after_wait);
    }

    pub(crate) fn count_received(&mut self, t: MessageType) {
        self.received[usize::from(t.0)] += 1;
    }

    pub(crate) fn count_reply(&mut self, t: MessageType) {
        self.replies[usize::from(t.0)] += 1;
    }

    pub(crate) fn count_drop(&mut self, reason: DropReason) {
        self.drops[reason as usize] += 1;
    }
}
