//! The conditional-write probe, run once when a store is opened.

use super::S3Store;
use crate::store::{ETag, PutMode, Result, Store, StoreError};

impl S3Store {
    /// Checks that the server enforces `If-None-Match: *` and `If-Match`: some S3-compatible
    /// servers accept the headers and overwrite anyway, and then two orchestrators could
    /// both believe they hold the lease.
    pub async fn probe_conditional_writes(&self) -> Result<()> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let key = format!(".respawn-probe/{}-{nanos}", std::process::id());
        let not_enforced = |detail: &str| StoreError::ConditionalWritesNotEnforced {
            endpoint: self.endpoint.clone(),
            detail: detail.into(),
        };
        let first = self.put(&key, b"probe 1".to_vec(), PutMode::Create).await?;
        let verdict = match self.put(&key, b"probe 2".to_vec(), PutMode::Create).await {
            Ok(_) => Err(not_enforced(
                "a second create-only put (If-None-Match: *) of an existing object succeeded",
            )),
            Err(StoreError::AlreadyExists { .. }) => {
                let stale = ETag(format!("\"{}\"", "0".repeat(32)));
                match self
                    .put(&key, b"probe 3".to_vec(), PutMode::Update(stale))
                    .await
                {
                    Ok(_) => Err(not_enforced("a put with a wrong If-Match ETag succeeded")),
                    Err(StoreError::PreconditionFailed { .. }) => {
                        match self
                            .put(&key, b"probe 4".to_vec(), PutMode::Update(first))
                            .await
                        {
                            Ok(_) => Ok(()),
                            Err(StoreError::PreconditionFailed { .. }) => Err(not_enforced(
                                "a put with the current ETag in If-Match was refused",
                            )),
                            Err(other) => Err(other),
                        }
                    }
                    Err(other) => Err(other),
                }
            }
            Err(other) => Err(other),
        };
        self.delete_many(std::slice::from_ref(&key)).await?;
        verdict
    }
}
