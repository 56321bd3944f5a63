//! Where a step's URLs lead: S3 through respawn's own store code (an app and its sibling
//! modules, input folders and single objects downloaded, empty folders uploaded after the
//! step as EMRFS would have written them), `hdfs://` as a folder of the cluster, and the
//! step's logs under the LogUri.

use crate::emulator::Shared;
use crate::steps::{Failure, Job};
use respawn_run::store::{S3Options, S3Store, Store, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The S3 test server's credentials (respawn's tests/support/s3_server.rs), the default.
const TEST_ACCESS_KEY: &str = "respawn-test-access";
const TEST_SECRET_KEY: &str = "respawn-test-secret-key";

pub(crate) async fn upload_logs(shared: &Arc<Shared>, job: &Job) -> Option<String> {
    let (bucket, prefix) = parse_s3(job.log_uri.as_deref()?)?;
    let prefix = prefix.trim_end_matches('/');
    let folder = format!("{}/steps/{}/", job.cluster_id, job.step_id);
    let base = if prefix.is_empty() {
        folder
    } else {
        format!("{prefix}/{folder}")
    };
    let store = store_for(shared, bucket).await.ok()?;
    for name in ["stdout", "stderr"] {
        let path = job.step_dir.join(name);
        if path.is_file() {
            let _ = store.upload_file(&path, &format!("{base}{name}")).await;
        }
    }
    Some(format!("s3://{bucket}/{base}stderr"))
}

pub(crate) fn parse_s3(url: &str) -> Option<(&str, &str)> {
    let rest = ["s3://", "s3a://", "s3n://"]
        .iter()
        .find_map(|scheme| url.strip_prefix(scheme))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, key))
}

pub(crate) async fn store_for(shared: &Shared, bucket: &str) -> Result<S3Store, Failure> {
    if let Some(store) = shared.stores.lock().unwrap().get(bucket) {
        return Ok(store.clone());
    }
    let credentials = shared
        .config
        .s3_credentials
        .clone()
        .unwrap_or_else(|| (TEST_ACCESS_KEY.into(), TEST_SECRET_KEY.into()));
    let options = S3Options {
        endpoint_url: Some(shared.config.s3_endpoint.clone()),
        static_credentials: Some(credentials),
        ..S3Options::default()
    };
    let store = S3Store::connect(bucket, "", &options)
        .await
        .map_err(|e| Failure::new("S3 is not reachable", e.to_string()))?;
    shared
        .stores
        .lock()
        .unwrap()
        .insert(bucket.into(), store.clone());
    Ok(store)
}

/// Downloads every object under `prefix` into `dir`; returns how many.
async fn download_prefix(store: &S3Store, prefix: &str, dir: &Path) -> Result<usize, Failure> {
    let failed = |e: StoreError| {
        Failure::new(
            format!("Reading s3 prefix `{prefix}` failed"),
            e.to_string(),
        )
    };
    let objects = store.list(prefix).await.map_err(failed)?;
    let mut count = 0;
    for object in objects {
        let relative = &object.key[prefix.len()..];
        if relative.is_empty() || relative.ends_with('/') {
            continue;
        }
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Failure::new("Emulator I/O error", e.to_string()))?;
        }
        store
            .download_file(&object.key, &path)
            .await
            .map_err(failed)?;
        count += 1;
    }
    Ok(count)
}

/// The local path that replaces an `s3://` or `hdfs://` URL; outputs are recorded.
pub(crate) async fn resolve(
    shared: &Arc<Shared>,
    job: &Job,
    url: &str,
    is_app: bool,
    n: usize,
    outputs: &mut Vec<(PathBuf, String, String)>,
) -> Result<String, Failure> {
    let io = |e: std::io::Error| Failure::new("Emulator I/O error", e.to_string());
    if let Some(rest) = url.strip_prefix("hdfs://") {
        let path = if rest.starts_with('/') {
            rest
        } else {
            rest.find('/').map_or("/", |i| &rest[i..])
        };
        let local = format!("{}{path}", job.hdfs_root.display());
        if let Some(parent) = Path::new(&local).parent() {
            std::fs::create_dir_all(parent).map_err(io)?;
        }
        return Ok(local);
    }
    let (bucket, key) = parse_s3(url)
        .ok_or_else(|| Failure::new("Invalid S3 URL", format!("`{url}` names no bucket")))?;
    let store = store_for(shared, bucket).await?;
    if is_app {
        let folder = key
            .rsplit_once('/')
            .map_or(String::new(), |(d, _)| format!("{d}/"));
        let dir = job.step_dir.join("app");
        download_prefix(&store, &folder, &dir).await?;
        let file = dir.join(&key[folder.len()..]);
        if !file.is_file() {
            return Err(Failure::new(
                "Application not found",
                format!("{url} does not exist"),
            ));
        }
        return Ok(file.display().to_string());
    }
    let slash = if url.ends_with('/') { "/" } else { "" };
    let base = key.trim_end_matches('/');
    let prefix = if base.is_empty() {
        String::new()
    } else {
        format!("{base}/")
    };
    let dir = job.step_dir.join("s3").join(n.to_string());
    std::fs::create_dir_all(&dir).map_err(io)?;
    if download_prefix(&store, &prefix, &dir).await? > 0 {
        return Ok(format!("{}{slash}", dir.display()));
    }
    if !base.is_empty() {
        match store.head(base).await {
            Ok(_) => {
                let file = dir.join(base.rsplit('/').next().unwrap_or(base));
                store
                    .download_file(base, &file)
                    .await
                    .map_err(|e| Failure::new(format!("Reading {url} failed"), e.to_string()))?;
                return Ok(file.display().to_string());
            }
            Err(StoreError::NotFound { .. }) => {}
            Err(e) => return Err(Failure::new(format!("Reading {url} failed"), e.to_string())),
        }
    }
    outputs.push((dir.clone(), bucket.to_string(), prefix));
    Ok(format!("{}{slash}", dir.display()))
}

/// Uploads what a step wrote into `dir` under `prefix`, as EMRFS would have left it on
/// S3: every file, Spark's `_SUCCESS` marker included, but not the hidden `.crc` checksum
/// files Hadoop's local file system writes beside each file (S3 has none), nor an
/// unfinished `_temporary/` folder (Spark's committer removes it before `_SUCCESS`).
pub(crate) async fn upload_output(
    store: &S3Store,
    dir: &Path,
    prefix: &str,
) -> Result<usize, StoreError> {
    fn walk(dir: &Path, relative: &str, out: &mut Vec<String>) -> std::io::Result<()> {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let hadoop_checksum = name.starts_with('.') && name.ends_with(".crc");
            if hadoop_checksum || name == "_temporary" {
                continue;
            }
            let path = format!("{relative}{name}");
            if entry.file_type()?.is_dir() {
                walk(&entry.path(), &format!("{path}/"), out)?;
            } else {
                out.push(path);
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, "", &mut files).map_err(|source| StoreError::Io {
        object: dir.display().to_string(),
        source,
    })?;
    for file in &files {
        store
            .upload_file(&dir.join(file), &format!("{prefix}{file}"))
            .await?;
    }
    Ok(files.len())
}
