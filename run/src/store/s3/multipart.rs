//! Multipart upload of a large file: parts read straight from the file at their offsets,
//! several in flight, and the upload aborted if a part fails.

use super::S3Store;
use super::objects::READ_BUFFER;
use super::retry::may_have_applied;
use crate::store::{Result, Store, StoreError, StoreErrorKind};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

impl S3Store {
    pub(super) async fn upload_multipart(
        &self,
        path: &Path,
        full_key: &str,
        size: u64,
    ) -> Result<()> {
        let upload_id = self.start_upload(full_key).await?;
        let result = self.upload_parts(path, full_key, size, &upload_id).await;
        let parts = match result {
            Ok(parts) => parts,
            Err(e) => {
                // Best effort: an unfinished upload costs storage until a lifecycle rule
                // removes it.
                let _ = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(full_key)
                    .upload_id(&upload_id)
                    .send()
                    .await;
                return Err(e);
            }
        };
        self.complete_upload(full_key, &upload_id, parts, size)
            .await
    }

    /// Starts a multipart upload to `full_key` with the key's tags; returns its id.
    pub(super) async fn start_upload(&self, full_key: &str) -> Result<String> {
        let object = self.locate(self.relative(full_key));
        let created = self
            .retrying(|_| async {
                self.client
                    .create_multipart_upload()
                    .bucket(&self.bucket)
                    .key(full_key)
                    .set_tagging(self.tagging(full_key))
                    .send()
                    .await
                    .map_err(|e| self.error("CreateMultipartUpload", object.clone(), e))
            })
            .await?;
        created
            .upload_id()
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Service {
                operation: "CreateMultipartUpload",
                object,
                detail: "the response has no upload id".into(),
                kind: StoreErrorKind::Corrupt,
            })
    }

    /// Completes a multipart upload of `size` bytes to `full_key`, retried as every request
    /// is. When an earlier try completed it and its answer was lost, the upload is gone and
    /// the object has the expected size: that is success.
    pub(super) async fn complete_upload(
        &self,
        full_key: &str,
        upload_id: &str,
        parts: Vec<CompletedPart>,
        size: u64,
    ) -> Result<()> {
        let object = self.locate(self.relative(full_key));
        let completed = CompletedMultipartUpload::builder()
            .set_parts(Some(parts))
            .build();
        let maybe_applied = AtomicBool::new(false);
        let done = self
            .retrying(|_| async {
                let result = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(full_key)
                    .upload_id(upload_id)
                    .multipart_upload(completed.clone())
                    .send()
                    .await
                    .map_err(|e| self.error("CompleteMultipartUpload", object.clone(), e));
                if result.as_ref().is_err_and(may_have_applied) {
                    maybe_applied.store(true, Ordering::Relaxed);
                }
                result
            })
            .await;
        match done {
            Ok(_) => Ok(()),
            // An earlier try completed the upload and its answer was lost: the upload is
            // gone and the object has the file's size.
            Err(StoreError::NotFound { .. }) if maybe_applied.load(Ordering::Relaxed) => {
                match self.head(self.relative(full_key)).await {
                    Ok(meta) if meta.size == size => Ok(()),
                    _ => Err(StoreError::Service {
                        operation: "CompleteMultipartUpload",
                        object,
                        detail: "the upload vanished and the object is not the file uploaded"
                            .into(),
                        kind: StoreErrorKind::Transient,
                    }),
                }
            }
            Err(other) => Err(other),
        }
    }

    async fn upload_parts(
        &self,
        path: &Path,
        full_key: &str,
        size: u64,
        upload_id: &str,
    ) -> Result<Vec<CompletedPart>> {
        // S3 allows at most 10,000 parts.
        let part_size = self
            .transfer
            .part_size
            .max(size.div_ceil(10_000))
            .max(5 << 20);
        let count = size.div_ceil(part_size);
        let limit = Arc::new(Semaphore::new(self.transfer.part_concurrency.max(1)));
        let mut tasks = JoinSet::new();
        for index in 0..count {
            let offset = index * part_size;
            let length = part_size.min(size - offset);
            let permit = limit
                .clone()
                .acquire_owned()
                .await
                .expect("semaphore is never closed");
            let store = self.clone();
            let path = path.to_path_buf();
            let full_key = full_key.to_owned();
            let upload_id = upload_id.to_owned();
            tasks.spawn(async move {
                let _permit = permit;
                let object = store.locate(store.relative(&full_key));
                let number = i32::try_from(index + 1).unwrap_or(i32::MAX);
                let part = store
                    .retrying(|_| async {
                        let body = ByteStream::read_from()
                            .path(&path)
                            .offset(offset)
                            .length(Length::Exact(length))
                            .buffer_size(READ_BUFFER)
                            .build()
                            .await
                            .map_err(|e| StoreError::Io {
                                object: path.display().to_string(),
                                source: std::io::Error::other(e),
                            })?;
                        store
                            .client
                            .upload_part()
                            .bucket(&store.bucket)
                            .key(&full_key)
                            .upload_id(&upload_id)
                            .part_number(number)
                            .content_length(length as i64)
                            .body(body)
                            .send()
                            .await
                            .map_err(|e| store.error("UploadPart", object.clone(), e))
                    })
                    .await?;
                Ok::<_, StoreError>(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(part.e_tag().map(str::to_owned))
                        .build(),
                )
            });
        }
        let mut parts = Vec::with_capacity(count as usize);
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(part) => parts.push(part?),
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                // Cancelled: the runtime is shutting down, and drops this task with it.
                Err(_) => std::future::pending().await,
            }
        }
        parts.sort_by_key(|p| p.part_number());
        Ok(parts)
    }
}
