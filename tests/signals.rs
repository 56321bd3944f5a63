//! Stopping a run with signals, on the real binary: Ctrl-C gives stages SIGTERM and a grace
//! period; a second Ctrl-C during it kills them at once (as nextest does).

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::processes_of;

#[test]
fn a_second_ctrl_c_kills_stages_that_ignore_sigterm_without_waiting_for_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("stubborn.yaml");
    // The stage ignores SIGTERM (an ignored signal stays ignored across exec), so only
    // SIGKILL ends it: after the first Ctrl-C respawn would wait out its 10 s grace.
    std::fs::write(
        &file,
        "name: stubborn\n\
         cluster: { provider: local, market: on-demand }\n\
         stages:\n  \
           wait:\n    \
             run: trap '' TERM; sleep 120; mkdir -p {{ output }}\n    \
             estimate: 1m\n",
    )
    .unwrap();
    let mut child = support::command()
        .args(["run", &file.display().to_string(), "--batch", "b1"])
        .args(["--store", &dir.path().join("store").display().to_string()])
        .args(["--format", "json"])
        .env("RESPAWN_SCRATCH", dir.path().join("scratch"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut run_id = String::new();
    for line in lines.by_ref() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if event["event"] == "run-started" {
            run_id = event["run_id"].as_str().unwrap().to_string();
        }
        if event["event"] == "launch" {
            break;
        }
    }
    // Wait until the stage's shell has set its trap and sleeps.
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_of(&run_id).len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid, libc::SIGINT) };
    for line in lines.by_ref() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if event["event"] == "stopping" {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !processes_of(&run_id).is_empty(),
        "the stage ignores SIGTERM and is still there during the grace period"
    );
    let second = Instant::now();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    let took = second.elapsed();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(
        took < Duration::from_secs(8),
        "the second Ctrl-C ended the 10 s grace period at once (took {took:?})"
    );
    assert!(
        processes_of(&run_id).is_empty(),
        "no stage process is left: {:?}",
        processes_of(&run_id)
    );
    let status = support::respawn([
        "status",
        &file.display().to_string(),
        "--store",
        &dir.path().join("store").display().to_string(),
        "--format",
        "json",
    ]);
    status.success();
    assert_eq!(status.json()["status"], "stopped");
    // A stopped run's cost is told, but no saving against a whole run on on-demand.
    let cost = support::respawn([
        "cost",
        &file.display().to_string(),
        "--store",
        &dir.path().join("store").display().to_string(),
    ]);
    cost.success();
    assert!(
        cost.stdout.contains("unfinished") && !cost.stdout.contains('%'),
        "{}",
        cost.stdout
    );
}

/// A daily schedule whose one stage sleeps, for stopping `tick` and `backfill` mid-run.
fn sleepy_schedule(dir: &std::path::Path) -> std::path::PathBuf {
    let file = dir.join("sleepy.yaml");
    std::fs::write(
        &file,
        "name: sleepy\n\
         cluster: { provider: local, market: on-demand }\n\
         schedule: { cron: \"0 3 * * *\", timezone: UTC, start: 2026-11-01 }\n\
         stages:\n  \
           wait:\n    \
             run: sleep 60; mkdir -p {{ output }}\n    \
             estimate: 1m\n",
    )
    .unwrap();
    file
}

#[test]
fn ctrl_c_stops_tick_and_backfill_with_exit_130_as_it_stops_run() {
    let commands: [&[&str]; 2] = [
        &["tick", "--now", "2026-11-03T04:00:00Z"],
        &["backfill", "--from", "2026-11-01", "--to", "2026-11-02"],
    ];
    for args in commands {
        let dir = tempfile::tempdir().unwrap();
        let file = sleepy_schedule(dir.path()).display().to_string();
        let mut child = support::command()
            .arg(args[0])
            .arg(&file)
            .args(&args[1..])
            .args(["--store", &dir.path().join("store").display().to_string()])
            .env("RESPAWN_SCRATCH", dir.path().join("scratch"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // The first line comes once the command listens for signals and has started.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        std::thread::sleep(Duration::from_millis(700));
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
        let status = child.wait().unwrap();
        assert_eq!(
            status.code(),
            Some(130),
            "`respawn {}` stopped by Ctrl-C: {first}\n{rest:?}",
            args[0]
        );
    }
}
