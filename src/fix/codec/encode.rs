//! Writing tag=value messages into one reused buffer (FIX 4.4 Volume 2, "Message Format",
//! "Standard Message Header", "CheckSum calculation").
//!
//! The body is written first, behind a gap reserved for `8=<BeginString>|9=<BodyLength>|`; when the
//! message is finished, that prefix is written right-aligned into the gap, so BodyLength never needs
//! zero padding and the body is never moved. CheckSum is summed once and appended. Once the buffer
//! has grown to the largest message sent, encoding allocates nothing.

use super::parse::{checksum, SOH};
use super::tags::AsTag;
use super::value::{write_u64, Decimal, TimePrecision, UtcTimestamp};
use super::FixError;

/// Room kept before the body for `8=` + BeginString (≤ 16) + `|9=` + BodyLength (≤ 9 digits) + `|`.
const PREFIX_ROOM: usize = 32;
/// Longest BeginString the encoder writes.
const MAX_BEGIN_STRING: usize = 16;

/// The standard header fields every message carries after MsgType.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    /// SenderCompID(49).
    pub sender: &'a str,
    /// TargetCompID(56).
    pub target: &'a str,
    /// MsgSeqNum(34).
    pub seq: u64,
    /// SendingTime(52), from the caller's clock.
    pub sending_time: UtcTimestamp,
    /// How SendingTime is written.
    pub precision: TimePrecision,
}

/// Builds one message at a time in a buffer that is reused from message to message.
///
/// ```
/// use hotwire::fix::codec::{Encoder, Header, Message, MsgType, TimePrecision, UtcTimestamp};
/// let mut enc = Encoder::new();
/// let header = Header {
///     sender: "DESK", target: "VENUE", seq: 7,
///     sending_time: UtcTimestamp(1_700_000_000_000_000_000), precision: TimePrecision::Millis,
/// };
/// enc.start(b"FIX.4.4", MsgType::Heartbeat.as_bytes(), &header);
/// let bytes = enc.finish().unwrap();
/// let (msg, _) = Message::parse(bytes).unwrap().unwrap();
/// assert_eq!(msg.seq_num(), Ok(7));
/// ```
#[derive(Debug)]
pub struct Encoder {
    buf: Vec<u8>,
    begin_string: [u8; MAX_BEGIN_STRING],
    begin_len: usize,
    /// Where the finished message starts in `buf`.
    start: usize,
    /// The first value containing SOH, reported by `finish`.
    error: Option<FixError>,
}

impl Default for Encoder {
    fn default() -> Self {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder with a 1 KiB buffer.
    pub fn new() -> Encoder {
        Encoder::with_capacity(1024)
    }

    /// An encoder whose buffer starts with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Encoder {
        let mut buf = Vec::with_capacity(capacity.max(PREFIX_ROOM + 64));
        buf.resize(PREFIX_ROOM, 0);
        Encoder {
            buf,
            begin_string: [0; MAX_BEGIN_STRING],
            begin_len: 0,
            start: PREFIX_ROOM,
            error: None,
        }
    }

    /// Starts a message: BeginString (at most 16 bytes; longer is cut), MsgType and the standard
    /// header fields SenderCompID, TargetCompID, MsgSeqNum and SendingTime.
    pub fn start(
        &mut self,
        begin_string: &[u8],
        msg_type: &[u8],
        header: &Header<'_>,
    ) -> &mut Self {
        self.start_bare(begin_string, msg_type);
        self.str(49u32, header.sender)
            .str(56u32, header.target)
            .u64(34u32, header.seq)
            .timestamp(52u32, header.sending_time, header.precision)
    }

    /// Starts a message with only BeginString and MsgType; the caller writes the header fields.
    pub fn start_bare(&mut self, begin_string: &[u8], msg_type: &[u8]) -> &mut Self {
        let n = begin_string.len().min(MAX_BEGIN_STRING);
        self.begin_string[..n].copy_from_slice(&begin_string[..n]);
        self.begin_len = n;
        self.buf.truncate(PREFIX_ROOM);
        self.start = PREFIX_ROOM;
        self.error = None;
        self.bytes(35u32, msg_type)
    }

    #[inline]
    fn tag(&mut self, tag: u32) {
        // Nearly every tag has one to four digits: write those without a loop.
        let d = |v: u32| b'0' + (v % 10) as u8;
        match tag {
            0..=9 => self.buf.extend_from_slice(&[d(tag), b'=']),
            10..=99 => self.buf.extend_from_slice(&[d(tag / 10), d(tag), b'=']),
            100..=999 => self
                .buf
                .extend_from_slice(&[d(tag / 100), d(tag / 10), d(tag), b'=']),
            1000..=9999 => self.buf.extend_from_slice(&[
                d(tag / 1000),
                d(tag / 100),
                d(tag / 10),
                d(tag),
                b'=',
            ]),
            _ => {
                let mut digits = [0u8; 20];
                let n = write_u64(u64::from(tag), &mut digits);
                self.buf.extend_from_slice(&digits[..n]);
                self.buf.push(b'=');
            }
        }
    }

