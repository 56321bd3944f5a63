//! From the located YAML tree to a validated [`Workflow`], collecting every problem.

use super::diagnostic::{Diagnostic, Diagnostics, did_you_mean};
use super::model::*;
use super::template::{Segment, Template, TemplateError, Variable};
use super::units::{parse_duration, parse_size, parse_throughput};
use super::yaml::{Node, Position, Value};
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fmt::Display;
use std::time::Duration;

const WORKFLOW_KEYS: &[&str] = &[
    "name",
    "description",
    "store",
    "cluster",
    "checkpoint",
    "cleanup",
    "retries",
    "cost",
    "stages",
];
const CLUSTER_KEYS: &[&str] = &[
    "provider",
    "market",
    "mtti",
    "provision_time",
    "slots",
    "fallback",
    "emr",
];
const EMR_KEYS: &[&str] = &[
    "region",
    "release_label",
    "log_uri",
    "service_role",
    "instance_profile",
    "subnets",
    "applications",
    "primary",
    "core",
    "spot_allocation_strategy",
    "spot_timeout",
    "idle_timeout",
    "step_concurrency",
    "bootstrap_actions",
    "configurations",
    "hdfs_dir",
];
const FLEET_KEYS: &[&str] = &["instance_types", "capacity"];
const BOOTSTRAP_KEYS: &[&str] = &["name", "path", "args"];
const CONFIGURATION_KEYS: &[&str] = &["classification", "properties", "configurations"];
const FALLBACK_KEYS: &[&str] = &["after_interruptions", "deadline"];
const CHECKPOINT_KEYS: &[&str] = &[
    "policy",
    "write_throughput",
    "read_throughput",
    "every",
    "every_critical",
];
const COST_KEYS: &[&str] = &["spot_per_hour", "on_demand_per_hour"];
const STAGE_KEYS: &[&str] = &[
    "run",
    "needs",
    "estimate",
    "output_size",
    "final",
    "checkpoint",
    "version",
    "description",
];

/// The fields of one mapping, after unknown and duplicate keys were reported.
struct Fields<'n> {
    owner: Position,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(name, _, _)| *name == key)
            .map(|(_, _, value)| *value)
    }
}

struct Reader<'a> {
    file: &'a str,
    source: &'a str,
    diagnostics: Vec<Diagnostic>,
}

impl<'a> Reader<'a> {
    fn error(&mut self, position: Position, message: impl Into<String>, hint: Option<String>) {
        let mut diagnostic = Diagnostic::new(self.file, self.source, position, message);
        diagnostic.hint = hint;
        self.diagnostics.push(diagnostic);
    }

    fn key_text(&mut self, key: &Node, what: impl Display + Copy) -> Option<String> {
        match &key.value {
            Value::Seq(_) | Value::Map(_) | Value::Null => {
                self.error(
                    key.position,
                    format!("{what} has a key that is {}", key.kind()),
                    Some("keys are plain words, like `name:`".into()),
                );
                None
            }
            _ => key.scalar_text(self.source),
        }
    }

