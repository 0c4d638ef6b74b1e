//! Order-entry application messages: NewOrderSingle (35=D) out, ExecutionReport (35=8) in, with the
//! fields each version requires (FIX 4.2 and 4.4 Volume 4 "Order Handling"; FIX 5.0 SP2
//! "Single/General Order Handling").

use super::codec::{Decimal, Encoder, FixError, Message, Tag, TimePrecision, UtcTimestamp};
use super::session::Version;

/// Side(54).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Side {
    /// `1`.
    Buy,
    /// `2`.
    Sell,
}

impl Side {
    /// The wire value.
    pub fn as_byte(self) -> u8 {
        match self {
            Side::Buy => b'1',
            Side::Sell => b'2',
        }
    }
}

/// A NewOrderSingle. Fields not given are not sent.
#[derive(Debug, Clone, Copy)]
pub struct NewOrder<'a> {
    /// ClOrdID(11): unique per order and trading day.
    pub cl_ord_id: &'a str,
    /// Symbol(55).
    pub symbol: &'a str,
    /// Side(54).
    pub side: Side,
    /// OrderQty(38).
    pub qty: Decimal,
    /// Price(44): a limit order when given (OrdType 2), a market order (OrdType 1) when not.
    pub price: Option<Decimal>,
    /// TimeInForce(59), e.g. `b'0'` (Day), `b'3'` (IOC).
    pub time_in_force: Option<u8>,
    /// Account(1).
    pub account: Option<&'a str>,
}

impl NewOrder<'_> {
    /// MsgType of the message.
    pub const MSG_TYPE: &'static [u8] = b"D";

    /// Writes the body for `version`: HandlInst(21)=1 for FIX 4.2 (required there), TransactTime(60)
    /// from `now` for 4.4 and later (required there, allowed in 4.2).
    pub fn encode(&self, enc: &mut Encoder, version: Version, now: UtcTimestamp) {
        enc.str(Tag::ClOrdId, self.cl_ord_id);
        if let Some(a) = self.account {
            enc.str(Tag::Account, a);
        }
        if version == Version::Fix42 {
            enc.char(Tag::HandlInst, b'1');
        }
        enc.str(Tag::Symbol, self.symbol)
            .char(Tag::Side, self.side.as_byte())
            .timestamp(Tag::TransactTime, now, TimePrecision::Millis)
            .decimal(Tag::OrderQty, self.qty);
        match self.price {
            Some(p) => enc.char(Tag::OrdType, b'2').decimal(Tag::Price, p),
            None => enc.char(Tag::OrdType, b'1'),
        };
        if let Some(tif) = self.time_in_force {
            enc.char(Tag::TimeInForce, tif);
        }
    }
}

/// The fields of an ExecutionReport a desk looks at first, borrowed from the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecReport<'a> {
    /// ClOrdID(11).
    pub cl_ord_id: &'a [u8],
    /// OrderID(37).
    pub order_id: &'a [u8],
    /// ExecID(17).
    pub exec_id: &'a [u8],
    /// ExecType(150) (absent in FIX 4.0/4.1 reports: `0`).
    pub exec_type: u8,
    /// OrdStatus(39).
    pub ord_status: u8,
    /// LastPx(31), if present.
    pub last_px: Option<Decimal>,
    /// LastQty(32) (LastShares in FIX 4.2), if present.
    pub last_qty: Option<Decimal>,
    /// CumQty(14).
    pub cum_qty: Option<Decimal>,
    /// LeavesQty(151).
    pub leaves_qty: Option<Decimal>,
}

impl<'a> ExecReport<'a> {
    /// Reads an ExecutionReport; [`FixError::MissingField`] when a required field is absent.
    pub fn from_message(msg: &Message<'a>) -> Result<ExecReport<'a>, FixError> {
        let opt = |tag: Tag| msg.field(tag).map(|f| f.as_decimal()).transpose();
        Ok(ExecReport {
            cl_ord_id: msg.require(Tag::ClOrdId)?.value,
            order_id: msg.require(Tag::OrderId)?.value,
            exec_id: msg.require(Tag::ExecId)?.value,
            exec_type: msg.field(Tag::ExecType).map_or(Ok(b'0'), |f| f.as_char())?,
            ord_status: msg.char(Tag::OrdStatus)?,
            last_px: opt(Tag::LastPx)?,
            last_qty: opt(Tag::LastQty)?,
            cum_qty: opt(Tag::CumQty)?,
            leaves_qty: opt(Tag::LeavesQty)?,
        })
    }

    /// OrdStatus(39) = 2 (Filled).
    pub fn is_filled(&self) -> bool {
        self.ord_status == b'2'
    }
}
