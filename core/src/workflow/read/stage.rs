//! One stage's fields, read before the graph of stages is checked.

use super::checks::{RawCheck, read_checks};
use super::reader::{Fields, Reader};
use crate::workflow::defaults;
use crate::workflow::model::*;
use crate::workflow::units::parse_size;
use crate::workflow::yaml::{Node, Position, Value};
use std::time::Duration;

const STAGE_KEYS: &[&str] = &[
    "run",
    "needs",
    "estimate",
    "output_size",
    "final",
    "checkpoint",
    "version",
    "description",
    "checks",
];

/// One stage as read, before the graph is checked.
pub(super) struct RawStage<'n> {
    pub(super) name: String,
    pub(super) key: &'n Node,
    pub(super) run: Option<(String, &'n Node)>,
    pub(super) needs: Vec<(String, Position)>,
    pub(super) estimate: Duration,
    pub(super) output_size: u64,
    pub(super) is_final: Option<bool>,
    pub(super) checkpoint: StageCheckpoint,
    pub(super) version: Option<String>,
    pub(super) description: Option<String>,
    pub(super) checks: Vec<RawCheck<'n>>,
    /// Where `final:` was written, for the message when no stage is final.
    pub(super) final_position: Option<Position>,
    /// False when a field of the stage was wrong (already reported).
    pub(super) valid: bool,
}

impl<'n> RawStage<'n> {
    /// A stage whose value is not a mapping: only its name takes part in the checks.
    fn unusable(name: String, key: &'n Node) -> RawStage<'n> {
        RawStage {
            name,
            key,
            run: None,
            needs: Vec::new(),
            estimate: Duration::ZERO,
            output_size: 0,
            is_final: None,
            checkpoint: defaults::STAGE_CHECKPOINT,
            version: None,
            description: None,
            checks: Vec::new(),
            final_position: None,
            valid: false,
        }
    }
}

/// Reads one stage. The stage comes back even when some of its fields are wrong (with
/// `valid: false`), so that its name and needs still take part in the graph checks.
pub(super) fn read_stage<'n>(
    r: &mut Reader,
    name: String,
    key: &'n Node,
    node: &'n Node,
) -> RawStage<'n> {
    let what = format!("stage `{name}`");
    let Some(mut fields) = r.fields(node, &what, STAGE_KEYS) else {
        return RawStage::unusable(name, key);
    };
    fields.owner = key.position;
    let run = read_run(r, &fields, &what);
    let (needs, needs_ok) = match fields.get("needs") {
        Some(node) => read_needs(r, node, &what),
        None => (Vec::new(), true),
    };
    let estimate = match fields.get("estimate") {
        Some(node) => r.duration(node, format_args!("`estimate` of {what}"), "40m"),
        None => Some(defaults::ESTIMATE),
    };
    let output_size = match fields.get("output_size") {
        Some(node) => r.scalar_with(
            node,
            format_args!("`output_size` of {what}"),
            "a size",
            "20GB",
            parse_size,
        ),
        None => Some(defaults::OUTPUT_SIZE),
    };
    let is_final = match fields.get("final") {
        Some(node) => r.boolean(node, format_args!("`final` of {what}")).map(Some),
        None => Some(None),
    };
    let checkpoint = match fields.get("checkpoint") {
        Some(node) => r.choice(
            node,
            format_args!("`checkpoint` of {what}"),
            &[
                ("auto", StageCheckpoint::Auto),
                ("always", StageCheckpoint::Always),
                ("never", StageCheckpoint::Never),
            ],
        ),
        None => Some(defaults::STAGE_CHECKPOINT),
    };
    let version = optional_text(r, fields.get("version"), "version", &what);
    let description = optional_text(r, fields.get("description"), "description", &what);
    let (checks, checks_ok) = match fields.get("checks") {
        Some(node) => read_checks(r, node, &name),
        None => (Vec::new(), true),
    };
    let contradiction = is_final == Some(Some(true)) && checkpoint == Some(StageCheckpoint::Never);
    if contradiction {
        r.error(
            fields.get("checkpoint").map_or(node.position, |n| n.position),
            format!("{what} is final, so its output is always persisted; `checkpoint: never` contradicts that"),
            Some("remove `checkpoint: never`, or `final: true`".into()),
        );
    }
    let valid = run.is_some()
        && needs_ok
        && !contradiction
        && estimate.is_some()
        && output_size.is_some()
        && is_final.is_some()
        && checkpoint.is_some()
        && version.is_some()
        && description.is_some()
        && checks_ok;
    RawStage {
        name,
        key,
        run,
        needs,
        estimate: estimate.unwrap_or_default(),
        output_size: output_size.unwrap_or_default(),
        is_final: is_final.flatten(),
        checkpoint: checkpoint.unwrap_or(defaults::STAGE_CHECKPOINT),
        version: version.flatten(),
        description: description.flatten(),
        checks,
        final_position: fields.get("final").map(|n| n.position),
        valid,
    }
}