    /// Every `key: value` of a mapping, reporting duplicate keys; `None` if not a mapping.
    fn entries<'n>(
        &mut self,
        node: &'n Node,
        what: impl Display + Copy,
    ) -> Option<Vec<(String, &'n Node, &'n Node)>> {
        let Value::Map(pairs) = &node.value else {
            self.error(
                node.position,
                format!("{what} must be a mapping, found {}", node.kind()),
                None,
            );
            return None;
        };
        let mut seen: HashMap<String, Position> = HashMap::with_capacity(pairs.len());
        let mut entries: Vec<(String, &Node, &Node)> = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let Some(name) = self.key_text(key, what) else {
                continue;
            };
            if let Some(first) = seen.get(&name) {
                self.error(
                    key.position,
                    format!("duplicate key `{name}` in {what}"),
                    Some(format!(
                        "`{name}` is already defined at line {}, column {}",
                        first.line, first.column
                    )),
                );
                continue;
            }
            seen.insert(name.clone(), key.position);
            entries.push((name, key, value));
        }
        Some(entries)
    }

    /// A mapping with a fixed set of keys: unknown keys are reported with a suggestion.
    fn fields<'n>(
        &mut self,
        node: &'n Node,
        what: impl Display + Copy,
        allowed: &'static [&'static str],
    ) -> Option<Fields<'n>> {
        let entries = self.entries(node, what)?;
        let mut fields = Fields {
            owner: node.position,
            entries: Vec::with_capacity(entries.len()),
        };
        for (name, key, value) in entries {
            match allowed.iter().find(|a| **a == name) {
                Some(known) => fields.entries.push((known, key, value)),
                None => {
                    let hint = match did_you_mean(&name, allowed.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("known keys: {}", allowed.join(", ")),
                    };
                    self.error(
                        key.position,
                        format!("unknown key `{name}` in {what}"),
                        Some(hint),
                    );
                }
            }
        }
        Some(fields)
    }

    fn required<'n>(
        &mut self,
        fields: &Fields<'n>,
        key: &str,
        what: impl Display + Copy,
        hint: &str,
    ) -> Option<&'n Node> {
        let found = fields.get(key);
        if found.is_none() {
            self.error(
                fields.owner,
                format!("{what} is missing the required key `{key}`"),
                Some(hint.to_string()),
            );
        }
        found
    }

    fn string(&mut self, node: &Node, what: impl Display + Copy) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => node.scalar_text(self.source),
            _ => {
                self.error(
                    node.position,
                    format!("{what} must be a string, found {}", node.kind()),
                    None,
                );
                None
            }
        }
    }

    fn scalar_with<T>(
        &mut self,
        node: &Node,
        what: impl Display + Copy,
        expected: &str,
        example: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = match &node.value {
            Value::Seq(_) | Value::Map(_) | Value::Null => None,
            _ => node.scalar_text(self.source),
        };
        let Some(text) = text else {
            self.error(
                node.position,
                format!("{what} must be {expected}, found {}", node.kind()),
                Some(format!("for example `{example}`")),
            );
            return None;
        };
        match parse(&text) {
            Ok(value) => Some(value),
            Err(reason) => {
                self.error(
                    node.position,
                    format!("{what} must be {expected}: {reason}"),
                    Some(format!("for example `{example}`")),
                );
                None
            }
        }
    }

    fn duration(
        &mut self,
        node: &Node,
        what: impl Display + Copy,
        example: &str,
    ) -> Option<Duration> {
        self.scalar_with(node, what, "a duration", example, parse_duration)
    }

    fn positive_duration(
        &mut self,
        node: &Node,
        what: impl Display + Copy,
        example: &str,
    ) -> Option<Duration> {
        self.scalar_with(node, what, "a duration", example, |text| {
            let value = parse_duration(text)?;
            if value.is_zero() {
                Err("it must be longer than zero".into())
            } else {
                Ok(value)
            }
        })
    }

    fn integer(
        &mut self,
        node: &Node,
        what: impl Display + Copy,
        min: i64,
        max: i64,
    ) -> Option<u32> {
        match node.value {
            Value::Int(value) if (min..=max).contains(&value) => Some(value as u32),
            Value::Int(value) => {
                self.error(
                    node.position,
                    format!("{what} must be between {min} and {max}, found {value}"),
                    None,
                );
                None
            }
            Value::Float(value) if value.fract() == 0.0 => {
                let text = node
                    .scalar_text(self.source)
                    .unwrap_or_else(|| value.to_string());
                self.error(
                    node.position,
                    format!("{what} must be between {min} and {max}, found {text}"),
                    None,
                );
                None
            }
            _ => {
                self.error(
                    node.position,
                    format!("{what} must be a whole number, found {}", node.kind()),
                    Some(format!("for example `{}`", min.max(1))),
                );
                None
            }
        }
    }

    fn price(&mut self, node: &Node, what: impl Display + Copy) -> Option<f64> {
        let value = match node.value {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
            _ => f64::NAN,
        };
        if value.is_finite() && value >= 0.0 {
            Some(value)
        } else {
            self.error(
                node.position,
                format!("{what} must be a price per hour (a number, zero or more)"),
                Some("for example `0.35`".into()),
            );
            None
        }
    }

    fn boolean(&mut self, node: &Node, what: impl Display + Copy) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.error(
                    node.position,
                    format!("{what} must be `true` or `false`, found {}", node.kind()),
                    None,
                );
                None
            }
        }
    }

    fn choice<T: Copy>(
        &mut self,
        node: &Node,
        what: impl Display + Copy,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        let text = match &node.value {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        };
        if let Some(found) = text.and_then(|t| choices.iter().find(|(name, _)| *name == t)) {
            return Some(found.1);
        }
        let hint = match text.and_then(|t| did_you_mean(t, names.iter().copied())) {
            Some(s) => format!("did you mean `{s}`? one of: {}", names.join(", ")),
            None => format!("one of: {}", names.join(", ")),
        };
        let found = match text {
            Some(t) => format!("`{t}`"),
            None => node.kind().to_string(),
        };
        self.error(
            node.position,
            format!("{what} must be one of {}, found {found}", names.join(" | ")),
            Some(hint),
        );
        None
    }

    fn name(&mut self, text: &str, position: Position, what: impl Display + Copy) -> bool {
        match check_name(text) {
            Ok(()) => true,
            Err(reason) => {
                let lower = text.to_ascii_lowercase().replace(['_', ' ', '.'], "-");
                let hint = if lower != text && check_name(&lower).is_ok() {
                    format!(
                        "names become storage paths: use lowercase letters, digits and `-`, e.g. `{lower}`"
                    )
                } else {
                    "names become storage paths: use lowercase letters, digits and `-`".to_string()
                };
                self.error(position, format!("{what} `{text}` {reason}"), Some(hint));
                false
            }
        }
    }

    /// Where a character offset inside a string value lies, when the source shows the value
    /// as written (a plain or simply quoted scalar on one line).
    fn position_inside(&self, node: &Node, value: &str, chars: usize, bytes: usize) -> Position {
        let Some(start) = node.position.byte_start else {
            return node.position;
        };
        let Some(written) = self.source.get(start..) else {
            return node.position;
        };
        let prefix = &value[..bytes];
        if written.starts_with(prefix) {
            node.position.shifted(chars, bytes)
        } else if (written.starts_with('"') || written.starts_with('\''))
            && written[1..].starts_with(prefix)
        {
            node.position.shifted(chars + 1, bytes + 1)
        } else {
            node.position
        }
    }
}

