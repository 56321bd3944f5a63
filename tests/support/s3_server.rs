//! A real S3 protocol server on loopback, for tests, benchmarks and trying respawn out:
//! the `s3s-fs` crate (0.14) serving a directory, with SigV4 authentication.
//!
//! Between the protocol and s3s-fs sits a thin layer that does two things:
//! - **Atomic objects.** s3s-fs checks `If-None-Match` / `If-Match` and then writes, and it
//!   writes an object's data and its ETag in separate steps; AWS S3 and MinIO decide and
//!   write each object atomically. Without this layer two racing create-only puts can both
//!   succeed (the race tests showed it). The layer serializes the operations on each key.
//! - **Listing that does not fail, and walks only what it lists.** s3s-fs lists by walking
//!   the whole bucket's directory, one async call per file, for every page, and fails with
//!   InternalError when a file vanishes mid-walk (seen with the aws-cli's
//!   `s3 rm --recursive`, which lists and deletes at once). AWS never fails a listing for
//!   that. The layer answers listings without a delimiter itself: it walks only the
//!   directory the prefix names, skips what vanishes, and pages by key like s3s-fs.
//!   Listings with a delimiter go to s3s-fs, walked again if a file vanished.
//! - **GET bodies in 256 KiB reads.** s3s-fs streams objects in 4 KiB reads, which makes
//!   the server, not the client, the limit of any download benchmark; the layer serves the
//!   same bytes (and the same headers, which s3s-fs still computes) in larger reads.
//! - **Object tags.** s3s-fs ignores `x-amz-tagging` and has no tagging calls; the layer
//!   keeps each object's tags (in memory, for the server's lifetime): set on PutObject,
//!   CreateMultipartUpload and CopyObject, read and written by Get/Put/DeleteObjectTagging,
//!   dropped with the object, counted in `x-amz-tagging-count`.
//! - **Faults on demand.** Whole requests can be throttled (503 SlowDown), DeleteObjects can
//!   report keys as throttled inside a successful response (as AWS does under load),
//!   conditional headers can be ignored, like servers that accept them and overwrite anyway,
//!   and the serializing of each key can be turned off (`non_atomic`: s3s-fs on its own,
//!   which enforces conditional writes but does not decide them atomically).
//!
//! Used by `tests/` (`mod support;`) and by `examples/s3-server.rs`.

#![allow(dead_code)]

use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const ACCESS_KEY: &str = "respawn-test-access";
pub const SECRET_KEY: &str = "respawn-test-secret-key";
pub const BUCKET: &str = "respawn-test";

/// Faults to inject; counters say how many of the next calls are affected.
#[derive(Default)]
pub struct Faults {
    /// The next N requests fail with 503 SlowDown.
    pub throttle_requests: AtomicU32,
    /// The next N DeleteObjects calls answer every key with a SlowDown error.
    pub throttle_delete_keys: AtomicU32,
    /// Accept conditional headers and overwrite anyway.
    pub ignore_conditions: AtomicBool,
    /// Serve as s3s-fs alone does: no serializing of the operations on a key, so a
    /// conditional put is checked and then written, not decided atomically (the standalone
    /// s3s-fs server behaves so).
    pub non_atomic: AtomicBool,
    /// Answer every write (put, copy, delete, tagging, multipart) with AccessDenied, as
    /// for read-only credentials (an analyst's or a dashboard's role).
    pub read_only: AtomicBool,
    /// Serve object tags as s3s-fs alone does: `x-amz-tagging` on a write is ignored and
    /// the tagging calls answer 501 NotImplemented.
    pub no_tagging: AtomicBool,
    /// Requests seen, and DeleteObjects / DeleteObject calls seen.
    pub requests: AtomicU64,
    /// Requests that write (refused or not).
    pub writes: AtomicU64,
    pub delete_objects_calls: AtomicU64,
    pub delete_object_calls: AtomicU64,
    /// CopyObject calls seen.
    pub copy_object_calls: AtomicU64,
}

type BoxWrite<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

/// Tags of objects (`bucket/key` -> tags), and of multipart uploads until they complete.
pub type Tags = Arc<Mutex<HashMap<String, Vec<(String, String)>>>>;

