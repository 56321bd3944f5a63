//! The local-directory backend: the embedded default.
//!
//! It gives the guarantees of [`super`] with plain file-system operations:
//! - every write goes to a temporary file in the target's directory and is renamed into
//!   place, so a reader sees the old or the new object, never a torn one;
//! - a create-only put hard-links the finished temporary file to the key; `link(2)` fails
//!   when the name exists, so exactly one of any number of racing creators wins;
//! - a put-if-matching-ETag takes an exclusive `flock` on the current file, checks that the
//!   name still refers to that file (a racer may have replaced it meanwhile), compares the
//!   ETag, and only then renames the new version into place.
//!
//! ETags are content hashes (the first 128 bits of SHA-256), so they are the same after a
//! restart and for identical content, like S3's.

use super::walk::{LIST_PAGE, remove_objects, walk, walk_after};
use super::{
    Crc64, ETag, FileSum, ObjectMeta, PutMode, Result, Store, StoreError, check_key, check_prefix,
};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Names starting with this are temporary files; never listed, never valid keys.
pub use respawn_core::workflow::store_url::TEMP_PREFIX;

#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
}

/// The error for a path that exists and is not a directory.
fn not_a_store(path: &Path) -> StoreError {
    StoreError::Io {
        object: path.display().to_string(),
        source: io::Error::new(
            io::ErrorKind::NotADirectory,
            "not a directory, so not a local store",
        ),
    }
}

impl LocalStore {
    /// Opens (creating if needed) a store rooted at `path`.
    pub fn open(path: &Path) -> Result<LocalStore> {
        let object = path.display().to_string();
        if path.exists() && !path.is_dir() {
            return Err(not_a_store(path));
        }
        fs::create_dir_all(path).map_err(|source| StoreError::Io {
            object: object.clone(),
            source,
        })?;
        let root = path
            .canonicalize()
            .map_err(|source| StoreError::Io { object, source })?;
        Ok(LocalStore { root })
    }

