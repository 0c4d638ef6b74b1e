//! Frame headers (RFC 6455 §5.2): opcodes, the three payload-length forms, the masking key, and
//! close-frame bodies (§5.5.1, §7.4).
//!
//! [`FrameHeader::parse`] reads a header from the front of a buffer and returns `Ok(None)` when more
//! bytes are needed; [`FrameHeader::emit`] writes one into a stack array. Which headers a *client* may
//! accept (no mask, no RSV bits, control-frame limits) is decided by the
//! [`Decoder`](super::Decoder), not here, so the same type describes both directions.

use super::error::ProtocolError;

/// A frame opcode (RFC 6455 §5.2, §11.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    /// `0x0`: a continuation of a fragmented message.
    Continuation = 0x0,
    /// `0x1`: the first (or only) frame of a text message.
    Text = 0x1,
    /// `0x2`: the first (or only) frame of a binary message.
    Binary = 0x2,
    /// `0x8`: close.
    Close = 0x8,
    /// `0x9`: ping.
    Ping = 0x9,
    /// `0xA`: pong.
    Pong = 0xA,
}

impl OpCode {
    /// The opcode for a 4-bit value, or `None` for the reserved ones.
    #[inline]
    pub fn from_u8(v: u8) -> Option<OpCode> {
        Some(match v {
            0x0 => OpCode::Continuation,
            0x1 => OpCode::Text,
            0x2 => OpCode::Binary,
            0x8 => OpCode::Close,
            0x9 => OpCode::Ping,
            0xA => OpCode::Pong,
            _ => return None,
        })
    }

    /// `true` for close, ping and pong (opcodes with the high bit set, §5.5).
    #[inline]
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

/// The largest control-frame payload (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// A decoded frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// FIN: this is the last frame of its message.
    pub fin: bool,
    /// RSV1..RSV3 in the low three bits.
    pub rsv: u8,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present when the mask bit is set.
    pub mask: Option<[u8; 4]>,
    /// The payload length (at most 2^63 - 1).
    pub payload_len: u64,
}

impl FrameHeader {
    /// The longest header: 2 bytes, an 8-byte length and a 4-byte key.
    pub const MAX_LEN: usize = 14;

    /// Parses a header from the front of `buf`.
    ///
    /// Returns the header and its length in bytes, `Ok(None)` when `buf` holds only part of it, or an
    /// error for a reserved opcode or a 64-bit length with the top bit set. Never panics.
    #[inline]
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let [b0, b1, ..] = *buf else {
            return Ok(None);
        };
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(ProtocolError::UnknownOpcode(b0 & 0x0F))?;
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut len) = match b1 & 0x7F {
            126 => match buf.get(2..4) {
                Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
                None => return Ok(None),
            },
            127 => match buf.get(2..10) {
                Some(b) => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    let n = u64::from_be_bytes(a);
                    if n >> 63 != 0 {
                        return Err(ProtocolError::LengthOverflow);
                    }
                    (n, 10)
                }
                None => return Ok(None),
            },
            n => (u64::from(n), 2),
        };
        let mask = if masked {
            match buf.get(len..len + 4) {
                Some(k) => {
                    len += 4;
                    Some([k[0], k[1], k[2], k[3]])
                }
                None => return Ok(None),
            }
        } else {
            None
        };
        Ok(Some((
            FrameHeader {
                fin: b0 & 0x80 != 0,
                rsv: (b0 >> 4) & 0x7,
                opcode,
                mask,
                payload_len,
            },
            len,
        )))
    }

    /// The number of bytes [`emit`](Self::emit) writes (the minimal length form, as §5.2 requires).
    #[inline]
    pub fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        };
        len + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Writes the header into `out` and returns its length. The length field always uses the
    /// shortest form; `payload_len` above 2^63 - 1 is clamped into the 63 bits the format allows.
    #[inline]
    pub fn emit(&self, out: &mut [u8; Self::MAX_LEN]) -> usize {
        out[0] = (u8::from(self.fin) << 7) | ((self.rsv & 0x7) << 4) | self.opcode as u8;
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut len = match self.payload_len {
            n @ 0..=125 => {
                out[1] = mask_bit | n as u8;
                2
            }
            n @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                4
            }
            n => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&(n & (u64::MAX >> 1)).to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[len..len + 4].copy_from_slice(&key);
            len += 4;
        }
        len
    }
}

/// `true` for a close status code that may appear in a close frame (§7.4.1, §7.4.2, and the codes
/// IANA registered since: 1012–1014). 1004–1006 and 1015 are reserved for local use and never sent.
#[inline]
pub fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The body of a close frame (§5.5.1): an optional status code and a UTF-8 reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseFrame<'a> {
    /// The status code; `None` for an empty body (reported locally as 1005, never sent).
    pub code: Option<u16>,
    /// The reason; empty when absent.
    pub reason: &'a str,
}

