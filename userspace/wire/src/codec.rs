//! Bounds-checked cursors over byte slices: [`Reader`] for parsing, [`Writer`] for emitting.
//!
//! Every method checks its bounds and returns an [`Error`] instead of panicking; the rest of
//! the crate parses and emits only through these two types (or through slice methods that
//! cannot panic, such as `get` and `split_at_checked`).

use core::net::Ipv6Addr;

use crate::{Error, Result};

/// A cursor that reads big-endian integers and byte strings from a borrowed slice.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub const fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not read yet.
    pub const fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Number of bytes not read yet.
    pub const fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// `true` when everything has been read.
    pub const fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Takes the next `n` bytes; `what` names the field for the error.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        let (head, tail) = self.buf.split_at_checked(n).ok_or(Error::Truncated(what))?;
        self.buf = tail;
        Ok(head)
    }

    /// Takes everything that is left.
    pub fn take_rest(&mut self) -> &'a [u8] {
        core::mem::take(&mut self.buf)
    }

    /// Takes the next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let (head, tail) = self
            .buf
            .split_first_chunk::<N>()
            .ok_or(Error::Truncated(what))?;
        self.buf = tail;
        Ok(*head)
    }

    /// Reads a `u8`.
    pub fn u8(&mut self, what: &'static str) -> Result<u8> {
        Ok(self.array::<1>(what)?[0])
    }

    /// Reads a big-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16> {
        self.array(what).map(u16::from_be_bytes)
    }

    /// Reads a big-endian 24-bit integer (the DHCPv6 transaction id).
    pub fn u24(&mut self, what: &'static str) -> Result<u32> {
        let [a, b, c] = self.array(what)?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }

    /// Reads a big-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32> {
        self.array(what).map(u32::from_be_bytes)
    }

    /// Reads a 16-byte IPv6 address.
    pub fn ipv6(&mut self, what: &'static str) -> Result<Ipv6Addr> {
        self.array::<16>(what).map(Ipv6Addr::from)
    }

    /// Fails with [`Error::TrailingBytes`] unless everything has been read.
    pub fn finish(&self, what: &'static str) -> Result<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::TrailingBytes(what))
        }
    }
}

/// A cursor that writes into a caller-provided buffer. Writing past the end returns
/// [`Error::BufferTooSmall`]; nothing is ever partially written by a single `put_*` call.
#[derive(Debug)]
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// A writer at the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// The bytes written so far.
    pub fn written(&self) -> &[u8] {
        &self.buf[..self.pos]
    }

    /// Reserves the next `n` bytes and returns them for the caller to fill.
    pub fn reserve(&mut self, n: usize) -> Result<&mut [u8]> {
        let end = self.pos.checked_add(n).ok_or(Error::BufferTooSmall)?;
        let out = self
            .buf
            .get_mut(self.pos..end)
            .ok_or(Error::BufferTooSmall)?;
        self.pos = end;
        Ok(out)
    }

    /// Writes a byte string.
    pub fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.reserve(bytes.len())?.copy_from_slice(bytes);
        Ok(())
    }

    /// Writes a `u8`.
    pub fn u8(&mut self, v: u8) -> Result<()> {
        self.put(&[v])
    }

    /// Writes a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> Result<()> {
        self.put(&v.to_be_bytes())
    }

    /// Writes the low 24 bits of `v` big-endian (the DHCPv6 transaction id).
    pub fn u24(&mut self, v: u32) -> Result<()> {
        self.put(&v.to_be_bytes()[1..])
    }

    /// Writes a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> Result<()> {
        self.put(&v.to_be_bytes())
    }

    /// Writes a 16-byte IPv6 address.
    pub fn ipv6(&mut self, v: Ipv6Addr) -> Result<()> {
        self.put(&v.octets())
    }

    /// Writes a DHCPv6 option (RFC 8415 §21.1): the code, a length, then whatever `body`
    /// writes; the length is patched in afterwards. Fails if the body exceeds 65535 bytes.
    pub fn option(
        &mut self,
        code: u16,
        body: impl FnOnce(&mut Writer<'_>) -> Result<()>,
    ) -> Result<()> {
        self.u16(code)?;
        let len_at = self.pos;
        self.u16(0)?;
        body(self)?;
        let len = u16::try_from(self.pos - len_at - 2)
            .map_err(|_| Error::Malformed("option length over 65535"))?;
        self.buf[len_at..len_at + 2].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_reports_truncation_with_context() {
        let mut r = Reader::new(&[1, 2, 3]);
        assert_eq!(r.u16("a"), Ok(0x0102));
        assert_eq!(r.u16("b"), Err(Error::Truncated("b")));
        assert_eq!(r.u8("c"), Ok(3));
        assert_eq!(r.finish("x"), Ok(()));
    }

    #[test]
    fn reader_finish_rejects_trailing_bytes() {
        let r = Reader::new(&[1]);
        assert_eq!(r.finish("thing"), Err(Error::TrailingBytes("thing")));
    }

    #[test]
    fn writer_patches_option_length() {
        let mut buf = [0xa5; 8];
        let mut w = Writer::new(&mut buf);
        w.option(7, |w| w.put(&[1, 2, 3])).unwrap();
        assert_eq!(w.position(), 7);
        assert_eq!(buf, [0, 7, 0, 3, 1, 2, 3, 0xa5]);
    }

    #[test]
    fn writer_refuses_overflow_without_panicking() {
        let mut buf = [0u8; 3];
        let mut w = Writer::new(&mut buf);
        assert_eq!(w.u32(1), Err(Error::BufferTooSmall));
        assert_eq!(w.position(), 0);
        assert_eq!(w.option(1, |w| w.u8(1)), Err(Error::BufferTooSmall));
    }
}
