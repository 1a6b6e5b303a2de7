//! What an endpoint keeps in stable storage (RFC 8156 §8.2, §6.3, §6.4), and a fixed binary
//! form of it for drivers that want one.

use tandem_wire::failover::FailoverTime;
use tandem_wire::failover::option::{ServerFlags, ServerState};

use crate::machine::StateName;

/// The partner as last heard of, from its STATE (§6.4: "SHOULD ensure that this information
/// is written to stable storage").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartnerRecord {
    /// OPTION_F_SERVER_STATE (while the partner was in STARTUP: its previous state).
    pub state: StateName,
    /// OPTION_F_SERVER_FLAGS.
    pub flags: ServerFlags,
    /// OPTION_F_START_TIME_OF_STATE.
    pub since: FailoverTime,
    /// OPTION_F_PARTNER_DOWN_TIME, kept only while the partner is in PARTNER-DOWN (§6.4).
    pub partner_down_time: Option<FailoverTime>,
}

/// One durable record of the endpoint (RFC 8156 §8.2's list, plus what §8.3.2 needs).
///
/// The driver takes it from [`crate::Endpoint::poll_persist`], writes it to stable storage,
/// and confirms with [`crate::Endpoint::handle_persisted`]; only a confirmed record may be
/// given back to [`crate::Endpoint::new`] after a restart. Every transmit queued after the
/// change a record captures is held until it is confirmed, so no STATE announces a state that
/// a crash could forget (§6.3 "SHOULD ensure that this information is written to stable
/// storage prior to enqueuing it", §8.1 "MUST record the new state").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persisted {
    /// Current failover state (never STARTUP: while in STARTUP the record keeps the state
    /// the server had before, which is what the next start must resume from).
    pub state: StateName,
    /// Start time of the current failover state.
    pub state_since: FailoverTime,
    /// Previous failover state.
    pub previous: Option<StateName>,
    /// The partner's state, flags and start time, from its last STATE.
    pub partner: Option<PartnerRecord>,
    /// When the most recent message from the partner arrived (refreshed with each record, not
    /// per message).
    pub last_contact: Option<FailoverTime>,
    /// Whether this server has ever had communications OK with its partner: the COMMUNICATED
    /// server flag (§5.5.15), and what tells RECOVER to send UPDREQ rather than UPDREQALL
    /// (§8.5.2).
    pub communicated: bool,
    /// A full resynchronisation (UPDREQALL, §8.5.2) was asked for and its UPDDONE has not
    /// come: the next RECOVER (or POTENTIAL-CONFLICT) asks for everything again, although
    /// `communicated` is now set (`docs/failover.md` D47).
    pub resync_all: bool,
    /// The MCLT in use: the secondary's is the one from the primary's last CONNECT (§6.1.2
    /// "use it until a different MCLT is supplied by some subsequent CONNECT").
    pub mclt: u32,
    /// A time beyond which this server cannot have been operating without writing a newer
    /// record: the TIME-OF-FAILURE of §8.3.2 step 1 after a crash.
    pub operating_until: FailoverTime,
}

/// Version byte of [`Persisted::to_bytes`].
const FORMAT_VERSION: u8 = 1;

/// Why [`Persisted::from_bytes`] refused its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PersistedFormatError(pub &'static str);

impl core::fmt::Display for PersistedFormatError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.0)
    }
}

impl core::error::Error for PersistedFormatError {}

impl Persisted {
    /// Length of [`Persisted::to_bytes`].
    pub const LEN: usize = 31;

