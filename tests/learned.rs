//! Plans learn from the run history: after real local runs, `plan` and `simulate` use each
//! stage's measured time and output size and say where every number came from,
//! `--no-history` gives the file's plan back, `respawn stats` compares the file with what
//! runs measured, and a damaged record is named and left out, never a crash.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use support::respawn;

/// `slow` sleeps about 2 s against an estimate of 1 s and writes 5,000 bytes; `quick`
/// writes 20,000 bytes in no time against an estimate of 30 s.
const WORKFLOW: &str = r#"name: learning
cluster: {provider: local, market: spot, mtti: 2h, provision_time: 1s, slots: 1}
stages:
  slow:
    run: mkdir -p {{ output }} && head -c 5000 /dev/zero > {{ output }}/data && sleep 2
    estimate: 1s
    output_size: 1MB
  quick:
    needs: [slow]
    run: mkdir -p {{ output }} && head -c 20000 /dev/zero > {{ output }}/data
    estimate: 30s
    output_size: 1GB
"#;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("learning.yaml"), WORKFLOW).unwrap();
        Fixture { dir }
    }

    fn file(&self) -> PathBuf {
        self.dir.path().join("learning.yaml")
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn args<'a>(&'a self, head: &[&'a str]) -> Vec<String> {
        let mut args: Vec<String> = head.iter().map(|s| s.to_string()).collect();
        args.push(self.file().display().to_string());
        args.push("--store".into());
        args.push(self.store().display().to_string());
        args
    }

    fn run_batch(&self, batch: &str) -> Vec<Value> {
        let mut args = self.args(&["run", "--format", "json"]);
        args.extend([
            "--batch".into(),
            batch.into(),
            "--scratch".into(),
            self.dir.path().join("scratch").display().to_string(),
        ]);
        let run = respawn(&args);
        run.success();
        run.events()
    }

    fn plan(&self, extra: &[&str]) -> Value {
        let mut args = self.args(&["plan", "--format", "json"]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let run = respawn(&args);
        run.success();
        run.json()
    }
}

fn stage<'a>(plan: &'a Value, name: &str) -> &'a Value {
    plan["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap()
}

#[test]
fn plans_learn_stage_times_and_sizes_from_three_runs_and_say_so() {
    let fx = Fixture::new();
    let before = fx.plan(&[]);
    assert_eq!(stage(&before, "slow")["estimate_source"], "workflow file");
    let first = fx.run_batch("b1");
    // The first run planned from the file, and said that `slow` overran its estimate.
    let note = first.iter().find(|e| e["event"] == "note").expect("a note");
    let text = note["message"].as_str().unwrap();
    assert!(
        text.contains("stage `slow` ran") && text.contains("more than twice its estimate of 1s"),
        "{text}"
    );
    assert!(
        !first
            .iter()
            .any(|e| e["event"] == "note" && e["message"].as_str().unwrap().contains("`quick`"))
    );

    let blended = fx.plan(&[]);
    let slow = stage(&blended, "slow");
    assert_eq!(
        slow["estimate_source"],
        "history: 1 run, blended with the workflow file"
    );
    let (s, q) = (
        slow["estimate_s"].as_f64().unwrap(),
        stage(&blended, "quick")["estimate_s"].as_f64().unwrap(),
    );
    assert!(
        s > 1.2 && s < 2.0,
        "a third of the way from 1 s to about 2 s: {s}"
    );
    assert!(
        q > 15.0 && q < 25.0,
        "a third of the way from 30 s to about 0 s: {q}"
    );

    fx.run_batch("b2");
    fx.run_batch("b3");
    let learned = fx.plan(&[]);
    let slow = stage(&learned, "slow");
    assert_eq!(slow["estimate_source"], "history: 3 runs");
    let s = slow["estimate_s"].as_f64().unwrap();
    assert!((2.0..3.5).contains(&s), "the median of about 2 s: {s}");
    assert_eq!(slow["output_size_bytes"], 5000);
    assert_eq!(stage(&learned, "quick")["output_size_bytes"], 20000);
    assert_eq!(
        stage(&learned, "quick")["output_size_source"],
        "history: 3 runs"
    );
    let mtti = learned["mtti_source"].as_str().unwrap();
    assert!(mtti.starts_with("history: 3 runs, 0 losses in"), "{mtti}");

    // The text view marks the learned values and names --no-history.
    let run = respawn(fx.args(&["plan"]));
    run.success();
    assert!(
        run.stdout.contains("(learned)") && run.stdout.contains("--no-history"),
        "{}",
        run.stdout
    );

    // --no-history plans from the file alone, as before any run.
    let file_only = fx.plan(&["--no-history"]);
    assert_eq!(stage(&file_only, "slow")["estimate_s"], 1.0);
    assert_eq!(
        stage(&file_only, "quick")["output_size_bytes"],
        1_000_000_000u64
    );
    assert_eq!(file_only["mtti_source"], "workflow file");
    assert_eq!(
        stage(&file_only, "slow")["estimate_source"],
        "workflow file"
    );

    // --mtti wins over the history, and says so.
    assert_eq!(fx.plan(&["--mtti", "1h"])["mtti_source"], "--mtti flag");

    // simulate reads the same history.
    let mut args = fx.args(&["simulate", "--format", "json", "--trials", "50"]);
    args.extend(["--seed".into(), "3".into()]);
    let sim = respawn(&args);
    sim.success();
    let sim = sim.json();
    assert_eq!(
        sim["stage_sources"]["slow"]["estimate_source"],
        "history: 3 runs"
    );
    assert!(
        sim["mtti_source"]
            .as_str()
            .unwrap()
            .starts_with("history: 3 runs")
    );

    assert_stats(&fx);
    assert_damaged_record_is_named_and_left_out(&fx);
    assert_market_choice_names_its_model(&fx);
}

