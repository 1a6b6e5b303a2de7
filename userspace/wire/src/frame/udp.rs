//! UDP ([RFC 768](https://www.rfc-editor.org/rfc/rfc768)) over IPv6, with the checksum of
//! [RFC 8200 §8.1](https://www.rfc-editor.org/rfc/rfc8200#section-8.1).

use core::net::Ipv6Addr;

use crate::codec::{Reader, Writer};
use crate::{Error, Result};

/// Length of the UDP header.
pub const HEADER_LEN: usize = 8;

/// Largest UDP payload: the 16-bit length field counts the header too.
pub const MAX_PAYLOAD_LEN: usize = u16::MAX as usize - HEADER_LEN;

/// Offset of the checksum field within the header.
pub const CHECKSUM_OFFSET: usize = 6;

/// The UDP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Header {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length of header and data.
    pub length: u16,
    /// Checksum as carried (0 means "none", which IPv6 forbids).
    pub checksum: u16,
}

impl Header {
    /// Parses the 8-byte header at the start of `buf` (no length validation; see
    /// [`Datagram::parse`]).
    pub fn parse(buf: &[u8]) -> Result<Self> {
        let mut r = Reader::new(buf);
        Ok(Self {
            src_port: r.u16("UDP header")?,
            dst_port: r.u16("UDP header")?,
            length: r.u16("UDP header")?,
            checksum: r.u16("UDP header")?,
        })
    }

    /// Writes the header as is.
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        let out = w.reserve(HEADER_LEN)?;
        let mut w = Writer::new(out);
        w.u16(self.src_port)?;
        w.u16(self.dst_port)?;
        w.u16(self.length)?;
        w.u16(self.checksum)
    }
}

/// A length-checked UDP datagram (checksum not verified: see [`verify_checksum`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Datagram<'a> {
    header: Header,
    bytes: &'a [u8],
}

impl<'a> Datagram<'a> {
    /// Parses the datagram at the start of `buf`, the rest of the IPv6 payload.
    /// [`Error::BadLength`] unless `8 <= length <= buf.len()`; bytes after `length` are
    /// ignored (RFC 768: the length field delimits the datagram).
    pub fn parse(buf: &'a [u8]) -> Result<Self> {
        let header = Header::parse(buf)?;
        if usize::from(header.length) < HEADER_LEN {
            return Err(Error::BadLength("UDP length under 8"));
        }
        let bytes = buf
            .get(..usize::from(header.length))
            .ok_or(Error::BadLength("UDP length"))?;
        Ok(Self { header, bytes })
    }

    /// The header.
    pub const fn header(&self) -> &Header {
        &self.header
    }

    /// Header and payload: exactly `length` bytes, what the checksum covers.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The payload: `length - 8` bytes.
    pub fn payload(&self) -> &'a [u8] {
        self.bytes.get(HEADER_LEN..).unwrap_or(&[])
    }
}

/// The UDP checksum over IPv6 (RFC 8200 §8.1): the one's complement of the one's complement
/// sum of the pseudo-header (`src`, `dst`, upper-layer length = `udp.len()`, three zero bytes,
/// Next Header 17) and of `udp`, the UDP header and payload. The checksum field's bytes in
/// `udp` are skipped (taken as zero), so this works on a received datagram as on one being
/// built. A result of 0 is sent as 0xffff (RFC 768), hence never returns 0.
///
/// Sums 64-bit big-endian words with end-around carry and folds once at the end (RFC 1071
/// §2: the one's complement sum is independent of the word size and byte order).
pub fn checksum(src: &Ipv6Addr, dst: &Ipv6Addr, udp: &[u8]) -> u16 {
    let mut acc = Sum::default();
    acc.add(u128::from(*src) as u64);
    acc.add((u128::from(*src) >> 64) as u64);
    acc.add(u128::from(*dst) as u64);
    acc.add((u128::from(*dst) >> 64) as u64);
    acc.add(udp.len() as u64);
    acc.add(17);
    let (head, body) = udp.split_at_checked(HEADER_LEN).unwrap_or((udp, &[]));
    // Ports and length; the checksum field (bytes 6..8) is left out.
    acc.add_bytes(head.get(..CHECKSUM_OFFSET).unwrap_or(head));
    acc.add_bytes(body);
    match !acc.fold() {
        0 => 0xffff,
        sum => sum,
    }
}

