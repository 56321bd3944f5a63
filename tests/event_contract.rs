//! The run-event contract. `respawn run --format json` prints one JSON object per event, and
//! the same objects are kept under `runs/<run_id>/events/`; reports, scripts and the
//! scheduler read them. Since events became a typed `RunEvent`, this test holds them to what
//! the binary printed before: `tests/golden/run-events.json` was recorded from the untyped
//! binary (commit 4409c89) on the scenarios below, and holds
//! - for each kind of event, every set of fields it was seen with, each with its JSON type;
//! - the events of a run without faults, with times, ids, paths and durations left out.
//!
//! To record it again from another binary (only when a change of the contract is meant):
//! `RESPAWN_CONTRACT_BLESS=1 RESPAWN_CONTRACT_BIN=path/to/respawn cargo test --test event_contract`.

mod support;

use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::repo;

const BATCH: &str = "2019-10-01";
const GOLDEN: &str = "tests/golden/run-events.json";

/// Fields whose values differ from run to run (times, ids, paths, measured durations).
const VARYING: &[&str] = &[
    "at",
    "elapsed_s",
    "run_id",
    "seconds",
    "log",
    "prefix",
    "store",
    "output",
    "cluster",
    "from",
    "delay_s",
    "batch",
];

fn binary() -> PathBuf {
    std::env::var_os("RESPAWN_CONTRACT_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_respawn")))
}

struct Scenario {
    dir: tempfile::TempDir,
    file: PathBuf,
}

impl Scenario {
    /// The e-commerce workflow on a small dataset, `extra` replacements applied.
    fn new(extra: &[(&str, &str)]) -> Scenario {
        let text = support::small_ecommerce(extra);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shop.yaml");
        std::fs::write(&file, text).unwrap();
        Scenario { dir, file }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn command(&self, extra: &[&str]) -> Command {
        let mut command = Command::new(binary());
        command
            .current_dir(repo())
            .args(["run", &self.file.display().to_string(), "--batch", BATCH])
            .args(["--store", &self.store().display().to_string()])
            .args(["--format", "json"])
            .args(extra)
            .env("RESPAWN_SCRATCH", self.dir.path().join("scratch"))
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs to the end; returns the exit code and the printed events.
    fn run(&self, extra: &[&str]) -> (i32, Vec<Value>) {
        let output = self.command(extra).output().expect("respawn runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("panicked"), "{stderr}");
        (output.status.code().unwrap_or(-1), lines(&output.stdout))
    }

    /// Every event kept in the store, over all runs of the workflow.
    fn stored_events(&self) -> Vec<Value> {
        let runs = self.store().join("ecommerce-sessions/runs");
        let mut events = Vec::new();
        for run in std::fs::read_dir(&runs).unwrap() {
            let dir = run.unwrap().path().join("events");
            let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for file in files {
                let bytes = std::fs::read(&file).unwrap();
                events.push(serde_json::from_slice(&bytes).unwrap());
            }
        }
        events
    }
}

fn lines(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON event ({e}): {line}"))
        })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// `{"field": "type", ...}` of one event.
fn shape(event: &Value) -> BTreeMap<String, String> {
    event
        .as_object()
        .expect("an event is an object")
        .iter()
        .map(|(k, v)| (k.clone(), kind(v).to_string()))
        .collect()
}

/// An event without the fields that vary between runs, as a line of text.
fn stable(event: &Value) -> String {
    let kept: Map<String, Value> = event
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !VARYING.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(kept).to_string()
}

/// Runs every scenario; returns the events seen, the clean run's events, and the store's copy.
fn observe() -> (Vec<Value>, Vec<Value>) {
    let mut seen = Vec::new();

    // A clean run, then the same batch with a changed stage (stale, reopened).
    let clean = Scenario::new(&[]);
    let (code, clean_events) = clean.run(&[]);
    assert_eq!(code, 0, "{clean_events:?}");
    let stored = clean.stored_events();
    assert_eq!(
        stored, clean_events,
        "the store keeps exactly the printed events"
    );
    seen.extend(clean_events.iter().cloned());
    std::fs::write(
        &clean.file,
        std::fs::read_to_string(&clean.file)
            .unwrap()
            .replace("  sessions:\n", "  sessions:\n    version: \"2\"\n"),
    )
    .unwrap();
    let (code, events) = clean.run(&[]);
    assert_eq!(code, 0, "{events:?}");
    seen.extend(events);

    // Spot interruptions from the chaos simulator, with a pause in every stage.
    let chaos = Scenario::new(&[("    run: python3", "    run: sleep 1; python3")]);
    let (code, events) = chaos.run(&["--chaos", "mtti=1500ms,seed=3,provision=200ms"]);
    assert_eq!(code, 0, "{events:?}");
    assert!(
        events.iter().any(|e| e["event"] == "cluster-lost"),
        "chaos interrupted the run at least once: {events:?}"
    );
    seen.extend(events);

    // A stage that fails, is retried, and fails again.
    let failing = Scenario::new(&[("retries: 2", "retries: 1")]);
    std::fs::write(
        &failing.file,
        std::fs::read_to_string(&failing.file).unwrap().replace(
            "--in {{ inputs.sessions }} --out {{ output }}",
            "--in {{ inputs.sessions }} --out {{ output }} && exit 3",
        ),
    )
    .unwrap();
    let (code, events) = failing.run(&[]);
    assert_eq!(code, 4, "{events:?}");
    seen.extend(events);
    // A changed first stage makes its committed work-table stale.
    std::fs::write(
        &failing.file,
        std::fs::read_to_string(&failing.file)
            .unwrap()
            .replace("  ingest:\n", "  ingest:\n    version: \"2\"\n"),
    )
    .unwrap();
    let (code, events) = failing.run(&[]);
    assert_eq!(code, 4, "{events:?}");
    // The stale event names its stage in a field of its own, besides its message.
    let stale: Vec<&Value> = events.iter().filter(|e| e["event"] == "stale").collect();
    assert!(stale.iter().any(|e| e["stage"] == "ingest"), "{events:?}");
    for event in stale {
        let stage = event["stage"].as_str().expect("a stage");
        let message = event["message"].as_str().unwrap();
        assert!(message.starts_with(&format!("stage `{stage}` ")), "{event}");
    }
    seen.extend(events);

    // The orchestrator dies right after a commit; the next one restores the checkpoint.
    let crashed = Scenario::new(&[]);
    let output = crashed
        .command(&[])
        .env("RESPAWN_CRASH_AT", "after-commit:sessions")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), None, "killed at the crash point");
    seen.extend(lines(&output.stdout));
    let (code, events) = crashed.run(&[]);
    assert_eq!(code, 0, "{events:?}");
    seen.extend(events);

