//! FIX order entry: a sans-IO tag=value codec, a session layer and a client over any stream.
//!
//! What is implemented, by specification:
//!
//! - **Message format** ([`codec`]) — FIX 4.4 Volume 2 and FIXT 1.1: "Message Format" (tag=value,
//!   SOH), "Standard Message Header" (BeginString, BodyLength, MsgType first; SenderCompID,
//!   TargetCompID, MsgSeqNum, SendingTime, PossDupFlag, OrigSendingTime), "Standard Message Trailer"
//!   and "CheckSum calculation", "Repeating Groups"; data types of Volume 1 (int, Qty/Price as exact
//!   decimals, UTCTimestamp with milliseconds or microseconds).
//! - **Session layer** ([`session`]) — FIX 4.4 Volume 2 "Session Protocol" / FIXT 1.1 "FIX Session
//!   Protocol": Logon (HeartBtInt, ResetSeqNumFlag, Username/Password, DefaultApplVerID for
//!   FIXT.1.1), Heartbeat and TestRequest, ResendRequest served from a store with PossDupFlag and
//!   OrigSendingTime and SequenceReset-GapFill for administrative messages, SequenceReset (Reset and
//!   GapFill) received, session-level Reject, MsgSeqNum checks ("too low" without PossDupFlag ends
//!   the session with a Logout naming the reason) and the Logout handshake. Sequence numbers and
//!   sent messages persist in a crash-safe file store.
//! - **Transport** ([`client`], [`endpoint`]) — [`FixSession`] runs the session over any
//!   [`Stream`](crate::stream::Stream) (TCP, TLS, XDP); [`endpoint::FixEndpoint`] runs it in an
//!   [`IoService`](crate::service::IoService) with reconnects and heartbeats on the service timer.
//!
//! Versions: FIX.4.2, FIX.4.4, and FIXT.1.1 carrying FIX 5.0 SP2 application messages.

pub mod codec;

pub mod client;
#[cfg(any(feature = "tls-rustls", feature = "tls-openssl"))]
pub mod endpoint;
pub mod orders;
pub mod session;

pub use client::{FixEvent, FixSession, Outbox};
pub use session::{Now, Session, SessionConfig, Version};
