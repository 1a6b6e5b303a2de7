//! The control socket of a running server: `<state-dir>/tandem.sock`, a unix stream socket
//! (mode 0600) that `tandem status` and `tandem tune` talk to.
//!
//! Protocol: the client sends one request line, the server answers with text and closes the
//! connection. Requests:
//!
//! * `status [--json]`: datapath and attach mode, interfaces, lease shards and bindings, the
//!   workers (interface, queue, core, packet counters), the XDP program's, the engine's and
//!   the socket layer's counters.
//! * `tune show [--json]`: the workers with their current core and RX/TX packet rates over
//!   the last second or so, the RX queues of each configured interface and the interrupts of
//!   its queues with their CPU affinity.
//! * `partner-down [NAME]`: the operator's PARTNER-DOWN for failover relationship NAME (or the
//!   only one), RFC 8156 §8.8.2, §8.9.2, §8.11.2; refused with the endpoint's reason where §8
//!   does not allow it.
//! * `tune cores LIST`: moves the workers to the cores of LIST (worker i to the (i mod
//!   len)-th core); the workers apply it on their next wake-up.
//!
//! A request the server cannot serve gets one line `error: <why>`. With `--json` the answer is
//! one JSON object on one line; otherwise it is text for people.
//!
//! The server side ([`ControlServer`]) is a service of the main thread's event loop and never
//! blocks it: the listener and the connections are non-blocking sources, each client gets at
//! most [`server::CLIENT_READ_TIMEOUT`] to send its line (a timer), and packet rates come from
//! counter snapshots a once-a-second timer takes.
//!
//! * [`protocol`]: the socket's path and the request lines.
//! * [`commands`]: what the server answers: the [`ControlTarget`] a datapath implements and
//!   the execution of a request against it.
//! * [`report`]: what `status` reports (plain data).
//! * [`render`]: the answers as text for people and as JSON.
//! * [`server`]: the listening side, served from the run loop.
//! * [`client`]: the side of `tandem status` / `tandem tune`.

pub mod client;
pub mod commands;
pub mod protocol;
mod rates;
pub mod render;
pub mod report;
pub mod server;

use std::io;

pub use client::request;
pub use commands::{ControlTarget, partner_down, pin_workers};
pub use protocol::{SOCKET_NAME, socket_path};
pub use report::{FailoverView, RefusalView, StatusReport, WorkerView};
pub use server::{ControlKey, ControlServer};

/// `e` with `what` in front of its message, same kind.
fn annotate(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}
