//! The calendar: intervals, catch-up, batch ids, across time-zone transitions.
use super::*;
use jiff::civil::date;
use jiff::tz::TimeZone;
use std::collections::BTreeSet;

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
        publish_by: None,
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
fn catch_up_runs_the_latest_oldest_first_and_leaves_the_others_out_as_one_range() {
    let mut daily = schedule("@daily", "UTC", "2026-10-01");
    let now: Timestamp = "2026-10-31T00:00:00Z".parse().unwrap();
    let due = due(&daily, now);
    assert_eq!(due.len(), 30);
    let named = daily.clone();
    let ids = |intervals: &[Interval]| -> Vec<String> {
        intervals
            .iter()
            .map(|i| batch_id(&named, i).unwrap())
            .collect()
    };
    daily.catchup = Catchup::Latest(3);
    let three = catch_up(&daily, daily.start, now);
    assert_eq!(ids(&three.run), ["2026-10-28", "2026-10-29", "2026-10-30"]);
    assert_eq!(three.missed, Some((due[0], due[26], Some(27))));
    assert_eq!((three.through, three.more), (due[29].end, false));
    daily.catchup = Catchup::All;
    let all = catch_up(&daily, daily.start, now);
    assert_eq!((all.run.len(), all.missed), (30, None));
    // From a watermark, only the dates after it; at `now` again, nothing.
    daily.catchup = Catchup::Latest(1);
    let latest = catch_up(&daily, due[29].start, now);
    assert_eq!(
        (ids(&latest.run), latest.missed),
        (vec!["2026-10-30".to_string()], None)
    );
    let nothing = catch_up(&daily, due[29].end, now);
    assert_eq!(
        (nothing.run.len(), nothing.missed, nothing.through),
        (0, None, due[29].end)
    );
    // catchup: 0 leaves every due date out.
    daily.catchup = Catchup::Latest(0);
    let none = catch_up(&daily, daily.start, now);
    assert_eq!(
        (none.run.len(), none.missed),
        (0, Some((due[0], due[29], Some(30))))
    );
}

#[test]
fn five_years_of_a_minutely_schedule_are_one_range_found_without_going_through_them() {
    let mut minutely = schedule("* * * * *", "UTC", "2021-12-06");
    minutely.catchup = Catchup::Latest(2);
    let now: Timestamp = "2026-12-06T10:00:30Z".parse().unwrap();
    let window = catch_up(&minutely, minutely.start, now);
    let at = |t| rfc3339(&minutely.timezone, t);
    assert_eq!(at(window.run[0].start), "2026-12-06T09:58:00+00:00");
    let (first, last, count) = window.missed.unwrap();
    assert_eq!(
        (at(first.start), at(last.start)),
        (
            "2021-12-06T00:00:00+00:00".to_string(),
            "2026-12-06T09:57:00+00:00".to_string()
        )
    );
    assert_eq!(count, None, "more than the counting limit");
    assert_eq!(at(window.through), "2026-12-06T10:00:00+00:00");
    minutely.catchup = Catchup::All;
    let all = catch_up(&minutely, minutely.start, now);
    assert_eq!((all.run.len(), all.more), (TAKEN_PER_TICK, true));
    assert_eq!(all.through, all.run[TAKEN_PER_TICK - 1].end);
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
            // The latest few, found from `now` backwards, are the tail of every due date.
            for n in [1usize, 3, 40] {
                let tail = &due_later[due_later.len().saturating_sub(n)..];
                prop_assert_eq!(latest_due(&spec, spec.start, later, n), tail.to_vec());
            }
            if let Some(cut) = due_later.get(due_later.len() / 2) {
                let after: Vec<Interval> = due_later.iter().filter(|i| i.start >= cut.start).copied().collect();
                prop_assert_eq!(latest_due(&spec, cut.start, later, 100_000).len(), after.len());
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

#[test]
fn a_date_is_due_some_time_after_its_interval_or_at_the_next_time_of_day_on_the_schedules_clock() {
    let mut paris = schedule("0 3 * * *", "Europe/Paris", "2026-03-27");
    let intervals: Vec<Interval> = intervals_from(&paris, paris.start).take(3).collect();
    assert_eq!(publish_due(&paris, &intervals[0]), None);
    paris.publish_by = Some(PublishBy::After(std::time::Duration::from_secs(6 * 3600)));
    // 2026-03-27 03:00 to 03-28 03:00 (+01:00): due at 09:00 the next day.
    let due = publish_due(&paris, &intervals[0]).unwrap();
    assert_eq!(due.to_string(), "2026-03-28T08:00:00Z");
    paris.publish_by = Some(PublishBy::TimeOfDay(jiff::civil::time(7, 30, 0, 0)));
    let at =
        |paris: &ScheduleSpec, i: usize| publish_due(paris, &intervals[i]).unwrap().to_string();
    assert_eq!(
        at(&paris, 0),
        "2026-03-28T06:30:00Z",
        "07:30 in winter time"
    );
    assert_eq!(
        at(&paris, 1),
        "2026-03-29T05:30:00Z",
        "07:30 in summer time, the day clocks moved"
    );
    // A time of day before the interval's end waits for the next day; 02:00 was skipped
    // that night, so it is the instant after the gap.
    paris.publish_by = Some(PublishBy::TimeOfDay(jiff::civil::time(2, 0, 0, 0)));
    assert_eq!(at(&paris, 0), "2026-03-29T01:00:00Z");
}

#[test]
fn the_intervals_read_from_any_of_them_are_the_schedules_across_a_skipped_hour() {
    // 02:00 does not exist in Paris on 2026-03-29: that day's run is at 03:00. Reading the
    // schedule from that interval (a watermark, a backfill's first date, a catch-up's
    // search) must find it, not skip to the next day.
    for (cron, zone) in [
        ("0 2 * * *", "Europe/Paris"),
        ("0 2 * * *", "America/New_York"),
        ("30 2 * * *", "Australia/Lord_Howe"),
        ("0 * * * *", "Europe/Paris"),
    ] {
        let spec = schedule(cron, zone, "2026-03-01");
        let all: Vec<Interval> = intervals_from(&spec, spec.start).take(24 * 45).collect();
        for (k, interval) in all.iter().enumerate().take(all.len() - 3) {
            let from_here: Vec<Interval> = intervals_from(&spec, interval.start).take(3).collect();
            assert_eq!(
                from_here,
                all[k..k + 3],
                "{cron} {zone}: from {}",
                at(&spec, interval.start)
            );
        }
    }
}
