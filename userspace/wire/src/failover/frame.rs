//! TCP framing of the failover link (RFC 8156 §5.1, using RFC 5460 §5.1): every message on the
//! stream is preceded by a 2-octet big-endian message-size counting the octets that follow.
//!
//! ```text
//! +-------+-------+----------------------------------------+
//! | message-size  |  message (message-size octets)          |
//! +-------+-------+----------------------------------------+
//! ```
//!
//! [`split_frame`] cuts one frame off the front of a byte slice; [`FrameDecoder`] reassembles
//! frames from TCP reads in a caller-owned buffer (several messages per read, messages split
//! across reads), without allocation.

use core::fmt;

use crate::{Error, Result};

/// Length of the message-size prefix.
pub const FRAME_HEADER_LEN: usize = 2;

/// Largest message a frame can carry (the message-size is 16 bits).
pub const MAX_MESSAGE_LEN: usize = u16::MAX as usize;

/// Largest frame on the wire: prefix plus the largest message. A [`FrameDecoder`] buffer of
/// this size can hold any frame.
pub const MAX_FRAME_LEN: usize = FRAME_HEADER_LEN + MAX_MESSAGE_LEN;

/// Cuts the first frame off `buf`: `Ok(Some((message, consumed)))` when a whole frame is there
/// (`consumed` counts the prefix too), `Ok(None)` when more bytes are needed, and
/// `Err(Malformed)` for a zero-length frame (no message is shorter than its header).
pub fn split_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>> {
    let Some((len, rest)) = buf.split_first_chunk::<FRAME_HEADER_LEN>() else {
        return Ok(None);
    };
    let len = usize::from(u16::from_be_bytes(*len));
    if len == 0 {
        return Err(Error::Malformed("zero-length failover frame"));
    }
    Ok(rest
        .get(..len)
        .map(|message| (message, FRAME_HEADER_LEN + len)))
}

/// Writes the 2-octet message-size for a message of `message_len` octets into the start of
/// `buf`. Fails with `Malformed` for 0 or more than [`MAX_MESSAGE_LEN`] octets and with
/// `BufferTooSmall` if `buf` is shorter than 2 octets.
pub fn emit_frame_header(message_len: usize, buf: &mut [u8]) -> Result<()> {
    if message_len == 0 {
        return Err(Error::Malformed("zero-length failover frame"));
    }
    let len = u16::try_from(message_len)
        .map_err(|_| Error::Malformed("failover message longer than 65535 octets"))?;
    let head = buf
        .first_chunk_mut::<FRAME_HEADER_LEN>()
        .ok_or(Error::BufferTooSmall)?;
    *head = len.to_be_bytes();
    Ok(())
}

