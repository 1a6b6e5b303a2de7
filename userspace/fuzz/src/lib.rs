//! Support code of the fuzz targets that need more than a few lines.
//!
//! * [`engine`]: the `proto_request` target's harness: client messages built from fuzzer input,
//!   driven through `tandem_proto::Engine` against a `MemStore`, with invariants checked after
//!   every step.

pub mod engine;
