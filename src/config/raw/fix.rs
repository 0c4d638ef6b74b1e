//! An endpoint's `fix` table (session, credentials, schedule), and its validation.

use serde::Deserialize;
use toml::Spanned;

use super::super::{ConfigError, FixSchedule, Locator};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFix {
    pub(super) sender: Spanned<String>,
    pub(super) target: Spanned<String>,
    pub(super) begin_string: Option<Spanned<String>>,
    pub(super) default_appl_ver_id: Option<String>,
    pub(super) store: Option<String>,
    pub(super) reset: Option<bool>,
    pub(super) username: Option<String>,
    pub(super) password: Option<Secret>,
    pub(super) order_rate: Option<Spanned<f64>>,
    pub(super) symbol: Option<String>,
    pub(super) quantity: Option<Spanned<f64>>,
    pub(super) price: Option<Spanned<f64>>,
    pub(super) schedule: Option<Spanned<RawSchedule>>,
    pub(super) check_latency: Option<bool>,
    pub(super) max_latency: Option<Spanned<String>>,
}

/// `schedule = { start_time, end_time, start_day, end_day, time_zone }` of a `fix` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    pub(super) start_time: Spanned<String>,
    pub(super) end_time: Spanned<String>,
    pub(super) start_day: Option<Spanned<String>>,
    pub(super) end_day: Option<Spanned<String>>,
    pub(super) time_zone: Option<Spanned<String>>,
}

impl RawSchedule {
    pub(super) fn validate(
        &self,
        loc: &Locator<'_>,
        at: &Spanned<RawSchedule>,
        name: &str,
    ) -> Result<FixSchedule, ConfigError> {
        let time = |v: &Spanned<String>, key: &str| {
            clock_time(v.get_ref()).ok_or_else(|| {
                loc.at(
                    v,
                    format!(
                        "endpoint {name:?}: schedule.{key} must be HH:MM:SS (00:00:00..=23:59:59)"
                    ),
                )
            })
        };
        let day = |v: &Spanned<String>, key: &str| {
            weekday(v.get_ref()).ok_or_else(|| {
                loc.at(
                    v,
                    format!(
                        "endpoint {name:?}: schedule.{key} must be a day name (monday..sunday)"
                    ),
                )
            })
        };
        let days = match (&self.start_day, &self.end_day) {
            (None, None) => None,
            (Some(s), Some(e)) => Some((day(s, "start_day")?, day(e, "end_day")?)),
            (Some(one), None) | (None, Some(one)) => {
                return Err(loc.at(
                    one,
                    format!(
                        "endpoint {name:?}: schedule needs both start_day and end_day (weekly) or \
                         neither (daily)"
                    ),
                ))
            }
        };
        let schedule = FixSchedule {
            start_time: time(&self.start_time, "start_time")?,
            end_time: time(&self.end_time, "end_time")?,
            days,
            time_zone: self
                .time_zone
                .as_ref()
                .map_or_else(|| "UTC".to_owned(), |t| t.get_ref().clone()),
        };
        #[cfg(feature = "fix")]
        if let Err(e) = crate::fix::schedule::Schedule::new(
            schedule.start_time,
            schedule.end_time,
            schedule.days,
            &schedule.time_zone,
        ) {
            let msg = format!("endpoint {name:?}: schedule.time_zone: {e}");
            return Err(match &self.time_zone {
                Some(t) => loc.at(t, msg),
                None => loc.at(at, msg),
            });
        }
        #[cfg(not(feature = "fix"))]
        let _ = at;
        Ok(schedule)
    }
}

/// `HH:MM:SS` (or `HH:MM`) → seconds after midnight.
pub(super) fn clock_time(s: &str) -> Option<u32> {
    let mut parts = s.split(':');
    let mut field = |max: u32| -> Option<Option<u32>> {
        match parts.next() {
            None => Some(None),
            Some(p) if p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()) => {
                let v: u32 = p.parse().ok()?;
                (v <= max).then_some(Some(v))
            }
            Some(_) => None,
        }
    };
    let h = field(23)??;
    let m = field(59)??;
    let s = field(59)?.unwrap_or(0);
    if parts.next().is_some() {
        return None;
    }
    Some(h * 3600 + m * 60 + s)
}

/// A day name (`monday` or `mon`, any case) → 0 (Monday) ..= 6 (Sunday).
pub(super) fn weekday(s: &str) -> Option<u8> {
    const DAYS: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let s = s.to_ascii_lowercase();
    DAYS.iter()
        .position(|d| *d == s || (s.len() == 3 && d.starts_with(&s)))
        .map(|i| i as u8)
}

/// A password as read: `Debug` never shows it.
#[derive(Deserialize)]
#[serde(transparent)]
pub(super) struct Secret(pub(super) String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}
