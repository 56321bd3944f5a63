//! Daylight saving time through `respawn tick`: a daily `0 2 * * *` schedule in
//! Europe/Paris and America/New_York gives one date per civil date across both 2026
//! transitions, with the right interval bounds in the stages; an hourly schedule gives 23
//! and 25 dates on those days.

mod support;

use serde_json::Value;

fn workflow(dir: &std::path::Path, cron: &str, zone: &str, start: &str) -> std::path::PathBuf {
    let file = dir.join("dst.yaml");
    std::fs::write(
        &file,
        format!(
            "name: dst\n\
             cluster: {{ provider: local, market: on-demand }}\n\
             schedule:\n  cron: \"{cron}\"\n  timezone: {zone}\n  start: {start}\n  catchup: all\n  max_active: 4\n\
             stages:\n  bounds:\n    \
               run: mkdir -p {{{{ output }}}} && echo \"{{{{ interval_start }}}} {{{{ interval_end }}}}\" > {{{{ output }}}}/b\n    \
               estimate: 1m\n"
        ),
    )
    .unwrap();
    file
}

/// The decisions of a dry-run tick at `now`: (batch, logical_date) of each date to run.
fn due(file: &std::path::Path, store: &std::path::Path, now: &str) -> Vec<(String, String)> {
    let run = support::respawn([
        "tick",
        &file.display().to_string(),
        "--now",
        now,
        "--dry-run",
        "--format",
        "json",
        "--store",
        &store.display().to_string(),
    ]);
    run.success();
    run.stdout
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|d| d["decision"] == "run")
        .map(|d| {
            (
                d["batch"].as_str().unwrap().to_string(),
                d["logical_date"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_daily_schedule_runs_once_per_civil_date_across_both_transitions() {
    for (zone, spring, fall) in [
        ("Europe/Paris", "2026-03-29", "2026-10-25"),
        ("America/New_York", "2026-03-08", "2026-11-01"),
    ] {
        for day in [spring, fall] {
            let dir = tempfile::tempdir().unwrap();
            let date: jiff::civil::Date = day.parse().unwrap();
            let start = date.checked_sub(jiff::ToSpan::days(1)).unwrap();
            let file = workflow(dir.path(), "0 2 * * *", zone, &start.to_string());
            let store = dir.path().join("store");
            // At noon UTC two days later, the three intervals around the transition have
            // closed (at 02:00 local) and the next has not.
            let now = format!(
                "{}T12:00:00Z",
                date.checked_add(jiff::ToSpan::days(2)).unwrap()
            );
            let dates = due(&file, &store, &now);
            let batches: Vec<&str> = dates.iter().map(|(b, _)| b.as_str()).collect();
            let want = [
                start.to_string(),
                date.to_string(),
                date.checked_add(jiff::ToSpan::days(1)).unwrap().to_string(),
            ];
            assert_eq!(batches, want, "{zone} {day}: one date per civil date");

            // Run them: each stage sees its interval, from one date's start to the next's.
            let run = support::respawn_env(
                [
                    "tick",
                    &file.display().to_string(),
                    "--now",
                    &now,
                    "--store",
                    &store.display().to_string(),
                ],
                &[(
                    "RESPAWN_SCRATCH",
                    dir.path().join("scratch").display().to_string(),
                )],
                &[],
            );
            run.success();
            let bounds: Vec<(String, String)> = want
                .iter()
                .map(|batch| {
                    let text = std::fs::read_to_string(
                        store.join(format!("dst/outputs/bounds/{batch}/b")),
                    )
                    .unwrap();
                    let (start, end) = text.trim().split_once(' ').unwrap();
                    (start.to_string(), end.to_string())
                })
                .collect();
            assert_eq!(bounds[0].1, bounds[1].0, "{zone} {day}: contiguous");
            assert_eq!(bounds[1].1, bounds[2].0, "{zone} {day}: contiguous");
            for ((start, _), (_, logical)) in bounds.iter().zip(&dates) {
                assert_eq!(start, logical, "{zone} {day}");
            }
        }
    }
}

#[test]
fn an_hourly_schedule_follows_real_hours_on_transition_days() {
    for (zone, spring, fall) in [
        ("Europe/Paris", "2026-03-29", "2026-10-25"),
        ("America/New_York", "2026-03-08", "2026-11-01"),
    ] {
        for (day, hours) in [(spring, 23), (fall, 25)] {
            let dir = tempfile::tempdir().unwrap();
            let date: jiff::civil::Date = day.parse().unwrap();
            let file = workflow(dir.path(), "0 * * * *", zone, day);
            let next_day = date
                .checked_add(jiff::ToSpan::days(1))
                .unwrap()
                .to_zoned(jiff::tz::TimeZone::get(zone).unwrap())
                .unwrap();
            let now = next_day.timestamp().to_string();
            let dates = due(&file, &dir.path().join("store"), &now);
            assert_eq!(dates.len(), hours, "{zone} {day}: {dates:?}");
            let mut batches: Vec<&String> = dates.iter().map(|(b, _)| b).collect();
            batches.dedup();
            assert_eq!(
                batches.len(),
                hours,
                "{zone} {day}: every hour its own batch id"
            );
        }
    }
}
