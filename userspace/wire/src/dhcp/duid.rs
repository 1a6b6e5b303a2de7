//! DHCP Unique Identifiers (RFC 8415 §11).
//!
//! A DUID is opaque to a server: two DUIDs are the same client exactly when their bytes are
//! equal (RFC 8415 §11: "DUIDs are intended to be compared as opaque values"). The typed
//! accessors below only help logging and configuration (e.g. matching a MAC address).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           DUID-Type           |  DUID-specific contents ...   |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               |
//! .                                                               .
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::fmt;

use crate::codec::{Reader, Writer};
use crate::registry::registry;
use crate::{Error, Result};

registry! {
    /// IANA "DUID Types" (RFC 8415 §11.1; DUID-UUID from RFC 6355).
    pub struct DuidType(u16) { LLT = 1, EN = 2, LL = 3, UUID = 4 }
}

/// Largest DUID-specific contents (RFC 8415 §11.1: "must not exceed 128 octets").
pub const MAX_DUID_CONTENTS: usize = 128;
/// Largest DUID on the wire: the 2-byte type plus [`MAX_DUID_CONTENTS`].
pub const MAX_DUID_LEN: usize = 2 + MAX_DUID_CONTENTS;

/// A DUID (RFC 8415 §11): a 2-byte type and 1 to 128 bytes of contents. Zero-copy and opaque:
/// equality and hashing are over the bytes. Any type is accepted, including unassigned ones.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Duid<'a> {
    bytes: &'a [u8],
}

/// The fields of a DUID-LLT (RFC 8415 §11.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DuidLlt<'a> {
    /// IANA hardware type (1 = Ethernet).
    pub hw_type: u16,
    /// Seconds since midnight (UTC), January 1, 2000, modulo 2^32.
    pub time: u32,
    /// The link-layer address.
    pub link_layer: &'a [u8],
}

/// The fields of a DUID-EN (RFC 8415 §11.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DuidEn<'a> {
    /// The vendor's IANA private enterprise number.
    pub enterprise: u32,
    /// The vendor-assigned identifier.
    pub identifier: &'a [u8],
}

/// The fields of a DUID-LL (RFC 8415 §11.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DuidLl<'a> {
    /// IANA hardware type (1 = Ethernet).
    pub hw_type: u16,
    /// The link-layer address.
    pub link_layer: &'a [u8],
}

