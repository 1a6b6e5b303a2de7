//! Fuzz target: one RFC 8156 failover message (the bytes inside a RFC 5460 §5.1 frame).
//!
//! Parse as a `FailoverMessage`; if it parses, emitting into a buffer of exactly
//! `buffer_len()` must give the input back byte for byte, framed emission must add the right
//! prefix, and every top-level option must decode or fail without panicking. If the typed
//! `Failover` decodes too, its canonical emission must parse back to an equal `Failover` and
//! re-emit identically, and one byte less of buffer must be `BufferTooSmall`.
#![no_main]

use tandem_wire::Error;
use tandem_wire::failover::{Failover, FailoverMessage, FailoverOption, FailoverTime};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(msg) = FailoverMessage::parse(data) else {
        return;
    };

    // The raw layer round-trips exactly.
    let len = msg.buffer_len();
    assert_eq!(len, data.len());
    let mut out = vec![0xa5; len];
    assert_eq!(msg.emit(&mut out), Ok(len));
    assert_eq!(out, data);
    let mut framed = vec![0xa5; msg.framed_len()];
    assert_eq!(msg.emit_framed(&mut framed), Ok(len + 2));
    assert_eq!(
        framed[..2],
        u16::try_from(len).expect("under 64 KiB").to_be_bytes()
    );
    assert_eq!(framed[2..], data[..]);
    if let Some(raw) = msg.options.raw() {
        for option in raw.iter() {
            let _ = FailoverOption::parse(option);
        }
    }

    // The typed layer is canonical: emit, parse back equal, re-emit identical.
    let Ok(typed) = Failover::parse(&msg) else {
        return;
    };
    let sent = msg.sent_time.unwrap_or(FailoverTime(0));
    let len = typed.buffer_len();
    let mut out = vec![0xa5; len];
    assert_eq!(typed.emit(msg.transaction_id, sent, &mut out), Ok(len));
    let mut short = vec![0xa5; len - 1];
    assert_eq!(
        typed.emit(msg.transaction_id, sent, &mut short),
        Err(Error::BufferTooSmall)
    );
    let (again_msg, again) = Failover::parse_bytes(&out).expect("canonical emission parses");
    assert_eq!(again_msg.transaction_id, msg.transaction_id);
    assert_eq!(again_msg.sent_time, msg.sent_time);
    assert_eq!(again, typed);
    let mut twice = vec![0xa5; again.buffer_len()];
    assert_eq!(again.emit(msg.transaction_id, sent, &mut twice), Ok(len));
    assert_eq!(twice, out);
});
