//! A workflow's run records, and the one policy for those that do not read.

use crate::ledger::{Layout, RunRecord, is_missing_record, runs};
use crate::store::{AnyStore, StoreError};

/// Every run of a workflow as the store has it, oldest first.
#[derive(Debug, Default)]
pub struct RunListing {
    /// The records that read.
    pub records: Vec<RunRecord>,
    /// Runs that have objects in the store but no record: left by a crash before the
    /// record was written, or whose record was deleted by hand. Nothing can resume them.
    pub without_record: Vec<StoreError>,
    /// Records that exist and do not read (damaged, or written by a newer respawn).
    pub unreadable: Vec<StoreError>,
}

/// One run that did not read, as a view shows it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Damaged {
    /// What went wrong, naming the object.
    pub problem: String,
    /// The run has no record at all (`false`: its record does not read).
    pub without_record: bool,
}

impl RunListing {
    /// For a command that decides from the runs (`run`, `tick`, `backfill`, `batches`,
    /// `status`, `gc`): the records, or the first unreadable record as the error that
    /// names it, since deciding without it could start its batch anew and lose its
    /// checkpoints. Runs without a record are named in a warning and skipped.
    pub fn for_decision(self) -> Result<Vec<RunRecord>, StoreError> {
        if let Some(error) = self.unreadable.into_iter().next() {
            return Err(error);
        }
        for error in &self.without_record {
            tracing::warn!("skipped a run: {error}");
        }
        Ok(self.records)
    }

    /// For a view that lists runs (`history`, `ui`): every run that did not read, named.
    pub fn damaged(&self) -> Vec<Damaged> {
        let named = |errors: &[StoreError], without_record| {
            errors
                .iter()
                .map(|e| Damaged {
                    problem: e.to_string(),
                    without_record,
                })
                .collect::<Vec<_>>()
        };
        let mut all = named(&self.unreadable, false);
        all.extend(named(&self.without_record, true));
        all
    }
}

/// Reads every run record of the workflow of `layout` (32 at a time).
pub async fn list_runs(store: &AnyStore, layout: &Layout) -> Result<RunListing, StoreError> {
    let mut listing = RunListing::default();
    for record in runs(store, layout).await? {
        match record {
            Ok(record) => listing.records.push(record),
            Err(error) if is_missing_record(&error) => listing.without_record.push(error),
            Err(error) => listing.unreadable.push(error),
        }
    }
    Ok(listing)
}
