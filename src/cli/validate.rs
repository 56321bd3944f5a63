//! `respawn validate FILE...`

use super::output;
use super::{CliError, Format, ValidateArgs, exit};
use respawn_core::workflow::Diagnostic;
use respawn_core::workflow::PublishBy;
use respawn_core::workflow::units::format_seconds;
use serde::Serialize;

/// `validate --format json`.
#[derive(Serialize)]
struct ValidateJson {
    valid: bool,
    files: Vec<FileJson>,
}

/// One file: its workflow's name and counts when it is valid, its errors when not.
#[derive(Serialize)]
struct FileJson {
    file: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    checks: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alerts: Option<usize>,
    errors: Vec<ErrorJson>,
}

#[derive(Serialize)]
struct ErrorJson {
    file: String,
    line: u32,
    column: u32,
    message: String,
    hint: Option<String>,
}

impl From<&Diagnostic> for ErrorJson {
    fn from(d: &Diagnostic) -> Self {
        ErrorJson {
            file: d.file.clone(),
            line: d.line,
            column: d.column,
            message: d.message.clone(),
            hint: d.hint.clone(),
        }
    }
}

/// The exit code is 2 when a file is not valid: the diagnostics are this command's
/// output (on stderr as text, in the JSON on stdout), not an error of the command.
pub fn run(args: &ValidateArgs) -> Result<i32, CliError> {
    let mut code = exit::SUCCESS;
    let mut files = Vec::new();
    let mut text = String::new();
    for path in &args.files {
        match respawn_core::workflow::load(path) {
            Ok(workflow) => {
                let finals = workflow.stages.iter().filter(|s| s.is_final).count();
                let checks: usize = workflow.stages.iter().map(|s| s.checks.len()).sum();
                let count = |n: usize, one: &str| match n {
                    0 => String::new(),
                    1 => format!(", 1 {one}"),
                    n => format!(", {n} {one}s"),
                };
                let alerts = workflow.alerts.len();
                let publish_by = match workflow.schedule.as_ref().and_then(|s| s.publish_by) {
                    Some(PublishBy::After(after)) => {
                        format!(
                            ", publish by {} after each interval",
                            format_seconds(after.as_secs_f64())
                        )
                    }
                    Some(PublishBy::TimeOfDay(time)) => {
                        format!(", publish by {}", time.strftime("%H:%M"))
                    }
                    None => String::new(),
                };
                let counted =
                    count(checks, "check") + &count(alerts, "alert destination") + &publish_by;
                text.push_str(&format!(
                    "ok: {} (workflow `{}`, {} stages, {} final{counted})\n",
                    path.display(),
                    workflow.name,
                    workflow.stages.len(),
                    finals
                ));
                files.push(FileJson {
                    file: path.display().to_string(),
                    valid: true,
                    workflow: Some(workflow.name.clone()),
                    checks: Some(checks),
                    alerts: Some(alerts),
                    errors: Vec::new(),
                });
            }
            Err(diagnostics) => {
                code = exit::INVALID_INPUT;
                if args.format == Format::Text {
                    output::stderr(&output::diagnostics_text(&diagnostics));
                }
                files.push(FileJson {
                    file: path.display().to_string(),
                    valid: false,
                    workflow: None,
                    checks: None,
                    alerts: None,
                    errors: diagnostics.0.iter().map(ErrorJson::from).collect(),
                });
            }
        }
    }
    match args.format {
        Format::Text => output::stdout(&text)?,
        Format::Json => output::json(&ValidateJson {
            valid: code == exit::SUCCESS,
            files,
        })?,
    }
    Ok(code)
}
