//! The codec's error type.

/// Everything the tag=value codec can reject. No variant allocates.
///
/// Framing errors ([`FixError::is_framing`]) mean the byte stream can no longer be split into
/// messages: the connection must be dropped. The others concern one message whose extent is known
/// (a garbled message, which FIX 4.4 Volume 2 says to ignore without consuming its sequence number,
/// or a field of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FixError {
    /// The message does not start with `8=` followed by a BeginString and SOH (a short one: at most
    /// 16 bytes).
    #[error("message does not start with 8=<BeginString><SOH>")]
    BadBeginString,
    /// The second field is not `9=<digits><SOH>` (zero-padded values are accepted; at most 9 digits).
    #[error("second field is not a valid BodyLength(9)")]
    BadBodyLength,
    /// The whole message would exceed the configured maximum.
    #[error("message of {len} bytes exceeds the maximum of {max}")]
    TooLong {
        /// Length announced by BodyLength, header and trailer included.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// `10=nnn<SOH>` is not where BodyLength says the body ends (a lying BodyLength or a corrupted
    /// message).
    #[error("no CheckSum(10) where BodyLength(9) says the body ends")]
    BadTrailer,
    /// The CheckSum does not match the bytes.
    #[error("CheckSum {declared:03} does not match the computed {computed:03}")]
    BadChecksum {
        /// What the message says.
        declared: u8,
        /// Sum of the bytes modulo 256.
        computed: u8,
    },
    /// A field is not `<tag>=<value><SOH>` with a positive decimal tag and a non-empty value.
    #[error("malformed field at byte {offset}")]
    BadField {
        /// Offset of the field in the message.
        offset: usize,
    },
    /// The third field is not MsgType(35).
    #[error("third field is not MsgType(35)")]
    MissingMsgType,
    /// A required field is absent.
    #[error("required field {0} is missing")]
    MissingField(u32),
    /// A field's value does not have the type the accessor asked for.
    #[error("field {0} has a value of the wrong type")]
    BadValue(u32),
    /// A repeating group has a different number of entries than its NumInGroup field says, or its
    /// first entry does not start with the delimiter tag.
    #[error("repeating group {0} does not match its count")]
    BadGroup(u32),
    /// The encoder was asked to write a value that would break framing (an SOH inside it).
    #[error("value for field {0} contains SOH")]
    SohInValue(u32),
}

impl FixError {
    /// `true` when the stream cannot be resynchronised: drop the connection.
    pub fn is_framing(&self) -> bool {
        matches!(
            self,
            FixError::BadBeginString
                | FixError::BadBodyLength
                | FixError::TooLong { .. }
                | FixError::BadTrailer
        )
    }
}