impl<'a> Duid<'a> {
    /// Checks the DUID length rules of RFC 8415 §11.1: a 2-byte type followed by 1 to 128
    /// bytes. The contents of known types are not checked here (see the typed accessors):
    /// servers must treat DUIDs as opaque.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < 3 {
            return Err(Error::Truncated("DUID"));
        }
        if bytes.len() > MAX_DUID_LEN {
            return Err(Error::Malformed("DUID longer than 130 bytes"));
        }
        Ok(Self { bytes })
    }

    /// The DUID bytes, type included.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Length of the DUID in bytes, type included (3..=130).
    pub const fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always `false`: a parsed DUID holds at least 3 bytes.
    pub const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The DUID type (RFC 8415 §11.1).
    pub fn duid_type(&self) -> DuidType {
        let mut r = Reader::new(self.bytes);
        DuidType(r.u16("DUID type").unwrap_or_default())
    }

    /// The DUID-specific contents, after the type.
    pub fn contents(&self) -> &'a [u8] {
        self.bytes.get(2..).unwrap_or_default()
    }

    /// The fields of a DUID-LLT (RFC 8415 §11.2), or `None` for another type or a DUID-LLT
    /// shorter than its 8-byte fixed part.
    pub fn llt(&self) -> Option<DuidLlt<'a>> {
        if self.duid_type() != DuidType::LLT {
            return None;
        }
        let mut r = Reader::new(self.contents());
        let hw_type = r.u16("DUID-LLT").ok()?;
        let time = r.u32("DUID-LLT").ok()?;
        Some(DuidLlt {
            hw_type,
            time,
            link_layer: r.take_rest(),
        })
    }

    /// The fields of a DUID-EN (RFC 8415 §11.3), or `None` for another type or a DUID-EN
    /// shorter than its enterprise number.
    pub fn en(&self) -> Option<DuidEn<'a>> {
        if self.duid_type() != DuidType::EN {
            return None;
        }
        let mut r = Reader::new(self.contents());
        let enterprise = r.u32("DUID-EN").ok()?;
        Some(DuidEn {
            enterprise,
            identifier: r.take_rest(),
        })
    }

    /// The fields of a DUID-LL (RFC 8415 §11.4), or `None` for another type or a DUID-LL
    /// shorter than its hardware type.
    pub fn ll(&self) -> Option<DuidLl<'a>> {
        if self.duid_type() != DuidType::LL {
            return None;
        }
        let mut r = Reader::new(self.contents());
        let hw_type = r.u16("DUID-LL").ok()?;
        Some(DuidLl {
            hw_type,
            link_layer: r.take_rest(),
        })
    }

    /// The 16-byte UUID of a DUID-UUID (RFC 6355 §4), or `None` for another type or a
    /// DUID-UUID whose contents are not exactly 16 bytes.
    pub fn uuid(&self) -> Option<[u8; 16]> {
        if self.duid_type() != DuidType::UUID {
            return None;
        }
        self.contents().try_into().ok()
    }

    /// The link-layer address of a DUID-LLT or DUID-LL, with its hardware type (RFC 6939 §4
    /// lets a server use it when the client's link-layer address is otherwise unknown).
    pub fn link_layer(&self) -> Option<(u16, &'a [u8])> {
        self.llt()
            .map(|l| (l.hw_type, l.link_layer))
            .or_else(|| self.ll().map(|l| (l.hw_type, l.link_layer)))
    }

    /// Writes a DUID of type `duid_type` with `contents` into `buf` and returns its length.
    /// Fails with [`Error::Malformed`] unless `contents` is 1 to 128 bytes.
    pub fn emit_raw(duid_type: DuidType, contents: &[u8], buf: &mut [u8]) -> Result<usize> {
        Self::emit_parts(duid_type, &[contents], buf)
    }

    /// Writes a DUID-LLT (RFC 8415 §11.2) into `buf` and returns its length.
    pub fn emit_llt(hw_type: u16, time: u32, addr: &[u8], buf: &mut [u8]) -> Result<usize> {
        Self::emit_parts(
            DuidType::LLT,
            &[&hw_type.to_be_bytes(), &time.to_be_bytes(), addr],
            buf,
        )
    }

    /// Writes a DUID-EN (RFC 8415 §11.3) into `buf` and returns its length.
    pub fn emit_en(enterprise: u32, identifier: &[u8], buf: &mut [u8]) -> Result<usize> {
        Self::emit_parts(DuidType::EN, &[&enterprise.to_be_bytes(), identifier], buf)
    }

    /// Writes a DUID-LL (RFC 8415 §11.4) into `buf` and returns its length.
    pub fn emit_ll(hw_type: u16, addr: &[u8], buf: &mut [u8]) -> Result<usize> {
        Self::emit_parts(DuidType::LL, &[&hw_type.to_be_bytes(), addr], buf)
    }

    /// Writes a DUID-UUID (RFC 6355 §4) into `buf` and returns its length (always 18).
    pub fn emit_uuid(uuid: &[u8; 16], buf: &mut [u8]) -> Result<usize> {
        Self::emit_parts(DuidType::UUID, &[uuid], buf)
    }

    fn emit_parts(duid_type: DuidType, parts: &[&[u8]], buf: &mut [u8]) -> Result<usize> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len == 0 || len > MAX_DUID_CONTENTS {
            return Err(Error::Malformed("DUID contents not 1 to 128 bytes"));
        }
        let mut w = Writer::new(buf);
        w.u16(duid_type.0)?;
        for part in parts {
            w.put(part)?;
        }
        Ok(w.position())
    }
}

