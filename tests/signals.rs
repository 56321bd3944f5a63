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
}
