//! What the run history says of a workflow ([`respawn_core::learn`]), read from the store
//! with the read side's policy for records that do not read: named and skipped, never a
//! crash or a silent wrong number. A run's own plan reads `learned.json` only
//! ([`latest_runs`]): one read, however many runs the workflow has had.

use super::runs::list_runs;
use crate::ledger::{Layout, read_learned};
use crate::store::{AnyStore, StoreError};
use respawn_core::learn::{History, learn};
use respawn_core::workflow::Workflow;

/// The learned figures, and the runs left out with why.
#[derive(Clone, Debug)]
pub struct Learned {
    pub history: History,
    /// Each run that did not read, naming its object.
    pub skipped: Vec<String>,
}

/// Learns from the latest runs of `workflow` in `store`: from `learned.json` (one read),
/// or, in a store no run has added itself to yet or where that object does not read (it
/// is named), from every readable run record.
pub async fn history(store: &AnyStore, workflow: &Workflow) -> Result<Learned, StoreError> {
    let layout = Layout::new(&workflow.name);
    let mut skipped = Vec::new();
    match read_learned(store, &layout).await {
        Ok(Some(runs)) => {
            return Ok(Learned {
                history: learn(workflow, &runs),
                skipped,
            });
        }
        Ok(None) => {}
        Err(error @ StoreError::Corrupt { .. }) => skipped.push(error.to_string()),
        Err(other) => return Err(other),
    }
    let listing = list_runs(store, &layout).await?;
    skipped.extend(
        (listing.without_record.iter())
            .chain(&listing.unreadable)
            .map(ToString::to_string),
    );
    Ok(Learned {
        history: learn(workflow, &listing.records),
        skipped,
    })
}

/// The history a run plans from: `learned.json` alone, one read (none before any run has
/// added itself). A damaged object is an error naming it.
pub async fn latest_runs(store: &AnyStore, workflow: &Workflow) -> Result<History, StoreError> {
    let runs = read_learned(store, &Layout::new(&workflow.name)).await?;
    Ok(learn(workflow, runs.as_deref().unwrap_or_default()))
}