fn assert_stats(fx: &Fixture) {
    let run = respawn(fx.args(&["stats", "--format", "json"]));
    run.success();
    let stats = run.json();
    assert_eq!(stats["runs"], 3);
    let slow = &stats["stages"][0];
    assert_eq!(slow["stage"], "slow");
    let median = slow["estimate"]["median_s"].as_f64().unwrap();
    assert!((2.0..3.5).contains(&median), "{median}");
    assert!(slow["estimate"]["p90_s"].as_f64().unwrap() >= median);
    assert!(
        slow["estimate"]["drift"].as_f64().unwrap() > 0.9,
        "about +100%"
    );
    assert_eq!(slow["output_size"]["median_bytes"], 5000.0);
    let interruptions = &stats["interruptions"];
    assert_eq!(interruptions["cluster_kind"], "local");
    assert_eq!(interruptions["losses"], 0);
    assert_eq!(interruptions["runs"], 3);
    assert!(interruptions["spot_hours"].as_f64().unwrap() > 0.0);
    assert!(
        interruptions["mtti_90_low_s"].as_f64().unwrap()
            < interruptions["mtti_s"].as_f64().unwrap()
    );
    let text = respawn(fx.args(&["stats"]));
    text.success();
    assert!(
        text.stdout.contains("slow") && text.stdout.contains("history: 3 runs"),
        "{}",
        text.stdout
    );
}

/// Plans read `learned.json`, one object however many runs there are: a damaged run record
/// changes nothing. When `learned.json` itself does not read, it is named and every run
/// record is read instead: a damaged one is named on stderr and left out.
fn assert_damaged_record_is_named_and_left_out(fx: &Fixture) {
    let runs = fx.store().join("learning/runs");
    let first = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(first.join("run.json"), b"{ not json").unwrap();
    let slow = stage(&fx.plan(&[]), "slow").clone();
    assert_eq!(slow["estimate_source"], "history: 3 runs");
    std::fs::write(fx.store().join("learning/learned.json"), b"[{ not json").unwrap();
    for command in ["stats", "plan"] {
        let run = respawn(fx.args(&[command, "--format", "json"]));
        run.success();
        assert!(
            run.stderr.contains("left out of the history")
                && run.stderr.contains("learned.json")
                && run.stderr.contains(&display(&first)),
            "{command}: {}",
            run.stderr
        );
    }
    let slow = stage(&fx.plan(&[]), "slow").clone();
    assert_eq!(
        slow["estimate_source"],
        "history: 2 runs, blended with the workflow file"
    );
}

