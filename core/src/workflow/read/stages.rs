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
    if raw.is_empty() {
        return None; // every stage key was unusable, and each was reported
    }
    let index: HashMap<&str, usize> = raw
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let all_names: Vec<&str> = raw.iter().map(|s| s.name.as_str()).collect();

    // Resolve needs to indices in file order; report unknown, self and repeated needs.
    let mut edges: Vec<Vec<(usize, Position)>> = vec![Vec::new(); raw.len()];
    for (i, stage) in raw.iter().enumerate() {
        for (need, position) in &stage.needs {
            match index.get(need.as_str()) {
                Some(&j) if j == i => {
                    r.error(
                        *position,
                        format!("stage `{}` needs itself", stage.name),
                        Some("remove it from its own `needs`".into()),
                    );
                    ok = false;
                }
                Some(&j) if edges[i].iter().any(|(k, _)| *k == j) => {
                    r.error(
                        *position,
                        format!("stage `{}` lists `{need}` twice in `needs`", stage.name),
                        Some("list each input once".into()),
                    );
                    ok = false;
                }
                Some(&j) => edges[i].push((j, *position)),
                None => {
                    let hint = match did_you_mean(
                        need,
                        all_names.iter().copied().filter(|n| *n != stage.name),
                    ) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("stages are: {}", all_names.join(", ")),
                    };
                    r.error(
                        *position,
                        format!(
                            "stage `{}` needs `{need}`, which is not a stage",
                            stage.name
                        ),
                        Some(hint),
                    );
                    ok = false;
                }
            }
        }
    }
    let commands = Commands {
        raw: &raw,
        index: &index,
        edges: &edges,
        scheduled,
        emr,
    };
    let templates: Vec<Option<Template>> = raw
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            let (text, node) = stage.run.as_ref()?;
            commands.parse(
                r,
                i,
                text,
                node,
                &format!("`run` of stage `{}`", stage.name),
            )
        })
        .collect();
    let checks: Vec<Option<Vec<Check>>> = raw
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            let parsed: Vec<Option<Check>> = (stage.checks.iter())
                .map(|check| {
                    let (text, node) = &check.run;
                    let label =
                        format!("`run` of check `{}` of stage `{}`", check.name, stage.name);
                    let run = commands.parse(r, i, text, node, &label)?;
                    Some(Check {
                        name: check.name.clone(),
                        run,
                        severity: check.severity,
                    })
                })
                .collect();
            parsed.into_iter().collect()
        })
        .collect();
    ok &= checks.iter().all(Option::is_some);
    ok &= templates
        .iter()
        .zip(&raw)
        .all(|(t, s)| t.is_some() || s.run.is_none());
    let needs: Vec<Vec<usize>> = edges
        .iter()
        .map(|inputs| inputs.iter().map(|(j, _)| *j).collect())
        .collect();
    for cycle in graph::cycles(&needs) {
        let names: Vec<&str> = cycle.iter().map(|&i| raw[i].name.as_str()).collect();
        let position = edges[cycle[0]]
            .iter()
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
        ok = false;
    }
    if !ok {
        return None;
    }

    // Stages in topological order, file order where the graph leaves a choice.
    let order = graph::topological_order(&needs);
    let mut new_id = vec![0; raw.len()];
    for (position, &old) in order.iter().enumerate() {
        new_id[old] = position;
    }
    let consumers = graph::consumers(&needs);
    let consumed = |stage: usize| !consumers[stage].is_empty();
    let mut stages = Vec::with_capacity(raw.len());
    for &old in &order {
        let stage = &raw[old];
        let inputs: Vec<StageId> = edges[old].iter().map(|(j, _)| new_id[*j]).collect();
        let renumber = |template: &mut Template| {
            for segment in &mut template.segments {
                if let Segment::Variable(Variable::Input(id)) = segment {
                    *id = new_id[*id];
                }
            }
        };
        let mut template = templates[old].clone()?;
        renumber(&mut template);
        let mut stage_checks = checks[old].clone()?;
        for check in &mut stage_checks {
            renumber(&mut check.run);
        }
        stages.push(Stage {
            name: stage.name.clone(),
            run: template,
            needs: inputs,
            estimate: stage.estimate,
            output_size: stage.output_size,
            is_final: stage
                .is_final
                .unwrap_or_else(|| defaults::is_final(consumed(old))),
            checkpoint: stage.checkpoint,
            version: stage.version.clone(),
            description: stage.description.clone(),
            checks: stage_checks,
            line: stage.key.position.line,
        });
    }
    if ok && !stages.iter().any(|s| s.is_final) {
        // Point at the `final: false` of a sink: that is what made the workflow keep nothing.
        let position = order
            .iter()
            .filter(|&&old| !consumed(old))
            .find_map(|&old| raw[old].final_position)
            .unwrap_or(node.position);
        r.error(
            position,
            "no stage is final: the workflow would produce nothing",
            Some("mark the stage whose output is the product with `final: true`".into()),
        );
        ok = false;
    }
    ok.then_some(stages)
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
