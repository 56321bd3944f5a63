//! From the located YAML tree to a validated [`Workflow`](super::Workflow), collecting every
//! problem: `reader.rs` is the toolkit (typed accessors that report and go on), and each
//! section of the file has its own reader.

/// `assert_error!(yaml, line, column, "fragment")`: reading `yaml` fails, and one of the
/// problems is at that line and column with a message that contains the fragment; with
/// `hint: "..."`, its hint contains that too. On failure it prints every problem found.
#[cfg(test)]
macro_rules! assert_error {
    ($yaml:expr, $line:expr, $column:expr, $fragment:expr $(, hint: $hint:expr)? $(,)?) => {{
        let yaml: &str = $yaml;
        let problems = match crate::workflow::parse("test.yaml", yaml) {
            Ok(_) => panic!("expected a problem, but the workflow is valid:\n{yaml}"),
            Err(diagnostics) => diagnostics.0,
        };
        let found = problems.iter().any(|d| {
            d.line == $line
                && d.column == $column
                && d.message.contains($fragment)
                $(&& d.hint.as_deref().is_some_and(|hint| hint.contains($hint)))?
        });
        assert!(
            found,
            "no problem at {}:{} saying {:?}; found:\n{}",
            $line,
            $column,
            $fragment,
            problems.iter().map(ToString::to_string).collect::<String>()
        );
    }};
}

mod alerts;
mod checkpoint;
mod checks;
mod cluster;
mod cost;
mod emr;
mod emr_fields;
mod fleets;
mod publish_by;
mod reader;
mod schedule;
mod stage;
mod stages;
mod step_limit;
mod top;

pub use reader::check_name;
pub use top::parse;

/// A valid workflow from `yaml`, for tests of what the reader fills in.
#[cfg(test)]
fn valid(yaml: &str) -> super::Workflow {
    match super::parse("test.yaml", yaml) {
        Ok(workflow) => workflow,
        Err(diagnostics) => panic!(
            "{}",
            diagnostics
                .0
                .iter()
                .map(ToString::to_string)
                .collect::<String>()
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[should_panic(expected = "no problem at 2:2")]
    fn assert_error_fails_on_another_column() {
        assert_error!("name: wf\nstgaes: {}\n", 2, 2, "unknown key `stgaes`");
    }

    #[test]
    #[should_panic(expected = "the workflow is valid")]
    fn assert_error_fails_on_a_valid_workflow() {
        assert_error!("name: wf\nstages:\n  a: {run: x}\n", 1, 1, "anything");
    }
}
