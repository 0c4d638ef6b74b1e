//! Field value types: integers, decimals (Price, Qty) and UTCTimestamp, parsed from and written to
//! ASCII without allocating (FIX 4.4 Volume 1, "Data Types"; FIX 5.0 SP2 adds nothing these need).

use super::FixError;

/// A decimal number as FIX writes it (`-12.3450`): `mantissa × 10^-scale`, exact.
///
/// Prices and quantities stay decimal end to end, so `100.10` is sent as `100.10` and never as
/// `100.09999999999999`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Decimal {
    /// The digits as an integer.
    pub mantissa: i64,
    /// How many of them are after the point (at most 18).
    pub scale: u8,
}

impl Decimal {
    /// `mantissa × 10^-scale`.
    pub const fn new(mantissa: i64, scale: u8) -> Decimal {
        Decimal { mantissa, scale }
    }

    /// Parses `[-]digits[.digits]` (at most 18 significant digits).
    pub fn parse(v: &[u8]) -> Option<Decimal> {
        let (neg, digits) = match v.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, v),
        };
        if digits.is_empty() {
            return None;
        }
        let mut mantissa: i64 = 0;
        let mut scale: Option<u8> = None;
        let mut count = 0usize;
        for &b in digits {
            match b {
                b'0'..=b'9' => {
                    count += 1;
                    if count > 18 {
                        return None;
                    }
                    mantissa = mantissa * 10 + i64::from(b - b'0');
                    if let Some(s) = scale.as_mut() {
                        *s += 1;
                    }
                }
                b'.' if scale.is_none() => scale = Some(0),
                _ => return None,
            }
        }
        if count == 0 {
            return None;
        }
        Some(Decimal {
            mantissa: if neg { -mantissa } else { mantissa },
            scale: scale.unwrap_or(0),
        })
    }

    /// The nearest `f64` (for display and statistics, not for prices on the wire).
    pub fn to_f64(self) -> f64 {
        self.mantissa as f64 / 10f64.powi(i32::from(self.scale))
    }

    /// Writes the decimal into `out`, returning the bytes used (at most 21).
    pub fn write(self, out: &mut [u8; 24]) -> usize {
        let mut digits = [0u8; 20];
        let n = write_u64(self.mantissa.unsigned_abs(), &mut digits);
        // Parsed decimals have at most 18 fractional digits; a hand-made one is held to that too,
        // so the output always fits.
        let scale = usize::from(self.scale.min(18));
        let mut len = 0;
        if self.mantissa < 0 {
            out[0] = b'-';
            len = 1;
        }
        if scale == 0 {
            out[len..len + n].copy_from_slice(&digits[..n]);
            return len + n;
        }
        if n > scale {
            let int = n - scale;
            out[len..len + int].copy_from_slice(&digits[..int]);
            len += int;
            out[len] = b'.';
            len += 1;
            out[len..len + scale].copy_from_slice(&digits[int..n]);
            len + scale
        } else {
            out[len] = b'0';
            out[len + 1] = b'.';
            len += 2;
            for _ in 0..scale - n {
                out[len] = b'0';
                len += 1;
            }
            out[len..len + n].copy_from_slice(&digits[..n]);
            len + n
        }
    }
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut buf = [0u8; 24];
        let n = self.write(&mut buf);
        // Only ASCII digits, '-' and '.' are written.
        f.write_str(std::str::from_utf8(&buf[..n]).map_err(|_| std::fmt::Error)?)
    }
}

/// Parses an unsigned decimal integer of 1 to 19 digits (leading zeros allowed).
#[inline]
pub(crate) fn parse_u64(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 19 {
        return None;
    }
    let mut n: u64 = 0;
    for &b in v {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    Some(n)
}

/// Parses a signed decimal integer.
#[inline]
pub(crate) fn parse_i64(v: &[u8]) -> Option<i64> {
    match v.split_first() {
        Some((b'-', rest)) => parse_u64(rest)
            .filter(|&n| n <= i64::MAX as u64 + 1)
            .map(|n| (n as i64).wrapping_neg()),
        _ => parse_u64(v).and_then(|n| i64::try_from(n).ok()),
    }
}

/// Writes `n` in decimal at the start of `out`, returning the length.
#[inline]
pub(crate) fn write_u64(mut n: u64, out: &mut [u8; 20]) -> usize {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let len = tmp.len() - i;
    out[..len].copy_from_slice(&tmp[i..]);
    len
}

/// How many fractional digits a UTCTimestamp carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TimePrecision {
    /// `YYYYMMDD-HH:MM:SS`.
    Seconds,
    /// `YYYYMMDD-HH:MM:SS.sss` (every FIX version).
    #[default]
    Millis,
    /// `YYYYMMDD-HH:MM:SS.ssssss` (FIX 4.2 and later engines accept it; FIX 5.0 SP2 specifies it).
    Micros,
}

/// A UTC time as nanoseconds since the Unix epoch: what the caller's clock says, passed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UtcTimestamp(pub u64);

