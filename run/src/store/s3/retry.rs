//! Retries of S3 requests, decided here rather than in the SDK (whose own retries are off):
//! every request that fails with a transient or throttling error is tried again with
//! jittered exponential backoff.
//!
//! - While a store is being opened (credentials, bucket, the probe) a request is tried
//!   [`S3Options::max_attempts`](super::S3Options) times, so a wrong endpoint is reported in
//!   seconds.
//! - Once it is open, a request is tried again until it has failed for
//!   [`S3Options::outage`](super::S3Options): the longest store outage a command rides out.
//!   After that the command stops with the error (exit 3), and running it again resumes.
//!
//! A conditional put whose earlier try may have been applied (its connection was cut, or
//! it got a 500) and whose retry then loses its condition is read back: when the object
//! holds exactly the bytes this put wrote, the earlier try won and the put succeeded. The
//! SDK cannot tell a client this, and without it an orchestrator would think it had lost
//! its own lease, or write one event twice.
//!
//! A server may also answer a lost condition before it has read the body and close the
//! connection (hyper and Go servers do, for bodies larger than they care to drain): the
//! client sees only a cut connection, and every retry of a large body is cut the same way.
//! So a conditional put that was cut asks the object first ([`S3Store::condition_lost`]):
//! when its condition no longer holds, the put lost (or its earlier try won, which the
//! read-back above tells), and is not tried again.

use super::S3Store;
use crate::store::{ETag, PutMode, Store, StoreError, StoreErrorKind};
use backon::BackoffBuilder;
use std::future::Future;
use std::time::{Duration, Instant};

/// How long a store may fail before a request gives up.
#[derive(Clone, Copy, Debug)]
pub(super) enum Patience {
    /// While the store is opened: this many tries in all.
    Attempts(u32),
    /// Once it is open: until a request has failed for this long.
    Outage(Duration),
}

/// Whether a failed try may have changed the object: an answer that says the request was
/// refused (throttled, not found, a lost condition, access denied) did not; a cut
/// connection, a timeout or a server error may have.
pub(super) fn may_have_applied(error: &StoreError) -> bool {
    error.kind() == StoreErrorKind::Transient
}

impl S3Store {
    /// Runs `attempt` until it succeeds, fails for good, or the store's patience is spent.
    /// `attempt` gets the number of the try (from 1).
    pub(super) async fn retrying<T, F, Fut>(&self, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let mut delays = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(2))
            .with_factor(2.0)
            .without_max_times()
            .with_jitter()
            .build();
        let mut first_failure: Option<Instant> = None;
        let mut number = 1;
        loop {
            let error = match attempt(number).await {
                Ok(done) => return Ok(done),
                Err(error) if !error.is_transient() => return Err(error),
                Err(error) => error,
            };
            let since = *first_failure.get_or_insert_with(Instant::now);
            let delay = delays.next().unwrap_or(Duration::from_secs(2));
            let more = match self.patience {
                Patience::Attempts(max) => number < max,
                Patience::Outage(outage) => since.elapsed() + delay <= outage,
            };
            if !more {
                return Err(self.gave_up(error, number));
            }
            tracing::debug!(
                try_number = number,
                "retrying a store request after {error}"
            );
            tokio::time::sleep(delay).await;
            number += 1;
        }
    }

    /// The last error of a request that will not be tried again, saying how often it was.
    fn gave_up(&self, error: StoreError, tries: u32) -> StoreError {
        match error {
            StoreError::Unreachable {
                endpoint, detail, ..
            } => StoreError::Unreachable {
                endpoint,
                detail,
                attempts: tries,
            },
            other => other,
        }
    }

    /// After a conditional put to `key` was cut: the lost condition when the object shows
    /// it no longer holds (a create-only key that exists, an If-Match key at another
    /// version or gone), or `None` when it still holds or the object cannot be asked now.
    pub(super) async fn condition_lost(
        &self,
        full: &str,
        key: &str,
        mode: &PutMode,
    ) -> Option<StoreError> {
        let expected: Option<&ETag> = match mode {
            PutMode::Overwrite => return None,
            PutMode::Create => None,
            PutMode::Update(etag) => Some(etag),
        };
        let object = self.locate(key);
        let head = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(full)
            .send()
            .await;
        let current = match head {
            Ok(output) => Some(output.e_tag().unwrap_or_default().to_owned()),
            Err(e) => match self.error("HeadObject", object.clone(), e) {
                StoreError::NotFound { .. } => None,
                _ => return None,
            },
        };
        match (expected, current) {
            (None, Some(_)) => Some(StoreError::AlreadyExists { object }),
            (Some(_), None) => Some(StoreError::PreconditionFailed { object }),
            (Some(etag), Some(now)) if now != etag.0 => {
                Some(StoreError::PreconditionFailed { object })
            }
            _ => None,
        }
    }
}
