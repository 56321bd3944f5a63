//! Property tests of the planner's invariants on random DAGs.

use super::recompute::recompute_set;
use super::schedule::schedule;
use super::{PlanOptions, plan};
use crate::workflow::template::Template;
use crate::workflow::*;
use proptest::prelude::*;
use std::time::Duration;

/// A random workflow: each stage needs a random subset (up to four) of the stages before
/// it, so that every stage can be an input, and fan-ins, fan-outs and long edges all occur.
fn arbitrary_workflow() -> impl Strategy<Value = Workflow> {
    (1usize..24)
        .prop_flat_map(|n| {
            let needs: Vec<_> = (0..n)
                .map(|id| {
                    proptest::sample::subsequence((0..id).collect::<Vec<StageId>>(), 0..=id.min(4))
                })
                .collect();
            (
                needs,
                proptest::collection::vec((60u64..6 * 3600, 0u64..200_000_000_000, 0u8..10), n),
                1u32..8,
            )
        })
        .prop_map(|(needs, raw, slots)| {
            let mut stages = Vec::with_capacity(raw.len());
            for (id, (needs, (estimate, size, flag))) in needs.into_iter().zip(raw).enumerate() {
                stages.push(Stage {
                    name: format!("s{id}"),
                    run: Template::parse("true", false, |_| Err(String::new())).unwrap(),
                    needs,
                    estimate: Duration::from_secs(estimate),
                    output_size: size,
                    is_final: false,
                    checkpoint: match flag {
                        0 => StageCheckpoint::Always,
                        1 => StageCheckpoint::Never,
                        _ => StageCheckpoint::Auto,
                    },
                    version: None,
                    description: None,
                    checks: Vec::new(),
                    line: 0,
                });
            }
            let needs: Vec<&[StageId]> = stages.iter().map(|s| s.needs.as_slice()).collect();
            let consumers = graph::consumers(&needs);
            for (id, stage) in stages.iter_mut().enumerate() {
                if consumers[id].is_empty() {
                    stage.is_final = true;
                    stage.checkpoint = StageCheckpoint::Auto;
                }
            }
            Workflow {
                name: "random".into(),
                file: "random.yaml".into(),
                store: None,
                cluster: ClusterSpec {
                    provider: Provider::Local,
                    market: MarketChoice::Fixed(Market::Spot),
                    mtti: Duration::from_secs(7200),
                    provision_time: Duration::from_secs(600),
                    notice: None,
                    slots,
                    fallback: FallbackSpec::default(),
                    emr: None,
                    interruptions: None,
                    learned_trace: None,
                },
                checkpoint: CheckpointSpec {
                    policy: CheckpointPolicy::Auto,
                    write_throughput: 200_000_000,
                    read_throughput: 200_000_000,
                    every: Duration::from_secs(3 * 3600),
                    every_critical: Duration::from_secs(3600),
                },
                cleanup: Cleanup::OnSuccess,
                retries: 2,
                cost: CostSpec {
                    spot_per_hour: 0.35,
                    on_demand_per_hour: 1.0,
                    ..crate::workflow::defaults::cost()
                },
                schedule: None,
                alerts: Vec::new(),
                stages,
            }
        })
}

fn with_policy(policy: CheckpointPolicy, mtti_s: u64) -> PlanOptions {
    PlanOptions {
        mtti: Some(Duration::from_secs(mtti_s)),
        policy: Some(policy),
        market: None,
    }
}

/// The longest path, by recursion over each stage's inputs (memoized): a second way to the
/// number the schedule's forward pass computes.
fn longest_path(needs: &[Vec<StageId>], duration: &[f64]) -> f64 {
    fn longest_ending_at(
        s: usize,
        needs: &[Vec<StageId>],
        duration: &[f64],
        memo: &mut [Option<f64>],
    ) -> f64 {
        if let Some(known) = memo[s] {
            return known;
        }
        let before = needs[s]
            .iter()
            .map(|&p| longest_ending_at(p, needs, duration, memo))
            .fold(0.0, f64::max);
        memo[s] = Some(duration[s] + before);
        duration[s] + before
    }
    let mut memo = vec![None; needs.len()];
    (0..needs.len())
        .map(|s| longest_ending_at(s, needs, duration, &mut memo))
        .fold(0.0, f64::max)
}

