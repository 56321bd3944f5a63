//! `run:` templates: `{{ output }}`, `{{ inputs.NAME }}`, `{{ run_id }}`, `{{ batch }}`,
//! `{{ attempt }}`, `{{ workflow_dir }}`, and in scheduled workflows `{{ logical_date }}`,
//! `{{ interval_start }}`, `{{ interval_end }}`.

use super::model::StageId;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Variable {
    Output,
    Input(StageId),
    RunId,
    Batch,
    Attempt,
    WorkflowDir,
    LogicalDate,
    IntervalStart,
    IntervalEnd,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    Text(String),
    Variable(Variable),
}

/// A parsed `run:` command with its variables resolved to stages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    /// The command exactly as written (hashed into the stage fingerprint).
    pub source: String,
    pub segments: Vec<Segment>,
}

/// A template problem, with the character offset of the `{{` it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    pub offset_chars: usize,
    pub offset_bytes: usize,
    pub message: String,
    pub hint: Option<String>,
}

pub const VARIABLES: [&str; 9] = [
    "output",
    "inputs.NAME",
    "run_id",
    "batch",
    "attempt",
    "workflow_dir",
    "logical_date",
    "interval_start",
    "interval_end",
];

/// The variables only a scheduled workflow has: its run's interval.
const INTERVAL_VARIABLES: [&str; 3] = ["logical_date", "interval_start", "interval_end"];

/// Values to render a template with.
pub struct Bindings<'a> {
    pub output: &'a str,
    pub inputs: &'a dyn Fn(StageId) -> String,
    pub run_id: &'a str,
    pub batch: &'a str,
    pub attempt: u32,
    pub workflow_dir: &'a str,
    /// The run's interval (RFC 3339 on the schedule's wall clock); empty when the run is
    /// not of a scheduled date.
    pub logical_date: &'a str,
    pub interval_start: &'a str,
    pub interval_end: &'a str,
}

/// The longest each variable can render to, for a bound on a rendered line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Longest {
    /// `output` and each `inputs.NAME`.
    pub work_table: usize,
    pub run_id: usize,
    pub batch: usize,
    pub attempt: usize,
    pub workflow_dir: usize,
    /// `logical_date`, `interval_start`, `interval_end`.
    pub interval: usize,
}

impl Template {
    /// The most characters this template renders to when no variable is longer than `at_most`.
    pub fn longest(&self, at_most: &Longest) -> usize {
        self.segments
            .iter()
            .map(|segment| match segment {
                Segment::Text(text) => text.chars().count(),
                Segment::Variable(Variable::Output | Variable::Input(_)) => at_most.work_table,
                Segment::Variable(Variable::RunId) => at_most.run_id,
                Segment::Variable(Variable::Batch) => at_most.batch,
                Segment::Variable(Variable::Attempt) => at_most.attempt,
                Segment::Variable(Variable::WorkflowDir) => at_most.workflow_dir,
                Segment::Variable(
                    Variable::LogicalDate | Variable::IntervalStart | Variable::IntervalEnd,
                ) => at_most.interval,
            })
            .sum()
    }