struct Layer {
    fs: Arc<s3s_fs::FileSystem>,
    /// The directory s3s-fs serves, canonical (as s3s-fs keeps it).
    root: PathBuf,
    faults: Arc<Faults>,
    keys: Mutex<HashMap<String, Arc<tokio::sync::RwLock<()>>>>,
    tags: Tags,
    upload_tags: Mutex<HashMap<String, Vec<(String, String)>>>,
}

/// The size of the reads GET bodies are served in.
const GET_READ: usize = 256 * 1024;

/// Parses an `x-amz-tagging` header (`k1=v1&k2=v2`, URL-encoded) with S3's limits.
fn parse_tagging(header: &str) -> S3Result<Vec<(String, String)>> {
    let mut tags: Vec<(String, String)> = Vec::new();
    for pair in header.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        tags.push((percent_decode(key)?, percent_decode(value)?));
    }
    check_tags(&tags)?;
    Ok(tags)
}

fn check_tags(tags: &[(String, String)]) -> S3Result<()> {
    if tags.len() > 10 {
        return Err(s3_error!(InvalidTag, "an object can have at most 10 tags"));
    }
    for (n, (key, value)) in tags.iter().enumerate() {
        if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
            return Err(s3_error!(
                InvalidTag,
                "a tag key is 1 to 128 characters and a value at most 256"
            ));
        }
        if tags[..n].iter().any(|(k, _)| k == key) {
            return Err(s3_error!(
                InvalidTag,
                "cannot provide multiple tags with the same key"
            ));
        }
    }
    Ok(())
}

fn percent_decode(text: &str) -> S3Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = text
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        s3_error!(InvalidTag, "bad percent-encoding in the tagging header")
                    })?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| s3_error!(InvalidTag, "the tagging header is not UTF-8"))
}

fn tag_set(tags: &[(String, String)]) -> TagSet {
    tags.iter()
        .map(|(key, value)| Tag {
            key: Some(key.clone()),
            value: Some(value.clone()),
        })
        .collect()
}

fn object_id(bucket: &str, key: &str) -> String {
    format!("{bucket}/{key}")
}

/// Records the tags of an object just written (none: the new object has none).
fn set_tags(tags: &Tags, bucket: &str, key: &str, set: Vec<(String, String)>) {
    let mut tags = tags.lock().unwrap();
    if set.is_empty() {
        tags.remove(&object_id(bucket, key));
    } else {
        tags.insert(object_id(bucket, key), set);
    }
}

impl Layer {
    /// Where s3s-fs keeps an object, for keys that map to a path below the bucket plainly.
    fn object_path(&self, bucket: &str, key: &str) -> Option<PathBuf> {
        let plain = !key.starts_with('/')
            && Path::new(key)
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        plain.then(|| self.root.join(bucket).join(key))
    }

