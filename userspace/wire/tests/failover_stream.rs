//! RFC 5460 §5.1 framing of the failover TCP stream (RFC 8156 §5.1): several messages per
//! read, messages split across reads, arbitrary chunking.

use std::vec::Vec;

use proptest::prelude::*;
use tandem_wire::Error;
use tandem_wire::failover::frame::{MAX_FRAME_LEN, split_frame};
use tandem_wire::failover::{Failover, FrameDecoder};

const VECTORS: [&str; 5] = [
    include_str!("vectors/failover_connect.hex"),
    include_str!("vectors/failover_bndupd_client_data.hex"),
    include_str!("vectors/failover_contact.hex"),
    include_str!("vectors/failover_starttls.hex"),
    include_str!("vectors/failover_state_partner_down.hex"),
];

fn vector(text: &str) -> Vec<u8> {
    let hex: Vec<&str> = text
        .lines()
        .flat_map(|l| l.split('#').next().unwrap_or("").split_whitespace())
        .collect();
    hex.iter()
        .map(|b| u8::from_str_radix(b, 16).expect("vector byte"))
        .collect()
}

/// The vectors (messages) and their framed concatenation.
fn stream() -> (Vec<Vec<u8>>, Vec<u8>) {
    let messages: Vec<Vec<u8>> = VECTORS.iter().map(|t| vector(t)).collect();
    let mut bytes = Vec::new();
    for m in &messages {
        bytes.extend_from_slice(&u16::try_from(m.len()).expect("short").to_be_bytes());
        bytes.extend_from_slice(m);
    }
    (messages, bytes)
}

/// Feeds `bytes` in chunks of the given sizes (cycled) and collects every message.
fn decode_chunked<B: AsRef<[u8]> + AsMut<[u8]>>(
    decoder: &mut FrameDecoder<B>,
    bytes: &[u8],
    sizes: &[usize],
) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut sizes = sizes.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(1).clamp(1, rest.len());
        let taken = decoder.push(&rest[..n]);
        rest = &rest[taken..];
        let before = out.len();
        while let Some(m) = decoder.next_message()? {
            out.push(m.to_vec());
        }
        if taken == 0 && out.len() == before {
            return Err(Error::BufferTooSmall);
        }
    }
    Ok(out)
}

#[test]
fn split_frame_takes_messages_off_the_front() {
    let (messages, bytes) = stream();
    let mut rest = &bytes[..];
    for m in &messages {
        let (msg, consumed) = split_frame(rest).unwrap().unwrap();
        assert_eq!(msg, &m[..]);
        assert_eq!(consumed, m.len() + 2);
        rest = &rest[consumed..];
    }
    assert_eq!(split_frame(rest), Ok(None));
}

#[test]
fn several_messages_in_one_read_all_come_out() {
    let (messages, bytes) = stream();
    let mut d = FrameDecoder::new(vec![0u8; MAX_FRAME_LEN]);
    assert_eq!(d.push(&bytes), bytes.len());
    for m in &messages {
        let got = d.next_message().unwrap().unwrap();
        assert_eq!(got, &m[..]);
        assert!(Failover::parse_bytes(got).is_ok());
    }
    assert_eq!(d.next_message(), Ok(None));
    assert_eq!(d.buffered(), 0);
}

#[test]
fn message_split_at_every_byte_across_two_reads_reassembles() {
    let (messages, bytes) = stream();
    for cut in 0..=bytes.len() {
        let mut d = FrameDecoder::new(vec![0u8; 1024]);
        let mut got = Vec::new();
        for part in [&bytes[..cut], &bytes[cut..]] {
            // The spare/commit path, as a socket read would use it.
            let spare = d.spare();
            spare[..part.len()].copy_from_slice(part);
            d.commit(part.len()).unwrap();
            while let Some(m) = d.next_message().unwrap() {
                got.push(m.to_vec());
            }
        }
        assert_eq!(got, messages, "cut at {cut}");
    }
}

#[test]
fn small_buffer_reuses_space_by_compacting() {
    let (messages, bytes) = stream();
    let largest = messages.iter().map(Vec::len).max().unwrap() + 2;
    let mut d = FrameDecoder::new(vec![0u8; largest]);
    let got = decode_chunked(&mut d, &bytes, &[7, 300, 1, 64]).unwrap();
    assert_eq!(got, messages);
}

proptest! {
    #[test]
    fn decoder_arbitrary_chunking_gives_the_same_messages(
        sizes in proptest::collection::vec(1usize..600, 1..20)
    ) {
        let (messages, bytes) = stream();
        let mut d = FrameDecoder::new(vec![0u8; 2048]);
        let got = decode_chunked(&mut d, &bytes, &sizes).unwrap();
        prop_assert_eq!(got, messages);
    }

    #[test]
    fn decoder_never_panics_nor_invents_bytes(
        data in proptest::collection::vec(any::<u8>(), 0..2048),
        sizes in proptest::collection::vec(1usize..300, 1..10),
        capacity in 2usize..1024,
    ) {
        let mut d = FrameDecoder::new(vec![0u8; capacity]);
        let mut fed = 0usize;
        let mut out = 0usize;
        let mut rest = &data[..];
        let mut sizes = sizes.iter().copied().cycle();
        'feed: while !rest.is_empty() {
            let n = sizes.next().unwrap_or(1).min(rest.len());
            let taken = d.push(&rest[..n]);
            fed += taken;
            rest = &rest[taken..];
            loop {
                match d.next_message() {
                    Ok(Some(m)) => {
                        prop_assert!(!m.is_empty());
                        out += m.len() + 2;
                        let _ = Failover::parse_bytes(m);
                    }
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
            if taken == 0 {
                break; // buffer full of an incomplete frame that fits: wait forever
            }
        }
        prop_assert!(out + d.buffered() <= fed);
    }
}
