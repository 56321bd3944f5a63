//! Checks on a stage's output (`checks:`): a failing `error` check keeps the output from
//! being committed or published, stops what depends on it, is never retried, and fails the
//! run naming the check; a failing `warn` check is recorded and the run goes on; an output
//! published earlier stays untouched when a re-run fails its check; a loss during a check
//! interrupts the attempt (never a failure). End to end with the real binary on a local
//! cluster and a local-directory store.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use support::respawn;

/// bronze -> silver -> gold. bronze copies `landing.csv` (amount per line); silver's check
/// refuses negative amounts; gold's warn check wants at least three rows.
fn workflow(dir: &Path, version: &str, extra: &str) -> String {
    let text = format!(
        r#"name: checked
retries: 2
cluster:
  provision_time: 0s
stages:
  bronze:
    run: cp {{{{ workflow_dir }}}}/landing.csv {{{{ output }}}}/rows.csv
    checkpoint: always
  silver:
    needs: [bronze]
    version: "{version}"
    run: {extra}sort -n {{{{ inputs.bronze }}}}/rows.csv > {{{{ output }}}}/rows.csv
    checks:
      - name: amounts
        run: "! grep -q -- '^-' {{{{ output }}}}/rows.csv"
  gold:
    needs: [silver]
    run: wc -l < {{{{ inputs.silver }}}}/rows.csv > {{{{ output }}}}/count.txt
    checks:
      - name: enough-rows
        severity: warn
        run: test "$(cat {{{{ output }}}}/count.txt)" -ge 3
"#
    );
    let file = dir.join("checked.yaml");
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

fn land(dir: &Path, rows: &str) {
    std::fs::write(dir.join("landing.csv"), rows).unwrap();
}

fn run(dir: &Path, file: &str, chaos: Option<&str>) -> support::Run {
    let store = dir.join("store").display().to_string();
    let scratch = dir.join("scratch").display().to_string();
    let mut args = vec!["run", file, "--batch", "2026-12-01", "--store", &store];
    args.extend(["--scratch", &scratch, "--format", "json"]);
    if let Some(chaos) = chaos {
        args.extend(["--chaos", chaos]);
    }
    respawn(&args)
}

fn published(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let store = dir.join("store");
    let mut objects = BTreeMap::new();
    if store.exists() {
        support::walk(&store, &store, &mut objects);
    }
    support::published(objects, "checked")
}

fn of<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

fn run_record(dir: &Path) -> Value {
    let runs = dir.join("store/checked/runs");
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap();
    serde_json::from_slice(&std::fs::read(run.path().join("run.json")).unwrap()).unwrap()
}

#[test]
fn a_failing_error_check_refuses_the_output_once_and_fails_the_run_naming_the_check() {
    let dir = tempfile::tempdir().unwrap();
    land(dir.path(), "5\n-3\n7\n");
    let file = workflow(dir.path(), "1", "");
    let run = run(dir.path(), &file, None);
    assert_eq!(run.code, 4, "the run failed\n{}", run.stderr);
    assert!(
        run.stderr.contains("check `amounts` refused"),
        "the check is named:\n{}",
        run.stderr
    );
    let events = run.events();
    let checks = of(&events, "check");
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0]["check"], "amounts");
    assert_eq!(checks[0]["severity"], "error");
    assert_ne!(checks[0]["code"], 0);
    let launches: Vec<_> = of(&events, "launch");
    let silver = launches.iter().filter(|e| e["stage"] == "silver").count();
    assert_eq!(silver, 1, "a refused output is not retried");
    assert!(
        !launches.iter().any(|e| e["stage"] == "gold"),
        "gold never ran"
    );
    assert!(of(&events, "retry").is_empty());
    assert!(published(dir.path()).is_empty(), "nothing was published");
    let record = run_record(dir.path());
    assert_eq!(record["status"], "failed");
    assert_eq!(record["stages"]["silver"]["checks"]["amounts"]["code"], 1);
    assert!(
        record["stages"]["silver"]
            .get("committed_attempt")
            .is_none()
    );
    // The check's output is in the attempt's log, kept in the store.
    let log = checks[0]["log"].as_str().unwrap();
    let log = std::fs::read_to_string(log.trim_start_matches("file://")).unwrap();
    assert!(log.contains("# respawn: check amounts (error)"), "{log}");
    // The report shows the attempt refused, with its check.
    let html = dir.path().join("report.html");
    let store = dir.path().join("store");
    let (html_arg, store_arg) = (html.display().to_string(), store.display().to_string());
    respawn(["report", "checked", "-o", &html_arg, "--store", &store_arg]).success();
    let html = std::fs::read_to_string(&html).unwrap();
    assert!(
        html.contains(r#"data-stage="silver" data-attempt="1" data-outcome="refused""#),
        "{html}"
    );
    assert!(html.contains("<td>amounts failed</td>"), "{html}");
}

