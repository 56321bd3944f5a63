//! The run a command names: a workflow file or name (its latest run, of a batch when one
//! is given) or a run id; and the workflows a store holds.

use super::runs::list_runs;
use crate::ledger::{Layout, RunRecord, check_batch, find_run};
use crate::store::{AnyStore, Store, StoreError};

/// Which run a command names: the latest run of a workflow (file or name; of `batch` when
/// given), or a run id. `None` when there is no such run.
pub async fn find(
    store: &AnyStore,
    target: &str,
    batch: Option<&str>,
) -> Result<Option<(Layout, RunRecord)>, StoreError> {
    let path = std::path::Path::new(target);
    let name = if path.is_file() {
        respawn_core::workflow::load(path).ok().map(|w| w.name)
    } else {
        respawn_core::workflow::check_name(target)
            .is_ok()
            .then(|| target.to_string())
    };
    if let Some(name) = name {
        let layout = Layout::new(&name);
        let latest = list_runs(store, &layout)
            .await?
            .for_decision()?
            .into_iter()
            .rfind(|r| batch.is_none_or(|b| r.batch == b));
        if let Some(record) = latest {
            return Ok(Some((layout, record)));
        }
    }
    if batch.is_some() {
        return Ok(None);
    }
    by_run_id(store, target).await
}

/// The run with id `run_id`, of whichever workflow has it; `None` when no workflow has
/// it (or `run_id` cannot be a run id).
pub async fn by_run_id(
    store: &AnyStore,
    run_id: &str,
) -> Result<Option<(Layout, RunRecord)>, StoreError> {
    if check_batch(run_id).is_err() {
        return Ok(None);
    }
    Ok(find_run(store, run_id).await?.map(|(l, r)| (l, r.value)))
}

/// The names of the workflows that have objects in the store, sorted.
pub async fn workflows(store: &AnyStore) -> Result<Vec<String>, StoreError> {
    Ok(store
        .list_dirs("")
        .await?
        .into_iter()
        .filter(|name| respawn_core::workflow::check_name(name).is_ok())
        .collect())
}
