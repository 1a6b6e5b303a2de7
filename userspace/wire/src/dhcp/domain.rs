//! Domain names in DHCPv6 options (RFC 8415 §10): RFC 1035 §3.1 wire format, uncompressed.
//!
//! A name is a sequence of labels, each a length byte (1 to 63) and that many bytes, ended by a
//! zero byte; the whole name, length bytes and terminator included, is at most 255 bytes.
//! Compression pointers (length bytes with the top bits set) are not allowed in DHCPv6.
//! The Client FQDN option (RFC 4704 §4.2) may also carry a *partial* name: the same labels
//! without the terminating zero.

use core::fmt;

use crate::codec::Writer;
use crate::{Error, Result};

/// Longest label (RFC 1035 §2.3.4).
pub const MAX_LABEL_LEN: usize = 63;
/// Longest name on the wire, length bytes and terminator included (RFC 1035 §2.3.4).
pub const MAX_NAME_LEN: usize = 255;

/// Scans one name at the start of `bytes`. Returns the bytes it takes and whether it ended with
/// the zero label; an unterminated name must run to the end of `bytes`.
fn scan(bytes: &[u8]) -> Result<(usize, bool)> {
    let mut pos = 0usize;
    loop {
        let Some(&len) = bytes.get(pos) else {
            return Ok((pos, false));
        };
        let len = usize::from(len);
        if len > MAX_LABEL_LEN {
            return Err(Error::Malformed(
                "domain name label over 63 bytes or compressed",
            ));
        }
        // `pos` is at most 256 here (checked below), so this cannot overflow.
        let next = pos + 1 + len;
        if next > MAX_NAME_LEN || (len != 0 && next >= MAX_NAME_LEN) {
            return Err(Error::Malformed("domain name over 255 bytes"));
        }
        if next > bytes.len() {
            return Err(Error::Truncated("domain name label"));
        }
        pos = next;
        if len == 0 {
            return Ok((pos, true));
        }
    }
}

/// One domain name in wire format (RFC 8415 §10), validated: labels of 1 to 63 bytes, at most
/// 255 bytes in all, either ended by the zero label (fully qualified) or, in the Client FQDN
/// option only, partial (RFC 4704 §4.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DomainName<'a> {
    bytes: &'a [u8],
}

impl<'a> DomainName<'a> {
    /// Validates `bytes` as exactly one name, fully qualified or partial.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let (used, _) = scan(bytes)?;
        if used != bytes.len() {
            return Err(Error::TrailingBytes("domain name"));
        }
        Ok(Self { bytes })
    }

    /// The name in wire format.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// `true` if the name ends with the zero label (not partial). The root name `[0]` is fully
    /// qualified; the empty byte string is an empty partial name.
    pub fn is_fully_qualified(&self) -> bool {
        self.bytes.last() == Some(&0)
    }

    /// The labels, without length bytes and without the final empty label.
    pub fn labels(&self) -> Labels<'a> {
        Labels { rest: self.bytes }
    }
}

/// Iterator over the labels of a [`DomainName`].
#[derive(Clone, Debug)]
pub struct Labels<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Labels<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (&len, tail) = self.rest.split_first()?;
        let (label, tail) = tail.split_at_checked(usize::from(len))?;
        self.rest = tail;
        if label.is_empty() { None } else { Some(label) }
    }
}

impl fmt::Display for DomainName<'_> {
    /// Dotted presentation form; bytes other than letters, digits, `-` and `_` are written as
    /// `\DDD` (RFC 1035 §5.1). Fully qualified names end with a dot.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for label in self.labels() {
            if !first {
                f.write_str(".")?;
            }
            first = false;
            for &b in label {
                if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                    write!(f, "{}", char::from(b))?;
                } else {
                    write!(f, "\\{b:03}")?;
                }
            }
        }
        if self.is_fully_qualified() {
            f.write_str(".")
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for DomainName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DomainName({self})")
    }
}

/// Encodes a dotted name (`"host.example.com"`, a trailing dot is allowed) into `buf` in wire
/// format and returns the bytes written. With `fully_qualified` the zero label is appended;
/// without, a partial name is written (RFC 4704 §4.2). Empty labels, labels over 63 bytes and
/// names over 255 bytes are [`Error::Malformed`]. `""` and `"."` encode the root (or, partial,
/// the empty name).
pub fn encode_name(dotted: &str, fully_qualified: bool, buf: &mut [u8]) -> Result<usize> {
    let trimmed = dotted.strip_suffix('.').unwrap_or(dotted);
    let mut w = Writer::new(buf);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            let len = u8::try_from(label.len())
                .ok()
                .filter(|l| (1..=63).contains(l))
                .ok_or(Error::Malformed("domain name label empty or over 63 bytes"))?;
            w.u8(len)?;
            w.put(label.as_bytes())?;
        }
    }
    if fully_qualified {
        w.u8(0)?;
    }
    let n = w.position();
    if n > MAX_NAME_LEN || (!fully_qualified && n >= MAX_NAME_LEN) {
        return Err(Error::Malformed("domain name over 255 bytes"));
    }
    Ok(n)
}