#[test]
fn a_failing_warn_check_is_recorded_and_the_run_publishes() {
    let dir = tempfile::tempdir().unwrap();
    land(dir.path(), "5\n7\n");
    let file = workflow(dir.path(), "1", "");
    let run = run(dir.path(), &file, None);
    run.success();
    let events = run.events();
    let checks = of(&events, "check");
    let result = |name: &str| {
        checks
            .iter()
            .find(|e| e["check"] == name)
            .map(|e| e["code"].as_i64().unwrap())
    };
    assert_eq!(result("amounts"), Some(0));
    assert_ne!(result("enough-rows"), Some(0), "two rows warn");
    assert!(result("enough-rows").is_some());
    let outputs = published(dir.path());
    assert_eq!(outputs.get("gold/2026-12-01/count.txt").unwrap(), b"2\n");
    assert!(run.stdout.contains("\"severity\":\"warn\""));
}

#[test]
fn a_published_date_keeps_its_output_when_a_re_run_fails_its_check() {
    let dir = tempfile::tempdir().unwrap();
    land(dir.path(), "5\n7\n9\n");
    let file = workflow(dir.path(), "1", "");
    run(dir.path(), &file, None).success();
    let good = published(dir.path());
    assert_eq!(good.get("gold/2026-12-01/count.txt").unwrap(), b"3\n");

    // New data and a new version of silver: the re-run's silver is refused.
    land(dir.path(), "5\n-7\n9\n1\n");
    let file = workflow(dir.path(), "2", "");
    let rerun = run(dir.path(), &file, None);
    assert_eq!(rerun.code, 4, "{}", rerun.stderr);
    assert_eq!(
        published(dir.path()),
        good,
        "byte for byte the earlier output"
    );
}

#[test]
fn a_cluster_lost_during_a_check_interrupts_the_attempt_and_charges_no_retry() {
    // silver's check takes most of the run, so losses land in it; retries 0 would turn any
    // charged failure into a failed run.
    let reference = tempfile::tempdir().unwrap();
    land(reference.path(), "5\n7\n9\n");
    let file = workflow(reference.path(), "1", "");
    run(reference.path(), &file, None).success();
    let want = published(reference.path());

    let mut hit = false;
    for seed in 1..=6 {
        let dir = tempfile::tempdir().unwrap();
        land(dir.path(), "5\n7\n9\n");
        let file = workflow(dir.path(), "1", "");
        let text = std::fs::read_to_string(&file).unwrap();
        let slow = text
            .replace("retries: 2", "retries: 0")
            .replace("run: \"! grep", "run: \"sleep 1; ! grep");
        std::fs::write(&file, slow).unwrap();
        let chaos = format!("mtti=1500ms,seed={seed},provision=0s");
        let run = run(dir.path(), &file, Some(&chaos));
        run.success();
        assert_eq!(published(dir.path()), want, "seed {seed}");
        let events = run.events();
        // An attempt of silver that exited 0 and was then interrupted was lost in its check.
        let finished: Vec<u64> = (events.iter())
            .filter(|e| e["event"] == "exit" && e["stage"] == "silver" && e["code"] == 0)
            .map(|e| e["attempt"].as_u64().unwrap())
            .collect();
        hit |= (events.iter()).any(|e| {
            e["event"] == "interrupted"
                && e["stage"] == "silver"
                && finished.contains(&e["attempt"].as_u64().unwrap())
        });
        if hit {
            break;
        }
    }
    assert!(
        hit,
        "no seed lost a cluster during a check: nothing was tested"
    );
}

