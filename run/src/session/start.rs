//! Driving an opened run: the cluster provider the workflow asks for (local processes, or
//! EMR through its client), the plan, and the driver. The command line and the scheduler
//! hand over the same [`RunSettings`].

use super::OpenedRun;
use crate::alerts::{Alerting, RunIdentity};
use crate::clock::Clock;
use crate::cluster::emr::NoticeQueue;
use crate::cluster::{ClusterProvider, EmrClusters, LocalClusters, emr};
use crate::driver::{Chaos, EventSink, RunEnd, RunInput, drive};
use crate::ledger::Layout;
use crate::store::{AnyStore, Store, TransferOptions};
use respawn_core::plan::PlanOptions;
use respawn_core::plan::calendar::{self, IntervalValues};
use respawn_core::workflow::{Market, MarketChoice, Provider, Workflow, defaults};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to run: what the caller (the command line, the scheduler) decides.
pub struct RunSettings {
    /// The folder of the workflow file, absolute (`{{ workflow_dir }}`).
    pub workflow_dir: PathBuf,
    /// Where stage commands run.
    pub cwd: PathBuf,
    /// Local clusters live under `<scratch>/<workflow>/<run_id>/`.
    pub scratch: PathBuf,
    pub chaos: Option<Chaos>,
    /// EMR's endpoint (the emulator's), else AWS's for the workflow's region.
    pub emr_endpoint_url: Option<String>,
    /// How often EMR cluster and step states are polled.
    pub emr_poll: Duration,
    /// Between SIGTERM and SIGKILL when the run stops.
    pub stop_grace: Duration,
    pub clock: Arc<dyn Clock>,
    /// Whether Ctrl-C, SIGTERM and SIGUSR1 reach the run.
    pub listen_for_signals: bool,
    /// The respawn executable, which supervises each stage on a local cluster.
    pub supervisor: Option<PathBuf>,
    /// Whether the plan learns from earlier runs ([`respawn_core::learn`]).
    pub history: bool,
}

/// Why a workflow cannot run on a store, if it cannot: EMR steps read and write their
/// checkpoints in S3, so an EMR workflow needs an S3 store, whose URL fits in the tag each
/// cluster gets.
pub fn unfit_store(workflow: &Workflow, store: &AnyStore) -> Option<String> {
    if workflow.cluster.provider != Provider::Emr {
        return None;
    }
    if !matches!(store, AnyStore::S3(_)) {
        return Some(format!(
            "{}: `cluster.provider: emr` needs an S3 store, not {} (EMR steps read and write \
             checkpoints in S3: pass --store s3://bucket/prefix)",
            workflow.file,
            store.describe()
        ));
    }
    let problem = respawn_core::workflow::store_url::emr_store_problem(&store.describe())?;
    Some(format!(
        "{}: {} ({problem})",
        workflow.file,
        store.describe()
    ))
}

/// The interval a batch of a scheduled workflow stands for (its template values); `None`
/// for a workflow without a schedule. A batch that is no logical date of the schedule is
/// an error that says what the schedule's batch ids look like.
pub fn interval_of(workflow: &Workflow, batch: &str) -> Result<Option<IntervalValues>, String> {
    let Some(schedule) = &workflow.schedule else {
        return Ok(None);
    };
    match calendar::interval_of_batch(schedule, batch) {
        Some(interval) => Ok(Some(calendar::interval_values(schedule, &interval))),
        None => Err(format!(
            "batch `{batch}` is not a logical date of the schedule of workflow `{}` \
             (its batch ids are written `{}`, from {})",
            workflow.name, schedule.batch, schedule.start
        )),
    }
}

/// Keeps the workflow file beside the run's record, as this process runs it, so that a
/// report or the cost of the run can be made from the store alone. Best effort: a run
/// does not fail for it (its report then says the workflow is missing).
async fn keep_workflow(store: &AnyStore, workflow: &Workflow, run_id: &str) {
    let key = Layout::new(&workflow.name).run_workflow(run_id);
    let written = match tokio::fs::read(&workflow.file).await {
        Ok(text) => store
            .put(&key, text, crate::store::PutMode::Overwrite)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(format!("cannot read {}: {e}", workflow.file)),
    };
    if let Err(reason) = written {
        tracing::warn!("the workflow file is not kept with run {run_id}: {reason}");
    }
}

