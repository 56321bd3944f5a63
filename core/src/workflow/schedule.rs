//! What a `schedule:` says, as functions of time: its scheduled times (cron expressions read
//! on the wall clock of its time zone) and how a logical date is written as a batch id.
//! The reader checks a schedule with these; intervals, what is due and catch-up are the
//! planner's (`plan/calendar.rs`).
//!
//! Daylight saving time follows croner's rules (those of the Open Cron Pattern
//! Specification): a fixed-time expression (one minute of one hour, such as `0 2 * * *`)
//! runs once per civil date: at the first instant after a spring-forward gap that swallows
//! its time, and at the earlier of the two instants of a fall-back fold. Any other
//! expression (`0 * * * *`, `*/15 * * * *`) follows real time: the hours a gap removes do
//! not happen, and those a fold repeats happen twice.

use super::model::ScheduleSpec;
use super::names::check_batch;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::fmt::strtime;
use jiff::tz::AmbiguousOffset;
use jiff::{SignedDuration, Timestamp, Zoned};
use std::collections::HashMap;
use std::time::Duration;

/// The nicknames a `cron` may be instead of five fields.
pub const CRON_NICKNAMES: &[&str] = &[
    "@yearly",
    "@annually",
    "@monthly",
    "@weekly",
    "@daily",
    "@hourly",
];

/// Appended to the batch id of a logical date in the repeated hour of a fall-back fold when
/// the format writes it as it wrote the first pass of that hour (`2026-11-01T01` then
/// `2026-11-01T01.2` in New York), so that every logical date has its own batch id.
pub const FOLD_SUFFIX: &str = ".2";

/// How far past a failed search [`ScheduleSpec::next_time`] looks for a transition of the
/// zone to start again from: two days, more than any civil date a zone has skipped.
const SKIPPED_SPAN: SignedDuration = SignedDuration::from_hours(48);
/// How long after a transition a scheduled time the transition skipped may land (the
/// longest gaps in use are an hour or two).
const GAP_SPAN: SignedDuration = SignedDuration::from_hours(3);

/// One cron expression: five fields (minute, hour, day of month, month, day of week) or a
/// nickname. The reason says what is wrong, in the reader's words.
pub fn parse_cron(text: &str) -> Result<Cron, String> {
    let text = text.trim();
    if text.starts_with('@') {
        if !CRON_NICKNAMES.iter().any(|n| n.eq_ignore_ascii_case(text)) {
            return Err(format!(
                "`{text}` is not a cron nickname; known: {}",
                CRON_NICKNAMES.join(", ")
            ));
        }
    } else {
        let fields = text.split_whitespace().count();
        if fields != 5 {
            return Err(format!(
                "`{text}` has {fields} field{}; a cron expression has 5 (minute hour day-of-month month day-of-week)",
                if fields == 1 { "" } else { "s" }
            ));
        }
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    parser.parse(text).map_err(|error| {
        // Name the first field that is wrong on its own, with the values it takes.
        let fields: Vec<&str> = text.split_whitespace().collect();
        let wrong = (fields.len() == CRON_FIELDS.len())
            .then(|| {
                (0..fields.len()).find(|&i| {
                    let alone: Vec<&str> = (0..fields.len())
                        .map(|j| if j == i { fields[i] } else { "*" })
                        .collect();
                    parser.parse(&alone.join(" ")).is_err()
                })
            })
            .flatten();
        match wrong {
            Some(i) => {
                let (name, values) = CRON_FIELDS[i];
                format!(
                    "`{text}`: the {name} field `{}` is wrong ({}); it takes {values}",
                    fields[i],
                    cron_reason(&error)
                )
            }
            None => format!("`{text}`: {}", cron_reason(&error)),
        }
    })
}

/// The five fields of a cron expression and the values each takes.
const CRON_FIELDS: [(&str, &str); 5] = [
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31, L or W"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT, with # or L"),
];

/// croner's message without its type names.
fn cron_reason(error: &croner::errors::CronError) -> String {
    use croner::errors::CronError as E;
    match error {
        E::InvalidPattern(reason) | E::IllegalCharacters(reason) | E::ComponentError(reason) => {
            reason.trim_end_matches('.').to_string()
        }
        other => other.to_string().trim_end_matches('.').to_string(),
    }
}

impl ScheduleSpec {
    /// `t` on the wall clock of the schedule's time zone.
    pub fn zoned(&self, t: Timestamp) -> Zoned {
        t.to_zoned(self.timezone.clone())
    }

