//! `stages`: every stage, then what binds them: `needs` resolved to stages, templates
//! checked against them, cycles, the topological order and the final stages.

use super::reader::Reader;
use super::stage::{RawStage, read_stage};
use super::step_limit::check_line;
use crate::workflow::defaults;
use crate::workflow::diagnostic::did_you_mean;
use crate::workflow::graph;
use crate::workflow::model::*;
use crate::workflow::template::Longest;
use crate::workflow::template::{Segment, Template, TemplateError, Variable};
use crate::workflow::yaml::{Node, Position, Value};
use std::collections::HashMap;

/// Each stage's inputs, by index in file order, with where each is named.
type Edges = Vec<Vec<(usize, Position)>>;

/// `stages`: the stages in a topological order (file order where the graph leaves a
/// choice), or `None` when anything about them was reported.
/// `scheduled`: the workflow has a `schedule:`, so stages may use its interval variables.
/// `emr`: the longest each template variable renders to, when the stages run as EMR steps.
pub(super) fn read_stages(
    r: &mut Reader,
    node: &Node,
    scheduled: bool,
    emr: Option<&Longest>,
) -> Option<Vec<Stage>> {
    let (raw, mut ok) = read_each(r, node)?;
    let index: HashMap<&str, usize> = (raw.iter().enumerate())
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let edges = resolve_needs(r, &raw, &index, &mut ok);
    let commands = Commands {
        raw: &raw,
        index: &index,
        edges: &edges,
        scheduled,
        emr,
    };
    let templates: Vec<Option<Template>> = (raw.iter().enumerate())
        .map(|(i, stage)| {
            let (text, node) = stage.run.as_ref()?;
            let label = format!("`run` of stage `{}`", stage.name);
            commands.parse(r, i, text, node, &label)
        })
        .collect();
    let checks: Vec<Option<Vec<Check>>> = (0..raw.len()).map(|i| commands.checks(r, i)).collect();
    ok &= checks.iter().all(Option::is_some);
    ok &= (templates.iter().zip(&raw)).all(|(t, s)| t.is_some() || s.run.is_none());
    let needs: Vec<Vec<usize>> = (edges.iter())
        .map(|inputs| inputs.iter().map(|(j, _)| *j).collect())
        .collect();
    ok &= report_cycles(r, &raw, &edges, &needs);
    if !ok {
        return None;
    }
    let order = graph::topological_order(&needs);
    let consumers = graph::consumers(&needs);
    let stages = in_order(&raw, &order, &edges, &consumers, &templates, &checks)?;
    if !stages.iter().any(|s| s.is_final) {
        // Point at the `final: false` of a sink: that is what made the workflow keep nothing.
        let position = (order.iter())
            .filter(|&&old| consumers[old].is_empty())
            .find_map(|&old| raw[old].final_position)
            .unwrap_or(node.position);
        r.error(
            position,
            "no stage is final: the workflow would produce nothing",
            Some("mark the stage whose output is the product with `final: true`".into()),
        );
        return None;
    }
    Some(stages)
}

/// Every stage as written, and whether all of them were valid; `None` when there is none.
fn read_each<'n>(r: &mut Reader, node: &'n Node) -> Option<(Vec<RawStage<'n>>, bool)> {
    let entries = r.entries(node, "`stages`")?;
    if matches!(&node.value, Value::Map(pairs) if pairs.is_empty()) {
        r.error(
            node.position,
            "the workflow has no stages",
            Some("add at least one stage under `stages:`".into()),
        );
        return None;
    }
    let mut ok = true;
    let mut raw: Vec<RawStage> = Vec::with_capacity(entries.len());
    for (name, key, value) in entries {
        ok &= r.name(&name, key.position, "stage name");
        let stage = read_stage(r, name, key, value);
        ok &= stage.valid;
        raw.push(stage);
    }
    // Empty when every stage key was unusable, and each was reported.
    (!raw.is_empty()).then_some((raw, ok))
}