#[test]
fn validate_counts_the_checks_and_a_check_without_run_is_located() {
    let dir = tempfile::tempdir().unwrap();
    let file = workflow(dir.path(), "1", "");
    let ok = respawn(["validate", &file]);
    ok.success();
    assert!(ok.stdout.contains("2 checks"), "{}", ok.stdout);
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: bad\nstages:\n  a:\n    run: x\n    checks:\n      - name: rows\n        severity: fatal\n",
    )
    .unwrap();
    let run = respawn(["validate", &bad.display().to_string()]);
    run.invalid_input();
    assert!(
        run.stderr
            .contains("check `rows` of stage `a` is missing the required key `run`"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains(":7:19"), "{}", run.stderr);
}

/// A daily bronze -> silver -> gold workflow over `landing/<date>.csv`.
fn daily(dir: &Path) -> String {
    let file = workflow(dir, "1", "");
    let text = std::fs::read_to_string(&file).unwrap();
    let schedule = "schedule:\n  cron: \"0 3 * * *\"\n  start: 2026-11-01\nalerts:\n  - command: cat >> alerts.jsonl && echo >> alerts.jsonl\ncluster:";
    let text =
        (text.replace("cluster:", schedule)).replace("landing.csv", "landing/{{ batch }}.csv");
    std::fs::write(&file, text).unwrap();
    file
}

fn land_date(dir: &Path, date: &str, rows: &str) {
    std::fs::create_dir_all(dir.join("landing")).unwrap();
    std::fs::write(dir.join(format!("landing/{date}.csv")), rows).unwrap();
}

#[test]
fn bad_dates_are_never_published_and_a_backfill_of_failed_dates_publishes_them_once_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let file = daily(dir.path());
    let dates = [
        "2026-11-01",
        "2026-11-02",
        "2026-11-03",
        "2026-11-04",
        "2026-11-05",
    ];
    let bad = ["2026-11-02", "2026-11-04"];
    for date in dates {
        let rows = if bad.contains(&date) {
            "4\n-1\n6\n"
        } else {
            "4\n5\n6\n"
        };
        land_date(dir.path(), date, rows);
    }
    let store = dir.path().join("store").display().to_string();
    let scratch = dir.path().join("scratch").display().to_string();
    let backfill = |reprocess: &str| {
        respawn([
            "backfill",
            &file,
            "--from",
            dates[0],
            "--to",
            dates[4],
            "--reprocess",
            reprocess,
            "--store",
            &store,
            "--scratch",
            &scratch,
        ])
    };
    let first = backfill("missing");
    assert_ne!(first.code, 0, "two dates failed:\n{}", first.stdout);
    let gold = |published: &BTreeMap<String, Vec<u8>>| -> Vec<String> {
        (published.keys())
            .filter(|k| k.starts_with("gold/") && k.ends_with("/count.txt"))
            .map(|k| k[5..15].to_string())
            .collect()
    };
    let good: Vec<&str> = dates.iter().copied().filter(|d| !bad.contains(d)).collect();
    assert_eq!(gold(&published(dir.path())), good);
    let batches = respawn(["batches", &file, "--store", &store, "--limit", "0"]);
    batches.success();
    for date in bad {
        let line = batches
            .stdout
            .lines()
            .find(|l| l.starts_with(date))
            .unwrap();
        assert!(
            line.contains("failed")
                && line.contains("check `amounts` refused the output of `silver`"),
            "{line}"
        );
    }

    // One check-failed and one failed alert per bad date, none for the good ones.
    let alerts = |kind: &str| -> Vec<String> {
        let text = std::fs::read_to_string(dir.path().join("alerts.jsonl")).unwrap();
        let mut batches: Vec<String> = (text.lines())
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|a| a["event"] == kind)
            .map(|a| a["batch"].as_str().unwrap().to_string())
            .collect();
        batches.sort();
        batches
    };
    assert_eq!(alerts("check-failed"), bad);
    assert_eq!(alerts("failed"), bad);

    // The data is fixed: the failed dates run anew (bronze reads the fixed data again).
    for date in bad {
        land_date(dir.path(), date, "4\n1\n6\n");
    }
    backfill("failed").success();
    assert_eq!(gold(&published(dir.path())), dates.to_vec());
    assert_eq!(alerts("recovered"), bad);
    assert_eq!(alerts("check-failed"), bad, "no more");
    let published = published(dir.path());
    for date in dates {
        assert_eq!(
            published[&format!("gold/{date}/count.txt")],
            b"3\n",
            "{date}"
        );
    }
}
