use core::fmt;

/// Result alias of this crate.
pub type Result<T> = core::result::Result<T, Error>;

/// Why a parse or an emit failed. Small and `Copy`: the context is a static string naming the
/// structure or field (`"IA_NA"`, `"UDP length"`), never data from the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input ends before the named structure or field does.
    Truncated(&'static str),
    /// A length field points past the end of its enclosing structure.
    BadLength(&'static str),
    /// Bytes are left over after a structure whose size is fixed by the protocol.
    TrailingBytes(&'static str),
    /// A field holds a value the protocol forbids (e.g. a prefix length over 128).
    Malformed(&'static str),
    /// A well-formed input this codec deliberately does not handle (e.g. IPv6 fragments).
    Unsupported(&'static str),
    /// Relay messages nested deeper than the 32-hop limit (RFC 8415 §7.6 HOP_COUNT_LIMIT of
    /// RFC 3315; RFC 8415 lowered the relay limit to 8, servers must still accept 32 levels).
    TooDeep,
    /// A UDP checksum does not match.
    Checksum,
    /// The output buffer is shorter than `buffer_len()`.
    BufferTooSmall,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated(what) => write!(f, "truncated {what}"),
            Self::BadLength(what) => write!(f, "length of {what} runs past its container"),
            Self::TrailingBytes(what) => write!(f, "trailing bytes after {what}"),
            Self::Malformed(what) => write!(f, "malformed {what}"),
            Self::Unsupported(what) => write!(f, "unsupported {what}"),
            Self::TooDeep => f.write_str("relay messages nested too deeply"),
            Self::Checksum => f.write_str("bad UDP checksum"),
            Self::BufferTooSmall => f.write_str("output buffer too small"),
        }
    }
}

impl core::error::Error for Error {}
