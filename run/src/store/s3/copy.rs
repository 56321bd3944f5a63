//! Copies inside the bucket, server-side: CopyObject up to 5 GiB (S3's limit for one
//! copy), UploadPartCopy in ranges above. The copy gets the tags of its own key (the work
//! tag only on work-table keys), never those of its source.

use super::S3Store;
use crate::store::{ObjectMeta, Result, Store};
use aws_sdk_s3::types::{CompletedPart, TaggingDirective};

/// The largest object one CopyObject may copy.
const COPY_OBJECT_LIMIT: u64 = 5 << 30;
/// The range each UploadPartCopy copies above that limit.
const COPY_PART: u64 = 1 << 30;

/// `bucket/key` as CopySource takes it: URL-encoded, `/` kept.
fn copy_source(bucket: &str, full_key: &str) -> String {
    let mut out = format!("{bucket}/");
    for byte in full_key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~/".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl S3Store {
    pub(super) async fn copy_object(&self, from: &str, to: &str) -> Result<ObjectMeta> {
        let source = self.head(from).await?;
        let full_from = self.full_key(from)?;
        let full_to = self.full_key(to)?;
        let source_url = copy_source(&self.bucket, &full_from);
        if source.size > COPY_OBJECT_LIMIT {
            self.copy_in_parts(&source_url, &full_to, source.size)
                .await?;
        } else {
            // A copy of the same source is idempotent: every try may simply run again.
            self.retrying(|_| async {
                self.client
                    .copy_object()
                    .bucket(&self.bucket)
                    .key(&full_to)
                    .copy_source(&source_url)
                    .tagging_directive(TaggingDirective::Replace)
                    .set_tagging(self.tagging(&full_to))
                    .send()
                    .await
                    .map_err(|e| self.error("CopyObject", self.locate(to), e))
            })
            .await?;
        }
        Ok(ObjectMeta {
            key: to.into(),
            size: source.size,
            etag: None,
        })
    }

    async fn copy_in_parts(&self, source_url: &str, full_to: &str, size: u64) -> Result<()> {
        let object = self.locate(self.relative(full_to));
        let upload_id = self.start_upload(full_to).await?;
        let mut parts = Vec::new();
        let mut offset = 0;
        while offset < size {
            let end = (offset + COPY_PART).min(size) - 1;
            let number = parts.len() as i32 + 1;
            let copied = self
                .retrying(|_| async {
                    self.client
                        .upload_part_copy()
                        .bucket(&self.bucket)
                        .key(full_to)
                        .upload_id(&upload_id)
                        .part_number(number)
                        .copy_source(source_url)
                        .copy_source_range(format!("bytes={offset}-{end}"))
                        .send()
                        .await
                        .map_err(|e| self.error("UploadPartCopy", object.clone(), e))
                })
                .await;
            let copied = match copied {
                Ok(copied) => copied,
                Err(e) => {
                    // Best effort, as for uploads: a lifecycle rule removes what stays.
                    let _ = self
                        .client
                        .abort_multipart_upload()
                        .bucket(&self.bucket)
                        .key(full_to)
                        .upload_id(&upload_id)
                        .send()
                        .await;
                    return Err(e);
                }
            };
            let etag = copied
                .copy_part_result()
                .and_then(|r| r.e_tag())
                .map(str::to_owned);
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(etag)
                    .build(),
            );
            offset = end + 1;
        }
        self.complete_upload(full_to, &upload_id, parts, size).await
    }
}

#[cfg(test)]
mod tests {
    use super::copy_source;

    #[test]
    fn a_copy_source_is_url_encoded_but_keeps_its_slashes() {
        assert_eq!(
            copy_source("b", "team/out/a b+c%/é.csv"),
            "b/team/out/a%20b%2Bc%25/%C3%A9.csv"
        );
    }
}
