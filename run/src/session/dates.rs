//! The state of each logical date of a scheduled workflow, from the store: its claim, its
//! latest run, the lease of that run, its published outputs and whether its stages changed
//! since. `respawn batches` shows it; `tick` and `backfill` decide from it. Each date is
//! read on its own, so reading a page of dates costs that page, not the schedule's age.

use super::{LEASE_TTL, SessionError};
use crate::clock::{Clock, Frozen};
use crate::host::holder_is_gone;
use crate::ledger::{
    Claim, Decision, Layout, MissedRange, RunRecord, RunStatus, Versioned, read_claim, read_claims,
    read_missed, read_settled,
};
use crate::read::{Completeness, RunIndex, at_work, completeness};
use crate::store::{AnyStore, StoreError};
use respawn_core::plan::calendar::{self, Interval};
use respawn_core::workflow::schedule::rfc3339;
use respawn_core::workflow::{ScheduleSpec, Workflow};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a date's state is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum DateState {
    /// Never claimed, never run.
    Missing,
    /// Catch-up left it out.
    Missed,
    /// Claimed to run, no run yet; `stale` when its claimer died or never started it.
    Claimed {
        holder: String,
        stale: bool,
    },
    /// An orchestrator is at work on it.
    Running {
        run_id: String,
        holder: String,
    },
    /// Stopped by Ctrl-C, or its orchestrator died: the same batch resumes it.
    Stopped {
        run_id: String,
    },
    Failed {
        run_id: String,
        /// `STAGE/CHECK` when a check refused a stage's output (what failed the run).
        #[serde(skip_serializing_if = "Option::is_none")]
        check: Option<String>,
    },
    Succeeded {
        run_id: String,
    },
    /// Succeeded, but the definition of a stage changed since.
    Stale {
        run_id: String,
        stage: String,
    },
    /// Succeeded, but a published output is gone.
    Incomplete {
        run_id: String,
        stage: String,
    },
}

impl DateState {
    /// The state's name, as `batches` shows it.
    pub fn name(&self) -> &'static str {
        match self {
            DateState::Missing => "missing",
            DateState::Missed => "missed",
            DateState::Claimed { .. } => "claimed",
            DateState::Running { .. } => "running",
            DateState::Stopped { .. } => "stopped",
            DateState::Failed { .. } => "failed",
            DateState::Succeeded { .. } => "succeeded",
            DateState::Stale { .. } => "stale",
            DateState::Incomplete { .. } => "incomplete",
        }
    }

    /// The date's run, if it has one.
    pub fn run_id(&self) -> Option<&str> {
        match self {
            DateState::Running { run_id, .. }
            | DateState::Stopped { run_id }
            | DateState::Failed { run_id, .. }
            | DateState::Succeeded { run_id }
            | DateState::Stale { run_id, .. }
            | DateState::Incomplete { run_id, .. } => Some(run_id),
            _ => None,
        }
    }
}

/// One logical date and its state.
#[derive(Clone, Debug, Serialize)]
pub struct DateInfo {
    pub batch: String,
    pub logical_date: String,
    #[serde(flatten)]
    pub state: DateState,
    #[serde(skip)]
    pub interval: Interval,
    /// The date's claim, as read (to be taken over with If-Match).
    #[serde(skip)]
    pub claim: Option<Versioned<Claim>>,
    /// When its output is due (`schedule.publish_by`), RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_by: Option<String>,
    /// Its output was published after `publish_by`, or is not yet and that time passed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub late: bool,
}

/// What reading the state of a date needs besides the date: how to find its latest run,
/// and the ranges of dates catch-up left out. Opened once per command.
pub struct DateReader {
    index: RunIndex,
    missed: Vec<MissedRange>,
}

impl DateReader {
    /// Opens the reader after checking that the schedule's `batch:` format is the one the
    /// dates were processed under. `write`: the command decides and writes (`tick`,
    /// `backfill`), so it may build the store's index of latest runs once.
    pub async fn open(
        store: &AnyStore,
        layout: &Layout,
        workflow: &Workflow,
        write: bool,
        clock: &dyn Clock,
    ) -> Result<DateReader, SessionError> {
        let schedule = schedule_of(workflow).map_err(SessionError::NotScheduled)?;
        check_batch_format(store, layout, workflow, schedule).await?;
        let index = if write {
            RunIndex::open_to_write(store, layout, clock.now()).await?
        } else {
            RunIndex::open(store, layout).await?
        };
        let missed = read_missed(store, layout).await?;
        Ok(DateReader { index, missed })
    }
}

fn schedule_of(workflow: &Workflow) -> Result<&ScheduleSpec, String> {
    workflow
        .schedule
        .as_ref()
        .ok_or_else(|| format!("workflow `{}` has no `schedule:`", workflow.name))
}

/// How many dates are read at once: each is a few reads, bound by the store's latency.
const READS_IN_FLIGHT: usize = 32;