/// Reassembles frames from a byte stream inside a caller-owned buffer.
///
/// Usage: read from the socket into [`FrameDecoder::spare`], report the count with
/// [`FrameDecoder::commit`] (or copy bytes in with [`FrameDecoder::push`]), then take messages
/// out with [`FrameDecoder::next_message`] until it returns `Ok(None)`. A returned message
/// borrows the buffer until the next call. An error (zero-length frame, frame larger than the
/// buffer) means the stream cannot be resynchronised: it is returned again on every later call
/// and the connection should be dropped.
pub struct FrameDecoder<B> {
    buf: B,
    /// Start of the unconsumed bytes.
    start: usize,
    /// End of the received bytes.
    end: usize,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> FrameDecoder<B> {
    /// A decoder over `buf`. With fewer than [`MAX_FRAME_LEN`] bytes, frames that do not fit
    /// are reported as `Error::Unsupported`.
    pub const fn new(buf: B) -> Self {
        Self {
            buf,
            start: 0,
            end: 0,
        }
    }

    /// Bytes received and not yet taken out as messages.
    pub const fn buffered(&self) -> usize {
        self.end - self.start
    }

    /// Room for the next read: the unconsumed bytes are moved to the front of the buffer first.
    /// Empty when the buffer is full.
    pub fn spare(&mut self) -> &mut [u8] {
        self.compact();
        let end = self.end;
        self.buf.as_mut().get_mut(end..).unwrap_or_default()
    }

    /// Records that `n` bytes were written at the start of [`FrameDecoder::spare`]. Fails with
    /// `BufferTooSmall`, changing nothing, if that is more than the spare room.
    pub fn commit(&mut self, n: usize) -> Result<()> {
        let end = self.end.checked_add(n).ok_or(Error::BufferTooSmall)?;
        if end > self.buf.as_ref().len() {
            return Err(Error::BufferTooSmall);
        }
        self.end = end;
        Ok(())
    }

    /// Copies as much of `bytes` as fits into the buffer; returns how many were taken.
    pub fn push(&mut self, bytes: &[u8]) -> usize {
        let spare = self.spare();
        let n = spare.len().min(bytes.len());
        if let (Some(dst), Some(src)) = (spare.get_mut(..n), bytes.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.end += n;
        n
    }

    /// The next complete message (without its prefix), `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<&[u8]>> {
        let capacity = self.buf.as_ref().len();
        let pending = self
            .buf
            .as_ref()
            .get(self.start..self.end)
            .unwrap_or_default();
        match split_frame(pending)? {
            Some((message, consumed)) => {
                let from = self.start + FRAME_HEADER_LEN;
                let to = from + message.len();
                self.start += consumed;
                Ok(self.buf.as_ref().get(from..to))
            }
            None => {
                if let Some(len) = pending.first_chunk::<FRAME_HEADER_LEN>() {
                    let need = FRAME_HEADER_LEN + usize::from(u16::from_be_bytes(*len));
                    if need > capacity {
                        return Err(Error::Unsupported("failover frame larger than the buffer"));
                    }
                }
                Ok(None)
            }
        }
    }

    /// Moves the unconsumed bytes to the front of the buffer.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        let (start, end) = (self.start, self.end);
        self.buf.as_mut().copy_within(start..end, 0);
        self.end = end - start;
        self.start = 0;
    }

    /// The buffer back.
    pub fn into_inner(self) -> B {
        self.buf
    }
}

impl<B: AsRef<[u8]>> fmt::Debug for FrameDecoder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrameDecoder")
            .field("capacity", &self.buf.as_ref().len())
            .field("start", &self.start)
            .field("end", &self.end)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_frame_needs_more_then_splits() {
        assert_eq!(split_frame(&[]), Ok(None));
        assert_eq!(split_frame(&[0]), Ok(None));
        assert_eq!(split_frame(&[0, 3, 1, 2]), Ok(None));
        assert_eq!(
            split_frame(&[0, 3, 1, 2, 3, 9]),
            Ok(Some((&[1, 2, 3][..], 5)))
        );
    }

    #[test]
    fn split_frame_zero_length_is_malformed() {
        assert_eq!(
            split_frame(&[0, 0, 1]),
            Err(Error::Malformed("zero-length failover frame"))
        );
    }

    #[test]
    fn emit_frame_header_checks_length() {
        let mut b = [0xa5; 3];
        emit_frame_header(0x0102, &mut b).unwrap();
        assert_eq!(b, [1, 2, 0xa5]);
        assert!(emit_frame_header(0, &mut b).is_err());
        assert!(emit_frame_header(65536, &mut b).is_err());
        assert_eq!(
            emit_frame_header(1, &mut b[..1]),
            Err(Error::BufferTooSmall)
        );
    }

    #[test]
    fn decoder_rejects_frame_larger_than_buffer() {
        let mut d = FrameDecoder::new([0u8; 8]);
        assert_eq!(d.push(&[0, 7, 1]), 3);
        assert!(matches!(d.next_message(), Err(Error::Unsupported(_))));
        let mut d = FrameDecoder::new([0u8; 8]);
        d.push(&[0, 6, 1]);
        assert_eq!(d.next_message(), Ok(None));
    }

    #[test]
    fn decoder_commit_beyond_spare_fails() {
        let mut d = FrameDecoder::new([0u8; 4]);
        assert_eq!(d.spare().len(), 4);
        assert_eq!(d.commit(5), Err(Error::BufferTooSmall));
        assert_eq!(d.commit(4), Ok(()));
        assert_eq!(d.spare().len(), 0);
        assert_eq!(d.buffered(), 4);
    }
}