    /// The first scheduled time after `t` (at `t` too when `inclusive`), from any of the
    /// cron expressions; `None` when none matches again (say, past year 9999).
    pub fn next_time(&self, t: Timestamp, inclusive: bool) -> Option<Timestamp> {
        let next = (self.crons.iter())
            .filter_map(|cron| self.next_of(cron, t, inclusive))
            .min();
        match (inclusive, self.moved_into_gap_end(t)) {
            (true, Some(moved)) if next.is_none_or(|n| moved < n) => Some(moved),
            _ => next,
        }
    }

    /// A scheduled time the zone's clock skipped (02:00 on a spring-forward night) runs at
    /// the first instant after the gap, as the search from before the gap finds it; the
    /// search from that instant itself passes over it (no 02:00 is left that day). This is
    /// that moved time when it lies at or after `t` and within [`GAP_SPAN`] of the zone's
    /// last transition before `t`, found by stepping from the transition.
    fn moved_into_gap_end(&self, t: Timestamp) -> Option<Timestamp> {
        let transition = self
            .timezone
            .preceding(t.checked_add(SignedDuration::from_nanos(1)).ok()?)
            .next()?;
        let at = transition.timestamp();
        if t.duration_since(at) > GAP_SPAN {
            return None;
        }
        let mut probe = (self.crons.iter())
            .filter_map(|cron| {
                self.next_of(
                    cron,
                    at.checked_sub(SignedDuration::from_secs(1)).ok()?,
                    false,
                )
            })
            .min()?;
        while probe < t {
            probe = self.next_time(probe, false)?;
        }
        Some(probe)
    }

    /// [`ScheduleSpec::next_time`] of one expression. croner fails when its search meets a
    /// civil date the zone skipped (Pacific/Apia's 2011-12-30); the search then starts
    /// again at the zone's next transition, if one comes within [`SKIPPED_SPAN`] (no
    /// scheduled time lies before it, or croner would have found it).
    fn next_of(&self, cron: &Cron, t: Timestamp, inclusive: bool) -> Option<Timestamp> {
        let after = |next: &Timestamp| if inclusive { *next >= t } else { *next > t };
        if let Ok(next) = cron.find_next_occurrence(&self.zoned(t), inclusive) {
            return Some(next.timestamp()).filter(after);
        }
        let limit = t.checked_add(SKIPPED_SPAN).ok()?;
        let mut transitions = self.timezone.following(t);
        let mut from = transitions.next()?.timestamp();
        for _ in 0..4 {
            if from > limit {
                return None;
            }
            if let Ok(next) = cron.find_next_occurrence(&self.zoned(from), true) {
                return Some(next.timestamp()).filter(after);
            }
            from = transitions.next()?.timestamp();
        }
        None
    }

    /// The batch id of the logical date `t`: `batch` applied on the schedule's wall clock,
    /// with [`FOLD_SUFFIX`] on the second pass of a repeated hour when the first pass
    /// reads the same. The reason says what is wrong with the id, for the reader's message.
    pub fn batch_id(&self, t: Timestamp) -> Result<String, String> {
        let zoned = self.zoned(t);
        let mut id = format_batch(&self.batch, &zoned)?;
        if let AmbiguousOffset::Fold { before, after } =
            self.timezone.to_ambiguous_zoned(zoned.datetime()).offset()
            && zoned.offset() == after
            && let Ok(first) = before.to_timestamp(zoned.datetime())
            && format_batch(&self.batch, &self.zoned(first))? == id
        {
            id.push_str(FOLD_SUFFIX);
        }
        match check_batch(&id) {
            Ok(()) => Ok(id),
            Err(reason) => Err(format!("gives `{id}`, which {reason}")),
        }
    }
}

impl ScheduleSpec {
    /// The logical date whose batch id is `id`, when the batch format can be read back
    /// (every format that writes the date and, for finer schedules, the time does); `None`
    /// when no logical date of the schedule has it.
    pub fn date_of_batch(&self, id: &str) -> Option<Timestamp> {
        let (written, second_pass) = match id.strip_suffix(FOLD_SUFFIX) {
            Some(first) if strtime::parse(&self.batch, id).is_err() => (first, true),
            _ => (id, false),
        };
        let parsed = strtime::parse(&self.batch, written).ok()?;
        let local = parsed
            .to_datetime()
            .or_else(|_| {
                parsed
                    .to_date()
                    .map(|date| date.to_datetime(jiff::civil::Time::midnight()))
            })
            .ok()?;
        let ambiguous = self.timezone.to_ambiguous_zoned(local);
        // In a gap (a written time the clocks skipped), the earlier reading comes before
        // the logical date, which the search then finds.
        let candidate = if second_pass {
            ambiguous.later().ok()?
        } else {
            ambiguous.earlier().ok()?
        };
        // The first logical date at or after the written time is the one it names, if any.
        let date = self.next_time(candidate.timestamp().max(self.start), true)?;
        if self.end.is_some_and(|end| date > end) {
            return None;
        }
        (self.batch_id(date).ok()? == id).then_some(date)
    }
}

