//! What the run history says of a workflow ([`respawn_core::learn`]), read from the store
//! with the read side's policy for records that do not read: named and skipped, never a
//! crash or a silent wrong number.

use super::runs::list_runs;
use crate::ledger::Layout;
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

/// Learns from every readable run record of `workflow` in `store`.
pub async fn history(store: &AnyStore, workflow: &Workflow) -> Result<Learned, StoreError> {
    let listing = list_runs(store, &Layout::new(&workflow.name)).await?;
    let skipped = listing
        .without_record
        .iter()
        .chain(&listing.unreadable)
        .map(ToString::to_string)
        .collect();
    Ok(Learned {
        history: learn(workflow, &listing.records),
        skipped,
    })
}