/// Runs (or resumes) an opened run to its end, reporting events to `sink`.
pub async fn drive_opened(
    workflow: Workflow,
    store: AnyStore,
    opened: OpenedRun,
    settings: RunSettings,
    sink: EventSink,
) -> RunEnd {
    let OpenedRun {
        record,
        lease,
        interval,
        recovering,
        ..
    } = opened;
    let run_id = record.value.run_id.clone();
    let run = RunIdentity {
        workflow: workflow.name.clone(),
        batch: record.value.batch.clone(),
        run_id: run_id.clone(),
    };
    let dir = settings.workflow_dir.clone();
    let alerting = Alerting::start(&workflow, store.clone(), run, recovering, dir);
    let sink = match &alerting {
        Some(alerting) => alerting.watch(sink),
        None => sink,
    };
    keep_workflow(&store, &workflow, &run_id).await;
    // An orchestrator killed while it wrote may have left temporary files in the run.
    if let Err(error) = store
        .collect_stale(&Layout::new(&workflow.name).run(&run_id))
        .await
    {
        tracing::warn!("temporary files left in run {run_id} were not collected: {error}");
    }
    let clusters =
        cluster_provider(&workflow, &store, &record.value.batch, &run_id, &settings).await;
    let (mut planned, model) = planning_workflow(&store, workflow, settings.history).await;
    let publish_due = publish_due(&planned, &record.value.batch);
    if let Some(due) = publish_due {
        deadline_by(&mut planned, due, settings.clock.now());
    }
    let end = drive(RunInput {
        plan: respawn_core::planner::chosen_plan(&planned, &PlanOptions::default()),
        model: Some(model),
        layout: Layout::new(&planned.name),
        store,
        record,
        lease,
        clusters,
        workflow_dir: settings.workflow_dir,
        cwd: settings.cwd,
        chaos: settings.chaos,
        interval,
        transfer: TransferOptions::default(),
        stop_grace: settings.stop_grace,
        clock: settings.clock,
        listen_for_signals: settings.listen_for_signals,
        sink,
        publish_due,
        // The machine orders launches and weighs the deadline by the learned estimates too.
        workflow: planned,
    })
    .await;
    if let Some(alerting) = alerting {
        alerting.finish();
    }
    end
}

/// Where the run's clusters come from: EMR (with its notice queue) or local processes,
/// both with the run's scratch directory.
async fn cluster_provider(
    workflow: &Workflow,
    store: &AnyStore,
    batch: &str,
    run_id: &str,
    settings: &RunSettings,
) -> ClusterProvider {
    let mut scratch =
        LocalClusters::new(settings.scratch.join(&workflow.name).join(run_id), run_id);
    if let Some(program) = &settings.supervisor {
        scratch = scratch.supervised_by(program.clone());
    }
    let (Provider::Emr, Some(spec)) = (&workflow.cluster.provider, &workflow.cluster.emr) else {
        return ClusterProvider::Local(scratch);
    };
    let client = emr::client(spec.region.as_deref(), settings.emr_endpoint_url.as_deref()).await;
    let emr = EmrClusters::new(
        client,
        spec.clone(),
        &workflow.name,
        run_id,
        batch,
        &store.describe(),
        settings.emr_poll,
    );
    let spot = workflow.cluster.market != MarketChoice::Fixed(Market::OnDemand);
    let queue = match &spec.notice_queue {
        Some(url) => {
            let lead = workflow.cluster.notice.unwrap_or(defaults::EC2_NOTICE);
            Some(NoticeQueue::new(spec.region.as_deref(), url, lead).await)
        }
        None => None,
    };
    ClusterProvider::Emr {
        emr: Arc::new(emr.with_notices(queue, spot)),
        scratch,
    }
}

/// When the output of `batch` is due, for a scheduled workflow with `publish_by`.
fn publish_due(workflow: &Workflow, batch: &str) -> Option<std::time::SystemTime> {
    let schedule = workflow.schedule.as_ref()?;
    let interval = calendar::interval_of_batch(schedule, batch)?;
    let due = calendar::publish_due(schedule, &interval)?;
    Some(std::time::SystemTime::from(due))
}

/// A date's publish-by time is the run's deadline (for the fallback rule and `market:
/// auto`), counted from now; an earlier `fallback.deadline` stays.
fn deadline_by(workflow: &mut Workflow, due: std::time::SystemTime, now: std::time::SystemTime) {
    let left = due.duration_since(now).unwrap_or(Duration::ZERO);
    let deadline = &mut workflow.cluster.fallback.deadline;
    *deadline = Some(deadline.map_or(left, |d| d.min(left)));
}

/// The workflow the run plans from: the file's, with the figures earlier runs measured
/// unless `history` is off; and where its interruption model came from. History that
/// cannot be read is named in a warning and the file's figures are used.
async fn planning_workflow(
    store: &AnyStore,
    workflow: Workflow,
    history: bool,
) -> (Workflow, String) {
    let mut planned = workflow;
    if !history {
        return (planned, "workflow file (--no-history)".into());
    }
    match crate::read::latest_runs(store, &planned).await {
        Ok(history) => {
            history.apply(&mut planned);
            (planned, history.interruptions.describe())
        }
        Err(error) => {
            tracing::warn!(
                "the run history was not read, so the plan uses the workflow file's figures: {error}"
            );
            (planned, "workflow file (the history did not read)".into())
        }
    }
}
