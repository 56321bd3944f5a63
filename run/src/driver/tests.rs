//! The driver on its own: a local-directory store and local clusters in a temporary
//! directory, the clock injected, no signals. Each test runs a small workflow to its end
//! and looks at the typed events and the run record.

use super::{RunEnd, RunInput, drive};
use crate::clock::{Clock, TestClock};
use crate::cluster::{ClusterProvider, LocalClusters};
use crate::ledger::{Holder, Layout, Lease, RunRecord, RunStatus, Versioned, read_run};
use crate::store::{AnyStore, LocalStore, Store, TransferOptions};
use respawn_core::contract::event::{RunEvent, StampedEvent};
use respawn_core::plan::{PlanOptions, plan};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// 2030-01-01T00:00:00Z.
const START: u64 = 1_893_456_000;

/// A run id no other test of this process uses: a new orchestrator kills the processes
/// it finds under its run id (left by a dead one), so tests must not share them.
fn unique_run_id() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("driver-test-{}-{n}", std::process::id())
}

struct Ran {
    run_id: String,
    end: RunEnd,
    events: Vec<StampedEvent>,
    store: AnyStore,
    layout: Layout,
    dir: tempfile::TempDir,
}

/// Runs `yaml` as a new run in a new temporary directory.
async fn run(yaml: &str) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let store = AnyStore::Local(LocalStore::open(&dir.path().join("store")).unwrap());
    let workflow = respawn_core::workflow::parse("test.yaml", yaml).expect("a valid workflow");
    let layout = Layout::new(&workflow.name);
    let run_id = unique_run_id();
    let record = RunRecord::new(&workflow.name, "b1", &run_id, "spot", start_clock(0).now());
    Versioned::create(&store, &layout, record).await.unwrap();
    let (end, events) = drive_again(&dir, &store, &run_id, yaml, 0).await;
    Ran {
        run_id,
        end,
        events,
        store,
        layout,
        dir,
    }
}

/// A test clock `offset` seconds after [`START`].
fn start_clock(offset: u64) -> Arc<dyn Clock> {
    Arc::new(TestClock::starting_at(START + offset))
}

/// Drives run `run_id` (its record in `store`) with the workflow `yaml`, on a fresh
/// scratch directory, with the clock `offset` seconds after [`START`].
async fn drive_again(
    dir: &tempfile::TempDir,
    store: &AnyStore,
    run_id: &str,
    yaml: &str,
    offset: u64,
) -> (RunEnd, Vec<StampedEvent>) {
    drive_due(dir, store, run_id, yaml, offset, None).await
}

/// [`drive_again`], with the date's output due `due` after the clock's start.
async fn drive_due(
    dir: &tempfile::TempDir,
    store: &AnyStore,
    run_id: &str,
    yaml: &str,
    offset: u64,
    due: Option<Duration>,
) -> (RunEnd, Vec<StampedEvent>) {
    let workflow = respawn_core::workflow::parse("test.yaml", yaml).expect("a valid workflow");
    let layout = Layout::new(&workflow.name);
    let clock = start_clock(offset);
    let publish_due = due.map(|due| clock.now() + due);
    let record = read_run(store, &layout, run_id).await.unwrap();
    let lease = Lease::acquire(
        store,
        &layout,
        "b1",
        Holder::this_process(Some(run_id.to_string())),
        Duration::from_secs(60),
        clock.now(),
    )
    .await
    .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let scratch = dir.path().join(format!("scratch-{offset}"));
    let end = drive(RunInput {
        plan: plan(&workflow, &PlanOptions::default()),
        store: store.clone(),
        layout,
        record,
        lease,
        clusters: ClusterProvider::Local(LocalClusters::new(scratch, run_id)),
        workflow_dir: dir.path().to_path_buf(),
        cwd: dir.path().to_path_buf(),
        chaos: None,
        interval: None,
        transfer: TransferOptions::default(),
        stop_grace: Duration::from_secs(1),
        clock,
        listen_for_signals: false,
        model: None,
        publish_due,
        sink: Box::new(move |event: &StampedEvent| seen.lock().unwrap().push(event.clone())),
        workflow,
    })
    .await;
    let events = events.lock().unwrap().clone();
    (end, events)
}

const TWO_STAGES: &str = "\
name: pair
cluster: { provider: local, market: on-demand }
retries: 0
stages:
  make:
    run: mkdir -p {{ output }} && echo made > {{ output }}/part
    estimate: 10m
    output_size: 1MB
    checkpoint: always
  use:
    needs: [make]
    run: mkdir -p {{ output }} && cat {{ inputs.make }}/part > {{ output }}/copy
    estimate: 1m
";

