//! End-to-end runs of the real binary on local clusters: the e-commerce workflow without
//! faults (the reference), then with interruptions, fallback, orchestrator crashes,
//! failing stages, Ctrl-C, a second orchestrator, re-runs and changed stages. Every run
//! with faults compares its outputs byte for byte with the reference.
//!
//! Half the tests use the local store, half the S3 server started in the test on loopback.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use support::s3_server::{BUCKET, S3Server};
use support::workspace::Workspace;
use support::{Run, processes_of, repo};

const BATCH: &str = "2019-10-01";

/// The e-commerce workflow with a small dataset, a short provisioning time, and a one
/// second pause before every stage so that tests can interrupt stages while they run.
/// `purchases` is ephemeral, so a loss after it forces its recomputation.
fn shop_yaml(extra: &[(&str, &str)]) -> String {
    let mut all = vec![
        ("    deadline: 10h\n", ""),
        ("    run: python3", "    run: sleep 1; python3"),
    ];
    all.extend_from_slice(extra);
    support::small_ecommerce(&all)
}

/// The e-commerce workflow's workspace (`support::workspace`), on a local store or on the
/// S3 test server.
struct Shop(Workspace);

impl std::ops::Deref for Shop {
    type Target = Workspace;

    fn deref(&self) -> &Workspace {
        &self.0
    }
}

impl Shop {
    fn local(extra: &[(&str, &str)]) -> Shop {
        Shop(Workspace::new("shop", &shop_yaml(extra)))
    }

    fn s3(extra: &[(&str, &str)]) -> Shop {
        Shop(Workspace::on("shop", &shop_yaml(extra), true))
    }

    /// The S3 test server the store is on (a shop made by [`Shop::s3`]).
    fn server(&self) -> &S3Server {
        self.s3.as_ref().expect("a shop on the S3 test server")
    }

    fn rewrite(&self, extra: &[(&str, &str)]) {
        self.write(&shop_yaml(extra));
    }

    /// `respawn ARGS --store STORE`.
    fn respawn(&self, args: &[&str]) -> Run {
        support::respawn_env(self.args(args), &self.env(), &[])
    }

    fn run(&self, extra: &[&str]) -> Run {
        let file = self.file.display().to_string();
        let mut args = vec!["run", &file, "--batch", BATCH];
        args.extend_from_slice(extra);
        self.respawn(&args)
    }

    /// Starts `respawn run --format json` in the background.
    fn spawn(&self, extra_env: &[(&str, &str)]) -> Child {
        let mut command = support::command();
        command
            .args(["run", &self.file.display().to_string(), "--batch", BATCH])
            .args(["--store", &self.store_url(), "--format", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in self.env() {
            command.env(name, value);
        }
        for (name, value) in extra_env {
            command.env(name, value);
        }
        command.spawn().expect("respawn starts")
    }

    fn status(&self) -> Value {
        let file = self.file.display().to_string();
        let run = self.respawn(&["status", &file, "--format", "json"]);
        run.success();
        run.json()
    }

    /// Every object of the store, by key (relative to the store's root).
    fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        self.0.objects("")
    }

    /// The published final output (see [`support::published`]).
    fn outputs(&self) -> BTreeMap<String, Vec<u8>> {
        support::published(self.objects(), "ecommerce-sessions")
    }
}

/// The outputs of a run without faults, computed once.
fn reference() -> &'static BTreeMap<String, Vec<u8>> {
    static REFERENCE: OnceLock<BTreeMap<String, Vec<u8>>> = OnceLock::new();
    REFERENCE.get_or_init(|| {
        let shop = Shop::local(&[]);
        shop.run(&[]).success();
        let outputs = shop.outputs();
        assert!(
            outputs.keys().any(|k| k.starts_with("report/2019-10-01/")),
            "{outputs:?}"
        );
        outputs
    })
}

fn assert_same_outputs(shop: &Shop) {
    let got = shop.outputs();
    let want = reference();
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "the same files are published"
    );
    for (key, bytes) in want {
        assert!(got[key] == *bytes, "{key} differs from the reference run");
    }
}

