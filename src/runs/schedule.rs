//! Schedules in EventBridge's syntax, UTC: `cron(min hour day-of-month month day-of-week year)`
//! and `rate(N minute|minutes|hour|hours|day|days)`.
//!
//! Cron takes `*` `,` `-` `/` in every field, names (`JAN`-`DEC`, `SUN`-`SAT`, day-of-week 1 is
//! Sunday), `?` in exactly one of day-of-month and day-of-week, `L` (last day of the month; in
//! day-of-week, Saturday, or with a day, the last such day of the month: `6L`, `FRIL`), `W` in
//! day-of-month (the weekday nearest the day, within its month; `LW` the last weekday) and `#`
//! in day-of-week (`3#2`, the second Tuesday). A bad expression is refused with the position
//! of the field or item at fault and the reason.
//!
//! There are no time zones: EventBridge cron rules are UTC, and so are fire times here. Next
//! fire times skip whole years, months and days that cannot match, so a rare schedule (29
//! February on a Monday) costs a few thousand day checks, not minutes of scanning.
//!
//! A rate has no fixed origin in EventBridge (it counts from when the rule was created); here
//! it counts from the Unix epoch, so fire times are the same in every process and after every
//! restart, which catch-up needs.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc, Weekday};

const MONTHS: [&str; 12] = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const FIRST_YEAR: u32 = 1970;
const LAST_YEAR: u32 = 2199;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    pub expression: String,
    /// 1-based character position of what is wrong.
    pub position: usize,
    pub reason: String,
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid schedule '{}' at position {}: {}", self.expression, self.position, self.reason)
    }
}

impl std::error::Error for ScheduleError {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Cron(Cron),
    Rate { every: Duration, text: String },
}

/// A parsed cron expression: the set of values each field allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    text: String,
    minutes: u64,
    hours: u32,
    months: u16,
    years: Vec<bool>,
    days: Days,
}

/// Which days of a month match: by day-of-month or by day-of-week (the other is `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Days {
    OfMonth(Vec<DayOfMonth>),
    OfWeek(Vec<DayOfWeek>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayOfMonth {
    /// Days of the month as a set (bit n is day n).
    Set(u32),
    Last,
    LastWeekday,
    NearestWeekday(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DayOfWeek {
    /// Days of the week as a set (bit n is day n, 1 = Sunday).
    Set(u8),
    /// The last such weekday of the month (1 = Sunday).
    Last(u32),
    /// The n-th such weekday of the month.
    Nth(u32, u32),
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        let error = |position: usize, reason: String| ScheduleError { expression: text.to_string(), position, reason };
        let trimmed = text.trim();
        let offset = text.len() - text.trim_start().len();
        let (kind, body) = match trimmed.split_once('(') {
            Some((kind, rest)) if rest.ends_with(')') => (kind, &rest[..rest.len() - 1]),
            _ => return Err(error(1, "expected cron(...) or rate(...)".into())),
        };
        let body_start = offset + kind.len() + 2;
        match kind {
            "cron" => Cron::parse(body, body_start, &error).map(Schedule::Cron),
            "rate" => parse_rate(body, body_start, &error),
            other => Err(error(offset + 1, format!("unknown schedule type '{other}' (expected cron or rate)"))),
        }
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron(cron) => cron.next_after(after),
            Schedule::Rate { every, .. } => {
                let epoch = DateTime::<Utc>::UNIX_EPOCH;
                let period = every.num_seconds();
                let elapsed = (after - epoch).num_seconds();
                let periods = elapsed.div_euclid(period) + 1;
                // Past chrono's last representable instant there is no next time, not a panic.
                epoch.checked_add_signed(Duration::try_seconds(periods.checked_mul(period)?)?)
            }
        }
    }

    /// Successive fire times after `after`.
    pub fn iter_after(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        std::iter::successors(self.next_after(after), move |t| self.next_after(*t))
    }
}

/// The logical dates of a backfill from `from` to `to`: the dates `schedule` fires on, or each
/// day without a schedule.
pub fn backfill_dates(schedule: Option<&Schedule>, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    let Some(schedule) = schedule else {
        return from.iter_days().take_while(|d| *d <= to).collect();
    };
    let start = from.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc() - Duration::seconds(1);
    let mut dates: Vec<NaiveDate> =
        schedule.iter_after(start).map(|t| t.date_naive()).take_while(|d| *d <= to).collect();
    dates.dedup();
    dates
}

impl FromStr for Schedule {
    type Err = ScheduleError;
    fn from_str(text: &str) -> Result<Self, ScheduleError> {
        Schedule::parse(text)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Cron(cron) => write!(f, "cron({})", cron.text),
            Schedule::Rate { text, .. } => write!(f, "rate({text})"),
        }
    }
}

