//! The durable store: one small trait with a local-directory backend and an S3 backend.
//!
//! What the protocol on top (ledger, COMMIT manifests, the lease) needs from a backend:
//! - a create-only put ([`PutMode::Create`]) succeeds for exactly one of any number of
//!   concurrent writers of a key; the others get [`StoreError::AlreadyExists`];
//! - a put-if-matching-ETag ([`PutMode::Update`]) succeeds only while the object still has
//!   that ETag, so of two writers that read the same version exactly one wins; the other
//!   gets [`StoreError::PreconditionFailed`];
//! - readers never see a torn object: a get returns a whole version or [`StoreError::NotFound`].
//!
//! Keys are relative to the store's root (the prefix of its URL), use `/` as separator,
//! and are checked by [`check_key`]. A prefix given to [`Store::delete_prefix`] always ends
//! in `/`, so deleting `runs/1/` never touches `runs/10/`.

pub mod check;
mod error;
mod listing;
mod local;
mod local_files;
mod s3;
mod stale;
mod transfer;
mod walk;

pub use error::{StoreError, StoreErrorKind};
pub use listing::Listing;
pub use local::LocalStore;
pub use local_files::{LocalFiles, local_files};
pub use respawn_core::workflow::store_url::{MAX_KEY_LEN, StoreUrl, UrlError};
pub use s3::{S3Options, S3Store};
pub use transfer::{
    Crc64, Crc64Nvme, FileEntry, FileSink, FileSum, SMALL_FILE, TransferOptions, checksum_file,
    copy_files, download_dir, is_work_table_file, sum_prefix, upload_dir,
};

use std::future::Future;
use std::path::Path;

impl From<UrlError> for StoreError {
    fn from(error: UrlError) -> StoreError {
        StoreError::InvalidUrl {
            url: error.url,
            reason: error.reason,
        }
    }
}

/// An object's version tag. Opaque: compare for equality, hand back in [`PutMode::Update`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ETag(pub String);

impl std::fmt::Display for ETag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a list or head says about one object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The key, relative to the store's root.
    pub key: String,
    pub size: u64,
    /// Present on `head` and `get`; a list may leave it out (the local backend does,
    /// because its tags are content hashes).
    pub etag: Option<ETag>,
}

/// How a put treats an object that is already there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// Replace whatever is there.
    Overwrite,
    /// Create only if the key does not exist (S3 `If-None-Match: *`).
    Create,
    /// Replace only if the object still has this tag (S3 `If-Match`).
    Update(ETag),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Durable object storage. Every method names the object in its errors.
pub trait Store: Send + Sync {
    /// Where the store is, for messages: `s3://bucket/prefix/` or a directory.
    fn describe(&self) -> String;

    /// The full location of a key, for messages.
    fn locate(&self, key: &str) -> String;

    fn get(&self, key: &str) -> impl Future<Output = Result<(Vec<u8>, ObjectMeta)>> + Send;

    fn head(&self, key: &str) -> impl Future<Output = Result<ObjectMeta>> + Send;

