//! How a date ended in a pass of the scheduler (`tick`, `schedule` or `backfill`): one
//! type for all of them, so that each says the same thing of the same end.

use crate::driver::RunEnd;
use serde::Serialize;

/// How a date ended in a pass of the scheduler.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// `run_id`: the run this tick drove (for its cost); none when it never opened.
    Succeeded {
        run_id: String,
    },
    Failed {
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        run_id: Option<String>,
    },
    Stopped {
        run_id: String,
    },
    /// Recorded as missed.
    Missed,
    /// Another process (a tick, a backfill) claimed it first.
    Taken {
        holder: String,
    },
    /// Nothing to do after all (the run had succeeded meanwhile).
    Nothing {
        message: String,
    },
    /// Left alone (running elsewhere, failed, just claimed by another tick).
    Left,
    /// Another orchestrator took the date's run first (its lease is held): it is at work
    /// on it, so this is no failure.
    Running {
        holder: String,
    },
    /// Left to a later tick: all `slots` runs the schedule allows are in progress.
    Busy {
        slots: u32,
    },
    /// Not started: the process is stopping (Ctrl-C, SIGTERM); a later pass runs it.
    Deferred,
}

impl Outcome {
    pub fn is_failure(&self) -> bool {
        matches!(self, Outcome::Failed { .. })
    }

    /// The run this tick drove to this end, if it opened one.
    pub fn run_id(&self) -> Option<&str> {
        match self {
            Outcome::Succeeded { run_id } | Outcome::Stopped { run_id } => Some(run_id),
            Outcome::Failed { run_id, .. } => run_id.as_deref(),
            _ => None,
        }
    }
}

/// The outcome of run `run_id` that ended with `end`.
pub fn ended(end: RunEnd, run_id: String) -> Outcome {
    let failed = |message: String| Outcome::Failed {
        message,
        run_id: Some(run_id.clone()),
    };
    match end {
        RunEnd::Succeeded => Outcome::Succeeded { run_id },
        RunEnd::Stopped => Outcome::Stopped { run_id },
        RunEnd::Failed { message, .. } | RunEnd::Io(message) => failed(message),
        RunEnd::Store(error) => failed(error.to_string()),
        RunEnd::Lease(error) => failed(error.to_string()),
    }
}
