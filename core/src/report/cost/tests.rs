//! `cost`: prices, waste charged to its cluster, and the on-demand counterfactual.
use super::*;
use crate::contract::event::RunEvent;
use crate::report::timeline::tests::{at, exit, launch, provision, ready};
use crate::report::timeline::timeline;

/// The final output of `stage` published for batch `1`.
fn published(stage: &str) -> RunEvent {
    RunEvent::Published {
        stage: stage.into(),
        batch: "1".into(),
        output: "o".into(),
    }
}

/// Cluster `generation` released, its instances not listed (a local cluster).
fn released(generation: u32) -> RunEvent {
    RunEvent::ClusterReleased {
        generation,
        cluster: "c".into(),
        instance_hours: None,
        instances: None,
    }
}

fn workflow(slots: u32) -> Workflow {
    let text = format!(
        "name: hand\ncluster: {{provider: local, market: spot, slots: {slots}}}\n\
         cost: {{spot_per_hour: 3.0, on_demand_per_hour: 10.0}}\n\
         stages:\n  a: {{run: 'true', estimate: 1h}}\n  b: {{run: 'true', estimate: 1h, needs: [a]}}\n"
    );
    crate::workflow::parse("hand.yaml", &text).unwrap()
}

#[test]
fn waste_is_cluster_time_while_the_cluster_was_up_and_never_more_than_it_cost() {
    // One spot cluster, up from 0 to 160 s: `a` runs 0-100 s, `b` 100-150 s. Their
    // checkpoints upload for 400 s and 350 s, both ending at 500 s, long after the
    // cluster was released: only 60 s and 10 s of them were cluster time. A second run
    // keeps its cluster up while both upload at once on its one slot: 750 s of uploads
    // in 500 s of cluster, charged no more than the cluster cost.
    let spot = Market::Spot;
    let commit = |stage: &str, seconds| RunEvent::Committed {
        stage: stage.into(),
        attempt: 1,
        files: 200_000,
        bytes: 1_000,
        seconds,
        window: false,
    };
    let run = |released_at: f64| {
        vec![
            at(0.0, provision(1, spot)),
            at(0.0, ready(1, spot)),
            at(0.0, launch("a", 1, 1, spot)),
            at(100.0, exit("a", 1, 0)),
            at(100.0, launch("b", 1, 1, spot)),
            at(150.0, exit("b", 1, 0)),
            at(released_at, released(1)),
            at(500.0, commit("a", 400.0)),
            at(500.0, commit("b", 350.0)),
            at(500.0, published("b")),
        ]
    };
    let per_second = 3.0 / 3600.0;
    let early = cost(&workflow(1), &timeline(&run(160.0), false));
    assert!(
        (early.cluster_cost - 160.0 * per_second).abs() < 1e-9,
        "{early:?}"
    );
    let writes = &early.waste.checkpoint_writes;
    assert!((writes.hours - 70.0 / 3600.0).abs() < 1e-9, "{writes:?}");
    assert!((writes.cost - 70.0 * per_second).abs() < 1e-9, "{writes:?}");
    let late = cost(&workflow(1), &timeline(&run(500.0), false));
    let on_cluster = late.waste.total - late.waste.checkpoint_storage.cost;
    assert!(late.cluster_cost > 0.0);
    assert!(
        on_cluster <= late.cluster_cost + 1e-9,
        "waste {on_cluster} of a cluster that cost {}",
        late.cluster_cost
    );
}

