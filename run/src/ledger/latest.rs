//! Which run of a batch is the latest: `<workflow>/latest/<batch>.json`, written before the
//! record of each new run of the batch (under the batch's lease, so by one writer at a
//! time). Deciding about one date then costs a read or two, not a listing of every run the
//! workflow ever had.
//!
//! Runs made before these objects existed have none: the first command that needs them
//! lists the runs once, writes the missing ones, then `<workflow>/latest-index.json`. From
//! then on a batch without a `latest` object has no run.

use super::{Layout, parse_json, read_versioned, timestamp, to_json};
use crate::store::{PutMode, Store, StoreError};
use respawn_core::contract::{FORMAT, RunRecord};
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Latest {
    pub format: u32,
    pub workflow: String,
    pub batch: String,
    pub run_id: String,
}

/// That every run of the workflow has its `latest` object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatestIndex {
    pub format: u32,
    pub workflow: String,
    pub built_at: String,
}

/// Records `run_id` as the latest run of `batch`.
pub async fn write_latest<S: Store>(
    store: &S,
    layout: &Layout,
    batch: &str,
    run_id: &str,
) -> Result<(), StoreError> {
    let latest = Latest {
        format: FORMAT,
        workflow: layout.workflow().into(),
        batch: batch.into(),
        run_id: run_id.into(),
    };
    let key = layout.latest(batch);
    store
        .put(&key, to_json(&latest), PutMode::Overwrite)
        .await
        .map(|_| ())
}

/// The id of the latest run of `batch` as its `latest` object says; `Ok(None)` when it has
/// none (see [`index_built`]). An object that does not read, or names another batch, is an
/// error naming it.
pub async fn read_latest<S: Store>(
    store: &S,
    layout: &Layout,
    batch: &str,
) -> Result<Option<String>, StoreError> {
    let key = layout.latest(batch);
    let Some(found) = read_versioned::<S, Latest>(store, &key).await? else {
        return Ok(None);
    };
    let latest = found.value;
    if latest.batch != batch || latest.workflow != layout.workflow() || latest.format > FORMAT {
        return Err(StoreError::Corrupt {
            object: store.locate(&key),
            detail: format!(
                "it names batch `{}` of workflow `{}` (format {}), not batch `{batch}` of `{}`",
                latest.batch,
                latest.workflow,
                latest.format,
                layout.workflow()
            ),
        });
    }
    Ok(Some(latest.run_id))
}

/// Whether every run of the workflow has its `latest` object.
pub async fn index_built<S: Store>(store: &S, layout: &Layout) -> Result<bool, StoreError> {
    let key = layout.latest_index();
    match store.get(&key).await {
        Ok((bytes, _)) => {
            let _: LatestIndex = parse_json(store.locate(&key), &bytes)?;
            Ok(true)
        }
        Err(StoreError::NotFound { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

/// Writes the `latest` object of each batch of `records` (oldest first) that has none, then
/// the index. An object already there was written by a run that started meanwhile, which
/// is newer: it is kept.
pub async fn build_index<S: Store>(
    store: &S,
    layout: &Layout,
    records: &[RunRecord],
    now: SystemTime,
) -> Result<(), StoreError> {
    let mut latest = std::collections::BTreeMap::new();
    for record in records {
        latest.insert(record.batch.as_str(), record.run_id.as_str());
    }
    for (batch, run_id) in latest {
        let object = Latest {
            format: FORMAT,
            workflow: layout.workflow().into(),
            batch: batch.into(),
            run_id: run_id.into(),
        };
        match store
            .put(&layout.latest(batch), to_json(&object), PutMode::Create)
            .await
        {
            Ok(_) | Err(StoreError::AlreadyExists { .. }) => {}
            Err(other) => return Err(other),
        }
    }
    let index = LatestIndex {
        format: FORMAT,
        workflow: layout.workflow().into(),
        built_at: timestamp(now),
    };
    match store
        .put(&layout.latest_index(), to_json(&index), PutMode::Create)
        .await
    {
        Ok(_) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(other) => Err(other),
    }
}
