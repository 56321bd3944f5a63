//! `<workflow>/learned.json`: the figures of the workflow's latest runs (each stage's
//! time, size and fingerprint, the spot hours held and the losses), so that a run plans
//! from its history in one read, however many runs the workflow has had. Each run adds
//! itself when it ends (If-Match, so concurrent runs both count); the oldest fall out.

use super::{Layout, RunRecord, read_versioned, to_json, update_versioned};
use crate::store::{PutMode, Store, StoreError};

/// How many runs the object keeps: the learned figures use the latest 20 per stage.
pub const LEARNED_RUNS: usize = 40;

/// The runs kept, oldest first; `None` when no run has added itself yet.
pub async fn read_learned<S: Store>(
    store: &S,
    layout: &Layout,
) -> Result<Option<Vec<RunRecord>>, StoreError> {
    let read = read_versioned::<S, Vec<RunRecord>>(store, &layout.learned()).await?;
    Ok(read.map(|v| v.value))
}

/// What of a run the object keeps: the figures, not the logs, markets or messages.
fn trimmed(record: &RunRecord) -> RunRecord {
    let mut kept = record.clone();
    kept.markets.clear();
    kept.message = None;
    for stage in kept.stages.values_mut() {
        stage.log = None;
    }
    kept
}

/// Adds (or replaces) `record` among the runs kept. A damaged object is replaced: it
/// only holds copies of what the run records say.
pub async fn add_learned<S: Store>(
    store: &S,
    layout: &Layout,
    record: &RunRecord,
) -> Result<(), StoreError> {
    let key = layout.learned();
    let entry = trimmed(record);
    let change = |runs: &mut Vec<RunRecord>| {
        runs.retain(|r| r.run_id != entry.run_id);
        runs.push(entry.clone());
        runs.sort_by(|a, b| (&a.started_at, &a.run_id).cmp(&(&b.started_at, &b.run_id)));
        let extra = runs.len().saturating_sub(LEARNED_RUNS);
        runs.drain(..extra);
    };
    let reread = || async {
        read_versioned::<S, Vec<RunRecord>>(store, &key)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                object: store.locate(&key),
            })
    };
    for _ in 0..4 {
        match read_versioned::<S, Vec<RunRecord>>(store, &key).await {
            Ok(Some(mut current)) => {
                return update_versioned(store, &key, &mut current, change, reread).await;
            }
            Ok(None) | Err(StoreError::Corrupt { .. }) => {
                let mut runs = Vec::new();
                change(&mut runs);
                let mode = match store.head(&key).await {
                    Ok(meta) => meta.etag.map_or(PutMode::Overwrite, PutMode::Update),
                    Err(_) => PutMode::Create,
                };
                match store.put(&key, to_json(&runs), mode).await {
                    Ok(_) => return Ok(()),
                    // Someone else wrote it meanwhile: add to theirs.
                    Err(
                        StoreError::AlreadyExists { .. } | StoreError::PreconditionFailed { .. },
                    ) => {}
                    Err(other) => return Err(other),
                }
            }
            Err(other) => return Err(other),
        }
    }
    Err(StoreError::PreconditionFailed {
        object: store.locate(&key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LocalStore;
    use std::time::{Duration, SystemTime};

    #[tokio::test]
    async fn keeps_the_latest_runs_once_each_and_replaces_a_damaged_object() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let layout = Layout::new("wf");
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        for n in 0..LEARNED_RUNS + 5 {
            let at = start + Duration::from_secs(60 * n as u64);
            let mut record =
                RunRecord::new("wf", &format!("b{n}"), &format!("r{n:03}"), "spot", at);
            record.message = Some("a long message".into());
            add_learned(&store, &layout, &record).await.unwrap();
            // A run that ends twice (resumed) is kept once.
            add_learned(&store, &layout, &record).await.unwrap();
        }
        let runs = read_learned(&store, &layout).await.unwrap().unwrap();
        assert_eq!(runs.len(), LEARNED_RUNS);
        assert_eq!(runs[0].run_id, "r005");
        assert_eq!(
            runs.last().unwrap().run_id,
            format!("r{:03}", LEARNED_RUNS + 4)
        );
        assert!(
            runs.iter()
                .all(|r| r.message.is_none() && r.markets.is_empty())
        );
        store
            .put(
                &layout.learned(),
                b"[{ not json".to_vec(),
                PutMode::Overwrite,
            )
            .await
            .unwrap();
        assert!(matches!(
            read_learned(&store, &layout).await,
            Err(StoreError::Corrupt { .. })
        ));
        let record = RunRecord::new("wf", "b", "r999", "spot", start);
        add_learned(&store, &layout, &record).await.unwrap();
        let runs = read_learned(&store, &layout).await.unwrap().unwrap();
        assert_eq!(runs.len(), 1);
    }
}