impl UtcTimestamp {
    /// From a `SystemTime` the caller read (times before 1970 become the epoch).
    pub fn from_system_time(t: std::time::SystemTime) -> UtcTimestamp {
        let nanos = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        UtcTimestamp(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Writes `YYYYMMDD-HH:MM:SS[.sss|.ssssss]` into `out`, returning the length (17, 21 or 24).
    pub fn write(self, precision: TimePrecision, out: &mut [u8; 24]) -> usize {
        let secs = self.0 / 1_000_000_000;
        let sub = self.0 % 1_000_000_000;
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let tod = secs % 86_400;
        let two = |out: &mut [u8], at: usize, v: u64| {
            out[at] = b'0' + (v / 10) as u8;
            out[at + 1] = b'0' + (v % 10) as u8;
        };
        let year = year.clamp(0, 9999) as u64;
        two(out, 0, year / 100);
        two(out, 2, year % 100);
        two(out, 4, u64::from(month));
        two(out, 6, u64::from(day));
        out[8] = b'-';
        two(out, 9, tod / 3600);
        out[11] = b':';
        two(out, 12, tod / 60 % 60);
        out[14] = b':';
        two(out, 15, tod % 60);
        let (digits, mut frac) = match precision {
            TimePrecision::Seconds => return 17,
            TimePrecision::Millis => (3, sub / 1_000_000),
            TimePrecision::Micros => (6, sub / 1_000),
        };
        out[17] = b'.';
        for i in (0..digits).rev() {
            out[18 + i] = b'0' + (frac % 10) as u8;
            frac /= 10;
        }
        18 + digits
    }

    /// Parses `YYYYMMDD-HH:MM:SS` with an optional fraction of up to 9 digits.
    pub fn parse(v: &[u8]) -> Option<UtcTimestamp> {
        if v.len() < 17 || v[8] != b'-' || v[11] != b':' || v[14] != b':' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| parse_u64(&v[r]);
        let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
        let (h, m, s) = (num(9..11)?, num(12..14)?, num(15..17)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || h > 23 || m > 59 || s > 60 {
            return None;
        }
        let mut nanos = 0;
        if v.len() > 17 {
            let frac = &v[18..];
            if v[17] != b'.' || frac.is_empty() || frac.len() > 9 {
                return None;
            }
            nanos = parse_u64(frac)? * 10u64.pow(9 - frac.len() as u32);
        }
        let days = days_from_civil(year as i64, month as u32, day as u32);
        let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + m * 60 + s;
        // Beyond 2554 the nanoseconds no longer fit: not a time this crate can represent.
        secs.checked_mul(1_000_000_000)?
            .checked_add(nanos)
            .map(UtcTimestamp)
    }
}

/// Proleptic Gregorian date for a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 for a proleptic Gregorian date (the inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Maps a value parse failure to the codec error for `tag`.
#[inline]
pub(crate) fn bad(tag: u32) -> FixError {
    FixError::BadValue(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_parse_and_write() {
        for (text, m, s) in [
            ("100.10", 10010, 2),
            ("-0.005", -5, 3),
            ("42", 42, 0),
            ("0.0", 0, 1),
            ("-12.3450", -123450, 4),
        ] {
            let d = Decimal::parse(text.as_bytes()).unwrap();
            assert_eq!(d, Decimal::new(m, s), "{text}");
            let written = d.to_string();
            let expected = if text == "-0.005" { "-0.005" } else { text };
            assert_eq!(written, expected);
        }
        for bad in ["", "-", ".", "1.2.3", "1e5", "12345678901234567890", "+1"] {
            assert_eq!(Decimal::parse(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(Decimal::new(5, 3).to_string(), "0.005");
        assert_eq!(
            Decimal::new(-i64::MAX, 200).to_string(),
            "-9.223372036854775807"
        );
        assert!((Decimal::new(10010, 2).to_f64() - 100.10).abs() < 1e-9);
    }

    #[test]
    fn integers() {
        assert_eq!(parse_u64(b"000123"), Some(123));
        assert_eq!(parse_u64(b""), None);
        assert_eq!(parse_u64(b"12a"), None);
        assert_eq!(parse_u64(b"99999999999999999999"), None);
        assert_eq!(parse_i64(b"-42"), Some(-42));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        let mut out = [0u8; 20];
        for n in [0, 7, 10, 12345, u64::MAX] {
            let len = write_u64(n, &mut out);
            assert_eq!(&out[..len], n.to_string().as_bytes());
        }
    }

    #[test]
    fn timestamps_round_trip() {
        // 2024-02-29 13:45:07.123456789 UTC
        let t = UtcTimestamp(1_709_214_307_123_456_789);
        let mut out = [0u8; 24];
        let n = t.write(TimePrecision::Millis, &mut out);
        assert_eq!(&out[..n], b"20240229-13:45:07.123");
        let n = t.write(TimePrecision::Micros, &mut out);
        assert_eq!(&out[..n], b"20240229-13:45:07.123456");
        let n = t.write(TimePrecision::Seconds, &mut out);
        assert_eq!(&out[..n], b"20240229-13:45:07");
        assert_eq!(
            UtcTimestamp::parse(b"20240229-13:45:07.123456"),
            Some(UtcTimestamp(1_709_214_307_123_456_000))
        );
        assert_eq!(
            UtcTimestamp::parse(b"19700101-00:00:00"),
            Some(UtcTimestamp(0))
        );
        assert_eq!(UtcTimestamp::parse(b"20241301-00:00:00"), None);
        assert_eq!(UtcTimestamp::parse(b"20240101-00:00:00."), None);
        assert_eq!(UtcTimestamp::parse(b"99991231-23:59:59.999999999"), None);
        // Every day for 400 years survives the round trip.
        for day in (0..146_097).step_by(7) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }
}
