//! What can go wrong with a store. A [`StoreError`] names the object and says what
//! happened; its [`StoreErrorKind`] says what a caller can do about it (wait and retry,
//! give up, fix the setup), and is decided by the backend where the error is made: from
//! the HTTP status and error code of an S3 response, from the [`std::io::ErrorKind`] of
//! a file-system call, or by the variant itself.

use std::fmt;
use std::io;

/// What kind of failure a [`StoreError`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreErrorKind {
    /// A server error or a connection that failed or timed out (500, 502, 504, a dispatch
    /// failure): the same request may succeed later.
    Transient,
    /// The server asks for fewer requests (503 SlowDown, 429): retry later, with backoff.
    Throttled,
    /// The object does not exist (404, NoSuchKey).
    NotFound,
    /// A conditional write lost: the object already exists, or changed since it was read
    /// (412, 409).
    Precondition,
    /// The credentials are not allowed to do this (403).
    Access,
    /// The store is set up wrong, and retrying will not help: an invalid URL or key, no
    /// credentials or ones the server does not know, a wrong region, a missing bucket, a
    /// server that does not enforce conditional writes or refuses a request as made.
    Configuration,
    /// Something read from the store is damaged or not what respawn wrote, or a server
    /// answered with something that is not valid.
    Corrupt,
    /// A local file or directory could not be read or written.
    Io,
}

impl StoreErrorKind {
    /// The kind of a failed file-system call. A missing or existing *path* stays
    /// [`StoreErrorKind::Io`]: the backends report a missing or existing *object* as
    /// [`StoreError::NotFound`] or [`StoreError::AlreadyExists`] where they know it is one,
    /// and a path may just as well be a stage's output or the store's root.
    pub fn of_io(kind: io::ErrorKind) -> StoreErrorKind {
        use io::ErrorKind as E;
        match kind {
            E::PermissionDenied | E::ReadOnlyFilesystem => StoreErrorKind::Access,
            E::TimedOut | E::Interrupted | E::WouldBlock | E::ResourceBusy => {
                StoreErrorKind::Transient
            }
            E::InvalidData | E::UnexpectedEof => StoreErrorKind::Corrupt,
            _ => StoreErrorKind::Io,
        }
    }

    /// Whether the same request may succeed later.
    pub fn is_transient(self) -> bool {
        matches!(self, StoreErrorKind::Transient | StoreErrorKind::Throttled)
    }
}

/// The typed outcomes callers act on, and the failures they report.
///
/// Displayed as the message followed by ` (hint: ...)` when there is a hint; the command
/// line prints [`StoreError::message`] and [`StoreError::hint`] on lines of their own.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    NotFound {
        object: String,
    },
    AlreadyExists {
        object: String,
    },
    PreconditionFailed {
        object: String,
    },
    NoSuchBucket {
        bucket: String,
        endpoint: String,
    },
    Credentials {
        endpoint: String,
        detail: String,
    },
    Unreachable {
        endpoint: String,
        detail: String,
        attempts: u32,
    },
    AccessDenied {
        object: String,
        detail: String,
        /// [`StoreErrorKind::Access`], or [`StoreErrorKind::Configuration`] when the server
        /// does not know the credentials (a wrong key or secret, a clock too far off).
        kind: StoreErrorKind,
    },
    ConditionalWritesNotEnforced {
        endpoint: String,
        detail: String,
    },
    /// The store's last `respawn store check` failed (the verdict is kept in the store).
    FailedCheck {
        store: String,
        checked_at: String,
        reasons: String,
    },
    Corrupt {
        object: String,
        detail: String,
    },
    InvalidUrl {
        url: String,
        reason: String,
    },
    InvalidKey {
        key: String,
        reason: String,
    },
    Io {
        object: String,
        /// Its [`io::ErrorKind`] decides the error's kind ([`StoreErrorKind::of_io`]).
        #[source]
        source: io::Error,
    },
    Service {
        operation: &'static str,
        object: String,
        detail: String,
        kind: StoreErrorKind,
    },
}

