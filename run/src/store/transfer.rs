//! Moving whole work-tables (directories of files) between a cluster and the store, with
//! a bounded number of files in flight, and checksums for the COMMIT manifest.

use super::local_files::{LocalFiles, local_files};
use super::{Result, Store, StoreError, check_prefix};
use crc_fast::{CrcAlgorithm, Digest};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::task::JoinSet;

#[derive(Clone, Debug)]
pub struct TransferOptions {
    /// Files moved at once; files smaller than [`SMALL_FILE`] count a quarter, so that
    /// many small files, whose cost is the round trip, are moved four times as many at once.
    pub concurrency: usize,
    /// Files at least this large are uploaded in parts.
    pub multipart_threshold: u64,
    pub part_size: u64,
    /// Parts of one file uploaded at once.
    pub part_concurrency: usize,
    /// DeleteObjects requests in flight.
    pub delete_concurrency: usize,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            concurrency: 8,
            multipart_threshold: 64 << 20,
            part_size: 16 << 20,
            part_concurrency: 4,
            delete_concurrency: 8,
        }
    }
}

/// One file of a work-table, as a COMMIT manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    /// Relative to the work-table, `/`-separated.
    pub path: String,
    pub size: u64,
    /// CRC-64/NVME of the content, 16 hex digits (the checksum S3 itself uses by default).
    pub crc64nvme: Crc64Nvme,
}

/// A CRC-64/NVME value, written as 16 lowercase hex digits. Held as a number: a manifest
/// of a million files keeps a million of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Crc64Nvme(pub u64);

impl std::fmt::Display for Crc64Nvme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for Crc64Nvme {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        if text.len() != 16 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("`{text}` is not a CRC-64/NVME (16 hex digits)"));
        }
        u64::from_str_radix(text, 16)
            .map(Crc64Nvme)
            .map_err(|e| e.to_string())
    }
}

impl Serialize for Crc64Nvme {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Crc64Nvme {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Size and CRC-64/NVME of some bytes, as a manifest records them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSum {
    pub size: u64,
    pub crc64nvme: Crc64Nvme,
}

/// A running CRC-64/NVME (the checksum S3 itself uses by default).
pub struct Crc64 {
    digest: Digest,
    size: u64,
}

impl Default for Crc64 {
    fn default() -> Self {
        Crc64 {
            digest: Digest::new(CrcAlgorithm::Crc64Nvme),
            size: 0,
        }
    }
}

impl Crc64 {
    pub fn update(&mut self, bytes: &[u8]) {
        self.digest.update(bytes);
        self.size += bytes.len() as u64;
    }