/// `run`: required, and not blank.
fn read_run<'n>(r: &mut Reader, fields: &Fields<'n>, what: &str) -> Option<(String, &'n Node)> {
    let node = r.required(
        fields,
        "run",
        what,
        "add `run:` with the command the stage runs, e.g. `run: python3 job.py --out {{ output }}`",
    )?;
    let text = r.string(node, format_args!("`run` of {what}"))?;
    if text.trim().is_empty() {
        r.error(
            node.position,
            format!("`run` of {what} is empty"),
            Some("give the command the stage runs".into()),
        );
        return None;
    }
    Some((text, node))
}

/// `needs`: a list of stage names (or one name), each with where it is written; false
/// when something was reported.
fn read_needs(r: &mut Reader, node: &Node, what: &str) -> (Vec<(String, Position)>, bool) {
    match &node.value {
        Value::Seq(items) => {
            let mut ok = true;
            let mut needs = Vec::new();
            for item in items {
                match r.string(item, format_args!("an entry of `needs` of {what}")) {
                    Some(text) => needs.push((text, item.position)),
                    None => ok = false,
                }
            }
            (needs, ok)
        }
        Value::Str(text) => (vec![(text.clone(), node.position)], true),
        _ => {
            r.error(
                node.position,
                format!(
                    "`needs` of {what} must be a list of stage names, found {}",
                    node.kind()
                ),
                Some("for example `needs: [ingest]`".into()),
            );
            (Vec::new(), false)
        }
    }
}

/// An optional text field: `Some(None)` when absent, `None` when it is not text.
fn optional_text(
    r: &mut Reader,
    node: Option<&Node>,
    key: &str,
    what: &str,
) -> Option<Option<String>> {
    match node {
        Some(node) => r.string(node, format_args!("`{key}` of {what}")).map(Some),
        None => Some(None),
    }
}

#[cfg(test)]
mod tests {
    use crate::workflow::{StageCheckpoint, defaults};
    use std::time::Duration;

    #[test]
    fn each_field_of_a_stage_is_checked_and_located() {
        let yaml = "name: wf
stages:
  a:
    run: x
    estimat: 3m
  b:
    needs: [a]
    estimate: 40
    output_size: 20 gigs
  c:
    run: y
    checkpoint: sometimes
";
        assert_error!(yaml, 5, 5, "unknown key `estimat` in stage `a`", hint: "did you mean `estimate`?");
        assert_error!(yaml, 6, 3, "stage `b` is missing the required key `run`");
        assert_error!(
            yaml,
            8,
            15,
            "`estimate` of stage `b` must be a duration: `40` has no unit"
        );
        assert_error!(
            yaml,
            9,
            18,
            "`output_size` of stage `b` must be a size: `20 gigs` is not a size"
        );
        assert_error!(
            yaml,
            12,
            17,
            "`checkpoint` of stage `c` must be one of auto | always | never, found `sometimes`"
        );
    }

    #[test]
    fn a_final_stage_cannot_refuse_checkpoints_and_needs_is_a_list() {
        let yaml = "name: wf
stages:
  a:
    run: x
    final: true
    checkpoint: never
  b:
    run: y
    needs: {a: 1}
";
        assert_error!(yaml, 6, 17, "stage `a` is final", hint: "remove `checkpoint: never`");
        assert_error!(
            yaml,
            9,
            12,
            "`needs` of stage `b` must be a list of stage names, found a mapping"
        );
    }

    #[test]
    fn an_empty_run_is_refused() {
        assert_error!(
            "name: wf
stages:
  a: {run: '  '}
",
            3,
            12,
            "`run` of stage `a` is empty"
        );
    }

    #[test]
    fn given_fields_are_kept_and_the_rest_take_the_defaults() {
        let workflow = super::super::valid(
            "name: wf
stages:
  a: {run: x}
  b: {run: y, needs: [a], estimate: 40m, output_size: 2GiB, checkpoint: always, version: 1.10}
",
        );
        let (a, b) = (&workflow.stages[0], &workflow.stages[1]);
        assert_eq!(a.estimate, defaults::ESTIMATE);
        assert_eq!(a.output_size, defaults::OUTPUT_SIZE);
        assert_eq!(a.checkpoint, defaults::STAGE_CHECKPOINT);
        assert_eq!(b.estimate, Duration::from_secs(40 * 60));
        assert_eq!(b.output_size, 2 << 30);
        assert_eq!(b.checkpoint, StageCheckpoint::Always);
        assert_eq!(
            b.version.as_deref(),
            Some("1.10"),
            "written as it was, not as a number"
        );
    }
}
