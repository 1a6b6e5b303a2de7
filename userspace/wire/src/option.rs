//! The option layer shared by DHCPv6 and failover messages (RFC 8415 §21.1): option codes,
//! raw TLV iteration, and option blocks that are either parsed bytes or typed options to emit.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          option-code          |           option-len          |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                          option-data                          |
//! |                      (option-len octets)                      |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use core::fmt;

use crate::codec::{Reader, Writer};
use crate::registry::registry;
use crate::{Error, Result};

registry! {
    /// IANA "Option Codes" (DHCPv6 Parameters). Unknown codes are data, not errors: they are
    /// kept and re-emitted verbatim.
    pub struct OptionCode(u16) {
        CLIENTID = 1, SERVERID = 2, IA_NA = 3, IA_TA = 4, IAADDR = 5, ORO = 6, PREFERENCE = 7,
        ELAPSED_TIME = 8, RELAY_MSG = 9, AUTH = 11, UNICAST = 12, STATUS_CODE = 13,
        RAPID_COMMIT = 14, USER_CLASS = 15, VENDOR_CLASS = 16, VENDOR_OPTS = 17,
        INTERFACE_ID = 18, RECONF_MSG = 19, RECONF_ACCEPT = 20, SIP_SERVER_D = 21,
        SIP_SERVER_A = 22, DNS_SERVERS = 23, DOMAIN_LIST = 24, IA_PD = 25, IAPREFIX = 26,
        SNTP_SERVERS = 31, INFORMATION_REFRESH_TIME = 32, REMOTE_ID = 37, SUBSCRIBER_ID = 38,
        CLIENT_FQDN = 39, ERO = 43, LQ_QUERY = 44, CLIENT_DATA = 45, CLT_TIME = 46,
        LQ_RELAY_DATA = 47, LQ_CLIENT_LINK = 48, RELAY_ID = 53, NTP_SERVER = 56, VSS = 68,
        CLIENT_LINKLAYER_ADDR = 79, SOL_MAX_RT = 82, INF_MAX_RT = 83, LQ_BASE_TIME = 100,
        LQ_START_TIME = 101, LQ_END_TIME = 102,
        F_BINDING_STATUS = 114, F_CONNECT_FLAGS = 115, F_DNS_REMOVAL_INFO = 116,
        F_DNS_HOST_NAME = 117, F_DNS_ZONE_NAME = 118, F_DNS_FLAGS = 119,
        F_EXPIRATION_TIME = 120, F_MAX_UNACKED_BNDUPD = 121, F_MCLT = 122,
        F_PARTNER_LIFETIME = 123, F_PARTNER_LIFETIME_SENT = 124, F_PARTNER_DOWN_TIME = 125,
        F_PARTNER_RAW_CLT_TIME = 126, F_PROTOCOL_VERSION = 127, F_KEEPALIVE_TIME = 128,
        F_RECONFIGURE_DATA = 129, F_RELATIONSHIP_NAME = 130, F_SERVER_FLAGS = 131,
        F_SERVER_STATE = 132, F_START_TIME_OF_STATE = 133, F_STATE_EXPIRATION_TIME = 134,
        RELAY_SOURCE_PORT = 135,
    }
}

/// One option as it appears on the wire: its code and its undecoded data.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RawOption<'a> {
    /// The option code.
    pub code: OptionCode,
    /// The option data (`option-len` bytes).
    pub data: &'a [u8],
}

impl fmt::Debug for RawOption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}[", self.code)?;
        for b in self.data {
            write!(f, "{b:02x}")?;
        }
        f.write_str("]")
    }
}

impl<'a> RawOption<'a> {
    /// Bytes this option takes on the wire (4-byte header + data).
    pub const fn wire_len(&self) -> usize {
        4 + self.data.len()
    }
}

/// Iterates the options of a byte block. Yields one `Err` at the first malformed TLV (header
/// truncated or length past the end of the block) and then stops.
#[derive(Clone, Debug)]
pub struct OptionIter<'a> {
    reader: Reader<'a>,
    failed: bool,
}

impl<'a> OptionIter<'a> {
    /// Options of `block`.
    pub const fn new(block: &'a [u8]) -> Self {
        Self {
            reader: Reader::new(block),
            failed: false,
        }
    }
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = Result<RawOption<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.reader.is_empty() {
            return None;
        }
        let item = (|| {
            let code = OptionCode(self.reader.u16("option header")?);
            let len = self.reader.u16("option header")?;
            let data = self
                .reader
                .bytes(usize::from(len), "option data")
                .map_err(|_| Error::BadLength("option"))?;
            Ok(RawOption { code, data })
        })();
        self.failed = item.is_err();
        Some(item)
    }
}

/// A block of options whose TLV structure has been validated, so iterating it cannot fail.
/// This is what parsed messages and container options hold: zero-copy, and re-emitted byte for
/// byte, so unknown options round-trip untouched.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct RawOptions<'a> {
    bytes: &'a [u8],
}

impl<'a> RawOptions<'a> {
    /// Validates the TLV structure of `bytes` (not the contents of each option).
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        for opt in OptionIter::new(bytes) {
            opt?;
        }
        Ok(Self { bytes })
    }

    /// The empty block.
    pub const EMPTY: RawOptions<'static> = RawOptions { bytes: &[] };

    /// The raw bytes of the block.
    pub const fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// `true` if the block holds no option.
    pub const fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The options in wire order.
    pub fn iter(&self) -> impl Iterator<Item = RawOption<'a>> + use<'a> {
        // Validated in `parse`: `OptionIter` yields no `Err` on this block.
        OptionIter::new(self.bytes).filter_map(core::result::Result::ok)
    }

    /// The first option with `code`, if any.
    pub fn find(&self, code: OptionCode) -> Option<RawOption<'a>> {
        self.iter().find(|o| o.code == code)
    }

    /// All options with `code`, in wire order.
    pub fn find_all(&self, code: OptionCode) -> impl Iterator<Item = RawOption<'a>> + use<'a> {
        self.iter().filter(move |o| o.code == code)
    }

    /// Number of options with `code`.
    pub fn count(&self, code: OptionCode) -> usize {
        self.find_all(code).count()
    }
}

