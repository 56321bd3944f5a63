//! The S3 backend's own part of `respawn store check` (`drivers/store/check.rs`): a
//! multipart upload read back, and object tags set on write and afterwards.

use super::S3Store;
use crate::store::check::{CheckResult, judged};
use crate::store::{PutMode, Result, Store, StoreError, WORK_TAG, checksum_file};

impl S3Store {
    /// The tags of an object, as the server reports them.
    async fn object_tags(&self, key: &str) -> Result<Vec<(String, String)>> {
        let full = self.full_key(key)?;
        let output = self
            .retrying(|_| async {
                self.client
                    .get_object_tagging()
                    .bucket(&self.bucket)
                    .key(&full)
                    .send()
                    .await
                    .map_err(|e| self.error("GetObjectTagging", self.locate(key), e))
            })
            .await?;
        Ok(output
            .tag_set()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().to_owned()))
            .collect())
    }

    /// A file of three parts uploaded with multipart, then downloaded and compared.
    async fn multipart_check(&self, scratch: &str) -> Result<CheckResult> {
        const PART: u64 = 5 << 20;
        let size = 2 * PART + 12_345;
        let dir = tempfile_dir()?;
        let (source, copy) = (dir.join("source"), dir.join("copy"));
        let pattern: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
        let io = |source: std::io::Error| StoreError::Io {
            object: dir.display().to_string(),
            source,
        };
        std::fs::write(&source, &pattern).map_err(io)?;
        let key = &format!("{scratch}/multipart");
        let mut small_parts = self.clone();
        small_parts.transfer.part_size = PART;
        let outcome = async {
            small_parts
                .upload_multipart(&source, &self.full_key(key)?, size)
                .await?;
            let sum = self.download_file(key, &copy).await?;
            let want = checksum_file(&source).map_err(io)?;
            Ok::<_, StoreError>(sum == want)
        }
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        let same = outcome?;
        Ok(CheckResult {
            name: "multipart upload".into(),
            passed: same,
            required: true,
            detail: format!(
                "{size} bytes in 3 parts read back {}",
                if same { "unchanged" } else { "different" }
            ),
            meaning: if same {
                "work-table files of 64 MiB or more upload in parts and come back whole"
            } else {
                "large work-table files would come back damaged (the COMMIT checksums would refuse them)"
            }
            .into(),
        })
    }

    /// Tags set by a put of a work-table key and by a later tagging call.
    async fn tagging_check(&self, scratch: &str) -> Result<CheckResult> {
        let work_key = &format!("{}work/tagged", work_run(scratch));
        let plain_key = &format!("{scratch}/tagged-later");
        self.put(work_key, b"work".to_vec(), PutMode::Overwrite)
            .await?;
        self.put(plain_key, b"plain".to_vec(), PutMode::Overwrite)
            .await?;
        self.tag_work(plain_key).await?;
        let want = vec![(WORK_TAG.0.to_string(), WORK_TAG.1.to_string())];
        let on_write = self.object_tags(work_key).await?;
        let later = self.object_tags(plain_key).await?;
        self.delete_many(&[work_key.to_string()]).await?;
        let passed = on_write == want && later == want;
        Ok(CheckResult {
            name: "object tags".into(),
            passed,
            required: false,
            detail: format!("tags set on write: {on_write:?}; set afterwards: {later:?}"),
            meaning: if passed {
                "the bucket's lifecycle rule on the work tag can expire work-tables a dead run left"
            } else {
                "the lifecycle safety net on the work tag will not see work-tables (respawn's own cleanup still runs)"
            }
            .into(),
        })
    }

    /// The backend's own checks, writing under `scratch`: multipart uploads are required,
    /// object tags optional (without them the lifecycle rule cannot see work-tables).
    pub async fn backend_checks(&self, scratch: &str) -> Result<Vec<CheckResult>> {
        let multipart = self.multipart_check(scratch);
        let refused = "work-table files of 64 MiB or more cannot be uploaded";
        let multipart = judged("multipart upload", true, refused, multipart).await?;
        let tags = self.tagging_check(scratch);
        let refused = "the lifecycle safety net on the work tag will not see work-tables (respawn's own cleanup still runs)";
        let tags = judged("object tags", false, refused, tags).await;
        self.delete_prefix(&work_run(scratch)).await?;
        Ok(vec![multipart, tags?])
    }
}

/// Where the tagging check writes a work-table key (which is tagged as it is written): a
/// run folder named after the check's scratch prefix, ending in `/`.
fn work_run(scratch: &str) -> String {
    let run = scratch.rsplit('/').next().unwrap_or("check");
    format!(".respawn-check/runs/{run}/")
}

/// A new private temporary directory.
fn tempfile_dir() -> Result<std::path::PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("respawn-check-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
        object: dir.display().to_string(),
        source,
    })?;
    Ok(dir)
}