/// A stage or workflow name: it becomes part of storage paths and EMR step names.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > defaults::MAX_NAME_LEN {
        return Err(format!(
            "is {} characters long; at most {} are allowed",
            name.len(),
            defaults::MAX_NAME_LEN
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "contains `{}`, which is not allowed",
            bad.escape_default()
        ));
    }
    if name.starts_with('-') {
        return Err("starts with `-`".into());
    }
    Ok(())
}

/// One stage as read, before the graph is checked.
struct RawStage<'n> {
    name: String,
    key: &'n Node,
    run: Option<(String, &'n Node)>,
    needs: Vec<(String, Position)>,
    estimate: Duration,
    output_size: u64,
    is_final: Option<bool>,
    checkpoint: StageCheckpoint,
    version: Option<String>,
    description: Option<String>,
    /// Where `final:` was written, for the message when no stage is final.
    final_position: Option<Position>,
    /// False when a field of the stage was wrong (already reported).
    valid: bool,
}

/// Reads and validates a workflow from YAML text. `file` names it in messages.
pub fn parse(file: &str, source: &str) -> Result<Workflow, Diagnostics> {
    let mut reader = Reader {
        file,
        source,
        diagnostics: Vec::new(),
    };
    let root = match super::yaml::parse_document(source) {
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

/// Reads a workflow file. The only I/O of the spec layer.
pub fn load(path: &std::path::Path) -> Result<Workflow, Diagnostics> {
    let file = path.display().to_string();
    let fail = |message: String, hint: &str| {
        Err(Diagnostics(vec![
            Diagnostic::whole_file(&file, message).with_hint(hint),
        ]))
    };
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(error) => {
            return fail(
                format!("cannot read the workflow file: {error}"),
                "check the path",
            );
        }
    };
    if metadata.is_dir() {
        return fail(
            "is a directory, not a workflow file".into(),
            "name a .yaml file",
        );
    }
    if metadata.len() > super::yaml::MAX_FILE_BYTES as u64 {
        return fail(
            format!(
                "the file is {} bytes; workflow files are limited to {} bytes",
                metadata.len(),
                super::yaml::MAX_FILE_BYTES
            ),
            "is this really a workflow file?",
        );
    }
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) => {
            return fail(
                format!("cannot read the workflow file: {error}"),
                "check the path",
            );
        }
    };
    match String::from_utf8(bytes) {
        Ok(text) => parse(&file, &text),
        Err(error) => {
            let offset = error.utf8_error().valid_up_to();
            let text = String::from_utf8_lossy(&error.into_bytes()[..offset]).into_owned();
            let line = text.matches('\n').count() as u32 + 1;
            let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
            let position = Position {
                line,
                column,
                byte_start: None,
                byte_len: None,
            };
            Err(Diagnostics(vec![
                Diagnostic::new(&file, &text, position, "the file is not UTF-8 text")
                    .with_hint("workflow files are YAML, saved as UTF-8"),
            ]))
        }
    }
}

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
    let name_node = r.required(
        &fields,
        "name",
        "the workflow",
        "add `name: my-workflow`; it names the workflow's folder in the store",
    );
    let name = name_node.and_then(|node| {
        let text = r.string(node, "`name`")?;
        r.name(&text, node.position, "workflow name")
            .then_some(text)
    });
    let store = fields.get("store").and_then(|node| {
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
    });
    let cluster = read_cluster(r, fields.get("cluster"));
    let checkpoint = read_checkpoint(r, fields.get("checkpoint"));
    let cleanup = fields
        .get("cleanup")
        .map(|node| {
            r.choice(
                node,
                "`cleanup`",
                &[
                    ("on-success", Cleanup::OnSuccess),
                    ("never", Cleanup::Never),
                ],
            )
        })
        .unwrap_or(Some(Cleanup::OnSuccess));
    let retries = fields
        .get("retries")
        .map(|node| r.integer(node, "`retries`", 0, 100))
        .unwrap_or(Some(defaults::RETRIES));
    let cost = read_cost(r, fields.get("cost"));
    let stages_node = r.required(
        &fields,
        "stages",
        "the workflow",
        "add a `stages:` mapping of stage names to stages",
    );
    let stages = stages_node.and_then(|node| read_stages(r, node));
    Some(Workflow {
        name: name?,
        file: r.file.to_string(),
        store,
        cluster: cluster?,
        checkpoint: checkpoint?,
        cleanup: cleanup?,
        retries: retries?,
        cost: cost?,
        stages: stages?,
    })
}