impl StoreError {
    /// What kind of failure this is.
    pub fn kind(&self) -> StoreErrorKind {
        match self {
            StoreError::NotFound { .. } => StoreErrorKind::NotFound,
            StoreError::AlreadyExists { .. } | StoreError::PreconditionFailed { .. } => {
                StoreErrorKind::Precondition
            }
            StoreError::NoSuchBucket { .. }
            | StoreError::Credentials { .. }
            | StoreError::ConditionalWritesNotEnforced { .. }
            | StoreError::FailedCheck { .. }
            | StoreError::InvalidUrl { .. }
            | StoreError::InvalidKey { .. } => StoreErrorKind::Configuration,
            StoreError::Unreachable { .. } => StoreErrorKind::Transient,
            StoreError::Corrupt { .. } => StoreErrorKind::Corrupt,
            StoreError::AccessDenied { kind, .. } | StoreError::Service { kind, .. } => *kind,
            StoreError::Io { source, .. } => StoreErrorKind::of_io(source.kind()),
        }
    }

    /// Whether retrying the same request later may succeed (throttling, a server error, a
    /// connection problem).
    pub fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }

    /// What went wrong, without the hint.
    pub fn message(&self) -> String {
        Message(self).to_string()
    }

    /// What the user can do about it, when there is something to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            StoreError::NoSuchBucket { .. } => Some("create it, or check the store URL".into()),
            StoreError::AccessDenied { .. } => Some(
                "the credentials in use lack a permission on the store: reading commands need \
                 s3:GetObject and s3:ListBucket; run, tick, backfill, clean and gc also need \
                 s3:PutObject, s3:DeleteObject and s3:PutObjectTagging on its prefix (the \
                 orchestrator policy of infra/respawn-emr.yaml); check which credentials are \
                 in use (AWS_PROFILE, the environment)"
                    .into(),
            ),
            StoreError::Credentials { .. } => Some(
                "looked in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), the shared \
                 files ~/.aws/credentials and ~/.aws/config (AWS_PROFILE), a web identity token \
                 (AWS_WEB_IDENTITY_TOKEN_FILE), a credential_process, ECS container credentials \
                 and EC2 instance metadata"
                    .into(),
            ),
            StoreError::Unreachable { attempts, .. } => Some(format!(
                "gave up after {attempts} attempts; check --endpoint-url or AWS_ENDPOINT_URL"
            )),
            StoreError::ConditionalWritesNotEnforced { .. } => Some(
                "respawn coordinates through If-None-Match and If-Match; use AWS S3, MinIO, or \
                 another server that enforces them"
                    .into(),
            ),
            StoreError::FailedCheck { .. } => Some(
                "respawn will not run on it; fix the server or use another, then run `respawn \
                 store check URL` again"
                    .into(),
            ),
            _ => None,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Message(self).fmt(f)?;
        match self.hint() {
            Some(hint) => write!(f, " (hint: {hint})"),
            None => Ok(()),
        }
    }
}

/// A store error's message without its hint.
struct Message<'a>(&'a StoreError);

