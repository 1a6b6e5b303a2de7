//! The fixed 224-byte record that holds one [`Binding`], and CRC-32C.
//!
//! Every field is little-endian and written or read one by one (no casts), so the layout does
//! not depend on the compiler's struct layout:
//!
//! | offset | size | field                                   |
//! |-------:|-----:|-----------------------------------------|
//! |      0 |    1 | `state`: 0 = EMPTY, 1 = USED            |
//! |      1 |    1 | `status` (RFC 8156 §5.5.1 binding status) |
//! |      2 |    1 | `kind` (3 = IA_NA address, 25 = IA_PD prefix) |
//! |      3 |    1 | `prefix_len`                            |
//! |      4 |    1 | `duid_len` (0..=130)                    |
//! |      5 |    3 | reserved, zero                          |
//! |      8 |    4 | `iaid`                                  |
//! |     12 |    4 | `subnet`                                |
//! |     16 |    4 | `t1`                                    |
//! |     20 |    4 | `t2`                                    |
//! |     24 |    4 | `preferred`                             |
//! |     28 |    4 | `valid`                                 |
//! |     32 |    4 | `cltt` (RFC 8156 §3 time)               |
//! |     36 |    4 | `start_time_of_state`                   |
//! |     40 |    4 | `state_expiration_time`                 |
//! |     44 |    4 | `partner_lifetime`                      |
//! |     48 |    4 | `acked_partner_lifetime`                |
//! |     52 |    4 | `expiration_time`                       |
//! |     56 |    4 | `partner_raw_clt_time`                  |
//! |     60 |    4 | `flags`                                 |
//! |     64 |   16 | `addr` (network order)                  |
//! |     80 |  130 | `duid` (zero after `duid_len`)          |
//! |    210 |   10 | reserved, zero                          |
//! |    220 |    4 | `crc32`: CRC-32C of bytes 0..220        |

use core::net::Ipv6Addr;

use tandem_lease::{
    Binding, BindingFlags, BindingStatus, DuidBuf, FailoverTime, LeaseKind, MAX_DUID_LEN,
};

/// Size of one record in bytes (a multiple of 8, so records stay 8-byte aligned in the file).
pub const RECORD_SIZE: usize = 224;

/// `state` of a slot never written (or discarded at recovery).
pub const STATE_EMPTY: u8 = 0;
/// `state` of a slot holding a binding.
pub const STATE_USED: u8 = 1;

const OFF_IAID: usize = 8;
const OFF_TIMES: usize = 12;
const OFF_ADDR: usize = 64;
const OFF_DUID: usize = 80;
const OFF_CRC: usize = 220;

/// One encoded record.
pub type RecordBytes = [u8; RECORD_SIZE];

/// Why a record does not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// `state` is EMPTY.
    Empty,
    /// The CRC does not match (torn or corrupted record).
    BadCrc,
    /// CRC fine but a field is out of range (unknown kind, DUID too long, bad state).
    BadField,
}

/// Encodes `b` as a USED record with its CRC.
pub fn encode(b: &Binding) -> RecordBytes {
    let mut r = [0u8; RECORD_SIZE];
    let duid = b.duid.as_bytes();
    r[0] = STATE_USED;
    r[1] = b.status.0;
    r[2] = b.kind as u8;
    r[3] = b.prefix_len;
    // DuidBuf guarantees at most MAX_DUID_LEN (130) bytes.
    r[4] = u8::try_from(duid.len()).unwrap_or(0);
    r[OFF_IAID..OFF_IAID + 4].copy_from_slice(&b.iaid.to_le_bytes());
    let words = [
        b.subnet,
        b.t1,
        b.t2,
        b.preferred,
        b.valid,
        b.cltt.0,
        b.start_time_of_state.0,
        b.state_expiration_time.0,
        b.partner_lifetime.0,
        b.acked_partner_lifetime.0,
        b.expiration_time.0,
        b.partner_raw_clt_time.0,
        b.flags.0,
    ];
    for (chunk, w) in r[OFF_TIMES..OFF_ADDR].chunks_exact_mut(4).zip(words) {
        chunk.copy_from_slice(&w.to_le_bytes());
    }
    r[OFF_ADDR..OFF_DUID].copy_from_slice(&b.addr.octets());
    if let Some(dst) = r.get_mut(OFF_DUID..OFF_DUID + duid.len()) {
        dst.copy_from_slice(duid);
    }
    let crc = crc32c(&r[..OFF_CRC]);
    r[OFF_CRC..].copy_from_slice(&crc.to_le_bytes());
    r
}

