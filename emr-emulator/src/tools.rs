//! Programs an EMR primary node has that the emulator provides itself, first on the PATH of
//! every step: `s3-dist-cp --src=DIR --dest=DIR` (the step runner has already turned the
//! `hdfs://` and `s3://` URLs into local folders, and uploads the destination after the
//! step as EMRFS would have written it).

use std::path::{Path, PathBuf};

const S3_DIST_CP: &str = r#"#!/bin/sh
# s3-dist-cp as the EMR emulator runs it: copies --src=DIR into --dest=DIR.
src=
dest=
for arg in "$@"; do
  case "$arg" in
    --src=*) src="${arg#--src=}" ;;
    --dest=*) dest="${arg#--dest=}" ;;
  esac
done
if [ -z "$src" ] || [ -z "$dest" ]; then
  echo "s3-dist-cp: --src=... and --dest=... are required" >&2
  exit 2
fi
if [ ! -d "$src" ]; then
  echo "s3-dist-cp: $src does not exist" >&2
  exit 1
fi
mkdir -p "$dest" && cp -R "$src"/. "$dest"/
"#;

/// The folder the tools are in.
fn folder(work_dir: &Path) -> PathBuf {
    work_dir.join("bin")
}

/// Writes the tools into the emulator's work folder.
pub(crate) fn install(work_dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bin = folder(work_dir);
    std::fs::create_dir_all(&bin)?;
    let path = bin.join("s3-dist-cp");
    std::fs::write(&path, S3_DIST_CP)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
}

/// A step's PATH: the tools, then `first` (spark-submit's folder) if any, then the
/// emulator's own PATH.
pub(crate) fn step_path(work_dir: &Path, first: Option<&Path>) -> std::ffi::OsString {
    let mut paths = vec![folder(work_dir)];
    paths.extend(first.map(Path::to_path_buf));
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).unwrap_or_default()
}