    pub fn finish(&self) -> FileSum {
        FileSum {
            size: self.size,
            crc64nvme: Crc64Nvme(self.digest.finalize()),
        }
    }
}

/// A buffer to read a file of `size` bytes through: 1 MiB, or for a small file its size
/// plus one byte (to see its end), so that thousands of small files in flight each hold
/// only what they need.
pub(crate) fn read_buffer(size: u64) -> Vec<u8> {
    vec![0u8; size.saturating_add(1).min(1 << 20) as usize]
}

/// Size and CRC-64/NVME of a local file, read in 1 MiB blocks.
pub fn checksum_file(path: &Path) -> std::io::Result<FileSum> {
    let mut file = std::fs::File::open(path)?;
    let mut sum = Crc64::default();
    let mut buffer = read_buffer(file.metadata()?.len());
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        sum.update(&buffer[..n]);
    }
    Ok(sum.finish())
}

/// Whether a file a stage wrote (by its `/`-separated path in the work-table) is part of
/// the work-table. What Spark and Hadoop write beside the data is not: the writer's own
/// `_SUCCESS` marker at the top (respawn writes its own, last, when it publishes; a second
/// one would be listed in the manifest and then overwritten, or seen by readers before
/// the files it vouches for) and the folder of its parts, `_SUCCESS.parts/`, Hadoop's hidden checksum files (`.part-00000.csv.crc`, which
/// EMRFS does not write on S3 either), and anything under a `_temporary/` folder (an
/// unfinished task's attempt).
pub fn is_work_table_file(relative: &str) -> bool {
    if relative == "_SUCCESS" || relative.starts_with("_SUCCESS.parts/") {
        return false;
    }
    !relative.split('/').any(|part| {
        part == "_temporary" || (part.starts_with('.') && part.ends_with(".crc") && part.len() > 5)
    })
}

/// Where a transfer puts the manifest entries it makes, a batch at a time, in path order:
/// a manifest's part writer, or a plain list.
pub trait FileSink {
    fn push(&mut self, entries: Vec<FileEntry>) -> impl Future<Output = Result<()>> + Send;
}

impl FileSink for Vec<FileEntry> {
    async fn push(&mut self, entries: Vec<FileEntry>) -> Result<()> {
        self.extend(entries);
        Ok(())
    }
}

/// Files a transfer sets off per batch: the manifest entries of one batch are held at once.
const BATCH: usize = 10_000;

/// Files below this size are latency-bound rather than bandwidth-bound.
pub const SMALL_FILE: u64 = 1 << 20;

/// Runs jobs with at most `limit` x 4 weight in flight (each job weighs 1 to 4), taking
/// them from `jobs` only as room frees up: a job's future is made and spawned when it
/// starts, so a million files cost a million results, not a million waiting tasks.
/// The results come back in the order of `jobs`; the first error stops the rest.
async fn run_bounded<T, F>(limit: usize, jobs: impl IntoIterator<Item = (u32, F)>) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: Future<Output = Result<T>> + Send + 'static,
{
    let capacity = limit.max(1) as u32 * 4;
    let mut jobs = jobs.into_iter().enumerate().peekable();
    let mut tasks = JoinSet::new();
    let mut in_flight = 0u32;
    let mut results = Vec::with_capacity(jobs.size_hint().0);
    loop {
        while let Some((_, (weight, _))) = jobs.peek()
            && (in_flight == 0 || in_flight + weight <= capacity)
            && let Some((index, (weight, job))) = jobs.next()
        {
            in_flight += weight;
            tasks.spawn(async move { (index, weight, job.await) });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        match joined {
            Ok((index, weight, Ok(value))) => {
                in_flight -= weight;
                results.push((index, value));
            }
            Ok((_, _, Err(e))) => {
                tasks.abort_all();
                return Err(e);
            }
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => {}
        }
    }
    results.sort_unstable_by_key(|(index, _)| *index);
    Ok(results.into_iter().map(|(_, value)| value).collect())
}

fn weight(size: u64) -> u32 {
    if size < SMALL_FILE { 1 } else { 4 }
}

/// Uploads every file of `dir` under `prefix` (which ends in `/`) and gives the
/// manifest entries to `sink`, in path order, a batch at a time.
pub async fn upload_dir<S: Store + Clone + 'static>(
    store: &S,
    dir: &Path,
    prefix: &str,
    options: &TransferOptions,
    sink: &mut impl FileSink,
) -> Result<()> {
    check_prefix(prefix)?;
    let io = |source| StoreError::Io {
        object: dir.display().to_string(),
        source,
    };
    let mut files = Some(local_files(dir));
    loop {
        let (rest, sized) = next_batch(dir, files.take().expect("put back"))
            .await
            .map_err(io)?;
        files = Some(rest);
        if sized.is_empty() {
            return Ok(());
        }
        let jobs = sized.into_iter().map(|(size, relative)| {
            let store = store.clone();
            let path = dir.join(&relative);
            let key = format!("{prefix}{relative}");
            (weight(size), async move {
                let FileSum { size, crc64nvme } = store.upload_file(&path, &key).await?;
                Ok(FileEntry {
                    path: relative,
                    size,
                    crc64nvme,
                })
            })
        });
        sink.push(run_bounded(options.concurrency, jobs).await?)
            .await?;
    }
}

/// The next [`BATCH`] files of a walk and their sizes, read off the runtime's threads;
/// the walk is given back for the next batch.
async fn next_batch(
    dir: &Path,
    mut files: LocalFiles,
) -> std::io::Result<(LocalFiles, Vec<(u64, String)>)> {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut batch = Vec::new();
        for file in files.by_ref().take(BATCH) {
            let file = file?;
            batch.push((dir.join(&file).metadata()?.len(), file));
        }
        Ok((files, batch))
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Downloads the files of a manifest from under `prefix` into `dir`, checking every
/// size and checksum. A file that is missing or differs is an error naming the object.
pub async fn download_dir<S: Store + Clone + 'static>(
    store: &S,
    prefix: &str,
    files: &[FileEntry],
    dir: &Path,
    options: &TransferOptions,
) -> Result<u64> {
    check_prefix(prefix)?;
    let jobs = files.iter().cloned().map(|entry: FileEntry| {
        let store = store.clone();
        let key = format!("{prefix}{}", entry.path);
        let path: PathBuf = dir.join(&entry.path);
        (weight(entry.size), async move {
            let FileSum {
                size,
                crc64nvme: crc,
            } = store.download_file(&key, &path).await?;
            if size != entry.size || crc != entry.crc64nvme {
                return Err(StoreError::Corrupt {
                    object: store.locate(&key),
                    detail: format!(
                        "expected {} bytes with CRC-64/NVME {}, got {size} bytes with {crc}",
                        entry.size, entry.crc64nvme
                    ),
                });
            }
            Ok(size)
        })
    });
    Ok(run_bounded(options.concurrency, jobs)
        .await?
        .into_iter()
        .sum())
}

/// The manifest entries of a work-table already written under `prefix` (by an EMR step,
/// say): every object is read once to compute its CRC-64/NVME, through a temporary file
/// under `scratch` that is removed at once. Hidden files, Spark's `_temporary/` and the
/// step's own `_SUCCESS` are not part of a work-table (see [`is_work_table_file`]). Objects under a work key are tagged as work-table data on
/// the way (see [`super::WORK_TAG`]); a store that refuses tags only loses the lifecycle
/// safety net, so that is a warning, once, not an error.
pub async fn sum_prefix<S: Store + Clone + 'static>(
    store: &S,
    prefix: &str,
    scratch: &Path,
    options: &TransferOptions,
    sink: &mut impl FileSink,
) -> Result<()> {
    check_prefix(prefix)?;
    tokio::fs::create_dir_all(scratch)
        .await
        .map_err(|source| StoreError::Io {
            object: scratch.display().to_string(),
            source,
        })?;
    let warned = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut listing = super::Listing::new(store, prefix);
    while let Some(page) = listing.next_page().await? {
        let jobs = page.into_iter().enumerate().map(|(n, object)| {
            let relative = object.key.strip_prefix(prefix).unwrap_or("").to_string();
            let hidden = !is_work_table_file(&relative)
                || relative.split('/').any(|part| part.starts_with('.'));
            // Hidden files are not summed, but they are tagged: they expire with the rest.
            let relative = (!hidden && !relative.is_empty()).then_some(relative);
            let store = store.clone();
            let temp = scratch.join(format!("sum-{n}"));
            let warned = warned.clone();
            (weight(object.size), async move {
                let entry = match relative {
                    Some(path) => {
                        let sum = store.download_file(&object.key, &temp).await;
                        let _ = tokio::fs::remove_file(&temp).await;
                        let FileSum { size, crc64nvme } = sum?;
                        Some(FileEntry {
                            path,
                            size,
                            crc64nvme,
                        })
                    }
                    None => None,
                };
                if super::is_work_key(&object.key)
                    && let Err(e) = store.tag_work(&object.key).await
                    && !warned.swap(true, std::sync::atomic::Ordering::Relaxed)
                {
                    tracing::warn!(
                        "cannot tag work-table objects for the bucket's lifecycle rule ({e}); \
                         `respawn gc` still removes them"
                    );
                }
                Ok(entry)
            })
        });
        let entries = run_bounded(options.concurrency, jobs).await?;
        sink.push(entries.into_iter().flatten().collect()).await?;
    }
    Ok(())
}