impl fmt::Debug for Duid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Duid({:?}:", self.duid_type())?;
        for b in self.contents() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duid_parse_length_bounds_enforced() {
        assert_eq!(Duid::parse(&[]), Err(Error::Truncated("DUID")));
        assert_eq!(Duid::parse(&[0, 3]), Err(Error::Truncated("DUID")));
        assert!(Duid::parse(&[0, 3, 1]).is_ok());
        assert!(Duid::parse(&[0; 130]).is_ok());
        assert_eq!(
            Duid::parse(&[0; 131]),
            Err(Error::Malformed("DUID longer than 130 bytes"))
        );
    }

    #[test]
    fn duid_llt_fields_decoded() {
        // RFC 8415 §11.2 layout: type 1, hw type 1 (Ethernet), time, MAC.
        let bytes = [
            0, 1, 0, 1, 0x2a, 0x3b, 0x4c, 0x5d, 0, 0x11, 0x22, 0x33, 0x44, 0x55,
        ];
        let duid = Duid::parse(&bytes).unwrap();
        assert_eq!(duid.duid_type(), DuidType::LLT);
        let llt = duid.llt().unwrap();
        assert_eq!(llt.hw_type, 1);
        assert_eq!(llt.time, 0x2a3b_4c5d);
        assert_eq!(llt.link_layer, &[0, 0x11, 0x22, 0x33, 0x44, 0x55]);
        assert_eq!(duid.link_layer(), Some((1, &bytes[8..])));
        assert_eq!(duid.en(), None);
        assert_eq!(duid.ll(), None);
        assert_eq!(duid.uuid(), None);
    }

    #[test]
    fn duid_short_llt_has_no_fields() {
        let duid = Duid::parse(&[0, 1, 0, 1, 0]).unwrap();
        assert_eq!(duid.llt(), None);
        assert_eq!(duid.link_layer(), None);
    }

    #[test]
    fn duid_constructors_round_trip() {
        let mut buf = [0xa5; MAX_DUID_LEN];
        let n = Duid::emit_ll(1, &[2, 3, 4, 5, 6, 7], &mut buf).unwrap();
        assert_eq!(&buf[..n], &[0, 3, 0, 1, 2, 3, 4, 5, 6, 7]);
        let duid = Duid::parse(&buf[..n]).unwrap();
        assert_eq!(
            duid.ll(),
            Some(DuidLl {
                hw_type: 1,
                link_layer: &[2, 3, 4, 5, 6, 7]
            })
        );

        let n = Duid::emit_en(9, b"abc", &mut buf).unwrap();
        let en = Duid::parse(&buf[..n]).unwrap().en().unwrap();
        assert_eq!((en.enterprise, en.identifier), (9, &b"abc"[..]));

        let n = Duid::emit_uuid(&[7; 16], &mut buf).unwrap();
        assert_eq!(n, 18);
        assert_eq!(Duid::parse(&buf[..n]).unwrap().uuid(), Some([7; 16]));

        let n = Duid::emit_llt(1, 5, &[1; 6], &mut buf).unwrap();
        assert_eq!(Duid::parse(&buf[..n]).unwrap().llt().unwrap().time, 5);
    }

    #[test]
    fn duid_constructor_rejects_bad_sizes() {
        let mut buf = [0; 200];
        assert!(matches!(
            Duid::emit_raw(DuidType(9), &[], &mut buf),
            Err(Error::Malformed(_))
        ));
        assert!(matches!(
            Duid::emit_raw(DuidType(9), &[0; 129], &mut buf),
            Err(Error::Malformed(_))
        ));
        assert_eq!(
            Duid::emit_ll(1, &[0; 6], &mut buf[..9]),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn duid_compares_as_bytes() {
        let a = Duid::parse(&[0, 3, 0, 1, 1]).unwrap();
        let b = Duid::parse(&[0, 3, 0, 1, 1]).unwrap();
        let c = Duid::parse(&[0, 3, 0, 1, 2]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(std::format!("{a:?}"), "Duid(LL:000101)");
    }
}
