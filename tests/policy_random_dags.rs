//! `auto` on random DAGs of 20 to 200 stages with 1 to 16 slots: never more than 2% slower
//! than the best of `none`, `all` and `interval`, at MTTI 30m, 2h, 10h and 100h, held to
//! the simulator's mean over 2,000 trials. CI runs a handful of seeded DAGs; the big
//! table is in BENCHMARKS.md (`cargo bench --bench core`).

mod random_dag;

use random_dag::random_dag;
use respawn_core::planner::policy_plans;
use respawn_core::sim::{Interruptions, SimOptions, Simulator, run_trials, trial_rng};
use std::time::Duration;

const HOUR: f64 = 3600.0;
const TRIALS: u32 = 2000;

/// Mean makespans of none, all, interval and auto; a policy stopped at the limit counts
/// with the limit (a lower bound of its mean, so the comparison is only stricter).
fn means(seed: u64, stages: usize, slots: u32, mtti: f64) -> [(f64, u32); 4] {
    let workflow = random_dag(seed, stages, slots);
    let plans = policy_plans(&workflow, Some(Duration::from_secs_f64(mtti)));
    let free = Simulator::new(&workflow, &plans[0].1, f64::INFINITY)
        .run(
            respawn_core::sim::TrialInterruptions::Never,
            &mut trial_rng(0, 0),
        )
        .makespan;
    // Far beyond any policy worth choosing: a policy this slow is out of the race anyway.
    let limit = 5.0 * free;
    let options = SimOptions {
        trials: TRIALS,
        seed: 20261201 ^ seed,
        mtti: None,
        traces: None,
        threads: 2,
        partial: 0.0,
        capacity: None,
    };
    let interruptions = Interruptions::Exponential { mtti };
    let mut out = [(0.0, 0); 4];
    for (k, name) in ["none", "all", "interval", "auto"].iter().enumerate() {
        let plan = &plans.iter().find(|(n, _)| n == name).unwrap().1;
        let outcomes = run_trials(&workflow, plan, &interruptions, &options, limit);
        let mean = outcomes.iter().map(|o| o.makespan).sum::<f64>() / outcomes.len() as f64;
        let censored = outcomes.iter().filter(|o| o.censored).count() as u32;
        out[k] = (mean, censored);
    }
    out
}

fn check(seed: u64, stages: usize, slots: u32) {
    let mut failures = Vec::new();
    for mtti in [0.5 * HOUR, 2.0 * HOUR, 10.0 * HOUR, 100.0 * HOUR] {
        let [none, all, interval, auto] = means(seed, stages, slots, mtti);
        let best = none.0.min(all.0).min(interval.0);
        let ratio = auto.0 / best;
        println!(
            "seed {seed} stages {stages} slots {slots} mtti {:>5}h: none {:>9.0}{} all {:>9.0} interval {:>9.0} auto {:>9.0}  auto/best {ratio:.3}",
            mtti / HOUR,
            none.0,
            if none.1 > 0 { "+" } else { " " },
            all.0,
            interval.0,
            auto.0
        );
        // Stopped at the limit, auto may only be where every fixed policy is too.
        let best_stopped = [none, all, interval].iter().any(|p| p.0 == best && p.1 > 0);
        if (auto.1 > 0 && !best_stopped) || ratio > 1.02 {
            failures.push(format!(
                "mtti {}h: auto {:.0}s ({} stopped) vs best {best:.0}s, ratio {ratio:.3}",
                mtti / HOUR,
                auto.0,
                auto.1
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "random DAG seed {seed}, {stages} stages, {slots} slots:\n{}",
        failures.join("\n")
    );
}

#[test]
fn auto_is_within_two_percent_of_the_best_fixed_policy_on_a_42_stage_dag_with_3_slots() {
    check(42, 42, 3);
}

#[test]
fn auto_is_within_two_percent_of_the_best_fixed_policy_on_a_chainlike_dag_on_one_slot() {
    check(7, 20, 1);
}

#[test]
fn auto_is_within_two_percent_of_the_best_fixed_policy_on_a_wide_dag_with_16_slots() {
    check(11, 60, 16);
}
