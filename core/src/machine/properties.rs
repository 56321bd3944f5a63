//! The state machine driven by a scripted, perfect driver: interruptions, failures and
//! restores at chosen moments, and the invariants a run must keep.

use super::{Action, Event, Exit, Machine, Outcome, Setup};
use crate::workflow::{FallbackSpec, Market};
use proptest::prelude::*;
use std::collections::{BTreeSet, VecDeque};

/// What the scripted cluster does.
#[derive(Clone, Debug, Default)]
pub(super) struct Script {
    /// Lose the cluster right after the N-th launch (counting from 1), for each N.
    pub lose_after_launch: BTreeSet<usize>,
    /// (stage, attempt) that exit with code 1.
    pub failing: BTreeSet<(usize, u32)>,
    /// Each loss is announced by an interruption notice with this lead, handled (and its
    /// uploads committed) before the loss.
    pub notice: Option<f64>,
    /// The node of the N-th launch is reclaimed, for each N: that attempt is lost (its
    /// killed process then reports a failure, which must change nothing).
    pub node_lost_at_launch: BTreeSet<usize>,
}

#[derive(Debug, Default)]
pub(super) struct Trace {
    pub launches: Vec<(usize, u32)>,
    pub markets: Vec<Market>,
    pub committed: Vec<usize>,
    pub published: Vec<usize>,
    pub restored: Vec<usize>,
    /// Clusters asked for on a notice, and those released unused.
    pub replacements: Vec<u32>,
    pub released: Vec<u32>,
    pub outcome: Option<Outcome>,
}

/// Runs the machine to the end. Checks on the way that no stage is launched before
/// every input is on the current cluster, and that a committed stage never launches.
pub(super) fn drive(setup: &Setup, script: &Script, committed_at_start: Vec<bool>) -> Trace {
    let n = setup.needs.len();
    let mut machine = Machine::new(setup.clone());
    let mut trace = Trace::default();
    let mut local = vec![false; n];
    let mut committed = committed_at_start.clone();
    let mut events = VecDeque::from([Event::Started {
        committed: committed_at_start,
        published: vec![false; n],
    }]);
    let mut launches = 0;
    let mut steps = 0;
    // Between a loss and the machine hearing of it, launches go to a dead cluster.
    let mut dead = false;
    // A notice was given: the loss follows once its actions are carried out.
    let mut warned = false;
    while let Some(event) = events.pop_front() {
        steps += 1;
        assert!(steps < 100_000, "the run does not end");
        let noticed = matches!(event, Event::Notice { .. });
        if matches!(event, Event::ClusterLost { .. }) {
            warned = false;
        }
        for action in machine.apply(event) {
            match action {
                Action::Provision {
                    market, generation, ..
                } if warned => {
                    trace.markets.push(market);
                    trace.replacements.push(generation);
                    events.push_back(Event::ClusterReady { generation });
                }
                Action::Provision {
                    market, generation, ..
                } => {
                    trace.markets.push(market);
                    local = vec![false; n];
                    dead = false;
                    events.push_back(Event::ClusterReady { generation });
                }
                Action::Launch { .. } | Action::Restore { .. } if warned => {
                    panic!("{action:?} on a cluster that got an interruption notice")
                }
                Action::MarketChosen { .. } | Action::DeadlineAtRisk { .. } => {}
                // Leaving the cluster: the driver ends it and reports it lost.
                Action::Abandon { generation, .. } => events.push_back(Event::ClusterLost {
                    generation,
                    cause: "left".into(),
                    elapsed: 0.0,
                }),
                // On a dead cluster restores and uploads fail; the loss event follows.
                Action::Restore { .. } | Action::Persist { .. } if dead => {}
                Action::Launch { stage, attempt } if dead => trace.launches.push((stage, attempt)),
                Action::Restore { stage, generation } => {
                    assert!(committed[stage], "restore of {stage}, which has no COMMIT");
                    trace.restored.push(stage);
                    local[stage] = true;
                    events.push_back(Event::Restored { stage, generation });
                }
                Action::Launch { stage, attempt } => {
                    assert!(
                        !committed[stage],
                        "stage {stage} launched although committed"
                    );
                    for &input in &setup.needs[stage] {
                        assert!(
                            local[input],
                            "stage {stage} launched before input {input} is on the cluster"
                        );
                    }
                    trace.launches.push((stage, attempt));
                    launches += 1;
                    if script.lose_after_launch.contains(&launches)
                        && let Some(lead) = script.notice
                    {
                        warned = true;
                        events.push_front(Event::Notice {
                            generation: machine.generation(),
                            kind: super::NoticeKind::Interruption,
                            lead,
                            elapsed: 0.0,
                        });
                        break;
                    }
                    if script.lose_after_launch.contains(&launches) {
                        local = vec![false; n];
                        dead = true;
                        // What happened on the cluster is gone; what reached the store is not.
                        events.retain(|e| {
                            matches!(
                                e,
                                Event::Committed { .. }
                                    | Event::Published { .. }
                                    | Event::RetryDue { .. }
                            )
                        });
                        events.push_back(Event::ClusterLost {
                            generation: machine.generation(),
                            cause: "scripted".into(),
                            elapsed: 0.0,
                        });
                        break;
                    }
                    if script.node_lost_at_launch.contains(&launches) {
                        let generation = machine.generation();
                        let attempts = vec![(stage, attempt)];
                        events.push_back(Event::AttemptsLost {
                            generation,
                            attempts,
                            elapsed: 0.0,
                        });
                        let exit = Exit::Failed { code: 137 };
                        events.push_back(Event::StageExited {
                            stage,
                            attempt,
                            exit,
                        });
                        continue;
                    }
                    let exit = if script.failing.contains(&(stage, attempt)) {
                        Exit::Failed { code: 1 }
                    } else {
                        local[stage] = true;
                        Exit::Success
                    };
                    events.push_back(Event::StageExited {
                        stage,
                        attempt,
                        exit,
                    });
                }
                Action::Persist { stage, attempt } => {
                    assert!(local[stage]);
                    committed[stage] = true;
                    trace.committed.push(stage);
                    events.push_back(Event::Committed { stage, attempt });
                }
                Action::Publish { stage } => {
                    assert!(committed[stage], "publish of {stage} before its COMMIT");
                    trace.published.push(stage);
                    events.push_back(Event::Published { stage });
                }
                Action::RetryAfter { stage, .. } => events.push_back(Event::RetryDue { stage }),
                Action::Terminate => local = vec![false; n],
                Action::Release { generation, .. } => trace.released.push(generation),
                Action::Finish(outcome) => trace.outcome = Some(outcome),
            }
        }
        if noticed {
            // The window is over: the cluster goes with what it had not saved.
            local = vec![false; n];
            events.retain(|e| {
                matches!(
                    e,
                    Event::Committed { .. }
                        | Event::Published { .. }
                        | Event::RetryDue { .. }
                        | Event::ClusterReady { .. }
                )
            });
            events.push_back(Event::ClusterLost {
                generation: machine.generation(),
                cause: "scripted, with notice".into(),
                elapsed: 0.0,
            });
        }
    }
    assert!(
        machine.is_finished(),
        "no more events but the run is not finished"
    );
    trace
}

