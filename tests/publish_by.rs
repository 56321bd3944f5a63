//! `schedule.publish_by`: each date's output is due some time after its interval. A run
//! past it is `late` (an event, an alert, and `batches` shows the date late); what is left
//! of a run that cannot finish by it is `deadline-at-risk`, and with `market: auto` the
//! run goes to on-demand from the start. Dates well within it are neither.

mod support;

use serde_json::Value;
use std::path::Path;
use support::respawn;

fn workflow(dir: &Path, publish_by: &str, market: &str) -> String {
    let text = format!(
        r#"name: due
schedule:
  cron: "0 3 * * *"
  start: 2026-11-01
  publish_by: {publish_by}
alerts:
  - command: cat >> alerts.jsonl && echo >> alerts.jsonl
cluster:
  market: {market}
  provision_time: 0s
stages:
  land:
    run: echo {{{{ batch }}}} > {{{{ output }}}}/day.txt
    estimate: 20m
"#
    );
    let file = dir.join("due.yaml");
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

fn backfill(dir: &Path, file: &str) -> support::Run {
    let store = dir.join("store").display().to_string();
    let scratch = dir.join("scratch").display().to_string();
    let args = [
        "backfill",
        file,
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-02",
    ];
    respawn(
        args.iter()
            .copied()
            .chain(["--store", &store, "--scratch", &scratch]),
    )
}

/// `batches` of the two dates, in JSON.
fn dates(dir: &Path, file: &str) -> Vec<Value> {
    let store = dir.join("store").display().to_string();
    let batches = respawn([
        "batches",
        file,
        "--store",
        &store,
        "--to",
        "2026-11-02",
        "--format",
        "json",
    ]);
    batches.success();
    serde_json::from_str(&batches.stdout).unwrap()
}

fn alerts(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("alerts.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn kinds_of(alerts: &[Value], batch: &str) -> Vec<String> {
    let mut kinds: Vec<String> = (alerts.iter())
        .filter(|a| a["batch"] == batch)
        .map(|a| a["event"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    kinds
}

#[test]
fn dates_run_after_their_publish_by_are_late_and_at_risk_and_batches_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = workflow(dir.path(), "6h", "auto");
    let run = backfill(dir.path(), &file);
    run.success();
    assert!(
        run.stdout
            .contains("late: the output was due at 2026-11-02T09:00:00Z"),
        "{}",
        run.stdout
    );
    let alerts = alerts(dir.path());
    for batch in ["2026-11-01", "2026-11-02"] {
        assert_eq!(
            kinds_of(&alerts, batch),
            ["deadline-at-risk", "late"],
            "{alerts:?}"
        );
    }
    // Past its deadline, `market: auto` takes the fastest market.
    assert!(
        run.stdout.contains("provisioning on-demand cluster 1"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("provisioning spot"), "{}", run.stdout);
    let dates = dates(dir.path(), &file);
    assert_eq!(dates[0]["publish_by"], "2026-11-02T09:00:00+00:00");
    assert!(dates.iter().all(|d| d["late"] == true), "{dates:?}");
    let store = dir.path().join("store").display().to_string();
    let text = respawn(["batches", &file, "--store", &store, "--to", "2026-11-02"]);
    assert!(
        text.stdout.contains("late (due 2026-11-02T09:00:00+00:00)"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("2 late"), "{}", text.stdout);
}

#[test]
fn dates_well_within_their_publish_by_are_neither_late_nor_at_risk() {
    let dir = tempfile::tempdir().unwrap();
    let file = workflow(dir.path(), "100000h", "spot");
    let run = backfill(dir.path(), &file);
    run.success();
    assert!(!run.stdout.contains("late:"), "{}", run.stdout);
    assert!(alerts(dir.path()).is_empty(), "{:?}", alerts(dir.path()));
    let dates = dates(dir.path(), &file);
    assert!(dates.iter().all(|d| d.get("late").is_none()), "{dates:?}");
}