#[test]
fn a_run_with_known_durations_costs_what_a_hand_computation_says() {
    let spot = Market::Spot;
    let od = Market::OnDemand;
    // Spot cluster: asked at 0, up at 0.1 h; `a` runs 1 h and commits 1 GB in 36 s;
    // `b` runs 0.5 h and is lost with the cluster at 1.6 h. The on-demand cluster is
    // asked at 1.6 h, up at 1.7 h; `a`'s checkpoint is restored in 72 s; `b` runs 1 h
    // and ends at 2.72 h; the cleanup comes at 2.75 h.
    let h = 3600.0;
    let events = vec![
        at(0.0, provision(1, spot)),
        at(0.1 * h, ready(1, spot)),
        at(0.1 * h, launch("a", 1, 1, spot)),
        at(1.1 * h, exit("a", 1, 0)),
        at(1.1 * h, launch("b", 2, 1, spot)),
        at(
            1.11 * h,
            RunEvent::Committed {
                stage: "a".into(),
                attempt: 1,
                files: 1,
                bytes: 1_000_000_000,
                seconds: 36.0,
                window: false,
            },
        ),
        at(
            1.6 * h,
            RunEvent::Interrupted {
                stage: "b".into(),
                attempt: 2,
            },
        ),
        at(
            1.6 * h,
            RunEvent::ClusterLost {
                generation: 1,
                market: spot,
                cause: "spot".into(),
                interruptions: 1,
            },
        ),
        at(1.6 * h, provision(2, od)),
        at(1.7 * h, ready(2, od)),
        at(
            1.72 * h,
            RunEvent::Restored {
                stage: "a".into(),
                generation: 2,
                bytes: 1_000_000_000,
                seconds: 72.0,
            },
        ),
        at(1.72 * h, launch("b", 3, 2, od)),
        at(2.72 * h, exit("b", 3, 0)),
        at(2.72 * h, published("b")),
        at(2.72 * h, released(2)),
        at(
            2.75 * h,
            RunEvent::Cleaned {
                deleted: 3,
                prefix: "p".into(),
            },
        ),
    ];
    let cost = cost(&workflow(1), &timeline(&events, false));
    let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
    // Spot 1.6 h x 3 = 4.8; on-demand (2.72 - 1.6) h x 10 = 11.2.
    assert!(close(cost.generations[0].cost, 4.8), "{cost:#?}");
    assert!(close(cost.generations[1].cost, 11.2), "{cost:#?}");
    // Storage: 1 GB from 1.11 h to 2.75 h = 1.64 GB-h at 0.023 / 730 per GB-h.
    let storage = 1.64 * 0.023 / 730.0;
    assert!(close(cost.waste.checkpoint_storage.hours, 1.64));
    assert!(close(cost.cost, 16.0 + storage));
    // On-demand: 0.1 h provisioning + a (1 h) + b (1 h) = 2.1 h x 10 = 21.
    assert!(close(cost.on_demand_hours, 2.1));
    assert!(close(cost.on_demand_cost, 21.0));
    assert!(close(cost.saving, 5.0 - storage));
    assert!(close(cost.saving_percent, (5.0 - storage) / 21.0 * 100.0));
    // Waste: b's lost 0.5 h on spot (1.5), the replacement's 0.1 h on-demand (1.0),
    // the write 0.01 h on spot (0.03), the restore 0.02 h on-demand (0.2).
    assert!(close(cost.waste.interrupted_attempts.cost, 1.5));
    assert!(close(cost.waste.provisioning.cost, 1.0));
    assert!(close(cost.waste.checkpoint_writes.cost, 0.03));
    assert!(close(cost.waste.restores.cost, 0.2));
    assert!(close(cost.waste.total, 2.73 + storage));
    assert!(
        cost.generations[0]
            .source
            .contains("cost.spot_per_hour USD 3")
    );
    assert!(
        cost.waste
            .provisioning
            .source
            .contains("on_demand_per_hour")
    );
}

#[test]
fn an_older_emr_record_without_instance_types_costs_its_instance_hours_at_the_mean_price() {
    let text = "name: wf\nstore: s3://bucket/prefix\ncluster:\n  provider: emr\n  emr:\n    \
                release_label: emr-7.5.0\n    service_role: R\n    instance_profile: P\n    \
                subnets: [subnet-1]\n    primary: {instance_types: [m5.xlarge]}\n    \
                core: {instance_types: [m5.xlarge], capacity: 3}\ncost:\n  instances:\n    \
                m5.xlarge: {spot: 0.07, on_demand: 0.192, emr_fee: 0.048}\n\
                stages:\n  a: {run: x}\n";
    let workflow = crate::workflow::parse("emr.yaml", text).unwrap_or_else(|d| panic!("{d}"));
    let spot = Market::Spot;
    let events = vec![
        at(0.0, provision(1, spot)),
        at(0.0, ready(1, spot)),
        at(
            3600.0,
            RunEvent::ClusterReleased {
                generation: 1,
                cluster: "j-1".into(),
                instance_hours: Some(8.0),
                instances: None,
            },
        ),
    ];
    let cost = cost(&workflow, &timeline(&events, false));
    // Four instances at 0.07 + 0.048 each: 8 instance-hours cost 8 x 0.118.
    assert!(
        (cost.generations[0].cost - 8.0 * 0.118).abs() < 1e-9,
        "{cost:#?}"
    );
    let source = &cost.generations[0].source;
    assert!(source.starts_with("8 instance-hours x the mean instance price ("));
    assert!(source.contains("emr_fee"));
    assert!(
        source.ends_with("this record lists no instance types"),
        "{source}"
    );
    assert!(cost.generations[0].instances.is_empty());
}

#[test]
fn the_on_demand_schedule_uses_the_clusters_slots() {
    let text = "name: wide\ncluster: {provider: local, market: spot, slots: 2}\n\
                stages:\n  a: {run: 'true', estimate: 1h}\n  b: {run: 'true', estimate: 1h}\n  c: {run: 'true', estimate: 1h}\n";
    let workflow = crate::workflow::parse("wide.yaml", text).unwrap();
    let spot = Market::Spot;
    let mut events = vec![at(0.0, provision(1, spot)), at(0.0, ready(1, spot))];
    for (i, stage) in ["a", "b", "c"].iter().enumerate() {
        events.push(at(0.0, launch(stage, i as u32 + 1, 1, spot)));
        events.push(at(100.0, exit(stage, i as u32 + 1, 0)));
    }
    let cost = cost(&workflow, &timeline(&events, false));
    // Three 100 s stages on two slots: 200 s.
    assert!((cost.on_demand_hours * 3600.0 - 200.0).abs() < 1e-6);
}