/// The longest rate: a schedule that fires less than once a century is not a schedule, and
/// the bound keeps the arithmetic of fire times far from overflowing.
const MAX_RATE_DAYS: i64 = 36_500;

fn parse_rate(
    body: &str,
    start: usize,
    error: &dyn Fn(usize, String) -> ScheduleError,
) -> Result<Schedule, ScheduleError> {
    let mut parts = body.split_whitespace();
    let (Some(value), Some(unit), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(error(start, "a rate is 'rate(value unit)', like rate(5 minutes)".into()));
    };
    let value_at = start + body.find(value).unwrap_or(0);
    let unit_at = start + body.rfind(unit).unwrap_or(0);
    let amount: i64 = value
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| error(value_at, format!("rate value '{value}' is not a positive whole number")))?;
    let (seconds, singular) = match unit {
        "minute" => (60, true),
        "minutes" => (60, false),
        "hour" => (3600, true),
        "hours" => (3600, false),
        "day" => (86_400, true),
        "days" => (86_400, false),
        other => return Err(error(unit_at, format!("unknown rate unit '{other}' (minute(s), hour(s) or day(s))"))),
    };
    if singular != (amount == 1) {
        let fix = if amount == 1 { "singular, like rate(1 day)" } else { "plural, like rate(5 days)" };
        return Err(error(unit_at, format!("with {amount} the unit is {fix}")));
    }
    let every = amount
        .checked_mul(seconds)
        .and_then(Duration::try_seconds)
        .filter(|every| every.num_days() <= MAX_RATE_DAYS)
        .ok_or_else(|| error(value_at, format!("rate value '{value}' is longer than {MAX_RATE_DAYS} days")))?;
    Ok(Schedule::Rate { every, text: format!("{amount} {unit}") })
}

impl Cron {
    fn parse(body: &str, start: usize, error: &dyn Fn(usize, String) -> ScheduleError) -> Result<Cron, ScheduleError> {
        // Each field with its 1-based position in the whole expression.
        let mut fields: Vec<(usize, &str)> = Vec::new();
        let mut index = 0;
        for part in body.split(' ') {
            if !part.is_empty() {
                fields.push((start + index, part));
            }
            index += part.len() + 1;
        }
        if fields.len() != 6 {
            return Err(error(
                start,
                format!(
                    "cron takes 6 fields (minutes hours day-of-month month day-of-week year), not {}",
                    fields.len()
                ),
            ));
        }
        let field = |i: usize, name: &str, min: u32, max: u32, names: &[&str]| -> Result<Vec<bool>, ScheduleError> {
            let (at, text) = fields[i];
            parse_set(text, at, name, min, max, names, error)
        };
        let bits = |set: Vec<bool>| set.iter().enumerate().filter(|(_, b)| **b).fold(0u64, |acc, (i, _)| acc | 1 << i);
        let minutes = bits(field(0, "minute", 0, 59, &[])?);
        let hours = bits(field(1, "hour", 0, 23, &[])?) as u32;
        let months = bits(field(3, "month", 1, 12, &MONTHS)?) as u16;
        let years = field(5, "year", FIRST_YEAR, LAST_YEAR, &[])?;
        let (dom_at, dom) = fields[2];
        let (dow_at, dow) = fields[4];
        let days = match (dom == "?", dow == "?") {
            (true, true) => return Err(error(dow_at, "day-of-month and day-of-week cannot both be '?'".into())),
            (false, false) => {
                return Err(error(dow_at, "one of day-of-month and day-of-week must be '?'".into()));
            }
            (false, true) => Days::OfMonth(parse_days_of_month(dom, dom_at, error)?),
            (true, false) => Days::OfWeek(parse_days_of_week(dow, dow_at, error)?),
        };
        Ok(Cron {
            text: fields.iter().map(|(_, f)| *f).collect::<Vec<_>>().join(" "),
            minutes,
            hours,
            months,
            years,
            days,
        })
    }

    fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // The first whole minute after `after`.
        let start = after.with_second(0)?.with_nanosecond(0)?.checked_add_signed(Duration::minutes(1))?;
        let mut date = start.date_naive();
        let mut from_minute = start.hour() * 60 + start.minute();
        loop {
            let year = date.year() as u32;
            if year > LAST_YEAR {
                return None;
            }
            if !self.years.get(year as usize).copied().unwrap_or(false) {
                date = NaiveDate::from_ymd_opt(date.year() + 1, 1, 1)?;
                from_minute = 0;
                continue;
            }
            if self.months & (1 << date.month()) == 0 {
                date = first_of_next_month(date)?;
                from_minute = 0;
                continue;
            }
            if self.day_matches(date) {
                if let Some(minute) = self.first_minute_from(from_minute) {
                    let time = date.and_hms_opt(minute / 60, minute % 60, 0)?;
                    return Some(Utc.from_utc_datetime(&time));
                }
            }
            date = date.succ_opt()?;
            from_minute = 0;
        }
    }

    /// The first minute of the day (0..1440) at or after `from` that the hours and minutes allow.
    fn first_minute_from(&self, from: u32) -> Option<u32> {
        (from / 60..24).filter(|h| self.hours & (1 << h) != 0).find_map(|hour| {
            let first = if hour == from / 60 { from % 60 } else { 0 };
            (first..60).find(|m| self.minutes & (1 << m) != 0).map(|m| hour * 60 + m)
        })
    }

    fn day_matches(&self, date: NaiveDate) -> bool {
        let last = last_day_of_month(date);
        match &self.days {
            Days::OfMonth(items) => items.iter().any(|item| match *item {
                DayOfMonth::Set(set) => set & (1 << date.day()) != 0,
                DayOfMonth::Last => date.day() == last,
                DayOfMonth::LastWeekday => date.day() == nearest_weekday(date, last),
                DayOfMonth::NearestWeekday(day) => day <= last && date.day() == nearest_weekday(date, day),
            }),
            Days::OfWeek(items) => {
                let weekday = date.weekday().num_days_from_sunday() + 1;
                items.iter().any(|item| match *item {
                    DayOfWeek::Set(set) => set & (1 << weekday) != 0,
                    DayOfWeek::Last(day) => weekday == day && date.day() + 7 > last,
                    DayOfWeek::Nth(day, n) => weekday == day && (date.day() - 1) / 7 + 1 == n,
                })
            }
        }
    }
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    match date.month() {
        12 => NaiveDate::from_ymd_opt(date.year() + 1, 1, 1),
        month => NaiveDate::from_ymd_opt(date.year(), month + 1, 1),
    }
}

fn last_day_of_month(date: NaiveDate) -> u32 {
    first_of_next_month(date).and_then(|d| d.pred_opt()).map_or(28, |d| d.day())
}

/// The weekday nearest to `day` of `date`'s month, not leaving the month (Quartz's `W`).
fn nearest_weekday(date: NaiveDate, day: u32) -> u32 {
    let last = last_day_of_month(date);
    let Some(target) = date.with_day(day.min(last)) else { return day };
    match target.weekday() {
        Weekday::Sat if target.day() == 1 => 3,
        Weekday::Sat => target.day() - 1,
        Weekday::Sun if target.day() == last => target.day() - 2,
        Weekday::Sun => target.day() + 1,
        _ => target.day(),
    }
}

/// A field of values: `*`, `a`, `a-b`, with `/step`, in a comma list; names where allowed.
fn parse_set(
    text: &str,
    at: usize,
    name: &str,
    min: u32,
    max: u32,
    names: &[&str],
    error: &dyn Fn(usize, String) -> ScheduleError,
) -> Result<Vec<bool>, ScheduleError> {
    let mut set = vec![false; max as usize + 1];
    for (item_at, item) in list_items(text, at) {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    error(item_at + range.len() + 1, format!("{name} step '{step}' is not a positive whole number"))
                })?;
                (range, step)
            }
            None => (item, 1),
        };
        let value = |text: &str, position: usize| -> Result<u32, ScheduleError> {
            let upper = text.to_ascii_uppercase();
            let number = match names.iter().position(|n| *n == upper) {
                Some(index) => index as u32 + 1,
                None => text.parse().map_err(|_| {
                    let hint = if names.is_empty() {
                        String::new()
                    } else {
                        format!(" or a name ({}-{})", names[0], names[names.len() - 1])
                    };
                    error(position, format!("'{text}' is not a {name} (a number {min}-{max}{hint})"))
                })?,
            };
            if number < min || number > max {
                return Err(error(position, format!("{name} {number} is out of range {min}-{max}")));
            }
            Ok(number)
        };
        let (from, to) = match range {
            "*" => (min, max),
            "" => return Err(error(item_at, format!("empty {name} item"))),
            range => match range.split_once('-') {
                Some((a, b)) => {
                    let (from, to) = (value(a, item_at)?, value(b, item_at + a.len() + 1)?);
                    if from > to {
                        return Err(error(item_at, format!("{name} range {a}-{b} runs backwards")));
                    }
                    (from, to)
                }
                // `5/15`: from 5 to the end of the field, every 15.
                None if step > 1 => (value(range, item_at)?, max),
                None => {
                    let v = value(range, item_at)?;
                    (v, v)
                }
            },
        };
        for v in (from..=to).step_by(step as usize) {
            set[v as usize] = true;
        }
    }
    Ok(set)
}