pub(super) fn chain(n: usize, checkpoint: Vec<bool>) -> Setup {
    let mut is_final = vec![false; n];
    is_final[n - 1] = true;
    Setup {
        needs: (0..n)
            .map(|s| if s == 0 { vec![] } else { vec![s - 1] })
            .collect(),
        checkpoint,
        is_final,
        estimate: vec![600.0; n],
        slots: 2,
        retries: 2,
        market: Market::Spot,
        fallback: FallbackSpec::default(),
        mtti: 7200.0,
        provision_time: 600.0,
        checkpoint_cost: 60.0,
        write_time: vec![60.0; n],
        may_save: vec![true; n],
        auto_market: None,
        explain: true,
    }
}

#[test]
fn a_run_without_faults_launches_each_stage_once_and_publishes_the_final() {
    let setup = chain(3, vec![false, true, true]);
    let trace = drive(&setup, &Script::default(), vec![false; 3]);
    assert_eq!(trace.launches, vec![(0, 1), (1, 1), (2, 1)]);
    assert_eq!(trace.committed, vec![1, 2]);
    assert_eq!(trace.published, vec![2]);
    assert_eq!(trace.outcome, Some(Outcome::Succeeded));
}

#[test]
fn after_a_loss_only_the_recompute_set_runs_again_from_the_checkpoint() {
    // a -> b (checkpoint) -> c -> d (final): lose the cluster when d starts.
    let setup = chain(4, vec![false, true, false, true]);
    let script = Script {
        lose_after_launch: BTreeSet::from([4]),
        ..Script::default()
    };
    let trace = drive(&setup, &script, vec![false; 4]);
    assert_eq!(
        trace.launches,
        vec![(0, 1), (1, 1), (2, 1), (3, 1), (2, 2), (3, 2)]
    );
    assert_eq!(
        trace.restored,
        vec![1],
        "b's checkpoint is brought back, a is not rerun"
    );
    assert_eq!(trace.outcome, Some(Outcome::Succeeded));
}

