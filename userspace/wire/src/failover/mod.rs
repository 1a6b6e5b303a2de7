//! RFC 8156 failover messages and their RFC 5460 §5.1 TCP framing.
//!
//! Layers, bottom up:
//!
//! * [`frame`]: the 2-octet message-size framing of the TCP stream (RFC 8156 §5.1, RFC 5460
//!   §5.1) and a no-alloc [`FrameDecoder`].
//! * [`FailoverMessage`]: the failover header (RFC 8156 §5.2: type, transaction-id, sent-time)
//!   and TLV-validated options; STARTTLS (23) and REPLY (7) keep the plain 4-byte DHCPv6 header
//!   (RFC 7653 §6.2.2, §8.2). Round-trips byte for byte.
//! * [`option`]: every OPTION_F_* (RFC 8156 §5.5, codes 114–134) and the leasequery options the
//!   failover messages carry (45–47, 68, 100), decoded by [`FailoverOption`].
//! * [`ClientData`] and [`BindingInfo`]: the per-client and per-lease contents of BNDUPD and
//!   BNDREPLY (RFC 8156 §7.4, §7.6).
//! * [`Failover`]: the typed messages, with the options each requires checked on parse, and
//!   built from typed fields without allocation.
//! * [`time`]: RFC 8156 §3 time (seconds since 2000 modulo 2^32) and the ±5 s rule of §7.1.
//!
//! Emitting a typed message:
//!
//! ```
//! use tandem_wire::failover::{Failover, FailoverTime, State};
//! use tandem_wire::failover::option::{ServerFlags, ServerState, StartTimeOfState};
//!
//! let state = Failover::State(State {
//!     server_state: ServerState::NORMAL,
//!     server_flags: ServerFlags(ServerFlags::COMMUNICATED),
//!     start_time_of_state: StartTimeOfState(FailoverTime(1000)),
//!     partner_down_time: None,
//! });
//! let mut buf = [0u8; 64];
//! let n = state.emit_framed(1, FailoverTime(1005), &mut buf).unwrap();
//! assert_eq!(n, 2 + state.buffer_len());
//! ```

mod client_data;
pub mod frame;
mod message;
pub mod option;
pub mod time;
mod typed;

pub use client_data::{BindingInfo, ClientData, Ia, Lease, LeaseKind, LeaseOption};
pub use frame::FrameDecoder;
pub use message::{FAILOVER_HEADER_LEN, FailoverMessage, MAX_TRANSACTION_ID, PLAIN_HEADER_LEN};
pub use option::FailoverOption;
pub use time::{FailoverTime, INFINITE_LIFETIME, MAX_FINITE_LIFETIME};
pub use typed::{
    BindingPayload, Bndreply, Bndupd, ConnectParams, Connectreply, Failover, MAX_TOP_LEVEL_OPTIONS,
    State,
};