    /// ListObjectsV2 without a delimiter, walking only the directory the prefix names, in
    /// one blocking task. s3s-fs walks the whole bucket with one async call per file system
    /// operation for every page, which made listing, not the clients, the limit of the
    /// deletion benchmark. None when the prefix does not map to a plain directory (s3s-fs
    /// answers those).
    async fn list_flat(
        &self,
        input: &ListObjectsV2Input,
    ) -> Option<S3Result<S3Response<ListObjectsV2Output>>> {
        let bucket_dir = self.root.join(&input.bucket);
        let prefix = input.prefix.clone().unwrap_or_default();
        let prefix = prefix.trim_start_matches('/').to_string();
        let dir = prefix.rfind('/').map_or("", |i| &prefix[..i]);
        let start = if dir.is_empty() {
            bucket_dir.clone()
        } else {
            self.object_path(&input.bucket, dir)?
        };
        if !bucket_dir.is_dir() {
            return Some(Err(s3_error!(NoSuchBucket)));
        }
        let walk_prefix = prefix.clone();
        let mut objects = tokio::task::spawn_blocking(move || {
            let mut objects = Vec::new();
            let mut dirs = vec![start];
            while let Some(dir) = dirs.pop() {
                // Entries may vanish while they are walked (a concurrent delete): skip them.
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    continue;
                };
                for entry in entries.flatten() {
                    let Ok(kind) = entry.file_type() else {
                        continue;
                    };
                    let path = entry.path();
                    if kind.is_dir() {
                        dirs.push(path);
                        continue;
                    }
                    let Some(key) = path
                        .strip_prefix(&bucket_dir)
                        .ok()
                        .and_then(|k| k.to_str())
                        .map(str::to_owned)
                    else {
                        continue;
                    };
                    if !key.starts_with(&walk_prefix) {
                        continue;
                    }
                    let Ok(meta) = entry.metadata() else { continue };
                    objects.push(Object {
                        key: Some(key),
                        size: Some(meta.len() as i64),
                        last_modified: meta.modified().ok().map(Timestamp::from),
                        ..Default::default()
                    });
                }
            }
            objects
        })
        .await
        .ok()?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        let marker = match (&input.continuation_token, &input.start_after) {
            (Some(token), Some(after)) => Some(token.clone().max(after.clone())),
            (token, after) => token.clone().or_else(|| after.clone()),
        };
        if let Some(marker) = &marker {
            objects.retain(|o| o.key.as_deref().unwrap_or("") > marker.as_str());
        }
        let max_keys = input.max_keys.unwrap_or(1000).clamp(0, 1000);
        let truncated = objects.len() > max_keys as usize;
        objects.truncate(max_keys as usize);
        let next = if truncated {
            objects.last().and_then(|o| o.key.clone())
        } else {
            None
        };
        Some(Ok(S3Response::new(ListObjectsV2Output {
            key_count: Some(objects.len() as i32),
            max_keys: Some(max_keys),
            is_truncated: Some(truncated),
            contents: (!objects.is_empty()).then_some(objects),
            continuation_token: input.continuation_token.clone(),
            next_continuation_token: next,
            encoding_type: input.encoding_type.clone(),
            name: Some(input.bucket.clone()),
            prefix: input.prefix.clone(),
            start_after: input.start_after.clone(),
            ..Default::default()
        })))
    }

    fn lock_of(&self, bucket: &str, key: &str) -> Arc<tokio::sync::RwLock<()>> {
        if self.faults.non_atomic.load(Ordering::SeqCst) {
            // A lock of its own for each operation: nothing is serialized.
            return Arc::default();
        }
        let mut keys = self.keys.lock().unwrap();
        keys.entry(format!("{bucket}/{key}")).or_default().clone()
    }

    /// Applies a write to `key` whole even if the client hangs up meanwhile, as AWS S3 and
    /// MinIO do: hyper drops the handler of a closed connection, which could stop s3s-fs
    /// between writing an object's data and its metadata (seen: a client killed during a
    /// PUT left an object whose checksum did not match its data).
    async fn write<T: Send + 'static>(
        &self,
        bucket: &str,
        key: &str,
        apply: impl FnOnce(Arc<s3s_fs::FileSystem>) -> BoxWrite<T>,
    ) -> T {
        let guard = self.lock_of(bucket, key).write_owned().await;
        let work = apply(self.fs.clone());
        tokio::spawn(async move {
            let _guard = guard;
            work.await
        })
        .await
        .expect("a write of the test server panicked")
    }

    /// A [`Layer::write`] that leaves the object with the tags `set` when it succeeds (an
    /// empty set: no tags, as for a new or deleted object).
    async fn write_tagged<T: Send + 'static>(
        &self,
        bucket: &str,
        key: &str,
        set: Vec<(String, String)>,
        apply: impl FnOnce(Arc<s3s_fs::FileSystem>) -> BoxWrite<S3Result<T>>,
    ) -> S3Result<T> {
        let (tags, object_bucket, object_key) =
            (self.tags.clone(), bucket.to_owned(), key.to_owned());
        self.write(bucket, key, move |fs| {
            let work = apply(fs);
            Box::pin(async move {
                let done = work.await;
                if done.is_ok() {
                    set_tags(&tags, &object_bucket, &object_key, set);
                }
                done
            })
        })
        .await
    }

    /// The tags a write's `x-amz-tagging` header sets (none while `no_tagging`).
    fn tagging_of(&self, header: Option<&str>) -> S3Result<Vec<(String, String)>> {
        match self.faults.no_tagging.load(Ordering::SeqCst) {
            true => Ok(Vec::new()),
            false => parse_tagging(header.unwrap_or("")),
        }
    }

    /// Refuses a tagging call while `no_tagging` is set, as s3s-fs does.
    fn gate_tagging(&self, operation: &str) -> S3Result<()> {
        if self.faults.no_tagging.load(Ordering::SeqCst) {
            return Err(s3_error!(NotImplemented, "{operation} is not implemented"));
        }
        Ok(())
    }

    fn gate(&self) -> S3Result<()> {
        self.faults.requests.fetch_add(1, Ordering::Relaxed);
        if take(&self.faults.throttle_requests) {
            return Err(s3_error!(SlowDown, "injected throttling"));
        }
        Ok(())
    }

    /// [`Layer::gate`] for a request that writes: also refused while `read_only` is set.
    fn gate_write(&self) -> S3Result<()> {
        self.gate()?;
        self.faults.writes.fetch_add(1, Ordering::Relaxed);
        if self.faults.read_only.load(Ordering::SeqCst) {
            return Err(s3_error!(AccessDenied, "injected: read-only credentials"));
        }
        Ok(())
    }

    fn ignoring_conditions(&self) -> bool {
        self.faults.ignore_conditions.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl S3 for Layer {
    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.gate()?;
        self.fs.create_bucket(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.gate()?;
        self.fs.head_bucket(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.gate()?;
        self.fs.list_buckets(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.gate()?;
        self.fs.get_bucket_location(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.gate()?;
        let lock = self.lock_of(&req.input.bucket, &req.input.key);
        let _read = lock.read().await;
        let (bucket, key, range) = (
            req.input.bucket.clone(),
            req.input.key.clone(),
            req.input.range,
        );
        let mut response = self.fs.get_object(req).await?;
        // s3s-fs checked the object and the range and computed the headers; serve the same
        // bytes in larger reads. The key's read lock keeps writers out until the file is open.
        if let Some(path) = self.object_path(&bucket, &key) {
            use tokio::io::{AsyncReadExt, AsyncSeekExt};
            let length = response.output.content_length.unwrap_or(0).max(0) as u64;
            let mut file = tokio::fs::File::open(&path)
                .await
                .map_err(|e| s3_error!(e, NoSuchKey))?;
            let size = file
                .metadata()
                .await
                .map_err(|e| s3_error!(e, InternalError))?
                .len();
            let start = match range {
                Some(Range::Int { first, .. }) => first,
                Some(Range::Suffix { length }) => size.saturating_sub(length),
                None => 0,
            };
            file.seek(std::io::SeekFrom::Start(start))
                .await
                .map_err(|e| s3_error!(e, InternalError))?;
            response.output.body = Some(StreamingBlob::wrap(
                tokio_util::io::ReaderStream::with_capacity(file.take(length), GET_READ),
            ));
        }
        let count = self
            .tags
            .lock()
            .unwrap()
            .get(&object_id(&bucket, &key))
            .map(|t| t.len() as i32);
        response.output.tag_count = count;
        Ok(response)
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.gate()?;
        let lock = self.lock_of(&req.input.bucket, &req.input.key);
        let _read = lock.read().await;
        self.fs.head_object(req).await
    }

    async fn put_object(
        &self,
        mut req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.gate_write()?;
        if self.ignoring_conditions() {
            req.input.if_match = None;
            req.input.if_none_match = None;
        }
        let set = self.tagging_of(req.input.tagging.as_deref())?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        self.write_tagged(&bucket, &key, set, |fs| {
            Box::pin(async move { fs.put_object(req).await })
        })
        .await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.gate_write()?;
        self.faults
            .copy_object_calls
            .fetch_add(1, Ordering::Relaxed);
        let replace = req
            .input
            .tagging_directive
            .as_ref()
            .is_some_and(|d| d.as_str() == TaggingDirective::REPLACE);
        let set = if replace {
            self.tagging_of(req.input.tagging.as_deref())?
        } else {
            match &req.input.copy_source {
                CopySource::Bucket { bucket, key, .. } => self
                    .tags
                    .lock()
                    .unwrap()
                    .get(&object_id(bucket, key))
                    .cloned()
                    .unwrap_or_default(),
                _ => Vec::new(),
            }
        };
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        self.write_tagged(&bucket, &key, set, |fs| {
            Box::pin(async move { fs.copy_object(req).await })
        })
        .await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.gate_write()?;
        self.faults
            .delete_object_calls
            .fetch_add(1, Ordering::Relaxed);
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        self.write_tagged(&bucket, &key, Vec::new(), |fs| {
            Box::pin(async move { fs.delete_object(req).await })
        })
        .await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.gate_write()?;
        self.faults
            .delete_objects_calls
            .fetch_add(1, Ordering::Relaxed);
        if take(&self.faults.throttle_delete_keys) {
            let errors = req
                .input
                .delete
                .objects
                .iter()
                .map(|o| Error {
                    code: Some("SlowDown".into()),
                    key: Some(o.key.clone()),
                    message: Some("injected throttling".into()),
                    ..Default::default()
                })
                .collect();
            return Ok(S3Response::new(DeleteObjectsOutput {
                errors: Some(errors),
                ..Default::default()
            }));
        }
        let fs = self.fs.clone();
        let tags = self.tags.clone();
        tokio::spawn(async move {
            let bucket = req.input.bucket.clone();
            let deleted = fs.delete_objects(req).await?;
            for object in deleted.output.deleted.iter().flatten() {
                if let Some(key) = &object.key {
                    set_tags(&tags, &bucket, key, Vec::new());
                }
            }
            Ok(deleted)
        })
        .await
        .expect("a write of the test server panicked")
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        self.gate_tagging("GetObjectTagging")?;
        self.gate()?;
        let (bucket, key) = (&req.input.bucket, &req.input.key);
        let lock = self.lock_of(bucket, key);
        let _read = lock.read().await;
        if !self.object_path(bucket, key).is_some_and(|p| p.is_file()) {
            return Err(s3_error!(NoSuchKey));
        }
        let tags = self
            .tags
            .lock()
            .unwrap()
            .get(&object_id(bucket, key))
            .cloned();
        Ok(S3Response::new(GetObjectTaggingOutput {
            tag_set: tag_set(&tags.unwrap_or_default()),
            version_id: None,
        }))
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        self.gate_tagging("PutObjectTagging")?;
        self.gate_write()?;
        let (bucket, key) = (&req.input.bucket, &req.input.key);
        let mut set = Vec::new();
        for tag in &req.input.tagging.tag_set {
            set.push((
                tag.key.clone().unwrap_or_default(),
                tag.value.clone().unwrap_or_default(),
            ));
        }
        check_tags(&set)?;
        let lock = self.lock_of(bucket, key);
        let _write = lock.write().await;
        if !self.object_path(bucket, key).is_some_and(|p| p.is_file()) {
            return Err(s3_error!(NoSuchKey));
        }
        set_tags(&self.tags, bucket, key, set);
        Ok(S3Response::new(PutObjectTaggingOutput::default()))
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        self.gate_tagging("DeleteObjectTagging")?;
        self.gate_write()?;
        let (bucket, key) = (&req.input.bucket, &req.input.key);
        let lock = self.lock_of(bucket, key);
        let _write = lock.write().await;
        if !self.object_path(bucket, key).is_some_and(|p| p.is_file()) {
            return Err(s3_error!(NoSuchKey));
        }
        set_tags(&self.tags, bucket, key, Vec::new());
        Ok(S3Response::new(DeleteObjectTaggingOutput::default()))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.gate()?;
        let mut tries = 0;
        loop {
            match self.fs.list_objects(req.clone()).await {
                Err(e) if *e.code() == s3s::S3ErrorCode::InternalError && tries < 50 => tries += 1,
                other => return other,
            }
        }
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.gate()?;
        if req.input.delimiter.is_none()
            && let Some(listed) = self.list_flat(&req.input).await
        {
            return listed;
        }
        let mut tries = 0;
        loop {
            match self.fs.list_objects_v2(req.clone()).await {
                Err(e) if *e.code() == s3s::S3ErrorCode::InternalError && tries < 50 => tries += 1,
                other => return other,
            }
        }
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.gate_write()?;
        let set = self.tagging_of(req.input.tagging.as_deref())?;
        let created = self.fs.create_multipart_upload(req).await?;
        if let Some(upload) = &created.output.upload_id {
            self.upload_tags.lock().unwrap().insert(upload.clone(), set);
        }
        Ok(created)
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.gate_write()?;
        self.fs.upload_part(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        self.gate()?;
        self.fs.list_parts(req).await
    }

    async fn complete_multipart_upload(
        &self,
        mut req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.gate_write()?;
        if self.ignoring_conditions() {
            req.input.if_match = None;
            req.input.if_none_match = None;
        }
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        let set = self
            .upload_tags
            .lock()
            .unwrap()
            .get(&req.input.upload_id)
            .cloned()
            .unwrap_or_default();
        let upload = req.input.upload_id.clone();
        let completed = self
            .write_tagged(&bucket, &key, set, |fs| {
                Box::pin(async move { fs.complete_multipart_upload(req).await })
            })
            .await?;
        self.upload_tags.lock().unwrap().remove(&upload);
        Ok(completed)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.gate_write()?;
        let upload = req.input.upload_id.clone();
        let aborted = self.fs.abort_multipart_upload(req).await?;
        self.upload_tags.lock().unwrap().remove(&upload);
        Ok(aborted)
    }
}

/// A running server; stopped when dropped.
pub struct S3Server {
    endpoint: String,
    root: PathBuf,
    _temp: Option<tempfile::TempDir>,
    pub faults: Arc<Faults>,
    tags: Tags,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl S3Server {
    /// A server on a free loopback port over a new temporary directory, with [`BUCKET`],
    /// whose bucket was checked: it holds the verdict of a passed `respawn store check`,
    /// so a run does not check it again on first use (that check, and this server's
    /// passing it, are tested in `tests/store_check.rs` with [`S3Server::start_unchecked`]).
    pub fn start() -> S3Server {
        let server = S3Server::start_unchecked();
        let verdict = server
            .root()
            .join(BUCKET)
            .join(".respawn-check/verdict.json");
        std::fs::create_dir_all(verdict.parent().unwrap()).unwrap();
        let text = format!(
            r#"{{"store": "s3://{BUCKET}/", "checked_at": "2026-12-01T00:00:00Z", "passed": true, "by": "the test fixture (tests/store_check.rs checks this server)", "results": []}}"#
        );
        std::fs::write(verdict, text).unwrap();
        server
    }

    /// [`S3Server::start`] with a bucket never checked: a run's first use checks it.
    pub fn start_unchecked() -> S3Server {
        let temp = tempfile::tempdir().expect("a temporary directory");
        let mut server = S3Server::serve(temp.path(), "127.0.0.1:0", &[BUCKET])
            .expect("the S3 test server starts");
        server._temp = Some(temp);
        server
    }

    /// Serves `root` on `address`, creating the given buckets.
    pub fn serve(root: &Path, address: &str, buckets: &[&str]) -> std::io::Result<S3Server> {
        for bucket in buckets {
            std::fs::create_dir_all(root.join(bucket))?;
        }
        let fs =
            s3s_fs::FileSystem::new(root).map_err(|e| std::io::Error::other(format!("{e:?}")))?;
        let faults = Arc::new(Faults::default());
        let tags = Tags::default();
        let layer = Layer {
            fs: Arc::new(fs),
            root: root.canonicalize()?,
            faults: faults.clone(),
            keys: Mutex::new(HashMap::new()),
            tags: tags.clone(),
            upload_tags: Mutex::new(HashMap::new()),
        };
        let service = {
            let mut builder = s3s::service::S3ServiceBuilder::new(layer);
            builder.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
            builder.build()
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        // Bound here so that the port is known (and taken) before this returns.
        let listener = std::net::TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let (shutdown, mut stop) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).expect("a listening socket");
                let http = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                loop {
                    let socket = tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((socket, _)) => socket,
                            Err(_) => continue,
                        },
                        _ = &mut stop => break,
                    };
                    // A GET's headers and body go out in two writes; with Nagle's algorithm
                    // the body then waits for the client's delayed ACK (about 40 ms). Real
                    // servers (AWS, MinIO) send without that delay.
                    let _ = socket.set_nodelay(true);
                    let connection = http
                        .serve_connection(hyper_util::rt::TokioIo::new(socket), service.clone())
                        .into_owned();
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                }
            });
            runtime.shutdown_background();
        });
        Ok(S3Server {
            endpoint,
            root: root.to_path_buf(),
            _temp: None,
            faults,
            tags,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The directory the server keeps objects in (`<root>/<bucket>/<key>`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The tags of an object (empty when it has none or does not exist).
    pub fn tags_of(&self, bucket: &str, key: &str) -> Vec<(String, String)> {
        let tags = self.tags.lock().unwrap();
        tags.get(&object_id(bucket, key))
            .cloned()
            .unwrap_or_default()
    }

    /// Environment for a client of this server: credentials, region and endpoint.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
