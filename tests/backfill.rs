//! `respawn backfill` and `respawn batches` through the real binary: the fix from a back
//! date (seed 001), self-healing (seed 002), a backfill killed and resumed, the dry run,
//! and bad ranges.

mod support;

use std::collections::BTreeMap;
use support::workspace::Workspace;

/// A daily workflow from 2019-10-01; `extract` is checkpointed and work-tables are kept,
/// so reprocessing a changed `sessions` reuses what `extract` committed.
const DAILY: &str = "\
name: daily
cluster: { provider: local, market: on-demand }
cleanup: never
schedule:
  cron: \"0 3 * * *\"
  timezone: UTC
  start: 2019-10-01
  catchup: all
stages:
  extract:
    run: PAUSE mkdir -p {{ output }} && echo \"extract {{ batch }}\" > {{ output }}/x
    estimate: 1m
    checkpoint: always
  sessions:
    needs: [extract]
    version: \"2\"
    run: mkdir -p {{ output }} && cat {{ inputs.extract }}/x > {{ output }}/s && echo \"sessions v2\" >> {{ output }}/s
    estimate: 1m
";

/// The daily workflow's workspace (`support::workspace`).
struct Daily(Workspace);

impl std::ops::Deref for Daily {
    type Target = Workspace;

    fn deref(&self) -> &Workspace {
        &self.0
    }
}

impl Daily {
    fn new(pause: &str) -> Daily {
        Daily(Workspace::new("daily", &DAILY.replace("PAUSE", pause)))
    }

    /// `respawn COMMAND FILE REST... --store STORE`, `args` being the command and the rest.
    fn respawn(&self, args: &[&str]) -> support::Run {
        self.0.respawn(args[0], &args[1..])
    }

    /// Batches with a published `sessions` output, and the output.
    fn outputs(&self) -> BTreeMap<String, String> {
        self.0.outputs("daily", "sessions", "s")
    }

    /// Run records, by batch.
    fn runs(&self) -> BTreeMap<String, usize> {
        self.0.runs("daily")
    }

    fn fix_sessions(&self) {
        let text = std::fs::read_to_string(&self.file).unwrap();
        std::fs::write(
            &self.file,
            text.replace("version: \"2\"", "version: \"3\"")
                .replace("sessions v2", "sessions v3"),
        )
        .unwrap();
    }
}

fn dates(from: u32, to: u32) -> Vec<String> {
    (from..=to).map(|d| format!("2019-10-{d:02}")).collect()
}

#[test]
fn a_fix_from_a_back_date_reprocesses_exactly_those_dates_and_the_fixed_stage() {
    let daily = Daily::new("");
    daily
        .respawn(&["tick", "--now", "2019-10-18T04:00:00Z"])
        .success();
    let before = daily.outputs();
    assert_eq!(before.keys().cloned().collect::<Vec<_>>(), dates(1, 17));
    daily.fix_sessions();

    let grid = daily.respawn(&["batches", "--now", "2019-10-18T04:00:00Z"]);
    grid.success();
    assert!(grid.stdout.contains("17 stale"), "{}", grid.stdout);

    let dry = daily.respawn(&[
        "backfill",
        "--from",
        "2019-10-14",
        "--to",
        "2019-10-17",
        "--reprocess",
        "stale",
        "--dry-run",
    ]);
    dry.success();
    assert!(
        dry.stdout.contains("4 of 4 date(s) to run"),
        "{}",
        dry.stdout
    );
    assert!(dry.stdout.contains("estimate"), "{}", dry.stdout);
    assert_eq!(daily.outputs(), before, "a dry run changes nothing");

    let backfill = daily.respawn(&[
        "backfill",
        "--from",
        "2019-10-14",
        "--to",
        "2019-10-17",
        "--reprocess",
        "stale",
    ]);
    backfill.success();
    for date in dates(14, 17) {
        assert!(
            backfill
                .stdout
                .contains(&format!("daily {date}: sessions: attempt 2 started")),
            "{date}: {}",
            backfill.stdout
        );
    }
    assert!(
        !backfill.stdout.contains("extract: attempt"),
        "the committed extract is reused: {}",
        backfill.stdout
    );
    let after = daily.outputs();
    for date in dates(1, 13) {
        assert_eq!(after[&date], before[&date], "{date} is untouched");
    }
    for date in dates(14, 17) {
        assert_eq!(
            after[&date],
            format!("extract {date}\nsessions v3\n"),
            "{date} is replaced, never appended to"
        );
    }
    let grid = daily.respawn(&[
        "batches",
        "--now",
        "2019-10-18T04:00:00Z",
        "--format",
        "json",
    ]);
    grid.success();
    let states: Vec<String> = grid
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states.iter().filter(|s| *s == "stale").count(), 13);
    assert_eq!(states.iter().filter(|s| *s == "succeeded").count(), 4);
}