impl fmt::Debug for RawOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Something that can be emitted as one option: typed DHCPv6 options, failover options, and
/// [`RawOption`] (verbatim). Lets option lists mix the two families without allocation.
pub trait EmitOption {
    /// The option code.
    fn code(&self) -> OptionCode;
    /// Length of the option data (without the 4-byte header).
    fn data_len(&self) -> usize;
    /// Writes the option data (without the header); must write exactly `data_len()` bytes.
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()>;

    /// Bytes the whole option takes on the wire.
    fn wire_len(&self) -> usize {
        4 + self.data_len()
    }

    /// Writes the whole option, header included.
    fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.option(self.code().0, |w| self.emit_data(w))
    }
}

impl EmitOption for RawOption<'_> {
    fn code(&self) -> OptionCode {
        self.code
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.put(self.data)
    }
}

/// The options inside a message or a container option: either bytes taken from a parsed
/// packet (re-emitted verbatim) or a list of options to emit, built by the caller without
/// allocation (e.g. an array on the stack).
#[derive(Clone, Copy)]
pub enum Options<'a> {
    /// Parsed, validated option bytes.
    Raw(RawOptions<'a>),
    /// Options to emit, in this order.
    List(&'a [&'a dyn EmitOption]),
}

impl Default for Options<'_> {
    fn default() -> Self {
        Self::Raw(RawOptions::EMPTY)
    }
}

impl fmt::Debug for Options<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Raw(raw) => raw.fmt(f),
            Self::List(list) => f
                .debug_list()
                .entries(list.iter().map(|o| (o.code(), o.data_len())))
                .finish(),
        }
    }
}

impl<'a> Options<'a> {
    /// Validates `bytes` as an option block.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        RawOptions::parse(bytes).map(Self::Raw)
    }

    /// Bytes the block takes on the wire.
    pub fn wire_len(&self) -> usize {
        match self {
            Self::Raw(raw) => raw.as_bytes().len(),
            Self::List(list) => list.iter().map(|o| o.wire_len()).sum(),
        }
    }

    /// Writes the block.
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        match self {
            Self::Raw(raw) => w.put(raw.as_bytes()),
            Self::List(list) => list.iter().try_for_each(|o| o.emit(w)),
        }
    }

    /// The parsed bytes, if this block came from a packet.
    pub const fn raw(&self) -> Option<RawOptions<'a>> {
        match self {
            Self::Raw(raw) => Some(*raw),
            Self::List(_) => None,
        }
    }
}

impl PartialEq for Options<'_> {
    /// Two blocks are equal when they emit the same bytes (compared without allocation).
    fn eq(&self, other: &Self) -> bool {
        if self.wire_len() != other.wire_len() {
            return false;
        }
        let mut a = [0u8; 2048];
        let mut b = [0u8; 2048];
        match (self, other) {
            (Self::Raw(x), Self::Raw(y)) => x.as_bytes() == y.as_bytes(),
            _ if self.wire_len() <= a.len() => {
                let n = self.wire_len();
                let ok_a = self.emit(&mut Writer::new(&mut a[..n])).is_ok();
                let ok_b = other.emit(&mut Writer::new(&mut b[..n])).is_ok();
                ok_a && ok_b && a[..n] == b[..n]
            }
            // Larger typed blocks only occur in tests that compare emitted bytes directly.
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn option_iter_yields_options_then_stops() {
        let block = [0, 1, 0, 2, 0xaa, 0xbb, 0, 14, 0, 0];
        let opts: std::vec::Vec<_> = OptionIter::new(&block).collect();
        assert_eq!(opts.len(), 2);
        assert_eq!(
            opts[0],
            Ok(RawOption {
                code: OptionCode::CLIENTID,
                data: &[0xaa, 0xbb]
            })
        );
        assert_eq!(
            opts[1],
            Ok(RawOption {
                code: OptionCode::RAPID_COMMIT,
                data: &[]
            })
        );
    }

    #[test]
    fn option_iter_reports_length_past_end_once() {
        let block = [0, 1, 0, 9, 0xaa];
        let opts: std::vec::Vec<_> = OptionIter::new(&block).collect();
        assert_eq!(opts, [Err(Error::BadLength("option"))]);
        assert_eq!(RawOptions::parse(&block), Err(Error::BadLength("option")));
    }

    #[test]
    fn option_iter_reports_truncated_header() {
        assert_eq!(
            RawOptions::parse(&[0, 1, 0]),
            Err(Error::Truncated("option header"))
        );
    }

    #[test]
    fn unknown_codes_debug_as_hex() {
        assert_eq!(
            std::format!("{:?}", OptionCode(0xfff0)),
            "OptionCode(0xfff0)"
        );
        assert_eq!(std::format!("{:?}", OptionCode::IA_PD), "IA_PD");
    }

    #[test]
    fn list_and_raw_blocks_compare_by_emitted_bytes() {
        let block = [0, 14, 0, 0];
        let raw = Options::parse(&block).unwrap();
        let rapid = RawOption {
            code: OptionCode::RAPID_COMMIT,
            data: &[],
        };
        let list = [&rapid as &dyn EmitOption];
        assert_eq!(raw, Options::List(&list));
    }
}