/// The comma-separated items of a field, each with its position in the expression.
fn list_items(text: &str, at: usize) -> impl Iterator<Item = (usize, &str)> {
    text.split(',').scan(at, |next, item| {
        let item_at = *next;
        *next += item.len() + 1;
        Some((item_at, item))
    })
}

fn parse_days_of_month(
    text: &str,
    at: usize,
    error: &dyn Fn(usize, String) -> ScheduleError,
) -> Result<Vec<DayOfMonth>, ScheduleError> {
    let mut items = Vec::new();
    for (item_at, item) in list_items(text, at) {
        let upper = item.to_ascii_uppercase();
        items.push(match upper.as_str() {
            "L" => DayOfMonth::Last,
            "LW" => DayOfMonth::LastWeekday,
            w if w.ends_with('W') => {
                let day: u32 = w[..w.len() - 1]
                    .parse()
                    .map_err(|_| error(item_at, format!("'{item}': W takes one day of the month, like 15W")))?;
                if !(1..=31).contains(&day) {
                    return Err(error(item_at, format!("day-of-month {day} is out of range 1-31")));
                }
                DayOfMonth::NearestWeekday(day)
            }
            _ => {
                let set = parse_set(item, item_at, "day-of-month", 1, 31, &[], error)?;
                DayOfMonth::Set(set.iter().enumerate().filter(|(_, b)| **b).fold(0, |acc, (i, _)| acc | 1 << i))
            }
        });
    }
    Ok(items)
}

