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

#[cfg(test)]
mod tests {
    use crate::workflow::CheckpointPolicy;

    #[test]
    fn policy_throughput_and_intervals_are_checked() {
        let yaml = "name: wf
checkpoint:
  policy: sometimes
  write_throughput: 200MB
  every: 0s
  every_critcal: 1h
stages:
  a: {run: x}
";
        assert_error!(
            yaml,
            3,
            11,
            "`checkpoint.policy` must be one of auto | all | none | interval, found `sometimes`"
        );
        assert_error!(yaml, 4, 21, "`200MB` needs a `/s` suffix", hint: "`200MB/s`");
        assert_error!(
            yaml,
            5,
            10,
            "`checkpoint.every` must be a duration: it must be longer than zero"
        );
        assert_error!(
            yaml,
            6,
            3,
            "unknown key `every_critcal` in `checkpoint`",
            hint: "did you mean `every_critical`?"
        );
    }

    #[test]
    fn a_throughput_of_zero_is_refused() {
        assert_error!(
            "name: wf
checkpoint: {read_throughput: 0MB/s}
stages:
  a: {run: x}
",
            2,
            31,
            "a throughput of zero would never finish"
        );
    }

    #[test]
    fn restores_read_as_fast_as_checkpoints_write_unless_told() {
        let stages = "stages:\n  a: {run: x}\n";
        let same = super::super::valid(&format!(
            "name: wf\ncheckpoint: {{policy: interval, write_throughput: 50MB/s}}\n{stages}"
        ));
        assert_eq!(same.checkpoint.policy, CheckpointPolicy::Interval);
        assert_eq!(same.checkpoint.read_throughput, 50_000_000);
        let given = super::super::valid(&format!(
            "name: wf\ncheckpoint: {{write_throughput: 50MB/s, read_throughput: 1GB/s}}\n{stages}"
        ));
        assert_eq!(given.checkpoint.read_throughput, 1_000_000_000);
    }
}
