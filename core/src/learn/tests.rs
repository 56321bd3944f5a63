use super::*;
use crate::contract::{Interruption, RunRecord, StageRecord};
use crate::workflow::Workflow;

fn workflow(text: &str) -> Workflow {
    crate::workflow::parse("wf.yaml", text).unwrap_or_else(|d| panic!("{d}"))
}

const TWO: &str = "name: wf
cluster: {mtti: 2h}
stages:
  a: {run: a, estimate: 10m, output_size: 1GB}
  b: {run: b, needs: [a], estimate: 20m}
";

fn record(wf: &Workflow, n: usize, seconds: f64, bytes: Option<u64>) -> RunRecord {
    let prints = fingerprints(wf);
    let mut record = RunRecord::new(
        "wf",
        &format!("b{n}"),
        &format!("r{n}"),
        "spot",
        std::time::SystemTime::UNIX_EPOCH,
    );
    record.stages.insert(
        "a".into(),
        StageRecord {
            fingerprint: Some(prints[0].clone()),
            seconds: Some(seconds),
            bytes,
            ..StageRecord::default()
        },
    );
    record
}

#[test]
fn without_history_every_figure_is_the_files() {
    let wf = workflow(TWO);
    let history = History::none(&wf);
    assert_eq!(history.stages[0].estimate.value, 600.0);
    assert_eq!(history.stages[0].estimate.source, Source::File);
    assert_eq!(history.interruptions.source, Source::File);
    let mut applied = wf.clone();
    history.apply(&mut applied);
    assert_eq!(applied, wf);
}

#[test]
fn three_runs_of_the_same_definition_replace_the_file_with_their_median() {
    let wf = workflow(TWO);
    let records: Vec<RunRecord> = [1200.0, 1300.0, 1250.0]
        .iter()
        .enumerate()
        .map(|(n, s)| record(&wf, n, *s, Some(2_000_000_000)))
        .collect();
    let history = learn(&wf, &records);
    let a = &history.stages[0];
    assert_eq!(a.estimate.value, 1250.0);
    assert_eq!(a.estimate.source.describe(), "history: 3 runs");
    assert_eq!(a.output_size.value, 2e9);
    // b ran in none of them.
    assert_eq!(history.stages[1].estimate.source, Source::File);
    let mut applied = wf.clone();
    history.apply(&mut applied);
    assert_eq!(applied.stages[0].estimate.as_secs(), 1250);
    assert_eq!(applied.stages[0].output_size, 2_000_000_000);
}

#[test]
fn one_run_is_blended_with_the_file_and_says_so() {
    let wf = workflow(TWO);
    let history = learn(&wf, &[record(&wf, 0, 1500.0, None)]);
    let a = &history.stages[0].estimate;
    // A third of the way from the file's 600 s to the 1500 s measured.
    assert!((a.value - 900.0).abs() < 1e-6, "{}", a.value);
    assert_eq!(
        a.source.describe(),
        "history: 1 run, blended with the workflow file"
    );
    assert_eq!(history.stages[0].output_size.source, Source::File);
}

#[test]
fn runs_of_an_earlier_definition_count_a_quarter_each() {
    let wf = workflow(TWO);
    let mut records: Vec<RunRecord> = (0..4).map(|n| record(&wf, n, 1200.0, None)).collect();
    for r in &mut records {
        r.stages.get_mut("a").unwrap().fingerprint = Some("an earlier definition".into());
    }
    let a = learn(&wf, &records).stages[0].estimate.clone();
    // Four earlier runs weigh one run: a third of the way from 600 s to 1200 s.
    assert!((a.value - 800.0).abs() < 1e-6, "{}", a.value);
    assert_eq!(
        a.source.describe(),
        "history: 4 runs (4 of an earlier definition), blended with the workflow file"
    );
    // A run of the current definition is preferred to them.
    records.push(record(&wf, 9, 300.0, None));
    let a = learn(&wf, &records).stages[0].estimate.clone();
    assert_eq!(a.median, Some(300.0));
}