fn stage<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("stage {name} in {status}"))
}

/// Reads JSON events from a running orchestrator and calls `on_event` for each; returns
/// the exit code and the events.
fn follow(mut child: Child, mut on_event: impl FnMut(&Value)) -> (i32, Vec<Value>, String) {
    let stdout = child.stdout.take().unwrap();
    let mut events = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let event: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not a JSON event ({e}): {line}"));
        on_event(&event);
        events.push(event);
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (output.status.code().unwrap_or(-1), events, stderr)
}

/// Runs until the orchestrator kills itself at a crash point.
fn crash_at(shop: &Shop, point: &str) {
    let child = shop.spawn(&[("RESPAWN_CRASH_AT", point)]);
    let (code, events, stderr) = follow(child, |_| {});
    assert_eq!(code, -1, "killed at {point}\n{events:?}\n{stderr}");
}

fn is(event: &Value, kind: &str, stage: &str) -> bool {
    event["event"] == kind && event["stage"] == stage
}

#[test]
fn a_run_without_faults_publishes_the_outputs_and_deletes_its_work_tables() {
    let shop = Shop::s3(&[]);
    let run = shop.run(&[]);
    run.success();
    assert!(run.stdout.contains("starting batch"), "{}", run.stdout);
    assert_same_outputs(&shop);
    let status = shop.status();
    assert_eq!(status["status"], "succeeded");
    for name in ["ingest", "purchases", "sessions", "report"] {
        assert_eq!(stage(&status, name)["attempts"], 1, "{name}");
    }
    let run_id = status["run_id"].as_str().unwrap();
    let work = format!("ecommerce-sessions/runs/{run_id}/work/");
    let objects = shop.objects();
    assert!(!objects.keys().any(|k| k.starts_with(&work)), "{objects:?}");
    for name in ["ingest", "purchases", "sessions", "report"] {
        let log = format!("ecommerce-sessions/runs/{run_id}/logs/{name}/1.log");
        assert!(objects.contains_key(&log), "the log of {name} is kept");
    }
    assert!(processes_of(run_id).is_empty());
}

#[test]
fn reading_commands_work_with_read_only_credentials_and_never_write() {
    let shop = Shop::s3(&[]);
    shop.run(&[]).success();
    let server = shop.server();
    server.faults.read_only.store(true, Ordering::SeqCst);
    let writes = server.faults.writes.load(Ordering::SeqCst);
    let file = shop.file.display().to_string();
    let html = shop.dir.path().join("report.html").display().to_string();
    for args in [
        vec!["status", &file],
        vec!["history", &file],
        vec!["cost", &file],
        vec!["report", &file, "-o", &html],
    ] {
        shop.respawn(&args).success();
    }
    assert_eq!(
        server.faults.writes.load(Ordering::SeqCst),
        writes,
        "no reading command sent a write"
    );
    // A command that writes is refused by the server, and says what permission to check.
    let denied = shop.respawn(&["run", &file, "--batch", "2019-10-02"]);
    denied.store_error();
    assert!(
        denied.stderr.contains("hint:") && denied.stderr.contains("s3:PutObject"),
        "{}",
        denied.stderr
    );
}

#[test]
fn three_interruptions_lose_nothing_and_recompute_only_what_was_lost() {
    let shop = Shop::s3(&[("after_interruptions: 3", "after_interruptions: 9")]);
    let child = shop.spawn(&[]);
    let file = shop.file.display().to_string();
    let mut done = 0;
    // Interrupt while purchases runs (ingest is committed), while sessions runs (the
    // ephemeral purchases is lost with the cluster), and while report runs.
    let triggers = ["purchases", "sessions", "report"];
    let (code, events, stderr) = follow(child, |event| {
        if done < triggers.len() && is(event, "launch", triggers[done]) {
            shop.respawn(&["interrupt", &file]).success();
            done += 1;
        }
    });
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(done, 3);
    assert_same_outputs(&shop);
    let status = shop.status();
    assert_eq!(status["interruptions"].as_array().unwrap().len(), 3);
    // Checkpointed stages ran to completion once: every other attempt was interrupted.
    for name in ["ingest", "sessions", "report"] {
        let s = stage(&status, name);
        assert_eq!(
            s["attempts"].as_u64().unwrap() - s["interrupted"].as_u64().unwrap(),
            1,
            "{name}: {s}"
        );
    }
    assert_eq!(stage(&status, "ingest")["attempts"], 1);
    // The ephemeral purchases ran again after the loss during sessions.
    let purchases_runs = events
        .iter()
        .filter(|e| is(e, "exit", "purchases") && e["code"] == 0)
        .count();
    assert!(purchases_runs >= 2, "purchases was recomputed");
    assert!(events.iter().any(|e| is(e, "restored", "ingest")));
    assert!(events.iter().any(|e| is(e, "restored", "sessions")));
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "cluster-lost")
            .count(),
        3
    );
}

