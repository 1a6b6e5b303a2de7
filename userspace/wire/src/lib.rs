//! Tandem's wire codecs.
//!
//! * [`dhcp`]: DHCPv6 client/server and relay messages and every option a server needs
//!   ([RFC 8415](https://www.rfc-editor.org/rfc/rfc8415), with the removals of RFC 9915).
//! * [`failover`]: the [RFC 8156](https://www.rfc-editor.org/rfc/rfc8156) failover messages
//!   and their RFC 5460 §5.1 TCP framing.
//! * [`frame`]: Ethernet, 802.1Q/QinQ, IPv6 (extension headers skipped) and UDP, so the
//!   AF_XDP datapath can parse and build whole frames in place.
//!
//! # Contract
//!
//! This crate is `no_std`, has no dependencies, performs no I/O, reads no clock and never
//! allocates. Parsing borrows from the input buffer (zero-copy).
//!
//! * **Parsing never panics**, whatever the input: every accessor of a checked view and every
//!   `parse` function returns an [`Error`] for bad input instead.
//! * **Emitting never panics** either: `emit` into a buffer of exactly `buffer_len()` bytes
//!   succeeds; into a shorter one it returns [`Error::BufferTooSmall`].
//! * Unknown options, message types and status codes are data, not errors: they are kept
//!   verbatim and round-trip byte for byte.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(test)]
extern crate std;

pub mod codec;
pub mod dhcp;
mod error;
pub mod failover;
pub mod frame;
pub mod option;
mod registry;

pub use error::{Error, Result};