#[test]
fn a_run_on_demand_throughout_is_its_own_all_on_demand_counterfactual() {
    // On demand from start to end: 300 s of cluster for 150 s of stages (the rest is
    // uploads and provisioning). Against "all on-demand" it saved nothing and lost
    // nothing: it was all on-demand. The failure-free schedule (150 s) would call it a
    // 100% loss.
    let od = Market::OnDemand;
    let events = vec![
        at(0.0, provision(1, od)),
        at(60.0, ready(1, od)),
        at(60.0, launch("a", 1, 1, od)),
        at(160.0, exit("a", 1, 0)),
        at(160.0, launch("b", 1, 1, od)),
        at(210.0, exit("b", 1, 0)),
        at(300.0, published("b")),
        at(300.0, released(1)),
    ];
    let cost = cost(&workflow(1), &timeline(&events, false));
    assert!(cost.complete);
    assert!(cost.cluster_cost > 0.0);
    assert_eq!(cost.on_demand_cost, cost.cost, "{cost:?}");
    assert_eq!((cost.saving, cost.saving_percent), (0.0, 0.0));
    assert!(
        cost.on_demand_source.contains("on-demand throughout"),
        "{}",
        cost.on_demand_source
    );
}

/// One failure-free run is priced the same by every computation of cost: the simulator's
/// trial (which `simulate`, `market: auto` and its comparison use), the plan's makespan at
/// the cluster's rate (what `backfill` estimates), and `respawn cost` of the same run, on
/// spot and in its all-on-demand counterfactual.
#[test]
fn every_computation_of_cost_prices_a_failure_free_run_the_same() {
    let text = "name: tie\ncluster: {provider: local, market: spot, slots: 2, mtti: 2h}\n\
                cost: {spot_per_hour: 3.0, on_demand_per_hour: 10.0}\n\
                checkpoint: {policy: none}\n\
                stages:\n  a: {run: 'true', estimate: 1h, output_size: 1KB}\n  \
                b: {run: 'true', estimate: 2h, output_size: 1KB, needs: [a]}\n  \
                c: {run: 'true', estimate: 30m, output_size: 1KB, needs: [a]}\n  \
                d: {run: 'true', estimate: 1h, output_size: 1KB, needs: [b, c]}\n";
    let workflow = crate::workflow::parse("tie.yaml", text).unwrap();
    let never = |market| {
        let options = crate::plan::PlanOptions {
            market: Some(market),
            ..Default::default()
        };
        let plan = crate::planner::chosen_plan(&workflow, &options);
        let trial = crate::sim::Simulator::new(&workflow, &plan, f64::INFINITY).run(
            crate::sim::TrialInterruptions::Never,
            &mut crate::sim::trial_rng(0, 0),
        );
        let by_plan =
            plan.makespan_estimate / 3600.0 * rates::cluster_rate(&workflow, market).per_hour;
        (trial, by_plan)
    };
    let (spot_trial, spot_by_plan) = never(Market::Spot);
    let (od_trial, od_by_plan) = never(Market::OnDemand);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-3;
    // a 0-1h; b 1h-3h beside c 1h-1h30; d 3h-4h: 4 h at 3.0 and at 10.0 an hour.
    assert!(close(spot_trial.makespan, 4.0 * 3600.0), "{spot_trial:?}");
    assert!(
        close(spot_trial.cost, 12.0) && close(spot_by_plan, 12.0),
        "{spot_trial:?}"
    );
    assert!(
        close(od_trial.cost, 40.0) && close(od_by_plan, 40.0),
        "{od_trial:?}"
    );

    // The same run on spot, as its events tell it.
    let spot = Market::Spot;
    let mut events = vec![at(0.0, provision(1, spot)), at(0.0, ready(1, spot))];
    for (stage, from, to) in [
        ("a", 0.0, 3600.0),
        ("b", 3600.0, 10800.0),
        ("c", 3600.0, 5400.0),
        ("d", 10800.0, 14400.0),
    ] {
        events.push(at(from, launch(stage, 1, 1, spot)));
        events.push(at(to, exit(stage, 1, 0)));
    }
    events.push(at(14400.0, published("d")));
    events.push(at(14400.0, released(1)));
    // In the order they happened, as the ledger stores them.
    events.sort_by(|a, b| a.elapsed_s.total_cmp(&b.elapsed_s));
    let report = cost(&workflow, &timeline(&events, false));
    assert!(close(report.cost, spot_trial.cost), "{report:?}");
    assert!(close(report.on_demand_cost, od_trial.cost), "{report:?}");
    assert!(
        close(report.saving, od_trial.cost - spot_trial.cost),
        "{report:?}"
    );
}
