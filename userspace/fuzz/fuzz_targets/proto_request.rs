//! Fuzz target: the DHCPv6 engine (RFC 8415 §16, §18.3, §19) over a sequence of client
//! messages, raw datagrams, clock steps and expiry runs, with invariants checked after every
//! step. The input format and the invariants are in `tandem_fuzz::engine`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tandem_fuzz::engine::run(data));