/// With `market: auto`, a run's `market-chosen` event names the interruption model its
/// choice rests on. With `learned.json` damaged the run plans from the file and says so,
/// then replaces the object with what it measured, and the next run learns from that.
fn assert_market_choice_names_its_model(fx: &Fixture) {
    std::fs::write(fx.file(), WORKFLOW.replace("market: spot", "market: auto")).unwrap();
    let model = |events: &[Value]| {
        let chosen = events
            .iter()
            .find(|e| e["event"] == "market-chosen")
            .expect("a market-chosen event");
        chosen["model"].as_str().unwrap().to_string()
    };
    assert_eq!(
        model(&fx.run_batch("b4")),
        "workflow file (the history did not read)"
    );
    let next = model(&fx.run_batch("b5"));
    assert!(next.starts_with("history: 1 run, 0 losses in"), "{next}");
}

fn display(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Loses its spot cluster every half second or so until it falls back after three losses.
const BURSTY: &str = r#"name: bursty
cluster:
  provider: local
  market: spot
  mtti: 2h
  provision_time: 1s
  slots: 1
  fallback: {after_interruptions: 3}
stages:
  work:
    run: mkdir -p {{ output }} && sleep 3 && echo done > {{ output }}/data
    estimate: 3s
"#;

#[test]
fn runs_record_each_cluster_held_and_enough_losses_are_replayed_as_they_came() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bursty.yaml");
    std::fs::write(&file, BURSTY).unwrap();
    let store = dir.path().join("store");
    let with = |head: &[&str]| {
        let mut args: Vec<String> = head.iter().map(|s| s.to_string()).collect();
        args.extend([display_full(&file), "--store".into(), display_full(&store)]);
        args
    };
    for n in 1..=3 {
        let mut args = with(&["run", "--format", "json", "--batch", &format!("b{n}")]);
        args.extend([
            "--chaos".into(),
            format!("mtti=500ms,seed={n},provision=100ms"),
        ]);
        args.extend([
            "--scratch".into(),
            display_full(&dir.path().join("scratch")),
        ]);
        respawn(&args).success();
    }
    // Every run record lists its clusters: three taken by chaos, the on-demand one let go.
    let runs = std::fs::read_dir(store.join("bursty/runs")).unwrap();
    for run in runs {
        let record: Value =
            serde_json::from_slice(&std::fs::read(run.unwrap().path().join("run.json")).unwrap())
                .unwrap();
        let clusters = record["clusters"].as_array().expect("clusters");
        let ended: Vec<(&str, bool)> = clusters
            .iter()
            .map(|c| (c["market"].as_str().unwrap(), c["lost"].as_bool().unwrap()))
            .collect();
        assert_eq!(
            ended,
            [
                ("spot", true),
                ("spot", true),
                ("spot", true),
                ("on-demand", false)
            ],
            "{record}"
        );
        assert!(
            clusters
                .iter()
                .all(|c| c["seconds"].as_f64().unwrap() >= 0.0)
        );
    }
    // Nine losses: the clusters held are the planning model, as they came.
    let plan = respawn(with(&["plan", "--format", "json"]));
    plan.success();
    let source = plan.json()["mtti_source"].as_str().unwrap().to_string();
    assert!(
        source.starts_with("history: 3 runs, 9 losses in")
            && source.ends_with("(replayed as they came)"),
        "{source}"
    );
    let stats = respawn(with(&["stats", "--format", "json"]));
    stats.success();
    assert_eq!(stats.json()["interruptions"]["empirical"], true);
    let text = respawn(with(&["stats"]));
    assert!(
        text.stdout.contains("plans replay the spot clusters held"),
        "{}",
        text.stdout
    );
    // --mtti and --no-history plan with exponential losses again.
    let flag = respawn(with(&[
        "simulate", "--format", "json", "--trials", "20", "--mtti", "1h",
    ]));
    flag.success();
    assert_eq!(flag.json()["mtti_source"], "--mtti flag");
    let file_only = respawn(with(&["plan", "--format", "json", "--no-history"]));
    assert_eq!(file_only.json()["mtti_source"], "workflow file");
}

fn display_full(path: &Path) -> String {
    path.display().to_string()
}