#[test]
fn after_two_interruptions_the_run_falls_back_to_on_demand_and_is_not_interrupted_again() {
    let shop = Shop::local(&[("after_interruptions: 3", "after_interruptions: 2")]);
    let child = shop.spawn(&[]);
    let file = shop.file.display().to_string();
    let mut interrupts = 0;
    let mut refused = None;
    let (code, events, stderr) = follow(child, |event| {
        if interrupts < 2 && is(event, "launch", "purchases") {
            shop.respawn(&["interrupt", &file]).success();
            interrupts += 1;
        } else if refused.is_none() && interrupts == 2 && is(event, "launch", "sessions") {
            refused = Some(shop.respawn(&["interrupt", &file]));
        }
    });
    assert_eq!(code, 0, "{stderr}");
    let refused = refused.expect("an interrupt was tried on the on-demand cluster");
    refused.invalid_input();
    assert!(refused.stderr.contains("on-demand"), "{}", refused.stderr);
    assert_same_outputs(&shop);
    let status = shop.status();
    let markets: Vec<&str> = status["markets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["market"].as_str().unwrap())
        .collect();
    assert_eq!(markets, ["spot", "on-demand"]);
    assert_eq!(status["interruptions"].as_array().unwrap().len(), 2);
    assert_eq!(status["market"], "on-demand");
    let ready: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "cluster-ready")
        .map(|e| e["market"].as_str().unwrap())
        .collect();
    assert_eq!(ready, ["spot", "spot", "on-demand"]);
    assert_eq!(stage(&status, "report")["market"], "on-demand");
}

#[test]
fn a_resumed_run_keeps_its_fallback_interruptions_and_cluster_generations() {
    let shop = Shop::local(&[("after_interruptions: 3", "after_interruptions: 2")]);
    let child = shop.spawn(&[("RESPAWN_CRASH_AT", "before-commit:sessions")]);
    let file = shop.file.display().to_string();
    let mut interrupts = 0;
    let (code, first, stderr) = follow(child, |event| {
        if interrupts < 2 && is(event, "launch", "purchases") {
            shop.respawn(&["interrupt", &file]).success();
            interrupts += 1;
        }
    });
    assert_eq!(code, -1, "killed before sessions' commit\n{stderr}");
    let resumed = shop.run(&["--format", "json"]);
    resumed.success();
    let second: Vec<Value> = resumed
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let provisions = |events: &[Value]| -> Vec<(u64, String)> {
        events
            .iter()
            .filter(|e| e["event"] == "provision")
            .map(|e| {
                let market = e["market"].as_str().unwrap_or_default().to_string();
                (e["generation"].as_u64().unwrap(), market)
            })
            .collect()
    };
    let (before, after) = (provisions(&first), provisions(&second));
    let last_before = before.iter().map(|(g, _)| *g).max().unwrap();
    assert!(
        after.iter().all(|(g, _)| *g > last_before),
        "a resumed run numbers its clusters on: {before:?} then {after:?}"
    );
    assert!(
        after.iter().all(|(_, m)| m == "on-demand"),
        "a run that fell back stays on on-demand: {after:?}"
    );
    let status = shop.status();
    assert_eq!(status["interruptions"].as_array().unwrap().len(), 2);
    assert_eq!(status["market"], "on-demand");
    assert_same_outputs(&shop);
}

