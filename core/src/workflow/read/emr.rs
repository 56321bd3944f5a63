//! `cluster.emr`: how to start a transient EMR cluster with instance fleets.

use super::emr_fields::{
    check_release_label, read_bootstrap_actions, read_bounded, read_configurations, read_hdfs_dir,
    read_notice_queue, read_spot_allocation_strategy,
};
use super::fleets::{read_avoid_reclaimed_zone, read_fleet};
use super::reader::{Fields, Reader};
use crate::workflow::defaults;
use crate::workflow::model::*;
use crate::workflow::yaml::Node;

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

/// `cluster.emr`, from the defaults; `slots` is the cluster's, the default step concurrency.
pub(super) fn read_emr(r: &mut Reader, node: &Node, slots: u32) -> Option<EmrSpec> {
    let fields = r.fields(node, "`cluster.emr`", EMR_KEYS)?;
    let text = |r: &mut Reader, key: &str, hint: &str| {
        r.required(&fields, key, "`cluster.emr`", hint)
            .and_then(|node| r.string(node, format_args!("`cluster.emr.{key}`")))
    };
    let release_label = text(r, "release_label", "for example `release_label: emr-7.5.0`")
        .and_then(|label| check_release_label(r, fields.get("release_label"), label));
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
    let region = (fields.get("region")).and_then(|node| r.string(node, "`cluster.emr.region`"));
    // Each optional setting: its default when absent, `None` when it is there but wrong.
    let log_uri = optional(r, &fields, "log_uri", |r, node| {
        r.s3_url(node, "`cluster.emr.log_uri`").map(Some)
    });
    let subnets = optional(r, &fields, "subnets", |r, node| {
        r.string_list(node, "`cluster.emr.subnets`")
    });
    let applications = match fields.get("applications") {
        Some(node) => r.string_list(node, "`cluster.emr.applications`"),
        None => Some(
            defaults::EMR_APPLICATIONS
                .iter()
                .map(|a| a.to_string())
                .collect(),
        ),
    };
    let primary = r
        .required(
            &fields,
            "primary",
            "`cluster.emr`",
            "for example `primary: {instance_types: [m5.xlarge, m5a.xlarge]}`",
        )
        .and_then(|node| read_fleet(r, node, "primary"));
    let core = optional(r, &fields, "core", |r, n| {
        read_fleet(r, n, "core").map(Some)
    });
    let task = optional(r, &fields, "task", |r, n| {
        read_fleet(r, n, "task").map(Some)
    });
    let spot_allocation_strategy =
        read_spot_allocation_strategy(r, fields.get("spot_allocation_strategy"));
    let spot_timeout = read_bounded(
        r,
        &fields,
        "spot_timeout",
        defaults::SPOT_TIMEOUT,
        (5 * 60, 24 * 3600),
        "20m",
    );
    let idle_timeout = read_bounded(
        r,
        &fields,
        "idle_timeout",
        defaults::IDLE_TIMEOUT,
        (60, 7 * 24 * 3600),
        "1h",
    );
    let step_concurrency = match fields.get("step_concurrency") {
        Some(node) => r.integer(node, "`cluster.emr.step_concurrency`", 1, 256),
        None => Some(defaults::step_concurrency(slots)),
    };
    let bootstrap_actions = optional(r, &fields, "bootstrap_actions", read_bootstrap_actions);
    let configurations = optional(r, &fields, "configurations", |r, node| {
        read_configurations(r, node, "`cluster.emr.configurations`", 0)
    });
    let hdfs_dir = read_hdfs_dir(r, fields.get("hdfs_dir"));
    let notice_queue = read_notice_queue(r, fields.get("notice_queue"));
    let avoid_reclaimed_zone = read_avoid_reclaimed_zone(r, fields.get("avoid_reclaimed_zone"));
    Some(EmrSpec {
        region,
        release_label: release_label?,
        log_uri: log_uri?,
        service_role: service_role?,
        instance_profile: instance_profile?,
        subnets: subnets?,
        applications: applications?,
        primary: primary?,
        core: core?,
        task: task?,
        spot_allocation_strategy: spot_allocation_strategy?,
        spot_timeout: spot_timeout?,
        idle_timeout: idle_timeout?,
        step_concurrency: step_concurrency?,
        bootstrap_actions: bootstrap_actions?,
        configurations: configurations?,
        hdfs_dir: hdfs_dir?,
        notice_queue: notice_queue?,
        avoid_reclaimed_zone: avoid_reclaimed_zone?,
    })
}

/// `read` of the field `key` when it is there, else the type's default (empty, none):
/// `None` only when the field is there and wrong.
fn optional<T: Default>(
    r: &mut Reader,
    fields: &Fields<'_>,
    key: &str,
    read: impl FnOnce(&mut Reader, &Node) -> Option<T>,
) -> Option<T> {
    match fields.get(key) {
        Some(node) => read(r, node),
        None => Some(T::default()),
    }
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
