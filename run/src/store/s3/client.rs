//! The client: options, endpoint and addressing, credentials, and the key of an object
//! under the store's prefix.

use super::errors::error_chain;
use super::retry::Patience;
use crate::store::{Result, StoreError, TransferOptions, WORK_TAG, check_key, is_work_key};
use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, ProvideCredentials, Region};
use std::time::Duration;

/// Settings of the S3 backend that do not come from the store URL.
#[derive(Clone)]
pub struct S3Options {
    /// Overrides `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`.
    pub endpoint_url: Option<String>,
    /// Tries per request while the store is opened (credentials, bucket, probe), the
    /// first one included.
    pub max_attempts: u32,
    /// Once the store is open, how long a request is tried again before the command
    /// gives up: the longest store outage a run rides out (`--store-outage`).
    pub outage: Duration,
    pub connect_timeout: Duration,
    pub transfer: TransferOptions,
    /// An access key id and secret to use instead of the standard credential chain
    /// (for programs that embed respawn; the command line always uses the chain).
    pub static_credentials: Option<(String, String)>,
}

// Written by hand so that a secret never reaches a log line.
impl std::fmt::Debug for S3Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Options")
            .field("endpoint_url", &self.endpoint_url)
            .field("max_attempts", &self.max_attempts)
            .field("outage", &self.outage)
            .field("connect_timeout", &self.connect_timeout)
            .field("transfer", &self.transfer)
            .field(
                "static_credentials",
                &self
                    .static_credentials
                    .as_ref()
                    .map(|(id, _)| (id, "<redacted>")),
            )
            .finish()
    }
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint_url: None,
            max_attempts: 4,
            outage: DEFAULT_OUTAGE,
            connect_timeout: Duration::from_secs(3),
            transfer: TransferOptions::default(),
            static_credentials: None,
        }
    }
}

/// The default of [`S3Options::outage`].
pub const DEFAULT_OUTAGE: Duration = Duration::from_secs(120);

#[derive(Clone)]
pub struct S3Store {
    pub(super) client: Client,
    pub(super) bucket: String,
    /// Empty or ends in `/`.
    pub(super) prefix: String,
    pub(super) endpoint: String,
    /// The endpoint is AWS S3's own (none given, or a host under amazonaws.com).
    pub(super) aws: bool,
    pub(super) max_attempts: u32,
    pub(super) patience: Patience,
    pub(super) transfer: TransferOptions,
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl S3Store {
    /// Builds a client and resolves credentials (so that missing ones are reported at once).
    pub async fn connect(bucket: &str, prefix: &str, options: &S3Options) -> Result<S3Store> {
        let endpoint_url = options
            .endpoint_url
            .clone()
            .or_else(|| env_nonempty("AWS_ENDPOINT_URL_S3"))
            .or_else(|| env_nonempty("AWS_ENDPOINT_URL"));
        // Retries are decided in retry.rs, which knows when a write may have been applied.
        let retry = RetryConfig::disabled();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(options.connect_timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry)
            .timeout_config(timeouts);
        if let Some((id, secret)) = &options.static_credentials {
            loader =
                loader.credentials_provider(Credentials::new(id, secret, None, None, "respawn"));
        }
        let shared = loader.load().await;
        let mut config = aws_sdk_s3::config::Builder::from(&shared);
        if shared.region().is_none() {
            config = config.region(Region::new("us-east-1"));
        }
        let path_style = match env_nonempty("RESPAWN_S3_ADDRESSING").as_deref() {
            Some("path") => true,
            Some("virtual") => false,
            Some(other) => {
                return Err(StoreError::InvalidUrl {
                    url: format!("RESPAWN_S3_ADDRESSING={other}"),
                    reason: "must be `path` or `virtual`".into(),
                });
            }
            None => endpoint_url.is_some(),
        };
        if let Some(url) = &endpoint_url {
            check_endpoint(url)?;
        }
        let endpoint = match &endpoint_url {
            Some(url) => {
                config = config.endpoint_url(url);
                url.clone()
            }
            None => format!(
                "AWS S3 ({})",
                shared
                    .region()
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "us-east-1".into())
            ),
        };
        config = config.force_path_style(path_style);
        let detail = match shared.credentials_provider() {
            None => Some("no credential provider is configured".to_string()),
            Some(provider) => match provider.provide_credentials().await {
                Ok(_) => None,
                Err(e) => Some(error_chain(&e)),
            },
        };
        if let Some(detail) = detail {
            return Err(StoreError::Credentials { endpoint, detail });
        }
        Ok(S3Store {
            client: Client::from_conf(config.build()),
            bucket: bucket.into(),
            prefix: prefix.into(),
            aws: endpoint_url.as_deref().is_none_or(is_aws_endpoint),
            endpoint,
            max_attempts: options.max_attempts.max(1),
            patience: Patience::Attempts(options.max_attempts.max(1)),
            transfer: options.transfer.clone(),
        })
    }

