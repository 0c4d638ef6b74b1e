//! Zero-copy parsing of tag=value messages (FIX 4.4 Volume 2 / FIXT 1.1, "Message Format";
//! "Standard Message Header"; "Standard Message Trailer"; "CheckSum calculation").
//!
//! Parsing happens in two steps, so a stream can be split into messages before any of them is
//! trusted:
//!
//! 1. [`frame_len`] finds where the next message ends from `8=…|9=…|` and checks that `10=nnn|` sits
//!    exactly where BodyLength says. It reads at most a few dozen bytes before it knows the length,
//!    and refuses lengths beyond the configured maximum, so memory stays bounded whatever the peer
//!    announces.
//! 2. [`Message::parse_frame`] validates the CheckSum and the syntax of every field. After it
//!    succeeds, iteration and lookups cannot fail on framing and never panic: they hand out slices
//!    of the caller's buffer, borrowed for `'a`.

use super::tags::{AsTag, MsgType};
use super::value::{bad, parse_i64, parse_u64, Decimal, UtcTimestamp};
use super::FixError;

/// The field delimiter (Start Of Heading).
pub const SOH: u8 = 0x01;

/// The default upper bound for one message, header and trailer included (64 KiB).
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;

/// Longest accepted BeginString value (`FIXT.1.1` is 8 bytes).
const MAX_BEGIN_STRING: usize = 16;
/// Most digits accepted in BodyLength (zero-padded values from some engines included).
const MAX_BODY_LENGTH_DIGITS: usize = 9;
/// `10=nnn<SOH>`.
const TRAILER_LEN: usize = 7;

/// Where the next message in `buf` ends.
///
/// `Ok(Some(n))`: `buf[..n]` is one message whose framing is sound (pass it to
/// [`Message::parse_frame`]). `Ok(None)`: more bytes are needed; everything seen so far is valid.
/// An error means the stream cannot be split into messages any more.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, FixError> {
    Ok(frame(buf, max)?.map(|f| f.len))
}

/// Where a frame's parts are.
#[derive(Clone, Copy)]
struct Frame {
    len: usize,
    begin_end: usize,
    body_start: usize,
}

#[inline]
fn frame(buf: &[u8], max: usize) -> Result<Option<Frame>, FixError> {
    // 8=<BeginString><SOH>
    if !prefix_ok(buf, b"8=") {
        return Err(FixError::BadBeginString);
    }
    let search_end = buf.len().min(2 + MAX_BEGIN_STRING + 1);
    let Some(begin_soh) = buf[2.min(search_end)..search_end]
        .iter()
        .position(|&b| b == SOH)
        .map(|p| p + 2)
    else {
        return if buf.len() > 2 + MAX_BEGIN_STRING {
            Err(FixError::BadBeginString)
        } else {
            Ok(None)
        };
    };
    if begin_soh == 2 {
        return Err(FixError::BadBeginString);
    }
    // 9=<digits><SOH>
    let rest = &buf[begin_soh + 1..];
    if !prefix_ok(rest, b"9=") {
        return Err(FixError::BadBodyLength);
    }
    let mut body_len: usize = 0;
    let mut digits = 0;
    let mut i = 2;
    loop {
        let Some(&b) = rest.get(i) else {
            return Ok(None);
        };
        match b {
            b'0'..=b'9' if digits < MAX_BODY_LENGTH_DIGITS => {
                body_len = body_len * 10 + usize::from(b - b'0');
                digits += 1;
            }
            SOH if digits > 0 => break,
            _ => return Err(FixError::BadBodyLength),
        }
        i += 1;
    }
    let body_start = begin_soh + 1 + i + 1;
    let len = body_start + body_len + TRAILER_LEN;
    if len > max {
        return Err(FixError::TooLong { len, max });
    }
    // The body holds at least 35=x<SOH>.
    if body_len < 5 {
        return Err(FixError::BadBodyLength);
    }
    if buf.len() < len {
        return Ok(None);
    }
    let t = &buf[len - TRAILER_LEN..len];
    if buf[len - TRAILER_LEN - 1] != SOH
        || &t[..3] != b"10="
        || !t[3..6].iter().all(u8::is_ascii_digit)
        || t[6] != SOH
    {
        return Err(FixError::BadTrailer);
    }
    Ok(Some(Frame {
        len,
        begin_end: begin_soh,
        body_start,
    }))
}

