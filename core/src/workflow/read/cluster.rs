//! `cluster`: provider, market, the planner's inputs, and the fallback policy.

use super::emr::read_emr;
use super::reader::{Fields, Reader};
use crate::workflow::defaults;
use crate::workflow::model::*;
use crate::workflow::yaml::Node;

const CLUSTER_KEYS: &[&str] = &[
    "provider",
    "market",
    "mtti",
    "provision_time",
    "notice",
    "slots",
    "fallback",
    "emr",
    "interruptions",
];
const FALLBACK_KEYS: &[&str] = &["after_interruptions", "deadline"];

/// `cluster`, from the defaults; `cluster.emr` is required with `provider: emr` and refused
/// otherwise.
pub(super) fn read_cluster(r: &mut Reader, node: Option<&Node>) -> Option<ClusterSpec> {
    let mut cluster = defaults::cluster();
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
                &[
                    ("spot", MarketChoice::Fixed(Market::Spot)),
                    ("on-demand", MarketChoice::Fixed(Market::OnDemand)),
                    ("auto", MarketChoice::Auto),
                ],
            )
            .map(|v| cluster.market = v)
            .is_some();
    }
    if let Some(node) = fields.get("interruptions") {
        match read_trace_model(r, node) {
            Some(model) => cluster.interruptions = Some(model),
            None => ok = false,
        }
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
    if let Some(node) = fields.get("notice") {
        ok &= r
            .duration(node, "`cluster.notice`", "2m")
            .map(|v| cluster.notice = (!v.is_zero()).then_some(v))
            .is_some();
    }
    if let Some(node) = fields.get("slots") {
        ok &= r
            .integer(node, "`cluster.slots`", 1, 1024)
            .map(|v| cluster.slots = v)
            .is_some();
    }
    if let Some(node) = fields.get("fallback") {
        ok &= read_fallback(r, node, &mut cluster.fallback);
    }
    ok &= read_provider_block(r, &fields, &mut cluster, ok);
    ok.then_some(cluster)
}

/// `cluster.fallback` into `fallback`; false when something was reported.
fn read_fallback(r: &mut Reader, node: &Node, fallback: &mut FallbackSpec) -> bool {
    let Some(fields) = r.fields(node, "`cluster.fallback`", FALLBACK_KEYS) else {
        return false;
    };
    let mut ok = true;
    if let Some(node) = fields.get("after_interruptions") {
        ok &= r
            .integer(node, "`cluster.fallback.after_interruptions`", 1, 1000)
            .map(|v| fallback.after_interruptions = Some(v))
            .is_some();
    }
    if let Some(node) = fields.get("deadline") {
        ok &= r
            .positive_duration(node, "`cluster.fallback.deadline`", "8h")
            .map(|v| fallback.deadline = Some(v))
            .is_some();
    }
    ok
}

/// `cluster.emr`: required with `provider: emr` (a missing one is reported only when the
/// rest of `cluster` was fine, `ok`), refused otherwise; false when something was wrong.
fn read_provider_block(
    r: &mut Reader,
    fields: &Fields,
    cluster: &mut ClusterSpec,
    ok: bool,
) -> bool {
    match (cluster.provider, fields.get("emr")) {
        (Provider::Emr, Some(node)) => {
            let Some(emr) = read_emr(r, node, cluster.slots) else {
                return false;
            };
            // Notices reach respawn through the queue: plan with EC2's two minutes.
            if emr.notice_queue.is_some() && fields.get("notice").is_none() {
                cluster.notice = Some(defaults::EC2_NOTICE);
            }
            cluster.emr = Some(emr);
            true
        }
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
            false
        }
        (Provider::Local, Some(node)) => {
            r.error(
                node.position,
                "`cluster.emr` is only read when `cluster.provider` is `emr`",
                Some("set `provider: emr`, or remove the `emr` block".into()),
            );
            false
        }
        (Provider::Local, None) => true,
    }
}

