//! Which run a request is about. Run identity is (workflow, batch): the same batch again
//! resumes an unfinished run (but starts anew after a check refused an output), reopens a succeeded one whose stages changed or whose final
//! output is gone or incomplete, is a no-op otherwise, and with `force` starts a new run that replaces
//! its outputs. Without a batch, the latest unfinished run resumes, or a new batch starts.

use crate::clock::Clock;
use crate::ledger::write_latest;
use crate::ledger::{Layout, RunRecord, RunStatus, Versioned, new_run_id};
use crate::read::{RunIndex, completeness, list_runs};
use crate::store::{AnyStore, Store, StoreError};
use respawn_core::workflow::{Cleanup, Workflow};

/// What the caller asks for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunRequest {
    /// The batch (a logical date or any id); `None` resumes the latest unfinished run or
    /// starts a new batch.
    pub batch: Option<String>,
    /// Reprocess a succeeded batch as a new run.
    pub force: bool,
    /// Run a logical date whose interval has not closed yet (refused otherwise).
    pub allow_future: bool,
}

impl RunRequest {
    /// A date a tick found due: its batch, neither forced nor in the future.
    pub fn of_date(batch: &str) -> RunRequest {
        RunRequest {
            batch: Some(batch.to_string()),
            force: false,
            allow_future: false,
        }
    }
}

pub enum Choice {
    Nothing(String),
    Run {
        record: Box<Versioned<RunRecord>>,
        announce: String,
        /// The failed run of the batch this one follows (resumed, or started anew).
        recovering: Option<String>,
    },
}

/// The batch a request without one is about: the latest unfinished run's, or a new id
/// (`true`: nothing of it exists yet). Read before the batch's lease is taken; [`choose`]
/// looks again under the lease.
pub async fn pick_batch(
    store: &AnyStore,
    layout: &Layout,
    clock: &dyn Clock,
) -> Result<(String, bool), StoreError> {
    let records = list_runs(store, layout).await?.for_decision()?;
    Ok(
        match records
            .iter()
            .rev()
            .find(|r| r.status != RunStatus::Succeeded)
        {
            Some(unfinished) => (unfinished.batch.clone(), false),
            None => (new_run_id(clock.now()), true),
        },
    )
}

/// Which run of `batch` this is: resume, reopen, start anew (`fresh`: a new batch id), or
/// nothing to do. The caller holds the batch's lease.
pub async fn choose(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    batch: &str,
    fresh: bool,
    force: bool,
    clock: &dyn Clock,
) -> Result<Choice, StoreError> {
    let index = RunIndex::open_to_write(store, layout, clock.now()).await?;
    let Some(record) = index.latest(store, layout, batch).await? else {
        let why = if fresh {
            "starting a new batch"
        } else {
            "starting batch"
        };
        return start(store, layout, workflow, clock, batch, why).await;
    };
    let run_id = record.value.run_id.clone();
    if force {
        let why = format!(
            "reprocessing batch {batch} (--force; it replaces the outputs of run {run_id})"
        );
        return start(store, layout, workflow, clock, batch, &why).await;
    }
    if record.value.status == RunStatus::Succeeded {
        let complete = completeness(store, layout, workflow, &record.value).await?;
        let Some(reason) = complete.reason() else {
            let mut message = format!(
                "batch {} of workflow `{}` already succeeded in run {run_id}; nothing to do (use --force to reprocess it)",
                record.value.batch, workflow.name
            );
            if workflow.cleanup == Cleanup::OnSuccess {
                let left = store.delete_prefix(&layout.work(&run_id)).await?;
                if left > 0 {
                    message.push_str(&format!(
                        "\nfinished its cleanup: deleted {left} leftover work-table object(s)"
                    ));
                }
            }
            return Ok(Choice::Nothing(message));
        };
        let announce = format!(
            "reopening run {run_id} of workflow `{}`, batch {}: {reason}",
            workflow.name, record.value.batch
        );
        return Ok(Choice::Run {
            record: Box::new(record),
            announce,
            recovering: None,
        });
    }
    if let Some((stage, check)) = record.value.refused_by() {
        let why = format!(
            "starting batch {batch} anew (check `{check}` refused the output of `{stage}` in run {run_id}: what that run committed is not reused)"
        );
        let mut started = start(store, layout, workflow, clock, batch, &why).await?;
        if let Choice::Run { recovering, .. } = &mut started {
            *recovering = Some(run_id.clone());
        }
        if workflow.cleanup == Cleanup::OnSuccess {
            store.delete_prefix(&layout.work(&run_id)).await?;
        }
        return Ok(started);
    }
    let announce = format!(
        "resuming run {run_id} of workflow `{}`, batch {} ({} before), store {}",
        workflow.name,
        record.value.batch,
        record.value.status.as_str(),
        store.describe()
    );
    let failed = record.value.status == RunStatus::Failed;
    Ok(Choice::Run {
        record: Box::new(record),
        announce,
        recovering: failed.then_some(run_id),
    })
}

/// Creates the record of a new run of `batch` (create-only: a run id is never reused).
async fn start(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    clock: &dyn Clock,
    batch: &str,
    why: &str,
) -> Result<Choice, StoreError> {
    let now = clock.now();
    let run_id = new_run_id(now);
    let record = RunRecord::new(
        &workflow.name,
        batch,
        &run_id,
        workflow.cluster.market.as_str(),
        now,
    );
    // The `latest` object first: a start that stops between the two leaves a pointer to no
    // record (read as no run), never a run that no pointer leads to.
    write_latest(store, layout, batch, &run_id).await?;
    let record = Versioned::create(store, layout, record).await?;
    Ok(Choice::Run {
        record: Box::new(record),
        recovering: None,
        announce: format!(
            "{why}: run {run_id} of workflow `{}`, batch {batch}, store {}",
            workflow.name,
            store.describe()
        ),
    })
}
