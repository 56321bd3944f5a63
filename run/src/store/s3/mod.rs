//! The S3 backend on aws-sdk-s3: AWS S3 and S3-compatible servers (MinIO, Garage, RustFS).
//!
//! Credentials come from the standard AWS chain; the endpoint from `--endpoint-url`,
//! `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`. A custom endpoint is addressed path-style
//! (`http://host/bucket/key`), which every S3-compatible server understands; AWS itself
//! virtual-hosted-style. `RESPAWN_S3_ADDRESSING=path|virtual` overrides the choice.
//!
//! Requests that fail with throttling or transient errors are retried by `retry.rs`, not by
//! the SDK: for a few tries while the store is opened, then for as long as the store's
//! outage setting allows. DeleteObjects reports throttling per key inside a successful
//! response; [`S3Store::delete_many`] retries those keys with jittered backoff.
//! Nothing here logs a credential.

mod check;
mod client;
mod copy;
mod delete;
mod errors;
mod multipart;
mod objects;
mod probe;
mod retry;

pub use client::{S3Options, S3Store};