#[test]
fn a_deleted_output_is_rebuilt_by_a_backfill_of_missing_dates_and_nothing_else_runs() {
    let daily = Daily::new("");
    daily
        .respawn(&["tick", "--now", "2019-10-06T04:00:00Z"])
        .success();
    let before = daily.outputs();
    std::fs::remove_dir_all(
        daily
            .dir
            .path()
            .join("store/daily/outputs/sessions/2019-10-03"),
    )
    .unwrap();
    let backfill = daily.respawn(&["backfill", "--from", "2019-10-01", "--to", "2019-10-05"]);
    backfill.success();
    assert!(
        backfill.stdout.contains("1 of 5 date(s) to run"),
        "{}",
        backfill.stdout
    );
    assert_eq!(daily.outputs(), before);
    assert!(daily.runs().values().all(|n| *n == 1), "{:?}", daily.runs());
}

#[test]
fn a_backfill_killed_midway_resumes_with_the_same_command() {
    let daily = Daily::new("sleep 0.4;");
    daily
        .respawn(&["tick", "--now", "2019-10-06T04:00:00Z"])
        .success();
    daily.fix_sessions();
    let args = [
        "backfill",
        "--from",
        "2019-10-01",
        "--to",
        "2019-10-05",
        "--reprocess",
        "all",
    ];
    let mut command = support::command();
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.insert(1, daily.file.display().to_string());
    all.extend([
        "--store".into(),
        daily.dir.path().join("store").display().to_string(),
    ]);
    command
        .args(&all)
        .env("RESPAWN_SCRATCH", daily.dir.path().join("scratch"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    let resumed = daily.respawn(&args);
    resumed.success();
    assert!(
        resumed.stdout.contains("resuming backfill"),
        "{}",
        resumed.stdout
    );
    for date in dates(1, 5) {
        assert_eq!(
            daily.outputs()[&date],
            format!("extract {date}\nsessions v3\n"),
            "{date}"
        );
    }
    // Each date: the scheduled run, and exactly one run of the backfill.
    assert!(
        daily.runs().values().all(|n| *n == 2),
        "{:?}\n{}",
        daily.runs(),
        resumed.stdout
    );
    // Finished: the same command starts a new backfill.
    let again = daily.respawn(&args);
    again.success();
    assert!(!again.stdout.contains("resuming"), "{}", again.stdout);
}

#[test]
fn bad_ranges_are_refused_with_exit_two() {
    let daily = Daily::new("");
    for (from, to, says) in [
        ("2019-10-05", "2019-10-01", "is before --from"),
        ("2018-01-01", "2018-02-01", "no logical date"),
        ("yesterday", "2019-10-01", "is neither a batch id"),
    ] {
        let run = daily.respawn(&["backfill", "--from", from, "--to", to]);
        run.invalid_input();
        assert!(run.stderr.contains(says), "{from}..{to}: {}", run.stderr);
    }
    let plain = daily.dir.path().join("plain.yaml");
    std::fs::write(
        &plain,
        "name: plain\nstages:\n  a:\n    run: mkdir -p {{ output }}\n    estimate: 1m\n",
    )
    .unwrap();
    let run = support::respawn([
        "batches",
        &plain.display().to_string(),
        "--store",
        &daily.dir.path().join("store").display().to_string(),
    ]);
    run.invalid_input();
    assert!(run.stderr.contains("has no `schedule:`"), "{}", run.stderr);
}

#[test]
fn a_date_a_tick_is_running_is_left_to_it_by_a_backfill_not_reported_failed() {
    let daily = Daily::new("sleep 3 &&");
    let store = daily.dir.path().join("store");
    let mut tick = support::command()
        .args(["tick", &daily.file.display().to_string(), "--store"])
        .arg(&store)
        .args(["--now", "2019-10-02T03:30:00Z"])
        .env("RESPAWN_SCRATCH", daily.dir.path().join("scratch"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while daily.runs().is_empty() {
        assert!(started.elapsed().as_secs() < 60, "the tick opened no run");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let backfill = daily.respawn(&["backfill", "--from", "2019-10-01", "--to", "2019-10-01"]);
    assert_eq!(
        backfill.code, 0,
        "a date at work elsewhere is no failure:\n{}\n{}",
        backfill.stdout, backfill.stderr
    );
    assert!(!backfill.stdout.contains("failed"), "{}", backfill.stdout);
    assert!(tick.wait().unwrap().success());
    assert_eq!(daily.outputs().keys().collect::<Vec<_>>(), ["2019-10-01"]);
    assert!(daily.runs().values().all(|n| *n == 1), "{:?}", daily.runs());
}

#[test]
fn dates_whose_interval_has_not_closed_are_refused_unless_allowed() {
    let daily = Daily::new("");
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date();
    let (from, today) = (today.yesterday().unwrap().to_string(), today.to_string());
    for args in [
        vec!["backfill", "--from", &from, "--to", &today],
        vec!["backfill", "--from", "2999-01-01", "--to", "2999-01-03"],
        vec!["run", "--batch", "2999-01-01"],
    ] {
        let run = daily.respawn(&args);
        run.invalid_input();
        assert!(
            run.stderr.contains("cannot run yet") && run.stderr.contains("closes at"),
            "{args:?} says when the date closes: {}",
            run.stderr
        );
        assert!(run.stderr.contains("--allow-future"), "{}", run.stderr);
    }
    assert!(
        !daily.dir.path().join("store/daily/runs").exists(),
        "nothing was recorded for a refused date"
    );
    assert!(daily.outputs().is_empty());
    daily
        .respawn(&["run", "--batch", "2999-01-01", "--allow-future"])
        .success();
    assert_eq!(daily.outputs().keys().collect::<Vec<_>>(), ["2999-01-01"]);
}

#[test]
fn each_run_a_backfill_drives_ends_with_the_cost_respawn_cost_tells() {
    let daily = Daily::new("");
    let store = daily.dir.path().join("store").display().to_string();
    let file = daily.file.display().to_string();
    let env = [(
        "RESPAWN_SCRATCH",
        daily.dir.path().join("scratch").display().to_string(),
    )];
    let text = daily.respawn(&["backfill", "--from", "2019-10-01", "--to", "2019-10-02"]);
    text.success();
    support::assert_cost_after_each_date(
        &text.stdout,
        "daily",
        &["2019-10-01", "2019-10-02"],
        (&file, &store, &env),
    );
    // Reprocessed in JSON: the date's object carries `respawn cost --format json`'s object
    // of the new run.
    let json = daily.respawn(&[
        "backfill",
        "--from",
        "2019-10-01",
        "--to",
        "2019-10-01",
        "--reprocess",
        "all",
        "--format",
        "json",
    ]);
    json.success();
    let ended: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v.get("outcome").is_some())
        .collect();
    assert_eq!(ended.len(), 1, "{}", json.stdout);
    // The run the backfill reports, by its id: two runs of the date began this second.
    let run_id = ended[0]["run_id"].as_str().expect("the run's id");
    let cost = support::cost_of(run_id, None, &store, &env);
    assert_eq!(ended[0]["outcome"], "succeeded");
    assert_eq!(ended[0]["cost"], cost, "{}", json.stdout);
    assert_eq!(daily.runs()["2019-10-01"], 2);
}

#[test]
fn a_date_whose_run_succeeded_after_the_backfill_started_is_not_run_again_on_resume() {
    // A kill between a date's success and the record's save: the record does not note the
    // date, yet the date's run began after the backfill did.
    let daily = Daily::new("");
    daily
        .respawn(&["tick", "--now", "2019-10-06T04:00:00Z"])
        .success();
    let args = [
        "backfill",
        "--from",
        "2019-10-01",
        "--to",
        "2019-10-03",
        "--reprocess",
        "all",
    ];
    daily.respawn(&args).success();
    let folder = daily.dir.path().join("store/daily/schedule/backfills");
    let record = std::fs::read_dir(&folder)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&record).unwrap()).unwrap();
    value["finished"] = false.into();
    value["done_positions"] = serde_json::json!([[0, 1]]);
    std::fs::write(&record, serde_json::to_vec(&value).unwrap()).unwrap();
    let resumed = daily.respawn(&args);
    resumed.success();
    assert!(
        resumed.stdout.contains("resuming backfill"),
        "{}",
        resumed.stdout
    );
    for date in dates(1, 3) {
        assert_eq!(
            daily.runs()[&date],
            2,
            "{date}: the tick's run and one of the backfill\n{}",
            resumed.stdout
        );
    }
}