fn check_store_url(url: &str) -> Result<(), String> {
    match super::store_url::StoreUrl::parse(url) {
        Ok(_) => Ok(()),
        Err(error) => Err(format!("`{url}` is not a store URL: {}", error.reason)),
    }
}

fn read_cluster(r: &mut Reader, node: Option<&Node>) -> Option<ClusterSpec> {
    let mut cluster = ClusterSpec {
        provider: Provider::Local,
        market: Market::Spot,
        mtti: defaults::MTTI,
        provision_time: defaults::PROVISION_TIME,
        slots: defaults::SLOTS,
        fallback: FallbackSpec::default(),
        emr: None,
    };
    let Some(node) = node else {
        return Some(cluster);
    };
    let fields = r.fields(node, "`cluster`", CLUSTER_KEYS)?;
    let mut ok = true;
    if let Some(node) = fields.get("provider") {
        ok &= r
            .choice(
                node,
                "`cluster.provider`",
                &[("local", Provider::Local), ("emr", Provider::Emr)],
            )
            .map(|v| cluster.provider = v)
            .is_some();
    }
    if let Some(node) = fields.get("market") {
        ok &= r
            .choice(
                node,
                "`cluster.market`",
                &[("spot", Market::Spot), ("on-demand", Market::OnDemand)],
            )
            .map(|v| cluster.market = v)
            .is_some();
    }
    if let Some(node) = fields.get("mtti") {
        ok &= r
            .positive_duration(node, "`cluster.mtti`", "2h")
            .map(|v| cluster.mtti = v)
            .is_some();
    }
    if let Some(node) = fields.get("provision_time") {
        ok &= r
            .duration(node, "`cluster.provision_time`", "10m")
            .map(|v| cluster.provision_time = v)
            .is_some();
    }
    if let Some(node) = fields.get("slots") {
        ok &= r
            .integer(node, "`cluster.slots`", 1, 1024)
            .map(|v| cluster.slots = v)
            .is_some();
    }
    if let Some(node) = fields.get("fallback") {
        match r.fields(node, "`cluster.fallback`", FALLBACK_KEYS) {
            Some(fallback) => {
                if let Some(node) = fallback.get("after_interruptions") {
                    ok &= r
                        .integer(node, "`cluster.fallback.after_interruptions`", 1, 1000)
                        .map(|v| cluster.fallback.after_interruptions = Some(v))
                        .is_some();
                }
                if let Some(node) = fallback.get("deadline") {
                    ok &= r
                        .positive_duration(node, "`cluster.fallback.deadline`", "8h")
                        .map(|v| cluster.fallback.deadline = Some(v))
                        .is_some();
                }
            }
            None => ok = false,
        }
    }
    match (cluster.provider, fields.get("emr")) {
        (Provider::Emr, Some(node)) => match read_emr(r, node, cluster.slots) {
            Some(emr) => cluster.emr = Some(emr),
            None => ok = false,
        },
        (Provider::Emr, None) => {
            if ok {
                r.error(
                    fields.owner,
                    "`cluster.provider: emr` needs a `cluster.emr` block",
                    Some(
                        "at least `release_label`, `service_role`, `instance_profile` and \
                         `primary: {instance_types: [...]}`; see the README's EMR section"
                            .into(),
                    ),
                );
            }
            ok = false;
        }
        (Provider::Local, Some(node)) => {
            r.error(
                node.position,
                "`cluster.emr` is only read when `cluster.provider` is `emr`",
                Some("set `provider: emr`, or remove the `emr` block".into()),
            );
            ok = false;
        }
        (Provider::Local, None) => {}
    }
    ok.then_some(cluster)
}

