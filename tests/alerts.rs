//! Alerts (`alerts:`) end to end through the real binary: a webhook (a real HTTP server on
//! loopback) and a command get one JSON payload per alert; each alert of a run is sent
//! once, however many orchestrators drive the run; a receiver that fails, hangs or answers
//! slowly, or is not there at all, never changes what the run does.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use support::http_receiver::{Answer, Receiver};
use support::respawn;

/// bronze copies `landing.csv`; silver's `amounts` check refuses a negative amount.
fn workflow(dir: &Path, alerts: &str) -> String {
    let text = format!(
        r#"name: alerted
retries: 0
cluster:
  provision_time: 0s
{alerts}
stages:
  bronze:
    run: cp {{{{ workflow_dir }}}}/landing.csv {{{{ output }}}}/rows.csv
  silver:
    needs: [bronze]
    run: sort -n {{{{ inputs.bronze }}}}/rows.csv > {{{{ output }}}}/rows.csv
    checks:
      - name: amounts
        run: "! grep -q -- '^-' {{{{ output }}}}/rows.csv"
"#
    );
    let file = dir.join("alerted.yaml");
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

fn land(dir: &Path, rows: &str) {
    std::fs::write(dir.join("landing.csv"), rows).unwrap();
}

fn run(dir: &Path, file: &str) -> support::Run {
    let store = dir.join("store").display().to_string();
    let scratch = dir.join("scratch").display().to_string();
    respawn([
        "run",
        file,
        "--batch",
        "b1",
        "--store",
        &store,
        "--scratch",
        &scratch,
    ])
}

fn published(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let store = dir.join("store");
    let mut objects = BTreeMap::new();
    support::walk(&store, &store, &mut objects);
    support::published(objects, "alerted")
}

fn kinds(payloads: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = (payloads.iter())
        .map(|p| p["event"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    kinds
}

/// The claim objects of every alert of every run.
fn claims(dir: &Path) -> Vec<Value> {
    let store = dir.join("store");
    let mut objects = BTreeMap::new();
    support::walk(&store, &store, &mut objects);
    (objects.iter())
        .filter(|(key, _)| key.contains("/alerts/"))
        .map(|(_, bytes)| serde_json::from_slice(bytes).unwrap())
        .collect()
}

#[test]
fn a_refused_output_and_the_recovery_reach_a_webhook_and_a_command_once_each() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Vec::new());
    let told = dir.path().join("told.jsonl");
    let alerts = format!(
        "alerts:\n  - webhook: {}\n  - command: cat >> {} && echo >> {}\n    on: [check-failed]\n",
        receiver.url,
        told.display(),
        told.display()
    );
    let file = workflow(dir.path(), &alerts);
    land(dir.path(), "5\n-3\n");
    assert_eq!(run(dir.path(), &file).code, 4);
    let sent = receiver.delivered();
    assert_eq!(kinds(&sent), ["check-failed", "failed"]);
    let check = sent.iter().find(|p| p["event"] == "check-failed").unwrap();
    assert_eq!(
        (check["workflow"].as_str(), check["batch"].as_str()),
        (Some("alerted"), Some("b1"))
    );
    assert_eq!(
        (check["stage"].as_str(), check["check"].as_str()),
        (Some("silver"), Some("amounts"))
    );
    assert_eq!(
        check["summary"],
        "alerted b1: check `amounts` refused the output of `silver`"
    );
    for field in ["id", "run_id", "message", "at"] {
        assert!(check[field].is_string(), "{field}: {check}");
    }
    let lines: Vec<Value> = (std::fs::read_to_string(&told).unwrap().lines())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        kinds(&lines),
        ["check-failed"],
        "the command takes only what `on` names"
    );
    assert_eq!(lines[0]["run_id"], check["run_id"]);
    assert_ne!(lines[0]["id"], check["id"], "an id per destination");

    land(dir.path(), "5\n3\n");
    run(dir.path(), &file).success();
    let sent = receiver.delivered();
    assert_eq!(kinds(&sent), ["check-failed", "failed", "recovered"]);
    let recovered = sent.iter().find(|p| p["event"] == "recovered").unwrap();
    assert_ne!(recovered["run_id"], check["run_id"], "the batch ran anew");
    assert!(claims(dir.path()).iter().all(|c| c["state"] == "delivered"));
}

#[test]
fn a_receiver_that_fails_hangs_and_answers_slowly_gets_each_alert_once_and_the_runs_do_as_without_it()
 {
    let reference = tempfile::tempdir().unwrap();
    let file = workflow(reference.path(), "");
    land(reference.path(), "5\n-3\n");
    let unalerted = run(reference.path(), &file).code;
    land(reference.path(), "5\n3\n");
    run(reference.path(), &file).success();

    let dir = tempfile::tempdir().unwrap();
    let script = vec![
        Answer::Status(503),
        Answer::Hang(Duration::from_secs(7)),
        Answer::Slow(Duration::from_secs(2)),
        Answer::Status(429),
    ];
    let receiver = Receiver::start(script);
    let file = workflow(
        dir.path(),
        &format!("alerts:\n  - webhook: {}\n", receiver.url),
    );
    land(dir.path(), "5\n-3\n");
    assert_eq!(run(dir.path(), &file).code, unalerted);
    land(dir.path(), "5\n3\n");
    run(dir.path(), &file).success();
    assert_eq!(published(dir.path()), published(reference.path()));
    let sent = receiver.delivered();
    assert_eq!(
        kinds(&sent),
        ["check-failed", "failed", "recovered"],
        "each once"
    );
    assert!(
        receiver.received().len() > sent.len(),
        "the script was played"
    );
}

