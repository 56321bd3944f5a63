//! `checks:` of a stage: named commands run on its output before it is committed.

use super::reader::Reader;
use crate::workflow::model::Severity;
use crate::workflow::yaml::{Node, Position, Value};
use std::collections::HashMap;

const CHECK_KEYS: &[&str] = &["name", "run", "severity"];

/// One check as read; its `run` is parsed with the stage's templates later.
pub(super) struct RawCheck<'n> {
    pub(super) name: String,
    pub(super) run: (String, &'n Node),
    pub(super) severity: Severity,
}

/// The checks of stage `stage` that read well (so that their commands are checked too),
/// and whether all did.
pub(super) fn read_checks<'n>(
    r: &mut Reader,
    node: &'n Node,
    stage: &str,
) -> (Vec<RawCheck<'n>>, bool) {
    let Value::Seq(items) = &node.value else {
        r.error(
            node.position,
            format!(
                "`checks` of stage `{stage}` must be a list of checks, found {}",
                node.kind()
            ),
            Some("for example `checks: [{name: rows, run: python3 rows.py {{ output }}}]`".into()),
        );
        return (Vec::new(), false);
    };
    let mut ok = true;
    let mut checks = Vec::with_capacity(items.len());
    let mut seen: HashMap<String, Position> = HashMap::new();
    for item in items {
        match read_check(r, item, stage) {
            Some((check, position)) => {
                if let Some(first) = seen.get(&check.name) {
                    r.error(
                        position,
                        format!("stage `{stage}` has two checks named `{}`", check.name),
                        Some(format!(
                            "the first is at line {}, column {}; give each check its own name",
                            first.line, first.column
                        )),
                    );
                    ok = false;
                }
                seen.insert(check.name.clone(), position);
                checks.push(check);
            }
            None => ok = false,
        }
    }
    (checks, ok)
}

fn read_check<'n>(r: &mut Reader, node: &'n Node, stage: &str) -> Option<(RawCheck<'n>, Position)> {
    let what = format!("a check of stage `{stage}`");
    let fields = r.fields(node, &what, CHECK_KEYS)?;
    let name_node = r.required(
        &fields,
        "name",
        &what,
        "name the check, e.g. `name: row-count`",
    );
    let name = name_node.and_then(|n| r.string(n, format_args!("`name` of {what}")));
    let name = match (name, name_node) {
        (Some(name), Some(n)) if r.name(&name, n.position, "check name") => Some((name, n)),
        _ => None,
    };
    let label = match &name {
        Some((name, _)) => format!("check `{name}` of stage `{stage}`"),
        None => what.clone(),
    };
    let run = r
        .required(
            &fields,
            "run",
            &label,
            "add `run:` with the command, e.g. `run: python3 rows.py {{ output }}`",
        )
        .and_then(|n| {
            let text = r.string(n, format_args!("`run` of {label}"))?;
            if text.trim().is_empty() {
                r.error(
                    n.position,
                    format!("`run` of {label} is empty"),
                    Some("give the command the check runs".into()),
                );
                return None;
            }
            Some((text, n))
        });
    let severity = match fields.get("severity") {
        Some(n) => r.choice(
            n,
            format_args!("`severity` of {label}"),
            &[("error", Severity::Error), ("warn", Severity::Warn)],
        ),
        None => Some(Severity::Error),
    };
    let ((name, name_node), run, severity) = (name?, run?, severity?);
    let check = RawCheck {
        name,
        run,
        severity,
    };
    Some((check, name_node.position))
}

#[cfg(test)]
mod tests {
    use crate::workflow::Severity;
    use crate::workflow::template::{Segment, Variable};

    #[test]
    fn each_problem_of_a_check_is_located() {
        let yaml = "name: wf
stages:
  a:
    run: x
    checks:
      - name: rows
        run: y
      - name: rows
        run: y
      - name: other
        run: z {{ outptu }}
        severity: fatal
      - name: Bad_Name
        run: w
      - {name: n, run: v, sevrity: warn}
  b:
    run: y
    checks: {name: rows}
";
        assert_error!(yaml, 8, 15, "stage `a` has two checks named `rows`", hint: "the first is at line 6, column 15");
        assert_error!(
            yaml,
            12,
            19,
            "`severity` of check `other` of stage `a` must be one of error | warn, found `fatal`"
        );
        assert_error!(yaml, 13, 15, "check name `Bad_Name` contains `B`");
        assert_error!(yaml, 15, 27, "unknown key `sevrity` in a check of stage `a`", hint: "did you mean `severity`?");
        assert_error!(
            yaml,
            18,
            13,
            "`checks` of stage `b` must be a list of checks, found a mapping"
        );
        let templated = "name: wf\nstages:\n  a:\n    run: x\n    checks:\n      - {name: ok, run: 'true'}\n      - {name: n, run: 'z {{ outptu }}', severity: fatal}\n      - {name: m, run: 'w {{ outptu }}'}\n";
        assert_error!(
            templated,
            8,
            27,
            "in `run` of check `m` of stage `a`: unknown template variable `outptu`"
        );
    }

    #[test]
    fn checks_keep_their_order_default_to_error_and_template_the_stage_inputs() {
        let workflow = crate::workflow::read::valid(
            "name: wf
stages:
  a: {run: x}
  b:
    run: y
    needs: [a]
    checks:
      - {name: same-rows, run: 'cmp {{ inputs.a }} {{ output }}'}
      - {name: size, run: 'test -s {{ output }}', severity: warn}
",
        );
        let checks = &workflow.stages[1].checks;
        assert_eq!(checks.len(), 2);
        assert_eq!(
            (checks[0].name.as_str(), checks[0].severity),
            ("same-rows", Severity::Error)
        );
        assert_eq!(
            (checks[1].name.as_str(), checks[1].severity),
            ("size", Severity::Warn)
        );
        assert!(
            (checks[0].run.segments.iter())
                .any(|s| matches!(s, Segment::Variable(Variable::Input(0)))),
            "{:?}",
            checks[0].run
        );
    }
}
