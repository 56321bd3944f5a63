//! Batched deletes: DeleteObjects of up to 1,000 keys, several in flight, and the keys a
//! successful response reports as throttled sent again with jittered backoff (whole
//! requests are retried by retry.rs, which cannot see those).

use super::S3Store;
use super::errors::code_kind;
use crate::store::{Result, Store, StoreError, StoreErrorKind};
use aws_sdk_s3::operation::delete_objects::DeleteObjectsOutput;
use aws_sdk_s3::types::{Delete, ObjectIdentifier};
use backon::BackoffBuilder;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

impl S3Store {
    /// One DeleteObjects request of at most 1,000 keys, with the keys that come back
    /// throttled or failed transiently sent again after a jittered backoff.
    async fn delete_batch(&self, mut keys: Vec<String>) -> Result<()> {
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(50))
            .with_max_delay(Duration::from_secs(5))
            .with_max_times(8)
            .with_jitter()
            .build();
        loop {
            let delete = self.delete_request(&keys)?;
            let first = self.locate(self.relative(&keys[0]));
            // Retried already for as long as the store's patience allows when it fails.
            let output = self
                .retrying(|_| async {
                    self.client
                        .delete_objects()
                        .bucket(&self.bucket)
                        .delete(delete.clone())
                        .send()
                        .await
                        .map_err(|e| self.error("DeleteObjects", first.clone(), e))
                })
                .await?;
            let Some((retry, error)) = self.throttled(&output)? else {
                return Ok(());
            };
            match delays.next() {
                Some(delay) => {
                    tracing::debug!(
                        keys = retry.len(),
                        ?delay,
                        "DeleteObjects throttled; retrying"
                    );
                    tokio::time::sleep(delay).await;
                    keys = retry;
                }
                None => return Err(error),
            }
        }
    }

    /// The DeleteObjects request of `keys` (quiet: only failures come back).
    fn delete_request(&self, keys: &[String]) -> Result<Delete> {
        let invalid = |e: aws_sdk_s3::error::BuildError| StoreError::Service {
            operation: "DeleteObjects",
            object: self.describe(),
            detail: e.to_string(),
            kind: StoreErrorKind::Configuration,
        };
        let objects = keys
            .iter()
            .map(|k| ObjectIdentifier::builder().key(k).build())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(invalid)?;
        Delete::builder()
            .set_objects(Some(objects))
            .quiet(true)
            .build()
            .map_err(invalid)
    }

    /// The keys DeleteObjects failed to delete for a passing reason (to try again, with the
    /// error to give if they still fail); an error for a key the server refused.
    fn throttled(&self, output: &DeleteObjectsOutput) -> Result<Option<(Vec<String>, StoreError)>> {
        let mut retry = Vec::new();
        let mut retry_kind = StoreErrorKind::Throttled;
        for failed in output.errors() {
            let code = failed.code().unwrap_or("unknown");
            let key = failed.key().unwrap_or_default().to_owned();
            // A code no one knows is not worth retrying: the server refused the key.
            let kind = code_kind(code).unwrap_or(StoreErrorKind::Configuration);
            if !kind.is_transient() {
                return Err(StoreError::Service {
                    operation: "DeleteObjects",
                    object: self.locate(self.relative(&key)),
                    detail: format!("{code}: {}", failed.message().unwrap_or_default()),
                    kind,
                });
            }
            if retry.is_empty() {
                retry_kind = kind;
            }
            retry.push(key);
        }
        if retry.is_empty() {
            return Ok(None);
        }
        let error = StoreError::Service {
            operation: "DeleteObjects",
            object: self.locate(self.relative(&retry[0])),
            detail: format!(
                "{} keys still throttled (SlowDown) after retries",
                retry.len()
            ),
            kind: retry_kind,
        };
        Ok(Some((retry, error)))
    }
}

/// DeleteObjects requests in flight, at most `delete_concurrency` at once.
pub(super) struct Deletions {
    store: S3Store,
    limit: Arc<Semaphore>,
    tasks: JoinSet<Result<()>>,
}

impl Deletions {
    pub(super) fn new(store: &S3Store) -> Deletions {
        Deletions {
            limit: Arc::new(Semaphore::new(store.transfer.delete_concurrency.max(1))),
            store: store.clone(),
            tasks: JoinSet::new(),
        }
    }

    /// Sends one batch of at most 1,000 full keys, waiting for room first.
    pub(super) async fn send(&mut self, keys: Vec<String>) {
        let permit = self
            .limit
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore is never closed");
        let store = self.store.clone();
        self.tasks.spawn(async move {
            let _permit = permit;
            store.delete_batch(keys).await
        });
    }

    /// Waits for every batch; the first error wins (`earlier`, if given, first of all).
    pub(super) async fn finish(mut self, earlier: Option<StoreError>) -> Result<()> {
        let mut first_error = earlier;
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                // Cancelled: the runtime is shutting down, and drops this task with it.
                Err(_) => std::future::pending().await,
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