/// The state of each of `intervals` (dates of `workflow`'s schedule), in their order: a few
/// reads per date (its claim, its latest run, that run's lease or published outputs),
/// `READS_IN_FLIGHT` dates at a time, whatever the age of the schedule.
pub async fn date_states(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    reader: &Arc<DateReader>,
    intervals: &[Interval],
    clock: &dyn Clock,
) -> Result<Vec<DateInfo>, SessionError> {
    let schedule = schedule_of(workflow).map_err(SessionError::NotScheduled)?;
    let workflow = Arc::new(workflow.clone());
    let frozen = Frozen(clock.now());
    let mut reads = tokio::task::JoinSet::new();
    let mut pending = intervals.iter().copied().enumerate();
    let mut dates = Vec::with_capacity(intervals.len());
    loop {
        while reads.len() < READS_IN_FLIGHT
            && let Some((i, interval)) = pending.next()
        {
            let batch =
                calendar::batch_id(schedule, &interval).map_err(SessionError::NotScheduled)?;
            let logical_date = rfc3339(&schedule.timezone, interval.start);
            let (store, layout, workflow, reader) = (
                store.clone(),
                layout.clone(),
                workflow.clone(),
                reader.clone(),
            );
            reads.spawn(async move {
                let state = date_state(
                    &store, &layout, &workflow, &reader, &batch, &interval, &frozen,
                )
                .await;
                let schedule = workflow.schedule.as_ref();
                let due = schedule.and_then(|s| calendar::publish_due(s, &interval));
                state.map(|(state, claim, finished)| {
                    let done = finished.and_then(|at| at.parse::<jiff::Timestamp>().ok());
                    let late = due.is_some_and(|due| done.unwrap_or(frozen.timestamp()) > due);
                    let date = DateInfo {
                        publish_by: due.zip(schedule).map(|(due, s)| rfc3339(&s.timezone, due)),
                        late,
                        batch,
                        logical_date,
                        state,
                        interval,
                        claim,
                    };
                    (i, date)
                })
            });
        }
        let Some(joined) = reads.join_next().await else {
            break;
        };
        let read = joined.map_err(|e| StoreError::Io {
            object: layout.workflow().into(),
            source: std::io::Error::other(e),
        })?;
        dates.push(read?);
    }
    dates.sort_unstable_by_key(|(i, _)| *i);
    Ok(dates.into_iter().map(|(_, date)| date).collect())
}

/// The state of one date, with its claim as read and when its run succeeded.
async fn date_state(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    reader: &DateReader,
    batch: &str,
    interval: &Interval,
    clock: &dyn Clock,
) -> Result<(DateState, Option<Versioned<Claim>>, Option<String>), SessionError> {
    let claim = read_claim(store, layout, batch).await?;
    let latest = reader.index.latest(store, layout, batch).await?;
    let now = unix(clock.now());
    let finished = (latest.as_ref())
        .filter(|r| r.value.status == RunStatus::Succeeded)
        .and_then(|r| r.value.finished_at.clone());
    let state = match (&claim, latest) {
        (_, Some(record)) => {
            let record = record.value;
            match run_state(store, layout, &record, clock).await? {
                // A run nobody holds, but whose date another tick has just claimed anew:
                // that tick is about to resume it (two ticks at once must not both try).
                DateState::Stopped { .. }
                    if claim
                        .as_ref()
                        .is_some_and(|c| claim_is_fresh(c, &record, now)) =>
                {
                    let c = claim.as_ref().map(|c| &c.value);
                    DateState::Claimed {
                        holder: c.map(|c| c.holder.to_string()).unwrap_or_default(),
                        stale: false,
                    }
                }
                DateState::Succeeded { run_id } => {
                    match completeness(store, layout, workflow, &record).await? {
                        Completeness::Incomplete { stage, .. } => {
                            DateState::Incomplete { run_id, stage }
                        }
                        Completeness::Stale { stage } => DateState::Stale { run_id, stage },
                        Completeness::Complete => DateState::Succeeded { run_id },
                    }
                }
                state => state,
            }
        }
        (Some(c), None) if c.value.decision == Decision::Missed => DateState::Missed,
        (Some(c), None) => DateState::Claimed {
            holder: c.value.holder.to_string(),
            stale: claim_is_stale(&c.value, now),
        },
        (None, None) if reader.missed.iter().any(|r| r.holds(interval.start)) => DateState::Missed,
        (None, None) => DateState::Missing,
    };
    Ok((state, claim, finished))
}

/// Refuses a schedule whose `batch:` format is not the one its dates were processed under:
/// as the watermark records it, or, in a store no tick of this version wrote, as the claims
/// say.
async fn check_batch_format(
    store: &AnyStore,
    layout: &Layout,
    workflow: &Workflow,
    schedule: &ScheduleSpec,
) -> Result<(), SessionError> {
    if let Some(settled) = read_settled(store, layout).await? {
        if settled.value.batch_format == schedule.batch {
            return Ok(());
        }
        let mut old = schedule.clone();
        old.batch = settled.value.batch_format.clone();
        let first = calendar::intervals_from(schedule, schedule.start).next();
        if let Some(interval) = first
            && let (Ok(was), Ok(now)) = (
                old.batch_id(interval.start),
                schedule.batch_id(interval.start),
            )
        {
            return Err(batch_format_changed(
                workflow, &was, &now, &interval, schedule,
            ));
        }
        return Ok(());
    }
    let claims: BTreeMap<String, Versioned<Claim>> = read_claims(store, layout)
        .await?
        .into_iter()
        .map(|c| (c.value.batch.clone(), c))
        .collect();
    if let Some((date, old)) = renamed_claims(&claims, schedule).into_iter().next() {
        let new = schedule.batch_id(date).unwrap_or_default();
        let end = schedule.next_time(date, false).unwrap_or(date);
        let interval = Interval { start: date, end };
        return Err(batch_format_changed(
            workflow, &old, &new, &interval, schedule,
        ));
    }
    Ok(())
}

