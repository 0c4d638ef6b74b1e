//! When a FIX session runs: QuickFIX's StartTime/EndTime (daily sessions) and StartDay/EndDay
//! (weekly sessions) in an IANA time zone (TimeZone). Sans-IO: every question takes the time.
//!
//! A *period* runs from a start to the next end after it, both local wall-clock times converted
//! to instants through the time zone (so a 17:00 New York start is 21:00 or 22:00 UTC depending on
//! daylight saving time; a start inside a DST gap moves forward past the gap, one in a fold takes
//! the earlier instant). An end at or before the start means the period wraps: past midnight for a
//! daily session (17:00 to 16:00 the next day), around the week for a weekly one (Sunday 17:00 to
//! Sunday 17:00). Equal start and end times make a daily 24-hour session.
//!
//! Time zones come from the system's IANA database (`/usr/share/zoneinfo`, Debian's `tzdata`),
//! read when a schedule is built, never on the IO path.
//!
//! A new period is a new session: the endpoint resets both sequence numbers when its store was
//! created before the current period started, as QuickFIX does.

use jiff::civil::{Date, DateTime, Weekday};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};

use super::codec::UtcTimestamp;

/// A schedule that cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The time zone is not in the time zone database.
    #[error("unknown time zone {0:?} (expected an IANA name such as America/New_York)")]
    UnknownTimeZone(String),
    /// A time of day is not below 24:00:00.
    #[error("time of day {0} s is not within 00:00:00..=23:59:59")]
    BadTime(u32),
    /// A day is not 0 (Monday) ..= 6 (Sunday).
    #[error("day {0} is not 0 (Monday) ..= 6 (Sunday)")]
    BadDay(u8),
}

/// One session period, as UTC instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// When it starts (inclusive).
    pub start: UtcTimestamp,
    /// When it ends (exclusive).
    pub end: UtcTimestamp,
}

impl Period {
    /// `true` when `t` lies within it.
    pub fn contains(&self, t: UtcTimestamp) -> bool {
        self.start <= t && t < self.end
    }
}

/// A daily or weekly session schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// StartTime and EndTime, seconds after local midnight.
    start: u32,
    end: u32,
    /// StartDay and EndDay (weekly sessions).
    days: Option<(Weekday, Weekday)>,
    tz: TimeZone,
    tz_name: String,
}

impl Schedule {
    /// A schedule from StartTime and EndTime (seconds after local midnight), StartDay and EndDay
    /// (0 = Monday ..= 6 = Sunday; `None`: daily) and the IANA name of the time zone.
    pub fn new(
        start_time: u32,
        end_time: u32,
        days: Option<(u8, u8)>,
        time_zone: &str,
    ) -> Result<Schedule, ScheduleError> {
        for t in [start_time, end_time] {
            if t >= 86_400 {
                return Err(ScheduleError::BadTime(t));
            }
        }
        let day = |d: u8| {
            i8::try_from(d)
                .ok()
                .and_then(|d| Weekday::from_monday_zero_offset(d).ok())
                .ok_or(ScheduleError::BadDay(d))
        };
        let days = match days {
            Some((a, b)) => Some((day(a)?, day(b)?)),
            None => None,
        };
        let tz = TimeZone::get(time_zone)
            .map_err(|_| ScheduleError::UnknownTimeZone(time_zone.to_owned()))?;
        Ok(Schedule {
            start: start_time,
            end: end_time,
            days,
            tz,
            tz_name: time_zone.to_owned(),
        })
    }

    /// The time zone's name.
    pub fn time_zone(&self) -> &str {
        &self.tz_name
    }

    /// The latest period that starts at or before `now` (it may have ended already).
    pub fn period(&self, now: UtcTimestamp) -> Period {
        let now_ts = to_jiff(now);
        let today = self.tz.to_datetime(now_ts).date();
        let (mut start_date, step) = match self.days {
            None => (today, 1),
            Some((start_day, _)) => (today - days(today.weekday().since(start_day).into()), 7),
        };
        let mut start = self.instant(start_date, self.start);
        if start > now_ts {
            start_date -= days(step);
            start = self.instant(start_date, self.start);
        }
        let end_date = match self.days {
            None => start_date,
            Some((start_day, end_day)) => start_date + days(end_day.since(start_day).into()),
        };
        let mut end = self.instant(end_date, self.end);
        if end <= start {
            end = self.instant(end_date + days(step), self.end);
        }
        Period {
            start: from_jiff(start),
            end: from_jiff(end),
        }
    }

    /// The period `now` lies in, if any.
    pub fn current(&self, now: UtcTimestamp) -> Option<Period> {
        Some(self.period(now)).filter(|p| p.contains(now))
    }

    /// When the next period starts after `now` (the current one's start when `now` is inside one).
    pub fn next_start(&self, now: UtcTimestamp) -> UtcTimestamp {
        let p = self.period(now);
        if p.contains(now) {
            return p.start;
        }
        // The period after the one that ended: a day or a week after its start, as local times.
        let step = if self.days.is_some() { 7 } else { 1 };
        let local = self.tz.to_datetime(to_jiff(p.start)).date();
        let mut next = self.instant(local + days(step), self.start);
        if next <= to_jiff(p.start) {
            // A start in a DST gap moved before the period; one more step is always later.
            next = self.instant(local + days(2 * step), self.start);
        }
        from_jiff(next)
    }

    /// `date` at `secs` after local midnight, as an instant (gaps move forward, folds take the
    /// earlier instant).
    fn instant(&self, date: Date, secs: u32) -> Timestamp {
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        let dt: DateTime = date.at(h as i8, m as i8, s as i8, 0);
        self.tz
            .to_ambiguous_timestamp(dt)
            .compatible()
            .unwrap_or(Timestamp::MAX)
    }
}

fn days(n: i64) -> Span {
    Span::new().days(n)
}

fn to_jiff(t: UtcTimestamp) -> Timestamp {
    Timestamp::from_nanosecond(i128::from(t.0)).unwrap_or(Timestamp::MAX)
}

fn from_jiff(t: Timestamp) -> UtcTimestamp {
    UtcTimestamp(u64::try_from(t.as_nanosecond()).unwrap_or(0))
}

#[cfg(test)]
mod tests;
