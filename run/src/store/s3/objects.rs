//! The [`Store`] operations: objects read and written whole, lists page by page, files
//! streamed in and out, work tags. Large uploads go through multipart.rs, copies through
//! copy.rs, deletes through the batches of delete.rs.

use super::S3Store;
use super::delete::Deletions;
use super::errors::error_chain;
use super::retry::may_have_applied;
use crate::store::{
    Crc64, ETag, FileSum, ObjectMeta, PutMode, Result, SMALL_FILE, Store, StoreError,
    StoreErrorKind, WORK_TAG, check_prefix, checksum_file,
};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Tag, Tagging};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::io::AsyncWriteExt;

/// Bytes read from a file per system call while uploading (the SDK's default is 4 KiB,
/// which made the kernel, not the network, the bottleneck on loopback).
pub(super) const READ_BUFFER: usize = 256 << 10;

impl S3Store {
    /// One page of ListObjectsV2 under `prefix` (relative to the store), and the token
    /// of the next page if there is one.
    async fn list_page(
        &self,
        prefix: &str,
        delimited: bool,
        token: Option<String>,
        after: Option<&str>,
    ) -> Result<(
        aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output,
        Option<String>,
    )> {
        let mut request = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{}{prefix}", self.prefix))
            .set_continuation_token(token)
            .set_start_after(after.map(|a| format!("{}{a}", self.prefix)));
        if delimited {
            request = request.delimiter("/");
        }
        let output = self
            .retrying(|_| {
                let request = request.clone();
                async move {
                    request
                        .send()
                        .await
                        .map_err(|e| self.error("ListObjectsV2", self.locate(prefix), e))
                }
            })
            .await?;
        let next = match output.is_truncated() {
            Some(true) => output.next_continuation_token().map(str::to_owned),
            _ => None,
        };
        Ok((output, next))
    }

    /// One GetObject read whole; a body cut off is a transient error, like a failed request.
    async fn get_once(&self, full: &str, key: &str) -> Result<(Vec<u8>, ObjectMeta)> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await
            .map_err(|e| self.error("GetObject", self.locate(key), e))?;
        let etag = output.e_tag().map(|t| ETag(t.to_owned()));
        let bytes = output
            .body
            .collect()
            .await
            .map_err(|e| StoreError::Service {
                operation: "GetObject",
                object: self.locate(key),
                detail: format!("reading the body: {}", error_chain(&e)),
                kind: StoreErrorKind::Transient,
            })?;
        let bytes = bytes.into_bytes().to_vec();
        let meta = ObjectMeta {
            key: key.into(),
            size: bytes.len() as u64,
            etag,
        };
        Ok((bytes, meta))
    }
}

impl S3Store {
    /// One PutObject, its outcome typed for the mode.
    async fn put_once(
        &self,
        full: &str,
        key: &str,
        body: bytes::Bytes,
        mode: &PutMode,
    ) -> Result<ETag> {
        let mut request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(full)
            .set_tagging(self.tagging(full))
            .body(ByteStream::from(body));
        match mode {
            PutMode::Overwrite => {}
            PutMode::Create => request = request.if_none_match("*"),
            PutMode::Update(etag) => request = request.if_match(&etag.0),
        }
        match request.send().await {
            Ok(output) => Ok(ETag(output.e_tag().unwrap_or_default().to_owned())),
            Err(e) => match (self.error("PutObject", self.locate(key), e), mode) {
                (StoreError::PreconditionFailed { object }, PutMode::Create) => {
                    Err(StoreError::AlreadyExists { object })
                }
                // AWS answers If-Match on a missing object with 404.
                (StoreError::NotFound { object }, PutMode::Update(_)) => {
                    Err(StoreError::PreconditionFailed { object })
                }
                (other, _) => Err(other),
            },
        }
    }
}

impl S3Store {
    /// A small file: read whole, once, for its checksum and its PutObject.
    async fn upload_small(&self, path: &Path, key: &str, full: &str) -> Result<FileSum> {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|source| StoreError::Io {
                object: path.display().to_string(),
                source,
            })?;
        let mut sum = Crc64::default();
        sum.update(&bytes);
        self.retrying(|_| async {
            self.client
                .put_object()
                .bucket(&self.bucket)
                .key(full)
                .set_tagging(self.tagging(full))
                .body(ByteStream::from(bytes.clone()))
                .send()
                .await
                .map_err(|e| self.error("PutObject", self.locate(key), e))
        })
        .await?;
        Ok(sum.finish())
    }
}

