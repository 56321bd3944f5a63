//! The one read side. Every command that asks of the store "which run is this", "is it
//! done", "is someone at work on it" or "what does a damaged record mean" asks here, so
//! `status`, `history`, `report`, `cost`, `ui`, `batches`, `tick`, `run` and `gc` give the
//! same answer to the same question.
//!
//! - [`runs`]: a workflow's run records with the one policy for those that do not read:
//!   a run with no record at all is skipped and named (nothing can resume it); a record
//!   that exists and does not read stops every command that decides from it, and is
//!   named in every view that lists runs. Nothing is dropped silently.
//! - [`target`]: the run a command names (a workflow file or name, a run id, a batch).
//! - [`latest`]: the latest run of one batch, without listing every run.
//! - [`liveness`]: whether an orchestrator is at work on a run.
//! - [`complete`]: whether a succeeded batch is still complete.
//! - [`load`]: one run with its events, kept workflow and log tails, for the reports.
//! - [`history`]: what the runs measured, as the figures plans learn from.

pub mod complete;
pub mod history;
pub mod latest;
pub mod liveness;
pub mod load;
pub mod runs;
pub mod target;

pub use crate::ledger::LeaseRecord;
pub use complete::{Completeness, completeness};
pub use history::{Learned, history, latest_runs};
pub use latest::RunIndex;
pub use liveness::{Liveness, at_work, lease_is_live, liveness};
pub use load::{LoadedRun, kept_workflow, load, load_with, record, run_cost};
pub use runs::{Damaged, RunListing, list_runs};
pub use target::{by_run_id, find, workflows};