    /// Writes a small object whole. Returns the new ETag.
    fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        mode: PutMode,
    ) -> impl Future<Output = Result<ETag>> + Send;

    /// Every object whose key starts with `prefix`, in key order (all pages).
    fn list(&self, prefix: &str) -> impl Future<Output = Result<Vec<ObjectMeta>>> + Send;

    /// The next page of the objects under `prefix`: those whose keys come after `after`
    /// (from the first, with `None`), in key order, at most a few thousand; empty when
    /// there are no more. [`Listing`] reads a prefix page by page with it, so that a
    /// work-table of a million files is never listed whole.
    fn list_after(
        &self,
        prefix: &str,
        after: Option<&str>,
    ) -> impl Future<Output = Result<Vec<ObjectMeta>>> + Send;

    /// The names of the "directories" right under `prefix` (which ends in `/`), without
    /// the prefix and without the trailing `/`, in order.
    fn list_dirs(&self, prefix: &str) -> impl Future<Output = Result<Vec<String>>> + Send;

    /// Deletes these keys; keys that do not exist are not an error.
    fn delete_many(&self, keys: &[String]) -> impl Future<Output = Result<()>> + Send;

    /// Writes a local file into `key` (replacing it) and returns the size and CRC-64/NVME
    /// of what was written. A file under [`SMALL_FILE`] is read once, whole, for both the
    /// checksum and the request; a larger one is streamed, never held in memory.
    fn upload_file(&self, path: &Path, key: &str) -> impl Future<Output = Result<FileSum>> + Send;

    /// Streams `key` into a local file, written under a temporary name and renamed, so
    /// a reader of `path` never sees a torn file. Returns the size and checksum of what
    /// was written, computed on the way.
    fn download_file(&self, key: &str, path: &Path)
    -> impl Future<Output = Result<FileSum>> + Send;

    /// Copies the object `from` to `to` (replacing it) inside the store, server-side where
    /// the backend can (S3 CopyObject); `to` gets the tags a write of its key gets, not
    /// those of `from`. Returns the copy's size.
    fn copy(&self, from: &str, to: &str) -> impl Future<Output = Result<ObjectMeta>> + Send;

    /// Tags an object that someone else wrote (an EMR step's output) as work-table data,
    /// [`WORK_TAG`]; objects respawn writes under a work key are tagged as they are
    /// written. A backend without object tags (a local directory) does nothing.
    fn tag_work(&self, key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Removes what killed writers left under `prefix` (which must end in `/`) and no
    /// listing shows: the local store's temporary files whose writer is gone. S3 keeps no
    /// such thing (an incomplete multipart upload is not an object; the bucket's lifecycle
    /// rule aborts it). Returns how many were removed.
    fn collect_stale(&self, prefix: &str) -> impl Future<Output = Result<u64>> + Send {
        async move {
            check_prefix(prefix)?;
            Ok(0)
        }
    }

    /// Deletes every object under `prefix` (which must end in `/`), and what
    /// [`Store::collect_stale`] removes there. Returns how many objects.
    fn delete_prefix(&self, prefix: &str) -> impl Future<Output = Result<u64>> + Send {
        async move {
            self.collect_stale(prefix).await?;
            let keys: Vec<String> = self
                .list(prefix)
                .await?
                .into_iter()
                .map(|o| o.key)
                .collect();
            let count = keys.len() as u64;
            self.delete_many(&keys).await?;
            Ok(count)
        }
    }
}

/// Either backend, chosen by URL at run time.
#[derive(Clone)]
pub enum AnyStore {
    Local(LocalStore),
    S3(S3Store),
}

impl AnyStore {
    /// Opens the store a URL names, to write to it. For S3 this resolves credentials, checks
    /// that the bucket exists and that the server enforces conditional writes (a probe
    /// object, written and deleted).
    pub async fn open(url: &StoreUrl, s3: &S3Options) -> Result<AnyStore> {
        AnyStore::open_as(url, s3, Access::Create).await
    }

    /// [`AnyStore::open`] for reading: a local store that does not exist is an error, never
    /// created, and nothing is written (no probe), so read-only credentials suffice.
    pub async fn open_existing(url: &StoreUrl, s3: &S3Options) -> Result<AnyStore> {
        AnyStore::open_as(url, s3, Access::Read).await
    }

    /// [`AnyStore::open`] for a command that changes what exists (clean, interrupt): a local
    /// store that does not exist is an error, never created.
    pub async fn open_existing_to_write(url: &StoreUrl, s3: &S3Options) -> Result<AnyStore> {
        AnyStore::open_as(url, s3, Access::Write).await
    }

    async fn open_as(url: &StoreUrl, s3: &S3Options, access: Access) -> Result<AnyStore> {
        match url {
            StoreUrl::Local(path) if access == Access::Create => {
                Ok(AnyStore::Local(LocalStore::open(path)?))
            }
            StoreUrl::Local(path) => Ok(AnyStore::Local(LocalStore::open_existing(path)?)),
            StoreUrl::S3 { bucket, prefix } => {
                let mut store = S3Store::connect(bucket, prefix, s3).await?;
                store.check_bucket().await?;
                if access != Access::Read {
                    store.probe_conditional_writes().await?;
                }
                store.ride_out(s3.outage);
                Ok(AnyStore::S3(store))
            }
        }
    }
}