#[test]
fn random_spot_interruptions_from_the_chaos_option_lose_nothing() {
    let shop = Shop::local(&[("after_interruptions: 3", "after_interruptions: 4")]);
    let run = shop.run(&["--chaos", "mtti=3s,seed=7,provision=0s", "--format", "json"]);
    run.success();
    assert_same_outputs(&shop);
    // The plan is made for the file's MTTI, not the chaos rate; the run says so.
    let note = run
        .stdout
        .lines()
        .find(|l| l.contains("\"event\":\"note\""))
        .expect("a note that checkpoints are planned for another MTTI");
    assert!(
        note.contains("every 3s") && note.contains("planned for cluster.mtti"),
        "{note}"
    );
    // Without an interruption this test would pass without chaos.
    let lost: Vec<Value> = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "cluster-lost")
        .collect();
    assert!(
        !lost.is_empty(),
        "chaos interrupted no cluster, so nothing was tested:\n{}",
        run.stdout
    );
    for event in &lost {
        let cause = event["cause"].as_str().unwrap_or_default();
        assert!(cause.contains("chaos"), "{event}");
    }
    let status = shop.status();
    assert_eq!(
        status["interruptions"].as_array().unwrap().len(),
        lost.len()
    );
}

#[test]
fn market_auto_chooses_before_the_run_and_after_every_interruption_and_loses_nothing() {
    let shop = Shop::local(&[
        ("market: spot", "market: auto"),
        ("after_interruptions: 3", "after_interruptions: 4"),
    ]);
    let run = shop.run(&["--chaos", "mtti=3s,seed=7,provision=0s", "--format", "json"]);
    run.success();
    assert_same_outputs(&shop);
    let events: Vec<Value> = run
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    // Before the run: spot, in words, before the first cluster is asked for.
    let first = kinds
        .iter()
        .position(|k| *k == "market-chosen")
        .expect("a market choice");
    assert!(first < kinds.iter().position(|k| *k == "provision").unwrap());
    let chosen = &events
        .iter()
        .filter(|e| e["event"] == "market-chosen")
        .collect::<Vec<_>>();
    assert_eq!(chosen[0]["interruptions"], 0);
    assert_eq!(chosen[0]["market"], "spot");
    let reason = chosen[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("spot: expected ") && reason.contains("< on-demand USD"),
        "{reason}"
    );
    // After every loss of a spot cluster that leaves work to do, a choice again, and the
    // next cluster is on the market chosen.
    let lost = events
        .iter()
        .filter(|e| e["event"] == "cluster-lost")
        .count();
    assert!(lost > 0, "chaos interrupted no cluster:\n{}", run.stdout);
    for (at, event) in events.iter().enumerate() {
        if event["event"] != "cluster-lost" || event["market"] != "spot" {
            continue;
        }
        let Some(next) = events[at..].iter().position(|e| e["event"] == "provision") else {
            continue;
        };
        let again = events[at..at + next]
            .iter()
            .rev()
            .find(|e| e["event"] == "market-chosen")
            .unwrap_or_else(|| panic!("no market choice after {event}"));
        assert_eq!(again["interruptions"], event["interruptions"], "{again}");
        assert_eq!(events[at + next]["market"], again["market"], "{again}");
    }
}