    /// A fixed big-endian encoding: version, state, state start, previous state (0 = none),
    /// partner present, partner state, flags, start, partner-down-time (0 = none), last contact
    /// (0 = none), communicated (bit 0) and resync-all (bit 1, D47; a record written before it
    /// existed reads as 0), MCLT, operating-until. No checksum: torn writes are the storage
    /// layer's business.
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut b = [0u8; Self::LEN];
        let p = self.partner;
        let mut w = Cursor { buf: &mut b, at: 0 };
        w.u8(FORMAT_VERSION);
        w.u8(self.state.code().0);
        w.u32(self.state_since.0);
        w.u8(self.previous.map_or(0, |s| s.code().0));
        w.u8(u8::from(p.is_some()));
        w.u8(p.map_or(0, |p| p.state.code().0));
        w.u8(p.map_or(0, |p| p.flags.0));
        w.u32(p.map_or(0, |p| p.since.0));
        w.u32(p.and_then(|p| p.partner_down_time).map_or(0, |t| t.0));
        w.u32(self.last_contact.map_or(0, |t| t.0));
        w.u8(u8::from(self.communicated) | (u8::from(self.resync_all) << 1));
        w.u32(self.mclt);
        w.u32(self.operating_until.0);
        b
    }

    /// Decodes [`Persisted::to_bytes`]; refuses another length, version, an unknown state or
    /// STARTUP.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PersistedFormatError> {
        let b: &[u8; Self::LEN] = bytes
            .try_into()
            .map_err(|_| PersistedFormatError("wrong length"))?;
        let mut r = Reader { buf: b, at: 0 };
        if r.u8() != FORMAT_VERSION {
            return Err(PersistedFormatError("unknown format version"));
        }
        let state = state_of(r.u8())?;
        let state_since = FailoverTime(r.u32());
        let previous = match r.u8() {
            0 => None,
            v => Some(state_of(v)?),
        };
        let has_partner = r.u8() != 0;
        let p_state = r.u8();
        let p_flags = ServerFlags(r.u8());
        let p_since = FailoverTime(r.u32());
        let p_down = r.u32();
        let partner = if has_partner {
            Some(PartnerRecord {
                state: state_of(p_state)?,
                flags: p_flags,
                since: p_since,
                partner_down_time: (p_down != 0).then_some(FailoverTime(p_down)),
            })
        } else {
            None
        };
        let last_contact = match r.u32() {
            0 => None,
            t => Some(FailoverTime(t)),
        };
        let bits = r.u8();
        let communicated = bits & 1 != 0;
        let resync_all = bits & 2 != 0;
        let mclt = r.u32();
        let operating_until = FailoverTime(r.u32());
        Ok(Self {
            state,
            state_since,
            previous,
            partner,
            last_contact,
            communicated,
            resync_all,
            mclt,
            operating_until,
        })
    }
}

/// A recorded state: any §5.5.16 value but STARTUP, which is never recorded (the record keeps
/// the state STARTUP resumes from) nor received (D11).
fn state_of(v: u8) -> Result<StateName, PersistedFormatError> {
    match StateName::from_code(ServerState(v)) {
        Some(StateName::Startup) => Err(PersistedFormatError("STARTUP is never recorded")),
        Some(s) => Ok(s),
        None => Err(PersistedFormatError("unknown state value")),
    }
}

/// Writes into a buffer whose size the caller computed ([`Persisted::LEN`]); a write past the
/// end is dropped (cannot happen: every field is counted in `LEN`).
struct Cursor<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Cursor<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.at..self.at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.at += bytes.len();
    }
    fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    fn u32(&mut self, v: u32) {
        self.put(&v.to_be_bytes());
    }
}

/// Reads a buffer of exactly [`Persisted::LEN`] bytes; a read past the end gives zeros
/// (cannot happen: the length is checked first).
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(src) = self.buf.get(self.at..self.at + N) {
            out.copy_from_slice(src);
        }
        self.at += N;
        out
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persisted_round_trips_through_bytes() {
        let p = Persisted {
            state: StateName::PartnerDown,
            state_since: FailoverTime(1234),
            previous: Some(StateName::CommunicationsInterrupted),
            partner: Some(PartnerRecord {
                state: StateName::Recover,
                flags: ServerFlags(ServerFlags::STARTUP | ServerFlags::COMMUNICATED),
                since: FailoverTime(77),
                partner_down_time: None,
            }),
            last_contact: Some(FailoverTime(99)),
            communicated: true,
            resync_all: true,
            mclt: 3600,
            operating_until: FailoverTime(0xdead_beef),
        };
        assert_eq!(Persisted::from_bytes(&p.to_bytes()), Ok(p));
        let bare = Persisted {
            previous: None,
            partner: None,
            last_contact: None,
            resync_all: false,
            ..p
        };
        assert_eq!(Persisted::from_bytes(&bare.to_bytes()), Ok(bare));
        // A record written before the resync-all bit (D47) reads with it clear.
        let mut old = bare.to_bytes();
        old[22] = 1;
        assert_eq!(Persisted::from_bytes(&old), Ok(bare));
    }

    #[test]
    fn persisted_from_bytes_refuses_garbage() {
        assert!(Persisted::from_bytes(&[]).is_err());
        let mut b = [0u8; Persisted::LEN];
        assert!(Persisted::from_bytes(&b).is_err()); // version 0
        b[0] = FORMAT_VERSION;
        assert!(Persisted::from_bytes(&b).is_err()); // state 0
        b[1] = 11;
        assert!(Persisted::from_bytes(&b).is_err());
        b[1] = StateName::Startup.code().0;
        assert!(Persisted::from_bytes(&b).is_err());
        b[1] = StateName::Normal.code().0;
        assert!(Persisted::from_bytes(&b).is_ok());
    }
}
