//! One run read from the store for the views that show it (`report`, `cost`, `ui`,
//! `history`'s cost columns, `run`'s last line): its record, its events, the workflow it ran
//! and the tails of its logs, handed to the core's report computation.

use crate::ledger::{Layout, RunRecord, read_events, read_run};
use crate::store::{AnyStore, Store, StoreError};
use respawn_core::contract::event::StampedEvent;
use respawn_core::report::{self, Cost, ReportInput, RunSummary};
use respawn_core::workflow::Workflow;
use std::collections::BTreeMap;

/// Logs longer than this are not read for their last lines.
const TAIL_READ_LIMIT: u64 = 4 << 20;
/// Lines of a log shown when hovering its attempt.
const TAIL_LINES: usize = 8;
/// Log tails read at once.
const TAILS_IN_FLIGHT: usize = 32;

/// A run as read from the store.
pub struct LoadedRun {
    pub record: RunRecord,
    pub events: Vec<StampedEvent>,
    pub problems: Vec<String>,
    pub workflow: Option<Workflow>,
    pub workflow_missing: Option<String>,
    pub tails: BTreeMap<(String, u32), String>,
}

impl LoadedRun {
    pub fn summary(&self) -> RunSummary {
        let r = &self.record;
        RunSummary {
            workflow: r.workflow.clone(),
            run_id: r.run_id.clone(),
            batch: r.batch.clone(),
            status: r.status.as_str().into(),
            started_at: r.started_at.clone(),
            finished_at: r.finished_at.clone(),
            message: r.message.clone(),
            interruptions: r.interruptions.len(),
            attempts: r.total_attempts(),
        }
    }

    pub fn input(&self) -> ReportInput<'_> {
        ReportInput {
            run: self.summary(),
            events: &self.events,
            problems: self.problems.clone(),
            workflow: self.workflow.as_ref(),
            workflow_missing: self.workflow_missing.clone(),
            tails: &self.tails,
        }
    }

    /// The run's cost, when the workflow (and so its prices) is known.
    pub fn cost(&self) -> Option<Cost> {
        let workflow = self.workflow.as_ref()?;
        let live = self.record.status.as_str() == "running";
        Some(report::cost(
            workflow,
            &report::timeline(&self.events, live),
        ))
    }
}

/// The workflow kept with a run, or why there is none (in words).
pub async fn kept_workflow(
    store: &AnyStore,
    layout: &Layout,
    run_id: &str,
) -> Result<Result<Workflow, String>, StoreError> {
    let key = layout.run_workflow(run_id);
    match store.get(&key).await {
        Ok((bytes, _)) => {
            let text = String::from_utf8_lossy(&bytes);
            Ok(
                respawn_core::workflow::parse(&store.locate(&key), &text).map_err(|diagnostics| {
                    format!("the workflow kept with the run does not read:\n{diagnostics}")
                }),
            )
        }
        Err(StoreError::NotFound { .. }) => Ok(Err(format!(
            "no workflow is kept with this run ({} is missing; runs made before respawn kept it have none): give the workflow file",
            store.locate(&key)
        ))),
        Err(other) => Err(other),
    }
}

/// Reads a run's events, its stored workflow (else `fallback`, the file named on the
/// command line) and, with `tails`, the last lines of its attempts' logs.
pub async fn load(
    store: &AnyStore,
    layout: &Layout,
    record: RunRecord,
    fallback: Option<&Workflow>,
    tails: bool,
) -> Result<LoadedRun, StoreError> {
    let kept = kept_workflow(store, layout, &record.run_id).await?;
    load_with(store, layout, record, kept, fallback, tails).await
}

/// [`load`] with the kept workflow already read.
pub async fn load_with(
    store: &AnyStore,
    layout: &Layout,
    record: RunRecord,
    kept: Result<Workflow, String>,
    fallback: Option<&Workflow>,
    tails: bool,
) -> Result<LoadedRun, StoreError> {
    let values = read_events(store, layout, &record.run_id).await?;
    let (events, problems) = report::parse_events(&values);
    let (workflow, workflow_missing) = match kept {
        Ok(workflow) => (Some(workflow), None),
        Err(reason) => (fallback.cloned(), Some(reason)),
    };
    let workflow_missing = workflow.is_none().then_some(workflow_missing).flatten();
    let tails = if tails {
        read_tails(store, layout, &record.run_id, &events).await
    } else {
        BTreeMap::new()
    };
    Ok(LoadedRun {
        record,
        events,
        problems,
        workflow,
        workflow_missing,
        tails,
    })
}

async fn read_tails(
    store: &AnyStore,
    layout: &Layout,
    run_id: &str,
    events: &[StampedEvent],
) -> BTreeMap<(String, u32), String> {
    let attempts: Vec<(String, u32)> = events
        .iter()
        .filter_map(|e| match &e.event {
            respawn_core::contract::event::RunEvent::Launch { stage, attempt, .. } => {
                Some((stage.clone(), *attempt))
            }
            _ => None,
        })
        .collect();
    let mut tails = BTreeMap::new();
    let mut reads = tokio::task::JoinSet::new();
    let mut pending = attempts.into_iter();
    loop {
        while reads.len() < TAILS_IN_FLIGHT
            && let Some((stage, attempt)) = pending.next()
        {
            let (store, key) = (store.clone(), layout.log(run_id, &stage, attempt));
            reads.spawn(async move {
                let tail = match store.head(&key).await {
                    Ok(meta) if meta.size > TAIL_READ_LIMIT => {
                        Some(format!("(the log has {} bytes: not read here)", meta.size))
                    }
                    Ok(_) => store.get(&key).await.ok().map(|(bytes, _)| tail(&bytes)),
                    Err(_) => None,
                };
                (stage, attempt, tail)
            });
        }
        let Some(joined) = reads.join_next().await else {
            break;
        };
        if let Ok((stage, attempt, Some(tail))) = joined {
            tails.insert((stage, attempt), tail);
        }
    }
    tails
}

fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    lines[start..]
        .iter()
        .map(|line| line.chars().take(200).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The cost of run `run_id` as `respawn cost` tells it, read afresh from the store: what
/// `run`, `tick`, `schedule` and `backfill` end each run they drove with. `fallback` is the
/// workflow file, for a run with none kept. `Err` says in words why it cannot be told.
pub async fn run_cost(
    store: &AnyStore,
    layout: &Layout,
    run_id: &str,
    fallback: &Workflow,
) -> Result<(RunRecord, Cost), String> {
    let record = record(store, layout, run_id)
        .await
        .map_err(|error| format!("the run record cannot be read: {error}"))?;
    let run = load(store, layout, record, Some(fallback), false)
        .await
        .map_err(|error| format!("the run's events cannot be read: {error}"))?;
    match run.cost() {
        Some(cost) => Ok((run.record, cost)),
        None => Err(run.workflow_missing.unwrap_or_default()),
    }
}

/// The run with id `run_id` of workflow `layout`, read afresh.
pub async fn record(
    store: &AnyStore,
    layout: &Layout,
    run_id: &str,
) -> Result<RunRecord, StoreError> {
    Ok(read_run(store, layout, run_id).await?.value)
}