/// What a command opens a store for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Reading only: nothing is written, not even a probe.
    Read,
    /// Writing to a store that must exist.
    Write,
    /// Writing, creating a local store directory if there is none.
    Create,
}

macro_rules! dispatch {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Local($store) => $call,
            AnyStore::S3($store) => $call,
        }
    };
}

impl Store for AnyStore {
    fn describe(&self) -> String {
        dispatch!(self, s => s.describe())
    }
    fn locate(&self, key: &str) -> String {
        dispatch!(self, s => s.locate(key))
    }
    async fn get(&self, key: &str) -> Result<(Vec<u8>, ObjectMeta)> {
        dispatch!(self, s => s.get(key).await)
    }
    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        dispatch!(self, s => s.head(key).await)
    }
    async fn put(&self, key: &str, body: Vec<u8>, mode: PutMode) -> Result<ETag> {
        dispatch!(self, s => s.put(key, body, mode).await)
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        dispatch!(self, s => s.list(prefix).await)
    }
    async fn list_after(&self, prefix: &str, after: Option<&str>) -> Result<Vec<ObjectMeta>> {
        dispatch!(self, s => s.list_after(prefix, after).await)
    }
    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        dispatch!(self, s => s.list_dirs(prefix).await)
    }
    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        dispatch!(self, s => s.delete_many(keys).await)
    }
    async fn upload_file(&self, path: &Path, key: &str) -> Result<FileSum> {
        dispatch!(self, s => s.upload_file(path, key).await)
    }
    async fn download_file(&self, key: &str, path: &Path) -> Result<FileSum> {
        dispatch!(self, s => s.download_file(key, path).await)
    }
    async fn copy(&self, from: &str, to: &str) -> Result<ObjectMeta> {
        dispatch!(self, s => s.copy(from, to).await)
    }
    async fn tag_work(&self, key: &str) -> Result<()> {
        dispatch!(self, s => s.tag_work(key).await)
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        dispatch!(self, s => s.delete_prefix(prefix).await)
    }
    async fn collect_stale(&self, prefix: &str) -> Result<u64> {
        dispatch!(self, s => s.collect_stale(prefix).await)
    }
}

/// The object tag (key, value) on work-table data in S3. Lifecycle rules filter on a literal
/// key prefix or on tags, and no literal prefix selects `<workflow>/runs/<run_id>/work/`;
/// the bucket's safety-net rule (infra/respawn-emr.yaml) expires objects with this tag.
pub const WORK_TAG: (&str, &str) = ("respawn:kind", "work");

/// Whether a key (relative to the store's root) is work-table data:
/// `<workflow>/runs/<run_id>/work/<...>`, the layout of `ledger::Layout::work`.
pub fn is_work_key(key: &str) -> bool {
    let parts: Vec<&str> = key.splitn(5, '/').collect();
    matches!(parts.as_slice(), [workflow, "runs", run, "work", rest]
        if !workflow.is_empty() && !run.is_empty() && !rest.is_empty())
}

/// Checks a key: relative, `/`-separated, no empty, `.` or `..` segments, no backslash or
/// control characters, and no segment that the local backend reserves for temporary files.
pub fn check_key(key: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(StoreError::InvalidKey {
            key: key.escape_default().to_string(),
            reason: reason.into(),
        })
    };
    match respawn_core::workflow::store_url::key_problem(key) {
        Some(reason) => bad(reason),
        None => Ok(()),
    }
}

/// Checks a prefix for list and delete: empty (the whole store) or a key-like path ending in `/`.
pub fn check_prefix(prefix: &str) -> Result<()> {
    if prefix.is_empty() {
        return Ok(());
    }
    match prefix.strip_suffix('/') {
        Some(inner) => check_key(inner),
        None => Err(StoreError::InvalidKey {
            key: prefix.into(),
            reason: "a prefix must end in `/`".into(),
        }),
    }
}
