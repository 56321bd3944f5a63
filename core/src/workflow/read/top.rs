//! The top of a workflow file: the entry point, and `name`, `store`, `cleanup`, `retries`
//! and `cost`; the other sections have their own files.

use super::alerts::read_alerts;
use super::cost::read_cost;
use super::reader::{Fields, Reader};
use super::schedule::read_schedule;
use super::step_limit::emr_longest;
use super::{checkpoint::read_checkpoint, cluster::read_cluster, stages::read_stages};
use crate::workflow::defaults;
use crate::workflow::diagnostic::{Diagnostic, Diagnostics};
use crate::workflow::model::*;
use crate::workflow::yaml::{self, Node, Position, Value};

const WORKFLOW_KEYS: &[&str] = &[
    "name",
    "description",
    "store",
    "cluster",
    "checkpoint",
    "cleanup",
    "retries",
    "cost",
    "schedule",
    "alerts",
    "stages",
];

/// Reads and validates a workflow from YAML text. `file` names it in messages.
pub fn parse(file: &str, source: &str) -> Result<Workflow, Diagnostics> {
    let mut reader = Reader {
        file,
        source,
        diagnostics: Vec::new(),
    };
    let root = match yaml::parse_document(source) {
        Ok(Some(root)) => root,
        Ok(None) => {
            return Err(Diagnostics(vec![
                Diagnostic::whole_file(file, "the file is empty: no workflow in it")
                    .with_hint("a workflow needs at least `name:` and `stages:`; see workflows/quickstart.yaml"),
            ]));
        }
        Err(error) => return Err(Diagnostics(vec![yaml_error(file, source, &error)])),
    };
    let workflow = read_workflow(&mut reader, &root);
    let mut diagnostics = Diagnostics(reader.diagnostics);
    diagnostics.sort();
    match workflow {
        Some(workflow) if diagnostics.0.is_empty() => Ok(workflow),
        _ => {
            if diagnostics.0.is_empty() {
                diagnostics
                    .0
                    .push(Diagnostic::whole_file(file, "invalid workflow"));
            }
            Err(diagnostics)
        }
    }
}

/// A YAML syntax error (or a budget exceeded) as a diagnostic in the reader's words.
fn yaml_error(file: &str, source: &str, error: &serde_saphyr::Error) -> Diagnostic {
    let position = error
        .location()
        .map(|location| Position {
            line: u32::try_from(location.line()).unwrap_or(1).max(1),
            column: u32::try_from(location.column()).unwrap_or(1).max(1),
            byte_start: None,
            byte_len: None,
        })
        .unwrap_or(Position {
            line: 1,
            column: 1,
            byte_start: None,
            byte_len: None,
        });
    let message = error.without_snippet().to_string();
    // The parser's message ends with its own "at line X column Y"; ours is in front already.
    let message = message
        .split(" at line ")
        .next()
        .unwrap_or(&message)
        .trim()
        .to_string();
    let (message, hint) = if message.contains("Documents") {
        (
            "the file holds more than one YAML document (`---`)".to_string(),
            "a workflow file is one document; put each workflow in its own file",
        )
    } else if message.contains("recursive") {
        (
            "a YAML alias refers to the node that contains it".to_string(),
            "recursive anchors cannot describe a workflow; repeat the value instead",
        )
    } else if message.contains("budget") || message.contains("alias") || message.contains("depth") {
        (
            format!("the YAML is too large or too deeply nested to be a workflow ({message})"),
            "workflow files are limited in nesting depth, aliases and size; simplify the file",
        )
    } else {
        (
            format!("invalid YAML: {message}"),
            "check indentation, quotes and brackets around this place",
        )
    };
    Diagnostic::new(file, source, position, message).with_hint(hint)
}

/// The top-level mapping; each section is read even when another one is wrong.
fn read_workflow(r: &mut Reader, root: &Node) -> Option<Workflow> {
    if !matches!(root.value, Value::Map(_)) {
        r.error(
            root.position,
            format!(
                "this is not a workflow: expected a mapping with `name` and `stages`, found {}",
                root.kind()
            ),
            Some("see workflows/quickstart.yaml for the shape of a workflow file".into()),
        );
        return None;
    }
    let fields = r.fields(root, "the workflow", WORKFLOW_KEYS)?;
    let name = read_name(r, &fields);
    let store = fields.get("store").and_then(|node| read_store(r, node));
    let cluster = read_cluster(r, fields.get("cluster"));
    if let (Some(cluster), Some(url), Some(node)) = (&cluster, &store, fields.get("store")) {
        check_emr_store(r, cluster, url, node);
    }
    let checkpoint = read_checkpoint(r, fields.get("checkpoint"));
    let cleanup = fields
        .get("cleanup")
        .map(|node| r.choice(node, "`cleanup`", CLEANUPS))
        .unwrap_or(Some(defaults::CLEANUP));
    let retries = fields
        .get("retries")
        .map(|node| r.integer(node, "`retries`", 0, 100))
        .unwrap_or(Some(defaults::RETRIES));
    let cost = read_cost(r, fields.get("cost"));
    let schedule = fields.get("schedule").map(|node| read_schedule(r, node));
    let alerts = match fields.get("alerts") {
        Some(node) => read_alerts(r, node),
        None => Some(Vec::new()),
    };
    let stages_node = r.required(
        &fields,
        "stages",
        "the workflow",
        "add a `stages:` mapping of stage names to stages",
    );
    let scheduled = fields.get("schedule").is_some();
    let emr = match (&cluster, &name) {
        (Some(c), Some(name)) if c.provider == Provider::Emr => {
            (c.emr.as_ref()).map(|e| emr_longest(name, store.as_deref(), &e.hdfs_dir))
        }
        _ => None,
    };
    let stages = stages_node.and_then(|node| read_stages(r, node, scheduled, emr.as_ref()));
    Some(Workflow {
        name: name?,
        file: r.file.to_string(),
        store,
        cluster: cluster?,
        checkpoint: checkpoint?,
        cleanup: cleanup?,
        retries: retries?,
        cost: cost?,
        schedule: match schedule {
            Some(schedule) => Some(schedule?),
            None => None,
        },
        alerts: alerts?,
        stages: stages?,
    })
}