/// Kills the orchestrator with SIGKILL, then runs the same command again: the outputs
/// are the reference, nothing is left running.
fn crash_and_resume(shop: &Shop, crash: Option<&str>, kill_after: Option<Duration>) {
    let env: Vec<(&str, &str)> = crash.iter().map(|c| ("RESPAWN_CRASH_AT", *c)).collect();
    let mut child = shop.spawn(&env);
    let stdout = child.stdout.take().unwrap();
    let run_id = std::thread::spawn(move || {
        let mut run_id = None;
        for line in BufReader::new(stdout).lines() {
            let Ok(event) = serde_json::from_str::<Value>(&line.unwrap_or_default()) else {
                continue;
            };
            if event["event"] == "run-started" {
                run_id = event["run_id"].as_str().map(String::from);
            }
        }
        run_id
    });
    if let Some(after) = kill_after {
        let deadline = Instant::now() + after;
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let killed = Instant::now();
    if crash.is_some() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "the crash point was reached");
    }
    // Within 2 seconds of the kill no process of the run is left.
    if let Some(run_id) = run_id.join().unwrap() {
        while !processes_of(&run_id).is_empty() && killed.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(
            processes_of(&run_id),
            Vec::<i32>::new(),
            "no process of the run is left 2 s after the orchestrator was killed"
        );
    }
    let run = shop.run(&[]);
    run.success();
    assert_same_outputs(shop);
    let state = shop.status();
    assert_eq!(state["status"], "succeeded");
    let run_id = state["run_id"].as_str().unwrap();
    assert_eq!(processes_of(run_id), Vec::<i32>::new(), "no orphans");
    // No duplicates: the output holds exactly the files its _SUCCESS names.
    let outputs = shop.outputs();
    assert_eq!(
        outputs.keys().filter(|k| k.starts_with("report/")).count(),
        2
    );
}

#[test]
fn an_orchestrator_killed_at_ten_random_moments_resumes_with_the_same_outputs() {
    // A deterministic spread of moments over a run of about six seconds.
    let mut seed: u64 = 0x5eed;
    for round in 0..10 {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let millis = 200 + (seed >> 33) % 5800;
        // Each stage also leaves a child and a daemon behind, which must not outlive the
        // orchestrator either.
        let leaky = [(
            "    run: sleep 1; python3",
            "    run: sleep 30 & setsid sleep 31 & sleep 1; python3",
        )];
        let shop = if round % 2 == 0 {
            Shop::local(&leaky)
        } else {
            Shop::s3(&leaky)
        };
        crash_and_resume(&shop, None, Some(Duration::from_millis(millis)));
    }
}

#[test]
fn an_orchestrator_killed_during_upload_commit_or_publish_resumes_with_the_same_outputs() {
    for point in [
        "before-commit:ingest",
        "after-commit:ingest",
        "after-commit:sessions",
        "before-publish:report",
    ] {
        let shop = Shop::s3(&[]);
        crash_and_resume(&shop, Some(point), None);
        let status = shop.status();
        if point == "after-commit:ingest" {
            // Its COMMIT landed before the crash: it is not run again.
            assert_eq!(stage(&status, "ingest")["attempts"], 1, "{status}");
        }
    }
}

