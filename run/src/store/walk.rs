//! The local store's walks of its directory tree: listing the objects under a folder, and
//! deleting them as they are found. Both skip the temporary files of writers at work.

use super::ObjectMeta;
use super::local::TEMP_PREFIX;
use std::fs;
use std::io;
use std::path::Path;

/// The entries of `dir`, or `None` when there is no such directory (nothing is under it).
pub(super) fn entries_if_any(dir: &Path) -> io::Result<Option<fs::ReadDir>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(Some(entries)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every object under `dir`, as keys under `key_prefix`, in no particular order.
pub(super) fn walk(dir: &Path, key_prefix: &str, out: &mut Vec<ObjectMeta>) -> io::Result<()> {
    let Some(entries) = entries_if_any(dir)? else {
        return Ok(());
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(TEMP_PREFIX) {
            continue;
        }
        let key = format!("{key_prefix}{name}");
        let metadata = match entry.metadata() {
            Ok(m) => m,
            // Deleted while we were listing.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if metadata.is_dir() {
            walk(&entry.path(), &format!("{key}/"), out)?;
        } else if metadata.is_file() {
            out.push(ObjectMeta {
                key,
                size: metadata.len(),
                etag: None,
            });
        }
    }
    Ok(())
}

/// Removes every object under `dir` (what [`walk`] lists: not the temporary files of
/// writers at work), file by file as the walk finds them, and the directories left empty.
/// Holds one directory's iterator per level, never a listing. Returns how many objects.
pub(super) fn remove_objects(dir: &Path) -> io::Result<u64> {
    let Some(entries) = entries_if_any(dir)? else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            continue;
        }
        let kind = match entry.file_type() {
            Ok(kind) => kind,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if kind.is_dir() {
            removed += remove_objects(&entry.path())?;
            // Not empty (a writer's temporary file, or a new object): left.
            let _ = fs::remove_dir(entry.path());
        } else if kind.is_file() {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// Objects in a page of the local store's listing: larger than S3's 1,000, since a page
/// costs a read of the directories it passes through, not a request.
pub(super) const LIST_PAGE: usize = 10_000;

/// Up to `limit` objects under `dir` whose keys come after `after`, in key order, appended
/// to `out`. Each directory is read and sorted as its keys would sort (a folder `a` as
/// `a/`, so `a-b` comes before `a/x`); folders whose keys all come before `after` are not
/// entered, so a page reads only the folders it lists from.
pub(super) fn walk_after(
    dir: &Path,
    key_prefix: &str,
    after: Option<&str>,
    limit: usize,
    out: &mut Vec<ObjectMeta>,
) -> io::Result<()> {
    let Some(entries) = entries_if_any(dir)? else {
        return Ok(());
    };
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Ok(mut name) = entry.file_name().into_string() else {
            continue;
        };
        if name.starts_with(TEMP_PREFIX) {
            continue;
        }
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => name.push('/'),
            Ok(kind) if kind.is_file() => {}
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
        names.push(name);
    }
    names.sort_unstable();
    for name in names {
        if out.len() >= limit {
            break;
        }
        let key = format!("{key_prefix}{name}");
        if let Some(folder) = name.strip_suffix('/') {
            // Every key under `key` sorts before `after` unless `after` is under it too.
            if after.is_some_and(|a| a > key.as_str() && !a.starts_with(key.as_str())) {
                continue;
            }
            walk_after(&dir.join(folder), &key, after, limit, out)?;
        } else if after.is_none_or(|a| key.as_str() > a) {
            let metadata = match fs::metadata(dir.join(&name)) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            out.push(ObjectMeta {
                key,
                size: metadata.len(),
                etag: None,
            });
        }
    }
    Ok(())
}
