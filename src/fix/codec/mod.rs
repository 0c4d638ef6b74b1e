//! The tag=value codec: sans-IO parsing ([`Message`], [`frame_len`]) and encoding ([`Encoder`]).
//!
//! Implements the message format of FIX 4.4 Volume 2 and FIXT 1.1 ("Message Format", "Standard
//! Message Header", "Standard Message Trailer", "CheckSum calculation", "Repeating Groups") and the
//! data types of FIX 4.4 Volume 1 that an order-entry session needs. It never reads the clock:
//! SendingTime is passed in.

mod encode;
mod error;
mod parse;
mod tags;
mod value;

pub use encode::{Encoder, Header};
pub use error::FixError;
pub use parse::{checksum, frame_len, Field, Fields, Group, Message, DEFAULT_MAX_MESSAGE, SOH};
pub(crate) use tags::is_header_tag;
pub use tags::{AsTag, MsgType, Tag};
// For the venue (the appliance), which writes FIX numbers the same way.
#[cfg(feature = "venue")]
pub(crate) use value::write_u64;
pub use value::{Decimal, TimePrecision, UtcTimestamp};

#[cfg(test)]
mod tests;