/// The claims whose batch id is not what the schedule's `batch:` now writes for their
/// logical date, by that date: the format changed under a live schedule.
fn renamed_claims(
    claims: &BTreeMap<String, Versioned<Claim>>,
    schedule: &ScheduleSpec,
) -> BTreeMap<jiff::Timestamp, String> {
    claims
        .values()
        .filter_map(|claim| {
            let date = claim.value.logical_date.parse::<jiff::Timestamp>().ok()?;
            let now_written = schedule.batch_id(date).ok()?;
            (now_written != claim.value.batch).then(|| (date, claim.value.batch.clone()))
        })
        .collect()
}

/// Claims are kept by batch id: under a new `batch:` format every date already processed
/// would look new and run again, so the change is refused.
fn batch_format_changed(
    workflow: &Workflow,
    old: &str,
    new: &str,
    interval: &Interval,
    schedule: &ScheduleSpec,
) -> SessionError {
    SessionError::NotScheduled(format!(
        "{}: the schedule's `batch:` changed: logical date {} was processed as batch `{old}`, \
         which `{}` now writes `{new}`, so every processed date would run again; restore \
         `batch:`, or give the workflow a new `name:` to start its schedule afresh",
        workflow.file,
        rfc3339(&schedule.timezone, interval.start),
        schedule.batch
    ))
}

/// Whether a claim no longer stands for a live orchestrator: its holder died, or it is
/// older than a lease and never became a run.
fn claim_is_stale(claim: &Claim, now: u64) -> bool {
    now >= claim.claimed_unix + LEASE_TTL.as_secs() || holder_is_gone(&claim.holder)
}

/// Whether `claim` was made, by an orchestrator still alive, after `record`'s run last
/// changed: someone took the date over to resume it and has not yet taken its lease.
fn claim_is_fresh(claim: &Versioned<Claim>, record: &RunRecord, now: u64) -> bool {
    let claimed_after_run = jiff::Timestamp::from_second(claim.value.claimed_unix as i64)
        .ok()
        .zip(record.updated_at.parse::<jiff::Timestamp>().ok())
        .is_some_and(|(claimed, updated)| claimed >= updated);
    claim.value.decision == Decision::Run && claimed_after_run && !claim_is_stale(&claim.value, now)
}

/// The state of a date from its run record; a succeeded run is refined by
/// [`check_succeeded`].
async fn run_state(
    store: &AnyStore,
    layout: &Layout,
    record: &RunRecord,
    clock: &dyn Clock,
) -> Result<DateState, SessionError> {
    let run_id = record.run_id.clone();
    Ok(match record.status {
        RunStatus::Failed => DateState::Failed {
            run_id,
            check: (record.refused_by()).map(|(stage, check)| format!("{stage}/{check}")),
        },
        RunStatus::Succeeded => DateState::Succeeded { run_id },
        RunStatus::Running | RunStatus::Stopped => {
            match at_work(store, layout, record, clock).await? {
                Some(lease) => DateState::Running {
                    run_id,
                    holder: lease.holder.to_string(),
                },
                None => DateState::Stopped { run_id },
            }
        }
    })
}

fn unix(time: std::time::SystemTime) -> u64 {
    time.duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A date named on the command line (`--from`, `--to`): a batch id of the schedule, an
/// RFC 3339 time, or a civil date (its midnight on the schedule's wall clock). A name that
/// is none of these, or a time before the schedule's start, is an error saying why.
pub fn date_bound(workflow: &Workflow, text: &str) -> Result<jiff::Timestamp, String> {
    let schedule = workflow
        .schedule
        .as_ref()
        .ok_or_else(|| format!("workflow `{}` has no `schedule:`", workflow.name))?;
    let at = if let Some(interval) = calendar::interval_of_batch(schedule, text) {
        interval.start
    } else if let Ok(time) = text.parse::<jiff::Timestamp>() {
        time
    } else if let Ok(date) = text.parse::<jiff::civil::Date>() {
        date.to_zoned(schedule.timezone.clone())
            .map_err(|e| format!("`{text}`: {e}"))?
            .timestamp()
    } else {
        return Err(format!(
            "`{text}` is neither a batch id of the schedule (written `{}`), an RFC 3339 time nor a date such as 2026-11-30",
            schedule.batch
        ));
    };
    if schedule.end.is_some_and(|end| at > end) {
        return Err(format!(
            "`{text}` is after the end of the schedule of workflow `{}`",
            workflow.name
        ));
    }
    Ok(at)
}
