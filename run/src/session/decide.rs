//! What the scheduler does with each logical date, decided from the dates' states alone:
//! pure functions, unit-tested without a store. `tick` and `backfill` read the states
//! ([`super::dates::date_states`]), decide here, then carry the decisions out with one
//! claim protocol and the shared run slots.

use super::backfill::{Reprocess, Step};
use super::dates::{DateInfo, DateState};
use super::tick::{Action, DatePlan};

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
        DateState::Failed { run_id, .. } => Action::Failed {
            run_id: run_id.clone(),
        },
        DateState::Incomplete { run_id, .. } => Action::Rebuild {
            run_id: run_id.clone(),
        },
    })
}

/// What a tick decided about the dates it read.
#[derive(Debug, Default)]
pub struct TickDecision {
    /// The dates it acts on, in the order read.
    pub plans: Vec<DatePlan>,
    /// How many need nothing.
    pub done: usize,
    /// Dates not finished: the watermark lists them open.
    pub opened: Vec<String>,
    /// Dates finished (done, or failed and left to the user): no longer open.
    pub finished: Vec<String>,
}

/// A tick's decisions about the dates it read: each by [`tick_action`], except that a
/// date never run that a tick has taken up (`taken_up`: it is open, or due since the
/// watermark and kept by catch-up) runs.
pub fn tick(dates: Vec<DateInfo>, taken_up: impl Fn(&DateInfo) -> bool) -> TickDecision {
    let mut decision = TickDecision::default();
    for date in dates {
        let action = match tick_action(&date.state) {
            None if date.state == DateState::Missing && taken_up(&date) => Some(Action::Run),
            action => action,
        };
        match &action {
            None | Some(Action::Failed { .. }) => decision.finished.push(date.batch.clone()),
            Some(_) => decision.opened.push(date.batch.clone()),
        }
        match action {
            None => decision.done += 1,
            Some(action) => decision.plans.push(DatePlan::of(date, action)),
        }
    }
    decision
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