    /// From now on, retries ride out outages up to `outage` long (the store is open).
    pub fn ride_out(&mut self, outage: Duration) {
        self.patience = Patience::Outage(outage);
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Whether the endpoint is AWS S3's own.
    pub fn is_aws(&self) -> bool {
        self.aws
    }

    /// Whether the store is a prefix of its bucket rather than the whole bucket.
    pub fn has_prefix(&self) -> bool {
        !self.prefix.is_empty()
    }

    /// The same bucket on the same endpoint, with no prefix.
    pub fn at_bucket_root(&self) -> S3Store {
        S3Store {
            prefix: String::new(),
            ..self.clone()
        }
    }

    pub(super) fn full_key(&self, key: &str) -> Result<String> {
        check_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    pub(super) fn relative<'a>(&self, full: &'a str) -> &'a str {
        full.strip_prefix(&self.prefix).unwrap_or(full)
    }

    /// The `x-amz-tagging` header for a new object: [`WORK_TAG`] on work-table keys.
    pub(super) fn tagging(&self, full: &str) -> Option<String> {
        is_work_key(self.relative(full)).then(|| {
            // URL-encoded query form; the tag's key has a `:`.
            format!("{}={}", WORK_TAG.0.replace(':', "%3A"), WORK_TAG.1)
        })
    }

    /// Fails with a clear error when the bucket does not exist or cannot be reached.
    pub async fn check_bucket(&self) -> Result<()> {
        let headed = self
            .retrying(|_| async {
                self.client
                    .head_bucket()
                    .bucket(&self.bucket)
                    .send()
                    .await
                    .map_err(|e| self.error("HeadBucket", format!("s3://{}", self.bucket), e))
            })
            .await;
        match headed {
            Ok(_) => Ok(()),
            Err(err) => match err {
                StoreError::NotFound { .. } => Err(StoreError::NoSuchBucket {
                    bucket: self.bucket.clone(),
                    endpoint: self.endpoint.clone(),
                }),
                other => Err(other),
            },
        }
    }
}

/// Whether an endpoint URL is AWS S3's own: `https://` and a host under `amazonaws.com`
/// (or `amazonaws.com.cn`).
fn is_aws_endpoint(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("https://") else {
        return false;
    };
    let host = rest
        .split(['/', ':'])
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn")
}

/// An endpoint is `http://` or `https://` and a host (with a port and a path if need be);
/// anything else is a bad URL, refused at once rather than retried as unreachable.
fn check_endpoint(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let reason = match rest {
        None => "an endpoint starts with http:// or https:// (e.g. http://127.0.0.1:9000)",
        Some(rest) if rest.split(['/', '?', '#']).next().is_none_or(str::is_empty) => {
            "it names no host"
        }
        Some(rest) if rest.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            "it contains a space or a control character"
        }
        Some(_) => return Ok(()),
    };
    Err(StoreError::InvalidUrl {
        url: url.escape_default().to_string(),
        reason: format!("not an S3 endpoint (--endpoint-url, AWS_ENDPOINT_URL): {reason}"),
    })
}

#[cfg(test)]
mod tests {
    use super::is_aws_endpoint;

    #[test]
    fn only_https_hosts_under_amazonaws_are_aws_s3() {
        assert!(is_aws_endpoint("https://s3.eu-west-1.amazonaws.com"));
        assert!(is_aws_endpoint(
            "https://bucket.s3.cn-north-1.amazonaws.com.cn/"
        ));
        assert!(is_aws_endpoint("https://S3.US-EAST-1.AMAZONAWS.COM:443"));
        assert!(!is_aws_endpoint("http://s3.eu-west-1.amazonaws.com"));
        assert!(!is_aws_endpoint("http://127.0.0.1:9000"));
        assert!(!is_aws_endpoint("https://minio.example.com"));
        assert!(!is_aws_endpoint("https://amazonaws.com.evil.example"));
    }
}
