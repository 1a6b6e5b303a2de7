//! What a server may do for clients right now: the serving policy.
//!
//! RFC 8156 §8 lets each failover state control three behaviours: responsiveness (§2:
//! responsive, renew responsive, unresponsive), the allocation pool (§4.2: which free leases
//! a server may hand out) and the MCLT lifetime cap (§4.4). The failover state machine turns its
//! state into a [`ServingPolicy`]; the DHCPv6 engine obeys it without knowing anything about
//! failover states. A standalone server serves under [`ServingPolicy::STANDALONE`].

/// Which client messages a server answers (RFC 8156 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Responsiveness {
    /// Answers every valid client message.
    Responsive,
    /// Answers only messages carrying its own Server Identifier (Request, Renew, Release,
    /// Decline, Information-Request naming it); Solicit, Rebind, Confirm and Information-Request
    /// without a Server Identifier go unanswered.
    RenewResponsive,
    /// Answers nothing.
    Unresponsive,
}

/// Which addresses a server may newly allocate (RFC 8156 §4.2.1 independent allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressShare {
    /// Any address of the pools (standalone).
    All,
    /// Only addresses whose lowest bit is 1 (the primary, RFC 8156 §4.2.1.1).
    Odd,
    /// Only addresses whose lowest bit is 0 (the secondary, RFC 8156 §4.2.1.1).
    Even,
}

impl AddressShare {
    /// `true` if `addr` (as a 128-bit number) is in this share.
    #[must_use]
    pub const fn owns(self, addr: u128) -> bool {
        match self {
            Self::All => true,
            Self::Odd => addr & 1 == 1,
            Self::Even => addr & 1 == 0,
        }
    }
}

/// Which delegable prefixes a server may newly delegate (RFC 8156 §4.2.2 proportional
/// allocation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefixShare {
    /// Any free prefix (standalone).
    All,
    /// Prefixes that are FREE or have never been leased: the primary's (RFC 8156 §4.2.2: all
    /// available prefixes start with the primary).
    Free,
    /// Only prefixes the primary handed over as FREE-BACKUP: the secondary's.
    FreeBackup,
}

/// What the engine may do for clients now. Built by the failover state machine per state
/// (RFC 8156 §8), or [`ServingPolicy::STANDALONE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServingPolicy {
    /// Which messages are answered.
    pub responsiveness: Responsiveness,
    /// `false`: no lease is newly allocated; only a client's existing ACTIVE leases are
    /// extended (RFC 8156 §8.7.1 RECOVER-DONE, and the secondary in NORMAL, §8.8.1).
    pub new_leases: bool,
    /// Addresses this server may newly allocate.
    pub addresses: AddressShare,
    /// Delegable prefixes this server may newly delegate.
    pub prefixes: PrefixShare,
    /// The MCLT in seconds while the cap of RFC 8156 §4.4 applies: a client's valid lifetime
    /// ends no later than max(now, acked partner lifetime) + MCLT. `None`: no cap (standalone,
    /// PARTNER-DOWN, §8.4.1).
    pub mclt: Option<u32>,
    /// `true`: a RELEASED, EXPIRED or RESET lease may go to a *different* client only after
    /// the partner acknowledged that status (RFC 8156 §4.2.2.1, §7.2 transition 4), i.e. only
    /// once it is FREE / FREE-BACKUP; the same client may always have it back.
    pub reuse_needs_partner_ack: bool,
    /// PARTNER-DOWN (RFC 8156 §8.4.1, §7.2 transition 4): the MCLT after which a RELEASED,
    /// EXPIRED or RESET lease becomes available to other clients without the partner's ack —
    /// once this many seconds have passed since the latest of the binding's own times (start of
    /// its status, its end, every partner lifetime it carries) and the engine's entry into
    /// this policy (`docs/failover.md` D29). `None` outside PARTNER-DOWN.
    pub reuse_wait: Option<u32>,
}

impl ServingPolicy {
    /// A server without a failover partner: answers everything, allocates anything, no cap.
    pub const STANDALONE: Self = Self {
        responsiveness: Responsiveness::Responsive,
        new_leases: true,
        addresses: AddressShare::All,
        prefixes: PrefixShare::All,
        mclt: None,
        reuse_needs_partner_ack: false,
        reuse_wait: None,
    };

    /// Answers nothing (RFC 8156 §8: STARTUP, POTENTIAL-CONFLICT, RECOVER, RECOVER-WAIT).
    pub const UNRESPONSIVE: Self = Self {
        responsiveness: Responsiveness::Unresponsive,
        new_leases: false,
        addresses: AddressShare::All,
        prefixes: PrefixShare::All,
        mclt: None,
        reuse_needs_partner_ack: true,
        reuse_wait: None,
    };
}

impl Default for ServingPolicy {
    fn default() -> Self {
        Self::STANDALONE
    }
}
