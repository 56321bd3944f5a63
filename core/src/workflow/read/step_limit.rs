//! EMR holds each step argument to 10,280 characters, and a stage's rendered `run:` line is
//! one argument (`bash -c <line>`): a longer line would have every step refused at run
//! time, each refusal charged to `retries`. `validate` bounds the line instead, with every
//! variable at the longest it can render to on EMR.

use super::reader::{MAX_NAME_LEN, Reader};
use crate::workflow::names::MAX_BATCH_LEN;
use crate::workflow::store_url::EMR_TAG_VALUE_MAX;
use crate::workflow::template::{Longest, Template};
use crate::workflow::yaml::Node;

/// The longest argument EMR takes in a step's `HadoopJarStep.Args`.
pub const EMR_ARG_MAX: usize = 10_280;
/// A run id: `20261121T112243Z-3fa9c1`.
const RUN_ID_LEN: usize = 23;
/// An attempt number: a `u32`.
const ATTEMPT_LEN: usize = 10;
/// An RFC 3339 time with an offset, `2026-12-06T00:00:00+05:30`, with room.
const INTERVAL_LEN: usize = 32;

/// The longest each variable renders to on EMR. A work-table is
/// `<store>/<workflow>/runs/<run>/work/<stage>/<attempt>/` in the store (a store URL is at
/// most an EMR tag value long, unless the file names its store) or
/// `hdfs://<hdfs_dir>/<run>/<stage>/<attempt>` on the cluster. `{{ workflow_dir }}`, a path
/// on the orchestrator's machine, is not counted.
pub(super) fn emr_longest(workflow: &str, store: Option<&str>, hdfs_dir: &str) -> Longest {
    let store = store.map_or(EMR_TAG_VALUE_MAX, |s| s.chars().count());
    let tail = RUN_ID_LEN + 1 + MAX_NAME_LEN + 1 + ATTEMPT_LEN + 1;
    let in_store = store + 1 + workflow.chars().count() + "/runs/".len() + "/work/".len() + tail;
    let in_hdfs = "hdfs://".len() + hdfs_dir.chars().count() + 1 + tail;
    Longest {
        work_table: in_store.max(in_hdfs),
        run_id: RUN_ID_LEN,
        batch: MAX_BATCH_LEN,
        attempt: ATTEMPT_LEN,
        workflow_dir: 0,
        interval: INTERVAL_LEN,
    }
}

/// Reports a stage whose `run:` can render longer than an EMR step argument.
pub(super) fn check_line(
    r: &mut Reader,
    stage: &str,
    run: &Node,
    template: &Template,
    at_most: &Longest,
) {
    let longest = template.longest(at_most);
    if longest > EMR_ARG_MAX {
        r.error(
            run.position,
            format!(
                "`run` of stage `{stage}` can render to {longest} characters on EMR, more than \
                 the {EMR_ARG_MAX} an EMR step argument holds"
            ),
            Some(
                "move the long part into a script the step runs (uploaded with the stage code), \
                 or pass fewer inputs on the line; each variable is counted at its longest"
                    .into(),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    /// A workflow of one stage whose `run:` is `echo <filler> {{ output }}`.
    fn workflow(provider: &str, filler: usize) -> String {
        let emr = "  emr:\n    release_label: emr-7.5.0\n    service_role: svc\n    \
                   instance_profile: prof\n    primary: {instance_types: [m5.xlarge]}\n";
        format!(
            "name: wf\nstore: s3://bucket/prefix\ncluster:\n  provider: {provider}\n{}stages:\n  a:\n    run: echo {} {{{{ output }}}}\n",
            if provider == "emr" { emr } else { "" },
            "x".repeat(filler)
        )
    }

    #[test]
    fn a_run_line_that_can_render_longer_than_an_emr_step_argument_is_refused_where_it_is() {
        let yaml = workflow("emr", 10_200);
        assert_error!(
            &yaml,
            12,
            10,
            "`run` of stage `a` can render to 10338 characters on EMR, more than the 10280",
            hint: "into a script"
        );
    }

    #[test]
    fn a_line_that_fits_on_emr_and_any_line_on_a_local_cluster_are_valid() {
        super::super::valid(&workflow("emr", 9_000));
        super::super::valid(&workflow("local", 20_000));
    }
}
