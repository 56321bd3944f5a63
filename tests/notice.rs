//! Interruption notices on local clusters (`--chaos ...,notice=`): the window saves the
//! finished work-tables still needed, launches nothing on the doomed cluster, asks for the
//! replacement at once; a notice no loss follows releases the replacement. Every run's
//! published outputs are compared byte for byte with a run without faults.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::respawn;

/// A diamond with a tail, each stage a second of work and a file built from its inputs;
/// only the final is planned as a checkpoint (`policy: none`), so a loss throws away every
/// finished work-table the window does not save.
const DAG: &str = r#"name: notice-dag
cluster:
  provider: local
  market: spot
  mtti: 5s
  provision_time: 1s
  slots: 2
checkpoint:
  policy: none
  write_throughput: 100MB/s
stages:
  a:
    run: sleep 0.7 && mkdir -p {{ output }} && echo a > {{ output }}/part
    estimate: 1s
    output_size: 1KB
  b:
    needs: [a]
    run: sleep 0.7 && mkdir -p {{ output }} && (cat {{ inputs.a }}/part; echo b) > {{ output }}/part
    estimate: 1s
    output_size: 1KB
  c:
    needs: [a]
    run: sleep 0.7 && mkdir -p {{ output }} && (cat {{ inputs.a }}/part; echo c) > {{ output }}/part
    estimate: 1s
    output_size: 1KB
  d:
    needs: [b, c]
    run: sleep 0.7 && mkdir -p {{ output }} && (cat {{ inputs.b }}/part {{ inputs.c }}/part; echo d) > {{ output }}/part
    estimate: 1s
    output_size: 1KB
  e:
    needs: [d]
    run: sleep 0.7 && mkdir -p {{ output }} && (cat {{ inputs.d }}/part; echo e) > {{ output }}/part
    estimate: 1s
    output_size: 1KB
"#;

struct Dag {
    dir: tempfile::TempDir,
    file: PathBuf,
}

impl Dag {
    fn new() -> Dag {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dag.yaml");
        std::fs::write(&file, DAG).unwrap();
        Dag { dir, file }
    }

    fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    fn scratch(&self) -> PathBuf {
        self.dir.path().join("scratch")
    }

    /// `respawn run` for `batch`, with `chaos` if given: its JSON events.
    fn run(&self, batch: &str, chaos: Option<&str>) -> Vec<Value> {
        let mut args = vec![
            "run".to_string(),
            self.file.display().to_string(),
            "--batch".into(),
            batch.into(),
            "--store".into(),
            self.store().display().to_string(),
            "--scratch".into(),
            self.scratch().display().to_string(),
            "--format".into(),
            "json".into(),
        ];
        if let Some(chaos) = chaos {
            args.extend(["--chaos".into(), chaos.into()]);
        }
        let run = respawn(&args);
        run.success();
        run.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The files published for `batch`.
    fn outputs(&self, batch: &str) -> BTreeMap<String, Vec<u8>> {
        let root = self.store().join(format!("notice-dag/outputs/e/{batch}"));
        let mut files = BTreeMap::new();
        support::walk(&root, &root, &mut files);
        files.remove("_SUCCESS");
        files
    }

    /// `respawn cost --format json` of `batch`'s run.
    fn cost(&self, batch: &str) -> Value {
        let cost = respawn([
            "cost",
            "notice-dag",
            "--batch",
            batch,
            "--format",
            "json",
            "--store",
            &self.store().display().to_string(),
        ]);
        cost.success();
        cost.json()
    }

    /// Hours of interrupted attempts and recomputed producers, from `respawn cost`.
    fn lost_hours(&self, batch: &str) -> f64 {
        let waste = &self.cost(batch)["waste"];
        waste["interrupted_attempts"]["hours"].as_f64().unwrap()
            + waste["recomputed_producers"]["hours"].as_f64().unwrap()
    }

    /// `respawn report` of `batch`'s run: the page.
    fn report(&self, batch: &str) -> String {
        let page = self.dir.path().join(format!("{batch}.html"));
        let store = self.store().display().to_string();
        let args = [
            "report",
            "notice-dag",
            "--batch",
            batch,
            "--store",
            &store,
            "-o",
        ];
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        args.push(page.display().to_string());
        respawn(&args).success();
        std::fs::read_to_string(page).unwrap()
    }
}

/// `respawn cost` and the report count what the run's events say the notices did.
fn assert_window_shown(dag: &Dag, batch: &str, events: &[Value]) {
    let notices = &dag.cost(batch)["notices"];
    let warnings = of_kind(events, "notice");
    assert_eq!(notices["interruption_notices"], warnings.len(), "{notices}");
    assert_eq!(notices["lapsed"], of_kind(events, "notice-lapsed").len());
    let saved = of_kind(events, "committed")
        .into_iter()
        .filter(|e| e["window"] == true)
        .count();
    assert_eq!(notices["saved"]["count"], saved, "{notices}");
    let warned_and_lost = warnings.iter().any(|n| {
        of_kind(events, "cluster-lost")
            .iter()
            .any(|l| l["generation"] == n["generation"])
    });
    if warned_and_lost {
        assert!(
            notices["provisioning_overlap"]["count"].as_u64() > Some(0),
            "{notices}"
        );
    }
    if !warnings.is_empty() {
        let page = dag.report(batch);
        assert_eq!(page.matches("data-notice=").count(), warnings.len());
        assert!(
            page.contains("<table class=\"notices\">"),
            "the report's notice table"
        );
    }
}

fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["event"] == kind).collect()
}