    /// A field with raw bytes as its value (empty values and SOH are refused at [`finish`]).
    ///
    /// [`finish`]: Encoder::finish
    #[inline]
    pub fn bytes(&mut self, tag: impl AsTag, value: &[u8]) -> &mut Self {
        let tag = tag.number();
        if (value.is_empty() || value.contains(&SOH)) && self.error.is_none() {
            self.error = Some(FixError::SohInValue(tag));
        }
        self.tag(tag);
        self.buf.extend_from_slice(value);
        self.buf.push(SOH);
        self
    }

    /// A text field.
    #[inline]
    pub fn str(&mut self, tag: impl AsTag, value: &str) -> &mut Self {
        self.bytes(tag, value.as_bytes())
    }

    /// An unsigned integer field.
    #[inline]
    pub fn u64(&mut self, tag: impl AsTag, value: u64) -> &mut Self {
        self.tag(tag.number());
        let mut digits = [0u8; 20];
        let n = write_u64(value, &mut digits);
        self.buf.extend_from_slice(&digits[..n]);
        self.buf.push(SOH);
        self
    }

    /// A signed integer field.
    #[inline]
    pub fn i64(&mut self, tag: impl AsTag, value: i64) -> &mut Self {
        self.tag(tag.number());
        if value < 0 {
            self.buf.push(b'-');
        }
        let mut digits = [0u8; 20];
        let n = write_u64(value.unsigned_abs(), &mut digits);
        self.buf.extend_from_slice(&digits[..n]);
        self.buf.push(SOH);
        self
    }

    /// A one-character field (Side, OrdType…).
    #[inline]
    pub fn char(&mut self, tag: impl AsTag, value: u8) -> &mut Self {
        self.bytes(tag, &[value])
    }

    /// A Boolean field (`Y`/`N`).
    #[inline]
    pub fn bool(&mut self, tag: impl AsTag, value: bool) -> &mut Self {
        self.bytes(tag, if value { b"Y" } else { b"N" })
    }

    /// A decimal field (Price, Qty…), written exactly.
    #[inline]
    pub fn decimal(&mut self, tag: impl AsTag, value: Decimal) -> &mut Self {
        let mut out = [0u8; 24];
        let n = value.write(&mut out);
        self.bytes(tag, &out[..n])
    }

    /// A UTCTimestamp field.
    #[inline]
    pub fn timestamp(
        &mut self,
        tag: impl AsTag,
        value: UtcTimestamp,
        precision: TimePrecision,
    ) -> &mut Self {
        let mut out = [0u8; 24];
        let n = value.write(precision, &mut out);
        self.bytes(tag, &out[..n])
    }

    /// Appends whole fields copied from another message (each ending in SOH), e.g. a stored body
    /// being resent.
    #[inline]
    pub fn raw_fields(&mut self, fields: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(fields);
        self
    }

    /// Writes BeginString and BodyLength in front of the body, appends CheckSum, and returns the
    /// message. The bytes stay available through [`Encoder::as_bytes`] until the next `start`.
    pub fn finish(&mut self) -> Result<&[u8], FixError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let body_len = self.buf.len() - PREFIX_ROOM;
        let mut digits = [0u8; 20];
        let d = write_u64(body_len as u64, &mut digits);
        let prefix_len = 2 + self.begin_len + 1 + 2 + d + 1;
        let start = PREFIX_ROOM - prefix_len;
        let p = &mut self.buf[start..PREFIX_ROOM];
        p[..2].copy_from_slice(b"8=");
        p[2..2 + self.begin_len].copy_from_slice(&self.begin_string[..self.begin_len]);
        let mut i = 2 + self.begin_len;
        p[i] = SOH;
        p[i + 1..i + 3].copy_from_slice(b"9=");
        i += 3;
        p[i..i + d].copy_from_slice(&digits[..d]);
        p[i + d] = SOH;
        let sum = checksum(&self.buf[start..]);
        self.buf.extend_from_slice(&[
            b'1',
            b'0',
            b'=',
            b'0' + sum / 100,
            b'0' + sum / 10 % 10,
            b'0' + sum % 10,
            SOH,
        ]);
        self.start = start;
        Ok(&self.buf[start..])
    }

    /// The last finished message (empty before the first `finish`).
    pub fn as_bytes(&self) -> &[u8] {
        if self.start == PREFIX_ROOM {
            &[]
        } else {
            &self.buf[self.start..]
        }
    }
}
