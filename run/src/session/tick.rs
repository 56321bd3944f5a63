//! One pass of the scheduler (`respawn tick`): which logical dates of a workflow's schedule
//! are due, what to do with each (run it, resume it, record it missed, leave it to whoever
//! has it), and doing it. Every date is claimed with a create-only object before its run
//! starts, so any number of ticks on any number of machines run each date exactly once.

use super::dates::{DateInfo, DateReader, date_states};
use super::decide;
use super::execute::run_date;
use super::outcome::Outcome;
use super::slots::take_slot;
use super::{RunRequest, RunSettings, SessionError};
use crate::clock::Clock;
use crate::driver::EventSink;
use crate::ledger::{
    Claim, ClaimOutcome, Decision, Holder, Layout, MissedRange, Versioned, advance_settled, claim,
    read_claims, read_settled, record_missed, take_over,
};
use crate::store::AnyStore;
use respawn_core::plan::calendar::{self, Interval};
use respawn_core::workflow::schedule::rfc3339;
use respawn_core::workflow::{Catchup, ScheduleSpec, Workflow};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

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
    /// Catch-up leaves out the dates from this one to `last_batch`, recorded as one missed
    /// range (a backfill can still run them); `dates` is how many, when counted.
    Miss {
        reason: String,
        last_batch: String,
        last_logical_date: String,
        dates: Option<u64>,
    },
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

/// What a tick decided: the dates it acts on, and how the watermark moves once it does.
#[derive(Clone, Debug)]
pub struct TickPlan {
    /// Oldest first; a missed range is one entry.
    pub dates: Vec<DatePlan>,
    /// Dates the tick looked at that need nothing (done, or failed and left to the user).
    pub done: usize,
    /// Every due date before this time is taken up once the tick has carried out its plan.
    pub through: jiff::Timestamp,
    /// More dates are due than one tick takes up: the next tick goes on.
    pub more: bool,
    /// Dates the watermark lists as open after this tick, and those it no longer lists.
    opened: Vec<String>,
    finished: Vec<String>,
}

/// The dates a tick at `now` has to do something about, oldest first. A tick reads only
/// the dates it may act on: those due since the watermark (the latest few when catch-up
/// leaves the rest out, which it records as one range), those the watermark lists as open,
/// and the latest [`RECHECK`] settled dates (to rebuild an output deleted since). `write`:
/// the tick will carry the plan out (a dry run opens the store read-only).
pub async fn plan_tick(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    now: jiff::Timestamp,
    write: bool,
    clock: &dyn Clock,
) -> Result<TickPlan, SessionError> {
    let schedule = workflow.schedule.as_ref().ok_or_else(|| {
        SessionError::NotScheduled(format!("workflow `{}` has no `schedule:`", workflow.name))
    })?;
    let reader = Arc::new(DateReader::open(store, layout, workflow, write, clock).await?);
    let (through, open) = match read_settled(store, layout).await? {
        Some(settled) => (
            settled.value.through().unwrap_or(schedule.start),
            settled.value.open,
        ),
        // A store no tick of this version wrote: every claimed date is looked at once.
        None => {
            let claims = read_claims(store, layout).await?;
            (
                schedule.start,
                claims.into_iter().map(|c| c.value.batch).collect(),
            )
        }
    };
    let window = calendar::catch_up(schedule, through, now);
    let mut looked: BTreeMap<jiff::Timestamp, Interval> = BTreeMap::new();
    for batch in &open {
        if let Some(interval) = calendar::interval_of_batch(schedule, batch) {
            looked.insert(interval.start, interval);
        }
    }
    for interval in calendar::latest_due(schedule, schedule.start, through.min(now), RECHECK) {
        looked.insert(interval.start, interval);
    }
    for interval in &window.run {
        looked.insert(interval.start, *interval);
    }
    let intervals: Vec<Interval> = looked.into_values().collect();
    let dates = date_states(store, layout, workflow, &reader, &intervals, clock).await?;
    let decided = decide::tick(dates, |date| {
        open.contains(&date.batch) || date.interval.start >= through
    });
    let mut dates = decided.plans;
    if let Some(missed) = window.missed {
        dates.push(miss_plan(schedule, &missed).map_err(SessionError::NotScheduled)?);
    }
    dates.sort_by_key(|plan| plan.start());
    Ok(TickPlan {
        dates,
        done: decided.done,
        through: window.through,
        more: window.more,
        opened: decided.opened,
        finished: decided.finished,
    })
}

/// How many of the latest settled dates each tick reads again, so that deleting the
/// published output of a recent date has the next tick rebuild it. Older dates are
/// rebuilt by `backfill --reprocess missing`: a tick never reads every date.
pub const RECHECK: usize = 7;

