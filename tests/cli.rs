//! The commands through the real binary: output shapes, flags and exit codes.

mod support;
use support::{respawn, workflow};

#[test]
fn every_example_workflow_validates() {
    let files: Vec<_> = [
        "quickstart.yaml",
        "ecommerce-sessions.yaml",
        "wide-dag.yaml",
        "spark-chain.yaml",
    ]
    .iter()
    .map(|f| workflow(f))
    .collect();
    let run =
        respawn(std::iter::once("validate".as_ref()).chain(files.iter().map(|f| f.as_os_str())));
    run.success();
    assert_eq!(
        run.stdout.lines().filter(|l| l.starts_with("ok: ")).count(),
        4
    );
}

#[test]
fn validate_reports_every_file_and_fails_if_any_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "name: x\nstages:\n  a:\n    rn: echo\n").unwrap();
    let good = workflow("quickstart.yaml");
    let run = respawn(["validate".as_ref(), good.as_os_str(), bad.as_os_str()]);
    run.invalid_input();
    assert!(run.stdout.contains("ok: "));
    assert!(run.stderr.contains(&format!(
        "{}:4:5: unknown key `rn` in stage `a`",
        bad.display()
    )));
    assert!(run.stderr.contains("hint: did you mean `run`?"));
}

#[test]
fn validate_json_lists_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "name: x\nstages:\n  a:\n    run: echo\n    needs: [b]\n",
    )
    .unwrap();
    let run = respawn([
        "validate".as_ref(),
        bad.as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    run.invalid_input();
    let json = run.json();
    assert_eq!(json["valid"], false);
    let error = &json["files"][0]["errors"][0];
    assert_eq!(error["line"], 5);
    assert_eq!(error["column"], 13);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("needs `b`, which is not a stage")
    );
}

