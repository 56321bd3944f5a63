//! One run loop: the simulator drives the engine's own state machine in virtual time, so
//! the engine, fed the events of a simulated trial, launches the same stages in the same
//! order; and that order is the critical-path priority (longest remaining path first),
//! with no slot left idle while a stage is ready (losses announced by a notice or not).

mod random_dag;

use proptest::prelude::*;
use random_dag::random_dag;
use respawn_core::machine::{Action, Event, Machine, Setup, StageState};
use respawn_core::plan::{PlanOptions, plan};
use respawn_core::sim::{Simulator, TrialInterruptions, trial_rng};
use respawn_core::workflow::{CheckpointPolicy, Market};
use std::time::Duration;

const POLICIES: [CheckpointPolicy; 4] = [
    CheckpointPolicy::None,
    CheckpointPolicy::All,
    CheckpointPolicy::Interval,
    CheckpointPolicy::Auto,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn the_engine_launches_in_the_simulators_order_for_the_same_events(
        seed in any::<u64>(),
        stages in 2usize..60,
        slots in 1u32..9,
        mtti_minutes in 20u64..3000,
        policy in 0usize..4,
        notice in proptest::option::of(10u64..900),
    ) {
        let mut workflow = random_dag(seed, stages, slots);
        // Losses announced ahead: the replacement, the saves and the freeze are the
        // machine's too.
        workflow.cluster.notice = notice.map(Duration::from_secs);
        let mtti = mtti_minutes as f64 * 60.0;
        let plan = plan(&workflow, &PlanOptions {
            mtti: Some(Duration::from_secs_f64(mtti)),
            policy: Some(POLICIES[policy]),
            market: Some(Market::Spot),
        });
        let simulator = Simulator::new(&workflow, &plan, f64::INFINITY);
        let (outcome, record) =
            simulator.run_recorded(TrialInterruptions::Exponential { mtti }, &mut trial_rng(seed, 0));
        prop_assert!(!record.launches.is_empty());

        // The engine's machine, built as `respawn run` builds it, fed the same events.
        let mut engine = Machine::new(Setup::new(&workflow, &plan));
        let rank: Vec<usize> = {
            let mut rank = vec![0; stages];
            for (position, &stage) in engine.launch_order().iter().enumerate() {
                rank[stage] = position;
            }
            rank
        };
        let mut launches = Vec::new();
        let mut cluster_up = false;
        for event in record.events {
            match event {
                // A replacement up before the loss it replaces is not where stages go.
                Event::ClusterReady { generation } => cluster_up = generation == engine.generation(),
                Event::ClusterLost { .. } => cluster_up = false,
                _ => {}
            }
            let actions = engine.apply(event);
            if actions
                .iter()
                .any(|a| matches!(a, Action::Provision { .. } | Action::Terminate))
            {
                cluster_up = false;
            }
            let launched: Vec<usize> = actions
                .iter()
                .filter_map(|a| match a {
                    Action::Launch { stage, attempt } => {
                        launches.push((*stage, *attempt));
                        Some(*stage)
                    }
                    _ => None,
                })
                .collect();
            // Launched together: highest priority first.
            prop_assert!(launched.windows(2).all(|w| rank[w[0]] < rank[w[1]]));
            // Work-conserving, by priority: a stage whose inputs are all on the cluster
            // waits only if every slot is taken, and never behind a lower-priority launch.
            let status = engine.stages();
            let running = status
                .iter()
                .filter(|s| matches!(s.state, StageState::Running { .. }))
                .count();
            for (stage, s) in status.iter().enumerate() {
                let ready = s.state == StageState::Waiting
                    && workflow.stages[stage].needs.iter().all(|&i| status[i].local);
                if ready && cluster_up && !engine.is_finished() {
                    prop_assert!(running >= slots as usize, "stage {stage} ready, a slot free");
                    prop_assert!(launched.iter().all(|&l| rank[l] < rank[stage]));
                }
            }
        }
        prop_assert_eq!(&launches, &record.launches);
        // A hopeless trial is stopped at the simulator's limit; any other one ends the run.
        prop_assert_eq!(engine.is_finished(), !outcome.censored);
    }
}

/// Two branches after a common input on one slot: the long branch goes first, whatever
/// the order of the stages in the file.
#[test]
fn the_longest_remaining_path_launches_first() {
    let text = "name: branches\ncluster: { slots: 1 }\nstages:\n  a:\n    run: \"true\"\n    estimate: 10m\n  short:\n    needs: [a]\n    run: \"true\"\n    estimate: 5m\n  long:\n    needs: [a]\n    run: \"true\"\n    estimate: 2h\n  end:\n    needs: [short, long]\n    run: \"true\"\n    estimate: 1m\n";
    let workflow = respawn_core::workflow::parse("branches.yaml", text).unwrap();
    let plan = plan(&workflow, &PlanOptions::default());
    let simulator = Simulator::new(&workflow, &plan, f64::INFINITY);
    let (_, record) = simulator.run_recorded(TrialInterruptions::Never, &mut trial_rng(1, 0));
    let order: Vec<usize> = record.launches.iter().map(|(stage, _)| *stage).collect();
    assert_eq!(order, vec![0, 2, 1, 3]);
}