/// A file that changed size between two reads of it.
fn changed_while_read(first: u64, then: u64) -> std::io::Error {
    std::io::Error::other(format!(
        "the file changed while it was uploaded ({first} bytes, then {then})"
    ))
}

impl Store for S3Store {
    fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn locate(&self, key: &str) -> String {
        format!("s3://{}/{}{key}", self.bucket, self.prefix)
    }

    async fn get(&self, key: &str) -> Result<(Vec<u8>, ObjectMeta)> {
        let full = self.full_key(key)?;
        self.retrying(|_| self.get_once(&full, key)).await
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let full = self.full_key(key)?;
        let output = self
            .retrying(|_| async {
                self.client
                    .head_object()
                    .bucket(&self.bucket)
                    .key(&full)
                    .send()
                    .await
                    .map_err(|e| self.error("HeadObject", self.locate(key), e))
            })
            .await?;
        Ok(ObjectMeta {
            key: key.into(),
            size: output.content_length().unwrap_or(0).max(0) as u64,
            etag: output.e_tag().map(|t| ETag(t.to_owned())),
        })
    }

    async fn put(&self, key: &str, body: Vec<u8>, mode: PutMode) -> Result<ETag> {
        let full = self.full_key(key)?;
        // Shared by every try, not copied (a COMMIT of a million files is 75 MB).
        let body = bytes::Bytes::from(body);
        // Whether a failed try may have been applied (see retry.rs).
        let maybe_applied = AtomicBool::new(false);
        let written = self
            .retrying(|_| async {
                let result = self.put_once(&full, key, body.clone(), &mode).await;
                if result.as_ref().is_err_and(may_have_applied) {
                    maybe_applied.store(true, Ordering::Relaxed);
                    if let Some(lost) = self.condition_lost(&full, key, &mode).await {
                        return Err(lost);
                    }
                }
                result
            })
            .await;
        match written {
            Err(
                lost @ (StoreError::AlreadyExists { .. } | StoreError::PreconditionFailed { .. }),
            ) if maybe_applied.load(Ordering::Relaxed) => {
                // An earlier try may be the one that made the condition fail: it won if
                // the object holds exactly these bytes.
                match self.get(key).await {
                    Ok((stored, meta)) if stored == body => match meta.etag {
                        Some(etag) => Ok(etag),
                        None => Err(lost),
                    },
                    Ok(_) | Err(StoreError::NotFound { .. }) => Err(lost),
                    Err(other) => Err(other),
                }
            }
            other => other,
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        check_prefix(prefix)?;
        let mut objects = Vec::new();
        let mut token = None;
        loop {
            let (output, next) = self.list_page(prefix, false, token, None).await?;
            for object in output.contents() {
                let Some(key) = object.key() else { continue };
                objects.push(ObjectMeta {
                    key: self.relative(key).to_owned(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    etag: object.e_tag().map(|t| ETag(t.to_owned())),
                });
            }
            token = next;
            if token.is_none() {
                return Ok(objects);
            }
        }
    }

    async fn list_after(&self, prefix: &str, after: Option<&str>) -> Result<Vec<ObjectMeta>> {
        check_prefix(prefix)?;
        let (output, _) = self.list_page(prefix, false, None, after).await?;
        Ok(output
            .contents()
            .iter()
            .filter_map(|object| {
                Some(ObjectMeta {
                    key: self.relative(object.key()?).to_owned(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    etag: object.e_tag().map(|t| ETag(t.to_owned())),
                })
            })
            .collect())
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        check_prefix(prefix)?;
        let full = format!("{}{prefix}", self.prefix);
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let (output, next) = self.list_page(prefix, true, token, None).await?;
            for common in output.common_prefixes() {
                if let Some(name) = common
                    .prefix()
                    .and_then(|p| p.strip_prefix(&full))
                    .and_then(|p| p.strip_suffix('/'))
                {
                    names.push(name.to_owned());
                }
            }
            token = next;
            if token.is_none() {
                names.sort();
                return Ok(names);
            }
        }
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        let mut full = Vec::with_capacity(keys.len());
        for key in keys {
            full.push(self.full_key(key)?);
        }
        let mut deletions = Deletions::new(self);
        for batch in full.chunks(1000) {
            deletions.send(batch.to_vec()).await;
        }
        deletions.finish(None).await
    }

    /// Lists page by page and deletes each page (one DeleteObjects of up to 1,000 keys)
    /// while the next is listed, with several deletes in flight.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        check_prefix(prefix)?;
        let mut deletions = Deletions::new(self);
        let mut count = 0u64;
        let mut token = None;
        let listed = loop {
            let (output, next) = match self.list_page(prefix, false, token, None).await {
                Ok(page) => page,
                Err(e) => break Some(e),
            };
            let keys: Vec<String> = output
                .contents()
                .iter()
                .filter_map(|o| o.key().map(str::to_owned))
                .collect();
            count += keys.len() as u64;
            if !keys.is_empty() {
                deletions.send(keys).await;
            }
            token = next;
            if token.is_none() {
                break None;
            }
        };
        deletions.finish(listed).await.map(|()| count)
    }

    async fn upload_file(&self, path: &Path, key: &str) -> Result<FileSum> {
        let full = self.full_key(key)?;
        let io = |source| StoreError::Io {
            object: path.display().to_string(),
            source,
        };
        let size = tokio::fs::metadata(path).await.map_err(io)?.len();
        if size < SMALL_FILE {
            return self.upload_small(path, key, &full).await;
        }
        let summed = path.to_path_buf();
        let sum = tokio::task::spawn_blocking(move || checksum_file(&summed))
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(io)?;
        if sum.size != size {
            return Err(io(changed_while_read(size, sum.size)));
        }
        if size >= self.transfer.multipart_threshold {
            self.upload_multipart(path, &full, size).await?;
        } else {
            self.retrying(|_| async {
                let body = ByteStream::read_from()
                    .path(path)
                    .buffer_size(READ_BUFFER)
                    .build()
                    .await
                    .map_err(|e| io(std::io::Error::other(e)))?;
                self.client
                    .put_object()
                    .bucket(&self.bucket)
                    .key(&full)
                    .set_tagging(self.tagging(&full))
                    .content_length(size as i64)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| self.error("PutObject", self.locate(key), e))
            })
            .await?;
        }
        Ok(sum)
    }

