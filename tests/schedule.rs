//! `respawn schedule` through the real binary: it ticks at start and runs the due dates,
//! then sleeps until the next closing time holding no lease; SIGTERM during a run stops it
//! (exit 130) and a restarted scheduler resumes it; two schedulers at once, on the local
//! store and on the S3 server on loopback, never run a date twice; a schedule that has
//! ended lets it exit. The schedules start in the past, so the first tick has work.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use support::workspace::Workspace;

/// A daily workflow at 03:00 UTC since 2025-06-01. Its stage notes each batch it runs in
/// `ran`; while the file `slow` exists it first writes `started-<batch>` and sleeps.
const DAILY: &str = "\
name: daily
cluster: { provider: local, market: on-demand }
schedule:
  cron: \"0 3 * * *\"
  timezone: UTC
  start: 2025-06-01
  catchup: CATCHUP
  max_active: MAX_ACTIVE
stages:
  extract:
    run: if [ -e DIR/slow ]; then touch DIR/started-$RESPAWN_BATCH; sleep 60; fi; echo $RESPAWN_BATCH >> DIR/ran; mkdir -p {{ output }} && echo \"{{ logical_date }}\" > {{ output }}/day
    estimate: 1m
";

/// The daily workflow's workspace (`support::workspace`), with its scheduler and what
/// the schedule left in the store.
struct Daily(Workspace);

impl std::ops::Deref for Daily {
    type Target = Workspace;

    fn deref(&self) -> &Workspace {
        &self.0
    }
}

impl Daily {
    fn new(schedule: &[(&str, &str)], s3: bool) -> Daily {
        let daily = Daily(Workspace::on("daily", "", s3));
        let mut text = DAILY.replace("DIR", &daily.dir.path().display().to_string());
        for (from, to) in schedule {
            text = text.replace(from, to);
        }
        daily.write(&text);
        daily
    }

    /// `respawn schedule` on this workflow, its output going to files named after `name`.
    fn start(&self, name: &str, extra: &[&str]) -> Scheduler {
        let out = self.path(&format!("{name}.out"));
        let err = self.path(&format!("{name}.err"));
        let mut command = support::command();
        let file = self.file_arg();
        let mut args = self.args(&["schedule", &file]);
        args.extend(extra.iter().map(|s| s.to_string()));
        command
            .args(args)
            .env("NO_COLOR", "1")
            .envs(self.env())
            .stdout(Stdio::from(std::fs::File::create(&out).unwrap()))
            .stderr(Stdio::from(std::fs::File::create(&err).unwrap()));
        Scheduler {
            child: command.spawn().unwrap(),
            out,
            err,
        }
    }

    fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        self.0.objects("daily")
    }

    /// Run records by batch: (how many, the status of the last).
    fn runs(&self) -> BTreeMap<String, (usize, String)> {
        let mut runs = BTreeMap::new();
        for (key, bytes) in self.objects() {
            if key.starts_with("daily/runs/") && key.ends_with("/run.json") {
                let record: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                let entry = runs
                    .entry(record["batch"].as_str().unwrap().to_string())
                    .or_insert((0, String::new()));
                entry.0 += 1;
                entry.1 = record["status"].as_str().unwrap().to_string();
            }
        }
        runs
    }

    /// Claims by batch: `run` or `missed`.
    fn claims(&self) -> BTreeMap<String, String> {
        self.objects()
            .into_iter()
            .filter_map(|(key, bytes)| {
                let batch = key
                    .strip_prefix("daily/schedule/claims/")?
                    .strip_suffix(".json")?;
                let claim: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                Some((batch.into(), claim["decision"].as_str()?.into()))
            })
            .collect()
    }

    /// The batches the stage ran, one line each time it ran to its end.
    fn ran(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("ran"))
            .unwrap_or_default()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Leases (of batches and of run slots) not released.
    fn held_leases(&self) -> Vec<String> {
        self.objects()
            .into_iter()
            .filter(|(key, _)| key.contains("/leases/") || key.contains("/schedule/slots/"))
            .filter(|(_, bytes)| {
                let lease: serde_json::Value = serde_json::from_slice(bytes).unwrap();
                lease["released"] != true
            })
            .map(|(key, _)| key)
            .collect()
    }
}

struct Scheduler {
    child: Child,
    out: PathBuf,
    err: PathBuf,
}

