//! What the scheduler does with each logical date, decided from the dates' states alone:
//! pure functions, unit-tested without a store. `tick` and `backfill` read the states
//! ([`super::dates::date_states`]), decide here, then carry the decisions out with one
//! claim protocol and the shared run slots.

use super::backfill::{Reprocess, Step};
use super::dates::{DateInfo, DateState};
use super::tick::{Action, DatePlan};
use respawn_core::plan::calendar;
use respawn_core::workflow::Catchup;
use std::collections::{BTreeMap, BTreeSet};

/// What a tick does with a date it has a run or a claim for; `None` when it is done
/// (succeeded, stale or recorded missed). A date never run is left to the catch-up rule.
pub fn tick_action(state: &DateState) -> Option<Action> {
    Some(match state {
        DateState::Missing => return None,
        // A changed stage is not the scheduler's business: `backfill --reprocess stale`.
        DateState::Missed | DateState::Succeeded { .. } | DateState::Stale { .. } => return None,
        DateState::Claimed {
            holder,
            stale: true,
        } => Action::Retake {
            holder: holder.clone(),
        },
        DateState::Claimed {
            holder,
            stale: false,
        } => Action::Claimed {
            holder: holder.clone(),
        },
        DateState::Running { holder, .. } => Action::Running {
            holder: holder.clone(),
        },
        DateState::Stopped { run_id } => Action::Resume {
            run_id: run_id.clone(),
        },
        DateState::Failed { run_id } => Action::Failed {
            run_id: run_id.clone(),
        },
        DateState::Incomplete { run_id, .. } => Action::Rebuild {
            run_id: run_id.clone(),
        },
    })
}

/// A tick's plan: the due dates (oldest first) it has something to do with, and how many
/// are done. Dates never run go through the catch-up rule: the latest ones run, the
/// others are recorded missed.
pub fn tick(dates: Vec<DateInfo>, catchup: Catchup) -> (Vec<DatePlan>, usize) {
    let due: Vec<calendar::Interval> = dates.iter().map(|d| d.interval).collect();
    let mut plans = Vec::new();
    let mut pending = BTreeMap::new();
    let mut settled = BTreeSet::new();
    let mut done = 0;
    for date in dates {
        if date.state == DateState::Missing {
            pending.insert(date.interval.start, date);
            continue;
        }
        settled.insert(date.interval.start);
        match tick_action(&date.state) {
            None => done += 1,
            Some(action) => plans.push(DatePlan::of(date, action)),
        }
    }
    let catch_up = calendar::catch_up(&due, &settled, catchup);
    let reason = match catchup {
        Catchup::All => "catch-up".to_string(),
        Catchup::Latest(n) => format!("catchup: {n} runs only the {n} latest missed dates"),
    };
    for interval in &catch_up.missed {
        if let Some(date) = pending.remove(&interval.start) {
            let action = Action::Miss {
                reason: reason.clone(),
            };
            plans.push(DatePlan::of(date, action));
        }
    }
    for interval in &catch_up.run {
        if let Some(date) = pending.remove(&interval.start) {
            plans.push(DatePlan::of(date, Action::Run));
        }
    }
    plans.sort_by_key(|plan| plan.start());
    (plans, done)
}

/// What a backfill in mode `reprocess` does with a date in `state`. A date someone is at
/// work on is left to them whatever the mode.
pub fn backfill_step(state: &DateState, reprocess: Reprocess) -> Step {
    if let DateState::Running { holder, .. }
    | DateState::Claimed {
        holder,
        stale: false,
    } = state
    {
        return Step::Busy {
            holder: holder.clone(),
        };
    }
    let selected = match reprocess {
        Reprocess::Missing => matches!(
            state,
            DateState::Missing
                | DateState::Missed
                | DateState::Claimed { .. }
                | DateState::Stopped { .. }
                | DateState::Failed { .. }
                | DateState::Incomplete { .. }
        ),
        Reprocess::Failed => matches!(state, DateState::Failed { .. }),
        Reprocess::Stale => matches!(state, DateState::Stale { .. }),
        Reprocess::All => true,
    };
    match (selected, reprocess, state) {
        (false, _, _) => Step::Skip,
        (true, Reprocess::All, DateState::Succeeded { .. } | DateState::Stale { .. }) => {
            Step::Replace
        }
        (true, _, _) => Step::Run,
    }
}

#[cfg(test)]
mod tests;
