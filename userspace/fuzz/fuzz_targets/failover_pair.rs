//! Fuzz target: two RFC 8156 failover endpoints over a virtual link (RFC 8156 §6, §8), driven
//! by arbitrary deliveries, mutations, restarts, clock steps and operator commands; the pair's
//! invariants are checked after every step. The harness is `tandem_fuzz::failover`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    tandem_fuzz::failover::run(data);
});