#[test]
fn a_failing_stage_is_retried_then_fails_the_run_and_a_fixed_rerun_resumes() {
    let shop = Shop::local(&[("retries: 2", "retries: 1")]);
    let marker = shop.dir.path().join("fixed");
    let broken = format!(
        "    run: test -f {} || {{ echo 'report - the input is not ready' >&2; exit 7; }}; python3 {}/examples/stages/report.py",
        marker.display(),
        repo().display()
    );
    let text = std::fs::read_to_string(&shop.file).unwrap().replace(
        &format!(
            "    run: sleep 1; python3 {}/examples/stages/report.py",
            repo().display()
        ),
        &broken,
    );
    std::fs::write(&shop.file, text).unwrap();
    let run = shop.run(&[]);
    assert_eq!(run.code, 4, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("stage `report`") && run.stderr.contains("exit code 7"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("shop.yaml:"), "located: {}", run.stderr);
    assert!(run.stderr.contains("logs/report/2.log"), "{}", run.stderr);
    assert!(
        run.stderr.contains("the input is not ready"),
        "the log's tail is shown: {}",
        run.stderr
    );
    let status = shop.status();
    assert_eq!(status["status"], "failed");
    assert_eq!(stage(&status, "report")["attempts"], 2);
    assert_eq!(stage(&status, "report")["failures"], 2);
    std::fs::write(&marker, "").unwrap();
    let run = shop.run(&[]);
    run.success();
    assert!(run.stdout.contains("resuming run"), "{}", run.stdout);
    assert_same_outputs(&shop);
    let status = shop.status();
    // Only report ran again; sessions was restored from its checkpoint.
    assert_eq!(stage(&status, "report")["attempts"], 3);
    for name in ["ingest", "sessions"] {
        assert_eq!(stage(&status, name)["attempts"], 1, "{name}");
    }
}

#[test]
fn the_same_batch_again_is_a_no_op_and_force_replaces_the_outputs_without_duplicates() {
    let shop = Shop::s3(&[]);
    shop.run(&[]).success();
    let first = shop.status();
    let again = shop.run(&[]);
    again.success();
    assert!(again.stdout.contains("nothing to do"), "{}", again.stdout);
    assert_eq!(shop.status()["run_id"], first["run_id"], "no new run");
    let forced = shop.run(&["--force"]);
    forced.success();
    assert!(forced.stdout.contains("reprocessing"), "{}", forced.stdout);
    assert_ne!(shop.status()["run_id"], first["run_id"]);
    assert_same_outputs(&shop);
}

#[test]
fn a_changed_stage_runs_again_with_everything_downstream_and_nothing_else() {
    let keep = [
        ("cleanup: on-success", "cleanup: never"),
        ("    checkpoint: never\n", ""),
    ];
    let shop = Shop::local(&keep);
    shop.run(&[]).success();
    let mut changed = keep.to_vec();
    changed.push((
        "    estimate: 2h30m\n",
        "    estimate: 2h30m\n    version: \"2\"\n",
    ));
    shop.rewrite(&changed);
    let run = shop.run(&[]);
    run.success();
    assert!(
        run.stdout.contains("reopening") && run.stdout.contains("`sessions` changed"),
        "{}",
        run.stdout
    );
    assert_same_outputs(&shop);
    let status = shop.status();
    for (name, attempts) in [
        ("ingest", 1),
        ("purchases", 1),
        ("sessions", 2),
        ("report", 2),
    ] {
        assert_eq!(
            stage(&status, name)["attempts"],
            attempts,
            "{name}: {status}"
        );
    }
}

#[test]
fn deleting_a_final_output_is_enough_to_have_it_rebuilt() {
    let shop = Shop::local(&[]);
    shop.run(&[]).success();
    let output = shop
        .dir
        .path()
        .join(format!("store/ecommerce-sessions/outputs/report/{BATCH}"));
    std::fs::remove_dir_all(&output).unwrap();
    let run = shop.run(&[]);
    run.success();
    assert!(run.stdout.contains("is gone"), "{}", run.stdout);
    assert_same_outputs(&shop);
}

#[test]
fn deleting_a_commit_of_an_unfinished_run_has_that_stage_rebuilt() {
    let shop = Shop::s3(&[]);
    // Stop the run right after sessions committed.
    crash_at(&shop, "after-commit:sessions");
    let status = shop.status();
    let run_id = status["run_id"].as_str().unwrap().to_string();
    let server = shop.server();
    let commit = server.root().join(BUCKET).join(format!(
        "team/ecommerce-sessions/runs/{run_id}/work/sessions/COMMIT"
    ));
    assert!(commit.is_file());
    std::fs::remove_file(&commit).unwrap();
    shop.run(&[]).success();
    assert_same_outputs(&shop);
    let status = shop.status();
    assert_eq!(stage(&status, "sessions")["attempts"], 2);
    assert_eq!(stage(&status, "ingest")["attempts"], 1);
}

#[test]
fn ctrl_c_stops_the_run_and_the_same_command_resumes_it() {
    let shop = Shop::local(&[]);
    let child = shop.spawn(&[]);
    let pid = child.id() as i32;
    let (code, _, stderr) = follow(child, |event| {
        if is(event, "launch", "sessions") {
            // SAFETY: signalling our own child process.
            unsafe {
                libc::kill(pid, libc::SIGINT);
            }
        }
    });
    assert_eq!(code, 130, "{stderr}");
    let status = shop.status();
    assert_eq!(status["status"], "stopped");
    let run_id = status["run_id"].as_str().unwrap().to_string();
    assert_eq!(processes_of(&run_id), Vec::<i32>::new());
    let run = shop.run(&[]);
    run.success();
    assert!(run.stdout.contains("resuming run"), "{}", run.stdout);
    assert_same_outputs(&shop);
    assert_eq!(stage(&shop.status(), "ingest")["attempts"], 1);
}

#[test]
fn a_second_orchestrator_is_refused_with_the_holder_named() {
    let shop = Shop::local(&[]);
    let child = shop.spawn(&[]);
    let pid = child.id();
    let mut second = None;
    let (code, _, stderr) = follow(child, |event| {
        if second.is_none() && is(event, "launch", "ingest") {
            second = Some(shop.run(&[]));
        }
    });
    assert_eq!(code, 0, "{stderr}");
    let second = second.unwrap();
    assert_eq!(second.code, 5, "{}", second.stderr);
    assert!(
        second.stderr.contains(&format!("pid {pid}")),
        "{}",
        second.stderr
    );
}

#[test]
fn clean_removes_only_work_tables_and_gc_spares_recent_runs() {
    let shop = Shop::s3(&[]);
    crash_at(&shop, "after-commit:sessions");
    let run_id = shop.status()["run_id"].as_str().unwrap().to_string();
    let before = shop.objects();
    let work = format!("ecommerce-sessions/runs/{run_id}/work/");
    assert!(before.keys().any(|k| k.starts_with(&work)));
    let gc = shop.respawn(&["gc", "--older-than", "1h"]);
    gc.success();
    assert_eq!(shop.objects(), before, "gc spares recent runs");
    let dry = shop.respawn(&["clean", &run_id, "--dry-run"]);
    dry.success();
    assert!(dry.stdout.contains("would delete"), "{}", dry.stdout);
    assert_eq!(shop.objects(), before, "a dry run deletes nothing");
    shop.respawn(&["clean", &run_id]).success();
    let after = shop.objects();
    for (key, bytes) in &before {
        if key.starts_with(&work) {
            assert!(!after.contains_key(key), "{key} deleted");
        } else {
            assert_eq!(after.get(key), Some(bytes), "{key} untouched");
        }
    }
    // The run resumes (everything runs again) and ends with the reference outputs.
    shop.run(&[]).success();
    assert_same_outputs(&shop);
}

#[test]
fn cleanup_after_success_touches_nothing_outside_the_runs_work_prefix() {
    let shop = Shop::s3(&[]);
    let server = shop.server();
    // Objects that must survive: another workflow, a run whose id extends this one's
    // prefix, and another batch's output.
    let root = server.root().join(BUCKET).join("team");
    for key in [
        "other-workflow/runs/r1/work/s/1/part-0",
        "ecommerce-sessions/outputs/report/2019-09-30/report.csv",
        "ecommerce-sessions/runs/zz-older/work/ingest/1/part-0",
    ] {
        let path = root.join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, key).unwrap();
    }
    let before = shop.objects();
    shop.run(&[]).success();
    let after = shop.objects();
    for (key, bytes) in &before {
        assert_eq!(after.get(key), Some(bytes), "{key} untouched");
    }
    let run_id = shop.status()["run_id"].as_str().unwrap().to_string();
    let work = format!("ecommerce-sessions/runs/{run_id}/work/");
    assert!(!after.keys().any(|k| k.starts_with(&work)));
}

