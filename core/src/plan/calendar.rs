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
use crate::workflow::{Catchup, ScheduleSpec};
use jiff::Timestamp;
use std::collections::BTreeSet;

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

/// What a pass does with the due dates that are not done yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// To run, oldest first.
    pub run: Vec<Interval>,
    /// Too old for `catchup`: recorded as missed, not run (a backfill can run them).
    pub missed: Vec<Interval>,
}

/// Splits the `due` intervals (oldest first) that are not in `done` (logical dates already
/// claimed: run, running or recorded as missed) into those that run and those that are
/// missed: `catchup: N` runs the N latest, `all` runs every one.
pub fn catch_up(due: &[Interval], done: &BTreeSet<Timestamp>, catchup: Catchup) -> CatchUp {
    let pending: Vec<Interval> = due
        .iter()
        .filter(|interval| !done.contains(&interval.start))
        .copied()
        .collect();
    let keep = match catchup {
        Catchup::All => pending.len(),
        Catchup::Latest(n) => pending.len().min(n as usize),
    };
    let split = pending.len() - keep;
    CatchUp {
        missed: pending[..split].to_vec(),
        run: pending[split..].to_vec(),
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
mod tests {
    use super::*;
    use jiff::civil::date;
    use jiff::tz::TimeZone;

    /// A schedule as the reader would make it, from `start` (a civil date) on.
    fn schedule(cron: &str, zone: &str, start: &str) -> ScheduleSpec {
        let timezone = TimeZone::get(zone).unwrap();
        let start: jiff::civil::Date = start.parse().unwrap();
        let mut spec = ScheduleSpec {
            crons: vec![crate::workflow::schedule::parse_cron(cron).unwrap()],
            timezone: timezone.clone(),
            start: start.to_zoned(timezone).unwrap().timestamp(),
            end: None,
            catchup: Catchup::All,
            max_active: 1,
            batch: String::new(),
        };
        let first = spec.next_time(spec.start, true).unwrap();
        spec.batch = crate::workflow::defaults::batch_format(spec.shortest_gap(first)).into();
        spec
    }

    #[test]
    fn a_schedule_goes_on_after_a_civil_date_its_zone_skipped() {
        // Samoa skipped 2011-12-30 when it crossed the date line.
        for cron in ["0 3 * * *", "0 * * * *", "*/30 * * * *"] {
            let apia = schedule(cron, "Pacific/Apia", "2011-12-28");
            let dates: Vec<String> = intervals_from(&apia, apia.start)
                .take_while(|i| i.start.to_zoned(apia.timezone.clone()).date() < date(2012, 1, 2))
                .map(|i| at(&apia, i.start))
                .collect();
            assert!(
                dates.iter().any(|d| d.starts_with("2011-12-29T")),
                "{cron}: {dates:?}"
            );
            assert!(
                dates.iter().any(|d| d.starts_with("2012-01-01T03:00")),
                "{cron}: goes on after the skipped day: {dates:?}"
            );
            assert!(
                !dates.iter().any(|d| d.starts_with("2011-12-30")),
                "{dates:?}"
            );
        }
    }

    fn at(schedule: &ScheduleSpec, t: Timestamp) -> String {
        rfc3339(&schedule.timezone, t)
    }

    /// The intervals whose logical dates fall on one civil date of the schedule's zone.
    fn on(schedule: &ScheduleSpec, day: jiff::civil::Date) -> Vec<Interval> {
        let from = day.to_zoned(schedule.timezone.clone()).unwrap().timestamp();
        intervals_from(schedule, from)
            .take_while(|i| schedule.zoned(i.start).date() == day)
            .collect()
    }

    #[test]
    fn a_daily_run_covers_the_day_before_its_scheduled_time() {
        let daily = schedule("0 3 * * *", "Europe/Paris", "2026-10-01");
        let first = intervals_from(&daily, daily.start).next().unwrap();
        assert_eq!(at(&daily, first.start), "2026-10-01T03:00:00+02:00");
        assert_eq!(at(&daily, first.end), "2026-10-02T03:00:00+02:00");
        assert_eq!(batch_id(&daily, &first).unwrap(), "2026-10-01");
        let values = interval_values(&daily, &first);
        assert_eq!(values.logical_date, "2026-10-01T03:00:00+02:00");
        assert_eq!(values.interval_start, values.logical_date);
        assert_eq!(values.interval_end, "2026-10-02T03:00:00+02:00");
    }

    #[test]
    fn due_holds_the_intervals_whose_closing_time_has_come() {
        let daily = schedule("0 3 * * *", "UTC", "2026-10-01");
        let now = |text: &str| text.parse::<Timestamp>().unwrap();
        assert!(due(&daily, now("2026-10-02T02:59:59Z")).is_empty());
        let one = due(&daily, now("2026-10-02T03:00:00Z"));
        assert_eq!(one.len(), 1);
        assert_eq!(batch_id(&daily, &one[0]).unwrap(), "2026-10-01");
        assert_eq!(due(&daily, now("2026-10-31T12:00:00Z")).len(), 30);
        let mut ended = daily.clone();
        ended.end = Some(now("2026-10-05T23:59:59Z"));
        let last = due(&ended, now("2027-01-01T00:00:00Z"));
        assert_eq!(last.len(), 5);
        assert_eq!(
            batch_id(&ended, last.last().unwrap()).unwrap(),
            "2026-10-05"
        );
    }

    #[test]
    fn the_next_due_time_is_the_closing_time_of_the_interval_holding_now() {
        let daily = schedule("0 3 * * *", "Europe/Paris", "2026-10-01");
        let next = |now: &str| next_due_after(&daily, now.parse().unwrap()).map(|t| at(&daily, t));
        // Before the start, the first interval's end; exactly at a closing time, the next.
        assert_eq!(
            next("2026-01-01T00:00:00Z").unwrap(),
            "2026-10-02T03:00:00+02:00"
        );
        assert_eq!(
            next("2026-10-02T01:00:00Z").unwrap(),
            "2026-10-03T03:00:00+02:00"
        );
        assert_eq!(
            next("2026-10-02T00:59:59Z").unwrap(),
            "2026-10-02T03:00:00+02:00"
        );
        // Across the fall-back fold, the civil 03:00 of the next day.
        assert_eq!(
            next("2026-10-25T12:00:00Z").unwrap(),
            "2026-10-26T03:00:00+01:00"
        );
        // With an end, the interval that starts on it still closes; then nothing is due.
        let mut ended = daily.clone();
        ended.end = Some("2026-10-05T01:00:00Z".parse().unwrap());
        let ended_next = |now: &str| next_due_after(&ended, now.parse().unwrap());
        assert_eq!(
            at(&ended, ended_next("2026-10-05T12:00:00Z").unwrap()),
            "2026-10-06T03:00:00+02:00"
        );
        assert_eq!(ended_next("2026-10-06T01:00:00Z"), None);
        assert_eq!(ended_next("2027-01-01T00:00:00Z"), None);
    }

    #[test]
    fn catch_up_runs_the_latest_oldest_first_and_records_the_others_as_missed() {
        let daily = schedule("@daily", "UTC", "2026-10-01");
        let due = due(&daily, "2026-10-31T00:00:00Z".parse().unwrap());
        assert_eq!(due.len(), 30);
        let ids = |intervals: &[Interval]| -> Vec<String> {
            intervals
                .iter()
                .map(|i| batch_id(&daily, i).unwrap())
                .collect()
        };
        let three = catch_up(&due, &BTreeSet::new(), Catchup::Latest(3));
        assert_eq!(ids(&three.run), ["2026-10-28", "2026-10-29", "2026-10-30"]);
        assert_eq!(three.missed.len(), 27);
        assert_eq!(three.missed[0], due[0]);
        let all = catch_up(&due, &BTreeSet::new(), Catchup::All);
        assert_eq!((all.run.len(), all.missed.len()), (30, 0));
        // What is claimed already is neither run nor missed again.
        let done: BTreeSet<Timestamp> = due[..29].iter().map(Interval::logical_date).collect();
        let latest = catch_up(&due, &done, Catchup::Latest(1));
        assert_eq!(ids(&latest.run), ["2026-10-30"]);
        assert!(latest.missed.is_empty());
        let nothing = catch_up(&due, &due.iter().map(|i| i.start).collect(), Catchup::All);
        assert_eq!(nothing, CatchUp::default());
    }

    #[test]
    fn a_daily_schedule_has_one_interval_per_civil_date_across_both_transitions() {
        // (zone, spring-forward day, fall-back day, what 02:00 becomes in spring)
        for (zone, spring, fall, spring_run) in [
            (
                "Europe/Paris",
                date(2026, 3, 29),
                date(2026, 10, 25),
                "2026-03-29T03:00:00+02:00",
            ),
            (
                "America/New_York",
                date(2026, 3, 8),
                date(2026, 11, 1),
                "2026-03-08T03:00:00-04:00",
            ),
        ] {
            let daily = schedule("0 2 * * *", zone, "2026-01-01");
            for day in [spring, fall] {
                for offset in -1..=1 {
                    let civil = day.checked_add(jiff::Span::new().days(offset)).unwrap();
                    let intervals = on(&daily, civil);
                    assert_eq!(intervals.len(), 1, "{zone} {civil}: {intervals:?}");
                    assert_eq!(batch_id(&daily, &intervals[0]).unwrap(), civil.to_string());
                }
            }
            // The gap swallows 02:00: the run is at the first instant after it, and the
            // day's interval is an hour shorter.
            let spring_day = on(&daily, spring)[0];
            assert_eq!(at(&daily, spring_day.start), spring_run, "{zone}");
            let before = on(&daily, spring.yesterday().unwrap())[0];
            assert_eq!(before.end, spring_day.start);
            // The fold repeats an hour: 02:00 runs once, and the interval is 25 hours.
            let fall_day = on(&daily, fall)[0];
            let length = fall_day.end.duration_since(fall_day.start);
            let expected = if zone == "Europe/Paris" { 25 } else { 24 };
            assert_eq!(length.as_hours(), expected, "{zone}: {fall_day:?}");
        }
    }

    #[test]
    fn an_hourly_schedule_follows_real_hours_across_both_transitions() {
        for (zone, spring, fall) in [
            ("Europe/Paris", date(2026, 3, 29), date(2026, 10, 25)),
            ("America/New_York", date(2026, 3, 8), date(2026, 11, 1)),
        ] {
            let hourly = schedule("0 * * * *", zone, "2026-01-01");
            assert_eq!(on(&hourly, spring).len(), 23, "{zone} {spring}");
            assert_eq!(on(&hourly, spring.tomorrow().unwrap()).len(), 24, "{zone}");
            let fall_hours = on(&hourly, fall);
            assert_eq!(fall_hours.len(), 25, "{zone} {fall}");
            for interval in &fall_hours {
                assert_eq!(interval.end.duration_since(interval.start).as_hours(), 1);
            }
            // The repeated hour has its own batch id, and reads back to its own interval.
            let ids: BTreeSet<String> = fall_hours
                .iter()
                .map(|i| batch_id(&hourly, i).unwrap())
                .collect();
            assert_eq!(ids.len(), 25, "{ids:?}");
            for interval in &fall_hours {
                let id = batch_id(&hourly, interval).unwrap();
                assert_eq!(
                    interval_of_batch(&hourly, &id),
                    Some(*interval),
                    "{zone} {id}"
                );
            }
        }
        let new_york = schedule("0 * * * *", "America/New_York", "2026-11-01");
        let repeated: Vec<String> = on(&new_york, date(2026, 11, 1))[1..3]
            .iter()
            .map(|i| batch_id(&new_york, i).unwrap())
            .collect();
        assert_eq!(repeated, ["2026-11-01T01", "2026-11-01T01.2"]);
    }

    #[test]
    fn batch_ids_read_back_to_their_interval_and_others_to_none() {
        let daily = schedule("0 3 * * *", "Europe/Paris", "2026-01-01");
        let interval = interval_of_batch(&daily, "2026-03-29").unwrap();
        assert_eq!(at(&daily, interval.start), "2026-03-29T03:00:00+02:00");
        assert_eq!(
            interval_of_batch(&daily, "2025-12-31"),
            None,
            "before start"
        );
        assert_eq!(interval_of_batch(&daily, "not-a-date"), None);
        let weekly = schedule("0 3 * * MON", "UTC", "2026-01-01");
        assert_eq!(interval_of_batch(&weekly, "2026-01-06"), None, "a Tuesday");
        assert!(interval_of_batch(&weekly, "2026-01-05").is_some());
        let range = between(
            &daily,
            interval_of_batch(&daily, "2026-03-28").unwrap().start,
            interval_of_batch(&daily, "2026-03-31").unwrap().start,
        );
        let ids: Vec<String> = range.iter().map(|i| batch_id(&daily, i).unwrap()).collect();
        assert_eq!(
            ids,
            ["2026-03-28", "2026-03-29", "2026-03-30", "2026-03-31"]
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        const CRONS: &[&str] = &[
            "0 2 * * *",
            "0 * * * *",
            "30 */3 * * *",
            "0 3 * * MON",
            "@monthly",
        ];
        const ZONES: &[&str] = &[
            "UTC",
            "Europe/Paris",
            "America/New_York",
            "Australia/Lord_Howe",
        ];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(48))]

            #[test]
            fn intervals_are_contiguous_increasing_and_named_once(
                cron in 0..CRONS.len(),
                zone in 0..ZONES.len(),
                start_day in 0i64..700,
                hours_later in 0i64..1500,
                more_hours in 0i64..800,
            ) {
                let start = date(2025, 6, 1).checked_add(jiff::Span::new().days(start_day)).unwrap();
                let spec = schedule(CRONS[cron], ZONES[zone], &start.to_string());
                let now = spec.start.checked_add(jiff::SignedDuration::from_hours(hours_later)).unwrap();
                let later = now.checked_add(jiff::SignedDuration::from_hours(more_hours)).unwrap();
                let due_now = due(&spec, now);
                let due_later = due(&spec, later);
                prop_assert!(due_later.starts_with(&due_now));
                let mut ids = BTreeSet::new();
                for pair in due_later.windows(2) {
                    prop_assert_eq!(pair[0].end, pair[1].start);
                }
                // The next due time is the first closing time after `now`, and a tick then
                // finds exactly one more interval due.
                let first_after = intervals_from(&spec, spec.start).find(|i| i.end > now).map(|i| i.end);
                prop_assert_eq!(next_due_after(&spec, now), first_after);
                if let Some(next) = first_after {
                    prop_assert_eq!(due(&spec, next).len(), due_now.len() + 1);
                }
                for interval in &due_later {
                    prop_assert!(interval.start < interval.end);
                    prop_assert!(interval.start >= spec.start && interval.end <= later);
                    let id = batch_id(&spec, interval).unwrap();
                    prop_assert_eq!(interval_of_batch(&spec, &id), Some(*interval), "{}", id);
                    prop_assert!(ids.insert(id));
                }
            }
        }
    }
}