fn miss_plan(
    schedule: &ScheduleSpec,
    (first, last, dates): &(Interval, Interval, Option<u64>),
) -> Result<DatePlan, String> {
    let batch = |i: &Interval| calendar::batch_id(schedule, i);
    let reason = match schedule.catchup {
        Catchup::All => "catch-up".to_string(),
        Catchup::Latest(n) => format!("catchup: {n} runs only the {n} latest missed dates"),
    };
    Ok(DatePlan {
        batch: batch(first)?,
        logical_date: rfc3339(&schedule.timezone, first.start),
        action: Action::Miss {
            reason,
            last_batch: batch(last)?,
            last_logical_date: rfc3339(&schedule.timezone, last.start),
            dates: *dates,
        },
        start: first.start,
        stale_claim: None,
    })
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

/// The missed range a plan's `Miss` entry stands for.
fn missed_range(layout: &Layout, date: &DatePlan, clock: &dyn Clock) -> MissedRange {
    let (reason, last_batch, last, dates) = match &date.action {
        Action::Miss {
            reason,
            last_batch,
            last_logical_date,
            dates,
        } => (
            reason.clone(),
            last_batch.clone(),
            last_logical_date.clone(),
            *dates,
        ),
        _ => Default::default(),
    };
    MissedRange {
        format: crate::ledger::FORMAT,
        workflow: layout.workflow().into(),
        first_batch: date.batch.clone(),
        last_batch,
        first: date.logical_date.clone(),
        last,
        dates,
        reason,
        holder: Holder::this_process(None),
        recorded_at: crate::ledger::timestamp(clock.now()),
    }
}

/// What is missed is recorded before the watermark passes it, and the dates to run are
/// listed open before they are claimed: a tick killed at any moment loses no date.
async fn record_before_running(
    store: &AnyStore,
    layout: &Layout,
    batch: &str,
    plan: &TickPlan,
    clock: &dyn Clock,
) -> Result<(), SessionError> {
    for date in &plan.dates {
        if let Action::Miss { .. } = &date.action {
            record_missed(store, layout, &missed_range(layout, date, clock)).await?;
        }
    }
    let now = clock.now();
    advance_settled(
        store,
        layout,
        batch,
        plan.through,
        &plan.opened,
        &plan.finished,
        now,
    )
    .await?;
    Ok(())
}

/// Claims `date` for this process to run: a new claim, or one taken over from a holder
/// that stopped.
async fn claim_date(
    store: &AnyStore,
    layout: &Layout,
    date: &DatePlan,
    clock: &dyn Clock,
) -> Result<ClaimOutcome, SessionError> {
    let (batch, logical) = (&date.batch, &date.logical_date);
    let holder = Holder::this_process(None);
    let mine = Claim::new(
        layout,
        batch,
        logical,
        Decision::Run,
        holder,
        clock.now(),
        None,
    );
    Ok(match (&date.action, &date.stale_claim) {
        (Action::Run, _) | (_, None) => claim(store, layout, mine).await?,
        (_, Some(stale)) => take_over(store, layout, stale, mine).await?,
    })
}

/// The outcome of a date the plan does not run: missed, or left to whoever has it.
fn not_run(action: &Action) -> Option<Outcome> {
    match action {
        Action::Miss { .. } => Some(Outcome::Missed),
        Action::Running { .. } | Action::Claimed { .. } | Action::Failed { .. } => {
            Some(Outcome::Left)
        }
        Action::Run | Action::Resume { .. } | Action::Rebuild { .. } | Action::Retake { .. } => {
            None
        }
    }
}

/// Carries out the plans: records missed dates, then claims and runs the others in date
/// order. A run needs one of the workflow's `max_active` run slots (leases shared by every
/// tick); when all are taken by other ticks, the remaining dates are left to a later tick.
/// `report` hears of each date as it ends.
pub async fn carry_out(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    plan: TickPlan,
    runner: &Runner<'_>,
    clock: &dyn Clock,
    mut report: impl FnMut(&DatePlan, &Outcome),
) -> Result<(), SessionError> {
    let Some(schedule) = workflow.schedule.as_ref() else {
        return Ok(());
    };
    let slots = schedule.max_active.max(1);
    record_before_running(store, layout, &schedule.batch, &plan, clock).await?;
    let mut running = Running::new();
    let mut busy = false;
    for date in plan.dates {
        if let Some(outcome) = not_run(&date.action) {
            report(&date, &outcome);
            continue;
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
        if let ClaimOutcome::Held(held) = claim_date(store, layout, &date, clock).await? {
            let _ = slot.release(store, clock.now()).await;
            let holder = held.value.holder.to_string();
            report(&date, &Outcome::Taken { holder });
            continue;
        }
        let request = RunRequest::of_date(&date.batch);
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
