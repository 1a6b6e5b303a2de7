//! Support code of the fuzz targets that need more than a few lines.
//!
//! * [`engine`]: the `proto_request` target's harness: client messages built from fuzzer input,
//!   driven through `tandem_proto::Engine` against a `MemStore`, with invariants checked after
//!   every step.
//! * [`failover`]: the `failover_pair` target's harness: two RFC 8156 endpoints and a virtual
//!   link driven by fuzzer operations, with the pair's invariants checked after every one.

pub mod engine;
pub mod failover;
