//! The files of a local work-table, walked in the order a store lists their keys.

use super::is_work_table_file;
use std::path::{Path, PathBuf};

/// Every regular file under `dir`, as relative `/`-separated paths, sorted (byte order,
/// as a store lists their keys), found as they are iterated: one directory's sorted names
/// per level are held, never the whole list.
///
/// What a local work-table may contain (README, "What a work-table may contain"): regular
/// files and directories, whose paths are valid store keys (UTF-8, no control character or
/// backslash, no name starting with `.respawn-tmp-`). Anything else (a symbolic link,
/// wherever it points, a FIFO, a socket, a device, a name that is no key) is an
/// `InvalidData` error naming the file: it is never followed, skipped or copied. Empty
/// directories hold nothing and are not kept.
///
/// What Spark and Hadoop write beside the data is left out ([`is_work_table_file`]).
pub fn local_files(dir: &Path) -> LocalFiles {
    LocalFiles {
        pending: Some(dir.to_path_buf()),
        stack: Vec::new(),
    }
}

/// The iterator of [`local_files`].
pub struct LocalFiles {
    /// The top directory, until it is read.
    pending: Option<PathBuf>,
    /// Per level: the directory, its path relative to the top (`a/b/`), and the entries
    /// not yet visited (a folder's name ends in `/`), in order.
    stack: Vec<(PathBuf, String, std::vec::IntoIter<String>)>,
}

impl Iterator for LocalFiles {
    type Item = std::io::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(top) = self.pending.take()
            && let Err(e) = self.enter(top, String::new())
        {
            return Some(Err(e));
        }
        loop {
            let (dir, prefix, names) = self.stack.last_mut()?;
            let Some(name) = names.next() else {
                self.stack.pop();
                continue;
            };
            let relative = format!("{prefix}{name}");
            if let Some(folder) = name.strip_suffix('/') {
                let path = dir.join(folder);
                if let Err(e) = self.enter(path, relative) {
                    self.stack.clear();
                    return Some(Err(e));
                }
            } else if is_work_table_file(&relative) {
                return Some(Ok(relative));
            }
        }
    }
}

impl LocalFiles {
    /// Reads, checks and sorts a directory's entries, and pushes them as the next level.
    fn enter(&mut self, dir: PathBuf, prefix: String) -> std::io::Result<()> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(refuse(&path, "is not a UTF-8 file name"));
            };
            let relative = format!("{prefix}{name}");
            if let Some(problem) = respawn_core::workflow::store_url::key_problem(&relative) {
                return Err(refuse(&path, &format!("has a name that {problem}")));
            }
            let kind = entry.file_type()?;
            if kind.is_dir() {
                names.push(format!("{name}/"));
            } else if kind.is_file() {
                names.push(name);
            } else if kind.is_symlink() {
                return Err(refuse(&path, "is a symbolic link"));
            } else {
                return Err(refuse(&path, "is not a regular file"));
            }
        }
        names.sort_unstable();
        self.stack.push((dir, prefix, names.into_iter()));
        Ok(())
    }
}

fn refuse(path: &Path, what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "`{}` {what}; a work-table holds only regular files and directories",
            path.display().to_string().escape_default()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::local_files;

    #[test]
    fn a_work_table_is_walked_in_key_order_without_respawns_own_files() {
        let dir = tempfile::tempdir().unwrap();
        for path in [
            "a/x",
            "a-b",
            "a/y/z",
            "a0",
            "_SUCCESS",
            "_SUCCESS.parts/p",
            "b/_SUCCESS",
        ] {
            let file = dir.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, path).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("empty/inner")).unwrap();
        let walked: Vec<String> = local_files(dir.path()).map(Result::unwrap).collect();
        // '-' sorts before '/', and `a0` after every key under `a/`, as in a listing.
        assert_eq!(walked, ["a-b", "a/x", "a/y/z", "a0", "b/_SUCCESS"]);
    }

    #[test]
    fn a_missing_directory_is_an_error_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut walk = local_files(&dir.path().join("gone"));
        assert!(walk.next().unwrap().is_err());
        assert!(walk.next().is_none());
    }
}