/// `true` if `buf` starts with `prefix` or is a (possibly empty) beginning of it.
#[inline]
fn prefix_ok(buf: &[u8], prefix: &[u8]) -> bool {
    let n = buf.len().min(prefix.len());
    buf[..n] == prefix[..n]
}

/// Sum of the bytes modulo 256 (FIX 4.4 Volume 2, "CheckSum calculation").
#[inline]
pub fn checksum(bytes: &[u8]) -> u8 {
    // Sixteen-bit lanes summed in chunks vectorise well and cannot overflow within a chunk.
    let mut total: u32 = 0;
    for chunk in bytes.chunks(256) {
        let mut s: u32 = 0;
        for &b in chunk {
            s += u32::from(b);
        }
        total = total.wrapping_add(s);
    }
    total as u8
}

/// How many fields a [`Message`] indexes while it validates them.
const INDEXED: usize = 48;

/// A validated message, borrowing the buffer it was parsed from.
///
/// Validation records the tag and value position of the first 48 body fields in a fixed array
/// inside the message (no allocation), so a lookup compares small integers instead of scanning
/// bytes; fields beyond those (and tags above 65535) are found by scanning. Copying a message copies
/// that index (about 300 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    buf: &'a [u8],
    /// End of the BeginString value (its SOH).
    begin_end: u16,
    /// Start of the body (the `35=` field).
    body_start: u32,
    /// Start of the `10=` field.
    trailer: u32,
    /// End of the MsgType value.
    msg_type_end: u32,
    /// Fields in the index.
    indexed: u8,
    /// Every body field is in the index (else scan from after the last indexed one).
    complete: bool,
    tags: [u16; INDEXED],
    /// Value start and end (its SOH) of each indexed field.
    spans: [(u16, u16); INDEXED],
}

impl std::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SOH shown as '|', as FIX logs do.
        let text: String = self
            .buf
            .iter()
            .map(|&b| if b == SOH { '|' } else { char::from(b) })
            .collect();
        f.debug_tuple("Message").field(&text).finish()
    }
}

impl<'a> Message<'a> {
    /// Parses the first message in `buf` (at most [`DEFAULT_MAX_MESSAGE`] bytes): `Ok(None)` when it
    /// is not complete yet, else the message and its length.
    pub fn parse(buf: &'a [u8]) -> Result<Option<(Message<'a>, usize)>, FixError> {
        Message::parse_with_max(buf, DEFAULT_MAX_MESSAGE)
    }

    /// [`Message::parse`] with an explicit size limit.
    pub fn parse_with_max(
        buf: &'a [u8],
        max: usize,
    ) -> Result<Option<(Message<'a>, usize)>, FixError> {
        match frame(buf, max)? {
            Some(f) => Ok(Some((Message::validate(&buf[..f.len], f)?, f.len))),
            None => Ok(None),
        }
    }