const CLEANUPS: &[(&str, Cleanup)] = &[
    ("on-success", Cleanup::OnSuccess),
    ("never", Cleanup::Never),
];

/// The workflow's `name`, required, and a valid name.
fn read_name(r: &mut Reader, fields: &Fields<'_>) -> Option<String> {
    let node = r.required(
        fields,
        "name",
        "the workflow",
        "add `name: my-workflow`; it names the workflow's folder in the store",
    )?;
    let text = r.string(node, "`name`")?;
    r.name(&text, node.position, "workflow name")
        .then_some(text)
}

/// `store`: a store URL.
fn read_store(r: &mut Reader, node: &Node) -> Option<String> {
    let text = r.string(node, "`store`")?;
    match check_store_url(&text) {
        Ok(()) => Some(text),
        Err(reason) => {
            r.error(
                node.position,
                format!("`store` {reason}"),
                Some("use `s3://bucket/prefix`, `file:///path` or a local path".into()),
            );
            None
        }
    }
}

/// An EMR cluster's store must leave room for EMR's names under it.
fn check_emr_store(r: &mut Reader, cluster: &ClusterSpec, url: &str, node: &Node) {
    if cluster.provider != Provider::Emr {
        return;
    }
    if let Some(reason) = crate::workflow::store_url::emr_store_problem(url) {
        r.error(
            node.position,
            format!("`store` {reason}"),
            Some("use a shorter bucket prefix".into()),
        );
    }
}

/// `store`, checked with the same parser the store drivers use.
fn check_store_url(url: &str) -> Result<(), String> {
    match crate::workflow::store_url::StoreUrl::parse(url) {
        Ok(_) => Ok(()),
        Err(error) => Err(format!("`{url}` is not a store URL: {}", error.reason)),
    }
}

#[cfg(test)]
mod tests {
    use crate::workflow::defaults;

    #[test]
    fn an_unknown_key_is_named_with_the_key_it_resembles() {
        assert_error!(
            "name: wf
stgaes:
  a: {run: x}
",
            2,
            1,
            "unknown key `stgaes` in the workflow",
            hint: "did you mean `stages`?"
        );
    }

    #[test]
    fn a_missing_required_key_points_at_the_workflow() {
        assert_error!(
            "stages:
  a: {run: x}
",
            1,
            1,
            "the workflow is missing the required key `name`"
        );
    }

    #[test]
    fn names_and_choices_are_checked_with_a_suggestion() {
        let yaml = "name: My_Flow
cleanup: always
retries: 101
stages:
  a: {run: x}
";
        assert_error!(yaml, 1, 7, "workflow name `My_Flow` contains `M`", hint: "e.g. `my-flow`");
        assert_error!(
            yaml,
            2,
            10,
            "`cleanup` must be one of on-success | never, found `always`"
        );
        assert_error!(
            yaml,
            3,
            10,
            "`retries` must be between 0 and 100, found 101"
        );
    }

    #[test]
    fn store_urls_and_prices_are_checked() {
        let yaml = "name: wf
store: ftp://host/x
cost: {spot_per_hour: -1}
stages:
  a: {run: x}
";
        assert_error!(yaml, 2, 8, "is not a store URL: unknown scheme `ftp`");
        assert_error!(yaml, 3, 23, "`cost.spot_per_hour` must be a price per hour");
    }

    #[test]
    fn invalid_yaml_is_located_by_the_parser() {
        assert_error!(
            "name: wf
stages: [a
",
            2,
            9,
            "invalid YAML: unclosed bracket",
            hint: "check indentation"
        );
    }

    #[test]
    fn what_is_left_out_takes_the_defaults() {
        let workflow = super::super::valid(
            "name: wf
stages:
  a: {run: x}
",
        );
        assert_eq!(workflow.store, None);
        assert_eq!(workflow.cleanup, defaults::CLEANUP);
        assert_eq!(workflow.retries, defaults::RETRIES);
        assert_eq!(workflow.cost, defaults::cost());
        assert_eq!(workflow.cluster, defaults::cluster());
        assert_eq!(workflow.checkpoint, defaults::checkpoint());
        assert_eq!(workflow.schedule, None);
    }
}
