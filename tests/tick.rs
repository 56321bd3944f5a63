//! `respawn tick` through the real binary: catch-up after downtime, every due date run
//! exactly once by 20 ticks started at once, the dry run touching nothing, a deleted output
//! rebuilt, and bad input refused. Half the tests use the S3 server on loopback.

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use support::workspace::Workspace;

/// A daily workflow at 03:00 Paris time from 2026-11-01, its stages writing the logical
/// date and the interval's end into the published output.
const DAILY: &str = "\
name: daily
cluster: { provider: local, market: on-demand }
schedule:
  cron: \"0 3 * * *\"
  timezone: Europe/Paris
  start: 2026-11-01
  catchup: CATCHUP
stages:
  extract:
    run: mkdir -p {{ output }} && echo \"{{ logical_date }} {{ interval_end }}\" > {{ output }}/day
    estimate: 1m
  load:
    needs: [extract]
    run: mkdir -p {{ output }} && cp {{ inputs.extract }}/day {{ output }}/day && echo $RESPAWN_BATCH >> {{ output }}/day
    estimate: 1m
";

/// The daily workflow's workspace (`support::workspace`), with its tick and what the
/// schedule left in the store.
struct Daily(Workspace);

impl std::ops::Deref for Daily {
    type Target = Workspace;

    fn deref(&self) -> &Workspace {
        &self.0
    }
}

impl Daily {
    fn new(catchup: &str, s3: bool) -> Daily {
        Daily(Workspace::on(
            "daily",
            &DAILY.replace("CATCHUP", catchup),
            s3,
        ))
    }

    /// A daily schedule with `max_active: 1` whose one stage leaves the returned file
    /// behind if it ever finds another run of it active at the same time.
    fn one_at_a_time() -> (Daily, PathBuf) {
        let daily = Daily::new("all", false);
        let lock = daily.path("active");
        let overlap = daily.path("overlap");
        daily.write(&format!(
            "name: daily\n\
             cluster: {{ provider: local, market: on-demand }}\n\
             schedule:\n  cron: \"0 3 * * *\"\n  timezone: Europe/Paris\n  start: 2026-11-01\n  catchup: all\n  max_active: 1\n\
             stages:\n  load:\n    \
               run: (mkdir {lock} || touch {overlap}); sleep 0.3; rmdir {lock}; mkdir -p {{{{ output }}}} && echo {{{{ batch }}}} > {{{{ output }}}}/day\n    \
               estimate: 1m\n",
            lock = lock.display(),
            overlap = overlap.display()
        ));
        (daily, overlap)
    }

    /// Starts `respawn tick` at `now` in the background, its output piped.
    fn spawn_tick(&self, now: &str) -> std::process::Child {
        let file = self.file_arg();
        let mut command = support::command();
        command
            .args(self.args(&["tick", &file, "--now", now]))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (name, value) in self.env() {
            command.env(name, value);
        }
        command.spawn().unwrap()
    }

    fn tick(&self, now: &str, extra: &[&str]) -> support::Run {
        let mut args = vec!["--now", now];
        args.extend_from_slice(extra);
        self.respawn("tick", &args)
    }

    /// Every object of the store under `daily/`, by key.
    fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        self.0.objects("daily")
    }

    /// Batches with a published `load` output, and the output.
    fn outputs(&self) -> BTreeMap<String, String> {
        self.0.outputs("daily", "load", "day")
    }

    /// Run records, by batch.
    fn runs(&self) -> BTreeMap<String, usize> {
        self.0.runs("daily")
    }

    fn claims(&self) -> BTreeMap<String, String> {
        self.objects()
            .into_iter()
            .filter_map(|(key, bytes)| {
                let batch = key
                    .strip_prefix("daily/schedule/claims/")?
                    .strip_suffix(".json")?;
                let claim: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                Some((
                    batch.to_string(),
                    claim["decision"].as_str().unwrap().to_string(),
                ))
            })
            .collect()
    }
}

fn dates(from: u32, to: u32) -> Vec<String> {
    (from..=to).map(|d| format!("2026-11-{d:02}")).collect()
}

