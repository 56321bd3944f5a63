//! Backfills: run the logical dates of a range that need it, by mode (`missing`, `failed`,
//! `stale`, `all`), in date order (or newest first), at most N at once. A backfill is
//! recorded in the store, so the same command after a crash goes on where it stopped.

use super::dates::{DateInfo, DateReader, DateState, date_states};
use super::decide;
use super::execute::run_date;
use super::outcome::Outcome;
use super::slots::take_slot;
use super::{RunRequest, Runner, SessionError};
use crate::clock::Clock;
use crate::ledger::{
    BackfillRecord, Claim, ClaimOutcome, Decision, Holder, Layout, Lease, Versioned, claim,
    read_backfill, timestamp,
};
use crate::store::AnyStore;
use respawn_core::plan::calendar::{self, Interval};
use respawn_core::workflow::Workflow;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::sync::Arc;

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
    /// Its place in the backfill's order, from 0: what the record keeps of dates done.
    #[serde(skip)]
    pub position: u64,
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

/// How many dates a backfill reads and decides at a time: it holds one page, whatever the
/// length of its range.
const PAGE: usize = 64;

/// A backfill's dates, read a page at a time in the order it does them, with the
/// unfinished record of the same backfill, if there is one.
pub struct BackfillPlan {
    pub record: Option<Versioned<BackfillRecord>>,
    reader: Arc<DateReader>,
    /// Oldest first: the start of the next page; newest first: the end bound of the next.
    cursor: Option<jiff::Timestamp>,
    position: u64,
}