/// `cluster.interruptions: {trace: FILE.json}`; the file is read by `load`.
fn read_trace_model(r: &mut Reader, node: &Node) -> Option<TraceModel> {
    let what = "`cluster.interruptions`";
    let fields = r.fields(node, what, &["trace"])?;
    let trace = r.required(
        &fields,
        "trace",
        what,
        "for example `trace: traces/us-east-1b.json`, a capacity trace in the public format",
    )?;
    let path = r.string(trace, "`cluster.interruptions.trace`")?;
    Some(TraceModel {
        path,
        line: trace.position.line,
        column: trace.position.column,
        trace: None,
    })
}

#[cfg(test)]
mod tests {
    use crate::workflow::{Market, MarketChoice};
    use std::time::Duration;

    #[test]
    fn unknown_keys_bad_durations_and_bounds_are_each_located() {
        let yaml = "name: wf
cluster:
  marke: spot
  mtti: soon
  provision_time: 30
  slots: 0
stages:
  a: {run: x}
";
        assert_error!(yaml, 3, 3, "unknown key `marke` in `cluster`", hint: "did you mean `market`?");
        assert_error!(
            yaml,
            4,
            9,
            "`cluster.mtti` must be a duration: `soon` is not a duration"
        );
        assert_error!(
            yaml,
            5,
            19,
            "`cluster.provision_time` must be a duration: `30` has no unit"
        );
        assert_error!(
            yaml,
            6,
            10,
            "`cluster.slots` must be between 1 and 1024, found 0"
        );
    }

    #[test]
    fn a_misspelt_market_and_a_zero_mtti_in_flow_style() {
        let yaml = "name: wf
cluster: {market: spto, mtti: 0s, fallback: {after: 2}}
stages:
  a: {run: x}
";
        assert_error!(yaml, 2, 19, "`cluster.market` must be one of spot | on-demand | auto", hint: "did you mean `spot`?");
        assert_error!(
            yaml,
            2,
            31,
            "`cluster.mtti` must be a duration: it must be longer than zero"
        );
        assert_error!(yaml, 2, 46, "unknown key `after` in `cluster.fallback`", hint: "did you mean `after_interruptions`?");
    }

    #[test]
    fn the_emr_block_goes_with_the_emr_provider_only() {
        assert_error!(
            "name: wf
cluster:
  provider: emr
stages:
  a: {run: x}
",
            3,
            3,
            "`cluster.provider: emr` needs a `cluster.emr` block"
        );
        assert_error!(
            "name: wf
cluster:
  emr: {release_label: emr-7.5.0}
stages:
  a: {run: x}
",
            3,
            8,
            "`cluster.emr` is only read when `cluster.provider` is `emr`"
        );
    }

    #[test]
    fn given_values_replace_the_defaults() {
        let workflow = super::super::valid(
            "name: wf
cluster:
  market: on-demand
  mtti: 90m
  slots: 8
  fallback: {after_interruptions: 2, deadline: 8h}
stages:
  a: {run: x}
",
        );
        let cluster = workflow.cluster;
        assert_eq!(cluster.market, MarketChoice::Fixed(Market::OnDemand));
        assert_eq!(cluster.mtti, Duration::from_secs(90 * 60));
        assert_eq!(cluster.slots, 8);
        assert_eq!(cluster.fallback.after_interruptions, Some(2));
        assert_eq!(
            cluster.fallback.deadline,
            Some(Duration::from_secs(8 * 3600))
        );
    }

    #[test]
    fn a_notice_is_a_duration_and_zero_or_none_given_means_none() {
        let read = |notice: &str| {
            super::super::valid(&format!(
                "name: wf\ncluster: {{{notice}}}\nstages:\n  a: {{run: x}}\n"
            ))
            .cluster
            .notice
        };
        assert_eq!(read("notice: 2m"), Some(Duration::from_secs(120)));
        assert_eq!(read("notice: 0s"), None);
        assert_eq!(read("slots: 2"), None);
        assert_error!(
            "name: wf\ncluster:\n  notice: soon\nstages:\n  a: {run: x}\n",
            3,
            11,
            "`cluster.notice` must be a duration"
        );
    }
}
