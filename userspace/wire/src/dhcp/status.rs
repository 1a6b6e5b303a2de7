//! The Status Code option (RFC 8415 §21.13).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |       OPTION_STATUS_CODE      |         option-len            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |          status-code          |                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               |
//! .                        status-message                         .
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use super::StatusCode;
use crate::Result;
use crate::codec::{Reader, Writer};
use crate::option::{EmitOption, OptionCode};

/// A Status Code option (RFC 8415 §21.13): a code and a message meant for humans.
///
/// The message "MUST NOT be null-terminated" and should be UTF-8; it is kept as bytes so that a
/// parsed option round-trips even when a peer sends something else.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusCodeOption<'a> {
    /// The status code.
    pub code: StatusCode,
    /// The status message, as sent.
    pub message: &'a [u8],
}

impl<'a> StatusCodeOption<'a> {
    /// A status with a UTF-8 message.
    pub const fn new(code: StatusCode, message: &'a str) -> Self {
        Self {
            code,
            message: message.as_bytes(),
        }
    }

    /// Parses the option data (after the 4-byte option header): at least the 2-byte code.
    pub fn parse(data: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(data);
        let code = StatusCode(r.u16("STATUS_CODE")?);
        Ok(Self {
            code,
            message: r.take_rest(),
        })
    }

    /// The message as text, or `None` if it is not valid UTF-8.
    pub fn message_str(&self) -> Option<&'a str> {
        core::str::from_utf8(self.message).ok()
    }
}

impl EmitOption for StatusCodeOption<'_> {
    fn code(&self) -> OptionCode {
        OptionCode::STATUS_CODE
    }
    fn data_len(&self) -> usize {
        2 + self.message.len()
    }
    fn emit_data(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u16(self.code.0)?;
        w.put(self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;

    #[test]
    fn status_parse_reads_code_and_message() {
        let s = StatusCodeOption::parse(&[0, 2, b'n', b'o']).unwrap();
        assert_eq!(s.code, StatusCode::NO_ADDRS_AVAIL);
        assert_eq!(s.message_str(), Some("no"));
        assert_eq!(
            StatusCodeOption::parse(&[0]),
            Err(Error::Truncated("STATUS_CODE"))
        );
    }

    #[test]
    fn status_non_utf8_message_kept_as_bytes() {
        let s = StatusCodeOption::parse(&[0, 0, 0xff]).unwrap();
        assert_eq!(s.message_str(), None);
        assert_eq!(s.message, &[0xff]);
    }

    #[test]
    fn status_emit_writes_header_and_data() {
        let s = StatusCodeOption::new(StatusCode::SUCCESS, "ok");
        let mut buf = [0xa5; 8];
        s.emit(&mut Writer::new(&mut buf)).unwrap();
        assert_eq!(buf, [0, 13, 0, 4, 0, 0, b'o', b'k']);
        assert_eq!(s.wire_len(), 8);
    }
}