#[tokio::test]
async fn a_run_reports_typed_events_stamped_by_the_injected_clock() {
    let ran = run(TWO_STAGES).await;
    assert!(matches!(ran.end, RunEnd::Succeeded), "{:?}", ran.end);
    let kinds: Vec<&str> = ran
        .events
        .iter()
        .map(|e| match &e.event {
            RunEvent::RunStarted { .. } => "run-started",
            RunEvent::Launch { .. } => "launch",
            RunEvent::Exit { code: 0, .. } => "exit",
            RunEvent::Committed { .. } => "committed",
            RunEvent::Published { .. } => "published",
            RunEvent::Finished { .. } => "finished",
            RunEvent::Cleaned { .. } => "cleaned",
            _ => "other",
        })
        .filter(|k| *k != "other")
        .collect();
    assert_eq!(kinds.first(), Some(&"run-started"));
    assert_eq!(&kinds[kinds.len() - 2..], ["finished", "cleaned"]);
    for kind in ["launch", "exit", "committed", "published"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    for event in &ran.events {
        assert!(event.at.starts_with("2030-01-01T00:0"), "{event:?}");
    }
    let record = read_run(&ran.store, &ran.layout, &ran.run_id)
        .await
        .unwrap();
    assert_eq!(record.value.status, RunStatus::Succeeded);
    assert!(record.value.started_at.starts_with("2030-01-01"));
    let published = ran
        .store
        .get("pair/outputs/use/b1/copy")
        .await
        .expect("the final output is published");
    assert_eq!(published.0, b"made\n");
}

#[tokio::test]
async fn the_stored_events_are_the_events_the_sink_saw() {
    let ran = run(TWO_STAGES).await;
    let stored = crate::ledger::read_events(&ran.store, &ran.layout, &ran.run_id)
        .await
        .unwrap();
    let printed: Vec<serde_json::Value> = ran.events.iter().map(StampedEvent::to_json).collect();
    assert_eq!(stored, printed);
    for value in stored {
        let back: StampedEvent = serde_json::from_value(value).unwrap();
        assert!(ran.events.contains(&back));
    }
}

#[tokio::test]
async fn a_failing_stage_ends_the_run_with_its_exit_code_and_log_tail() {
    let yaml = TWO_STAGES.replace(
        "cat {{ inputs.make }}/part > {{ output }}/copy",
        "echo boom && exit 3",
    );
    let ran = run(&yaml).await;
    let RunEnd::Failed { message, log_tail } = &ran.end else {
        panic!("expected a failure, got {:?}", ran.end);
    };
    assert!(message.contains("stage `use`"), "{message}");
    assert!(message.contains("exit code 3"), "{message}");
    assert!(log_tail.contains("boom"), "{log_tail}");
    let failed = ran.events.iter().any(|e| {
        matches!(&e.event, RunEvent::Exit { stage, code: 3, log: Some(_), .. } if stage == "use")
    });
    assert!(failed, "{:?}", ran.events);
    let record = read_run(&ran.store, &ran.layout, &ran.run_id)
        .await
        .unwrap();
    assert_eq!(record.value.status, RunStatus::Failed);
    assert_eq!(record.value.stages["make"].committed_attempt, Some(1));
}

#[tokio::test]
async fn a_resumed_run_reuses_what_was_committed() {
    let broken = TWO_STAGES.replace("cat {{ inputs.make }}/part > {{ output }}/copy", "exit 5");
    let first = run(&broken).await;
    assert!(matches!(first.end, RunEnd::Failed { .. }));
    // The same store, a fixed stage: only `use` runs again.
    let (end, events) =
        drive_again(&first.dir, &first.store, &first.run_id, TWO_STAGES, 3600).await;
    assert!(matches!(end, RunEnd::Succeeded), "{end:?}");
    let launched: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.event {
            RunEvent::Launch { stage, .. } => Some(stage.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(launched, ["use"]);
    let started = events.iter().find_map(|e| match &e.event {
        RunEvent::RunStarted { reused, .. } => Some(reused.clone()),
        _ => None,
    });
    assert_eq!(started, Some(vec!["make".to_string()]));
}

#[tokio::test]
async fn a_publish_by_time_that_passes_while_a_final_output_is_unpublished_is_late_once() {
    let yaml = "name: due\nstages:\n  slow: {run: 'sleep 1.5; echo x > $RESPAWN_OUTPUT/x'}\n";
    let dir = tempfile::tempdir().unwrap();
    let store = AnyStore::Local(LocalStore::open(&dir.path().join("store")).unwrap());
    let layout = Layout::new("due");
    for (due, late) in [
        (Duration::from_millis(300), true),
        (Duration::from_secs(600), false),
    ] {
        let run_id = unique_run_id();
        let record = RunRecord::new("due", "b1", &run_id, "spot", start_clock(0).now());
        Versioned::create(&store, &layout, record).await.unwrap();
        let (end, events) = drive_due(&dir, &store, &run_id, yaml, 0, Some(due)).await;
        assert!(matches!(end, RunEnd::Succeeded), "{end:?}");
        let lates: Vec<&StampedEvent> = (events.iter())
            .filter(|e| matches!(e.event, RunEvent::Late { .. }))
            .collect();
        assert_eq!(
            lates.len(),
            usize::from(late),
            "due after {due:?}: {lates:?}"
        );
        if let Some(RunEvent::Late { due }) = lates.first().map(|e| &e.event) {
            assert_eq!(due, "2030-01-01T00:00:00Z", "the injected clock's start");
        }
    }
}
