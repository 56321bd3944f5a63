//! One pass of the scheduler (`respawn tick`): which logical dates of a workflow's schedule
//! are due, what to do with each (run it, resume it, record it missed, leave it to whoever
//! has it), and doing it. Every date is claimed with a create-only object before its run
//! starts, so any number of ticks on any number of machines run each date exactly once.

use super::dates::{DateInfo, date_states};
use super::decide;
use super::execute::run_date;
use super::outcome::Outcome;
use super::slots::take_slot;
use super::{RunRequest, RunSettings, SessionError};
use crate::clock::Clock;
use crate::driver::EventSink;
use crate::ledger::{Claim, ClaimOutcome, Decision, Holder, Layout, Versioned, claim, take_over};
use crate::store::AnyStore;
use respawn_core::plan::calendar;
use respawn_core::workflow::Workflow;
use serde::Serialize;

/// What a tick does with one due date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "kebab-case")]
pub enum Action {
    /// Never run: claim it and run it.
    Run,
    /// Its run stopped or its orchestrator died: take the claim over and resume the run.
    Resume { run_id: String },
    /// It succeeded but a published output is gone: run it again (self-healing).
    Rebuild { run_id: String },
    /// A tick claimed it and died before starting: take the claim over and run it.
    Retake { holder: String },
    /// Catch-up leaves it out; recorded as missed (a backfill can still run it).
    Miss { reason: String },
    /// Another orchestrator is at work on it.
    Running { holder: String },
    /// Another tick has just claimed it.
    Claimed { holder: String },
    /// Its run failed; `respawn run FILE --batch B` resumes it once the stage is fixed.
    Failed { run_id: String },
}

/// A due date and what to do with it.
#[derive(Clone, Debug, Serialize)]
pub struct DatePlan {
    pub batch: String,
    pub logical_date: String,
    #[serde(flatten)]
    pub action: Action,
    #[serde(skip)]
    start: jiff::Timestamp,
    #[serde(skip)]
    stale_claim: Option<Versioned<Claim>>,
}

/// The dates a tick at `now` has to do something about, oldest first; dates already done
/// (succeeded with their outputs, or recorded missed) are counted in the second value.
pub async fn plan_tick(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    now: jiff::Timestamp,
    clock: &dyn Clock,
) -> Result<(Vec<DatePlan>, usize), SessionError> {
    let schedule = workflow.schedule.as_ref().ok_or_else(|| {
        SessionError::NotScheduled(format!("workflow `{}` has no `schedule:`", workflow.name))
    })?;
    let due = calendar::due(schedule, now);
    let dates = date_states(store, layout, workflow, &due, clock).await?;
    Ok(decide::tick(dates, schedule.catchup))
}

impl DatePlan {
    pub(super) fn of(date: DateInfo, action: Action) -> DatePlan {
        DatePlan {
            batch: date.batch,
            logical_date: date.logical_date,
            action,
            start: date.interval.start,
            stale_claim: date.claim,
        }
    }

    /// The start of the date's interval (its logical date).
    pub fn start(&self) -> jiff::Timestamp {
        self.start
    }
}

/// How the runs of a tick are made: their settings, and where each one's events go.
pub struct Runner<'a> {
    pub settings: &'a dyn Fn() -> RunSettings,
    /// The sink for the events of the run of a batch.
    pub sink_for: &'a dyn Fn(&str) -> EventSink,
    /// Whether the process is stopping: no new run starts then (the runs already going
    /// stop by themselves, as the driver hears the same signal).
    pub stopping: &'a dyn Fn() -> bool,
}

type Running = tokio::task::JoinSet<(DatePlan, Outcome)>;

/// Carries out the plans: records missed dates, then claims and runs the others in date
/// order. A run needs one of the workflow's `max_active` run slots (leases shared by every
/// tick); when all are taken by other ticks, the remaining dates are left to a later tick.
/// `report` hears of each date as it ends.
pub async fn carry_out(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    plans: Vec<DatePlan>,
    runner: &Runner<'_>,
    clock: &dyn Clock,
    mut report: impl FnMut(&DatePlan, &Outcome),
) -> Result<(), SessionError> {
    let slots = workflow
        .schedule
        .as_ref()
        .map(|s| s.max_active.max(1))
        .unwrap_or(1);
    let mut running = Running::new();
    let mut busy = false;
    for date in plans {
        let claim_of = |decision, reason| {
            let holder = Holder::this_process(None);
            let now = clock.now();
            Claim::new(
                layout,
                &date.batch,
                &date.logical_date,
                decision,
                holder,
                now,
                reason,
            )
        };
        match &date.action {
            Action::Miss { reason } => {
                let missed = claim_of(Decision::Missed, Some(reason.clone()));
                let outcome = match claim(store, layout, missed).await? {
                    ClaimOutcome::Won(_) => Outcome::Missed,
                    ClaimOutcome::Held(held) => Outcome::Taken {
                        holder: held.value.holder.to_string(),
                    },
                };
                report(&date, &outcome);
                continue;
            }
            Action::Running { .. } | Action::Claimed { .. } | Action::Failed { .. } => {
                report(&date, &Outcome::Left);
                continue;
            }
            Action::Run
            | Action::Resume { .. }
            | Action::Rebuild { .. }
            | Action::Retake { .. } => {}
        }
        if (runner.stopping)() {
            report(&date, &Outcome::Deferred);
            continue;
        }
        if busy {
            report(&date, &Outcome::Busy { slots });
            continue;
        }
        let done = |(date, outcome): (DatePlan, Outcome)| report(&date, &outcome);
        let Some(slot) = take_slot(store, layout, slots, &mut running, clock, done).await? else {
            busy = true;
            report(&date, &Outcome::Busy { slots });
            continue;
        };
        // Waiting for a slot may have lasted until a stop came.
        if (runner.stopping)() {
            let _ = slot.release(store, clock.now()).await;
            report(&date, &Outcome::Deferred);
            continue;
        }
        let mine = claim_of(Decision::Run, None);
        let won = match (&date.action, &date.stale_claim) {
            (Action::Run, _) | (_, None) => claim(store, layout, mine).await?,
            (_, Some(stale)) => take_over(store, layout, stale, mine).await?,
        };
        if let ClaimOutcome::Held(held) = won {
            let _ = slot.release(store, clock.now()).await;
            let holder = held.value.holder.to_string();
            report(&date, &Outcome::Taken { holder });
            continue;
        }
        let request = RunRequest {
            batch: Some(date.batch.clone()),
            force: false,
            allow_future: false,
        };
        run_date(
            &mut running,
            store,
            layout,
            workflow,
            &request,
            runner,
            clock,
            slot,
            date,
        )
        .await;
    }
    while let Some(joined) = running.join_next().await {
        if let Ok((date, outcome)) = joined {
            report(&date, &outcome);
        }
    }
    Ok(())
}