impl Scheduler {
    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits until its output holds `text` the `count`-th time.
    fn wait_for(&mut self, text: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.stdout().matches(text).count() < count {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "the scheduler ended ({status}) before printing `{text}`:\n{}\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no `{text}` after 90 s:\n{}\n{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits for the exit code.
    fn terminate(mut self) -> (i32, String) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.wait();
        (status, self.stdout())
    }

    fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let stderr = self.stderr();
                assert!(!stderr.contains("panicked"), "{stderr}");
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "still running:\n{}",
                self.stdout()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The next 03:00 UTC after now, as the scheduler prints it.
fn next_three_utc() -> String {
    let now = jiff::Timestamp::now();
    let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
    let mut next = today
        .at(3, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap();
    if next.timestamp() <= now {
        next = next.tomorrow().unwrap();
    }
    next.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string()
}

#[test]
fn it_ticks_at_start_then_sleeps_until_the_next_closing_time_holding_no_lease() {
    let daily = Daily::new(&[("CATCHUP", "3"), ("MAX_ACTIVE", "1")], false);
    let mut first = daily.start("first", &[]);
    first.wait_for("next tick at", 1);
    let stdout = first.stdout();
    assert!(
        stdout.contains(&format!(
            "next tick at {} (daily falls due)",
            next_three_utc()
        )),
        "{stdout}"
    );
    // The three latest dates ran, once each; the older ones are recorded as missed.
    let runs = daily.runs();
    assert_eq!(runs.len(), 3, "{runs:?}");
    assert!(
        runs.values()
            .all(|(n, status)| *n == 1 && status == "succeeded")
    );
    let claims = daily.claims();
    let latest: Vec<&String> = claims.keys().rev().take(3).collect();
    assert!(latest.iter().all(|batch| runs.contains_key(*batch)));
    assert_eq!(
        claims.values().filter(|d| *d == "missed").count(),
        claims.len() - 3
    );
    let mut ran = daily.ran();
    ran.sort();
    assert_eq!(ran, runs.keys().cloned().collect::<Vec<_>>());
    // Asleep, it holds nothing that would keep another orchestrator out.
    assert_eq!(daily.held_leases(), Vec::<String>::new());
    let (code, stdout) = first.terminate();
    assert_eq!(code, 130, "{stdout}");
    assert!(stdout.contains("stopped between ticks"), "{stdout}");

    // Started again, it runs nothing twice; its JSON is one object a line.
    let mut again = daily.start("again", &["--format", "json"]);
    again.wait_for("\"scheduler\":\"sleeping\"", 1);
    let (code, stdout) = again.terminate();
    assert_eq!(code, 130, "{stdout}");
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        lines.iter().filter(|l| l.get("decision").is_some()).count(),
        0,
        "{stdout}"
    );
    assert_eq!(lines[0]["scheduler"], "sleeping");
    assert!(
        lines[0]["next_tick"]
            .as_str()
            .unwrap()
            .ends_with("T03:00:00+00:00")
    );
    assert_eq!(lines.last().unwrap()["scheduler"], "stopped");
    assert_eq!(daily.runs(), runs);
    assert_eq!(daily.ran().len(), 3);
}

#[test]
fn sigterm_during_a_run_stops_it_with_130_and_a_restarted_scheduler_resumes_it() {
    let daily = Daily::new(&[("CATCHUP", "2"), ("MAX_ACTIVE", "1")], false);
    std::fs::write(daily.path("slow"), "").unwrap();
    let first = daily.start("first", &[]);
    let deadline = Instant::now() + Duration::from_secs(60);
    let started = loop {
        let started: Vec<String> = std::fs::read_dir(daily.dir.path())
            .unwrap()
            .filter_map(|e| {
                e.ok()?
                    .file_name()
                    .to_str()?
                    .strip_prefix("started-")
                    .map(String::from)
            })
            .collect();
        if let Some(batch) = started.into_iter().next() {
            break batch;
        }
        assert!(
            Instant::now() < deadline,
            "no stage started:\n{}",
            first.stdout()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let begun = Instant::now();
    let (code, stdout) = first.terminate();
    assert_eq!(code, 130, "{stdout}");
    assert!(begun.elapsed() < Duration::from_secs(10), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "daily {started}: stopped; the next tick resumes it"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("not started: stopping; the next tick runs it"),
        "{stdout}"
    );
    assert!(
        stdout.contains("stopped; the next tick resumes what was stopped"),
        "{stdout}"
    );
    let runs = daily.runs();
    assert_eq!(runs.len(), 1, "the second date never started: {runs:?}");
    assert_eq!(runs[&started], (1, "stopped".to_string()));
    assert!(daily.ran().is_empty());
    assert_eq!(daily.held_leases(), Vec::<String>::new());

    // The next scheduler resumes the stopped run (the same run record) and runs the other.
    std::fs::remove_file(daily.path("slow")).unwrap();
    let mut again = daily.start("again", &[]);
    again.wait_for("next tick at", 1);
    let stdout = again.stdout();
    assert!(
        stdout.contains(&format!("daily {started}: resuming run")),
        "{stdout}"
    );
    let (code, _) = again.terminate();
    assert_eq!(code, 130);
    let runs = daily.runs();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(
        runs.values()
            .all(|(n, status)| *n == 1 && status == "succeeded"),
        "{runs:?}"
    );
    let mut ran = daily.ran();
    ran.sort();
    assert_eq!(ran, runs.keys().cloned().collect::<Vec<_>>());
}

#[test]
fn two_schedulers_at_once_never_run_a_date_twice() {
    for s3 in [false, true] {
        let daily = Daily::new(&[("CATCHUP", "6"), ("MAX_ACTIVE", "2")], s3);
        let mut one = daily.start("one", &[]);
        let mut two = daily.start("two", &[]);
        one.wait_for("next tick at", 1);
        two.wait_for("next tick at", 1);
        // One of them may have left dates to the other while it held both run slots;
        // each is done by one of the two, once.
        let deadline = Instant::now() + Duration::from_secs(90);
        while daily.ran().len() < 6 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        for scheduler in [one, two] {
            let (code, stdout) = scheduler.terminate();
            assert_eq!(code, 130, "s3 {s3}: {stdout}");
        }
        let runs = daily.runs();
        assert_eq!(runs.len(), 6, "s3 {s3}: {runs:?}");
        assert!(
            runs.values()
                .all(|(n, status)| *n == 1 && status == "succeeded"),
            "s3 {s3}: {runs:?}"
        );
        let mut ran = daily.ran();
        ran.sort();
        assert_eq!(ran, runs.keys().cloned().collect::<Vec<_>>(), "s3 {s3}");
        assert_eq!(daily.held_leases(), Vec::<String>::new(), "s3 {s3}");
    }
}

#[test]
fn once_every_schedule_has_ended_it_exits_zero() {
    let daily = Daily::new(&[("CATCHUP", "all"), ("MAX_ACTIVE", "2")], false);
    let text = std::fs::read_to_string(&daily.file).unwrap().replace(
        "  start: 2025-06-01\n",
        "  start: 2025-06-01\n  end: 2025-06-03\n",
    );
    std::fs::write(&daily.file, text).unwrap();
    let mut scheduler = daily.start("ended", &[]);
    let code = scheduler.wait();
    let stdout = scheduler.stdout();
    assert_eq!(code, 0, "{stdout}\n{}", scheduler.stderr());
    assert!(stdout.contains("every schedule has ended"), "{stdout}");
    assert_eq!(
        daily.runs().keys().cloned().collect::<Vec<_>>(),
        ["2025-06-01", "2025-06-02", "2025-06-03"]
    );
    // Each run it drove ends with the cost `respawn cost` tells, as `respawn run` ends.
    let store = daily.path("store").display().to_string();
    let file = daily.file.display().to_string();
    for date in ["2025-06-01", "2025-06-02", "2025-06-03"] {
        let cost = support::cost_of(&file, Some(date), &store, &[]);
        let line = format!("daily {date}: {}", support::cost_line(&cost));
        assert!(stdout.lines().any(|l| l == line), "{line}\n{stdout}");
    }
}

#[test]
fn a_workflow_without_a_schedule_is_refused_with_exit_two() {
    let plain = Path::new("workflows/quickstart.yaml");
    let run = support::respawn(["schedule", &plain.display().to_string()]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("`respawn schedule` runs scheduled workflows"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_scheduler_sigkilled_during_a_run_then_restarted_loses_no_date_and_runs_none_twice() {
    for s3 in [false, true] {
        let daily = Daily::new(&[("CATCHUP", "3"), ("MAX_ACTIVE", "1")], s3);
        std::fs::write(daily.path("slow"), "").unwrap();
        let mut first = daily.start("first", &[]);
        // Wait until a run is in its stage, then kill the scheduler outright.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_dir(daily.dir.path()).unwrap().any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("started-")
        }) {
            assert!(
                Instant::now() < deadline,
                "no run started: {}",
                first.stdout()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        first.child.kill().unwrap();
        first.child.wait().unwrap();
        std::fs::remove_file(daily.path("slow")).unwrap();

        let mut second = daily.start("second", &[]);
        second.wait_for("next tick at", 1);
        let (code, stdout) = second.terminate();
        assert_eq!(code, 130, "s3 {s3}: {stdout}");
        let runs = daily.runs();
        assert_eq!(runs.len(), 3, "s3 {s3}: {runs:?}\n{stdout}");
        assert!(
            runs.values()
                .all(|(n, status)| *n == 1 && status == "succeeded"),
            "s3 {s3}: one run per date, resumed where it was killed: {runs:?}\n{stdout}"
        );
        let mut ran = daily.ran();
        ran.sort();
        assert_eq!(
            ran,
            runs.keys().cloned().collect::<Vec<_>>(),
            "s3 {s3}: each date's stage ran to its end once"
        );
        assert_eq!(daily.held_leases(), Vec::<String>::new(), "s3 {s3}");
    }
}