#[test]
fn after_thirty_missed_days_catchup_three_runs_the_three_latest_and_records_the_rest() {
    let daily = Daily::new("3", false);
    // Nov 1 .. Nov 30 are due at 03:00 Paris time on Dec 1.
    let run = daily.tick("2026-12-01T02:30:00Z", &[]);
    run.success();
    assert_eq!(
        daily.outputs().keys().cloned().collect::<Vec<_>>(),
        dates(28, 30),
        "{}",
        run.stdout
    );
    // The 27 dates catch-up left out are one missed range, not 27 objects.
    let claims = daily.claims();
    assert_eq!(claims.len(), 3, "{claims:?}");
    for date in dates(28, 30) {
        assert_eq!(claims[&date], "run", "{date}");
    }
    let ranges: Vec<serde_json::Value> = daily
        .objects()
        .into_iter()
        .filter(|(key, _)| key.starts_with("daily/schedule/missed/"))
        .map(|(_, bytes)| serde_json::from_slice(&bytes).unwrap())
        .collect();
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    assert_eq!(ranges[0]["first_batch"], "2026-11-01");
    assert_eq!(ranges[0]["last_batch"], "2026-11-27");
    assert_eq!(ranges[0]["dates"], 27);
    let file = daily.file.display().to_string();
    let batches = support::respawn_env(
        daily.args(&["batches", &file, "--now", "2026-12-01T02:30:00Z"]),
        &daily.env(),
        &[],
    );
    batches.success();
    assert!(
        batches.stdout.contains("27 missed") && batches.stdout.contains("3 succeeded"),
        "{}",
        batches.stdout
    );
    // Oldest first.
    let order: Vec<usize> = dates(28, 30)
        .iter()
        .map(|d| run.stdout.find(&format!("daily {d}: succeeded")).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{}", run.stdout);
    assert_eq!(
        daily.outputs()["2026-11-28"],
        "2026-11-28T03:00:00+01:00 2026-11-29T03:00:00+01:00\n2026-11-28\n"
    );

    // The same tick again does nothing; the next day runs the next date only.
    let again = daily.tick("2026-12-01T02:30:00Z", &[]);
    again.success();
    assert!(
        again.stdout.contains("0 due date(s) to act on"),
        "{}",
        again.stdout
    );
    daily.tick("2026-12-02T02:30:00Z", &[]).success();
    assert_eq!(daily.outputs().len(), 4);
    assert!(daily.outputs().contains_key("2026-12-01"));
    assert!(daily.runs().values().all(|n| *n == 1), "{:?}", daily.runs());
}

#[test]
fn twenty_ticks_at_once_run_each_of_ten_due_dates_exactly_once() {
    for round in 0..3 {
        let daily = Daily::new("all", round % 2 == 1);
        let now = "2026-11-11T02:30:00Z";
        let children: Vec<_> = (0..20).map(|_| daily.spawn_tick(now)).collect();
        for child in children {
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(!stderr.contains("panicked"), "{stderr}");
            assert_eq!(
                output.status.code(),
                Some(0),
                "round {round}: {}\n{stderr}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        let runs = daily.runs();
        assert_eq!(
            runs.keys().cloned().collect::<Vec<_>>(),
            dates(1, 10),
            "round {round}"
        );
        assert!(
            runs.values().all(|n| *n == 1),
            "round {round}: one run per date: {runs:?}"
        );
        assert_eq!(daily.outputs().len(), 10, "round {round}");
        assert!(daily.claims().values().all(|d| d == "run"));
    }
}

#[test]
fn a_dry_run_decides_and_touches_nothing() {
    let daily = Daily::new("2", true);
    let run = daily.tick("2026-11-06T02:30:00Z", &["--dry-run"]);
    run.success();
    for (date, what) in [
        ("2026-11-01", "missed through 2026-11-03, 3 date(s)"),
        ("2026-11-04", "due"),
        ("2026-11-05", "due"),
    ] {
        assert!(
            run.stdout.contains(&format!("daily {date}: {what}")),
            "{date} {what}: {}",
            run.stdout
        );
    }
    assert!(daily.objects().is_empty(), "{:?}", daily.objects().keys());
    let json = daily.tick("2026-11-06T02:30:00Z", &["--dry-run", "--format", "json"]);
    json.success();
    let decisions: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(decisions.len(), 3);
    assert_eq!(decisions[2]["decision"], "run");
    assert_eq!(decisions[2]["batch"], "2026-11-05");
    assert_eq!(decisions[0]["decision"], "miss");
    assert_eq!(decisions[0]["last_batch"], "2026-11-03");
}

#[test]
fn deleting_a_published_output_has_the_next_tick_rebuild_that_date_only() {
    let daily = Daily::new("all", true);
    let now = "2026-11-04T02:30:00Z";
    daily.tick(now, &[]).success();
    let before = daily.outputs();
    assert_eq!(before.len(), 3);
    let output = daily.store_root().join("daily/outputs/load/2026-11-02");
    std::fs::remove_dir_all(&output).unwrap();
    let run = daily.tick(now, &[]);
    run.success();
    assert!(
        run.stdout.contains("daily 2026-11-02: rebuilding"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("daily 2026-11-01: rebuilding"));
    assert_eq!(daily.outputs(), before, "the same bytes again");
    assert!(daily.runs().values().all(|n| *n == 1), "{:?}", daily.runs());
}

#[test]
fn bad_schedules_flags_and_batches_are_refused_with_exit_two() {
    let daily = Daily::new("3", false);
    let bad_now = daily.tick("yesterday", &[]);
    bad_now.invalid_input();
    assert!(bad_now.stderr.contains("RFC 3339"), "{}", bad_now.stderr);

    let plain = daily.dir.path().join("plain.yaml");
    std::fs::write(
        &plain,
        "name: plain\nstages:\n  a:\n    run: mkdir -p {{ output }}\n    estimate: 1m\n",
    )
    .unwrap();
    let unscheduled = support::respawn(daily.args(&["tick", &plain.display().to_string()]));
    unscheduled.invalid_input();
    assert!(
        unscheduled.stderr.contains("has no `schedule:`"),
        "{}",
        unscheduled.stderr
    );

    let file = daily.file.display().to_string();
    let not_a_date = support::respawn_env(
        daily.args(&["run", &file, "--batch", "2026-13-45"]),
        &daily.env(),
        &[],
    );
    not_a_date.invalid_input();
    assert!(
        not_a_date
            .stderr
            .contains("is not a logical date of the schedule"),
        "{}",
        not_a_date.stderr
    );
    let interval_outside_schedule = daily.dir.path().join("unscheduled.yaml");
    std::fs::write(
        &interval_outside_schedule,
        "name: u\nstages:\n  a:\n    run: echo {{ logical_date }}\n    estimate: 1m\n",
    )
    .unwrap();
    let located = support::respawn(["validate", &interval_outside_schedule.display().to_string()]);
    located.invalid_input();
    assert!(
        located
            .stderr
            .contains("unscheduled.yaml:4:15: in `run` of stage `a`: `{{ logical_date }}` is only known in a workflow with a `schedule:`"),
        "{}",
        located.stderr
    );
}

#[test]
fn a_tick_killed_at_any_moment_then_run_again_loses_no_date_and_runs_none_twice() {
    for (round, after_ms) in [150u64, 600, 1200, 2000].into_iter().enumerate() {
        let daily = Daily::new("all", round % 2 == 1);
        std::fs::write(
            &daily.file,
            DAILY
                .replace("CATCHUP", "all")
                .replace("run: mkdir", "run: sleep 0.2; mkdir"),
        )
        .unwrap();
        let now = "2026-11-06T02:30:00Z";
        let mut child = daily.spawn_tick(now);
        std::thread::sleep(std::time::Duration::from_millis(after_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        let again = daily.tick(now, &[]);
        again.success();
        assert_eq!(
            daily.outputs().keys().cloned().collect::<Vec<_>>(),
            dates(1, 5),
            "round {round} (killed after {after_ms} ms): {}",
            again.stdout
        );
        let runs = daily.runs();
        assert!(
            runs.values().all(|n| *n == 1),
            "round {round}: one run per date: {runs:?}\n{}",
            again.stdout
        );
        for (batch, text) in daily.outputs() {
            assert!(text.ends_with(&format!("\n{batch}\n")), "{batch}: {text}");
        }
    }
}

#[test]
fn max_active_bounds_the_runs_of_all_ticks_together() {
    let (daily, overlap) = Daily::one_at_a_time();
    let now = "2026-11-05T02:30:00Z";
    let children: Vec<_> = (0..5).map(|_| daily.spawn_tick(now)).collect();
    let mut said = String::new();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(0));
        said.push_str(&String::from_utf8_lossy(&output.stdout));
    }
    // Whatever the first ticks left to later ones, later ticks finish it.
    for _ in 0..5 {
        if daily.outputs().len() == 4 {
            break;
        }
        daily.tick(now, &[]).success();
    }
    assert_eq!(
        daily.outputs().keys().cloned().collect::<Vec<_>>(),
        dates(1, 4),
        "{said}"
    );
    assert!(!overlap.exists(), "two runs were active at once:\n{said}");
    assert!(daily.runs().values().all(|n| *n == 1), "{:?}", daily.runs());
}

#[test]
fn each_run_a_tick_drives_ends_with_the_cost_respawn_cost_tells() {
    let daily = Daily::new("all", false);
    let store = daily.dir.path().join("store").display().to_string();
    let file = daily.file.display().to_string();
    let env = daily.env();
    let text = daily.tick("2026-11-03T02:30:00Z", &[]);
    text.success();
    support::assert_cost_after_each_date(
        &text.stdout,
        "daily",
        &["2026-11-01", "2026-11-02"],
        (&file, &store, &env),
    );
    // In JSON, the object of a date that ran carries `respawn cost --format json`'s object.
    let json = daily.tick("2026-11-04T02:30:00Z", &["--format", "json"]);
    json.success();
    let ended: Vec<serde_json::Value> = json
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v.get("outcome").is_some())
        .collect();
    assert_eq!(ended.len(), 1, "{}", json.stdout);
    assert_eq!(ended[0]["outcome"], "succeeded");
    let cost = support::cost_of(&file, Some("2026-11-03"), &store, &env);
    assert_eq!(ended[0]["cost"], cost, "{}", json.stdout);
    assert_eq!(ended[0]["run_id"], cost["run_id"]);
}

#[test]
fn two_ticks_at_once_resuming_a_killed_tick_s_date_both_exit_zero_and_run_it_once() {
    for round in 0..3 {
        let daily = Daily::new("all", false);
        std::fs::write(
            &daily.file,
            DAILY
                .replace("CATCHUP", "all")
                .replace("run: mkdir", "run: sleep 0.6; mkdir"),
        )
        .unwrap();
        // One due date; the first tick is killed while its first stage runs.
        let now = "2026-11-02T02:30:00Z";
        let mut first = daily.spawn_tick(now);
        std::thread::sleep(std::time::Duration::from_millis(400));
        first.kill().unwrap();
        first.wait().unwrap();
        let ticks: Vec<_> = (0..2).map(|_| daily.spawn_tick(now)).collect();
        let mut said = String::new();
        for tick in ticks {
            let output = tick.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout).to_string();
            let stderr = String::from_utf8_lossy(&output.stderr).to_string();
            assert_eq!(
                output.status.code(),
                Some(0),
                "round {round}: a tick that found the date taken failed\n{stdout}\n{stderr}"
            );
            assert!(!stdout.contains("failed"), "round {round}: {stdout}");
            said.push_str(&stdout);
        }
        // Whichever tick resumed it, the date is done once.
        daily.tick(now, &[]).success();
        assert_eq!(
            daily.outputs().keys().cloned().collect::<Vec<_>>(),
            dates(1, 1),
            "round {round}: {said}"
        );
        assert_eq!(
            daily.runs().values().sum::<usize>(),
            1,
            "round {round}: {said}"
        );
    }
}

#[test]
fn max_active_binds_a_backfill_running_beside_ticks() {
    let (daily, overlap) = Daily::one_at_a_time();
    let now = "2026-11-05T02:30:00Z";
    let file = daily.file.display().to_string();
    let backfill_args = daily.args(&[
        "backfill",
        &file,
        "--from",
        "2026-11-01",
        "--to",
        "2026-11-04",
        "--max-active",
        "4",
    ]);
    let mut backfill = support::command();
    backfill
        .args(&backfill_args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (name, value) in daily.env() {
        backfill.env(name, value);
    }
    let backfill = backfill.spawn().unwrap();
    let ticks: Vec<_> = (0..2).map(|_| daily.spawn_tick(now)).collect();
    let mut said = String::new();
    for child in ticks.into_iter().chain([backfill]) {
        let output = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        said.push_str(&stdout);
    }
    for _ in 0..5 {
        if daily.outputs().len() == 4 {
            break;
        }
        daily.tick(now, &[]).success();
    }
    assert_eq!(
        daily.outputs().keys().cloned().collect::<Vec<_>>(),
        dates(1, 4),
        "{said}"
    );
    assert!(!overlap.exists(), "two runs were active at once:\n{said}");
    assert!(daily.runs().values().all(|n| *n == 1), "{:?}", daily.runs());
}

#[test]
fn a_damaged_run_record_stops_batches_tick_run_status_report_and_cost_alike_naming_it() {
    let daily = Daily::new("all", false);
    let now = "2026-11-03T02:30:00Z";
    daily.tick(now, &[]).success();
    // The record of the run of 2026-11-01: deciding about that date needs it.
    let runs = daily.store_root().join("daily/runs");
    let record = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| e.unwrap().path().join("run.json"))
        .find(|path| {
            std::fs::read_to_string(path)
                .unwrap()
                .contains("\"batch\": \"2026-11-01\"")
        })
        .unwrap();
    std::fs::write(&record, b"{ not json").unwrap();
    let run_id = record
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let file = daily.file.display().to_string();
    let batch = dates(1, 1).remove(0);
    let html = daily.dir.path().join("r.html").display().to_string();
    let commands: [Vec<&str>; 8] = [
        vec!["batches", &file, "--now", now],
        vec!["tick", &file, "--now", now],
        vec!["run", &file, "--batch", &batch],
        vec!["status", &file],
        vec!["report", &file, "-o", &html],
        vec!["cost", &file],
        vec!["cost", run_id],
        vec!["status", run_id],
    ];
    // One policy: deciding without the record could run its date anew and lose its
    // checkpoints, so every command that decides stops and names it (no date is called
    // missing by one command and refused by another); the views of "the latest run" do
    // not show an older run in its place either.
    for args in commands {
        let run = support::respawn_env(daily.args(&args), &daily.env(), &[]);
        assert_eq!(run.code, 3, "{args:?}\n{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("run.json"),
            "{args:?} names the damaged record: {}",
            run.stderr
        );
    }
}

#[test]
fn changing_the_batch_format_of_a_live_schedule_is_refused_not_run_again() {
    let daily = Daily::new("all", false);
    let now = "2026-11-04T02:30:00Z";
    daily.tick(now, &[]).success();
    let before = daily.outputs();
    assert_eq!(before.len(), 3, "{before:?}");
    let text = std::fs::read_to_string(&daily.file).unwrap();
    std::fs::write(
        &daily.file,
        text.replace("  catchup: all\n", "  catchup: all\n  batch: \"%Y%m%d\"\n"),
    )
    .unwrap();
    let file = daily.file.display().to_string();
    for args in [
        vec!["tick", &file, "--now", now],
        vec!["batches", &file, "--now", now],
    ] {
        let run = support::respawn_env(daily.args(&args), &daily.env(), &[]);
        run.invalid_input();
        assert!(
            run.stderr.contains("`batch:`") && run.stderr.contains("2026-11-01"),
            "{args:?} says the batch format changed, naming a date: {}",
            run.stderr
        );
    }
    assert_eq!(daily.outputs(), before, "no date ran again");
}

#[test]
fn a_run_slot_deleted_by_hand_is_taken_again_by_the_run_that_holds_it() {
    let daily = Daily::new("latest", false);
    // One due date, whose first stage outlasts a renewal of its slot (every 20 s).
    let slow = DAILY.replace("CATCHUP", "latest").replace(
        "run: mkdir -p {{ output }} && echo",
        "run: sleep 23 && mkdir -p {{ output }} && echo",
    );
    std::fs::write(&daily.file, slow).unwrap();
    let child = daily.spawn_tick("2026-11-05T02:30:00Z");
    let slot = daily.store_root().join("daily/schedule/slots/0");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !slot.exists() {
        assert!(std::time::Instant::now() < deadline, "no slot was taken");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::fs::remove_file(&slot).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("was deleted; this run took it again"),
        "{stderr}"
    );
    assert!(!stderr.contains("stopping"), "{stderr}");
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(&slot).unwrap()).unwrap();
    assert_eq!(
        record["released"], true,
        "the slot taken again was released at the end"
    );
    assert_eq!(daily.outputs().len(), 1);
}