impl<'a> CloseFrame<'a> {
    /// Parses and validates a close body received from the peer.
    ///
    /// An empty body is valid (no code); a one-byte body, a code that must not be sent and a reason
    /// that is not UTF-8 are errors (the last one maps to close code 1007).
    pub fn parse(body: &'a [u8]) -> Result<CloseFrame<'a>, super::WsError> {
        match body {
            [] => Ok(CloseFrame {
                code: None,
                reason: "",
            }),
            [_] => Err(ProtocolError::ShortClose.into()),
            [hi, lo, reason @ ..] => {
                let code = u16::from_be_bytes([*hi, *lo]);
                if !is_valid_close_code(code) {
                    return Err(ProtocolError::InvalidCloseCode(code).into());
                }
                let reason =
                    simdutf8::basic::from_utf8(reason).map_err(|_| super::WsError::InvalidUtf8)?;
                Ok(CloseFrame {
                    code: Some(code),
                    reason,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_length_forms() {
        let (h, n) = FrameHeader::parse(&[0x81, 0x05]).unwrap().unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.payload_len, n),
            (true, OpCode::Text, 5, 2)
        );
        let (h, n) = FrameHeader::parse(&[0x02, 126, 0x01, 0x00])
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.fin, h.opcode, h.payload_len, n),
            (false, OpCode::Binary, 256, 4)
        );
        let (h, n) = FrameHeader::parse(&[0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0])
            .unwrap()
            .unwrap();
        assert_eq!((h.payload_len, n), (65536, 10));
    }

    #[test]
    fn incomplete_headers_need_more_bytes() {
        for buf in [
            &[][..],
            &[0x81],
            &[0x81, 126, 0],
            &[0x81, 127, 0, 0, 0, 0, 0, 0, 1],
            &[0x81, 0x85, 1, 2, 3],
        ] {
            assert_eq!(FrameHeader::parse(buf), Ok(None), "{buf:?}");
        }
    }

    #[test]
    fn rejects_reserved_opcodes_and_top_bit_lengths() {
        for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
            assert_eq!(
                FrameHeader::parse(&[0x80 | op, 0]),
                Err(ProtocolError::UnknownOpcode(op))
            );
        }
        assert_eq!(
            FrameHeader::parse(&[0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0]),
            Err(ProtocolError::LengthOverflow)
        );
    }

    #[test]
    fn emit_then_parse_round_trips() {
        let lens = [
            0u64,
            1,
            125,
            126,
            127,
            0xFFFF,
            0x1_0000,
            (1 << 40) + 3,
            u64::MAX >> 1,
        ];
        for &payload_len in &lens {
            for mask in [None, Some([1, 2, 3, 4])] {
                for (fin, rsv, opcode) in [
                    (true, 0, OpCode::Binary),
                    (false, 5, OpCode::Continuation),
                    (true, 0, OpCode::Ping),
                ] {
                    let h = FrameHeader {
                        fin,
                        rsv,
                        opcode,
                        mask,
                        payload_len,
                    };
                    let mut out = [0u8; FrameHeader::MAX_LEN];
                    let n = h.emit(&mut out);
                    assert_eq!(n, h.encoded_len());
                    assert_eq!(FrameHeader::parse(&out[..n]), Ok(Some((h, n))));
                    assert_eq!(FrameHeader::parse(&out[..n - 1]), Ok(None));
                }
            }
        }
    }

    #[test]
    fn emit_uses_the_minimal_length_form() {
        let mut out = [0u8; FrameHeader::MAX_LEN];
        let h = |payload_len| FrameHeader {
            fin: true,
            rsv: 0,
            opcode: OpCode::Text,
            mask: None,
            payload_len,
        };
        assert_eq!(h(125).emit(&mut out), 2);
        assert_eq!(h(126).emit(&mut out), 4);
        assert_eq!(&out[..4], &[0x81, 126, 0, 126]);
        assert_eq!(h(65536).emit(&mut out), 10);
    }

    #[test]
    fn close_bodies() {
        assert_eq!(
            CloseFrame::parse(&[]).unwrap(),
            CloseFrame {
                code: None,
                reason: ""
            }
        );
        assert!(matches!(
            CloseFrame::parse(&[3]),
            Err(super::super::WsError::Protocol(ProtocolError::ShortClose))
        ));
        let c = CloseFrame::parse(b"\x03\xe8bye").unwrap();
        assert_eq!((c.code, c.reason), (Some(1000), "bye"));
        for bad in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
        ] {
            assert!(
                matches!(
                    CloseFrame::parse(&bad.to_be_bytes()),
                    Err(super::super::WsError::Protocol(ProtocolError::InvalidCloseCode(c))) if c == bad
                ),
                "{bad}"
            );
        }
        for good in [
            1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
        ] {
            assert!(CloseFrame::parse(&good.to_be_bytes()).is_ok(), "{good}");
        }
        assert!(matches!(
            CloseFrame::parse(b"\x03\xe8\xce\xba\xed\xa0\x80"),
            Err(super::super::WsError::InvalidUtf8)
        ));
    }
}
