//! The session layer: everything between "run this workflow for this batch" and the
//! driver. It takes the workflow's lease, decides which run this is (a new batch, a resumed
//! or reopened run, a forced re-run, or nothing to do), binds the lease to that run, tells
//! whether another orchestrator is alive, and interrupts a running one. `respawn run` and
//! the scheduler both call it; neither makes these decisions itself.

mod backfill;
mod choose;
pub mod clean;
mod dates;
pub mod decide;
mod execute;
mod interrupt;
mod lease;
mod outcome;
mod slots;
mod start;
mod tick;

pub use backfill::{
    BackfillDate, BackfillPlan, BackfillRequest, Reprocess, Step, backfill_id, carry_out_backfill,
    plan_backfill,
};
pub use choose::{Choice, RunRequest, choose, pick_batch};
pub use dates::{DateInfo, DateReader, DateState, date_bound, date_states};
pub use interrupt::{InterruptError, interrupt};
pub use lease::{LEASE_TTL, take_lease};
pub use outcome::Outcome;
pub use start::{RunSettings, drive_opened, interval_of, unfit_store};
pub use tick::{Action, DatePlan, RECHECK, Runner, TickPlan, carry_out, plan_tick};

use crate::clock::Clock;
pub use crate::ledger::LeaseError;
use crate::ledger::{Layout, Lease, RunRecord, Versioned};
use crate::store::{AnyStore, StoreError};
use respawn_core::plan::calendar::{self, IntervalValues};
use respawn_core::workflow::Workflow;

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The workflow cannot run on this store ([`unfit_store`] says why).
    #[error("{0}")]
    UnfitStore(String),
    /// The batch is not a date of the workflow's schedule ([`interval_of`] says why).
    #[error("{0}")]
    NotScheduled(String),
}

/// What opening a session found.
pub enum Opened {
    /// Nothing to run (the batch already succeeded and nothing changed); the lease is
    /// released. The message says why.
    Nothing(String),
    /// A run to drive.
    Run(Box<OpenedRun>),
}

/// A run to drive: its record, the lease bound to it, and a line that says which run it is
/// and why ("starting batch", "resuming run ...", "reopening run ...").
pub struct OpenedRun {
    pub record: Versioned<RunRecord>,
    pub lease: Lease,
    pub announce: String,
    /// The run's interval, when the workflow has a schedule.
    pub interval: Option<IntervalValues>,
    /// The failed run of the batch this one follows: `recovered` is sent if it succeeds.
    pub recovering: Option<String>,
}

/// Why a logical date cannot run yet: its interval has not closed
/// ([`calendar::not_closed`]).
fn open_date(workflow: &Workflow, batch: &str, clock: &dyn Clock) -> Option<String> {
    let schedule = workflow.schedule.as_ref()?;
    let now = clock.timestamp();
    let reason = calendar::interval_of_batch(schedule, batch)
        .and_then(|interval| calendar::not_closed(schedule, &interval, now))?;
    Some(format!(
        "batch `{batch}` of workflow `{}` cannot run yet: {reason} (pass --allow-future to run it anyway)",
        workflow.name
    ))
}

/// Takes the workflow's lease, chooses the run `request` asks for, and binds the lease to
/// it. On any error the lease is released.
pub async fn open(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    request: &RunRequest,
    clock: &dyn Clock,
) -> Result<Opened, SessionError> {
    if let Some(reason) = unfit_store(workflow, store) {
        return Err(SessionError::UnfitStore(reason));
    }
    let (batch, fresh) = match &request.batch {
        Some(batch) => (batch.clone(), false),
        None if workflow.schedule.is_some() => {
            return Err(SessionError::NotScheduled(format!(
                "workflow `{}` has a schedule: name the logical date with --batch, or let `respawn tick` run the due dates",
                workflow.name
            )));
        }
        None => pick_batch(store, layout, clock).await?,
    };
    let interval = interval_of(workflow, &batch).map_err(SessionError::NotScheduled)?;
    if !request.allow_future
        && let Some(reason) = open_date(workflow, &batch, clock)
    {
        return Err(SessionError::NotScheduled(reason));
    }
    let mut lease = take_lease(store, layout, &batch, clock).await?;
    let chosen = match choose(store, layout, workflow, &batch, fresh, request.force, clock).await {
        Ok(chosen) => chosen,
        Err(error) => {
            let _ = lease.release(store, clock.now()).await;
            return Err(error.into());
        }
    };
    match chosen {
        Choice::Nothing(message) => {
            let _ = lease.release(store, clock.now()).await;
            Ok(Opened::Nothing(message))
        }
        Choice::Run {
            record,
            announce,
            recovering,
        } => {
            lease.record.holder.run_id = Some(record.value.run_id.clone());
            lease.renew(store, clock.now()).await?;
            Ok(Opened::Run(Box::new(OpenedRun {
                record: *record,
                lease,
                announce,
                interval,
                recovering,
            })))
        }
    }
}