impl fmt::Display for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            StoreError::NotFound { object } => write!(f, "{object} does not exist"),
            StoreError::AlreadyExists { object } => write!(f, "{object} already exists"),
            StoreError::PreconditionFailed { object } => write!(
                f,
                "{object} changed since it was read (its ETag no longer matches)"
            ),
            StoreError::NoSuchBucket { bucket, endpoint } => {
                write!(f, "bucket `{bucket}` does not exist at {endpoint}")
            }
            StoreError::Credentials { endpoint, detail } => {
                write!(f, "no AWS credentials found for {endpoint}: {detail}")
            }
            StoreError::Unreachable {
                endpoint, detail, ..
            } => write!(f, "cannot reach {endpoint}: {detail}"),
            StoreError::AccessDenied { object, detail, .. } => {
                write!(f, "access to {object} was denied: {detail}")
            }
            StoreError::ConditionalWritesNotEnforced { endpoint, detail } => write!(
                f,
                "{endpoint} does not enforce conditional writes: {detail}"
            ),
            StoreError::FailedCheck {
                store,
                checked_at,
                reasons,
            } => write!(
                f,
                "{store} failed `respawn store check` at {checked_at}: {reasons}"
            ),
            StoreError::Corrupt { object, detail } => write!(f, "{object} is not valid: {detail}"),
            StoreError::InvalidUrl { url, reason } => {
                write!(f, "invalid store URL `{url}`: {reason}")
            }
            StoreError::InvalidKey { key, reason } => write!(f, "invalid key `{key}`: {reason}"),
            StoreError::Io { object, source } => write!(f, "{object}: {source}"),
            StoreError::Service {
                operation,
                object,
                detail,
                ..
            } => write!(f, "{operation} {object} failed: {detail}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_their_hints_in_parentheses() {
        let error = StoreError::NoSuchBucket {
            bucket: "b".into(),
            endpoint: "http://127.0.0.1:9000".into(),
        };
        assert_eq!(
            error.to_string(),
            "bucket `b` does not exist at http://127.0.0.1:9000 (hint: create it, or check the store URL)"
        );
        assert_eq!(
            error.message(),
            "bucket `b` does not exist at http://127.0.0.1:9000"
        );
        let error = StoreError::Unreachable {
            endpoint: "http://e".into(),
            detail: "connection refused".into(),
            attempts: 4,
        };
        assert_eq!(
            error.to_string(),
            "cannot reach http://e: connection refused (hint: gave up after 4 attempts; check \
             --endpoint-url or AWS_ENDPOINT_URL)"
        );
        let error = StoreError::Credentials {
            endpoint: "AWS S3 (us-east-1)".into(),
            detail: "no credential provider is configured".into(),
        };
        assert_eq!(
            error.to_string(),
            "no AWS credentials found for AWS S3 (us-east-1): no credential provider is \
             configured (hint: looked in the environment (AWS_ACCESS_KEY_ID, \
             AWS_SECRET_ACCESS_KEY), the shared files ~/.aws/credentials and ~/.aws/config \
             (AWS_PROFILE), a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE), a \
             credential_process, ECS container credentials and EC2 instance metadata)"
        );
        let error = StoreError::ConditionalWritesNotEnforced {
            endpoint: "http://e".into(),
            detail: "a put with a wrong If-Match ETag succeeded".into(),
        };
        assert_eq!(
            error.to_string(),
            "http://e does not enforce conditional writes: a put with a wrong If-Match ETag \
             succeeded (hint: respawn coordinates through If-None-Match and If-Match; use AWS \
             S3, MinIO, or another server that enforces them)"
        );
        let error = StoreError::NotFound {
            object: "s3://b/k".into(),
        };
        assert_eq!(error.to_string(), "s3://b/k does not exist");
        assert_eq!(error.hint(), None);
    }

    #[test]
    fn kinds_of_variants() {
        let object = || "o".to_string();
        assert_eq!(
            StoreError::AlreadyExists { object: object() }.kind(),
            StoreErrorKind::Precondition
        );
        assert_eq!(
            StoreError::Unreachable {
                endpoint: object(),
                detail: object(),
                attempts: 4
            }
            .kind(),
            StoreErrorKind::Transient
        );
        assert_eq!(
            StoreError::ConditionalWritesNotEnforced {
                endpoint: object(),
                detail: object()
            }
            .kind(),
            StoreErrorKind::Configuration
        );
        let service = |kind| StoreError::Service {
            operation: "GetObject",
            object: object(),
            detail: "InternalError: oops".into(),
            kind,
        };
        assert!(service(StoreErrorKind::Throttled).is_transient());
        assert!(service(StoreErrorKind::Transient).is_transient());
        assert!(!service(StoreErrorKind::Configuration).is_transient());
        assert!(
            !StoreError::Corrupt {
                object: object(),
                detail: "SlowDown".into()
            }
            .is_transient(),
            "a detail that mentions SlowDown does not make an error transient"
        );
    }

    #[test]
    fn kinds_of_io_errors() {
        use io::ErrorKind as E;
        for (io_kind, kind) in [
            (E::NotFound, StoreErrorKind::Io),
            (E::AlreadyExists, StoreErrorKind::Io),
            (E::PermissionDenied, StoreErrorKind::Access),
            (E::ReadOnlyFilesystem, StoreErrorKind::Access),
            (E::TimedOut, StoreErrorKind::Transient),
            (E::Interrupted, StoreErrorKind::Transient),
            (E::InvalidData, StoreErrorKind::Corrupt),
            (E::StorageFull, StoreErrorKind::Io),
            (E::Other, StoreErrorKind::Io),
        ] {
            let error = StoreError::Io {
                object: "/tmp/x".into(),
                source: io::Error::from(io_kind),
            };
            assert_eq!(error.kind(), kind, "{io_kind:?}");
        }
    }
}
