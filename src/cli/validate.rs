//! `respawn validate FILE...`

use super::output;
use super::{CliError, Format, ValidateArgs, exit};
use respawn_core::workflow::PublishBy;
use respawn_core::workflow::units::format_seconds;
use serde_json::json;

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
                files.push(json!({"file": path.display().to_string(), "valid": true, "workflow": workflow.name, "checks": checks, "alerts": alerts, "errors": []}));
            }
            Err(diagnostics) => {
                code = exit::INVALID_INPUT;
                if args.format == Format::Text {
                    output::stderr(&output::diagnostics_text(&diagnostics));
                }
                let errors: Vec<_> = diagnostics
                    .0
                    .iter()
                    .map(|d| json!({"file": d.file, "line": d.line, "column": d.column, "message": d.message, "hint": d.hint}))
                    .collect();
                files.push(
                    json!({"file": path.display().to_string(), "valid": false, "errors": errors}),
                );
            }
        }
    }
    match args.format {
        Format::Text => output::stdout(&text)?,
        Format::Json => output::json(&json!({"valid": code == exit::SUCCESS, "files": files}))?,
    }
    Ok(code)
}