/// A string that must look like an S3 URL (`s3://bucket/...`).
fn s3_url(r: &mut Reader, node: &Node, what: impl Display + Copy) -> Option<String> {
    let text = r.string(node, what)?;
    let bucket = text
        .strip_prefix("s3://")
        .map(|rest| rest.split('/').next().unwrap_or(""));
    match bucket {
        Some(bucket) if !bucket.is_empty() => Some(text),
        _ => {
            r.error(
                node.position,
                format!("{what} must be an S3 URL, found `{text}`"),
                Some("for example `s3://my-bucket/emr-logs/`".into()),
            );
            None
        }
    }
}

/// A list of non-empty strings.
fn string_list(r: &mut Reader, node: &Node, what: impl Display + Copy) -> Option<Vec<String>> {
    let Value::Seq(items) = &node.value else {
        r.error(
            node.position,
            format!("{what} must be a list, found {}", node.kind()),
            Some("for example `[a, b]`".into()),
        );
        return None;
    };
    let mut out = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
        match r.string(item, what) {
            Some(text) if !text.trim().is_empty() => out.push(text),
            Some(_) => {
                r.error(item.position, format!("{what} has an empty entry"), None);
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn read_fleet(r: &mut Reader, node: &Node, key: &str) -> Option<FleetSpec> {
    let primary = key == "primary";
    let what = format_args!("`cluster.emr.{key}`");
    let fields = r.fields(node, what, FLEET_KEYS)?;
    let types_what = format!("`cluster.emr.{key}.instance_types`");
    let types = r
        .required(
            &fields,
            "instance_types",
            what,
            "for example `instance_types: [m5.xlarge, m5a.xlarge]`",
        )
        .and_then(|node| {
            let types = string_list(r, node, &types_what)?;
            if types.is_empty() || types.len() > 30 {
                r.error(
                    node.position,
                    format!(
                        "{types_what} must list 1 to 30 instance types, found {}",
                        types.len()
                    ),
                    Some("several types let EMR find spot capacity".into()),
                );
                return None;
            }
            Some(types)
        });
    let capacity = match fields.get("capacity") {
        Some(node) if primary => {
            let value = r.integer(node, format_args!("`cluster.emr.{key}.capacity`"), 1, 1);
            value?
        }
        Some(node) => r.integer(node, format_args!("`cluster.emr.{key}.capacity`"), 1, 1000)?,
        None => 1,
    };
    Some(FleetSpec {
        instance_types: types?,
        capacity,
    })
}

fn read_configurations(
    r: &mut Reader,
    node: &Node,
    what: impl Display + Copy,
    depth: u32,
) -> Option<Vec<EmrConfiguration>> {
    let Value::Seq(items) = &node.value else {
        r.error(
            node.position,
            format!("{what} must be a list, found {}", node.kind()),
            Some("for example `- classification: spark-defaults`".into()),
        );
        return None;
    };
    if depth > 4 {
        r.error(node.position, format!("{what} is nested too deeply"), None);
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for item in items {
        let Some(fields) = r.fields(item, what, CONFIGURATION_KEYS) else {
            ok = false;
            continue;
        };
        let classification = r
            .required(
                &fields,
                "classification",
                what,
                "for example `classification: spark-defaults`",
            )
            .and_then(|node| r.string(node, &format!("{what}.classification")));
        let mut properties = Vec::new();
        if let Some(node) = fields.get("properties")
            && let Some(entries) = r.entries(node, &format!("{what}.properties"))
        {
            for (key, _, value) in entries {
                match r.string(value, &format!("{what}.properties.{key}")) {
                    Some(value) => properties.push((key, value)),
                    None => ok = false,
                }
            }
        }
        let nested = match fields.get("configurations") {
            Some(node) => {
                read_configurations(r, node, &format!("{what}.configurations"), depth + 1)
            }
            None => Some(Vec::new()),
        };
        match (classification, nested) {
            (Some(classification), Some(configurations)) => out.push(EmrConfiguration {
                classification,
                properties,
                configurations,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(out)
}

fn read_emr(r: &mut Reader, node: &Node, slots: u32) -> Option<EmrSpec> {
    let fields = r.fields(node, "`cluster.emr`", EMR_KEYS)?;
    let mut ok = true;
    let text = |r: &mut Reader, key: &str, hint: &str| {
        r.required(&fields, key, "`cluster.emr`", hint)
            .and_then(|node| r.string(node, format_args!("`cluster.emr.{key}`")))
    };
    let release_label = text(r, "release_label", "for example `release_label: emr-7.5.0`");
    let service_role = text(
        r,
        "service_role",
        "the EMR service role, e.g. `respawn-emr-service` (see infra/)",
    );
    let instance_profile = text(
        r,
        "instance_profile",
        "the nodes' EC2 instance profile, e.g. `respawn-emr-nodes` (see infra/)",
    );
    if let Some(label) = &release_label {
        let valid = label.strip_prefix("emr-").is_some_and(|v| {
            !v.is_empty()
                && v.split('.')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        });
        if !valid && let Some(node) = fields.get("release_label") {
            r.error(
                node.position,
                format!("`cluster.emr.release_label` must look like `emr-7.5.0`, found `{label}`"),
                None,
            );
            ok = false;
        }
    }
    let region = fields
        .get("region")
        .and_then(|node| r.string(node, "`cluster.emr.region`"));
    let log_uri = match fields.get("log_uri") {
        Some(node) => match s3_url(r, node, "`cluster.emr.log_uri`") {
            Some(uri) => Some(uri),
            None => {
                ok = false;
                None
            }
        },
        None => None,
    };
    let subnets = match fields.get("subnets") {
        Some(node) => string_list(r, node, "`cluster.emr.subnets`").unwrap_or_else(|| {
            ok = false;
            Vec::new()
        }),
        None => Vec::new(),
    };
    let applications = match fields.get("applications") {
        Some(node) => string_list(r, node, "`cluster.emr.applications`").unwrap_or_else(|| {
            ok = false;
            Vec::new()
        }),
        None => vec!["Spark".to_string()],
    };
    let primary = r
        .required(
            &fields,
            "primary",
            "`cluster.emr`",
            "for example `primary: {instance_types: [m5.xlarge, m5a.xlarge]}`",
        )
        .and_then(|node| read_fleet(r, node, "primary"));
    let core = match fields.get("core") {
        Some(node) => match read_fleet(r, node, "core") {
            Some(fleet) => Some(fleet),
            None => {
                ok = false;
                None
            }
        },
        None => None,
    };
    let mut spot_allocation_strategy = "price-capacity-optimized".to_string();
    if let Some(node) = fields.get("spot_allocation_strategy") {
        let choices: Vec<(&str, &str)> = SPOT_ALLOCATION_STRATEGIES
            .iter()
            .map(|s| (*s, *s))
            .collect();
        match r.choice(node, "`cluster.emr.spot_allocation_strategy`", &choices) {
            Some(value) => spot_allocation_strategy = value.to_string(),
            None => ok = false,
        }
    }
    let bounded =
        |r: &mut Reader, key: &str, default: Duration, min: u64, max: u64, example: &str| {
            let Some(node) = fields.get(key) else {
                return Some(default);
            };
            let what = format!("`cluster.emr.{key}`");
            let value = r.duration(node, &what, example)?;
            if value.as_secs() < min || value.as_secs() > max {
                r.error(
                    node.position,
                    format!(
                        "{what} must be between {} and {}, found {}",
                        humantime::format_duration(Duration::from_secs(min)),
                        humantime::format_duration(Duration::from_secs(max)),
                        humantime::format_duration(value)
                    ),
                    None,
                );
                return None;
            }
            Some(value)
        };
    let spot_timeout = bounded(
        r,
        "spot_timeout",
        Duration::from_secs(20 * 60),
        5 * 60,
        24 * 3600,
        "20m",
    );
    let idle_timeout = bounded(
        r,
        "idle_timeout",
        Duration::from_secs(3600),
        60,
        7 * 24 * 3600,
        "1h",
    );
    let step_concurrency = match fields.get("step_concurrency") {
        Some(node) => r.integer(node, "`cluster.emr.step_concurrency`", 1, 256),
        None => Some(slots.clamp(1, 256)),
    };
    let mut bootstrap_actions = Vec::new();
    if let Some(node) = fields.get("bootstrap_actions") {
        match &node.value {
            Value::Seq(items) => {
                for item in items {
                    let what = "`cluster.emr.bootstrap_actions`";
                    let Some(action) = r.fields(item, what, BOOTSTRAP_KEYS) else {
                        ok = false;
                        continue;
                    };
                    let name = r
                        .required(&action, "name", what, "for example `name: install-deps`")
                        .and_then(|node| r.string(node, "`cluster.emr.bootstrap_actions.name`"));
                    let path = r
                        .required(
                            &action,
                            "path",
                            what,
                            "for example `path: s3://my-bucket/bootstrap.sh`",
                        )
                        .and_then(|node| s3_url(r, node, "`cluster.emr.bootstrap_actions.path`"));
                    let args = match action.get("args") {
                        Some(node) => string_list(r, node, "`cluster.emr.bootstrap_actions.args`"),
                        None => Some(Vec::new()),
                    };
                    match (name, path, args) {
                        (Some(name), Some(path), Some(args)) => {
                            bootstrap_actions.push(BootstrapAction { name, path, args })
                        }
                        _ => ok = false,
                    }
                }
            }
            _ => {
                r.error(
                    node.position,
                    format!(
                        "`cluster.emr.bootstrap_actions` must be a list, found {}",
                        node.kind()
                    ),
                    None,
                );
                ok = false;
            }
        }
    }
    let configurations = match fields.get("configurations") {
        Some(node) => read_configurations(r, node, "`cluster.emr.configurations`", 0),
        None => Some(Vec::new()),
    };
    let hdfs_dir = match fields.get("hdfs_dir") {
        Some(node) => r.string(node, "`cluster.emr.hdfs_dir`").and_then(|dir| {
            if dir.starts_with('/') && !dir.contains("..") && !dir.contains(char::is_whitespace) {
                Some(dir.trim_end_matches('/').to_string())
            } else {
                r.error(
                    node.position,
                    format!("`cluster.emr.hdfs_dir` must be an absolute HDFS path, found `{dir}`"),
                    Some("for example `/respawn`".into()),
                );
                None
            }
        }),
        None => Some("/respawn".to_string()),
    };
    Some(EmrSpec {
        region,
        release_label: release_label?,
        log_uri,
        service_role: service_role?,
        instance_profile: instance_profile?,
        subnets,
        applications,
        primary: primary?,
        core,
        spot_allocation_strategy,
        spot_timeout: spot_timeout?,
        idle_timeout: idle_timeout?,
        step_concurrency: step_concurrency?,
        bootstrap_actions,
        configurations: configurations?,
        hdfs_dir: hdfs_dir?,
    })
    .filter(|_| ok)
}

fn read_checkpoint(r: &mut Reader, node: Option<&Node>) -> Option<CheckpointSpec> {
    let mut spec = CheckpointSpec {
        policy: CheckpointPolicy::Auto,
        write_throughput: defaults::WRITE_THROUGHPUT,
        read_throughput: defaults::WRITE_THROUGHPUT,
        every: defaults::EVERY,
        every_critical: defaults::EVERY_CRITICAL,
    };
    let Some(node) = node else {
        return Some(spec);
    };
    let fields = r.fields(node, "`checkpoint`", CHECKPOINT_KEYS)?;
    let mut ok = true;
    if let Some(node) = fields.get("policy") {
        ok &= r
            .choice(
                node,
                "`checkpoint.policy`",
                &[
                    ("auto", CheckpointPolicy::Auto),
                    ("all", CheckpointPolicy::All),
                    ("none", CheckpointPolicy::None),
                    ("interval", CheckpointPolicy::Interval),
                ],
            )
            .map(|v| spec.policy = v)
            .is_some();
    }
    let mut read_given = false;
    if let Some(node) = fields.get("write_throughput") {
        ok &= r
            .scalar_with(
                node,
                "`checkpoint.write_throughput`",
                "a throughput",
                "200MB/s",
                parse_throughput,
            )
            .map(|v| spec.write_throughput = v)
            .is_some();
    }
    if let Some(node) = fields.get("read_throughput") {
        read_given = true;
        ok &= r
            .scalar_with(
                node,
                "`checkpoint.read_throughput`",
                "a throughput",
                "400MB/s",
                parse_throughput,
            )
            .map(|v| spec.read_throughput = v)
            .is_some();
    }
    if !read_given {
        spec.read_throughput = spec.write_throughput;
    }
    if let Some(node) = fields.get("every") {
        ok &= r
            .positive_duration(node, "`checkpoint.every`", "3h")
            .map(|v| spec.every = v)
            .is_some();
    }
    if let Some(node) = fields.get("every_critical") {
        ok &= r
            .positive_duration(node, "`checkpoint.every_critical`", "1h")
            .map(|v| spec.every_critical = v)
            .is_some();
    }
    ok.then_some(spec)
}

fn read_cost(r: &mut Reader, node: Option<&Node>) -> Option<CostSpec> {
    let mut cost = CostSpec {
        spot_per_hour: defaults::SPOT_PER_HOUR,
        on_demand_per_hour: defaults::ON_DEMAND_PER_HOUR,
    };
    let Some(node) = node else {
        return Some(cost);
    };
    let fields = r.fields(node, "`cost`", COST_KEYS)?;
    let mut ok = true;
    if let Some(node) = fields.get("spot_per_hour") {
        ok &= r
            .price(node, "`cost.spot_per_hour`")
            .map(|v| cost.spot_per_hour = v)
            .is_some();
    }
    if let Some(node) = fields.get("on_demand_per_hour") {
        ok &= r
            .price(node, "`cost.on_demand_per_hour`")
            .map(|v| cost.on_demand_per_hour = v)
            .is_some();
    }
    ok.then_some(cost)
}

/// Reads one stage. The stage comes back even when some of its fields are wrong (with
/// `valid: false`), so that its name and needs still take part in the graph checks.
fn read_stage<'n>(r: &mut Reader, name: String, key: &'n Node, node: &'n Node) -> RawStage<'n> {
    let what = format!("stage `{name}`");
    let Some(mut fields) = r.fields(node, &what, STAGE_KEYS) else {
        return RawStage {
            name,
            key,
            run: None,
            needs: Vec::new(),
            estimate: Duration::ZERO,
            output_size: 0,
            is_final: None,
            checkpoint: StageCheckpoint::Auto,
            version: None,
            description: None,
            final_position: None,
            valid: false,
        };
    };
    fields.owner = key.position;
    let mut ok = true;
    let run = r
        .required(&fields, "run", &what, "add `run:` with the command the stage runs, e.g. `run: python3 job.py --out {{ output }}`")
        .and_then(|node| {
            let text = r.string(node, format_args!("`run` of {what}"))?;
            if text.trim().is_empty() {
                r.error(node.position, format!("`run` of {what} is empty"), Some("give the command the stage runs".into()));
                return None;
            }
            Some((text, node))
        });
    ok &= run.is_some();
    let mut needs = Vec::new();
    if let Some(node) = fields.get("needs") {
        match &node.value {
            Value::Seq(items) => {
                for item in items {
                    if let Some(text) =
                        r.string(item, format_args!("an entry of `needs` of {what}"))
                    {
                        needs.push((text, item.position));
                    } else {
                        ok = false;
                    }
                }
            }
            Value::Str(text) => needs.push((text.clone(), node.position)),
            _ => {
                r.error(
                    node.position,
                    format!(
                        "`needs` of {what} must be a list of stage names, found {}",
                        node.kind()
                    ),
                    Some("for example `needs: [ingest]`".into()),
                );
                ok = false;
            }
        }
    }
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
        None => Some(StageCheckpoint::Auto),
    };
    let version = match fields.get("version") {
        Some(node) => r
            .string(node, format_args!("`version` of {what}"))
            .map(Some),
        None => Some(None),
    };
    let description = match fields.get("description") {
        Some(node) => r
            .string(node, format_args!("`description` of {what}"))
            .map(Some),
        None => Some(None),
    };
    if is_final == Some(Some(true)) && checkpoint == Some(StageCheckpoint::Never) {
        r.error(
            fields.get("checkpoint").map_or(node.position, |n| n.position),
            format!("{what} is final, so its output is always persisted; `checkpoint: never` contradicts that"),
            Some("remove `checkpoint: never`, or `final: true`".into()),
        );
        ok = false;
    }
    let valid = ok
        && estimate.is_some()
        && output_size.is_some()
        && is_final.is_some()
        && checkpoint.is_some()
        && version.is_some()
        && description.is_some();
    RawStage {
        name,
        key,
        run,
        needs,
        estimate: estimate.unwrap_or_default(),
        output_size: output_size.unwrap_or_default(),
        is_final: is_final.flatten(),
        checkpoint: checkpoint.unwrap_or(StageCheckpoint::Auto),
        version: version.flatten(),
        description: description.flatten(),
        final_position: fields.get("final").map(|n| n.position),
        valid,
    }
}

fn read_stages(r: &mut Reader, node: &Node) -> Option<Vec<Stage>> {
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
            is_final: stage.is_final.unwrap_or(!consumed[old]),
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