#[test]
fn a_resumed_run_starts_from_its_commits() {
    let setup = chain(3, vec![false, true, true]);
    let trace = drive(&setup, &Script::default(), vec![false, true, false]);
    assert_eq!(trace.launches, vec![(2, 1)]);
    assert_eq!(trace.restored, vec![1]);
}

#[test]
fn failures_are_retried_then_fail_the_run_naming_the_stage() {
    let setup = chain(2, vec![false, true]);
    let retried = Script {
        failing: BTreeSet::from([(1, 1), (1, 2)]),
        ..Script::default()
    };
    let trace = drive(&setup, &retried, vec![false; 2]);
    assert_eq!(trace.outcome, Some(Outcome::Succeeded));
    assert_eq!(trace.launches, vec![(0, 1), (1, 1), (1, 2), (1, 3)]);
    let exhausted = Script {
        failing: BTreeSet::from([(1, 1), (1, 2), (1, 3)]),
        ..Script::default()
    };
    let trace = drive(&setup, &exhausted, vec![false; 2]);
    assert_eq!(
        trace.outcome,
        Some(Outcome::Failed {
            stage: 1,
            code: 1,
            attempts: 3
        })
    );
}

#[test]
fn interruptions_never_use_up_retries() {
    let mut setup = chain(2, vec![false, true]);
    setup.retries = 0;
    // Lose the cluster on five launches in a row: still succeeds.
    let script = Script {
        lose_after_launch: (1..=5).collect(),
        ..Script::default()
    };
    let trace = drive(&setup, &script, vec![false; 2]);
    assert_eq!(trace.outcome, Some(Outcome::Succeeded));
}

#[test]
fn the_market_falls_back_to_on_demand_after_n_interruptions() {
    let mut setup = chain(3, vec![true, true, true]);
    setup.fallback.after_interruptions = Some(2);
    let script = Script {
        lose_after_launch: BTreeSet::from([1, 2]),
        ..Script::default()
    };
    let trace = drive(&setup, &script, vec![false; 3]);
    assert_eq!(
        trace.markets,
        vec![Market::Spot, Market::Spot, Market::OnDemand]
    );
    assert_eq!(trace.outcome, Some(Outcome::Succeeded));
}

#[test]
fn market_auto_chooses_again_for_what_remains_when_a_run_resumes() {
    let mut setup = chain(4, vec![true; 4]);
    setup.auto_market = Some(crate::plan::market::AutoMarket::example(600.0));
    setup.fallback.deadline = Some(std::time::Duration::from_secs(1500));
    let first_choice = |committed: Vec<bool>| {
        let mut machine = Machine::new(setup.clone());
        let actions = machine.apply(Event::Started {
            committed,
            published: vec![false; 4],
        });
        actions
            .into_iter()
            .find_map(|a| match a {
                Action::MarketChosen { market, reason } => Some((market, reason)),
                _ => None,
            })
            .expect("a market choice before the first cluster")
    };
    // A fresh run takes the choice made before the run.
    let (market, reason) = first_choice(vec![false; 4]);
    assert_eq!(market, Market::Spot);
    assert_eq!(reason, "spot: chosen before the run");
    // Resumed with two stages to run (20m): 10m to a cluster + 10m one loss can cost +
    // 30m on demand ends after the 25m deadline, so what remains goes on demand.
    let (market, reason) = first_choice(vec![true, true, false, false]);
    assert_eq!(market, Market::OnDemand, "{reason}");
    assert!(
        reason.starts_with("resumed with 2 of 4 stages to run: on-demand: deadline 25m at risk"),
        "{reason}"
    );
}

#[test]
fn stop_terminates_and_records_a_stopped_run() {
    let mut machine = Machine::new(chain(2, vec![false, true]));
    machine.apply(Event::Started {
        committed: vec![false; 2],
        published: vec![false; 2],
    });
    let actions = machine.apply(Event::Stop);
    assert_eq!(
        actions,
        vec![Action::Terminate, Action::Finish(Outcome::Stopped)]
    );
    assert!(
        machine
            .apply(Event::ClusterReady { generation: 1 })
            .is_empty()
    );
}

