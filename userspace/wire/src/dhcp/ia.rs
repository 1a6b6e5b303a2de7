//! Identity associations and their leases: IA_NA (RFC 8415 §21.4), IA_TA (§21.5, obsolete
//! since RFC 9915), IA Address (§21.6), IA_PD (§21.21) and IA Prefix (§21.22).
//!
//! Each type parses the option *data* (what follows the 4-byte option header), validates the
//! TLV structure of its nested options, and implements [`EmitOption`].

use core::net::Ipv6Addr;

use super::status::StatusCodeOption;
use crate::codec::{Reader, Writer};
use crate::option::{EmitOption, OptionCode, Options};
use crate::{Error, Result};

/// Nested options of a parsed container with `code`; none for a built (`List`) block.
fn nested<'a>(options: &Options<'a>, code: OptionCode) -> impl Iterator<Item = &'a [u8]> + use<'a> {
    super::find_all(options, code).map(|o| o.data)
}

/// The first Status Code option of a parsed container, if any (RFC 8415 §21.13: at most one
/// per container; later ones are ignored).
fn status<'a>(options: &Options<'a>) -> Result<Option<StatusCodeOption<'a>>> {
    nested(options, OptionCode::STATUS_CODE)
        .next()
        .map(StatusCodeOption::parse)
        .transpose()
}

/// Generates an identity association with the `IAID (4) | T1 (4) | T2 (4) | options` layout
/// shared by IA_NA (RFC 8415 §21.4) and IA_PD (RFC 8415 §21.21): the struct (with the doc
/// comments given), `parse`, an accessor for its lease options, `status` and [`EmitOption`].
macro_rules! ia_with_timers {
    (
        $(#[$doc:meta])*
        $name:ident, $code:ident, $label:literal,
        options: $options_doc:literal,
        $(#[$leases_doc:meta])*
        fn $leases:ident -> $lease:ident ($lease_code:ident)
    ) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub struct $name<'a> {
            /// Identity association identifier, chosen by the client.
            pub iaid: u32,
            /// Seconds until the client should contact its server to extend lifetimes (RENEW).
            pub t1: u32,
            /// Seconds until the client should contact any server (REBIND).
            pub t2: u32,
            #[doc = $options_doc]
            pub options: Options<'a>,
        }

        impl<'a> $name<'a> {
            #[doc = concat!(
                "Parses ", $label,
                " option data: the 12-byte fixed part then a TLV-validated option block."
            )]
            pub fn parse(data: &'a [u8]) -> Result<Self> {
                let mut r = Reader::new(data);
                let iaid = r.u32($label)?;
                let t1 = r.u32($label)?;
                let t2 = r.u32($label)?;
                Ok(Self {
                    iaid,
                    t1,
                    t2,
                    options: Options::parse(r.take_rest())?,
                })
            }

            $(#[$leases_doc])*
            pub fn $leases(&self) -> impl Iterator<Item = Result<$lease<'a>>> + 'a {
                nested(&self.options, OptionCode::$lease_code).map($lease::parse)
            }

            /// The first Status Code option, if any (parsed blocks only).
            pub fn status(&self) -> Result<Option<StatusCodeOption<'a>>> {
                status(&self.options)
            }
        }

        impl EmitOption for $name<'_> {
            fn code(&self) -> OptionCode {
                OptionCode::$code
            }
            fn data_len(&self) -> usize {
                12 + self.options.wire_len()
            }
            fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
                w.u32(self.iaid)?;
                w.u32(self.t1)?;
                w.u32(self.t2)?;
                self.options.emit(w)
            }
        }
    };
}

ia_with_timers! {
    /// An Identity Association for Non-temporary Addresses (RFC 8415 §21.4).
    ///
    /// ```text
    /// | IAID (4) | T1 (4) | T2 (4) | IA_NA-options ... |
    /// ```
    IaNa, IA_NA, "IA_NA",
    options: "IA Address and Status Code options, and anything else.",
    /// The IA Address options, parsed one by one (parsed blocks only).
    fn addresses -> IaAddr(IAADDR)
}

/// An Identity Association for Temporary Addresses (RFC 8415 §21.5). RFC 9915 made IA_TA
/// obsolete: Tandem parses it (and can re-emit it for round-trips) but never assigns
/// temporary addresses.
///
/// ```text
/// | IAID (4) | IA_TA-options ... |
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IaTa<'a> {
    /// Identity association identifier, chosen by the client.
    pub iaid: u32,
    /// IA Address and Status Code options, and anything else.
    pub options: Options<'a>,
}