    /// Validates one complete message as delimited by [`frame_len`] (the framing is checked
    /// again): CheckSum, MsgType as the third field, and the syntax of every field.
    pub fn parse_frame(frame_bytes: &'a [u8]) -> Result<Message<'a>, FixError> {
        match frame(frame_bytes, usize::MAX)? {
            Some(f) if f.len == frame_bytes.len() => Message::validate(frame_bytes, f),
            _ => Err(FixError::BadTrailer),
        }
    }

    fn validate(frame: &'a [u8], f: Frame) -> Result<Message<'a>, FixError> {
        let trailer = f.len - TRAILER_LEN;
        let declared = u32::from(frame[trailer + 3] - b'0') * 100
            + u32::from(frame[trailer + 4] - b'0') * 10
            + u32::from(frame[trailer + 5] - b'0');
        let computed = checksum(&frame[..trailer]);
        if declared != u32::from(computed) {
            return Err(FixError::BadChecksum {
                declared: declared as u8,
                computed,
            });
        }
        let body_start = f.body_start;
        if !frame[body_start..].starts_with(b"35=") {
            return Err(FixError::MissingMsgType);
        }
        let mut msg = Message {
            buf: frame,
            begin_end: f.begin_end as u16,
            body_start: body_start as u32,
            trailer: trailer as u32,
            msg_type_end: 0,
            indexed: 0,
            complete: true,
            tags: [0; INDEXED],
            spans: [(0, 0); INDEXED],
        };
        // Check every body field, indexing the first ones.
        let body = &frame[..trailer];
        let small = frame.len() <= usize::from(u16::MAX);
        let mut at = body_start;
        let mut n = 0;
        while at < trailer {
            let (tag, value_start, end) = scan_field(body, at)?;
            if n < INDEXED && small && tag <= u32::from(u16::MAX) {
                msg.tags[n] = tag as u16;
                msg.spans[n] = (value_start as u16, end as u16);
                n += 1;
            } else {
                msg.complete = false;
            }
            at = end + 1;
        }
        msg.indexed = n as u8;
        msg.msg_type_end = u32::from(msg.spans[0].1);
        if n == 0 {
            // Only when the message is too large to index: find MsgType's end by hand.
            msg.msg_type_end = (body_start
                + frame[body_start..]
                    .iter()
                    .position(|&b| b == SOH)
                    .unwrap_or(0)) as u32;
        }
        Ok(msg)
    }

    /// The whole message, header and trailer included.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// BeginString(8), e.g. `b"FIX.4.4"`.
    #[inline]
    pub fn begin_string(&self) -> &'a [u8] {
        &self.buf[2..usize::from(self.begin_end)]
    }

    /// MsgType(35).
    #[inline]
    pub fn msg_type(&self) -> MsgType {
        MsgType::from_bytes(self.msg_type_bytes())
    }

    /// MsgType(35) as sent (for message types without a [`MsgType`] name).
    #[inline]
    pub fn msg_type_bytes(&self) -> &'a [u8] {
        &self.buf[self.body_start as usize + 3..self.msg_type_end as usize]
    }

    /// The bytes BodyLength counts: from MsgType up to and including the SOH before CheckSum.
    #[inline]
    pub fn body(&self) -> &'a [u8] {
        &self.buf[self.body_start as usize..self.trailer as usize]
    }

    /// All fields from MsgType(35) to the last field before CheckSum(10), in order.
    #[inline]
    pub fn fields(&self) -> Fields<'a> {
        Fields { buf: self.body() }
    }

    /// The first value of `tag` (BeginString, BodyLength and CheckSum included).
    #[inline]
    pub fn get(&self, tag: impl AsTag) -> Option<&'a [u8]> {
        match tag.number() {
            8 => Some(self.begin_string()),
            9 => Some(&self.buf[usize::from(self.begin_end) + 3..self.body_start as usize - 1]),
            10 => Some(&self.buf[self.trailer as usize + 3..self.buf.len() - 1]),
            n => {
                let indexed = usize::from(self.indexed);
                if let Ok(short) = u16::try_from(n) {
                    if let Some(i) = self.tags[..indexed].iter().position(|&t| t == short) {
                        let (start, end) = self.spans[i];
                        return self.buf.get(usize::from(start)..usize::from(end));
                    }
                    if self.complete {
                        return None;
                    }
                }
                // Past the index: scan the rest.
                let from = match indexed {
                    0 => self.body_start as usize,
                    k if u16::try_from(n).is_ok() => usize::from(self.spans[k - 1].1) + 1,
                    _ => self.body_start as usize,
                };
                Fields {
                    buf: self.buf.get(from..self.trailer as usize)?,
                }
                .get(n)
            }
        }
    }

    /// The first `tag` field, for typed access.
    #[inline]
    pub fn field(&self, tag: impl AsTag) -> Option<Field<'a>> {
        let n = tag.number();
        self.get(n).map(|value| Field { tag: n, value })
    }

    /// A required field, or [`FixError::MissingField`].
    #[inline]
    pub fn require(&self, tag: impl AsTag) -> Result<Field<'a>, FixError> {
        self.field(tag).ok_or(FixError::MissingField(tag.number()))
    }

    /// A required string field.
    pub fn str(&self, tag: impl AsTag) -> Result<&'a str, FixError> {
        self.require(tag)?.as_str()
    }

    /// A required unsigned integer field (SeqNum, Length, NumInGroup…).
    pub fn u64(&self, tag: impl AsTag) -> Result<u64, FixError> {
        self.require(tag)?.as_u64()
    }

    /// A required signed integer field.
    pub fn i64(&self, tag: impl AsTag) -> Result<i64, FixError> {
        self.require(tag)?.as_i64()
    }

    /// A required single-character field (Side, OrdType, ExecType…).
    pub fn char(&self, tag: impl AsTag) -> Result<u8, FixError> {
        self.require(tag)?.as_char()
    }

    /// A required decimal field (Price, Qty…).
    pub fn decimal(&self, tag: impl AsTag) -> Result<Decimal, FixError> {
        self.require(tag)?.as_decimal()
    }

    /// A Boolean field; absent means `N`.
    pub fn flag(&self, tag: impl AsTag) -> Result<bool, FixError> {
        self.field(tag).map_or(Ok(false), |f| f.as_bool())
    }

    /// MsgSeqNum(34).
    pub fn seq_num(&self) -> Result<u64, FixError> {
        self.u64(34)
    }

    /// PossDupFlag(43) = Y.
    pub fn poss_dup(&self) -> bool {
        self.get(43) == Some(b"Y")
    }

    /// The repeating group counted by `count_tag`, whose entries consist of the tags in `members`
    /// (the first one is the delimiter that starts each entry).
    ///
    /// See [`Fields::group`].
    pub fn group(&self, count_tag: impl AsTag, members: &'a [u32]) -> Result<Group<'a>, FixError> {
        self.fields().group(count_tag, members)
    }
}