/// `true` if the record's CRC matches its bytes.
pub fn crc_ok(r: &RecordBytes) -> bool {
    let mut stored = [0u8; 4];
    stored.copy_from_slice(&r[OFF_CRC..]);
    crc32c(&r[..OFF_CRC]) == u32::from_le_bytes(stored)
}

/// The record's `state` byte.
pub const fn state(r: &RecordBytes) -> u8 {
    r[0]
}

/// Decodes a USED record, checking its CRC first.
pub fn decode(r: &RecordBytes) -> Result<Binding, DecodeError> {
    if r[0] == STATE_EMPTY && r.iter().all(|&x| x == 0) {
        return Err(DecodeError::Empty);
    }
    if !crc_ok(r) {
        return Err(DecodeError::BadCrc);
    }
    decode_verified(r)
}

/// Decodes a USED record whose CRC is known to hold (checked when the store was opened, or
/// written by this process since): every field is still range-checked, so even a record
/// that is not what it should be decodes to an error, never to a panic.
pub fn decode_verified(r: &RecordBytes) -> Result<Binding, DecodeError> {
    if r[0] != STATE_USED {
        return Err(DecodeError::BadField);
    }
    let kind = LeaseKind::from_u8(r[2]).ok_or(DecodeError::BadField)?;
    let duid_len = usize::from(r[4]);
    if duid_len > MAX_DUID_LEN {
        return Err(DecodeError::BadField);
    }
    let duid = DuidBuf::new(&r[OFF_DUID..OFF_DUID + duid_len]).ok_or(DecodeError::BadField)?;
    let mut w = [0u32; 13];
    for (v, chunk) in w.iter_mut().zip(r[OFF_TIMES..OFF_ADDR].chunks_exact(4)) {
        let mut b = [0u8; 4];
        b.copy_from_slice(chunk);
        *v = u32::from_le_bytes(b);
    }
    let mut iaid = [0u8; 4];
    iaid.copy_from_slice(&r[OFF_IAID..OFF_IAID + 4]);
    let mut addr = [0u8; 16];
    addr.copy_from_slice(&r[OFF_ADDR..OFF_DUID]);
    let [
        subnet,
        t1,
        t2,
        preferred,
        valid,
        cltt,
        sots,
        set,
        pl,
        apl,
        et,
        prct,
        flags,
    ] = w;
    Ok(Binding {
        kind,
        addr: Ipv6Addr::from(addr),
        prefix_len: r[3],
        status: BindingStatus(r[1]),
        duid,
        iaid: u32::from_le_bytes(iaid),
        subnet,
        t1,
        t2,
        preferred,
        valid,
        cltt: FailoverTime(cltt),
        start_time_of_state: FailoverTime(sots),
        state_expiration_time: FailoverTime(set),
        partner_lifetime: FailoverTime(pl),
        acked_partner_lifetime: FailoverTime(apl),
        expiration_time: FailoverTime(et),
        partner_raw_clt_time: FailoverTime(prct),
        flags: BindingFlags(flags),
    })
}

/// The CRC-32C lookup tables for slicing-by-8: `CRC_TABLES[0]` is the classic byte table
/// (reflected polynomial 0x82F63B78), `CRC_TABLES[k][i]` the CRC of byte `i` followed by `k`
/// zero octets.
const CRC_TABLES: [[u32; 256]; 8] = {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0x82F6_3B78
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
};

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) of `data`: every record write
/// computes one over 220 octets, every check at open and every read of a read-only store
/// verifies one. On x86-64 with SSE 4.2 (any server CPU since 2008) the CPU's `crc32`
/// instruction computes it ([`crate::hwcrc`]); elsewhere the portable [`crc32c_sliced`].
pub fn crc32c(data: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if let Some(crc) = crate::hwcrc::crc32c(data) {
        return crc;
    }
    crc32c_sliced(data)
}