impl<'a> IaTa<'a> {
    /// Parses IA_TA option data: the 4-byte IAID then a TLV-validated option block.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        let iaid = r.u32("IA_TA")?;
        Ok(Self {
            iaid,
            options: Options::parse(r.take_rest())?,
        })
    }

    /// The IA Address options, parsed one by one (parsed blocks only).
    pub fn addresses(&self) -> impl Iterator<Item = Result<IaAddr<'a>>> + 'a {
        nested(&self.options, OptionCode::IAADDR).map(IaAddr::parse)
    }

    /// The first Status Code option, if any (parsed blocks only).
    pub fn status(&self) -> Result<Option<StatusCodeOption<'a>>> {
        status(&self.options)
    }
}

impl EmitOption for IaTa<'_> {
    fn code(&self) -> OptionCode {
        OptionCode::IA_TA
    }
    fn data_len(&self) -> usize {
        4 + self.options.wire_len()
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u32(self.iaid)?;
        self.options.emit(w)
    }
}

ia_with_timers! {
    /// An Identity Association for Prefix Delegation (RFC 8415 §21.21).
    ///
    /// ```text
    /// | IAID (4) | T1 (4) | T2 (4) | IA_PD-options ... |
    /// ```
    IaPd, IA_PD, "IA_PD",
    options: "IA Prefix and Status Code options, and anything else.",
    /// The IA Prefix options, parsed one by one (parsed blocks only).
    fn prefixes -> IaPrefix(IAPREFIX)
}

/// An IA Address option (RFC 8415 §21.6), inside an IA_NA or IA_TA.
///
/// ```text
/// | IPv6-address (16) | preferred-lifetime (4) | valid-lifetime (4) | IAaddr-options ... |
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IaAddr<'a> {
    /// The address.
    pub addr: Ipv6Addr,
    /// Preferred lifetime in seconds (0xffffffff = infinity).
    pub preferred: u32,
    /// Valid lifetime in seconds (0xffffffff = infinity).
    pub valid: u32,
    /// Status Code option, and anything else.
    pub options: Options<'a>,
}

impl<'a> IaAddr<'a> {
    /// Parses IA Address option data: the 24-byte fixed part then a TLV-validated block.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        let addr = r.ipv6("IAADDR")?;
        let preferred = r.u32("IAADDR")?;
        let valid = r.u32("IAADDR")?;
        Ok(Self {
            addr,
            preferred,
            valid,
            options: Options::parse(r.take_rest())?,
        })
    }

    /// The first Status Code option, if any (parsed blocks only).
    pub fn status(&self) -> Result<Option<StatusCodeOption<'a>>> {
        status(&self.options)
    }
}

impl EmitOption for IaAddr<'_> {
    fn code(&self) -> OptionCode {
        OptionCode::IAADDR
    }
    fn data_len(&self) -> usize {
        24 + self.options.wire_len()
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.ipv6(self.addr)?;
        w.u32(self.preferred)?;
        w.u32(self.valid)?;
        self.options.emit(w)
    }
}

/// An IA Prefix option (RFC 8415 §21.22), inside an IA_PD.
///
/// ```text
/// | preferred-lifetime (4) | valid-lifetime (4) | prefix-length (1) | IPv6-prefix (16) |
/// | IAprefix-options ... |
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IaPrefix<'a> {
    /// Preferred lifetime in seconds (0xffffffff = infinity).
    pub preferred: u32,
    /// Valid lifetime in seconds (0xffffffff = infinity).
    pub valid: u32,
    /// Prefix length in bits, 0 to 128.
    pub prefix_len: u8,
    /// The prefix (bits past `prefix_len` are kept as sent).
    pub prefix: Ipv6Addr,
    /// Status Code option, and anything else.
    pub options: Options<'a>,
}

impl<'a> IaPrefix<'a> {
    /// Parses IA Prefix option data: the 25-byte fixed part then a TLV-validated block. A
    /// prefix length over 128 is [`Error::Malformed`].
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        let preferred = r.u32("IAPREFIX")?;
        let valid = r.u32("IAPREFIX")?;
        let prefix_len = r.u8("IAPREFIX")?;
        if prefix_len > 128 {
            return Err(Error::Malformed("IAPREFIX prefix length over 128"));
        }
        let prefix = r.ipv6("IAPREFIX")?;
        Ok(Self {
            preferred,
            valid,
            prefix_len,
            prefix,
            options: Options::parse(r.take_rest())?,
        })
    }

    /// The first Status Code option, if any (parsed blocks only).
    pub fn status(&self) -> Result<Option<StatusCodeOption<'a>>> {
        status(&self.options)
    }
}

