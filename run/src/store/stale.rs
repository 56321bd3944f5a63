//! Temporary files of the local store that a killed writer left behind. Every write goes
//! to `.respawn-tmp-<pid>-...` beside its target and is renamed into place; a writer killed
//! in between leaves the temporary file, which listings skip, so nothing else would ever
//! remove it (nor the folder it keeps from being empty). They are collected once their
//! writer is gone.

use super::local::TEMP_PREFIX;
use std::fs;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// How long a temporary file whose writer's process no longer exists on this machine must
/// have been left unchanged before it is collected. A writer on another machine that
/// shares the directory (and whose pid means nothing here) writes to its file, so its
/// modification time stays fresh, and renames it within this.
pub const IDLE_WHEN_GONE: Duration = Duration::from_secs(60);

/// Any temporary file left unchanged this long is collected, whoever wrote it (a pid can
/// be reused by another process).
pub const IDLE_ALWAYS: Duration = Duration::from_secs(24 * 3600);

/// Removes the stale temporary files under `dir` (recursively), and the folders that only
/// they kept from being empty, up to `dir`. Returns how many files it removed.
pub fn collect(dir: &Path, now: SystemTime) -> io::Result<u64> {
    let Some(entries) = super::walk::entries_if_any(dir)? else {
        return Ok(0);
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            let sub = entry.path();
            let found = collect(&sub, now)?;
            if found > 0 {
                // Only a folder the collection emptied goes; any other stays as it was.
                let _ = fs::remove_dir(&sub);
            }
            removed += found;
            continue;
        }
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        let modified = metadata.modified().unwrap_or(now);
        if kind.is_file() && is_stale(name, modified, now) {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// Whether the file `name`, last changed at `modified`, is a temporary file to collect.
fn is_stale(name: &str, modified: SystemTime, now: SystemTime) -> bool {
    let Some(rest) = name.strip_prefix(TEMP_PREFIX) else {
        return false;
    };
    let idle = now.duration_since(modified).unwrap_or_default();
    let writer = rest
        .split('-')
        .next()
        .and_then(|pid| pid.parse::<u32>().ok());
    idle >= IDLE_ALWAYS
        || (idle >= IDLE_WHEN_GONE && writer.is_none_or(crate::host::process_is_gone))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_idle_temporary_files_of_gone_writers_are_collected() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let gone = {
            let mut child = std::process::Command::new("true").spawn().unwrap();
            child.wait().unwrap();
            child.id()
        };
        let alive = std::process::id();
        let ago = |secs| now - Duration::from_secs(secs);
        let files = [
            ("out/a/data.csv", ago(3600), true),
            (
                &format!("out/a/{TEMP_PREFIX}{gone}-0-1") as &str,
                ago(3600),
                false,
            ),
            (&format!("out/b/{TEMP_PREFIX}{gone}-0-2"), ago(5), true),
            (&format!("out/c/{TEMP_PREFIX}{alive}-0-3"), ago(3600), true),
            (
                &format!("out/d/{TEMP_PREFIX}{alive}-0-4"),
                ago(90_000),
                false,
            ),
        ];
        for (path, modified, _) in &files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::File::create(&path)
                .unwrap()
                .set_modified(*modified)
                .unwrap();
        }
        assert_eq!(collect(dir.path(), now).unwrap(), 2);
        for (path, _, kept) in &files {
            assert_eq!(dir.path().join(path).exists(), *kept, "{path}");
        }
        assert!(!dir.path().join("out/d").exists(), "emptied folders go");
        assert!(dir.path().join("out/a").exists());
    }
}