/// `Ok` if the checksum carried in `udp` (header and payload, exactly `length` bytes) is
/// right; [`Error::Checksum`] if not, or if it is zero, which RFC 8200 §8.1 forbids over IPv6
/// ("IPv6 receivers must discard UDP packets containing a zero checksum").
///
/// Always verifies, with or without the `fuzzing` feature; the frame parser is what skips it.
pub fn verify_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, udp: &[u8]) -> Result<()> {
    let carried = udp
        .get(CHECKSUM_OFFSET..HEADER_LEN)
        .and_then(<[u8]>::first_chunk::<2>)
        .ok_or(Error::Truncated("UDP header"))?;
    let carried = u16::from_be_bytes(*carried);
    if carried != 0 && carried == checksum(src, dst, udp) {
        Ok(())
    } else {
        Err(Error::Checksum)
    }
}

/// The folded, *not* complemented, one's complement sum of the IPv6 pseudo-header for a UDP
/// datagram of `udp_len` bytes (RFC 8200 §8.1: source, destination, upper-layer length, next
/// header 17).
///
/// This is what a sender using checksum offload (Linux `CHECKSUM_PARTIAL`) leaves in the
/// checksum field for the device to finish; see [`complete_partial_checksum`].
pub fn pseudo_header_sum(src: &Ipv6Addr, dst: &Ipv6Addr, udp_len: usize) -> u16 {
    let mut acc = Sum::default();
    acc.add(u128::from(*src) as u64);
    acc.add((u128::from(*src) >> 64) as u64);
    acc.add(u128::from(*dst) as u64);
    acc.add((u128::from(*dst) >> 64) as u64);
    acc.add(udp_len as u64);
    acc.add(17);
    acc.fold()
}

/// Finishes a checksum left to the device by a sender using checksum offload: if the field
/// holds exactly [`pseudo_header_sum`], writes the full checksum and returns `Ok(true)`;
/// otherwise leaves `udp` untouched and returns `Ok(false)`.
///
/// Over veth (and on the sending host's own AF_XDP path) nothing completes such checksums, so
/// XDP sees them as the sender built them. A corrupted datagram matches this pattern no more
/// often than it matches a right checksum (about 2^-16), so accepting it costs no protection.
pub fn complete_partial_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, udp: &mut [u8]) -> Result<bool> {
    let carried = udp
        .get(CHECKSUM_OFFSET..HEADER_LEN)
        .and_then(<[u8]>::first_chunk::<2>)
        .ok_or(Error::Truncated("UDP header"))?;
    if u16::from_be_bytes(*carried) != pseudo_header_sum(src, dst, udp.len()) {
        return Ok(false);
    }
    fill_checksum(src, dst, udp)?;
    Ok(true)
}

/// Writes the checksum of `udp` (header and payload) into its checksum field.
pub fn fill_checksum(src: &Ipv6Addr, dst: &Ipv6Addr, udp: &mut [u8]) -> Result<()> {
    let sum = checksum(src, dst, udp);
    let field = udp
        .get_mut(CHECKSUM_OFFSET..HEADER_LEN)
        .ok_or(Error::BufferTooSmall)?;
    field.copy_from_slice(&sum.to_be_bytes());
    Ok(())
}

/// A one's complement accumulator: 64-bit words with end-around carry.
#[derive(Clone, Copy, Default)]
struct Sum(u64);

impl Sum {
    fn add(&mut self, word: u64) {
        let (sum, carry) = self.0.overflowing_add(word);
        self.0 = sum + u64::from(carry);
    }