fn assert_nothing_left(dag: &Dag) {
    let clusters: Vec<PathBuf> = walk_dirs(&dag.scratch())
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('g') && n.contains('-'))
        })
        .collect();
    assert!(clusters.is_empty(), "clusters left behind: {clusters:?}");
    let work: Vec<PathBuf> = walk_dirs(&dag.store())
        .into_iter()
        .filter(|p| p.ends_with("work"))
        .filter(|p| {
            std::fs::read_dir(p)
                .map(|mut d| d.next().is_some())
                .unwrap_or(false)
        })
        .collect();
    assert!(work.is_empty(), "work-tables left behind: {work:?}");
}

fn walk_dirs(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.push(entry.path());
                stack.push(entry.path());
            }
        }
    }
    out
}

#[test]
fn notices_save_the_window_ask_for_the_replacement_at_once_and_lose_nothing() {
    let dag = Dag::new();
    dag.run("clean", None);
    let want = dag.outputs("clean");
    assert!(!want.is_empty());
    let (mut with_notice, mut without) = (0.0, 0.0);
    let mut notices = 0;
    let mut saved = 0;
    for seed in 1..=4 {
        let plain = format!("plain-{seed}");
        dag.run(&plain, Some(&format!("mtti=3s,seed={seed},provision=1s")));
        assert_eq!(dag.outputs(&plain), want, "seed {seed} without notice");
        without += dag.lost_hours(&plain);

        let warned = format!("warned-{seed}");
        let events = dag.run(
            &warned,
            Some(&format!("mtti=3s,seed={seed},provision=1s,notice=1s")),
        );
        assert_eq!(dag.outputs(&warned), want, "seed {seed} with notice");
        assert_nothing_left(&dag);
        with_notice += dag.lost_hours(&warned);
        assert_window_shown(&dag, &warned, &events);
        for (at, event) in events.iter().enumerate() {
            if event["event"] != "notice" {
                continue;
            }
            notices += 1;
            assert_eq!(event["kind"], "interruption", "{event}");
            let generation = event["generation"].as_u64().unwrap();
            let notice_at = event["elapsed_s"].as_f64().unwrap();
            let rest = &events[at..];
            let lost = rest
                .iter()
                .position(|e| e["event"] == "cluster-lost" && e["generation"] == generation);
            let window = &rest[..lost.unwrap_or(rest.len())];
            let replacement = window
                .iter()
                .find(|e| e["event"] == "provision")
                .unwrap_or_else(|| panic!("no replacement asked for after {event}"));
            let asked_at = replacement["elapsed_s"].as_f64().unwrap();
            assert!(asked_at - notice_at <= 1.0, "{event} then {replacement}");
            assert!(
                !window
                    .iter()
                    .any(|e| e["event"] == "launch" && e["generation"] == generation),
                "a launch on a doomed cluster after {event}"
            );
            saved += window
                .iter()
                .filter(|e| e["event"] == "committed" && e["stage"] != "e")
                .count();
        }
    }
    println!(
        "lost work: with notices {with_notice:.5} h, without {without:.5} h; {notices} notices, {saved} work-tables saved"
    );
    assert!(notices > 0, "chaos gave no notice, so nothing was tested");
    assert!(saved > 0, "no window saved a work-table");
    assert!(
        with_notice < without,
        "lost work with notices {with_notice:.5} h, without {without:.5} h"
    );
}

#[test]
fn a_notice_no_loss_follows_releases_the_replacement_and_the_run_goes_on() {
    let dag = Dag::new();
    dag.run("clean", None);
    let want = dag.outputs("clean");
    let events = dag.run(
        "lapsed",
        Some("mtti=4s,seed=2,provision=1s,notice=1s,lapse=0.9"),
    );
    assert_eq!(dag.outputs("lapsed"), want);
    assert_nothing_left(&dag);
    assert_window_shown(&dag, "lapsed", &events);
    let lapsed = of_kind(&events, "notice-lapsed");
    assert!(!lapsed.is_empty(), "no notice lapsed: {events:?}");
    for event in lapsed {
        let generation = event["generation"].as_u64().unwrap();
        // The replacement asked for on that notice is released, and nothing ran on it.
        let replacement = generation + 1;
        assert!(
            events.iter().any(|e| e["event"] == "note"
                && e["message"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("releasing cluster {replacement}: the notice"))),
            "cluster {replacement} is released: {events:?}"
        );
        assert!(
            !events
                .iter()
                .any(|e| e["event"] == "launch" && e["generation"] == replacement),
            "something ran on the released replacement {replacement}"
        );
    }
}