/// Each stage's `needs` as indices in file order; reports unknown, self and repeated needs
/// (and clears `ok`).
fn resolve_needs(
    r: &mut Reader,
    raw: &[RawStage],
    index: &HashMap<&str, usize>,
    ok: &mut bool,
) -> Edges {
    let all_names: Vec<&str> = raw.iter().map(|s| s.name.as_str()).collect();
    let mut edges: Edges = vec![Vec::new(); raw.len()];
    for (i, stage) in raw.iter().enumerate() {
        for (need, position) in &stage.needs {
            let (message, hint) = match index.get(need.as_str()) {
                Some(&j) if j == i => (
                    format!("stage `{}` needs itself", stage.name),
                    "remove it from its own `needs`".to_string(),
                ),
                Some(&j) if edges[i].iter().any(|(k, _)| *k == j) => (
                    format!("stage `{}` lists `{need}` twice in `needs`", stage.name),
                    "list each input once".into(),
                ),
                Some(&j) => {
                    edges[i].push((j, *position));
                    continue;
                }
                None => (
                    format!(
                        "stage `{}` needs `{need}`, which is not a stage",
                        stage.name
                    ),
                    match did_you_mean(need, all_names.iter().copied().filter(|n| *n != stage.name))
                    {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("stages are: {}", all_names.join(", ")),
                    },
                ),
            };
            r.error(*position, message, Some(hint));
            *ok = false;
        }
    }
    edges
}

/// Reports each dependency cycle at the `needs` entry that closes it; true when none.
fn report_cycles(r: &mut Reader, raw: &[RawStage], edges: &Edges, needs: &[Vec<usize>]) -> bool {
    let cycles = graph::cycles(needs);
    for cycle in &cycles {
        let names: Vec<&str> = cycle.iter().map(|&i| raw[i].name.as_str()).collect();
        let position = (edges[cycle[0]].iter())
            .find(|(j, _)| *j == cycle[1])
            .map_or(raw[cycle[0]].key.position, |(_, p)| *p);
        r.error(
            position,
            format!(
                "dependency cycle: {} (each stage needs the next)",
                names.join(" -> ")
            ),
            Some("a workflow is a DAG: remove one of these `needs`".into()),
        );
    }
    cycles.is_empty()
}

/// The stages in `order`, numbered by it: their needs and their commands' inputs too.
fn in_order(
    raw: &[RawStage],
    order: &[usize],
    edges: &Edges,
    consumers: &[Vec<usize>],
    templates: &[Option<Template>],
    checks: &[Option<Vec<Check>>],
) -> Option<Vec<Stage>> {
    let mut new_id = vec![0; raw.len()];
    for (position, &old) in order.iter().enumerate() {
        new_id[old] = position;
    }
    let renumber = |template: &mut Template| {
        for segment in &mut template.segments {
            if let Segment::Variable(Variable::Input(id)) = segment {
                *id = new_id[*id];
            }
        }
    };
    let mut stages = Vec::with_capacity(raw.len());
    for &old in order {
        let stage = &raw[old];
        let mut template = templates[old].clone()?;
        renumber(&mut template);
        let mut stage_checks = checks[old].clone()?;
        for check in &mut stage_checks {
            renumber(&mut check.run);
        }
        stages.push(Stage {
            name: stage.name.clone(),
            run: template,
            needs: edges[old].iter().map(|(j, _)| new_id[*j]).collect(),
            estimate: stage.estimate,
            output_size: stage.output_size,
            is_final: (stage.is_final)
                .unwrap_or_else(|| defaults::is_final(!consumers[old].is_empty())),
            checkpoint: stage.checkpoint,
            version: stage.version.clone(),
            description: stage.description.clone(),
            checks: stage_checks,
            line: stage.key.position.line,
        });
    }
    Some(stages)
}

/// What a stage's commands (its `run` and its checks' `run`) are parsed against.
struct Commands<'a, 'n> {
    raw: &'a [RawStage<'n>],
    index: &'a HashMap<&'a str, usize>,
    edges: &'a [Vec<(usize, Position)>],
    scheduled: bool,
    emr: Option<&'a Longest>,
}

impl Commands<'_, '_> {
    /// The checks of stage `i`, each `run` parsed; `None` when any was reported.
    fn checks(&self, r: &mut Reader, i: usize) -> Option<Vec<Check>> {
        let stage = &self.raw[i];
        let parsed: Vec<Option<Check>> = (stage.checks.iter())
            .map(|check| {
                let (text, node) = &check.run;
                let label = format!("`run` of check `{}` of stage `{}`", check.name, stage.name);
                let run = self.parse(r, i, text, node, &label)?;
                Some(Check {
                    name: check.name.clone(),
                    run,
                    severity: check.severity,
                })
            })
            .collect();
        parsed.into_iter().collect()
    }