#[test]
fn plan_json_has_the_documented_fields() {
    let run = respawn([
        "plan".as_ref(),
        workflow("ecommerce-sessions.yaml").as_os_str(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    run.success();
    let json = run.json();
    assert_eq!(json["workflow"], "ecommerce-sessions");
    assert_eq!(
        json["critical_path"],
        serde_json::json!(["ingest", "purchases", "sessions", "report"])
    );
    assert!(json["makespan_estimate_s"].as_f64().unwrap() > 5.0 * 3600.0);
    let stages = json["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 4);
    for stage in stages {
        for key in [
            "name",
            "earliest_start_s",
            "slack_s",
            "critical",
            "checkpoint",
            "reason",
        ] {
            assert!(stage.get(key).is_some(), "missing {key} in {stage}");
        }
    }
    let report = stages.iter().find(|s| s["name"] == "report").unwrap();
    assert_eq!(report["checkpoint"], true);
    assert_eq!(report["reason"], "final output: always persisted");
}

#[test]
fn plan_explains_checkpoints_in_words() {
    let run = respawn(["plan".as_ref(), workflow("wide-dag.yaml").as_os_str()]);
    run.success();
    assert!(run.stdout.contains(
        "critical path: extract -> sessionize -> attribution -> features -> mart -> quality-report"
    ));
    let sessionize = run
        .stdout
        .lines()
        .find(|l| l.starts_with("sessionize"))
        .unwrap();
    assert!(
        sessionize.contains("critical; 2h30m unprotected work > interval"),
        "{sessionize}"
    );
    let fx = run
        .stdout
        .lines()
        .find(|l| l.starts_with("fx-rates"))
        .unwrap();
    assert!(
        fx.contains("ephemeral") && fx.contains("slack 3h55m"),
        "{fx}"
    );
}

#[test]
fn plan_mtti_overrides_the_file_and_fewer_checkpoints_come_with_rarer_interruptions() {
    let count = |mtti: &str| {
        let run = respawn([
            "plan".as_ref(),
            workflow("spark-chain.yaml").as_os_str(),
            "--mtti".as_ref(),
            mtti.as_ref(),
            "--format".as_ref(),
            "json".as_ref(),
        ]);
        run.success();
        let json = run.json();
        assert_eq!(
            json["mtti_s"].as_f64().unwrap(),
            respawn_core::workflow::units::parse_duration(mtti)
                .unwrap()
                .as_secs_f64()
        );
        json["stages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["checkpoint"] == true)
            .count()
    };
    let frequent = count("30m");
    let rare = count("1000h");
    assert!(
        rare < frequent,
        "{rare} checkpoints at 1000h, {frequent} at 30m"
    );
}

/// `respawn plan --format dot` of the wide example DAG, which succeeds.
fn plan_dot() -> support::Run {
    let run = respawn([
        "plan".as_ref(),
        workflow("wide-dag.yaml").as_os_str(),
        "--format".as_ref(),
        "dot".as_ref(),
    ]);
    run.success();
    run
}

#[test]
fn plan_dot_highlights_the_critical_path_and_checkpoints() {
    let run = plan_dot();
    assert!(run.stdout.starts_with("digraph \"nightly-warehouse\" {"));
    assert!(
        run.stdout
            .contains("\"extract\" -> \"sessionize\" [color=\"#d62728\", penwidth=2];")
    );
    assert!(run.stdout.contains("\"extract\" -> \"dim-users\";"));
    let sessionize = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("\"sessionize\" ["))
        .unwrap();
    assert!(
        sessionize.contains("filled") && sessionize.contains("bold"),
        "{sessionize}"
    );
}

#[test]
#[ignore = "needs Graphviz's dot: ./test installs it and runs this"]
fn graphviz_renders_the_plan_s_dot_output() {
    let run = plan_dot();
    let mut child = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("Graphviz's `dot` runs (apt-get install graphviz; ./test does)");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(run.stdout.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "graphviz rejected the dot output");
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
}

#[test]
fn simulate_json_has_the_documented_fields_and_is_deterministic() {
    let args = |seed: &str| {
        respawn([
            "simulate".as_ref(),
            workflow("ecommerce-sessions.yaml").as_os_str(),
            "--trials".as_ref(),
            "300".as_ref(),
            "--seed".as_ref(),
            seed.as_ref(),
            "--format".as_ref(),
            "json".as_ref(),
        ])
    };
    let first = args("7");
    first.success();
    let json = first.json();
    assert!(json["lower_bound_s"].as_f64().unwrap() > 0.0);
    assert!(json["chain_optimum_s"].as_f64().unwrap() >= json["lower_bound_s"].as_f64().unwrap());
    let names: Vec<_> = json["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["none", "all", "interval", "auto", "on-demand"]);
    for policy in json["policies"].as_array().unwrap() {
        for key in [
            "mean_makespan_s",
            "p95_makespan_s",
            "mean_cost",
            "mean_interruptions",
            "mean_checkpoint_gb_hours",
        ] {
            assert!(policy[key].is_number(), "missing {key} in {policy}");
        }
    }
    assert_eq!(first.stdout, args("7").stdout);
    assert_ne!(first.stdout, args("8").stdout);
}

#[test]
fn simulate_replays_a_trace() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.csv");
    std::fs::write(&trace, "time\n1h\n2h30m\n10000\n").unwrap();
    let run = respawn([
        "simulate".as_ref(),
        workflow("spark-chain.yaml").as_os_str(),
        "--trace".as_ref(),
        trace.as_os_str(),
        "--trials".as_ref(),
        "3".as_ref(),
        "--format".as_ref(),
        "json".as_ref(),
    ]);
    run.success();
    let json = run.json();
    let none = &json["policies"][0];
    assert_eq!(
        none["mean_interruptions"], 3.0,
        "all three trace times hit a running spot cluster"
    );
    let on_demand = &json["policies"][4];
    assert_eq!(on_demand["mean_interruptions"], 0.0);
    assert!(run.stdout.len() > 10);
}

#[test]
fn a_bad_trace_is_invalid_input_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.csv");
    std::fs::write(&trace, "1h\nsoon\n").unwrap();
    let run = respawn([
        "simulate".as_ref(),
        workflow("quickstart.yaml").as_os_str(),
        "--trace".as_ref(),
        trace.as_os_str(),
    ]);
    run.invalid_input();
    assert!(
        run.stderr
            .contains(&format!("{}: line 2:", trace.display())),
        "{}",
        run.stderr
    );
}

#[test]
fn bad_flags_are_invalid_input() {
    respawn(["plan", "workflows/quickstart.yaml", "--mtti", "30"]).invalid_input();
    respawn(["plan", "workflows/quickstart.yaml", "--mtti", "0s"]).invalid_input();
    respawn(["plan", "workflows/quickstart.yaml", "--format", "yaml"]).invalid_input();
    respawn(["simulate", "workflows/quickstart.yaml", "--trials", "0"]).invalid_input();
    respawn(["frobnicate"]).invalid_input();
    let run = respawn(["plan", "workflows/missing.yaml"]);
    run.invalid_input();
    assert!(
        run.stderr
            .contains("workflows/missing.yaml:1:1: cannot read the workflow file"),
        "{}",
        run.stderr
    );
}

#[test]
fn help_and_version_succeed() {
    let run = respawn(["--help"]);
    run.success();
    for command in ["validate", "plan", "simulate"] {
        assert!(run.stdout.contains(command));
    }
    respawn(["--version"]).success();
}

#[test]
fn simulate_text_never_prints_negative_zero() {
    let run = respawn(["simulate", "workflows/spark-chain.yaml", "--trials", "50"]);
    run.success();
    assert!(!run.stdout.contains("-0.0"), "{}", run.stdout);
}

/// A one-stage workflow run once in `dir` (its store: `dir/store`).
fn run_here(dir: &std::path::Path) -> std::process::Output {
    support::command()
        .current_dir(dir)
        .args(["run", "here.yaml", "--store", "store"])
        .env("RESPAWN_SCRATCH", dir.join("scratch"))
        .output()
        .unwrap()
}

#[test]
fn a_report_that_cannot_be_written_is_exit_one_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("here.yaml"),
        "name: here\nstages:\n  a:\n    run: mkdir -p {{ output }}\n    estimate: 1s\n",
    )
    .unwrap();
    assert_eq!(run_here(dir.path()).status.code(), Some(0));
    let store = dir.path().join("store").display().to_string();
    for target in ["/dev/full", "/nonexistent-dir/report.html"] {
        let run = respawn(["report", "here", "--store", &store, "-o", target]);
        assert_eq!(run.code, 1, "{target}: {}", run.stderr);
        assert!(run.stderr.contains(target), "{}", run.stderr);
    }
}

#[test]
fn a_workflow_named_by_its_bare_file_name_runs_its_stages_from_its_own_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("here.yaml"),
        "name: here\nstages:\n  a:\n    run: mkdir -p {{ output }} && cp {{ workflow_dir }}/data.txt {{ output }}/\n    estimate: 1s\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("data.txt"), "beside the workflow\n").unwrap();
    let output = run_here(dir.path());
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Leaves a temporary file of the local store, as a writer killed before its rename
/// would, in `dir`: its writer's process is gone and it was last written two minutes ago.
fn plant_stale_temp(dir: &std::path::Path) -> std::path::PathBuf {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    child.wait().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let temp = dir.join(format!(".respawn-tmp-{}-0-0", child.id()));
    let two_minutes_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    std::fs::File::create(&temp)
        .unwrap()
        .set_modified(two_minutes_ago)
        .unwrap();
    temp
}

#[test]
fn temporary_files_left_by_a_killed_writer_are_collected_on_resume_and_republish() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("fail-once");
    std::fs::write(&flag, "").unwrap();
    std::fs::write(
        dir.path().join("here.yaml"),
        format!(
            "name: here\nstages:\n  a:\n    run: mkdir -p {{{{ output }}}} && echo a > {{{{ output }}}}/a\n    estimate: 1s\n    checkpoint: always\n  b:\n    needs: [a]\n    run: test ! -e {flag} && mkdir -p {{{{ output }}}} && cp {{{{ inputs.a }}}}/a {{{{ output }}}}/b\n    estimate: 1s\n",
            flag = flag.display()
        ),
    )
    .unwrap();
    let run = |extra: &[&str]| {
        support::command()
            .current_dir(dir.path())
            .args(["run", "here.yaml", "--batch", "one", "--store", "store"])
            .args(extra)
            .env("RESPAWN_SCRATCH", dir.path().join("scratch"))
            .output()
            .unwrap()
    };
    assert_eq!(run(&[]).status.code(), Some(4), "b fails the first time");
    let runs = dir.path().join("store/here/runs");
    let run_dir = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let in_work = plant_stale_temp(&run_dir.join("work/b/1"));
    std::fs::remove_file(&flag).unwrap();
    assert_eq!(run(&[]).status.code(), Some(0), "the resumed run succeeds");
    assert!(!in_work.exists(), "collected when the run resumed");
    assert!(
        !run_dir.join("work").exists(),
        "the run's work-tables are all gone once it succeeded"
    );
    let output = dir.path().join("store/here/outputs/b/one");
    let in_output = plant_stale_temp(&output);
    assert_eq!(run(&["--force"]).status.code(), Some(0));
    assert!(
        !in_output.exists(),
        "collected when the output was published again"
    );
    assert!(output.join("b").exists());
}
