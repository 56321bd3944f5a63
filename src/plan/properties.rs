//! Property tests of the planner's invariants on random DAGs.

use super::recompute::recompute_set;
use super::schedule::schedule;
use super::{PlanOptions, plan};
use crate::workflow::template::Template;
use crate::workflow::*;
use proptest::prelude::*;
use std::time::Duration;

/// A random workflow: each stage may need any earlier one.
fn arbitrary_workflow() -> impl Strategy<Value = Workflow> {
    (1usize..24)
        .prop_flat_map(|n| {
            (
                proptest::collection::vec(
                    (
                        60u64..6 * 3600,
                        0u64..200_000_000_000,
                        proptest::collection::vec(any::<bool>(), n),
                        0u8..10,
                    ),
                    n,
                ),
                1u32..8,
            )
        })
        .prop_map(|(raw, slots)| {
            let n = raw.len();
            let mut stages = Vec::with_capacity(n);
            for (id, (estimate, size, edges, flag)) in raw.into_iter().enumerate() {
                // Sparse edges: each earlier stage with probability about one in three.
                let needs: Vec<StageId> = (0..id)
                    .filter(|&p| edges[p] && (p * 7 + id * 3) % 3 == 0)
                    .collect();
                stages.push(Stage {
                    name: format!("s{id}"),
                    run: Template::parse("true", |_| Err(String::new())).unwrap(),
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
                    line: 0,
                });
            }
            let mut consumed = vec![false; n];
            for stage in &stages {
                for &p in &stage.needs {
                    consumed[p] = true;
                }
            }
            for (id, stage) in stages.iter_mut().enumerate() {
                if !consumed[id] {
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
                    market: Market::Spot,
                    mtti: Duration::from_secs(7200),
                    provision_time: Duration::from_secs(600),
                    slots,
                    fallback: FallbackSpec::default(),
                    emr: None,
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
                },
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

/// Longest path by brute force over all paths (small graphs only).
fn longest_path(needs: &[Vec<StageId>], duration: &[f64]) -> f64 {
    fn longest_ending_at(s: usize, needs: &[Vec<StageId>], duration: &[f64]) -> f64 {
        duration[s]
            + needs[s]
                .iter()
                .map(|&p| longest_ending_at(p, needs, duration))
                .fold(0.0, f64::max)
    }
    (0..needs.len())
        .map(|s| longest_ending_at(s, needs, duration))
        .fold(0.0, f64::max)
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