impl EmitOption for IaPrefix<'_> {
    fn code(&self) -> OptionCode {
        OptionCode::IAPREFIX
    }
    fn data_len(&self) -> usize {
        25 + self.options.wire_len()
    }
    /// Fails with [`Error::Malformed`] if `prefix_len` is over 128.
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        if self.prefix_len > 128 {
            return Err(Error::Malformed("IAPREFIX prefix length over 128"));
        }
        w.u32(self.preferred)?;
        w.u32(self.valid)?;
        w.u8(self.prefix_len)?;
        w.ipv6(self.prefix)?;
        self.options.emit(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dhcp::StatusCode;

    fn emit_vec(o: &dyn EmitOption) -> std::vec::Vec<u8> {
        let mut buf = std::vec![0xa5; o.wire_len()];
        o.emit(&mut Writer::new(&mut buf)).unwrap();
        buf
    }

    #[test]
    fn ia_na_with_address_and_status_parses() {
        let status = StatusCodeOption::new(StatusCode::SUCCESS, "ok");
        let inner = [&status as &dyn EmitOption];
        let addr = IaAddr {
            addr: "2001:db8::1".parse().unwrap(),
            preferred: 100,
            valid: 200,
            options: Options::List(&inner),
        };
        let outer = [&addr as &dyn EmitOption];
        let ia = IaNa {
            iaid: 7,
            t1: 50,
            t2: 80,
            options: Options::List(&outer),
        };
        let bytes = emit_vec(&ia);
        assert_eq!(&bytes[..4], &[0, 3, 0, (12 + 4 + 24 + 4 + 4) as u8]);
        let parsed = IaNa::parse(&bytes[4..]).unwrap();
        assert_eq!(parsed, ia);
        let a = parsed.addresses().next().unwrap().unwrap();
        assert_eq!(a.addr, addr.addr);
        assert_eq!(a.status().unwrap().unwrap().message_str(), Some("ok"));
        assert_eq!(parsed.status(), Ok(None));
        assert_eq!(emit_vec(&parsed), bytes);
    }

    #[test]
    fn ia_na_short_fixed_part_truncated() {
        assert_eq!(IaNa::parse(&[0; 11]), Err(Error::Truncated("IA_NA")));
        assert_eq!(IaPd::parse(&[0; 11]), Err(Error::Truncated("IA_PD")));
        assert_eq!(IaTa::parse(&[0; 3]), Err(Error::Truncated("IA_TA")));
        assert_eq!(IaAddr::parse(&[0; 23]), Err(Error::Truncated("IAADDR")));
        assert_eq!(IaPrefix::parse(&[0; 24]), Err(Error::Truncated("IAPREFIX")));
    }

    #[test]
    fn ia_na_nested_length_past_end_rejected() {
        let mut data = [0u8; 12 + 5];
        data[12..].copy_from_slice(&[0, 5, 0, 9, 0]);
        assert_eq!(IaNa::parse(&data), Err(Error::BadLength("option")));
    }

    #[test]
    fn ia_prefix_len_129_malformed() {
        let mut data = [0u8; 25];
        data[8] = 129;
        assert!(matches!(IaPrefix::parse(&data), Err(Error::Malformed(_))));
        data[8] = 128;
        assert_eq!(IaPrefix::parse(&data).unwrap().prefix_len, 128);
        let bad = IaPrefix {
            preferred: 0,
            valid: 0,
            prefix_len: 200,
            prefix: Ipv6Addr::UNSPECIFIED,
            options: Options::default(),
        };
        let mut buf = [0; 29];
        assert!(matches!(
            bad.emit(&mut Writer::new(&mut buf)),
            Err(Error::Malformed(_))
        ));
    }

    #[test]
    fn ia_pd_prefixes_round_trip() {
        let p = IaPrefix {
            preferred: 1,
            valid: 2,
            prefix_len: 56,
            prefix: "2001:db8:1200::".parse().unwrap(),
            options: Options::default(),
        };
        let list = [&p as &dyn EmitOption];
        let pd = IaPd {
            iaid: 1,
            t1: 3,
            t2: 4,
            options: Options::List(&list),
        };
        let bytes = emit_vec(&pd);
        let parsed = IaPd::parse(&bytes[4..]).unwrap();
        assert_eq!(parsed.prefixes().next().unwrap().unwrap(), p);
        assert_eq!(emit_vec(&parsed), bytes);
        let ta = IaTa {
            iaid: 9,
            options: Options::default(),
        };
        assert_eq!(emit_vec(&ta), [0, 4, 0, 4, 0, 0, 0, 9]);
        assert_eq!(IaTa::parse(&[0, 0, 0, 9]).unwrap(), ta);
    }
}
