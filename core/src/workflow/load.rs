//! Reading a workflow file from disk: the only place in `src/workflow` that touches the
//! file system (`std::fs`). Everything after the bytes are in memory is [`parse`], which is
//! pure.

use super::diagnostic::{Diagnostic, Diagnostics};
use super::model::Workflow;
use super::read::parse;
use super::yaml::{self, Position};
use std::path::Path;
use std::sync::Arc;

/// The largest trace read, by `simulate --trace` and as the planning model.
pub const MAX_TRACE_BYTES: u64 = 16 << 20;

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
        Ok(text) => {
            parse(&file, &text).and_then(|workflow| with_trace(path, &file, &text, workflow))
        }
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

/// Reads the planning trace a workflow names (`cluster.interruptions.trace`, relative to
/// the workflow file's folder) and plans with it: its mean time between losses becomes the
/// cluster's `mtti`. A trace that cannot be read is an error at the line that names it.
fn with_trace(
    path: &Path,
    file: &str,
    text: &str,
    mut workflow: Workflow,
) -> Result<Workflow, Diagnostics> {
    let Some(model) = workflow.cluster.interruptions.as_mut() else {
        return Ok(workflow);
    };
    let trace_path = path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(&model.path);
    let read = std::fs::File::open(&trace_path)
        .and_then(|f| {
            use std::io::Read;
            let mut bytes = Vec::new();
            f.take(MAX_TRACE_BYTES + 1).read_to_end(&mut bytes)?;
            Ok(bytes)
        })
        .map_err(|e| format!("cannot read it: {e}"))
        .and_then(|bytes| {
            if bytes.len() as u64 > MAX_TRACE_BYTES {
                return Err(format!(
                    "it is larger than {MAX_TRACE_BYTES} bytes, the limit"
                ));
            }
            String::from_utf8(bytes).map_err(|_| "it is not UTF-8 text".to_string())
        })
        .and_then(|text| crate::workflow::capacity::parse_capacity_trace(&text));
    match read {
        Ok(trace) => {
            if let Some(mtti) = trace.mtti() {
                workflow.cluster.mtti = std::time::Duration::from_secs_f64(mtti);
            }
            model.trace = Some(Arc::new(trace));
            Ok(workflow)
        }
        Err(reason) => {
            let position = Position {
                line: model.line,
                column: model.column,
                byte_start: None,
                byte_len: None,
            };
            let message = format!(
                "`cluster.interruptions.trace` {}: {reason}",
                trace_path.display()
            );
            Err(Diagnostics(vec![
                Diagnostic::new(file, text, position, message).with_hint(
                    "a capacity trace is {\"metadata\": {\"gap_seconds\": G}, \"data\": [node counts]}",
                ),
            ]))
        }
    }
}
