//! Running one scheduled date in a run slot: the one executor `tick`, `schedule` and
//! `backfill` share. It opens the date's run (resume, reopen, new, or nothing to do),
//! drives it in the background while renewing the slot, and ends it as an [`Outcome`].

use super::outcome::{Outcome, ended};
use super::slots::keep_renewed;
use super::tick::Runner;
use super::{Opened, RunRequest, SessionError, drive_opened, open};
use crate::clock::Clock;
use crate::ledger::{Layout, Lease, LeaseError};
use crate::store::AnyStore;
use respawn_core::workflow::Workflow;
use tokio::task::JoinSet;

/// Opens the run of `request` and drives it on a task of `running`, holding `slot` until
/// it ends; the task yields `tag` with the outcome. A run whose lease another
/// orchestrator holds ends as [`Outcome::Running`]: it is at work on the date.
#[allow(clippy::too_many_arguments)]
pub async fn run_date<T: Send + 'static>(
    running: &mut JoinSet<(T, Outcome)>,
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    request: &RunRequest,
    runner: &Runner<'_>,
    clock: &dyn Clock,
    slot: Lease,
    tag: T,
) {
    let opened = open(store, layout, workflow, request, clock).await;
    let settings = (runner.settings)();
    let sink = (runner.sink_for)(request.batch.as_deref().unwrap_or_default());
    let (store, workflow) = (store.clone(), workflow.clone());
    running.spawn(async move {
        let renewing = keep_renewed(store.clone(), slot, settings.clock.clone());
        let outcome = match opened {
            Ok(Opened::Nothing(message)) => Outcome::Nothing { message },
            Ok(Opened::Run(opened)) => {
                let run_id = opened.record.value.run_id.clone();
                ended(
                    drive_opened(workflow, store, *opened, settings, sink).await,
                    run_id,
                )
            }
            Err(SessionError::Lease(LeaseError::Held { holder, .. })) => Outcome::Running {
                holder: holder.to_string(),
            },
            Err(error) => Outcome::Failed {
                message: error.to_string(),
                run_id: None,
            },
        };
        renewing.release().await;
        (tag, outcome)
    });
}