#[test]
fn only_the_latest_window_of_runs_counts() {
    let wf = workflow(TWO);
    let mut records: Vec<RunRecord> = (0..30).map(|n| record(&wf, n, 100.0, None)).collect();
    records.extend((30..30 + WINDOW).map(|n| record(&wf, n, 900.0, None)));
    assert_eq!(learn(&wf, &records).stages[0].estimate.value, 900.0);
}

#[test]
fn quantiles_interpolate_between_ranks() {
    assert_eq!(median(&[]), None);
    assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
    assert_eq!(median(&[1.0, 2.0, 3.0, 4.0]), Some(2.5));
    assert_eq!(quantile(&[0.0, 10.0], 0.9), Some(9.0));
}

#[test]
fn the_interruption_rate_is_learned_from_spot_hours_held_with_the_file_as_prior() {
    let wf = workflow(TWO);
    let records: Vec<RunRecord> = (0..10)
        .map(|n| {
            let mut r = record(&wf, n, 600.0, None);
            r.cluster_kind = Some(cluster_kind(&wf));
            r.cluster_hours.insert("spot".into(), 1.0);
            for _ in 0..3 {
                r.interruptions.push(Interruption {
                    at: String::new(),
                    market: "spot".into(),
                    cause: "reclaimed".into(),
                });
            }
            r
        })
        .collect();
    let model = learn(&wf, &records).interruptions;
    // (2 losses over 2 x 2 h of prior + 10 h held) / (2 + 30 losses) = 0.4375 h.
    assert!(
        (model.mtti.as_secs_f64() - 1575.0).abs() < 1.0,
        "{:?}",
        model.mtti
    );
    assert_eq!((model.losses, model.runs), (30, 10));
    assert!(
        model
            .describe()
            .starts_with("history: 10 runs, 30 losses in 10.00 h")
    );
    // Records of another kind of cluster say nothing of this one.
    let mut foreign = records.clone();
    for r in &mut foreign {
        r.cluster_kind = Some("emr eu-west-1 m5.xlarge".into());
    }
    assert_eq!(learn(&wf, &foreign).interruptions.source, Source::File);
    let mut applied = wf.clone();
    learn(&wf, &records).apply(&mut applied);
    assert_eq!(applied.cluster.mtti, model.mtti);
}

#[test]
fn a_spot_task_fleet_makes_another_kind_of_cluster_than_the_same_primary_and_core() {
    let emr = |task: &str| {
        workflow(&format!(
            "name: wf\ncluster:\n  provider: emr\n  emr:\n    release_label: emr-7.5.0\n    \
             service_role: s\n    instance_profile: p\n    region: eu-west-1\n    \
             primary: {{instance_types: [m5.xlarge]}}\n    \
             core: {{instance_types: [r5.xlarge], capacity: 2}}\n{task}stages:\n  a: {{run: x}}\n"
        ))
    };
    let plain = cluster_kind(&emr(""));
    // Kinds recorded before task fleets existed stay what they were.
    assert_eq!(plain, "emr eu-west-1 m5.xlarge,r5.xlarge");
    let with_task = cluster_kind(&emr(
        "    task: {instance_types: [r5a.xlarge, c5.xlarge], capacity: 4}\n",
    ));
    assert_eq!(
        with_task,
        "emr eu-west-1 m5.xlarge,r5.xlarge task c5.xlarge,r5a.xlarge"
    );
    let same_types_as_core = cluster_kind(&emr("    task: {instance_types: [r5.xlarge]}\n"));
    assert_ne!(
        same_types_as_core, plain,
        "spot task nodes are lost, not the cluster"
    );
}

fn held(zone: &str, seconds: f64, lost: bool) -> crate::contract::HeldCluster {
    crate::contract::HeldCluster {
        market: "spot".into(),
        seconds,
        lost,
        zone: Some(zone.into()),
        subnet: Some(format!("subnet-{zone}")),
        node_losses: Vec::new(),
    }
}

/// Ten runs of `wf`'s kind, each holding the clusters `clusters(n)` gives.
fn held_runs(
    wf: &Workflow,
    clusters: impl Fn(usize) -> Vec<crate::contract::HeldCluster>,
) -> Vec<RunRecord> {
    (0..10)
        .map(|n| {
            let mut r = record(wf, n, 600.0, None);
            r.cluster_kind = Some(cluster_kind(wf));
            r.clusters = clusters(n);
            r
        })
        .collect()
}

