//! Backfills: run the logical dates of a range that need it, by mode (`missing`, `failed`,
//! `stale`, `all`), in date order (or newest first), at most N at once. A backfill is
//! recorded in the store, so the same command after a crash goes on where it stopped.

use super::dates::{DateInfo, date_states};
use super::decide;
use super::execute::run_date;
use super::outcome::Outcome;
use super::slots::take_slot;
use super::{RunRequest, Runner, SessionError};
use crate::clock::Clock;
use crate::ledger::{
    BackfillRecord, Claim, ClaimOutcome, Decision, Holder, Layout, Versioned, claim, read_backfill,
    timestamp,
};
use crate::store::AnyStore;
use respawn_core::plan::calendar;
use respawn_core::workflow::Workflow;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How often a backfill whose every run slot is held elsewhere looks again.
const SLOT_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Which dates of the range a backfill runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reprocess {
    /// Dates never run or never finished (failed, stopped, missed, an output gone).
    Missing,
    /// Dates whose run failed.
    Failed,
    /// Dates that succeeded before a stage's definition (`run:`, `version:`) changed.
    Stale,
    /// Every date, replacing its outputs.
    All,
}

impl Reprocess {
    fn as_str(self) -> &'static str {
        match self {
            Reprocess::Missing => "missing",
            Reprocess::Failed => "failed",
            Reprocess::Stale => "stale",
            Reprocess::All => "all",
        }
    }
}

/// What the backfill asks for.
#[derive(Clone, Debug)]
pub struct BackfillRequest {
    pub from: jiff::Timestamp,
    pub to: jiff::Timestamp,
    pub reprocess: Reprocess,
    pub newest_first: bool,
    pub max_active: u32,
    /// Run logical dates whose interval has not closed yet (refused otherwise).
    pub allow_future: bool,
}

/// What a backfill does with one date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Step {
    /// Run (or resume, or reopen) it.
    Run,
    /// Run it again as a new run that replaces its outputs.
    Replace,
    /// Not selected by the mode.
    Skip,
    /// Done earlier by this same backfill (before it was interrupted).
    Done,
    /// Someone is at work on it.
    Busy { holder: String },
}

#[derive(Clone, Debug, Serialize)]
pub struct BackfillDate {
    #[serde(flatten)]
    pub date: DateInfo,
    pub step: Step,
}

