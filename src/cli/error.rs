//! The one error type of the command line. A command returns a [`CliError`]; `cli::run`
//! prints it (`error: message`, then `hint: ...` on a line of its own) and exits with the
//! code of its [`ErrorKind`]. Workflow diagnostics keep their own located rendering.

use super::exit;
use respawn_core::workflow::Diagnostics;
use respawn_run::cluster::emr::EmrError;
use respawn_run::session::LeaseError;
use respawn_run::session::{InterruptError, SessionError};
use respawn_run::store::StoreError;

/// What failed, one kind per documented exit code (README, "Exit codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// Something unexpected in respawn itself, or output that could not be written.
    Internal,
    /// A workflow file, a trace file, a flag or a store URL is not valid; nothing was run.
    InvalidInput,
    /// The store could not be used, or an object in it is damaged.
    Store,
    /// A stage failed after its retries.
    RunFailed,
    /// Another orchestrator holds the workflow's lease, or this one lost it.
    Busy,
    /// The cluster provider's API (EMR) could not be used.
    Cluster,
    /// Stopped by Ctrl-C or SIGTERM.
    Stopped,
}

impl ErrorKind {
    pub fn exit_code(self) -> i32 {
        match self {
            ErrorKind::Internal => exit::INTERNAL,
            ErrorKind::InvalidInput => exit::INVALID_INPUT,
            ErrorKind::Store => exit::STORE,
            ErrorKind::RunFailed => exit::RUN_FAILED,
            ErrorKind::Busy => exit::BUSY,
            ErrorKind::Cluster => exit::CLUSTER,
            ErrorKind::Stopped => exit::STOPPED,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CliError {
    pub kind: ErrorKind,
    /// A lowercase fragment that names what failed; may span lines.
    pub message: String,
    /// What the user can do about it.
    pub hint: Option<String>,
    /// A workflow that failed to load: printed as its located diagnostics instead of
    /// `error: message`.
    diagnostics: Option<Diagnostics>,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl CliError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> CliError {
        CliError {
            kind,
            message: message.into(),
            hint: None,
            diagnostics: None,
            source: None,
        }
    }

    pub fn invalid_input(message: impl Into<String>) -> CliError {
        CliError::new(ErrorKind::InvalidInput, message)
    }

    pub fn internal(message: impl Into<String>) -> CliError {
        CliError::new(ErrorKind::Internal, message)
    }

    pub fn busy(message: impl Into<String>) -> CliError {
        CliError::new(ErrorKind::Busy, message)
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> CliError {
        self.hint = Some(hint.into());
        self
    }

    fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> CliError {
        self.source = Some(Box::new(source));
        self
    }

    pub fn exit_code(&self) -> i32 {
        self.kind.exit_code()
    }

    /// Output went to a reader that is gone (`respawn history ... | head`): not a failure.
    pub fn is_broken_pipe(&self) -> bool {
        self.source
            .as_deref()
            .and_then(|source| source.downcast_ref::<std::io::Error>())
            .is_some_and(|error| error.kind() == std::io::ErrorKind::BrokenPipe)
    }

    /// The text for stderr: `error: message`, then `hint: ...` on a line of its own; or a
    /// workflow's located diagnostics.
    pub fn render(&self) -> String {
        if let Some(diagnostics) = &self.diagnostics {
            return super::output::diagnostics_text(diagnostics);
        }
        let mut text = format!("error: {}\n", self.message);
        if let Some(hint) = &self.hint {
            text.push_str(&format!("hint: {hint}\n"));
        }
        text
    }

    /// The kind and message of a store error, with its hint split off. Bad store URLs and
    /// keys are input; everything else means the store could not be used.
    pub fn from_store(error: &StoreError) -> CliError {
        let kind = match error {
            StoreError::InvalidUrl { .. } | StoreError::InvalidKey { .. } => {
                ErrorKind::InvalidInput
            }
            _ => ErrorKind::Store,
        };
        CliError {
            hint: error.hint(),
            ..CliError::new(kind, error.message())
        }
    }
}

impl From<StoreError> for CliError {
    fn from(error: StoreError) -> CliError {
        CliError::from_store(&error).caused_by(error)
    }
}

impl From<LeaseError> for CliError {
    fn from(error: LeaseError) -> CliError {
        match error {
            LeaseError::Store(error) => error.into(),
            held_or_lost => CliError {
                hint: held_or_lost.hint(),
                ..CliError::busy(held_or_lost.message())
            }
            .caused_by(held_or_lost),
        }
    }
}

impl From<SessionError> for CliError {
    fn from(error: SessionError) -> CliError {
        match error {
            SessionError::Lease(error) => error.into(),
            SessionError::Store(error) => error.into(),
            SessionError::NotScheduled(reason) => CliError::invalid_input(reason),
            SessionError::UnfitStore(reason) => CliError::invalid_input(reason),
        }
    }
}

impl From<InterruptError> for CliError {
    fn from(error: InterruptError) -> CliError {
        match error {
            InterruptError::Store(error) => error.into(),
            other => CliError::invalid_input(other.to_string()).caused_by(other),
        }
    }
}

impl From<EmrError> for CliError {
    fn from(error: EmrError) -> CliError {
        CliError::new(ErrorKind::Cluster, error.to_string())
    }
}

/// A workflow file that does not load: invalid input, printed as its diagnostics.
impl From<Diagnostics> for CliError {
    fn from(diagnostics: Diagnostics) -> CliError {
        let message = match diagnostics.0.as_slice() {
            [] => "the workflow file is not valid".to_string(),
            [only] => format!("{}: {}", only.location(), only.message),
            [first, ..] => format!("{}: {} problems", first.file, diagnostics.0.len()),
        };
        CliError {
            diagnostics: Some(diagnostics),
            ..CliError::invalid_input(message)
        }
    }
}

/// The I/O errors that reach a command's caller are failed writes of its output.
impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> CliError {
        CliError::internal(format!("cannot write output: {error}")).caused_by(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_documented_exit_codes() {
        for (kind, code) in [
            (ErrorKind::Internal, 1),
            (ErrorKind::InvalidInput, 2),
            (ErrorKind::Store, 3),
            (ErrorKind::RunFailed, 4),
            (ErrorKind::Busy, 5),
            (ErrorKind::Cluster, 6),
            (ErrorKind::Stopped, 130),
        ] {
            assert_eq!(kind.exit_code(), code, "{kind:?}");
        }
    }

    #[test]
    fn the_hint_goes_on_a_line_of_its_own() {
        let error =
            CliError::invalid_input("`x y` is not a run id").with_hint("see `respawn history`");
        assert_eq!(
            error.render(),
            "error: `x y` is not a run id\nhint: see `respawn history`\n"
        );
        assert_eq!(CliError::internal("oops").render(), "error: oops\n");
    }

    #[test]
    fn store_errors_split_their_hint_and_keep_their_kind() {
        let error = CliError::from(StoreError::NoSuchBucket {
            bucket: "b".into(),
            endpoint: "http://e".into(),
        });
        assert_eq!(error.exit_code(), exit::STORE);
        assert_eq!(
            error.render(),
            "error: bucket `b` does not exist at http://e\nhint: create it, or check the store URL\n"
        );
        let error = CliError::from(StoreError::InvalidUrl {
            url: "gs://b".into(),
            reason: "unknown scheme `gs`".into(),
        });
        assert_eq!(error.exit_code(), exit::INVALID_INPUT);
        assert_eq!(
            error.render(),
            "error: invalid store URL `gs://b`: unknown scheme `gs`\n"
        );
    }

    #[test]
    fn a_held_lease_is_busy() {
        let error = CliError::from(LeaseError::Lost {
            workflow: "w".into(),
            holder: "pid 1 on h".into(),
            object: "/s/w/lease".into(),
        });
        assert_eq!(error.exit_code(), exit::BUSY);
        assert_eq!(error.hint, None);
        let error = CliError::from(LeaseError::Store(StoreError::Corrupt {
            object: "/s/w/lease".into(),
            detail: "not JSON".into(),
        }));
        assert_eq!(error.exit_code(), exit::STORE);
    }

    #[test]
    fn a_closed_pipe_is_told_from_other_write_errors() {
        let closed = CliError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(closed.is_broken_pipe());
        let full = CliError::from(std::io::Error::from(std::io::ErrorKind::StorageFull));
        assert!(!full.is_broken_pipe());
        assert_eq!(full.exit_code(), exit::INTERNAL);
        assert!(full.render().starts_with("error: cannot write output: "));
    }

    #[test]
    fn a_workflow_that_does_not_load_prints_its_diagnostics() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.yaml");
        std::fs::write(&file, "name: x\nstages:\n  a:\n    rn: echo\n").unwrap();
        let error = CliError::from(respawn_core::workflow::load(&file).unwrap_err());
        assert_eq!(error.exit_code(), exit::INVALID_INPUT);
        let text = error.render();
        assert!(
            text.contains(&format!("error: {}:4:5: unknown key `rn`", file.display())),
            "{text}"
        );
        assert!(text.contains("\n  hint: did you mean `run`?\n"), "{text}");
        assert!(text.ends_with("2 problems found\n"), "{text}");
        assert_eq!(error.message, format!("{}: 2 problems", file.display()));
    }
}
