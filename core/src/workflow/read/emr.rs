//! `cluster.emr`: how to start a transient EMR cluster with instance fleets.

use super::fleets::{read_avoid_reclaimed_zone, read_fleet};
use super::reader::Reader;
use crate::workflow::defaults;
use crate::workflow::model::*;
use crate::workflow::yaml::{Node, Value};
use std::fmt::Display;
use std::time::Duration;

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
    "notice_queue",
    "task",
    "avoid_reclaimed_zone",
];
const BOOTSTRAP_KEYS: &[&str] = &["name", "path", "args"];
const CONFIGURATION_KEYS: &[&str] = &["classification", "properties", "configurations"];

/// EMR configuration classifications, nested at most four deep as EMR nests them.
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

/// `cluster.emr`, from the defaults; `slots` is the cluster's, the default step concurrency.
pub(super) fn read_emr(r: &mut Reader, node: &Node, slots: u32) -> Option<EmrSpec> {
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
        Some(node) => match r.s3_url(node, "`cluster.emr.log_uri`") {
            Some(uri) => Some(uri),
            None => {
                ok = false;
                None
            }
        },
        None => None,
    };
    let subnets = match fields.get("subnets") {
        Some(node) => r
            .string_list(node, "`cluster.emr.subnets`")
            .unwrap_or_else(|| {
                ok = false;
                Vec::new()
            }),
        None => Vec::new(),
    };
    let applications = match fields.get("applications") {
        Some(node) => r
            .string_list(node, "`cluster.emr.applications`")
            .unwrap_or_else(|| {
                ok = false;
                Vec::new()
            }),
        None => defaults::EMR_APPLICATIONS
            .iter()
            .map(|a| a.to_string())
            .collect(),
    };
    let primary = r
        .required(
            &fields,
            "primary",
            "`cluster.emr`",
            "for example `primary: {instance_types: [m5.xlarge, m5a.xlarge]}`",
        )
        .and_then(|node| read_fleet(r, node, "primary"));
    let mut optional_fleet = |r: &mut Reader, key: &str| match fields.get(key) {
        Some(node) => {
            let fleet = read_fleet(r, node, key);
            ok &= fleet.is_some();
            fleet
        }
        None => None,
    };
    let core = optional_fleet(r, "core");
    let task = optional_fleet(r, "task");
    let mut spot_allocation_strategy = defaults::SPOT_ALLOCATION_STRATEGY.to_string();
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
        defaults::SPOT_TIMEOUT,
        5 * 60,
        24 * 3600,
        "20m",
    );
    let idle_timeout = bounded(
        r,
        "idle_timeout",
        defaults::IDLE_TIMEOUT,
        60,
        7 * 24 * 3600,
        "1h",
    );
    let step_concurrency = match fields.get("step_concurrency") {
        Some(node) => r.integer(node, "`cluster.emr.step_concurrency`", 1, 256),
        None => Some(defaults::step_concurrency(slots)),
    };
    let bootstrap_actions = match fields.get("bootstrap_actions") {
        Some(node) => read_bootstrap_actions(r, node).unwrap_or_else(|| {
            ok = false;
            Vec::new()
        }),
        None => Vec::new(),
    };
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
        None => Some(defaults::HDFS_DIR.to_string()),
    };
    let notice_queue = match fields.get("notice_queue") {
        Some(node) => r
            .string(node, "`cluster.emr.notice_queue`")
            .and_then(|url| match queue_url_problem(&url) {
                None => Some(Some(url)),
                Some(problem) => {
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
            }),
        None => Some(None),
    };
    let avoid_reclaimed_zone = read_avoid_reclaimed_zone(r, fields.get("avoid_reclaimed_zone"));
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
        task,
        spot_allocation_strategy,
        spot_timeout: spot_timeout?,
        idle_timeout: idle_timeout?,
        step_concurrency: step_concurrency?,
        bootstrap_actions,
        configurations: configurations?,
        hdfs_dir: hdfs_dir?,
        notice_queue: notice_queue?,
        avoid_reclaimed_zone: avoid_reclaimed_zone?,
    })
    .filter(|_| ok)
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
fn read_bootstrap_actions(r: &mut Reader, node: &Node) -> Option<Vec<BootstrapAction>> {
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

#[cfg(test)]
mod tests {
    use crate::workflow::defaults;

    /// A workflow on EMR with `emr` as the block's lines (indented by four spaces).
    fn on_emr(emr: &str) -> String {
        format!("name: wf\ncluster:\n  provider: emr\n  emr:\n{emr}stages:\n  a: {{run: x}}\n")
    }

    const REQUIRED: &str = "    release_label: emr-7.5.0
    service_role: svc
    instance_profile: prof
    primary: {instance_types: [m5.xlarge]}
";

    #[test]
    fn a_missing_required_key_points_at_the_block() {
        let yaml = on_emr(
            "    service_role: svc
    instance_profile: prof
    primary: {instance_types: [m5.xlarge], capacity: 2}
",
        );
        assert_error!(
            &yaml,
            5,
            5,
            "`cluster.emr` is missing the required key `release_label`",
            hint: "emr-7.5.0"
        );
        assert_error!(
            &yaml,
            7,
            54,
            "`cluster.emr.primary.capacity` must be between 1 and 1"
        );
    }

    #[test]
    fn labels_urls_fleets_timeouts_and_paths_are_checked() {
        let yaml = on_emr(
            "    release_label: \"7.5\"
    service_role: svc
    instance_profile: prof
    log_uri: logs/here
    primary: {instance_types: []}
    spot_timeout: 1m
    spot_allocation_strategy: lowest-prize
    hdfs_dir: respawn
",
        );
        assert_error!(&yaml, 5, 20, "must look like `emr-7.5.0`, found `7.5`");
        assert_error!(
            &yaml,
            8,
            14,
            "`cluster.emr.log_uri` must be an S3 URL, found `logs/here`"
        );
        assert_error!(&yaml, 9, 31, "must list 1 to 30 instance types, found 0");
        assert_error!(
            &yaml,
            10,
            19,
            "`cluster.emr.spot_timeout` must be between 5m and 1day, found 1m"
        );
        assert_error!(&yaml, 11, 31, "found `lowest-prize`", hint: "did you mean `lowest-price`?");
        assert_error!(
            &yaml,
            12,
            15,
            "must be an absolute HDFS path, found `respawn`"
        );
    }

    #[test]
    fn bootstrap_actions_and_configurations_need_their_keys() {
        let yaml = on_emr(&format!(
            "{REQUIRED}    bootstrap_actions:
      - {{name: deps}}
    configurations:
      - {{properties: {{a: b}}}}
"
        ));
        assert_error!(
            &yaml,
            10,
            9,
            "`cluster.emr.bootstrap_actions` is missing the required key `path`"
        );
        assert_error!(
            &yaml,
            12,
            9,
            "`cluster.emr.configurations` is missing the required key `classification`"
        );
    }

    #[test]
    fn what_is_left_out_takes_the_defaults() {
        let workflow = super::super::valid(&on_emr(REQUIRED));
        let emr = workflow.cluster.emr.expect("an EMR block");
        assert_eq!(emr.applications, defaults::EMR_APPLICATIONS);
        assert_eq!(
            emr.spot_allocation_strategy,
            defaults::SPOT_ALLOCATION_STRATEGY
        );
        assert_eq!(emr.spot_timeout, defaults::SPOT_TIMEOUT);
        assert_eq!(emr.idle_timeout, defaults::IDLE_TIMEOUT);
        assert_eq!(emr.step_concurrency, defaults::SLOTS);
        assert_eq!(emr.hdfs_dir, defaults::HDFS_DIR);
        assert_eq!(emr.primary.capacity, defaults::FLEET_CAPACITY);
        assert_eq!(emr.core, None);
    }

    #[test]
    fn a_notice_queue_is_an_sqs_url_and_brings_ec2_s_two_minute_notice() {
        let url = "https://sqs.us-east-1.amazonaws.com/123456789012/respawn-notices";
        let workflow =
            super::super::valid(&on_emr(&format!("{REQUIRED}    notice_queue: {url}\n")));
        assert_eq!(
            workflow.cluster.emr.unwrap().notice_queue.as_deref(),
            Some(url)
        );
        assert_eq!(workflow.cluster.notice, Some(defaults::EC2_NOTICE));
        let without = super::super::valid(&on_emr(REQUIRED));
        assert_eq!(
            without.cluster.notice, None,
            "no queue, no notice to plan with"
        );
        let yaml = on_emr(&format!(
            "{REQUIRED}    notice_queue: sqs.us-east-1.amazonaws.com/123456789012/q\n"
        ));
        assert_error!(
            &yaml,
            9,
            19,
            "`cluster.emr.notice_queue` must be an http(s) URL"
        );
        let yaml = on_emr(&format!(
            "{REQUIRED}    notice_queue: https://sqs.us-east-1.amazonaws.com/12345/q\n"
        ));
        assert_error!(&yaml, 9, 19, "must name a 12-digit account after the host");
        let yaml = on_emr(&format!(
            "{REQUIRED}    notice_queue: https://sqs.us-east-1.amazonaws.com/123456789012/q.fifo\n"
        ));
        assert_error!(&yaml, 9, 19, "must end in a queue name");
    }
}
