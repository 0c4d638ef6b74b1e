//! FIX order entry: a sans-IO tag=value codec, a session layer and a client over any stream.
//!
//! What is implemented, by specification:
//!
//! - **Message format** ([`codec`]) — FIX 4.4 Volume 2 and FIXT 1.1: "Message Format" (tag=value,
//!   SOH), "Standard Message Header" (BeginString, BodyLength, MsgType first; SenderCompID,
//!   TargetCompID, MsgSeqNum, SendingTime, PossDupFlag, OrigSendingTime), "Standard Message Trailer"
//!   and "CheckSum calculation", "Repeating Groups"; data types of Volume 1 (int, Qty/Price as exact
//!   decimals, UTCTimestamp with milliseconds or microseconds).
//! - **Session layer** ([`Session`]) — FIX 4.4 Volume 2 "Session Protocol" / FIXT 1.1 "FIX Session
//!   Protocol": Logon (HeartBtInt, ResetSeqNumFlag, Username/Password, DefaultApplVerID for
//!   FIXT.1.1), Heartbeat and TestRequest, ResendRequest served from a store with PossDupFlag and
//!   OrigSendingTime and SequenceReset-GapFill for administrative messages, SequenceReset (Reset and
//!   GapFill) received, session-level Reject, MsgSeqNum checks ("too low" without PossDupFlag ends
//!   the session with a Logout naming the reason), messages beyond a gap queued until the resend
//!   fills it, SendingTime accuracy (MaxLatency; Reject 10 and Logout) and the Logout handshake.
//!   Sequence numbers and sent messages persist in a crash-safe file store whose memory use does
//!   not grow with the messages sent.
//! - **Schedules** ([`schedule`]) — QuickFIX-style StartTime/EndTime/StartDay/EndDay in an IANA
//!   time zone: the endpoint connects only inside a period and resets the numbers for a new one.
//! - **Transport** ([`FixSession`], [`endpoint`]) — [`FixSession`] runs the session over any
//!   [`Stream`](crate::stream::Stream) (TCP, TLS, XDP); [`endpoint::FixEndpoint`] runs it in an
//!   [`IoService`](crate::service::IoService) with reconnects and heartbeats on the service timer.
//!
//! Versions: FIX.4.2, FIX.4.4, and FIXT.1.1 carrying FIX 5.0 SP2 application messages.
//!
//! ```no_run
//! use hotwire::fix::codec::Decimal;
//! use hotwire::fix::orders::{NewOrder, Side};
//! use hotwire::fix::{clock, FileStore, FixEvent, FixSession, SessionConfig, Version};
//! use hotwire::select::Selectable;
//! use hotwire::stream::{TcpOptions, TcpStream};
//!
//! # fn main() -> std::io::Result<()> {
//! let tcp = TcpStream::connect("127.0.0.1:9878".parse().unwrap(), &TcpOptions::default())?;
//! let config = SessionConfig::new(Version::Fix44, "DESK", "VENUE");
//! let store = FileStore::open("fix-store", "DESK", "VENUE")?; // the sequence survives restarts
//! let mut fix = FixSession::new(tcp, config, store, clock());
//! while !fix.poll_connect()? {} // TCP connect, then Logon (spin or wait on the fd)
//! let now = clock();
//! let order = NewOrder {
//!     cl_ord_id: "1", symbol: "HWIR", side: Side::Buy, qty: Decimal::new(100, 0),
//!     price: Some(Decimal::new(10125, 2)), time_in_force: None, account: None,
//! };
//! fix.send(now, NewOrder::MSG_TYPE, |e| order.encode(e, Version::Fix44, now.utc))?;
//! loop {
//!     if let Some(FixEvent::App(report)) = fix.receive(clock())? {
//!         println!("{report:?}");
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod codec;

// One public path per type: the session layer and its adapter are crate-private modules whose
// public items are all re-exported here.
pub(crate) mod client;
pub mod endpoint;
pub mod orders;
pub mod schedule;
pub(crate) mod session;

pub use client::{clock, into_io, FixEvent, FixSession, Outbox};
pub use session::{
    Action, AnyStore, FileStore, FsyncPolicy, MemoryStore, MessageStore, Now, Redacted, Session,
    SessionConfig, SessionError, SessionState, Version, DEFAULT_MEMORY_BYTES, MAX_QUEUED_OUTPUT,
};