    async fn copy(&self, from: &str, to: &str) -> Result<ObjectMeta> {
        self.copy_object(from, to).await
    }

    async fn tag_work(&self, key: &str) -> Result<()> {
        let full = self.full_key(key)?;
        let invalid = |e: aws_sdk_s3::error::BuildError| StoreError::Service {
            operation: "PutObjectTagging",
            object: self.locate(key),
            detail: e.to_string(),
            kind: StoreErrorKind::Configuration,
        };
        let tag = Tag::builder()
            .key(WORK_TAG.0)
            .value(WORK_TAG.1)
            .build()
            .map_err(invalid)?;
        let tagging = Tagging::builder().tag_set(tag).build().map_err(invalid)?;
        self.retrying(|_| async {
            self.client
                .put_object_tagging()
                .bucket(&self.bucket)
                .key(&full)
                .tagging(tagging.clone())
                .send()
                .await
                .map_err(|e| self.error("PutObjectTagging", self.locate(key), e))
        })
        .await?;
        Ok(())
    }

    async fn download_file(&self, key: &str, path: &Path) -> Result<FileSum> {
        let full = self.full_key(key)?;
        // A body cut off is fetched again whole: the temporary file is rewritten.
        self.retrying(|_| self.download_once(&full, key, path))
            .await
    }
}

impl S3Store {
    async fn download_once(&self, full: &str, key: &str, path: &Path) -> Result<FileSum> {
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await
            .map_err(|e| self.error("GetObject", self.locate(key), e))?;
        let io = |source| StoreError::Io {
            object: format!("{} -> {}", self.locate(key), path.display()),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
        let temp = dir.join(format!(
            "{}{}-{}",
            crate::store::local::TEMP_PREFIX,
            std::process::id(),
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("download")
        ));
        let mut cut = None;
        let written = async {
            // Whole megabytes per write: tokio hands each file write to a blocking thread,
            // and the body arrives in chunks of a few KiB.
            let file = tokio::fs::File::create(&temp).await?;
            let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
            let mut body = output.body;
            let mut sum = Crc64::default();
            while let Some(chunk) = body.next().await {
                let chunk = match chunk {
                    Ok(chunk) => chunk,
                    Err(e) => {
                        cut = Some(error_chain(&e));
                        return Err(std::io::Error::other("the body was cut off"));
                    }
                };
                sum.update(&chunk);
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            drop(file);
            tokio::fs::rename(&temp, path).await?;
            Ok::<_, std::io::Error>(sum.finish())
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(&temp).await;
        }
        match (written, cut) {
            (Ok(sum), _) => Ok(sum),
            (Err(_), Some(detail)) => Err(StoreError::Service {
                operation: "GetObject",
                object: self.locate(key),
                detail: format!("reading the body: {detail}"),
                kind: StoreErrorKind::Transient,
            }),
            (Err(e), None) => Err(io(e)),
        }
    }
}
