//! Fuzz target: the failover TCP stream (RFC 8156 §5.1, RFC 5460 §5.1 framing).
//!
//! The first bytes choose the decoder's buffer size and the sizes of the reads; the rest is the
//! stream. Feeding it chunk by chunk into a `FrameDecoder`, every message taken out must be
//! non-empty and parse (or fail) without panicking, and the decoder must never hand out more
//! bytes than were fed in. Once it reports an error, it keeps reporting it.
#![no_main]

use tandem_wire::failover::frame::MAX_FRAME_LEN;
use tandem_wire::failover::{Failover, FrameDecoder};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&[cap_hi, cap_lo, n_sizes], rest)) = data.split_first_chunk::<3>() else {
        return;
    };
    let capacity = usize::from(u16::from_be_bytes([cap_hi, cap_lo])).clamp(2, MAX_FRAME_LEN);
    let n_sizes = usize::from(n_sizes % 16) + 1;
    let Some((sizes, stream)) = rest.split_at_checked(n_sizes) else {
        return;
    };

    let mut decoder = FrameDecoder::new(vec![0u8; capacity]);
    let (mut fed, mut taken_out) = (0usize, 0usize);
    let mut input = stream;
    let mut sizes = sizes.iter().map(|&s| usize::from(s) + 1).cycle();
    'feed: while !input.is_empty() {
        let n = sizes.next().unwrap_or(1).min(input.len());
        let pushed = decoder.push(&input[..n]);
        fed += pushed;
        input = &input[pushed..];
        let mut drained = false;
        loop {
            match decoder.next_message() {
                Ok(Some(message)) => {
                    assert!(!message.is_empty());
                    taken_out += message.len() + 2;
                    drained = true;
                    let _ = Failover::parse_bytes(message);
                }
                Ok(None) => break,
                Err(e) => {
                    assert_eq!(decoder.next_message(), Err(e));
                    break 'feed;
                }
            }
        }
        assert!(taken_out + decoder.buffered() <= fed);
        if pushed == 0 && !drained {
            break; // buffer full of a frame that can never complete
        }
    }
    assert_eq!(taken_out + decoder.buffered(), fed);
});