    /// Parses a command of stage `i`: `{{ inputs.X }}` must name a stage it needs.
    /// Problems are reported inside the command, after `label` (`` `run` of stage `a` ``).
    fn parse(
        &self,
        r: &mut Reader,
        i: usize,
        text: &str,
        node: &Node,
        label: &str,
    ) -> Option<Template> {
        let stage = &self.raw[i];
        let parsed = Template::parse(text, self.scheduled, |input| match self.index.get(input) {
            Some(&j) if self.edges[i].iter().any(|(k, _)| *k == j) => Ok(j),
            Some(_) => Err(format!(
                "add `{input}` to `needs` of stage `{}`",
                stage.name
            )),
            None => Err(
                match did_you_mean(input, stage.needs.iter().map(|(n, _)| n.as_str())) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if stage.needs.is_empty() => {
                        "this stage needs nothing; add the input to `needs`".into()
                    }
                    None => format!(
                        "this stage needs: {}",
                        (stage.needs.iter().map(|(n, _)| n.as_str()))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                },
            ),
        });
        match parsed {
            Ok(template) => {
                if let Some(at_most) = self.emr {
                    check_line(r, &stage.name, node, &template, at_most);
                }
                Some(template)
            }
            Err(errors) => {
                for TemplateError {
                    offset_chars,
                    offset_bytes,
                    message,
                    hint,
                } in errors
                {
                    let position = r.position_inside(node, text, offset_chars, offset_bytes);
                    r.error(position, format!("in {label}: {message}"), hint);
                }
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cycle_is_printed_as_the_whole_loop() {
        let yaml = "name: wf
stages:
  a: {run: x, needs: [c]}
  b: {run: y, needs: [a, b, inges]}
  c: {run: z, needs: [b]}
";
        assert_error!(
            yaml,
            3,
            23,
            "dependency cycle: a -> c -> b -> a (each stage needs the next)"
        );
        assert_error!(yaml, 4, 26, "stage `b` needs itself");
        assert_error!(yaml, 4, 29, "stage `b` needs `inges`, which is not a stage");
    }

    #[test]
    fn an_unknown_need_is_named_with_the_stage_it_resembles() {
        assert_error!(
            "name: wf
stages:
  ingest: {run: x}
  report: {run: y, needs: [injest]}
",
            4,
            28,
            "stage `report` needs `injest`, which is not a stage",
            hint: "did you mean `ingest`?"
        );
    }

    #[test]
    fn template_problems_point_inside_the_command() {
        let yaml = "name: wf
stages:
  a: {run: x}
  b: {run: \"y {{ inputs.a }} {{ outptu }}\"}
  a: {run: z}
";
        assert_error!(
            yaml,
            4,
            15,
            "`{{ inputs.a }}` names `a`, which is not in this stage's needs"
        );
        assert_error!(yaml, 4, 30, "unknown template variable `outptu`", hint: "did you mean `output`?");
        assert_error!(yaml, 5, 3, "duplicate key `a` in `stages`", hint: "already defined at line 3, column 3");
    }

    #[test]
    fn a_workflow_must_have_stages_and_keep_something() {
        assert_error!("name: wf\nstages: {}\n", 2, 9, "the workflow has no stages");
        assert_error!(
            "name: wf\nstages:\n  a: {run: x, final: false}\n",
            3,
            22,
            "no stage is final: the workflow would produce nothing"
        );
    }

    #[test]
    fn stages_come_inputs_first_in_file_order_and_sinks_are_final() {
        let workflow = super::super::valid(
            "name: wf
stages:
  report: {run: 'r {{ inputs.sessions }}', needs: [sessions]}
  ingest: {run: i}
  sessions: {run: 's {{ inputs.ingest }}', needs: [ingest]}
  audit: {run: a, needs: [ingest]}
",
        );
        let names: Vec<&str> = workflow.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["ingest", "sessions", "report", "audit"]);
        assert_eq!(workflow.stages[2].needs, [1]);
        let finals: Vec<bool> = workflow.stages.iter().map(|s| s.is_final).collect();
        assert_eq!(finals, [false, false, true, true]);
    }
}
