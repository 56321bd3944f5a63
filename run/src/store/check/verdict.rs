//! Where a check's verdict is kept: per endpoint and bucket, since atomicity is the
//! server's, not a prefix's. On S3 it is the object [`VERDICT_KEY`] at the bucket's root,
//! so a store refused at `s3://b/team` is refused at `s3://b/other` too; credentials
//! allowed only under their own prefix keep it there instead (and it is looked for there
//! when the bucket's root is absent or denied). A local store keeps it at its root.

use super::Verdict;
use crate::store::{AnyStore, PutMode, Result, Store, StoreError, StoreErrorKind};

/// Where the verdict of the last check is kept, relative to the bucket's root (or the
/// store's, see the module).
pub const VERDICT_KEY: &str = ".respawn-check/verdict.json";

/// The store rooted where the verdict belongs: the bucket's root, or the store itself.
fn home(store: &AnyStore) -> Option<AnyStore> {
    match store {
        AnyStore::S3(s3) if s3.has_prefix() => Some(AnyStore::S3(s3.at_bucket_root())),
        _ => None,
    }
}

/// What a verdict is about: the bucket on its endpoint (`s3://b/ at http://...`), or the
/// local store.
pub fn checked_place(store: &AnyStore) -> String {
    match store {
        AnyStore::S3(s3) => format!("{} at {}", s3.at_bucket_root().describe(), s3.endpoint()),
        AnyStore::Local(_) => store.describe(),
    }
}

fn denied(error: &StoreError) -> bool {
    error.kind() == StoreErrorKind::Access
}

/// Stores the verdict, replacing the last one: at the bucket's root, or under the store's
/// prefix when the root is denied.
pub async fn remember(store: &AnyStore, verdict: &Verdict) -> Result<()> {
    let body = serde_json::to_vec_pretty(verdict).map_err(|e| StoreError::Io {
        object: store.locate(VERDICT_KEY),
        source: std::io::Error::other(e),
    })?;
    if let Some(home) = home(store) {
        match home
            .put(VERDICT_KEY, body.clone(), PutMode::Overwrite)
            .await
        {
            Ok(_) => return Ok(()),
            Err(error) if denied(&error) => {}
            Err(error) => return Err(error),
        }
    }
    store.put(VERDICT_KEY, body, PutMode::Overwrite).await?;
    Ok(())
}

/// The verdict of the last check of this endpoint and bucket, if there was one.
pub async fn last_verdict(store: &AnyStore) -> Result<Option<Verdict>> {
    if let Some(home) = home(store) {
        match read(&home).await {
            Ok(Some(verdict)) => return Ok(Some(verdict)),
            Ok(None) => {}
            Err(error) if denied(&error) => {}
            Err(error) => return Err(error),
        }
    }
    read(store).await
}

async fn read<S: Store>(store: &S) -> Result<Option<Verdict>> {
    match store.get(VERDICT_KEY).await {
        Ok((bytes, _)) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt {
                    object: store.locate(VERDICT_KEY),
                    detail: format!("not a check verdict: {e}"),
                })
        }
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}
