//! Schedules across midnight, week ends and daylight-saving changes.

use jiff::civil::date;

use super::*;

const H: u64 = 3_600_000_000_000;

/// A wall-clock time in `tz` as an instant.
fn at(tz: &str, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> UtcTimestamp {
    let tz = TimeZone::get(tz).unwrap();
    from_jiff(
        tz.to_ambiguous_timestamp(date(y, mo, d).at(h, mi, 0, 0))
            .compatible()
            .unwrap(),
    )
}

fn hms(h: u32, m: u32) -> u32 {
    h * 3600 + m * 60
}

const NY: &str = "America/New_York";

#[test]
fn daily_window() {
    let s = Schedule::new(hms(8, 0), hms(17, 0), None, "Europe/London").unwrap();
    let lon = |d, h, m| at("Europe/London", 2026, 6, d, h, m);
    let p = s.current(lon(10, 12, 0)).unwrap();
    assert_eq!((p.start, p.end), (lon(10, 8, 0), lon(10, 17, 0)));
    assert_eq!(s.current(lon(10, 17, 0)), None);
    assert_eq!(s.current(lon(10, 7, 59)), None);
    assert_eq!(s.next_start(lon(10, 7, 59)), lon(10, 8, 0));
    assert_eq!(s.next_start(lon(10, 18, 0)), lon(11, 8, 0));
    assert_eq!(
        s.next_start(lon(10, 9, 0)),
        lon(10, 8, 0),
        "inside: its own start"
    );
    // British Summer Time: 08:00 London is 07:00 UTC.
    assert_eq!(lon(10, 8, 0), at("UTC", 2026, 6, 10, 7, 0));
}

#[test]
fn daily_window_across_midnight() {
    let s = Schedule::new(hms(17, 0), hms(16, 0), None, NY).unwrap();
    let ny = |d, h, m| at(NY, 2026, 6, d, h, m);
    for t in [
        ny(10, 17, 0),
        ny(10, 23, 0),
        ny(11, 0, 0),
        ny(11, 10, 0),
        ny(11, 15, 59),
    ] {
        let p = s.current(t).unwrap();
        assert_eq!((p.start, p.end), (ny(10, 17, 0), ny(11, 16, 0)));
    }
    assert_eq!(s.current(ny(11, 16, 30)), None);
    assert_eq!(s.next_start(ny(11, 16, 30)), ny(11, 17, 0));
    // Equal times: a 24-hour session that starts again every day.
    let s = Schedule::new(hms(17, 0), hms(17, 0), None, NY).unwrap();
    let p = s.current(ny(11, 16, 59)).unwrap();
    assert_eq!((p.start, p.end), (ny(10, 17, 0), ny(11, 17, 0)));
    let p = s.current(ny(11, 17, 0)).unwrap();
    assert_eq!((p.start, p.end), (ny(11, 17, 0), ny(12, 17, 0)));
}

#[test]
fn daylight_saving_changes() {
    // New York springs forward on 2026-03-08 and falls back on 2026-11-01: the 17:00-to-17:00
    // sessions across them last 23 and 25 hours.
    let s = Schedule::new(hms(17, 0), hms(17, 0), None, NY).unwrap();
    let spring = s.current(at(NY, 2026, 3, 8, 12, 0)).unwrap();
    assert_eq!(spring.start, at("UTC", 2026, 3, 7, 22, 0));
    assert_eq!(spring.end, at("UTC", 2026, 3, 8, 21, 0));
    assert_eq!(spring.end.0 - spring.start.0, 23 * H);
    let fall = s.current(at(NY, 2026, 11, 1, 12, 0)).unwrap();
    assert_eq!(fall.end.0 - fall.start.0, 25 * H);
    // A start inside the gap (02:30 does not exist that night) moves past it, to 03:30 EDT.
    let s = Schedule::new(hms(2, 30), hms(12, 0), None, NY).unwrap();
    let p = s.current(at("UTC", 2026, 3, 8, 8, 0)).unwrap();
    assert_eq!(p.start, at("UTC", 2026, 3, 8, 7, 30));
    assert_eq!(s.current(at("UTC", 2026, 3, 8, 7, 29)), None);
    assert_eq!(
        s.next_start(at("UTC", 2026, 3, 8, 7, 0)),
        at("UTC", 2026, 3, 8, 7, 30)
    );
    // A start in the fold (01:30 happens twice on 2026-11-01) takes the first one, EDT.
    let s = Schedule::new(hms(1, 30), hms(12, 0), None, NY).unwrap();
    let p = s.current(at("UTC", 2026, 11, 1, 12, 0)).unwrap();
    assert_eq!(p.start, at("UTC", 2026, 11, 1, 5, 30));
}

#[test]
fn weekly_window_and_week_wrap() {
    // Sunday 17:00 to Friday 17:00, New York (2026-06-07 is a Sunday).
    let s = Schedule::new(hms(17, 0), hms(17, 0), Some((6, 4)), NY).unwrap();
    let ny = |d, h, m| at(NY, 2026, 6, d, h, m);
    let week = Period {
        start: ny(7, 17, 0),
        end: ny(12, 17, 0),
    };
    for t in [ny(7, 17, 0), ny(8, 3, 0), ny(10, 12, 0), ny(12, 16, 59)] {
        assert_eq!(s.current(t), Some(week));
    }
    for t in [ny(12, 17, 0), ny(13, 12, 0), ny(14, 16, 59), ny(7, 16, 59)] {
        assert_eq!(s.current(t), None, "{t:?}");
    }
    assert_eq!(s.next_start(ny(13, 12, 0)), ny(14, 17, 0));
    assert_eq!(s.next_start(ny(7, 16, 59)), ny(7, 17, 0));
    // A weekend session, Friday 22:00 to Monday 06:00, wraps the end of the week.
    let s = Schedule::new(hms(22, 0), hms(6, 0), Some((4, 0)), "UTC").unwrap();
    let utc = |d, h| at("UTC", 2026, 6, d, h, 0);
    let p = s.current(utc(13, 12)).unwrap();
    assert_eq!((p.start, p.end), (utc(12, 22), utc(15, 6)));
    assert_eq!(s.current(utc(16, 12)), None);
    assert_eq!(s.next_start(utc(16, 12)), utc(19, 22));
    // Same day and time: the whole week, restarting every Sunday 17:00 (a 169-hour week when the
    // clocks fall back inside it).
    let s = Schedule::new(hms(17, 0), hms(17, 0), Some((6, 6)), NY).unwrap();
    let p = s.current(at(NY, 2026, 11, 4, 0, 0)).unwrap();
    assert_eq!(p.start, at(NY, 2026, 11, 1, 17, 0));
    assert_eq!(p.end.0 - p.start.0, 168 * H);
    let p = s.current(at(NY, 2026, 10, 28, 0, 0)).unwrap();
    assert_eq!(p.end.0 - p.start.0, 169 * H);
}

#[test]
fn bad_schedules() {
    assert_eq!(
        Schedule::new(0, 0, None, "Mars/Olympus"),
        Err(ScheduleError::UnknownTimeZone("Mars/Olympus".into()))
    );
    assert_eq!(
        Schedule::new(86_400, 0, None, "UTC"),
        Err(ScheduleError::BadTime(86_400))
    );
    assert_eq!(
        Schedule::new(0, 0, Some((0, 7)), "UTC"),
        Err(ScheduleError::BadDay(7))
    );
    assert_eq!(Schedule::new(0, 0, None, NY).unwrap().time_zone(), NY);
}