/// Checks the range and opens it for reading, a page at a time ([`BackfillPlan::next_page`]).
/// `write`: the backfill will run dates (a dry run opens the store read-only).
pub async fn plan_backfill(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    request: &BackfillRequest,
    write: bool,
    clock: &dyn Clock,
) -> Result<BackfillPlan, SessionError> {
    let schedule = workflow.schedule.as_ref().ok_or_else(|| {
        SessionError::NotScheduled(format!("workflow `{}` has no `schedule:`", workflow.name))
    })?;
    // Every interval with a logical date at or before `to` ends by `upper`.
    let upper = schedule
        .next_time(request.to, false)
        .unwrap_or(jiff::Timestamp::MAX);
    let last = calendar::latest_due(schedule, request.from, upper, 1);
    if !request.allow_future {
        let now = clock.timestamp();
        if let Some(reason) = last
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
    let reader = Arc::new(DateReader::open(store, layout, workflow, write, clock).await?);
    let cursor = if request.newest_first {
        last.first().map(|l| l.end)
    } else {
        Some(request.from)
    };
    Ok(BackfillPlan {
        record,
        reader,
        cursor,
        position: 0,
    })
}

impl BackfillPlan {
    /// The next page of dates with their states and what the backfill does with each;
    /// `None` after the last.
    pub async fn next_page(
        &mut self,
        store: &AnyStore,
        layout: &Layout,
        workflow: &Workflow,
        request: &BackfillRequest,
        clock: &dyn Clock,
    ) -> Result<Option<Vec<BackfillDate>>, SessionError> {
        let (Some(schedule), Some(cursor)) = (workflow.schedule.as_ref(), self.cursor) else {
            return Ok(None);
        };
        let intervals: Vec<Interval> = if request.newest_first {
            let mut page = calendar::latest_due(schedule, request.from, cursor, PAGE);
            self.cursor = page.first().map(|i| i.start).filter(|_| page.len() == PAGE);
            page.reverse();
            page
        } else {
            let page: Vec<Interval> = calendar::intervals_from(schedule, cursor)
                .take_while(|i| i.start <= request.to)
                .take(PAGE)
                .collect();
            self.cursor = page.last().map(|i| i.end).filter(|_| page.len() == PAGE);
            page
        };
        if intervals.is_empty() {
            return Ok(None);
        }
        let states = date_states(store, layout, workflow, &self.reader, &intervals, clock).await?;
        let record = self.record.as_ref().map(|r| &r.value);
        let dates = states
            .into_iter()
            .map(|date| {
                let position = self.position;
                self.position += 1;
                let done_since = |r: &BackfillRecord| match &date.state {
                    DateState::Succeeded { run_id } => r.started_before(run_id),
                    _ => false,
                };
                let step = if record.is_some_and(|r| r.did(&date.batch, position) || done_since(r))
                {
                    Step::Done
                } else {
                    decide::backfill_step(&date.state, request.reprocess)
                };
                BackfillDate {
                    date,
                    step,
                    position,
                }
            })
            .collect();
        Ok(Some(dates))
    }
}

/// What a backfill carries along while it runs dates.
struct Carry<'a, 'r> {
    store: &'a AnyStore,
    layout: &'a Layout,
    workflow: &'a Workflow,
    request: &'a BackfillRequest,
    runner: &'a Runner<'r>,
    clock: &'a dyn Clock,
    record: Versioned<BackfillRecord>,
    running: tokio::task::JoinSet<(BackfillDate, Outcome)>,
    /// Positions of dates that succeeded since the last save.
    newly_done: Vec<u64>,
    failed: bool,
}

/// Goes through the backfill's dates a page at a time: `planned` hears of each date as it
/// is decided, the dates whose step is `Run` or `Replace` run (at most `max_active` at
/// once), the record keeps which are done, and `report` hears of each date as it ends.
#[allow(clippy::too_many_arguments)]
pub async fn carry_out_backfill(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    request: &BackfillRequest,
    mut plan: BackfillPlan,
    runner: &Runner<'_>,
    clock: &dyn Clock,
    mut planned: impl FnMut(&BackfillDate),
    mut report: impl FnMut(&BackfillDate, &Outcome),
) -> Result<(), SessionError> {
    // The plan keeps the record as read: it tells the pages which dates were done.
    let record = match plan.record.clone() {
        Some(record) => record,
        None => start_record(store, layout, workflow, request, clock).await?,
    };
    let mut carry = Carry {
        store,
        layout,
        workflow,
        request,
        runner,
        clock,
        record,
        running: tokio::task::JoinSet::new(),
        newly_done: Vec::new(),
        failed: false,
    };
    while let Some(page) = plan
        .next_page(store, layout, workflow, request, clock)
        .await?
    {
        for date in page {
            planned(&date);
            if matches!(date.step, Step::Run | Step::Replace) {
                carry.start(date, &mut report).await?;
            }
        }
    }
    while let Some(joined) = carry.running.join_next().await {
        if let Ok((date, outcome)) = joined {
            carry.settle(&date, &outcome, &mut report);
            carry.save().await?;
        }
    }
    if !carry.failed {
        carry
            .record
            .update(store, layout, clock.now(), |r| r.finished = true)
            .await?;
    }
    Ok(())
}

/// The record of a backfill starting now (replacing a finished one of the same id).
async fn start_record(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    request: &BackfillRequest,
    clock: &dyn Clock,
) -> Result<Versioned<BackfillRecord>, SessionError> {
    let now = timestamp(clock.now());
    let id = backfill_id(request);
    let previous = read_backfill(store, layout, &id).await?;
    let order = if request.newest_first {
        "newest"
    } else {
        "oldest"
    };
    let fresh = BackfillRecord {
        format: crate::ledger::FORMAT,
        workflow: workflow.name.clone(),
        id,
        from: request.from.to_string(),
        to: request.to.to_string(),
        reprocess: request.reprocess.as_str().into(),
        order: order.into(),
        started_at: now.clone(),
        updated_at: now,
        finished: false,
        done: Vec::new(),
        done_positions: Vec::new(),
    };
    Ok(Versioned::start(store, layout, fresh, previous.as_ref()).await?)
}

impl Carry<'_, '_> {
    /// Starts the run of one date once a run of this backfill and a run slot are free.
    async fn start(
        &mut self,
        date: BackfillDate,
        report: &mut impl FnMut(&BackfillDate, &Outcome),
    ) -> Result<(), SessionError> {
        // After Ctrl-C or SIGTERM no new date starts; the same command goes on later.
        if (self.runner.stopping)() {
            self.failed = true;
            report(&date, &Outcome::Deferred);
            return Ok(());
        }
        while self.running.len() >= self.request.max_active.max(1) as usize {
            if let Some(Ok((date, outcome))) = self.running.join_next().await {
                self.settle(&date, &outcome, report);
                self.save().await?;
            }
        }
        let Some(slot) = self.slot(report).await? else {
            self.failed = true;
            report(&date, &Outcome::Deferred);
            return Ok(());
        };
        // A claim keeps the scheduler's ticks off a date the backfill runs; a date another
        // process claimed meanwhile is left to it.
        if date.date.claim.is_none() {
            let mine = Claim::new(
                self.layout,
                &date.date.batch,
                &date.date.logical_date,
                Decision::Run,
                Holder::this_process(None),
                self.clock.now(),
                Some(format!("backfill {}", self.record.value.id)),
            );
            if let ClaimOutcome::Held(held) = claim(self.store, self.layout, mine).await? {
                let _ = slot.release(self.store, self.clock.now()).await;
                self.failed = true;
                let holder = held.value.holder.to_string();
                report(&date, &Outcome::Taken { holder });
                return Ok(());
            }
        }
        let run = RunRequest {
            batch: Some(date.date.batch.clone()),
            force: date.step == Step::Replace,
            allow_future: self.request.allow_future,
        };
        let (store, layout, workflow) = (self.store, self.layout, self.workflow);
        let (runner, clock) = (self.runner, self.clock);
        run_date(
            &mut self.running,
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
        Ok(())
    }

    /// A run slot of the schedule's `max_active`, shared with the ticks: while other
    /// processes hold them all, the backfill waits for one (or for a stop: `None`).
    async fn slot(
        &mut self,
        report: &mut impl FnMut(&BackfillDate, &Outcome),
    ) -> Result<Option<Lease>, SessionError> {
        let slots = self
            .workflow
            .schedule
            .as_ref()
            .map_or(1, |s| s.max_active.max(1));
        loop {
            let mut ended = Vec::new();
            let taken = take_slot(
                self.store,
                self.layout,
                slots,
                &mut self.running,
                self.clock,
                |end| ended.push(end),
            )
            .await?;
            for (date, outcome) in ended {
                self.settle(&date, &outcome, report);
            }
            self.save().await?;
            match taken {
                Some(slot) => return Ok(Some(slot)),
                None if (self.runner.stopping)() => return Ok(None),
                None => tokio::time::sleep(SLOT_POLL).await,
            }
        }
    }

    /// Reports a date that ended and notes it done when it succeeded; a date that did not
    /// end well leaves the backfill unfinished.
    fn settle(
        &mut self,
        date: &BackfillDate,
        outcome: &Outcome,
        report: &mut impl FnMut(&BackfillDate, &Outcome),
    ) {
        if matches!(outcome, Outcome::Succeeded { .. }) {
            self.newly_done.push(date.position);
        }
        report(date, outcome);
        self.failed |= !matches!(outcome, Outcome::Succeeded { .. } | Outcome::Nothing { .. });
    }

    /// Adds the dates finished since the last save to the record.
    async fn save(&mut self) -> Result<(), SessionError> {
        if self.newly_done.is_empty() {
            return Ok(());
        }
        let positions = std::mem::take(&mut self.newly_done);
        self.record
            .update(self.store, self.layout, self.clock.now(), |r| {
                for &position in &positions {
                    r.mark_done(position);
                }
            })
            .await?;
        Ok(())
    }
}