    /// Opens the store rooted at `path` for reading: a directory that does not exist is
    /// an error naming it, and nothing is created (a mistyped path stays mistyped).
    pub fn open_existing(path: &Path) -> Result<LocalStore> {
        if !path.is_dir() {
            if path.exists() {
                return Err(not_a_store(path));
            }
            let detail = "no local store here (nothing was created): check the --store path";
            return Err(StoreError::Io {
                object: path.display().to_string(),
                source: io::Error::new(io::ErrorKind::NotFound, detail),
            });
        }
        LocalStore::open(path)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    fn io(&self, key: &str, source: io::Error) -> StoreError {
        if source.kind() == io::ErrorKind::NotFound {
            StoreError::NotFound {
                object: self.locate(key),
            }
        } else {
            StoreError::Io {
                object: self.locate(key),
                source,
            }
        }
    }
}

fn etag_of(bytes: &[u8]) -> ETag {
    let digest = Sha256::digest(bytes);
    ETag(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
}

fn temp_path(dir: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    dir.join(format!(
        "{TEMP_PREFIX}{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Creates `path`'s directory; retried because a concurrent delete may remove an empty
/// directory between our creating it and our writing into it.
fn with_parent<T>(path: &Path, mut write: impl FnMut(&Path) -> io::Result<T>) -> io::Result<T> {
    let dir = path.parent().unwrap_or(Path::new("/"));
    let mut tries = 0;
    loop {
        fs::create_dir_all(dir)?;
        match write(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && tries < 5 => tries += 1,
            other => return other,
        }
    }
}

/// Writes `body` to a new temporary file next to `target` and returns its path.
fn write_temp(target: &Path, body: &[u8]) -> io::Result<PathBuf> {
    with_parent(target, |dir| {
        let temp = temp_path(dir);
        let mut file = File::create_new(&temp)?;
        let written = file.write_all(body).and_then(|()| file.sync_data());
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        Ok(temp)
    })
}

fn put_blocking(path: &Path, body: &[u8], mode: &PutMode) -> io::Result<Outcome> {
    let etag = etag_of(body);
    match mode {
        PutMode::Overwrite => {
            let temp = write_temp(path, body)?;
            rename_or_remove(&temp, path)?;
            Ok(Outcome::Written(etag))
        }
        PutMode::Create => {
            let temp = write_temp(path, body)?;
            let linked = fs::hard_link(&temp, path);
            let _ = fs::remove_file(&temp);
            match linked {
                Ok(()) => Ok(Outcome::Written(etag)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(Outcome::Exists),
                Err(e) => Err(e),
            }
        }
        PutMode::Update(expected) => loop {
            let mut file = match File::open(path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Outcome::Mismatch),
                Err(e) => return Err(e),
            };
            file.lock()?;
            // The name may have been replaced while we waited for the lock: then this
            // file is an old version and the check must be made on the new one.
            let still_current = match fs::metadata(path) {
                Ok(now) => {
                    let held = file.metadata()?;
                    now.ino() == held.ino() && now.dev() == held.dev()
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Outcome::Mismatch),
                Err(e) => return Err(e),
            };
            if !still_current {
                continue;
            }
            let mut current = Vec::new();
            file.read_to_end(&mut current)?;
            if etag_of(&current) != *expected {
                return Ok(Outcome::Mismatch);
            }
            let temp = write_temp(path, body)?;
            rename_or_remove(&temp, path)?;
            drop(file);
            return Ok(Outcome::Written(etag));
        },
    }
}

fn rename_or_remove(temp: &Path, path: &Path) -> io::Result<()> {
    fs::rename(temp, path).inspect_err(|_| {
        let _ = fs::remove_file(temp);
    })
}

enum Outcome {
    Written(ETag),
    Exists,
    Mismatch,
}

/// Writes `target` through a new temporary file next to it: `write` fills the temporary
/// file, which is renamed into place on success and removed on failure.
fn replace_via_temp<T>(
    target: &Path,
    mut write: impl FnMut(&Path) -> io::Result<T>,
) -> io::Result<T> {
    with_parent(target, |dir| {
        let temp = temp_path(dir);
        match write(&temp) {
            Ok(value) => {
                rename_or_remove(&temp, target)?;
                Ok(value)
            }
            Err(e) => {
                let _ = fs::remove_file(&temp);
                Err(e)
            }
        }
    })
}

/// Copies `from` to `to`; a reader of `to` never sees a partial copy.
fn copy_atomically(from: &Path, to: &Path) -> io::Result<u64> {
    replace_via_temp(to, |temp| fs::copy(from, temp))
}

/// Copies `from` to `to` like [`copy_atomically`], computing the checksum on the way.
fn copy_summing(from: &Path, to: &Path) -> io::Result<FileSum> {
    let mut source = File::open(from)?;
    let size = source.metadata()?.len();
    replace_via_temp(to, |temp| {
        let mut target = File::create_new(temp)?;
        let mut sum = Crc64::default();
        let mut buffer = super::transfer::read_buffer(size);
        loop {
            let n = source.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            sum.update(&buffer[..n]);
            target.write_all(&buffer[..n])?;
        }
        Ok(sum.finish())
    })
}

/// Runs `f` on the blocking pool. A panic in `f` is resumed here; a blocking task is
/// cancelled only when the runtime shuts down, which drops this task too, so it then waits
/// for that instead of panicking (a command that ends with an error while reads are in
/// flight shuts its runtime down so).
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(_) => std::future::pending().await,
    }
}

impl Store for LocalStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn locate(&self, key: &str) -> String {
        self.root.join(key).display().to_string()
    }

    async fn get(&self, key: &str) -> Result<(Vec<u8>, ObjectMeta)> {
        let path = self.path(key)?;
        let bytes = blocking(move || fs::read(path))
            .await
            .map_err(|e| self.io(key, e))?;
        let meta = ObjectMeta {
            key: key.into(),
            size: bytes.len() as u64,
            etag: Some(etag_of(&bytes)),
        };
        Ok((bytes, meta))
    }

    async fn head(&self, key: &str) -> Result<ObjectMeta> {
        let (_, meta) = self.get(key).await?;
        Ok(meta)
    }

    async fn put(&self, key: &str, body: Vec<u8>, mode: PutMode) -> Result<ETag> {
        let path = self.path(key)?;
        let outcome = {
            let mode = mode.clone();
            blocking(move || put_blocking(&path, &body, &mode))
                .await
                .map_err(|e| self.io(key, e))?
        };
        match outcome {
            Outcome::Written(etag) => Ok(etag),
            Outcome::Exists => Err(StoreError::AlreadyExists {
                object: self.locate(key),
            }),
            Outcome::Mismatch => Err(StoreError::PreconditionFailed {
                object: self.locate(key),
            }),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        check_prefix(prefix)?;
        let dir = self.root.join(prefix);
        let key_prefix = prefix.to_string();
        let mut objects = blocking(move || {
            let mut out = Vec::new();
            walk(&dir, &key_prefix, &mut out).map(|()| out)
        })
        .await
        .map_err(|e| self.io(prefix, e))?;
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    async fn list_after(&self, prefix: &str, after: Option<&str>) -> Result<Vec<ObjectMeta>> {
        check_prefix(prefix)?;
        let dir = self.root.join(prefix);
        let key_prefix = prefix.to_string();
        let after = after.map(str::to_owned);
        blocking(move || {
            let mut out = Vec::new();
            walk_after(&dir, &key_prefix, after.as_deref(), LIST_PAGE, &mut out).map(|()| out)
        })
        .await
        .map_err(|e| self.io(prefix, e))
    }

    async fn collect_stale(&self, prefix: &str) -> Result<u64> {
        check_prefix(prefix)?;
        let dir = self.root.join(prefix);
        blocking(move || super::stale::collect(&dir, std::time::SystemTime::now()))
            .await
            .map_err(|e| self.io(prefix, e))
    }

    async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        check_prefix(prefix)?;
        let dir = self.root.join(prefix);
        let mut names = blocking(move || -> io::Result<Vec<String>> {
            let Some(entries) = super::walk::entries_if_any(&dir)? else {
                return Ok(Vec::new());
            };
            let mut names = Vec::new();
            for entry in entries {
                let entry = entry?;
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if name.starts_with('.') || !entry.file_type()?.is_dir() {
                    continue;
                }
                // Like S3, a "directory" exists only while something is in it.
                if fs::read_dir(entry.path())?.next().is_some() {
                    names.push(name);
                }
            }
            Ok(names)
        })
        .await
        .map_err(|e| self.io(prefix, e))?;
        names.sort();
        Ok(names)
    }

    async fn tag_work(&self, key: &str) -> Result<()> {
        // Files have no tags; nothing expires a local store's work tables but `respawn gc`.
        check_key(key)
    }

    async fn delete_many(&self, keys: &[String]) -> Result<()> {
        let mut paths = Vec::with_capacity(keys.len());
        for key in keys {
            paths.push(self.path(key)?);
        }
        let root = self.root.clone();
        let failed = blocking(move || {
            for path in &paths {
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Some((path.clone(), e)),
                }
                // Remove directories left empty, up to the root; stop at the first that
                // is not empty (or that a writer just recreated).
                let mut dir = path.parent();
                while let Some(d) = dir {
                    if d == root || fs::remove_dir(d).is_err() {
                        break;
                    }
                    dir = d.parent();
                }
            }
            None
        })
        .await;
        match failed {
            None => Ok(()),
            Some((path, source)) => Err(StoreError::Io {
                object: path.display().to_string(),
                source,
            }),
        }
    }

    /// Deletes as it walks, so a prefix of a million objects is never listed in memory.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        self.collect_stale(prefix).await?;
        let dir = self.root.join(prefix);
        let root = self.root.clone();
        blocking(move || {
            let removed = remove_objects(&dir)?;
            // The prefix's own directory and its parents, while empty, as S3 shows them.
            let mut up = Some(dir.as_path());
            while let Some(d) = up {
                if d == root || fs::remove_dir(d).is_err() {
                    break;
                }
                up = d.parent();
            }
            Ok(removed)
        })
        .await
        .map_err(|e| self.io(prefix, e))
    }

    async fn upload_file(&self, path: &Path, key: &str) -> Result<FileSum> {
        let target = self.path(key)?;
        let source = path.to_path_buf();
        blocking(move || copy_summing(&source, &target))
            .await
            .map_err(|e| StoreError::Io {
                object: format!("{} -> {}", path.display(), self.locate(key)),
                source: e,
            })
    }

    async fn copy(&self, from: &str, to: &str) -> Result<ObjectMeta> {
        let source = self.path(from)?;
        let target = self.path(to)?;
        let size = blocking(move || copy_atomically(&source, &target))
            .await
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound if !self.root.join(from).exists() => StoreError::NotFound {
                    object: self.locate(from),
                },
                _ => StoreError::Io {
                    object: format!("{} -> {}", self.locate(from), self.locate(to)),
                    source: e,
                },
            })?;
        Ok(ObjectMeta {
            key: to.into(),
            size,
            etag: None,
        })
    }

    async fn download_file(&self, key: &str, path: &Path) -> Result<FileSum> {
        let source = self.path(key)?;
        let target = path.to_path_buf();
        blocking(move || copy_summing(&source, &target))
            .await
            .map_err(|e| match e.kind() {
                io::ErrorKind::NotFound if !self.root.join(key).exists() => StoreError::NotFound {
                    object: self.locate(key),
                },
                _ => StoreError::Io {
                    object: format!("{} -> {}", self.locate(key), path.display()),
                    source: e,
                },
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreErrorKind;

    #[tokio::test]
    async fn the_kinds_of_local_failures() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let missing = store.get("runs/none").await.unwrap_err();
        assert_eq!(missing.kind(), StoreErrorKind::NotFound, "{missing}");

        let first = store
            .put("k", b"1".to_vec(), PutMode::Create)
            .await
            .unwrap();
        let taken = store
            .put("k", b"2".to_vec(), PutMode::Create)
            .await
            .unwrap_err();
        assert_eq!(taken.kind(), StoreErrorKind::Precondition, "{taken}");
        store
            .put("k", b"3".to_vec(), PutMode::Update(first.clone()))
            .await
            .unwrap();
        let stale = store
            .put("k", b"4".to_vec(), PutMode::Update(first))
            .await
            .unwrap_err();
        assert_eq!(stale.kind(), StoreErrorKind::Precondition, "{stale}");

        // A directory where an object was expected: a local I/O problem, not a missing object.
        store
            .put("d/inner", b"x".to_vec(), PutMode::Overwrite)
            .await
            .unwrap();
        let directory = store.get("d").await.unwrap_err();
        assert_eq!(directory.kind(), StoreErrorKind::Io, "{directory}");

        let bad_key = store.get("../k").await.unwrap_err();
        assert_eq!(bad_key.kind(), StoreErrorKind::Configuration, "{bad_key}");

        let root_is_a_file = LocalStore::open(&dir.path().join("k")).unwrap_err();
        assert_eq!(
            root_is_a_file.kind(),
            StoreErrorKind::Io,
            "{root_is_a_file}"
        );
    }

    #[test]
    fn io_error_kinds_of_objects() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        for (io_kind, kind) in [
            (io::ErrorKind::NotFound, StoreErrorKind::NotFound),
            (io::ErrorKind::PermissionDenied, StoreErrorKind::Access),
            (io::ErrorKind::ReadOnlyFilesystem, StoreErrorKind::Access),
            (io::ErrorKind::TimedOut, StoreErrorKind::Transient),
            (io::ErrorKind::InvalidData, StoreErrorKind::Corrupt),
            (io::ErrorKind::StorageFull, StoreErrorKind::Io),
        ] {
            let error = store.io("runs/k", io::Error::from(io_kind));
            assert_eq!(error.kind(), kind, "{io_kind:?}: {error}");
        }
    }
}
