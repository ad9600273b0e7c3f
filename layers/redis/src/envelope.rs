//! The bytes a change takes on the pub/sub channel and in the history lists.
//!
//! * Envelope (published on `{prefix}:changes`):
//!   `{stream}\n{epoch}\n{seq}\n{payload}`. Stream names (`app.Model`) and
//!   epochs (hex) never contain a newline, the sequence number is decimal,
//!   and the payload is everything after the third newline, so it may hold
//!   any bytes.
//! * History entry (in `{prefix}:history:{stream}`): `{unix_ms}\n{envelope}`,
//!   the time being Redis' own clock when the change was published.
//!
//! Both are written by the Lua scripts in `scripts.rs`; this module reads them.

use std::sync::Arc;

use bytes::Bytes;
use channels_binding_core::hub::{Delivered, StreamPosition};

/// Splits off the bytes before the next newline.
fn field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let at = bytes.iter().position(|&b| b == b'\n')?;
    Some((&bytes[..at], &bytes[at + 1..]))
}

/// Parses a decimal unsigned number (no sign, no spaces).
fn number(bytes: &[u8]) -> Option<u64> {
    if bytes.is_empty() || bytes.len() > 20 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// Decodes an envelope, or `None` when it is malformed.
pub(crate) fn decode(bytes: &[u8]) -> Option<Delivered> {
    let (stream, rest) = field(bytes)?;
    let (epoch, rest) = field(rest)?;
    let (seq, payload) = field(rest)?;
    let stream = std::str::from_utf8(stream).ok()?;
    let epoch = std::str::from_utf8(epoch).ok()?;
    if stream.is_empty() || epoch.is_empty() {
        return None;
    }
    Some(Delivered {
        stream: Arc::from(stream),
        position: StreamPosition {
            epoch: Arc::from(epoch),
            seq: number(seq)?,
        },
        payload: Bytes::copy_from_slice(payload),
    })
}

/// Decodes a history entry into its time (Unix milliseconds) and change.
pub(crate) fn decode_entry(bytes: &[u8]) -> Option<(u64, Delivered)> {
    let (time, envelope) = field(bytes)?;
    Some((number(time)?, decode(envelope)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_an_envelope_with_newlines_in_the_payload() {
        let delivered = decode(b"app.Model\nab12\n42\n{\"a\":\n1}").expect("valid");
        assert_eq!(&*delivered.stream, "app.Model");
        assert_eq!(&*delivered.position.epoch, "ab12");
        assert_eq!(delivered.position.seq, 42);
        assert_eq!(&delivered.payload[..], b"{\"a\":\n1}");
    }

    #[test]
    fn empty_payload_is_fine() {
        let delivered = decode(b"s\ne\n1\n").expect("valid");
        assert!(delivered.payload.is_empty());
    }

    #[test]
    fn rejects_malformed_envelopes() {
        for bad in [
            &b""[..],
            b"stream",
            b"stream\nepoch\n12",
            b"stream\nepoch\n-1\nx",
            b"stream\nepoch\n1.5\nx",
            b"\nepoch\n1\nx",
            b"stream\n\n1\nx",
            b"stream\nepoch\n99999999999999999999999\nx",
            b"\xff\nepoch\n1\nx",
        ] {
            assert!(decode(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn decodes_a_history_entry() {
        let (time, delivered) = decode_entry(b"1700000000123\ns\ne\n7\npayload").expect("valid");
        assert_eq!(time, 1_700_000_000_123);
        assert_eq!(delivered.position.seq, 7);
        assert!(decode_entry(b"x\ns\ne\n7\npayload").is_none());
    }
}
