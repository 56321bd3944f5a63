//! Logical dates: the intervals of a schedule, which are due at a given time, which of the
//! missed ones still run after a downtime, and how each is named. Pure: the time is always
//! a parameter, never read from a clock.
//!
//! Consecutive scheduled times bound intervals; the scheduled time that closes an interval
//! triggers its run, and the interval's start is its **logical date** (for a daily
//! `0 3 * * *`, the run at 03:00 on Oct 2 covers [Oct 1 03:00, Oct 2 03:00) and its logical
//! date is Oct 1), as Airflow's data intervals are. Daylight saving time is resolved when
//! the scheduled times are found (`workflow/schedule.rs`): a daily schedule has one
//! interval per civil date, an hourly one follows real hours.

use crate::workflow::schedule::rfc3339;
use crate::workflow::{Catchup, PublishBy, ScheduleSpec};
use jiff::Timestamp;

/// One interval of a schedule: `[start, end)`, where `start` is the logical date and `end`
/// the scheduled time that triggers its run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Interval {
    pub fn logical_date(&self) -> Timestamp {
        self.start
    }
}

/// The intervals whose logical date is at or after `from`, in order, up to the schedule's
/// `end`. The first starts at the first scheduled time at or after `from`.
pub fn intervals_from(schedule: &ScheduleSpec, from: Timestamp) -> Intervals<'_> {
    Intervals {
        schedule,
        next_start: schedule.next_time(from.max(schedule.start), true),
    }
}

/// See [`intervals_from`].
pub struct Intervals<'s> {
    schedule: &'s ScheduleSpec,
    next_start: Option<Timestamp>,
}

impl Iterator for Intervals<'_> {
    type Item = Interval;

    fn next(&mut self) -> Option<Interval> {
        let start = self.next_start?;
        if self.schedule.end.is_some_and(|end| start > end) {
            self.next_start = None;
            return None;
        }
        let end = self.schedule.next_time(start, false);
        self.next_start = end;
        Some(Interval { start, end: end? })
    }
}

/// Every interval whose run is due at `now` (its closing time is at or before `now`), from
/// the schedule's `start` to its `end`, oldest first.
pub fn due(schedule: &ScheduleSpec, now: Timestamp) -> Vec<Interval> {
    intervals_from(schedule, schedule.start)
        .take_while(|interval| interval.end <= now)
        .collect()
}

/// The `n` latest intervals whose logical date is at or after `after` and whose run is due
/// at `now`, oldest first, found without going through the schedule from its start: what a
/// tick's catch-up needs after a long downtime (five years of a minutely schedule are 2.6
/// million intervals, and it runs a few). The search steps back from `now` by twice the
/// span each time until it holds `n` intervals or reaches `after`; the intervals
/// themselves come from [`intervals_from`], so they are the schedule's own.
pub fn latest_due(
    schedule: &ScheduleSpec,
    after: Timestamp,
    now: Timestamp,
    n: usize,
) -> Vec<Interval> {
    if n == 0 {
        return Vec::new();
    }
    let after = after.max(schedule.start);
    let mut span = jiff::SignedDuration::from_hours(1);
    loop {
        let from = now.checked_sub(span).unwrap_or(Timestamp::MIN).max(after);
        let mut latest = std::collections::VecDeque::with_capacity(n.min(1024));
        for interval in intervals_from(schedule, from).take_while(|i| i.end <= now) {
            if latest.len() == n {
                latest.pop_front();
            }
            latest.push_back(interval);
        }
        if latest.len() == n || from == after {
            return latest.into();
        }
        span = span.checked_mul(2).unwrap_or(jiff::SignedDuration::MAX);
    }
}

/// The next time after `now` at which a run falls due: the closing time of the first
/// interval of the schedule that ends after `now`. `None` once the schedule has ended (its
/// last interval closed at or before `now`). What a long-running scheduler sleeps until.
pub fn next_due_after(schedule: &ScheduleSpec, now: Timestamp) -> Option<Timestamp> {
    let first = intervals_from(schedule, schedule.start).next()?;
    if first.end > now {
        return Some(first.end);
    }
    // `now` lies in the interval that starts at the last scheduled time at or before it,
    // which is after the schedule's start; it is one of the schedule's while that start is
    // not after the schedule's `end`, that is while no scheduled time lies in (end, now].
    let next = schedule.next_time(now, false)?;
    match schedule.end {
        Some(end) if end < now => {
            let after_end = schedule.next_time(end, false)?;
            (after_end > now).then_some(next)
        }
        _ => Some(next),
    }
}

/// The intervals whose logical dates lie in `[from, to]` (and in the schedule), oldest
/// first: what a backfill over a range goes through.
pub fn between(schedule: &ScheduleSpec, from: Timestamp, to: Timestamp) -> Vec<Interval> {
    intervals_from(schedule, from)
        .take_while(|interval| interval.start <= to)
        .collect()
}

/// What a tick does with the dates due since its watermark `through`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// To run, oldest first.
    pub run: Vec<Interval>,
    /// Too old for `catchup`: the first and last left out, and how many they are (counted
    /// up to [`COUNT_LIMIT`]). Recorded as one missed range; a backfill can run them.
    pub missed: Option<(Interval, Interval, Option<u64>)>,
    /// The watermark once these are taken up: every due date before it is.
    pub through: Timestamp,
    /// More dates are due than one tick takes up ([`TAKEN_PER_TICK`]).
    pub more: bool,
}