pub(super) fn random_dag() -> impl Strategy<Value = Setup> {
    (2usize..9)
        .prop_flat_map(|n| {
            let needs = (0..n)
                .map(|s| {
                    proptest::collection::btree_set(0..s.max(1), 0..=s.min(3))
                        .prop_map(move |set| set.into_iter().filter(|&p| p < s).collect::<Vec<_>>())
                })
                .collect::<Vec<_>>();
            (
                needs,
                proptest::collection::vec(any::<bool>(), n),
                1usize..4,
            )
        })
        .prop_map(|(needs, checkpoint, slots)| {
            let n = needs.len();
            let mut is_final = vec![true; n];
            for inputs in &needs {
                for &p in inputs {
                    is_final[p] = false;
                }
            }
            let checkpoint = checkpoint
                .iter()
                .zip(&is_final)
                .map(|(c, f)| *c || *f)
                .collect();
            Setup {
                needs,
                checkpoint,
                is_final: is_final.clone(),
                slots,
                ..chain(n, vec![true; n])
            }
        })
}

/// The generator itself: every stage but the last is drawn as an input, with fan-ins and
/// edges that skip stages, or the properties below prove little.
#[test]
fn random_dags_are_varied() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let strategy = random_dag();
    let mut runner = TestRunner::deterministic();
    let mut used_as_input = [false; 8];
    let (mut fan_in, mut long_edge) = (0, 0);
    for _ in 0..300 {
        let setup = strategy.new_tree(&mut runner).unwrap().current();
        for (stage, inputs) in setup.needs.iter().enumerate() {
            fan_in += usize::from(inputs.len() >= 2);
            for &input in inputs {
                assert!(input < stage);
                used_as_input[input] = true;
                long_edge += usize::from(input + 1 < stage);
            }
        }
    }
    assert_eq!(used_as_input[..7], [true; 7]);
    assert!(
        fan_in > 100 && long_edge > 100,
        "fan-in {fan_in}, long edges {long_edge}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever the losses: no stage before its inputs, no committed stage twice, every
    /// final published, and the run succeeds.
    #[test]
    fn runs_survive_any_losses(setup in random_dag(), losses in proptest::collection::btree_set(1usize..30, 0..8)) {
        let script = Script { lose_after_launch: losses, ..Script::default() };
        let n = setup.needs.len();
        let trace = drive(&setup, &script, vec![false; n]);
        prop_assert_eq!(trace.outcome, Some(Outcome::Succeeded));
        let finals: BTreeSet<usize> = (0..n).filter(|&s| setup.is_final[s]).collect();
        prop_assert_eq!(trace.published.iter().copied().collect::<BTreeSet<_>>(), finals);
        let mut seen = BTreeSet::new();
        for stage in &trace.committed {
            prop_assert!(seen.insert(*stage), "stage {} committed twice", stage);
        }
    }

    /// Nodes lost under attempts, with or without whole-cluster losses and with no retries
    /// at all: nothing is charged to the stages, and the run succeeds.
    #[test]
    fn node_losses_charge_no_retries(
        mut setup in random_dag(),
        nodes in proptest::collection::btree_set(1usize..30, 1..8),
        losses in proptest::collection::btree_set(1usize..30, 0..3),
    ) {
        setup.retries = 0;
        let script = Script { lose_after_launch: losses, node_lost_at_launch: nodes, ..Script::default() };
        let trace = drive(&setup, &script, vec![false; setup.needs.len()]);
        prop_assert_eq!(trace.outcome, Some(Outcome::Succeeded));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A run resumed from any set of commits, with losses and failures within the retry
    /// budget: it succeeds without ever running a committed stage, and publishes every final.
    #[test]
    fn resumed_runs_with_losses_and_failures_succeed(
        setup in random_dag(),
        losses in proptest::collection::btree_set(1usize..30, 0..6),
        committed_bits in any::<u16>(),
        failing_bits in any::<u16>(),
    ) {
        let n = setup.needs.len();
        let committed: Vec<bool> = (0..n).map(|s| setup.checkpoint[s] && committed_bits & (1 << s) != 0).collect();
        // Attempt 1 of these stages fails once (retries are 2).
        let failing = (0..n).filter(|s| failing_bits & (1 << s) != 0).map(|s| (s, 1)).collect();
        let script = Script { lose_after_launch: losses, failing, ..Script::default() };
        let trace = drive(&setup, &script, committed);
        prop_assert_eq!(trace.outcome, Some(Outcome::Succeeded));
        let finals: BTreeSet<usize> = (0..n).filter(|&s| setup.is_final[s]).collect();
        prop_assert_eq!(trace.published.iter().copied().collect::<BTreeSet<_>>(), finals);
    }
}
