//! `checkpoint`: the workflow's checkpoint policy and the store's throughput.

use super::reader::Reader;
use crate::workflow::defaults;
use crate::workflow::model::*;
use crate::workflow::units::parse_throughput;
use crate::workflow::yaml::Node;

const CHECKPOINT_KEYS: &[&str] = &[
    "policy",
    "write_throughput",
    "read_throughput",
    "every",
    "every_critical",
];

/// `checkpoint`, from the defaults. `read_throughput` is the write throughput unless given.
pub(super) fn read_checkpoint(r: &mut Reader, node: Option<&Node>) -> Option<CheckpointSpec> {
    let mut spec = defaults::checkpoint();
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