/// A validated sequence of fully qualified names: the Domain Search List option (RFC 3646 §4,
/// referenced by RFC 8415 §10). Build one to emit with [`DomainList::parse`] over bytes from
/// [`DomainList::encode`].
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct DomainList<'a> {
    bytes: &'a [u8],
}

impl<'a> DomainList<'a> {
    /// Validates `bytes` as zero or more fully qualified names.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut rest = bytes;
        while !rest.is_empty() {
            let (used, terminated) = scan(rest)?;
            if !terminated {
                return Err(Error::Malformed("DOMAIN_LIST name not terminated"));
            }
            rest = rest.get(used..).unwrap_or_default();
        }
        Ok(Self { bytes })
    }

    /// Encodes dotted names into `buf` (each fully qualified) and returns the bytes written.
    pub fn encode(names: &[&str], buf: &mut [u8]) -> Result<usize> {
        let mut pos = 0;
        for name in names {
            let out = buf.get_mut(pos..).ok_or(Error::BufferTooSmall)?;
            pos += encode_name(name, true, out)?;
        }
        Ok(pos)
    }

    /// The names in wire format.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The names, in order.
    pub fn iter(&self) -> impl Iterator<Item = DomainName<'a>> + use<'a> {
        let mut rest = self.bytes;
        core::iter::from_fn(move || {
            let (used, _) = scan(rest).ok().filter(|&(used, _)| used > 0)?;
            let (name, tail) = rest.split_at_checked(used)?;
            rest = tail;
            Some(DomainName { bytes: name })
        })
    }
}

impl fmt::Debug for DomainList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec::Vec;

    #[test]
    fn name_encode_then_parse_round_trips() {
        let mut buf = [0xa5; 64];
        let n = encode_name("host.example.com.", true, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"\x04host\x07example\x03com\x00");
        let name = DomainName::parse(&buf[..n]).unwrap();
        assert!(name.is_fully_qualified());
        assert_eq!(name.to_string(), "host.example.com.");
        assert_eq!(name.labels().count(), 3);
    }

    #[test]
    fn name_partial_encoding_has_no_terminator() {
        let mut buf = [0; 16];
        let n = encode_name("host", false, &mut buf).unwrap();
        assert_eq!(&buf[..n], b"\x04host");
        let name = DomainName::parse(&buf[..n]).unwrap();
        assert!(!name.is_fully_qualified());
        assert_eq!(name.to_string(), "host");
        assert_eq!(DomainName::parse(&[]).unwrap().to_string(), "");
    }

    #[test]
    fn name_bad_labels_rejected() {
        let mut buf = [0; 300];
        assert!(encode_name("a..b", true, &mut buf).is_err());
        let long = "x".repeat(64);
        assert!(encode_name(&long, true, &mut buf).is_err());
        assert!(matches!(DomainName::parse(&[64]), Err(Error::Malformed(_))));
        assert!(matches!(
            DomainName::parse(&[0xc0, 0x0c]),
            Err(Error::Malformed(_))
        ));
        assert_eq!(
            DomainName::parse(&[3, b'a']),
            Err(Error::Truncated("domain name label"))
        );
        assert_eq!(
            DomainName::parse(&[0, 0]),
            Err(Error::TrailingBytes("domain name"))
        );
    }

    #[test]
    fn name_255_bytes_accepted_256_rejected() {
        // Four 63-byte labels = 256 bytes with the terminator: too long. 3*64 + 62 + 1 = 255.
        let mut ok = Vec::new();
        for len in [63u8, 63, 63, 61] {
            ok.push(len);
            ok.extend(std::iter::repeat_n(b'a', usize::from(len)));
        }
        ok.push(0);
        assert_eq!(ok.len(), 255);
        assert!(DomainName::parse(&ok).is_ok());
        let mut bad = Vec::new();
        for _ in 0..4 {
            bad.push(63);
            bad.extend([b'a'; 63]);
        }
        bad.push(0);
        assert!(matches!(DomainName::parse(&bad), Err(Error::Malformed(_))));
        let dotted = [
            "a".repeat(63),
            "a".repeat(63),
            "a".repeat(63),
            "a".repeat(62),
        ]
        .join(".");
        let mut buf = [0; 300];
        assert!(matches!(
            encode_name(&dotted, true, &mut buf),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn domain_list_requires_terminated_names() {
        let mut buf = [0; 64];
        let n = DomainList::encode(&["example.com", "example.org."], &mut buf).unwrap();
        let list = DomainList::parse(&buf[..n]).unwrap();
        let names: Vec<_> = list.iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["example.com.", "example.org."]);
        assert!(matches!(
            DomainList::parse(b"\x03com"),
            Err(Error::Malformed(_))
        ));
        assert_eq!(DomainList::parse(&[]).unwrap().iter().count(), 0);
    }
}
