//! The latest run of a batch, from its `latest` object (see `ledger::latest`): one or two
//! reads per date, however many runs the workflow has had.

use super::runs::list_runs;
use crate::ledger::{
    Layout, RunRecord, Versioned, build_index, index_built, read_latest, read_run,
};
use crate::store::{AnyStore, StoreError};
use std::collections::HashMap;
use std::time::SystemTime;

/// How the latest run of each batch is found: by its `latest` object, or, in a store
/// written before those existed and opened read-only, from one listing of every run.
#[derive(Clone, Debug)]
pub struct RunIndex {
    /// The latest run of each batch, from the listing; `None` once the index is built.
    listed: Option<HashMap<String, String>>,
}

impl RunIndex {
    /// For a command that only reads: never writes, lists the runs once if the store's
    /// index was never built.
    pub async fn open(store: &AnyStore, layout: &Layout) -> Result<RunIndex, StoreError> {
        if index_built(store, layout).await? {
            return Ok(RunIndex { listed: None });
        }
        let records = list_runs(store, layout).await?.for_decision()?;
        let listed = records
            .into_iter()
            .map(|r| (r.batch, r.run_id))
            .collect::<HashMap<_, _>>();
        Ok(RunIndex {
            listed: Some(listed),
        })
    }

    /// For a command that decides and writes (`run`, `tick`, `backfill`): builds the index
    /// if it was never built, so that this and every later command reads one object per
    /// batch.
    pub async fn open_to_write(
        store: &AnyStore,
        layout: &Layout,
        now: SystemTime,
    ) -> Result<RunIndex, StoreError> {
        if !index_built(store, layout).await? {
            let records = list_runs(store, layout).await?.for_decision()?;
            build_index(store, layout, &records, now).await?;
        }
        Ok(RunIndex { listed: None })
    }

    /// The latest run of `batch` with its version, or `None` when the batch never ran. A
    /// `latest` object whose run has no record was written by a start that got no further:
    /// the batch has no run. A record that does not read is an error naming it.
    pub async fn latest(
        &self,
        store: &AnyStore,
        layout: &Layout,
        batch: &str,
    ) -> Result<Option<Versioned<RunRecord>>, StoreError> {
        let run_id = match &self.listed {
            Some(listed) => listed.get(batch).cloned(),
            None => read_latest(store, layout, batch).await?,
        };
        let Some(run_id) = run_id else {
            return Ok(None);
        };
        match read_run(store, layout, &run_id).await {
            Ok(record) => Ok(Some(record)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }
}