#[test]
fn the_readme_first_command_runs_the_quickstart_on_the_embedded_default_store() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_respawn"))
        .args([
            "run",
            &support::workflow("quickstart.yaml").display().to_string(),
        ])
        .current_dir(dir.path())
        .env("RESPAWN_SCRATCH", dir.path().join("scratch"))
        .env_remove("RESPAWN_STORE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("starting a new batch"), "{stdout}");
    let outputs = dir.path().join(".respawn/quickstart/outputs/report");
    let batch = std::fs::read_dir(&outputs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(batch.join("_SUCCESS").is_file());
    assert!(batch.join("report.txt").is_file());
    let left = std::fs::read_dir(dir.path().join("scratch/quickstart"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "the run's scratch directory is removed");
}

#[test]
fn bad_run_flags_and_emr_workflows_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store").display().to_string();
    let quickstart = support::workflow("quickstart.yaml").display().to_string();
    for (args, says) in [
        (vec!["--batch", "../x"], "--batch"),
        (vec!["--chaos", "mtti=0s"], "mtti"),
        (vec!["--chaos", "seed=3"], "mtti is required"),
        (vec!["--chaos", "mtti=1s,speed=2"], "unknown chaos setting"),
        (vec!["--force"], "--batch"),
    ] {
        let mut all = vec!["run", &quickstart, "--store", &store];
        all.extend(args.iter().copied());
        let run = support::respawn(&all);
        run.invalid_input();
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    let emr = dir.path().join("emr.yaml");
    std::fs::write(
        &emr,
        std::fs::read_to_string(&quickstart)
            .unwrap()
            .replace("provider: local", "provider: emr"),
    )
    .unwrap();
    let run = support::respawn(["run", &emr.display().to_string(), "--store", &store]);
    run.invalid_input();
    assert!(run.stderr.contains("emr"), "{}", run.stderr);
    assert!(!dir.path().join("store").exists(), "nothing was written");
}

#[test]
fn a_log_of_twenty_megabytes_is_kept_as_its_first_and_last_halves_within_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("loud.yaml");
    std::fs::write(
        &file,
        "name: loud\nstages:\n  talk:\n    run: \"python3 -c \\\"import sys; sys.stdout.write('first ' + 'a' * 20000000 + ' last')\\\" && mkdir -p {{ output }} && echo ok > {{ output }}/x\"\n",
    )
    .unwrap();
    let store = dir.path().join("store");
    support::respawn_env(
        [
            "run",
            &file.display().to_string(),
            "--batch",
            "b1",
            "--store",
            &store.display().to_string(),
        ],
        &[(
            "RESPAWN_SCRATCH",
            dir.path().join("scratch").display().to_string(),
        )],
        &[],
    )
    .success();
    let mut all = BTreeMap::new();
    support::walk(&store, &store, &mut all);
    let (key, log) = all
        .iter()
        .find(|(key, _)| key.ends_with("/logs/talk/1.log"))
        .expect("the attempt's log is kept");
    assert!(log.len() < (16 << 20) + 200, "{key}: {} bytes", log.len());
    let text = String::from_utf8_lossy(log);
    // The log begins with respawn's own header line, then the stage's output.
    assert!(text[..1000].contains("first aaaa"), "{}", &text[..200]);
    assert!(text.trim_end().ends_with(" last"));
    assert!(text.contains("bytes of this"), "the cut is named");
}

#[test]
fn an_event_object_of_two_megabytes_is_named_damaged_and_never_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.yaml");
    std::fs::write(
        &file,
        "name: tiny\nstages:\n  only:\n    run: mkdir -p {{ output }} && echo ok > {{ output }}/x\n",
    )
    .unwrap();
    let (file, store) = (
        file.display().to_string(),
        dir.path().join("store").display().to_string(),
    );
    let scratch = dir.path().join("scratch").display().to_string();
    let env = [("RESPAWN_SCRATCH", scratch)];
    support::respawn_env(
        ["run", &file, "--batch", "b1", "--store", &store],
        &env,
        &[],
    )
    .success();
    let mut all = BTreeMap::new();
    let root = std::path::Path::new(&store);
    support::walk(root, root, &mut all);
    let first = all.keys().find(|k| k.contains("/events/")).unwrap().clone();
    let (events, name) = first.rsplit_once('/').unwrap();
    let huge = format!(
        "{events}/{}",
        name.replace(|c: char| c.is_ascii_digit(), "9")
    );
    std::fs::write(root.join(&huge), vec![b' '; 2 << 20]).unwrap();
    for command in ["report", "history"] {
        let mut args = vec![command, file.as_str(), "--store", store.as_str()];
        if command == "report" {
            args.extend(["-o", "/dev/null"]);
        }
        let run = support::respawn_env(args, &env, &[]);
        run.store_error();
        assert!(
            run.stderr.contains(&huge) && run.stderr.contains("over the 1048576 bytes"),
            "{command}: {}",
            run.stderr
        );
    }
}