    /// Adds `bytes` as big-endian 16-bit words, a final odd byte padded with zero.
    fn add_bytes(&mut self, bytes: &[u8]) {
        let (words, tail) = bytes.as_chunks::<8>();
        for word in words {
            self.add(u64::from_be_bytes(*word));
        }
        let mut last = [0u8; 8];
        if let Some(dst) = last.get_mut(..tail.len()) {
            dst.copy_from_slice(tail);
        }
        self.add(u64::from_be_bytes(last));
    }

    /// Folds to 16 bits.
    fn fold(self) -> u16 {
        let mut s = (self.0 >> 32) + (self.0 & 0xffff_ffff);
        s = (s >> 16) + (s & 0xffff);
        s = (s >> 16) + (s & 0xffff);
        s = (s >> 16) + (s & 0xffff);
        s as u16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_checksum_is_completed_and_others_left_alone() {
        let src: Ipv6Addr = "fd00:dc::2".parse().unwrap();
        let dst: Ipv6Addr = "fd00:dc::1".parse().unwrap();
        let mut udp = [0x9c, 0x40, 0x02, 0x23, 0x00, 0x0c, 0, 0, 1, 2, 3, 4];
        let partial = pseudo_header_sum(&src, &dst, udp.len());
        udp[6..8].copy_from_slice(&partial.to_be_bytes());
        assert_eq!(verify_checksum(&src, &dst, &udp), Err(Error::Checksum));
        assert_eq!(complete_partial_checksum(&src, &dst, &mut udp), Ok(true));
        assert_eq!(verify_checksum(&src, &dst, &udp), Ok(()));

        let mut corrupt = udp;
        corrupt[6] ^= 0x40;
        assert_eq!(
            complete_partial_checksum(&src, &dst, &mut corrupt),
            Ok(false)
        );
        assert_eq!(verify_checksum(&src, &dst, &corrupt), Err(Error::Checksum));
        assert_eq!(
            complete_partial_checksum(&src, &dst, &mut [0; 4]),
            Err(Error::Truncated("UDP header"))
        );
    }

    #[test]
    fn sum_fold_handles_end_around_carry() {
        let mut s = Sum::default();
        s.add(u64::MAX);
        s.add(1);
        // u64::MAX is negative zero; adding 1 gives 1.
        assert_eq!(s.fold(), 1);
        let mut s = Sum::default();
        s.add_bytes(&[0xff, 0xff, 0xff, 0xff, 0x00, 0x01]);
        assert_eq!(s.fold(), 0x0001);
    }

    #[test]
    fn sum_odd_tail_is_padded_on_the_right() {
        let mut s = Sum::default();
        s.add_bytes(&[0x12, 0x34, 0x56]);
        assert_eq!(s.fold(), 0x1234 + 0x5600);
    }

    #[test]
    fn checksum_ignores_the_carried_field() {
        let src = Ipv6Addr::LOCALHOST;
        let mut udp = [0x02, 0x22, 0x02, 0x23, 0x00, 0x09, 0x00, 0x00, 0x01];
        let zeroed = checksum(&src, &src, &udp);
        udp[6..8].copy_from_slice(&[0xde, 0xad]);
        assert_eq!(checksum(&src, &src, &udp), zeroed);
        fill_checksum(&src, &src, &mut udp).unwrap();
        assert_eq!(verify_checksum(&src, &src, &udp), Ok(()));
    }

    #[test]
    fn datagram_length_bounds_are_enforced() {
        let udp = [0, 1, 0, 2, 0, 7, 0, 0];
        assert_eq!(
            Datagram::parse(&udp),
            Err(Error::BadLength("UDP length under 8"))
        );
        let udp = [0, 1, 0, 2, 0, 9, 0, 0];
        assert_eq!(Datagram::parse(&udp), Err(Error::BadLength("UDP length")));
        let udp = [0, 1, 0, 2, 0, 8, 0, 0, 0xee];
        let d = Datagram::parse(&udp).unwrap();
        assert_eq!((d.as_bytes().len(), d.payload()), (8, &[][..]));
    }
}
