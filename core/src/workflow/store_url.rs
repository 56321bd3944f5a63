//! Store URLs (`s3://bucket/prefix`, `file:///path`, or a plain path) and the rules every
//! object key obeys. Pure: the workflow layer checks `store:` with it, and the store drivers
//! open what it parses.

use std::path::PathBuf;

/// A store URL that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid store URL `{url}`: {reason}")]
pub struct UrlError {
    pub url: String,
    pub reason: String,
}

/// Longest key accepted (S3 allows 1024 bytes; the rest is room for a store's prefix).
pub const MAX_KEY_LEN: usize = 900;

/// Names starting with this are the local store's temporary files: no key may use it.
pub const TEMP_PREFIX: &str = ".respawn-tmp-";

/// The longest value an EMR tag holds. Each EMR cluster respawn starts is tagged with its
/// store's URL (`respawn:store`), so a longer URL would have every cluster refused.
pub const EMR_TAG_VALUE_MAX: usize = 256;

/// Why an EMR workflow cannot use the store `url`, if it cannot: the URL is too long for the
/// tag each cluster gets ([`EMR_TAG_VALUE_MAX`]).
pub fn emr_store_problem(url: &str) -> Option<String> {
    let length = url.chars().count();
    (length > EMR_TAG_VALUE_MAX).then(|| {
        format!(
            "the store URL is {length} characters long; each EMR cluster is tagged with it \
             (`respawn:store`), and an EMR tag value holds at most {EMR_TAG_VALUE_MAX}"
        )
    })
}

/// What is wrong with an object key, if anything: keys are `/`-separated paths with no
/// empty, `.` or `..` segment, no control character or backslash, no reserved name.
pub fn key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return Some("is too long");
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return Some("contains a control character or a backslash");
    }
    for segment in key.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Some("has an empty, `.` or `..` path segment");
        }
        if segment.starts_with(TEMP_PREFIX) {
            return Some("uses a name reserved for temporary files");
        }
    }
    None
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreUrl {
    Local(PathBuf),
    /// `prefix` is empty or ends in `/`.
    S3 {
        bucket: String,
        prefix: String,
    },
}

impl StoreUrl {
    pub fn parse(text: &str) -> Result<StoreUrl, UrlError> {
        let invalid = |reason: &str| UrlError {
            url: text.into(),
            reason: reason.into(),
        };
        if text.is_empty() {
            return Err(invalid("is empty"));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            check_bucket_name(bucket).map_err(|reason| invalid(&reason))?;
            let prefix = prefix.trim_end_matches('/');
            let prefix = if prefix.is_empty() {
                String::new()
            } else {
                if let Some(reason) = key_problem(prefix) {
                    return Err(invalid(&format!("the prefix {reason}")));
                }
                format!("{prefix}/")
            };
            return Ok(StoreUrl::S3 {
                bucket: bucket.into(),
                prefix,
            });
        }
        if let Some(path) = text.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(invalid(
                    "a file URL needs an absolute path, as in file:///data/respawn",
                ));
            }
            return Ok(StoreUrl::Local(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(invalid(&format!(
                "unknown scheme `{scheme}`; use s3://bucket/prefix, file:///path or a plain path"
            )));
        }
        Ok(StoreUrl::Local(PathBuf::from(text)))
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreUrl::Local(path) => write!(f, "{}", path.display()),
            StoreUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// S3's bucket naming rules (3-63 characters of lowercase letters, digits, `-` and `.`,
/// starting and ending with a letter or digit).
fn check_bucket_name(bucket: &str) -> Result<(), String> {
    if bucket.is_empty() {
        return Err("no bucket name after s3://".into());
    }
    if !(3..=63).contains(&bucket.len()) {
        return Err(format!(
            "bucket name `{bucket}` must be 3 to 63 characters long"
        ));
    }
    if let Some(c) = bucket
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "bucket name `{bucket}` contains `{}`; only lowercase letters, digits, `-` and `.` are allowed",
            c.escape_default()
        ));
    }
    let edge_ok = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge_ok(bucket.chars().next()) || !edge_ok(bucket.chars().last()) {
        return Err(format!(
            "bucket name `{bucket}` must start and end with a letter or digit"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            StoreUrl::parse("s3://my-bucket/team/respawn/").unwrap(),
            StoreUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: "team/respawn/".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("s3://my-bucket").unwrap(),
            StoreUrl::S3 {
                bucket: "my-bucket".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            StoreUrl::parse("file:///data/x").unwrap(),
            StoreUrl::Local("/data/x".into())
        );
        assert_eq!(
            StoreUrl::parse(".respawn").unwrap(),
            StoreUrl::Local(".respawn".into())
        );
    }

    #[test]
    fn refuses_bad_urls_with_the_reason() {
        for (url, reason) in [
            ("s3://", "no bucket"),
            ("s3://ab", "3 to 63"),
            ("s3://My_Bucket/x", "contains `M`"),
            ("s3://bucket/../x", "`..`"),
            ("s3://bucket/a//b", "empty"),
            ("gs://bucket/x", "unknown scheme `gs`"),
            ("file://relative", "absolute path"),
            ("", "empty"),
        ] {
            let message = StoreUrl::parse(url).unwrap_err().to_string();
            assert!(message.contains(reason), "{url}: {message}");
        }
    }
}