/// Reads the field starting at `at` (< `buf.len()`): its tag, value start and the index of its
/// SOH, which must be within `buf`.
#[inline]
fn scan_field(buf: &[u8], at: usize) -> Result<(u32, usize, usize), FixError> {
    let err = FixError::BadField { offset: at };
    let mut tag: u32 = 0;
    let mut i = at;
    loop {
        let &b = buf.get(i).ok_or(err)?;
        if b == b'=' {
            break;
        }
        let d = b.wrapping_sub(b'0');
        if d > 9 || i - at >= 9 {
            return Err(err);
        }
        tag = tag * 10 + u32::from(d);
        i += 1;
    }
    if i == at || tag == 0 {
        return Err(err);
    }
    let value_start = i + 1;
    match buf
        .get(value_start..)
        .and_then(|v| v.iter().position(|&b| b == SOH))
    {
        Some(0) | None => Err(err),
        Some(p) => Ok((tag, value_start, value_start + p)),
    }
}

/// One field: a tag and its raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The tag number.
    pub tag: u32,
    /// The value bytes (never empty, never containing SOH).
    pub value: &'a [u8],
}

impl<'a> Field<'a> {
    /// The value as UTF-8 text.
    pub fn as_str(&self) -> Result<&'a str, FixError> {
        std::str::from_utf8(self.value).map_err(|_| bad(self.tag))
    }
    /// The value as an unsigned integer.
    pub fn as_u64(&self) -> Result<u64, FixError> {
        parse_u64(self.value).ok_or(bad(self.tag))
    }
    /// The value as a signed integer.
    pub fn as_i64(&self) -> Result<i64, FixError> {
        parse_i64(self.value).ok_or(bad(self.tag))
    }
    /// The value as one character.
    pub fn as_char(&self) -> Result<u8, FixError> {
        match self.value {
            [c] => Ok(*c),
            _ => Err(bad(self.tag)),
        }
    }
    /// `Y` or `N`.
    pub fn as_bool(&self) -> Result<bool, FixError> {
        match self.value {
            b"Y" => Ok(true),
            b"N" => Ok(false),
            _ => Err(bad(self.tag)),
        }
    }
    /// The value as a decimal (Price, Qty, Amt…).
    pub fn as_decimal(&self) -> Result<Decimal, FixError> {
        Decimal::parse(self.value).ok_or(bad(self.tag))
    }
    /// The value as a UTCTimestamp.
    pub fn as_timestamp(&self) -> Result<UtcTimestamp, FixError> {
        UtcTimestamp::parse(self.value).ok_or(bad(self.tag))
    }
}

/// A run of validated fields: a message body or one repeating-group entry. Iterating yields
/// [`Field`]s in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    /// Whole fields, each ending in SOH (validated by [`Message::parse_frame`]).
    buf: &'a [u8],
}

impl<'a> Iterator for Fields<'a> {
    type Item = Field<'a>;