    /// Parses `source`; `input_id` resolves `inputs.NAME` to a stage the stage needs;
    /// `scheduled` says whether the workflow has a schedule (and so an interval per run).
    pub fn parse(
        source: &str,
        scheduled: bool,
        input_id: impl Fn(&str) -> Result<StageId, String>,
    ) -> Result<Template, Vec<TemplateError>> {
        let mut segments = Vec::new();
        let mut errors = Vec::new();
        let mut rest = source;
        let mut consumed_bytes = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                segments.push(Segment::Text(rest[..open].to_string()));
            }
            let at_bytes = consumed_bytes + open;
            let at_chars = source[..at_bytes].chars().count();
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                errors.push(TemplateError {
                    offset_chars: at_chars,
                    offset_bytes: at_bytes,
                    message: "`{{` is never closed".into(),
                    hint: Some("close it with `}}`, e.g. `{{ output }}`".into()),
                });
                rest = "";
                break;
            };
            let name = after[..close].trim();
            let variable = match name {
                "output" => Ok(Variable::Output),
                "run_id" => Ok(Variable::RunId),
                "batch" => Ok(Variable::Batch),
                "attempt" => Ok(Variable::Attempt),
                "workflow_dir" => Ok(Variable::WorkflowDir),
                _ if INTERVAL_VARIABLES.contains(&name) && !scheduled => Err((
                    format!("`{{{{ {name} }}}}` is only known in a workflow with a `schedule:`"),
                    Some("add a `schedule:` block, or use `{{ batch }}`".to_string()),
                )),
                "logical_date" => Ok(Variable::LogicalDate),
                "interval_start" => Ok(Variable::IntervalStart),
                "interval_end" => Ok(Variable::IntervalEnd),
                _ => match name.strip_prefix("inputs.") {
                    Some(input) => input_id(input).map(Variable::Input).map_err(|hint| {
                        (format!("`{{{{ {name} }}}}` names `{input}`, which is not in this stage's needs"), Some(hint))
                    }),
                    None => {
                        let suggestion = super::diagnostic::did_you_mean(name, VARIABLES);
                        Err((
                            format!("unknown template variable `{name}`"),
                            Some(match suggestion {
                                Some(s) => format!("did you mean `{s}`? known: {}", VARIABLES.join(", ")),
                                None => format!("known variables: {}", VARIABLES.join(", ")),
                            }),
                        ))
                    }
                },
            };
            match variable {
                Ok(variable) => segments.push(Segment::Variable(variable)),
                Err((message, hint)) => errors.push(TemplateError {
                    offset_chars: at_chars,
                    offset_bytes: at_bytes,
                    message,
                    hint,
                }),
            }
            let advance = open + 2 + close + 2;
            consumed_bytes += advance;
            rest = &rest[advance..];
        }
        if !rest.is_empty() {
            segments.push(Segment::Text(rest.to_string()));
        }
        if errors.is_empty() {
            Ok(Template {
                source: source.to_string(),
                segments,
            })
        } else {
            Err(errors)
        }
    }

    pub fn render(&self, bindings: &Bindings) -> String {
        let mut out = String::with_capacity(self.source.len() + 64);
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Variable(Variable::Output) => out.push_str(bindings.output),
                Segment::Variable(Variable::Input(id)) => out.push_str(&(bindings.inputs)(*id)),
                Segment::Variable(Variable::RunId) => out.push_str(bindings.run_id),
                Segment::Variable(Variable::Batch) => out.push_str(bindings.batch),
                Segment::Variable(Variable::Attempt) => out.push_str(&bindings.attempt.to_string()),
                Segment::Variable(Variable::WorkflowDir) => out.push_str(bindings.workflow_dir),
                Segment::Variable(Variable::LogicalDate) => out.push_str(bindings.logical_date),
                Segment::Variable(Variable::IntervalStart) => out.push_str(bindings.interval_start),
                Segment::Variable(Variable::IntervalEnd) => out.push_str(bindings.interval_end),
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs(name: &str) -> Result<StageId, String> {
        match name {
            "ingest" => Ok(0),
            _ => Err("needs: [ingest]".into()),
        }
    }

    #[test]
    fn renders_every_variable() {
        let template = Template::parse(
            "run.py --in {{ inputs.ingest }} --out {{output}} {{ run_id }} {{ batch }} {{ attempt }} {{ workflow_dir }} {{ logical_date }} {{ interval_start }} {{ interval_end }}",
            true,
            inputs,
        )
        .unwrap();
        let input_path = |_: StageId| "/in".to_string();
        let rendered = template.render(&Bindings {
            output: "/out",
            inputs: &input_path,
            run_id: "r1",
            batch: "2026-11-21",
            attempt: 2,
            workflow_dir: "/wf",
            logical_date: "L",
            interval_start: "S",
            interval_end: "E",
        });
        assert_eq!(
            rendered,
            "run.py --in /in --out /out r1 2026-11-21 2 /wf L S E"
        );
    }

    #[test]
    fn unknown_input_and_variable_are_located() {
        let errors =
            Template::parse("a {{ inputs.nope }} b {{ outptu }}", false, inputs).unwrap_err();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].offset_chars, 2);
        assert!(errors[0].message.contains("`nope`"));
        assert_eq!(errors[1].offset_chars, 22);
        assert!(
            errors[1]
                .hint
                .as_deref()
                .unwrap()
                .contains("did you mean `output`")
        );
    }

    #[test]
    fn interval_variables_need_a_schedule() {
        let errors = Template::parse("echo {{ logical_date }}", false, inputs).unwrap_err();
        assert_eq!(errors[0].offset_chars, 5);
        assert!(
            errors[0]
                .message
                .contains("only known in a workflow with a `schedule:`")
        );
        assert!(Template::parse("echo {{ logical_date }}", true, inputs).is_ok());
    }

    #[test]
    fn unclosed_braces_are_an_error() {
        let errors = Template::parse("echo {{ output", false, inputs).unwrap_err();
        assert!(errors[0].message.contains("never closed"));
    }
}
