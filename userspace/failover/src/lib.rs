//! Tandem's RFC 8156 failover endpoint (layer L1: performs no I/O, reads no clock, spawns no
//! thread; time is an input).
//!
//! An [`Endpoint`] is one side of one failover relationship ([RFC 8156] §6.2): the state
//! machine of §8 with every state and transition, the connection protocol of §6 that is not
//! I/O (CONNECT / CONNECTREPLY, STATE, CONTACT and keepalive, DISCONNECT, transaction-ids,
//! the sent-time skew check of §7.1), and the [`ServingPolicy`] each state allows its role
//! (§8, [`machine::serving_policy`]). Binding synchronisation (BNDUPD / BNDREPLY, the UPDREQ
//! responder's updates, POOLREQ rebalancing) is part 2; until then the endpoint answers
//! UPDREQ / UPDREQALL with UPDDONE at once and refuses BNDUPD (`docs/failover.md` D17).
//!
//! The driver (the daemon) owns the TCP/TLS connection to port 647, the stable storage and the
//! clock. It feeds the endpoint inputs and drains its outputs:
//!
//! | inputs (`handle_*`) | outputs (`poll_*`) |
//! |---|---|
//! | [`Endpoint::handle_connected`]: transport up (TLS done) | [`Endpoint::poll_persist`]: a record to make durable |
//! | [`Endpoint::handle_message`]: one frame body | [`Endpoint::poll_transmit`]: a frame to send, or close |
//! | [`Endpoint::handle_closed`]: transport lost | [`Endpoint::poll_event`]: state, policy, link, peer errors |
//! | [`Endpoint::handle_timeout`]: time passed | [`Endpoint::poll_timeout`]: when to call `handle_timeout` |
//! | [`Endpoint::handle_operator`]: PARTNER-DOWN, shutdown | [`Endpoint::state`], [`Endpoint::policy`], [`Endpoint::status`] |
//! | [`Endpoint::handle_persisted`]: the last record is durable | [`Endpoint::last_refusal`]: the last CONNECT refused, either way, with its text |
//!
//! # Call order
//!
//! After [`Endpoint::new`] and after every `handle_*` call, the driver:
//!
//! 1. drains [`Endpoint::poll_persist`]: writes each record to stable storage and, once it is
//!    durable, calls [`Endpoint::handle_persisted`]. Every transmit queued after a change is
//!    held until the record capturing that change is confirmed, so no STATE ever announces a
//!    state that a crash could forget (§6.3, §8.1). Confirming later (an asynchronous write)
//!    is allowed: the held transmits come out of `poll_transmit` after the confirmation;
//! 2. drains [`Endpoint::poll_transmit`]: writes each [`Transmit::Frame`] to the connection in
//!    order; on [`Transmit::Close`] closes it (the endpoint already counts it as down);
//! 3. drains [`Endpoint::poll_event`]: installs each [`Event::PolicyChanged`] in the engine,
//!    logs the rest;
//! 4. sleeps until [`Endpoint::poll_timeout`] (monotonic ms), a message, a connection event or
//!    an operator command, whichever comes first; then calls the matching `handle_*`.
//!
//! Every `handle_*` takes a [`Now`]: a monotonic time for timers and the wall clock as
//! RFC 8156 §3 time for sent-time, skew and state start times. Messages are stamped with the
//! `Now` of the call that queued them, so the driver should send without delay (§7.1).
//!
//! Two endpoints wired back to back, the smallest driver there is:
//!
//! ```
//! use tandem_failover::{Config, Endpoint, Event, FailoverTime, Now, Role, StateName, Transmit};
//!
//! /// Makes `from`'s records durable at once and hands its frames to `to`.
//! fn pump(from: &mut Endpoint, to: &mut Endpoint, now: Now) {
//!     loop {
//!         if from.poll_persist().is_some() {
//!             from.handle_persisted(); // (a real driver writes the record first)
//!             continue;
//!         }
//!         match from.poll_transmit() {
//!             Some(Transmit::Frame(f)) => to.handle_message(now, &f[2..]),
//!             Some(Transmit::Close { .. }) => to.handle_closed(now),
//!             None => break,
//!         }
//!     }
//!     while let Some(event) = from.poll_event() {
//!         // A driver with no bindings has sent every update the partner asked for.
//!         if let Event::UpdateRequested { .. } = event {
//!             from.update_stream_complete(now);
//!         }
//!     }
//! }
//!
//! let now = Now { mono_ms: 0, wall: FailoverTime(800_000_000) };
//! let mut p = Endpoint::new(Config::new(Role::Primary, "dc1"), None, now).unwrap();
//! let mut s = Endpoint::new(Config::new(Role::Secondary, "dc1"), None, now).unwrap();
//! s.handle_connected(now); // accepted on port 647
//! p.handle_connected(now); // the primary sends CONNECT
//! for _ in 0..5 {
//!     pump(&mut p, &mut s, now);
//!     pump(&mut s, &mut p, now);
//! }
//! // A fresh pair: RECOVER, UPDREQ / UPDDONE each way, RECOVER-DONE, NORMAL (D8).
//! assert!(p.communications_ok() && s.communications_ok());
//! assert_eq!(p.state().name(), StateName::Normal);
//! assert_eq!(s.state().name(), StateName::Normal);
//! ```
//!
//! What the driver does itself: connecting (the primary retries periodically and backs off
//! after a refusal, §6.1), listening and choosing the endpoint of an incoming connection
//! ([`connect_relationship_name`]), STARTTLS (RFC 7653 §8.2, §9.1), framing with
//! [`tandem_wire::failover::FrameDecoder`], and the storage format ([`Persisted::to_bytes`] is
//! one). A primary's driver that also listens answers a CONNECT from its peer with
//! [`role_conflict_reply`] (both servers configured as primary, `docs/failover.md` D23).
//!
//! # Guarantees
//!
//! * No input panics: any bytes, message types, options, phases, transaction-ids or times.
//!   A protocol violation ends the connection with a DISCONNECT carrying a Status Code and a
//!   text, an [`Event::PeerMisbehaved`] and a counter ([`Counters`]).
//! * The state changes only as [`machine`] says; the tests hold one table row per RFC
//!   sentence.
//!
//! Decisions where the RFC is silent or contradicts itself are numbered in
//! `docs/failover.md` (D7–D19, D23) and cited in the code.
//!
//! [RFC 8156]: https://www.rfc-editor.org/rfc/rfc8156
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

extern crate alloc;

pub mod bndupd;
mod config;
mod endpoint;
mod event;
pub mod machine;
mod persist;
pub mod refuse;

pub use config::{
    CONTACT_PER_KEEPALIVE_TIME, Config, ConfigError, DEFAULT_KEEPALIVE_SECS, MIN_KEEPALIVE_SECS,
    MIN_MCLT_SECS, Role,
};
pub use endpoint::{Endpoint, State, connect_relationship_name};
pub use event::{
    BindingInput, Counters, DownReason, Event, LinkStatus, MisbehaviorKind, Now, Operator,
    PeerMisbehaved, Phase, Refused, Status, Transmit, UpdateNotSent,
};
pub use machine::StateName;
pub use persist::{PartnerRecord, Persisted, PersistedFormatError};
pub use refuse::{Direction, Refusal, RoleConflictReply, role_conflict_reply};
pub use tandem_lease::ServingPolicy;
pub use tandem_wire::failover::FailoverTime;