    // Ctrl-C while a stage runs.
    let stopped = Scenario::new(&[("    run: python3", "    run: sleep 30; python3")]);
    let mut child = stopped.command(&[]).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut events = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        if event["event"] == "launch" {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        }
        events.push(event);
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{events:?}");
    seen.extend(events);

    (seen, clean_events)
}

#[test]
fn run_events_keep_their_fields_and_the_clean_run_its_sequence() {
    let (seen, clean) = observe();
    let mut shapes: BTreeMap<String, BTreeSet<BTreeMap<String, String>>> = BTreeMap::new();
    for event in &seen {
        let name = event["event"].as_str().expect("every event names itself");
        shapes
            .entry(name.to_string())
            .or_default()
            .insert(shape(event));
    }
    let mut sequence: Vec<String> = clean.iter().map(stable).collect();
    sequence.sort();
    let golden_path = repo().join(GOLDEN);
    if std::env::var_os("RESPAWN_CONTRACT_BLESS").is_some() {
        let golden = json!({"shapes": shapes, "clean_run": sequence});
        std::fs::create_dir_all(golden_path.parent().unwrap()).unwrap();
        let mut text = serde_json::to_string_pretty(&golden).unwrap();
        text.push('\n');
        std::fs::write(&golden_path, text).unwrap();
        return;
    }
    let golden: Value = serde_json::from_str(&read(&golden_path)).unwrap();
    let known: BTreeMap<String, BTreeSet<BTreeMap<String, String>>> =
        serde_json::from_value(golden["shapes"].clone()).unwrap();
    for (name, forms) in &shapes {
        let Some(allowed) = known.get(name) else {
            panic!("event `{name}` is new to the contract: {forms:?}");
        };
        for form in forms {
            assert!(
                allowed.contains(form),
                "event `{name}` has fields {form:?}; the contract has {allowed:?}"
            );
        }
    }
    for name in [
        "run-started",
        "provision",
        "cluster-ready",
        "launch",
        "exit",
        "committed",
        "published",
        "cluster-released",
        "finished",
        "cleaned",
        "retry",
        "stale",
        "stopping",
        "cluster-lost",
        "restore",
        "restored",
    ] {
        assert!(shapes.contains_key(name), "the scenarios produced `{name}`");
    }
    let want: Vec<String> = serde_json::from_value(golden["clean_run"].clone()).unwrap();
    assert_eq!(sequence, want, "the events of a clean run");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