/// The backfill's record id: its range, mode and order.
pub fn backfill_id(request: &BackfillRequest) -> String {
    let key = format!(
        "{}|{}|{}|{}",
        request.from,
        request.to,
        request.reprocess.as_str(),
        request.newest_first
    );
    let digest = Sha256::digest(key.as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// The dates of the range, their states and what the backfill does with each, in the
/// order it does them; with the unfinished record of the same backfill, if there is one.
pub async fn plan_backfill(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    request: &BackfillRequest,
    clock: &dyn Clock,
) -> Result<(Vec<BackfillDate>, Option<Versioned<BackfillRecord>>), SessionError> {
    let schedule = workflow.schedule.as_ref().ok_or_else(|| {
        SessionError::NotScheduled(format!("workflow `{}` has no `schedule:`", workflow.name))
    })?;
    let intervals = calendar::between(schedule, request.from, request.to);
    if !request.allow_future {
        let now = clock.timestamp();
        if let Some(reason) = intervals
            .iter()
            .find_map(|interval| calendar::not_closed(schedule, interval, now))
        {
            return Err(SessionError::NotScheduled(format!(
                "the range reaches dates of workflow `{}` that cannot run yet: {reason} \
                 (end the range earlier with --to, or pass --allow-future to run them anyway)",
                workflow.name
            )));
        }
    }
    let record = read_backfill(store, layout, &backfill_id(request))
        .await?
        .filter(|r| !r.value.finished);
    let done: Vec<String> = record
        .as_ref()
        .map(|r| r.value.done.clone())
        .unwrap_or_default();
    let mut dates: Vec<BackfillDate> = date_states(store, layout, workflow, &intervals, clock)
        .await?
        .into_iter()
        .map(|date| {
            let step = if done.contains(&date.batch) {
                Step::Done
            } else {
                decide::backfill_step(&date.state, request.reprocess)
            };
            BackfillDate { date, step }
        })
        .collect();
    if request.newest_first {
        dates.reverse();
    }
    Ok((dates, record))
}

/// Runs the dates whose step is `Run` or `Replace`, at most `max_active` at once, and keeps
/// the backfill's record; `report` hears of each date as it ends.
#[allow(clippy::too_many_arguments)]
pub async fn carry_out_backfill(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    request: &BackfillRequest,
    dates: Vec<BackfillDate>,
    record: Option<Versioned<BackfillRecord>>,
    runner: &Runner<'_>,
    clock: &dyn Clock,
    mut report: impl FnMut(&BackfillDate, &Outcome),
) -> Result<(), SessionError> {
    let now = timestamp(clock.now());
    let mut record = match record {
        Some(record) => record,
        None => {
            let id = backfill_id(request);
            let previous = read_backfill(store, layout, &id).await?;
            let fresh = BackfillRecord {
                format: crate::ledger::FORMAT,
                workflow: workflow.name.clone(),
                id,
                from: request.from.to_string(),
                to: request.to.to_string(),
                reprocess: request.reprocess.as_str().into(),
                order: if request.newest_first {
                    "newest"
                } else {
                    "oldest"
                }
                .into(),
                started_at: now.clone(),
                updated_at: now,
                finished: false,
                done: Vec::new(),
            };
            Versioned::start(store, layout, fresh, previous.as_ref()).await?
        }
    };
    let slots = workflow
        .schedule
        .as_ref()
        .map(|s| s.max_active.max(1))
        .unwrap_or(1);
    let mut running = tokio::task::JoinSet::new();
    let mut failed = false;
    let mut newly_done = Vec::new();
    for date in dates {
        if !matches!(date.step, Step::Run | Step::Replace) {
            continue;
        }
        // After Ctrl-C or SIGTERM no new date starts; the same command goes on later.
        if (runner.stopping)() {
            failed = true;
            report(&date, &Outcome::Deferred);
            continue;
        }
        while running.len() >= request.max_active.max(1) as usize {
            if let Some(Ok((date, outcome))) = running.join_next().await {
                failed |= settle(&date, &outcome, &mut newly_done, &mut report);
                save(store, layout, &mut record, &mut newly_done, clock).await?;
            }
        }
        // A run slot of the schedule's `max_active`, shared with the ticks: while other
        // processes hold them all, the backfill waits for one (or for a stop).
        let mut ended = Vec::new();
        let slot = loop {
            let taken = take_slot(store, layout, slots, &mut running, clock, |end| {
                ended.push(end)
            })
            .await?;
            for (date, outcome) in ended.drain(..) {
                failed |= settle(&date, &outcome, &mut newly_done, &mut report);
            }
            save(store, layout, &mut record, &mut newly_done, clock).await?;
            match taken {
                Some(slot) => break Some(slot),
                None if (runner.stopping)() => break None,
                None => tokio::time::sleep(SLOT_POLL).await,
            }
        };
        let Some(slot) = slot else {
            failed = true;
            report(&date, &Outcome::Deferred);
            continue;
        };
        // A claim keeps the scheduler's ticks off a date the backfill runs; a date another
        // process claimed meanwhile is left to it.
        if date.date.claim.is_none() {
            let holder = Holder::this_process(None);
            let mine = Claim::new(
                layout,
                &date.date.batch,
                &date.date.logical_date,
                Decision::Run,
                holder,
                clock.now(),
                Some(format!("backfill {}", record.value.id)),
            );
            if let ClaimOutcome::Held(held) = claim(store, layout, mine).await? {
                let _ = slot.release(store, clock.now()).await;
                failed = true;
                let holder = held.value.holder.to_string();
                report(&date, &Outcome::Taken { holder });
                continue;
            }
        }
        let run = RunRequest {
            batch: Some(date.date.batch.clone()),
            force: date.step == Step::Replace,
            allow_future: request.allow_future,
        };
        run_date(
            &mut running,
            store,
            layout,
            workflow,
            &run,
            runner,
            clock,
            slot,
            date,
        )
        .await;
    }
    while let Some(joined) = running.join_next().await {
        if let Ok((date, outcome)) = joined {
            failed |= settle(&date, &outcome, &mut newly_done, &mut report);
            save(store, layout, &mut record, &mut newly_done, clock).await?;
        }
    }
    if !failed {
        record
            .update(store, layout, clock.now(), |r| r.finished = true)
            .await?;
    }
    Ok(())
}

/// Reports a date that ended and notes it done when it succeeded; true when it did not end
/// well.
fn settle(
    date: &BackfillDate,
    outcome: &Outcome,
    done: &mut Vec<String>,
    report: &mut impl FnMut(&BackfillDate, &Outcome),
) -> bool {
    if matches!(outcome, Outcome::Succeeded { .. }) {
        done.push(date.date.batch.clone());
    }
    report(date, outcome);
    !matches!(outcome, Outcome::Succeeded { .. } | Outcome::Nothing { .. })
}

/// Adds the dates finished since the last save to the record.
async fn save(
    store: &AnyStore,
    layout: &Layout,
    record: &mut Versioned<BackfillRecord>,
    newly_done: &mut Vec<String>,
    clock: &dyn Clock,
) -> Result<(), SessionError> {
    if newly_done.is_empty() {
        return Ok(());
    }
    let batches = std::mem::take(newly_done);
    record
        .update(store, layout, clock.now(), |r| {
            r.done.extend(batches.iter().cloned())
        })
        .await?;
    Ok(())
}
