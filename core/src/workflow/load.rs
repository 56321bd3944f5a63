//! Reading a workflow file from disk: the only place in `src/workflow` that touches the
//! file system (`std::fs`). Everything after the bytes are in memory is [`parse`], which is
//! pure.

use super::diagnostic::{Diagnostic, Diagnostics};
use super::model::Workflow;
use super::read::parse;
use super::yaml::{self, Position};
use std::path::Path;

/// Reads and validates the workflow file at `path`: refuses directories, files over
/// [`yaml::MAX_FILE_BYTES`] and text that is not UTF-8 (located at its first bad byte).
pub fn load(path: &Path) -> Result<Workflow, Diagnostics> {
    let file = path.display().to_string();
    let fail = |message: String, hint: &str| {
        Err(Diagnostics(vec![
            Diagnostic::whole_file(&file, message).with_hint(hint),
        ]))
    };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) => {
            return fail(
                format!("cannot read the workflow file: {error}"),
                "check the path",
            );
        }
    };
    if metadata.is_dir() {
        return fail(
            "is a directory, not a workflow file".into(),
            "name a .yaml file",
        );
    }
    if metadata.len() > yaml::MAX_FILE_BYTES as u64 {
        return fail(
            format!(
                "the file is {} bytes; workflow files are limited to {} bytes",
                metadata.len(),
                yaml::MAX_FILE_BYTES
            ),
            "is this really a workflow file?",
        );
    }
    // Devices and pipes report a size of 0: the limit holds on what is read, too.
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path).and_then(|file| {
        use std::io::Read;
        file.take(yaml::MAX_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
    });
    if let Err(error) = read {
        return fail(
            format!("cannot read the workflow file: {error}"),
            "check the path",
        );
    }
    if bytes.len() > yaml::MAX_FILE_BYTES {
        return fail(
            format!(
                "more than {} bytes were read; workflow files are limited to {} bytes",
                yaml::MAX_FILE_BYTES,
                yaml::MAX_FILE_BYTES
            ),
            "is this really a workflow file?",
        );
    }
    match String::from_utf8(bytes) {
        Ok(text) => parse(&file, &text),
        Err(error) => {
            let offset = error.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(&error.into_bytes()[..offset]).into_owned();
            let line = text.matches('\n').count() as u32 + 1;
            let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
            let position = Position {
                line,
                column,
                byte_start: None,
                byte_len: None,
            };
            Err(Diagnostics(vec![
                Diagnostic::new(&file, &text, position, "the file is not UTF-8 text")
                    .with_hint("workflow files are YAML, saved as UTF-8"),
            ]))
        }
    }
}