fn parse_days_of_week(
    text: &str,
    at: usize,
    error: &dyn Fn(usize, String) -> ScheduleError,
) -> Result<Vec<DayOfWeek>, ScheduleError> {
    let day = |text: &str, position: usize| -> Result<u32, ScheduleError> {
        let set = parse_set(text, position, "day-of-week", 1, 7, &DAYS, error)?;
        Ok(set.iter().position(|b| *b).unwrap_or(1) as u32)
    };
    let mut items = Vec::new();
    for (item_at, item) in list_items(text, at) {
        let upper = item.to_ascii_uppercase();
        items.push(if upper == "L" {
            DayOfWeek::Set(1 << 7)
        } else if let Some((weekday, nth)) = upper.split_once('#') {
            if weekday.contains(['-', ',', '/', '*']) {
                return Err(error(item_at, format!("'{item}': # takes one day of the week, like 3#2")));
            }
            let n: u32 =
                nth.parse().ok().filter(|n| (1..=5).contains(n)).ok_or_else(|| {
                    error(item_at + weekday.len() + 1, format!("'#{nth}': the week of the month is 1-5"))
                })?;
            DayOfWeek::Nth(day(weekday, item_at)?, n)
        } else if upper.len() > 1 && upper.ends_with('L') {
            let weekday = &upper[..upper.len() - 1];
            if weekday.contains(['-', ',', '/', '*']) {
                return Err(error(item_at, format!("'{item}': L takes one day of the week, like 6L")));
            }
            DayOfWeek::Last(day(weekday, item_at)?)
        } else {
            let set = parse_set(item, item_at, "day-of-week", 1, 7, &DAYS, error)?;
            DayOfWeek::Set(set.iter().enumerate().filter(|(_, b)| **b).fold(0, |acc, (i, _)| acc | 1 << i))
        });
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    fn next(expression: &str, after: &str, count: usize) -> Vec<String> {
        let schedule: Schedule = expression.parse().unwrap_or_else(|e| panic!("{e}"));
        schedule.iter_after(at(after)).take(count).map(|t| t.format("%Y-%m-%dT%H:%M").to_string()).collect()
    }

    /// Every answer below was checked against a calendar (Python's `calendar` module).
    #[test]
    fn the_table_of_fire_times() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("cron(0/5 * * * ? *)", "2026-11-28T10:02:30Z", &["2026-11-28T10:05", "2026-11-28T10:10"]),
            ("cron(*/15 9-10 * * ? *)", "2026-11-28T10:50:00Z", &["2026-11-29T09:00", "2026-11-29T09:15"]),
            // Weekdays at 02:00, from a Saturday.
            ("cron(0 2 ? * MON-FRI *)", "2026-11-28T12:00:00Z", &["2026-11-30T02:00", "2026-12-01T02:00"]),
            // Mondays at 02:00 from a Sunday; and at exactly a fire time, the next one.
            ("cron(0 2 ? * MON *)", "2026-11-29T23:59:00Z", &["2026-11-30T02:00", "2026-12-07T02:00"]),
            ("cron(0 2 ? * 2 *)", "2026-11-30T02:00:00Z", &["2026-12-07T02:00"]),
            // The last day of February, leap and not.
            ("cron(0 0 L 2 ? *)", "2027-01-01T00:00:00Z", &["2027-02-28T00:00", "2028-02-29T00:00"]),
            // The last weekday: 2026-05-31 is a Sunday, so Friday the 29th.
            ("cron(0 9 LW * ? *)", "2026-05-01T00:00:00Z", &["2026-05-29T09:00", "2026-06-30T09:00"]),
            // 15W: 2026-08-15 is a Saturday -> Friday 14th; 2026-11-15 is a Sunday -> Monday 16th.
            ("cron(0 9 15W 8 ? *)", "2026-01-01T00:00:00Z", &["2026-08-14T09:00"]),
            ("cron(0 9 15W 11 ? *)", "2026-01-01T00:00:00Z", &["2026-11-16T09:00"]),
            // 1W when the 1st is a Saturday (2026-08-01) goes forward to Monday the 3rd.
            ("cron(0 9 1W 8 ? *)", "2026-01-01T00:00:00Z", &["2026-08-03T09:00"]),
            // 31W when the 31st is a Sunday (2026-05-31) goes back to Friday the 29th.
            ("cron(0 9 31W 5 ? *)", "2026-01-01T00:00:00Z", &["2026-05-29T09:00"]),
            // The last Friday of the month, by number and by name.
            ("cron(0 18 ? * 6L *)", "2026-11-01T00:00:00Z", &["2026-11-27T18:00", "2026-12-25T18:00"]),
            ("cron(0 18 ? * FRIL *)", "2026-11-28T00:00:00Z", &["2026-12-25T18:00"]),
            // The second Tuesday; a fifth Monday skips months without one (Dec 2026 has none).
            ("cron(30 8 ? * 3#2 *)", "2026-11-28T00:00:00Z", &["2026-12-08T08:30", "2027-01-12T08:30"]),
            ("cron(0 0 ? * MON#5 *)", "2026-11-28T00:00:00Z", &["2026-11-30T00:00", "2027-03-29T00:00"]),
            // 29 February, yearly: leap years only.
            ("cron(0 0 29 2 ? *)", "2026-11-28T00:00:00Z", &["2028-02-29T00:00", "2032-02-29T00:00"]),
            // Year ranges and lists; months by name with a step.
            ("cron(0 12 1 1 ? 2027-2028)", "2026-11-28T00:00:00Z", &["2027-01-01T12:00", "2028-01-01T12:00"]),
            ("cron(0 0 1 JAN-DEC/3 ? *)", "2026-11-28T00:00:00Z", &["2027-01-01T00:00", "2027-04-01T00:00"]),
            // Day 31 skips the short months; the end of December rolls into January.
            (
                "cron(0 0 31 * ? *)",
                "2026-11-01T00:00:00Z",
                &["2026-12-31T00:00", "2027-01-31T00:00", "2027-03-31T00:00"],
            ),
            ("cron(59 23 L * ? *)", "2026-12-31T23:59:00Z", &["2027-01-31T23:59"]),
            ("rate(1 day)", "2026-11-28T10:00:00Z", &["2026-11-29T00:00", "2026-11-30T00:00"]),
            ("rate(7 days)", "2026-11-28T10:00:00Z", &["2026-12-03T00:00"]),
            ("rate(15 minutes)", "2026-11-28T10:07:00Z", &["2026-11-28T10:15", "2026-11-28T10:30"]),
        ];
        for (expression, after, expected) in cases {
            assert_eq!(next(expression, after, expected.len()), *expected, "{expression} after {after}");
        }
    }

    #[test]
    fn a_year_range_that_ends_ends_the_schedule() {
        let schedule: Schedule = "cron(0 0 1 1 ? 2027)".parse().unwrap();
        assert_eq!(schedule.iter_after(at("2026-12-31T00:00:00Z")).count(), 1);
    }

    #[test]
    fn errors_say_where_and_why() {
        let cases = [
            ("cron(0 2 ? * ? *)", 14, "cannot both be '?'"),
            ("cron(0 2 * * MON *)", 14, "must be '?'"),
            ("cron(0 25 * * ? *)", 8, "hour 25 is out of range 0-23"),
            ("cron(61 2 * * ? *)", 6, "minute 61 is out of range 0-59"),
            ("cron(0 2 ? FOO * *)", 12, "'FOO' is not a month"),
            ("cron(0 2 ? * MON-XYZ *)", 18, "'XYZ' is not a day-of-week"),
            ("cron(0 2 1-5W * ? *)", 10, "W takes one day of the month"),
            ("cron(0 2 ? * 2#6 *)", 16, "the week of the month is 1-5"),
            ("cron(0 2 * * ?)", 6, "cron takes 6 fields"),
            ("cron(0 2 * * ? * *)", 6, "cron takes 6 fields"),
            ("rate(0 days)", 6, "not a positive whole number"),
            ("rate(1 days)", 8, "singular"),
            ("rate(5 minute)", 8, "plural"),
            ("rate(5 weeks)", 8, "unknown rate unit"),
            ("every monday", 1, "expected cron(...) or rate(...)"),
            ("at(2026-11-30)", 1, "unknown schedule type 'at'"),
        ];
        for (expression, position, reason) in cases {
            let err = Schedule::parse(expression).unwrap_err();
            assert!(err.reason.contains(reason), "{expression}: {err}");
            assert_eq!(err.position, position, "{expression}: {err}");
            assert!(err.to_string().starts_with(&format!("invalid schedule '{expression}' at position {position}")));
        }
    }

    #[test]
    fn names_are_canonical_and_round_trip() {
        let schedule: Schedule = "cron(0 2 ? * mon *)".parse().unwrap();
        assert_eq!(schedule.to_string(), "cron(0 2 ? * mon *)");
        assert_eq!("rate(5 minutes)".parse::<Schedule>().unwrap().to_string(), "rate(5 minutes)");
    }

    #[test]
    fn no_input_panics() {
        let alphabet: Vec<char> = "cronate()0123456789 ,-/*?LW#MONFRIJANDECminutesdays".chars().collect();
        let mut seed: u64 = 42;
        for _ in 0..20_000 {
            let mut text = String::from(if seed % 2 == 0 { "cron(" } else { "rate(" });
            for _ in 0..(seed % 24) {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                text.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            text.push(')');
            if let Ok(schedule) = Schedule::parse(&text) {
                let _ = schedule.next_after(at("2026-11-28T00:00:00Z"));
            }
        }
    }

    /// Regression: `rate(N days)` with N near i64::MAX overflowed a multiplication, and any
    /// schedule asked for a time after chrono's last instant overflowed an addition.
    #[test]
    fn huge_rates_and_the_end_of_time_are_errors_or_none() {
        let err = "rate(9223372036854775807 days)".parse::<Schedule>().unwrap_err();
        assert!(err.to_string().contains("longer than 36500 days"), "{err}");
        assert!("rate(36501 days)".parse::<Schedule>().is_err());
        let longest: Schedule = "rate(36500 days)".parse().unwrap();
        assert!(longest.next_after(at("2026-11-28T00:00:00Z")).is_some());
        for text in ["rate(36500 days)", "rate(1 minute)", "cron(* * * * ? *)"] {
            let schedule: Schedule = text.parse().unwrap();
            assert_eq!(schedule.next_after(DateTime::<Utc>::MAX_UTC), None, "{text}");
        }
    }
}