#[test]
fn a_webhook_that_is_not_there_is_recorded_as_failed_and_the_run_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let alerts = format!("alerts:\n  - webhook: http://127.0.0.1:{port}/hook\n    on: [failed]\n");
    let file = workflow(dir.path(), &alerts);
    land(dir.path(), "5\n-3\n");
    assert_eq!(run(dir.path(), &file).code, 4);
    let claims = claims(dir.path());
    assert_eq!(claims.len(), 1, "{claims:?}");
    assert_eq!(claims[0]["state"], "failed");
    assert_eq!(claims[0]["tries"], 5);
    assert!(
        claims[0]["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach it"),
        "{claims:?}"
    );
}

#[test]
fn a_run_resumed_by_another_orchestrator_does_not_send_its_alerts_again() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Vec::new());
    let alerts = format!("alerts:\n  - webhook: {}\n", receiver.url);
    let file = workflow(dir.path(), &alerts);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("run: sort -n", "run: exit 7; sort -n")).unwrap();
    land(dir.path(), "5\n3\n");
    assert_eq!(run(dir.path(), &file).code, 4);
    assert_eq!(
        run(dir.path(), &file).code,
        4,
        "the same run, resumed, fails again"
    );
    assert_eq!(kinds(&receiver.delivered()), ["failed"]);
}

#[test]
fn alerts_are_published_to_an_sns_topic_and_retried_while_sns_fails() {
    use respawn_emr_emulator::{EmrEmulator, EmulatorConfig};
    let dir = tempfile::tempdir().unwrap();
    let config = EmulatorConfig::new("http://127.0.0.1:9", dir.path().join("emr"));
    let emulator = EmrEmulator::start(config).expect("the emulator starts");
    let topic = emulator.create_topic("eu-west-1", "data-alerts");
    emulator.fail_publishes(2);
    let file = workflow(
        dir.path(),
        &format!("alerts:\n  - sns: {topic}\n    on: [check-failed]\n"),
    );
    land(dir.path(), "5\n-3\n");
    let store = dir.path().join("store").display().to_string();
    let scratch = dir.path().join("scratch").display().to_string();
    let env = [
        ("AWS_ENDPOINT_URL_SNS", emulator.endpoint().to_string()),
        ("AWS_ACCESS_KEY_ID", "test".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
    ];
    let args = [
        "run",
        &file,
        "--batch",
        "b1",
        "--store",
        &store,
        "--scratch",
        &scratch,
    ];
    assert_eq!(support::respawn_env(args, &env, &[]).code, 4);
    let published = emulator.published(&topic);
    assert_eq!(published.len(), 1, "{published:?}");
    let payload: Value = serde_json::from_str(&published[0].message).unwrap();
    assert_eq!(
        (payload["event"].as_str(), payload["check"].as_str()),
        (Some("check-failed"), Some("amounts"))
    );
    assert_eq!(
        published[0].subject.as_deref(),
        Some("alerted b1: check `amounts` refused the output of `silver`")
    );
    let claims = claims(dir.path());
    assert_eq!(
        (claims[0]["state"].as_str(), claims[0]["tries"].as_u64()),
        (Some("delivered"), Some(3))
    );
}

#[test]
fn a_tick_sends_the_alerts_of_the_dates_it_runs() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = Receiver::start(Vec::new());
    let alerts = format!(
        "schedule:\n  cron: \"0 3 * * *\"\n  start: 2026-11-01\n  publish_by: 1h\nalerts:\n  - webhook: {}\n    on: [check-failed, late]\n",
        receiver.url
    );
    let file = workflow(dir.path(), &alerts);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("landing.csv", "landing-{{ batch }}.csv"),
    )
    .unwrap();
    std::fs::write(dir.path().join("landing-2026-11-01.csv"), "5\n-3\n").unwrap();
    let store = dir.path().join("store").display().to_string();
    let scratch = dir.path().join("scratch").display().to_string();
    let now = "2026-11-02T03:30:00Z";
    let tick = respawn([
        "tick",
        &file,
        "--now",
        now,
        "--store",
        &store,
        "--scratch",
        &scratch,
    ]);
    assert_ne!(tick.code, 0, "the date failed:\n{}", tick.stdout);
    let sent = receiver.delivered();
    // Its publish-by (04:00 on 2026-11-02) is long past on the wall clock the run keeps.
    assert_eq!(kinds(&sent), ["check-failed", "late"], "{sent:?}");
    assert!(sent.iter().all(|a| a["batch"] == "2026-11-01"));
}