/// At most this many dates due since the watermark are taken up by one tick (with
/// `catchup: all` after a long downtime); the next tick takes the next ones.
pub const TAKEN_PER_TICK: usize = 1000;

/// Counting the dates of a missed range goes through them; past this many it stops.
pub const COUNT_LIMIT: usize = 100_000;

/// The dates due at `now` since the watermark `through`: `catchup: N` runs the N latest and
/// leaves the others out as one range, `all` runs every one (at most [`TAKEN_PER_TICK`]
/// at a time). Costs the dates run, not the dates since `through`: five years of a
/// minutely schedule after a downtime are one range, found without going through it.
pub fn catch_up(schedule: &ScheduleSpec, through: Timestamp, now: Timestamp) -> CatchUp {
    let (run, more) = match schedule.catchup {
        Catchup::Latest(n) => (latest_due(schedule, through, now, n as usize), false),
        Catchup::All => {
            let mut due = intervals_from(schedule, through).take_while(|i| i.end <= now);
            let run: Vec<Interval> = due.by_ref().take(TAKEN_PER_TICK).collect();
            (run, due.next().is_some())
        }
    };
    let first_due = intervals_from(schedule, through)
        .next()
        .filter(|i| i.end <= now);
    let last_due = latest_due(schedule, through, now, 1).first().copied();
    // What is not run, from the watermark to the first date that runs (or to `now`).
    let missed_end = run
        .first()
        .map(|kept| kept.start)
        .or(last_due.map(|l| l.end));
    let missed = match (first_due, missed_end) {
        (Some(first), Some(end)) if first.start < end => {
            let last = latest_due(schedule, through, end, 1)[0];
            let count = intervals_from(schedule, first.start)
                .take_while(|i| i.start <= last.start)
                .take(COUNT_LIMIT + 1)
                .count();
            Some((first, last, (count <= COUNT_LIMIT).then_some(count as u64)))
        }
        _ => None,
    };
    let through = [
        run.last().map(|l| l.end),
        missed.map(|(_, last, _)| last.end),
    ]
    .into_iter()
    .flatten()
    .fold(through, Timestamp::max);
    CatchUp {
        run,
        missed,
        through,
        more,
    }
}

/// The batch id of an interval's logical date (see [`ScheduleSpec::batch_id`]).
pub fn batch_id(schedule: &ScheduleSpec, interval: &Interval) -> Result<String, String> {
    schedule.batch_id(interval.start)
}

/// The interval whose logical date has this batch id, when the batch format can be read
/// back (every format that writes the date and, for finer schedules, the time does);
/// `None` when no logical date of the schedule has it.
pub fn interval_of_batch(schedule: &ScheduleSpec, id: &str) -> Option<Interval> {
    // Not a search from `start` again: a fixed-time expression matches a time the clocks
    // skipped at the first instant after the gap, which a search from that instant misses.
    let start = schedule.date_of_batch(id)?;
    let end = schedule.next_time(start, false)?;
    Some(Interval { start, end })
}

/// Why the run of `interval` cannot start at `now`, if it cannot: its interval has not
/// closed, so its data is not all there (a tick runs a date only once it is due, and so
/// do `run --batch` and `backfill` unless told otherwise). The one rule for every command.
pub fn not_closed(schedule: &ScheduleSpec, interval: &Interval, now: Timestamp) -> Option<String> {
    (interval.end > now).then(|| {
        format!(
            "the interval of logical date {} closes at {}, after now ({}): its data is not all there yet",
            rfc3339(&schedule.timezone, interval.start),
            rfc3339(&schedule.timezone, interval.end),
            rfc3339(&schedule.timezone, now),
        )
    })
}

/// When the output of `interval`'s date is due (`schedule.publish_by`), if a time is set:
/// that long after the interval ends, or the first time the schedule's wall clock shows
/// that time of day at or after it (a time the clocks skip is taken just after the gap).
/// The one rule for the run's deadline, `late` and `batches`.
pub fn publish_due(schedule: &ScheduleSpec, interval: &Interval) -> Option<Timestamp> {
    match schedule.publish_by? {
        PublishBy::After(after) => {
            let after = jiff::SignedDuration::try_from(after).ok()?;
            interval.end.checked_add(after).ok()
        }
        PublishBy::TimeOfDay(time) => {
            let end = interval.end.to_zoned(schedule.timezone.clone());
            let on = |date: jiff::civil::Date| {
                (date.to_datetime(time).to_zoned(schedule.timezone.clone()))
                    .ok()
                    .map(|z| z.timestamp())
            };
            let today = on(end.date())?;
            if today >= interval.end {
                Some(today)
            } else {
                on(end.date().tomorrow().ok()?)
            }
        }
    }
}

/// The values a stage's command gets for its interval: `{{ logical_date }}`,
/// `{{ interval_start }}` and `{{ interval_end }}` (`RESPAWN_LOGICAL_DATE`, ...), on the
/// schedule's wall clock, RFC 3339.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntervalValues {
    pub logical_date: String,
    pub interval_start: String,
    pub interval_end: String,
}

pub fn interval_values(schedule: &ScheduleSpec, interval: &Interval) -> IntervalValues {
    let at = |t| rfc3339(&schedule.timezone, t);
    IntervalValues {
        logical_date: at(interval.start),
        interval_start: at(interval.start),
        interval_end: at(interval.end),
    }
}

#[cfg(test)]
mod tests;
