//! A real S3 protocol server on loopback, for tests, benchmarks and trying respawn out:
//! the `s3s-fs` crate (0.14) serving a directory, with SigV4 authentication.
//!
//! Between the protocol and s3s-fs sits a thin layer that does two things:
//! - **Atomic objects.** s3s-fs checks `If-None-Match` / `If-Match` and then writes, and it
//!   writes an object's data and its ETag in separate steps; AWS S3 and MinIO decide and
//!   write each object atomically. Without this layer two racing create-only puts can both
//!   succeed (the race tests showed it). The layer serializes the operations on each key.
//! - **Listing that does not fail.** s3s-fs lists by walking the bucket's directory and
//!   fails with InternalError when a file vanishes mid-walk (seen with the aws-cli's
//!   `s3 rm --recursive`, which lists and deletes at once). AWS never fails a listing for
//!   that; the layer walks again.
//! - **Faults on demand.** Whole requests can be throttled (503 SlowDown), DeleteObjects can
//!   report keys as throttled inside a successful response (as AWS does under load), and
//!   conditional headers can be ignored, like servers that accept them and overwrite anyway.
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
    /// Requests seen, and DeleteObjects / DeleteObject calls seen.
    pub requests: AtomicU64,
    pub delete_objects_calls: AtomicU64,
    pub delete_object_calls: AtomicU64,
}

type BoxWrite<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

struct Layer {
    fs: Arc<s3s_fs::FileSystem>,
    faults: Arc<Faults>,
    keys: Mutex<HashMap<String, Arc<tokio::sync::RwLock<()>>>>,
}

impl Layer {
    fn lock_of(&self, bucket: &str, key: &str) -> Arc<tokio::sync::RwLock<()>> {
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

    fn gate(&self) -> S3Result<()> {
        self.faults.requests.fetch_add(1, Ordering::Relaxed);
        if take(&self.faults.throttle_requests) {
            return Err(s3_error!(SlowDown, "injected throttling"));
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
        self.fs.get_object(req).await
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
        self.gate()?;
        if self.ignoring_conditions() {
            req.input.if_match = None;
            req.input.if_none_match = None;
        }
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        self.write(&bucket, &key, |fs| {
            Box::pin(async move { fs.put_object(req).await })
        })
        .await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.gate()?;
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        self.write(&bucket, &key, |fs| {
            Box::pin(async move { fs.copy_object(req).await })
        })
        .await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.gate()?;
        self.faults
            .delete_object_calls
            .fetch_add(1, Ordering::Relaxed);
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        self.write(&bucket, &key, |fs| {
            Box::pin(async move { fs.delete_object(req).await })
        })
        .await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.gate()?;
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
        tokio::spawn(async move { fs.delete_objects(req).await })
            .await
            .expect("a write of the test server panicked")
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
        self.gate()?;
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.gate()?;
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
        self.gate()?;
        if self.ignoring_conditions() {
            req.input.if_match = None;
            req.input.if_none_match = None;
        }
        let (bucket, key) = (req.input.bucket.clone(), req.input.key.clone());
        self.write(&bucket, &key, |fs| {
            Box::pin(async move { fs.complete_multipart_upload(req).await })
        })
        .await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.gate()?;
        self.fs.abort_multipart_upload(req).await
    }
}

/// A running server; stopped when dropped.
pub struct S3Server {
    endpoint: String,
    root: PathBuf,
    _temp: Option<tempfile::TempDir>,
    pub faults: Arc<Faults>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl S3Server {
    /// A server on a free loopback port over a new temporary directory, with [`BUCKET`].
    pub fn start() -> S3Server {
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
        let layer = Layer {
            fs: Arc::new(fs),
            faults: faults.clone(),
            keys: Mutex::new(HashMap::new()),
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