/// What is wrong with a batch format, found on the schedule's own dates.
#[derive(Clone, Debug, PartialEq)]
pub enum BatchProblem {
    /// The id of `date` is not a valid batch id (or the format is not one).
    Invalid { date: Timestamp, reason: String },
    /// The id of `date` does not read back as `date`: the format writes what respawn
    /// cannot parse (`%s`, `%Z`), or leaves out what names the date.
    Unreadable { date: Timestamp, id: String },
    /// Two logical dates get one id.
    Shared {
        id: String,
        first: Timestamp,
        second: Timestamp,
    },
}

/// The batch format is checked on the logical dates of the schedule's first year (or on
/// this many, whichever come first), and on the date a year after the first.
const BATCH_SAMPLE: usize = 2000;

impl ScheduleSpec {
    /// The shortest time between two consecutive scheduled times among the first few
    /// from `first`, which tells a daily schedule from an hourly or finer one.
    pub fn shortest_gap(&self, first: Timestamp) -> Duration {
        let mut shortest = Duration::MAX;
        let mut at = first;
        for _ in 0..64 {
            let Some(next) = self.next_time(at, false) else {
                break;
            };
            shortest = shortest.min(next.duration_since(at).unsigned_abs());
            at = next;
        }
        shortest
    }

    /// Every logical date of a sample from `first` gets a valid batch id of its own. A
    /// sample cannot prove it for all dates, but it finds the formats that leave out a
    /// field which changes within a year (`%Y` for a daily schedule, `%m-%d` for any).
    pub fn check_batch_ids(&self, first: Timestamp) -> Result<(), BatchProblem> {
        let year_later = first.checked_add(SignedDuration::from_hours(366 * 24)).ok();
        let mut sample = vec![first];
        while sample.len() < BATCH_SAMPLE {
            let last = *sample.last().expect("the sample starts with one date");
            match self.next_time(last, false) {
                Some(next) if year_later.is_none_or(|y| next < y) => sample.push(next),
                _ => break,
            }
        }
        sample.extend(year_later.and_then(|y| self.next_time(y, true)));
        sample.retain(|t| self.end.is_none_or(|end| *t <= end));
        let mut seen: HashMap<String, Timestamp> = HashMap::with_capacity(sample.len());
        for &date in &sample {
            let id = self
                .batch_id(date)
                .map_err(|reason| BatchProblem::Invalid { date, reason })?;
            if let Some(first) = seen.insert(id.clone(), date) {
                return Err(BatchProblem::Shared {
                    id,
                    first,
                    second: date,
                });
            }
        }
        // Ids that are unique but do not read back (the run could not find their date).
        for date in sample {
            let id = self
                .batch_id(date)
                .map_err(|reason| BatchProblem::Invalid { date, reason })?;
            if self.date_of_batch(&id) != Some(date) {
                return Err(BatchProblem::Unreadable { date, id });
            }
        }
        Ok(())
    }
}

/// `t` on the wall clock of `timezone`, as RFC 3339 (`2026-10-01T03:00:00+02:00`).
pub fn rfc3339(timezone: &jiff::tz::TimeZone, t: Timestamp) -> String {
    t.display_with_offset(timezone.to_offset(t)).to_string()
}

fn format_batch(format: &str, zoned: &Zoned) -> Result<String, String> {
    strtime::format(format, zoned).map_err(|error| format!("is not a date format: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions_are_five_fields_or_a_nickname() {
        assert!(parse_cron("0 3 * * *").is_ok());
        assert!(parse_cron("@DAILY").is_ok());
        assert!(parse_cron("*/15 9-17 * * MON-FRI").is_ok());
        let six = parse_cron("0 0 3 * * *").unwrap_err();
        assert!(six.contains("has 6 fields"), "{six}");
        let nickname = parse_cron("@nightly").unwrap_err();
        assert!(nickname.contains("not a cron nickname"), "{nickname}");
        let hour = parse_cron("0 25 * * *").unwrap_err();
        assert!(hour.contains("the hour field `25` is wrong"), "{hour}");
        let month = parse_cron("0 3 * FOO *").unwrap_err();
        assert!(month.contains("the month field `FOO` is wrong"), "{month}");
    }
}
