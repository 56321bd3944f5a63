//! `cluster.interruptions: {trace: FILE}`: a capacity trace as the planning model. The
//! plan's MTTI is the trace's mean time between losses, `simulate` without `--trace` plays
//! the planning trace exactly as `simulate --trace` plays it, and a trace that cannot be
//! read is an error at the line that names it.

mod support;

/// A chain on two slots, `market: auto` with a deadline, planned from `traces/t.json`.
const WORKFLOW: &str = "name: traced
cluster:
  provider: local
  market: auto
  mtti: 2h
  provision_time: 10m
  slots: 2
  fallback: {deadline: 12h}
  interruptions: {trace: traces/t.json}
cost: {spot_per_hour: 1.0, on_demand_per_hour: 3.0}
stages:
  a: {run: 'true', estimate: 1h, output_size: 6GB}
  b: {run: 'true', needs: [a], estimate: 2h, output_size: 6GB}
  c: {run: 'true', needs: [b], estimate: 1h, output_size: 1GB}
";

/// Two nodes a minute apart: 5 h up, one node lost for 2 h, then none for 40 minutes,
/// repeating. 420 minutes held; losses of a half and of all: 1.5 losses.
fn trace() -> String {
    let mut counts = vec![2; 300];
    counts.extend(vec![1; 120]);
    counts.extend(vec![0; 40]);
    let text: Vec<String> = counts.iter().map(u32::to_string).collect();
    format!(
        r#"{{"metadata": {{"gap_seconds": 60}}, "data": [{}]}}"#,
        text.join(",")
    )
}

fn lab(trace_text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("traces")).unwrap();
    std::fs::write(dir.path().join("traces/t.json"), trace_text).unwrap();
    let file = dir.path().join("traced.yaml");
    std::fs::write(&file, WORKFLOW).unwrap();
    let file = file.display().to_string();
    (dir, file)
}

#[test]
fn the_plan_takes_its_mtti_from_the_trace_and_says_so() {
    let (_dir, file) = lab(&trace());
    let run = support::respawn(["plan", &file, "--format", "json", "--no-history"]);
    run.success();
    let plan = run.json();
    let mtti = plan["mtti_s"].as_f64().unwrap();
    assert!((mtti - 420.0 * 60.0 / 1.5).abs() < 1.0, "{plan}");
    let source = plan["mtti_source"].as_str().unwrap();
    assert!(source.contains("planning trace traces/t.json"), "{source}");
}

#[test]
fn simulate_plays_the_planning_trace_as_simulate_trace_plays_it() {
    let (dir, file) = lab(&trace());
    let simulate = |extra: &[&str]| {
        let mut args = vec!["simulate", file.as_str(), "--trials", "200", "--seed", "3"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["--format", "json", "--no-history"]);
        let run = support::respawn(args);
        run.success();
        run.json()["policies"].clone()
    };
    let trace_file = dir.path().join("traces/t.json").display().to_string();
    let planned = simulate(&[]);
    let replayed = simulate(&["--trace", &trace_file]);
    assert_eq!(planned, replayed);
    let auto = planned
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "auto")
        .unwrap();
    assert!(auto["mean_interruptions"].as_f64().unwrap() > 0.0, "{auto}");
}

#[test]
fn a_planning_trace_that_cannot_be_read_is_an_error_at_its_line() {
    let (dir, file) = lab(r#"{"metadata": {"gap_seconds": 60}, "data": [2, 1, -3]}"#);
    let run = support::respawn(["validate", &file]);
    run.invalid_input();
    assert!(run.stderr.contains("traced.yaml:9:"), "{}", run.stderr);
    assert!(
        run.stderr.contains("t.json") && run.stderr.contains("`data[2]` is -3"),
        "{}",
        run.stderr
    );
    std::fs::remove_file(dir.path().join("traces/t.json")).unwrap();
    let run = support::respawn(["plan", &file]);
    run.invalid_input();
    assert!(run.stderr.contains("cannot read it"), "{}", run.stderr);
}
