//! The settings of `cluster.emr` with rules of their own: the release label, bounded
//! timeouts, the HDFS folder, the notice queue's URL, bootstrap actions and configuration
//! classifications.

use super::reader::{Fields, Reader};
use crate::workflow::defaults;
use crate::workflow::model::*;
use crate::workflow::yaml::{Node, Value};
use std::fmt::Display;
use std::time::Duration;

const BOOTSTRAP_KEYS: &[&str] = &["name", "path", "args"];
const CONFIGURATION_KEYS: &[&str] = &["classification", "properties", "configurations"];

/// `label` when it looks like `emr-7.5.0`; otherwise the problem is reported at `node`.
pub(super) fn check_release_label(
    r: &mut Reader,
    node: Option<&Node>,
    label: String,
) -> Option<String> {
    let valid = label.strip_prefix("emr-").is_some_and(|v| {
        !v.is_empty()
            && v.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    });
    if !valid && let Some(node) = node {
        r.error(
            node.position,
            format!("`cluster.emr.release_label` must look like `emr-7.5.0`, found `{label}`"),
            None,
        );
        return None;
    }
    Some(label)
}

/// A duration setting of `cluster.emr` between `min` and `max` seconds (`bounds`), or its
/// default when absent.
pub(super) fn read_bounded(
    r: &mut Reader,
    fields: &Fields,
    key: &str,
    default: Duration,
    (min, max): (u64, u64),
    example: &str,
) -> Option<Duration> {
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
}

/// `cluster.emr.spot_allocation_strategy`, one of EMR's, or the default when absent.
pub(super) fn read_spot_allocation_strategy(r: &mut Reader, node: Option<&Node>) -> Option<String> {
    let Some(node) = node else {
        return Some(defaults::SPOT_ALLOCATION_STRATEGY.to_string());
    };
    let choices: Vec<(&str, &str)> = (SPOT_ALLOCATION_STRATEGIES.iter())
        .map(|s| (*s, *s))
        .collect();
    (r.choice(node, "`cluster.emr.spot_allocation_strategy`", &choices)).map(str::to_string)
}

/// `cluster.emr.hdfs_dir`: an absolute HDFS path, or the default when absent.
pub(super) fn read_hdfs_dir(r: &mut Reader, node: Option<&Node>) -> Option<String> {
    let Some(node) = node else {
        return Some(defaults::HDFS_DIR.to_string());
    };
    let dir = r.string(node, "`cluster.emr.hdfs_dir`")?;
    if dir.starts_with('/') && !dir.contains("..") && !dir.contains(char::is_whitespace) {
        return Some(dir.trim_end_matches('/').to_string());
    }
    r.error(
        node.position,
        format!("`cluster.emr.hdfs_dir` must be an absolute HDFS path, found `{dir}`"),
        Some("for example `/respawn`".into()),
    );
    None
}

/// `cluster.emr.notice_queue`: `Some(None)` when absent, `None` when it is not a queue's URL.
pub(super) fn read_notice_queue(r: &mut Reader, node: Option<&Node>) -> Option<Option<String>> {
    let Some(node) = node else {
        return Some(None);
    };
    let url = r.string(node, "`cluster.emr.notice_queue`")?;
    let Some(problem) = queue_url_problem(&url) else {
        return Some(Some(url));
    };
    r.error(
        node.position,
        format!("`cluster.emr.notice_queue` {problem}, found `{url}`"),
        Some(
            "the queue's URL, for example \
             `https://sqs.us-east-1.amazonaws.com/123456789012/respawn-spot-notices` \
             (the `NoticeQueueUrl` output of infra/respawn-emr.yaml)"
                .into(),
        ),
    );
    None
}

/// EMR configuration classifications, nested at most four deep as EMR nests them.
pub(super) fn read_configurations(
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

/// What is wrong with an SQS queue URL: `http(s)://host/<12-digit account>/<name>`.
fn queue_url_problem(url: &str) -> Option<&'static str> {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return Some("must be an http(s) URL");
    };
    let mut parts = rest.split('/');
    let host = parts.next().unwrap_or("");
    let (account, name) = (parts.next(), parts.next());
    let good_name = |n: &str| {
        (1..=80).contains(&n.len())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if host.is_empty() || parts.next().is_some() {
        return Some("must be a queue URL: a host, then `/<account>/<queue name>`");
    }
    match (account, name) {
        (Some(a), Some(n))
            if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) && good_name(n) =>
        {
            None
        }
        (Some(a), _) if a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()) => {
            Some("must name a 12-digit account after the host")
        }
        _ => Some("must end in a queue name (1 to 80 letters, digits, `-` or `_`; no FIFO queue)"),
    }
}

/// `cluster.emr.bootstrap_actions`: scripts in S3 that run on every node before the steps.
pub(super) fn read_bootstrap_actions(r: &mut Reader, node: &Node) -> Option<Vec<BootstrapAction>> {
    let Value::Seq(items) = &node.value else {
        r.error(
            node.position,
            format!(
                "`cluster.emr.bootstrap_actions` must be a list, found {}",
                node.kind()
            ),
            None,
        );
        return None;
    };
    let what = "`cluster.emr.bootstrap_actions`";
    let mut actions = Vec::with_capacity(items.len());
    let mut ok = true;
    for item in items {
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
            .and_then(|node| r.s3_url(node, "`cluster.emr.bootstrap_actions.path`"));
        let args = match action.get("args") {
            Some(node) => r.string_list(node, "`cluster.emr.bootstrap_actions.args`"),
            None => Some(Vec::new()),
        };
        match (name, path, args) {
            (Some(name), Some(path), Some(args)) => {
                actions.push(BootstrapAction { name, path, args })
            }
            _ => ok = false,
        }
    }
    ok.then_some(actions)
}