#[test]
fn clusters_respawn_left_are_held_time_but_not_losses() {
    let wf = workflow(TWO);
    // Each run: one cluster taken after 30 min, one left for on-demand after 30 min.
    let records = held_runs(&wf, |_| {
        vec![held("a", 1800.0, true), held("a", 1800.0, false)]
    });
    let model = learn(&wf, &records).interruptions;
    assert_eq!((model.losses, model.runs), (10, 10));
    assert!((model.hours - 10.0).abs() < 1e-9, "{}", model.hours);
}

#[test]
fn enough_losses_make_the_clusters_held_the_planning_model_replayed_as_they_came() {
    let wf = workflow(TWO);
    // Bursty: each run loses a cluster after 1 minute, then holds one for 3 hours.
    let records = held_runs(&wf, |_| {
        vec![held("a", 60.0, true), held("a", 3.0 * 3600.0, false)]
    });
    let history = learn(&wf, &records);
    let trace = history.interruptions.empirical.clone().expect("10 losses");
    assert!(
        history
            .interruptions
            .describe()
            .contains("replayed as they came")
    );
    let mut planned = wf.clone();
    history.apply(&mut planned);
    match crate::sim::Interruptions::planning(&planned, planned.cluster.mtti.as_secs_f64()) {
        crate::sim::Interruptions::Capacity(replayed) => assert_eq!(replayed, *trace),
        other => panic!("planned with {other:?}"),
    }
    // Too few losses: the rate, with the file as its prior.
    let few = held_runs(&wf, |n| vec![held("a", 600.0, n < 3)]);
    let history = learn(&wf, &few);
    assert!(history.interruptions.empirical.is_none());
    let mut planned = wf.clone();
    history.apply(&mut planned);
    assert!(planned.cluster.learned_trace.is_none());
}

#[test]
fn a_workflow_pinned_to_a_zone_learns_from_that_zone_and_stats_see_every_zone() {
    let emr = |subnets: &str| {
        workflow(&format!(
            "name: wf\ncluster:\n  provider: emr\n  mtti: 2h\n  emr:\n    release_label: emr-7.5.0\n    \
             service_role: s\n    instance_profile: p\n    region: eu-west-1\n    \
             primary: {{instance_types: [m5.xlarge]}}\n    \
             core: {{instance_types: [r5.xlarge], capacity: 2}}\n{subnets}stages:\n  a: {{run: x}}\n"
        ))
    };
    let pinned = emr("    subnets: [subnet-quiet]\n");
    let anywhere = emr("");
    // Every run held a cluster in a zone that loses it at once and one in a quiet zone.
    let runs = |wf: &Workflow| {
        held_runs(wf, |_| {
            vec![held("busy", 300.0, true), held("quiet", 7200.0, false)]
        })
    };
    let quiet = learn(&pinned, &runs(&pinned)).interruptions;
    assert_eq!(quiet.zones, vec!["quiet".to_string()]);
    assert_eq!((quiet.losses, quiet.runs), (0, 10));
    assert!(
        quiet.describe().contains("in quiet"),
        "{}",
        quiet.describe()
    );
    let pooled = learn(&anywhere, &runs(&anywhere)).interruptions;
    assert!(pooled.zones.is_empty());
    assert_eq!(pooled.losses, 10);
    assert!(pooled.mtti < quiet.mtti);
    let zones: Vec<(&str, u32)> = (pooled.by_zone.iter())
        .map(|z| (z.zone.as_str(), z.losses))
        .collect();
    assert_eq!(zones, vec![("busy", 10), ("quiet", 0)]);
    // A subnet the history never ran in: EMR may place it anywhere, so every zone counts.
    let unseen = emr("    subnets: [subnet-quiet, subnet-new]\n");
    assert!(
        learn(&unseen, &runs(&unseen))
            .interruptions
            .zones
            .is_empty()
    );
}
