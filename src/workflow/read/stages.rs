//! `stages`: every stage, then what binds them: `needs` resolved to stages, templates
//! checked against them, cycles, the topological order and the final stages.

use super::reader::Reader;
use super::stage::{RawStage, read_stage};
use crate::workflow::defaults;
use crate::workflow::diagnostic::did_you_mean;
use crate::workflow::model::*;
use crate::workflow::template::{Segment, Template, TemplateError, Variable};
use crate::workflow::yaml::{Node, Position, Value};
use std::collections::{BTreeMap, BinaryHeap, HashMap};

/// `stages`: the stages in a topological order (file order where the graph leaves a
/// choice), or `None` when anything about them was reported.
pub(super) fn read_stages(r: &mut Reader, node: &Node) -> Option<Vec<Stage>> {
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
    let templates: Vec<Option<Template>> = raw
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            let (run_text, run_node) = stage.run.as_ref()?;
            let template = Template::parse(run_text, |input| match index.get(input) {
                Some(&j) if edges[i].iter().any(|(k, _)| *k == j) => Ok(j),
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
                            stage
                                .needs
                                .iter()
                                .map(|(n, _)| n.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    },
                ),
            });
            match template {
                Ok(template) => Some(template),
                Err(errors) => {
                    for TemplateError {
                        offset_chars,
                        offset_bytes,
                        message,
                        hint,
                    } in errors
                    {
                        let position =
                            r.position_inside(run_node, run_text, offset_chars, offset_bytes);
                        r.error(
                            position,
                            format!("in `run` of stage `{}`: {message}", stage.name),
                            hint,
                        );
                    }
                    None
                }
            }
        })
        .collect();
    ok &= templates
        .iter()
        .zip(&raw)
        .all(|(t, s)| t.is_some() || s.run.is_none());
    for cycle in find_cycles(&edges) {
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
    let order = topological_order(&edges);
    let mut new_id = vec![0; raw.len()];
    for (position, &old) in order.iter().enumerate() {
        new_id[old] = position;
    }
    let consumed: Vec<bool> = {
        let mut consumed = vec![false; raw.len()];
        for list in &edges {
            for (j, _) in list {
                consumed[*j] = true;
            }
        }
        consumed
    };
    let mut stages = Vec::with_capacity(raw.len());
    for &old in &order {
        let stage = &raw[old];
        let needs: Vec<StageId> = edges[old].iter().map(|(j, _)| new_id[*j]).collect();
        let mut template = templates[old].clone()?;
        for segment in &mut template.segments {
            if let Segment::Variable(Variable::Input(id)) = segment {
                *id = new_id[*id];
            }
        }
        stages.push(Stage {
            name: stage.name.clone(),
            run: template,
            needs,
            estimate: stage.estimate,
            output_size: stage.output_size,
            is_final: stage
                .is_final
                .unwrap_or_else(|| defaults::is_final(consumed[old])),
            checkpoint: stage.checkpoint,
            version: stage.version.clone(),
            description: stage.description.clone(),
            line: stage.key.position.line,
        });
    }
    if ok && !stages.iter().any(|s| s.is_final) {
        // Point at the `final: false` of a sink: that is what made the workflow keep nothing.
        let position = order
            .iter()
            .filter(|&&old| !consumed[old])
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

/// Kahn's algorithm, taking the earliest stage in the file whenever several are ready.
fn topological_order(edges: &[Vec<(usize, Position)>]) -> Vec<usize> {
    let mut indegree: Vec<usize> = edges.iter().map(Vec::len).collect();
    let mut consumers = vec![Vec::new(); edges.len()];
    for (i, list) in edges.iter().enumerate() {
        for (j, _) in list {
            consumers[*j].push(i);
        }
    }
    let mut ready: BinaryHeap<std::cmp::Reverse<usize>> = (0..edges.len())
        .filter(|&i| indegree[i] == 0)
        .map(std::cmp::Reverse)
        .collect();
    let mut order = Vec::with_capacity(edges.len());
    while let Some(std::cmp::Reverse(i)) = ready.pop() {
        order.push(i);
        for &c in &consumers[i] {
            indegree[c] -= 1;
            if indegree[c] == 0 {
                ready.push(std::cmp::Reverse(c));
            }
        }
    }
    order
}

/// One loop per strongly connected component, as a list of stages that starts and ends with
/// the same stage, following `needs`. Iterative (Tarjan), so 10,000-stage chains cannot
/// overflow the stack.
fn find_cycles(edges: &[Vec<(usize, Position)>]) -> Vec<Vec<usize>> {
    let n = edges.len();
    let mut index = vec![usize::MAX; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut next_index = 0;
    let mut components = Vec::new();
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work: Vec<(usize, usize)> = vec![(root, 0)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut child)) = work.last_mut() {
            if *child < edges[v].len() {
                let w = edges[v][*child].0;
                *child += 1;
                if index[w] == usize::MAX {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    work.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
            } else {
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        components.push(component);
                    }
                }
            }
        }
    }
    components
        .into_iter()
        .map(|component| {
            let members: std::collections::HashSet<usize> = component.iter().copied().collect();
            let start = *component.iter().min().unwrap_or(&0);
            // Shortest loop through `start` inside the component (breadth-first).
            let mut previous: BTreeMap<usize, usize> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([start]);
            let mut closing = None;
            'search: while let Some(v) = queue.pop_front() {
                for (w, _) in &edges[v] {
                    if *w == start {
                        closing = Some(v);
                        break 'search;
                    }
                    if members.contains(w) && !previous.contains_key(w) {
                        previous.insert(*w, v);
                        queue.push_back(*w);
                    }
                }
            }
            let mut path = vec![start];
            let mut v = closing.unwrap_or(start);
            let mut back = Vec::new();
            while v != start {
                back.push(v);
                v = previous.get(&v).copied().unwrap_or(start);
            }
            back.reverse();
            path.extend(back);
            path.push(start);
            path
        })
        .collect()
}