/// Copies the files of a manifest from under `from` to under `to` inside the store
/// (server-side on S3: CopyObject, no byte goes through respawn), checking every size:
/// under `to` they are exactly `files`.
pub async fn copy_files<S: Store + Clone + 'static>(
    store: &S,
    from: &str,
    to: &str,
    files: &[FileEntry],
    options: &TransferOptions,
) -> Result<()> {
    check_prefix(from)?;
    check_prefix(to)?;
    // By index: a closure over `&FileEntry` is not general enough for a spawned task.
    let jobs = (0..files.len()).map(move |i| {
        let entry = &files[i];
        let store = store.clone();
        let source = format!("{from}{}", entry.path);
        let target = format!("{to}{}", entry.path);
        let size = entry.size;
        // A copy costs one request whatever the size: every copy weighs the same.
        (1, async move {
            let copied = store.copy(&source, &target).await?;
            if copied.size != size {
                return Err(StoreError::Corrupt {
                    object: store.locate(&source),
                    detail: format!("expected {size} bytes, the copy has {}", copied.size),
                });
            }
            Ok(())
        })
    });
    run_bounded(options.concurrency, jobs).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{is_work_table_file, run_bounded};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_transfer_of_many_files_makes_only_the_jobs_in_flight() {
        // Jobs are made as they start: a million files must not be a million waiting
        // futures (each holds a request's state) or a million tasks.
        let made = Arc::new(AtomicUsize::new(0));
        let finished = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs = (0..5_000u32).map(|n| {
            let outstanding =
                made.fetch_add(1, Ordering::SeqCst) + 1 - finished.load(Ordering::SeqCst);
            most.fetch_max(outstanding, Ordering::SeqCst);
            let finished = finished.clone();
            (1 + n % 4, async move {
                tokio::task::yield_now().await;
                finished.fetch_add(1, Ordering::SeqCst);
                Ok(n)
            })
        });
        let results = run_bounded(8, jobs).await.unwrap();
        assert_eq!(
            results,
            (0..5_000).collect::<Vec<_>>(),
            "in the order of the jobs"
        );
        let most = most.load(Ordering::SeqCst);
        assert!(
            most <= 8 * 4 + 1,
            "{most} jobs were made before they could start"
        );
    }

    #[test]
    fn spark_markers_checksums_and_temporary_files_are_not_part_of_a_work_table() {
        for kept in [
            "part-00000.csv",
            "date=2019-10-01/part-00000.csv",
            "sub/_SUCCESS",
            ".crc",
            "notes.crc",
            ".hidden",
        ] {
            assert!(is_work_table_file(kept), "{kept} is data");
        }
        for left_out in [
            "_SUCCESS",
            ".part-00000.csv.crc",
            "._SUCCESS.crc",
            "date=2019-10-01/.part-1.crc",
            "_temporary/0/task/part-00000.csv",
        ] {
            assert!(!is_work_table_file(left_out), "{left_out} is not data");
        }
    }
}