/// CRC-32C, table-driven, eight octets per step (slicing-by-8: eight independent lookups
/// instead of a chain of eight dependent ones). The same function as [`crc32c`] on every
/// machine.
pub fn crc32c_sliced(data: &[u8]) -> u32 {
    let t = &CRC_TABLES;
    let mut crc = !0u32;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let lo = u32::from_le_bytes([w[0], w[1], w[2], w[3]]) ^ crc;
        let hi = u32::from_le_bytes([w[4], w[5], w[6], w[7]]);
        let b = |v: u32, shift: u32| usize::from((v >> shift) as u8);
        crc = t[7][b(lo, 0)]
            ^ t[6][b(lo, 8)]
            ^ t[5][b(lo, 16)]
            ^ t[4][b(lo, 24)]
            ^ t[3][b(hi, 0)]
            ^ t[2][b(hi, 8)]
            ^ t[1][b(hi, 16)]
            ^ t[0][b(hi, 24)];
    }
    for &b in words.remainder() {
        crc = t[0][usize::from((crc as u8) ^ b)] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Binding {
        let mut b = Binding::free(LeaseKind::Prefix, "2001:db8:1200::".parse().unwrap(), 56, 7);
        b.status = BindingStatus::ACTIVE;
        b.duid = DuidBuf::new(&[0, 1, 0, 1, 0x2f, 0x3a, 0x11, 0x22, 1, 2, 3, 4, 5, 6]).unwrap();
        b.iaid = 0xdead_beef;
        b.t1 = 1;
        b.t2 = 2;
        b.preferred = 3;
        b.valid = 4;
        b.cltt = FailoverTime(5);
        b.start_time_of_state = FailoverTime(6);
        b.state_expiration_time = FailoverTime(7);
        b.partner_lifetime = FailoverTime(8);
        b.acked_partner_lifetime = FailoverTime(9);
        b.expiration_time = FailoverTime(10);
        b.partner_raw_clt_time = FailoverTime(11);
        b.flags = BindingFlags(BindingFlags::UPDATE_PENDING);
        b
    }

    #[test]
    fn crc32c_of_check_string_is_the_published_value() {
        // RFC 3720 §B.4 / the standard CRC-32C check value of "123456789".
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
        // RFC 3720 §B.4's other vectors: 32 × 0xff, 0..=31 ascending, 31..=0 descending.
        assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
        let up: Vec<u8> = (0..32).collect();
        assert_eq!(crc32c(&up), 0x46DD_794E);
        let down: Vec<u8> = (0..32).rev().collect();
        assert_eq!(crc32c(&down), 0x113F_DB5C);
    }

    /// The bit-at-a-time definition, for comparison.
    fn crc32c_bitwise(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0x82F6_3B78
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    #[test]
    fn crc32c_slicing_by_8_equals_the_bitwise_definition_at_every_length_and_alignment() {
        let data: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for start in 0..8 {
            for end in start..data.len() {
                let d = &data[start..end];
                assert_eq!(crc32c_sliced(d), crc32c_bitwise(d), "{start}..{end}");
                assert_eq!(crc32c(d), crc32c_bitwise(d), "{start}..{end}");
            }
        }
    }

    #[test]
    fn record_encode_decode_round_trips_every_field() {
        let b = sample();
        let r = encode(&b);
        assert_eq!(decode(&r), Ok(b));
        let mut long = b;
        long.duid = DuidBuf::new(&[0xab; MAX_DUID_LEN]).unwrap();
        long.kind = LeaseKind::Address;
        long.prefix_len = 128;
        assert_eq!(decode(&encode(&long)), Ok(long));
    }

    #[test]
    fn record_layout_puts_fields_at_documented_offsets() {
        let r = encode(&sample());
        assert_eq!(r[0], STATE_USED);
        assert_eq!(r[1], 1);
        assert_eq!(r[2], 25);
        assert_eq!(r[3], 56);
        assert_eq!(r[4], 14);
        assert_eq!(r[8..12], 0xdead_beef_u32.to_le_bytes());
        assert_eq!(r[12..16], 7u32.to_le_bytes());
        assert_eq!(r[56..60], 11u32.to_le_bytes());
        assert_eq!(r[60..64], 1u32.to_le_bytes());
        assert_eq!(r[64..66], [0x20, 0x01]);
        assert_eq!(r[80..84], [0, 1, 0, 1]);
        assert!(r[94..220].iter().all(|&x| x == 0));
    }

    #[test]
    fn record_with_one_flipped_bit_fails_crc() {
        let mut r = encode(&sample());
        r[100] ^= 0x10;
        assert_eq!(decode(&r), Err(DecodeError::BadCrc));
        assert_eq!(decode(&[0; RECORD_SIZE]), Err(DecodeError::Empty));
    }

    #[test]
    fn decode_verified_skips_only_the_crc() {
        let mut r = encode(&sample());
        assert_eq!(decode_verified(&r), Ok(sample()));
        r[OFF_CRC] ^= 1;
        assert_eq!(decode(&r), Err(DecodeError::BadCrc));
        assert_eq!(decode_verified(&r), Ok(sample()));
        r[2] = 9;
        assert_eq!(decode_verified(&r), Err(DecodeError::BadField));
        assert_eq!(
            decode_verified(&[0; RECORD_SIZE]),
            Err(DecodeError::BadField)
        );
    }

    #[test]
    fn record_with_unknown_kind_and_valid_crc_is_refused() {
        let mut r = encode(&sample());
        r[2] = 9;
        let crc = crc32c(&r[..OFF_CRC]);
        r[OFF_CRC..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(decode(&r), Err(DecodeError::BadField));
    }
}