    #[inline]
    fn next(&mut self) -> Option<Field<'a>> {
        if self.buf.is_empty() {
            return None;
        }
        // Validated: digits, '=', a non-empty value, SOH. The fallbacks keep this panic-free
        // even so.
        let eq = self.buf.iter().position(|&b| b == b'=')?;
        let soh = eq + 1 + self.buf[eq + 1..].iter().position(|&b| b == SOH)?;
        let tag = parse_u64(&self.buf[..eq]).unwrap_or(0) as u32;
        let value = &self.buf[eq + 1..soh];
        self.buf = &self.buf[soh + 1..];
        Some(Field { tag, value })
    }
}

impl<'a> Fields<'a> {
    /// The bytes of these fields (each ending in SOH).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.buf
    }

    /// The first value of `tag`.
    #[inline]
    pub fn get(self, tag: impl AsTag) -> Option<&'a [u8]> {
        let tag = tag.number();
        let mut buf = self.buf;
        // Compare the tag's digits in place instead of parsing every tag.
        let mut digits = [0u8; 11];
        let n = {
            let mut tmp = [0u8; 20];
            let n = super::value::write_u64(u64::from(tag), &mut tmp);
            digits[..n].copy_from_slice(&tmp[..n]);
            digits[n] = b'=';
            n + 1
        };
        let key = &digits[..n];
        loop {
            let soh = buf.iter().position(|&b| b == SOH)?;
            if buf[..soh].starts_with(key) {
                return Some(&buf[n..soh]);
            }
            buf = &buf[soh + 1..];
        }
    }

    /// The first `tag` field.
    pub fn field(self, tag: impl AsTag) -> Option<Field<'a>> {
        let n = tag.number();
        self.get(n).map(|value| Field { tag: n, value })
    }

    /// The repeating group counted by `count_tag` (a NumInGroup field): entries start with
    /// `members[0]` (the delimiter) and continue while the tags are in `members`.
    ///
    /// A nested group's count and member tags must be listed in `members` too, so its fields stay in
    /// the outer entry; read it with [`Fields::group`] on the entry. An absent count field is an
    /// empty group. [`FixError::BadGroup`] when the number of entries found differs from the count.
    pub fn group(self, count_tag: impl AsTag, members: &'a [u32]) -> Result<Group<'a>, FixError> {
        let count_tag = count_tag.number();
        let Some(&delimiter) = members.first() else {
            return Err(FixError::BadGroup(count_tag));
        };
        let mut it = self;
        let count = loop {
            match it.next() {
                Some(f) if f.tag == count_tag => break f.as_u64()?,
                Some(_) => {}
                None => {
                    return Ok(Group {
                        rest: &[],
                        delimiter,
                        members: &[],
                        remaining: 0,
                    })
                }
            }
        };
        let start = it.buf;
        // Walk the group once to check the count and find where it ends.
        let mut found = 0u64;
        let mut end = 0;
        let mut probe = it;
        while let Some(f) = probe.next() {
            if f.tag == delimiter {
                found += 1;
            } else if !members.contains(&f.tag) || found == 0 {
                break;
            }
            end = start.len() - probe.buf.len();
        }
        if found != count {
            return Err(FixError::BadGroup(count_tag));
        }
        Ok(Group {
            rest: &start[..end],
            delimiter,
            members,
            remaining: count as usize,
        })
    }
}

/// The entries of a repeating group, each a [`Fields`] run starting with the delimiter tag.
#[derive(Debug, Clone, Copy)]
pub struct Group<'a> {
    rest: &'a [u8],
    delimiter: u32,
    members: &'a [u32],
    remaining: usize,
}

impl Group<'_> {
    /// The number of entries.
    pub fn len(&self) -> usize {
        self.remaining
    }
    /// `true` when the group has no entries.
    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl<'a> Iterator for Group<'a> {
    type Item = Fields<'a>;

    fn next(&mut self) -> Option<Fields<'a>> {
        if self.remaining == 0 || self.rest.is_empty() {
            return None;
        }
        let mut it = Fields { buf: self.rest };
        let mut end = 0;
        let mut first = true;
        while let Some(f) = it.next() {
            if !first && (f.tag == self.delimiter || !self.members.contains(&f.tag)) {
                break;
            }
            first = false;
            end = self.rest.len() - it.buf.len();
        }
        let entry = Fields {
            buf: &self.rest[..end],
        };
        self.rest = &self.rest[end..];
        self.remaining -= 1;
        Some(entry)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Group<'_> {}