/// The generator itself: DAGs drawn from it must use every stage as an input somewhere,
/// fan in and out, and skip layers, or the properties below prove little.
#[test]
fn the_generator_draws_varied_dags() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let strategy = arbitrary_workflow();
    let mut runner = TestRunner::deterministic();
    let mut used_as_input = [false; 24];
    let (mut fan_in, mut fan_out, mut long_edge, mut several_sinks) = (0, 0, 0, 0);
    let (mut edges, mut pairs) = (0usize, 0usize);
    for _ in 0..300 {
        let workflow = strategy.new_tree(&mut runner).unwrap().current();
        let n = workflow.stages.len();
        pairs += n * n.saturating_sub(1) / 2;
        let consumers = workflow.consumers();
        for (id, stage) in workflow.stages.iter().enumerate() {
            edges += stage.needs.len();
            for &input in &stage.needs {
                used_as_input[input] = true;
                long_edge += usize::from(input + 1 < id);
            }
            fan_in += usize::from(stage.needs.len() >= 3);
            fan_out += usize::from(consumers[id].len() >= 3);
        }
        several_sinks += usize::from(workflow.stages.iter().filter(|s| s.is_final).count() >= 2);
    }
    // Workflows of 17 stages and more are rare; below that, every stage must have been an
    // input (the old generator only ever made stages 0, 3, 6, ... inputs).
    let never: Vec<usize> = (0..16).filter(|&s| !used_as_input[s]).collect();
    assert!(never.is_empty(), "stages never used as an input: {never:?}");
    assert!(
        fan_in > 300 && fan_out > 300,
        "fan-in {fan_in}, fan-out {fan_out}"
    );
    assert!(long_edge > 1000, "edges that skip a stage: {long_edge}");
    assert!(
        several_sinks > 150,
        "DAGs with several finals: {several_sinks}"
    );
    let density = edges as f64 / pairs as f64;
    assert!((0.05..0.6).contains(&density), "edge density {density}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_critical_path_is_a_longest_path(workflow in arbitrary_workflow()) {
        let needs = super::needs_of(&workflow);
        let duration: Vec<f64> = workflow.stages.iter().map(|s| s.estimate.as_secs_f64()).collect();
        let result = schedule(&needs, &duration);
        let path = &result.critical_path;
        prop_assert!(!path.is_empty());
        prop_assert!(needs[path[0]].is_empty(), "the path starts at a source");
        for pair in path.windows(2) {
            prop_assert!(needs[pair[1]].contains(&pair[0]), "consecutive stages are linked");
        }
        let length: f64 = path.iter().map(|&s| duration[s]).sum();
        prop_assert!((length - result.makespan).abs() < 1e-6);
        prop_assert!((length - longest_path(&needs, &duration)).abs() < 1e-6);
    }

    #[test]
    fn slack_is_never_negative_and_zero_on_the_critical_path(workflow in arbitrary_workflow(), mtti in 600u64..1_000_000) {
        let p = plan(&workflow, &with_policy(CheckpointPolicy::Auto, mtti));
        for stage in &p.stages {
            prop_assert!(stage.slack >= 0.0);
        }
        for &s in &p.critical_path {
            prop_assert!(p.stages[s].critical);
        }
    }

    #[test]
    fn policy_all_checkpoints_everything_and_none_only_finals(workflow in arbitrary_workflow()) {
        let all = plan(&workflow, &with_policy(CheckpointPolicy::All, 7200));
        let none = plan(&workflow, &with_policy(CheckpointPolicy::None, 7200));
        for (id, stage) in workflow.stages.iter().enumerate() {
            prop_assert_eq!(all.stages[id].checkpoint, stage.checkpoint != StageCheckpoint::Never);
            prop_assert_eq!(
                none.stages[id].checkpoint,
                stage.is_final || stage.checkpoint == StageCheckpoint::Always
            );
        }
    }

    #[test]
    fn final_outputs_are_always_persisted(workflow in arbitrary_workflow(), mtti in 60u64..10_000_000) {
        for policy in [CheckpointPolicy::Auto, CheckpointPolicy::Interval, CheckpointPolicy::None, CheckpointPolicy::All] {
            let p = plan(&workflow, &with_policy(policy, mtti));
            for (id, stage) in workflow.stages.iter().enumerate() {
                if stage.is_final {
                    prop_assert!(p.stages[id].checkpoint);
                }
                if stage.checkpoint == StageCheckpoint::Never {
                    prop_assert!(!p.stages[id].checkpoint);
                }
            }
        }
    }

    #[test]
    fn raising_mtti_never_adds_checkpoints(workflow in arbitrary_workflow(), low in 300u64..200_000, factor in 1u64..50) {
        let count = |mtti| plan(&workflow, &with_policy(CheckpointPolicy::Auto, mtti))
            .stages.iter().filter(|s| s.checkpoint).count();
        let detail = || {
            let a = plan(&workflow, &with_policy(CheckpointPolicy::Auto, low));
            let b = plan(&workflow, &with_policy(CheckpointPolicy::Auto, low * (factor + 1)));
            let mut out = String::new();
            for (id, stage) in workflow.stages.iter().enumerate() {
                if a.stages[id].checkpoint != b.stages[id].checkpoint {
                    out.push_str(&format!("{} needs {:?} consumers {:?} work {}: {} [{}] -> {} [{}]\n", id, stage.needs, workflow.consumers()[id], stage.estimate.as_secs(), a.stages[id].checkpoint, a.stages[id].reason, b.stages[id].checkpoint, b.stages[id].reason));
                }
            }
            out
        };
        prop_assert!(count(low * (factor + 1)) <= count(low), "{}", detail());
    }

    #[test]
    fn no_stage_is_planned_before_its_inputs(workflow in arbitrary_workflow(), mtti in 600u64..1_000_000) {
        let p = plan(&workflow, &with_policy(CheckpointPolicy::Auto, mtti));
        for (id, stage) in workflow.stages.iter().enumerate() {
            for &input in &stage.needs {
                let ready = p.stages[input].earliest_start + workflow.stages[input].estimate.as_secs_f64();
                prop_assert!(p.stages[id].earliest_start + 1e-6 >= ready);
            }
        }
    }

    #[test]
    fn the_recompute_set_never_reruns_a_checkpoint_and_has_every_input(
        workflow in arbitrary_workflow(),
        progress in proptest::collection::vec((any::<bool>(), any::<bool>()), 24),
    ) {
        let needs = super::needs_of(&workflow);
        let n = needs.len();
        // A consistent state: a stage finished only if its inputs did.
        let mut finished = vec![false; n];
        let mut committed = vec![false; n];
        for s in 0..n {
            finished[s] = progress[s].0 && needs[s].iter().all(|&p| finished[p]);
            committed[s] = finished[s] && progress[s].1;
        }
        let rerun = recompute_set(&needs, &finished, &committed);
        for s in 0..n {
            if committed[s] {
                prop_assert!(!rerun[s]);
            }
            if !finished[s] {
                prop_assert!(rerun[s]);
            }
            if rerun[s] {
                for &p in &needs[s] {
                    prop_assert!(committed[p] || rerun[p], "input of a rerun stage is available");
                }
            }
        }
    }
}
