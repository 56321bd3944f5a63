//! Snapshot tests (insta) of what commands print, where a `contains` check would miss a
//! field that vanished, was renamed or changed its meaning: `status` of a finished
//! quickstart run, as JSON and as text; `plan` of the e-commerce workflow from its file
//! alone, as JSON and as text; `batches` of a daily schedule no run has touched. What differs from run to run (run ids, times,
//! paths of the temporary store) is replaced by a placeholder before the comparison.
//!
//! A changed output fails with a diff; `cargo insta review` (or `INSTA_UPDATE=always`)
//! accepts the new one into `tests/snapshots/`.

mod support;

use serde_json::Value;

/// A finished quickstart run of batch `b1` in a new store, and the store's path.
fn quickstart() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store").display().to_string();
    let file = support::workflow("quickstart.yaml").display().to_string();
    let scratch = dir.path().join("scratch").display().to_string();
    support::respawn_env(
        ["run", &file, "--batch", "b1", "--store", &store],
        &[("RESPAWN_SCRATCH", scratch)],
        &[],
    )
    .success();
    (dir, store)
}

/// `text` with the run's own values (its id, times, the store's path) replaced.
fn redact_text(text: &str, run: &Value, store: &str) -> String {
    let field = |name: &str| run[name].as_str().unwrap_or("-").to_string();
    text.replace(store, "[store]")
        .replace(&field("run_id"), "[run_id]")
        .replace(&format!("started {}", field("started_at")), "started [at]")
        .replace(
            &format!("finished {}", field("finished_at")),
            "finished [at]",
        )
}

/// The JSON of `status` with the run's own values replaced, field by field.
fn redact_json(mut run: Value, store: &str) -> Value {
    let id = run["run_id"].as_str().unwrap().to_string();
    for field in ["run_id", "started_at", "finished_at"] {
        run[field] = format!("[{field}]").into();
    }
    for change in run["markets"].as_array_mut().into_iter().flatten() {
        change["at"] = "[at]".into();
    }
    for stage in run["stages"].as_array_mut().into_iter().flatten() {
        let log = stage["log"].as_str().unwrap_or("").to_string();
        stage["log"] = log
            .replace(store, "[store]")
            .replace(&id, "[run_id]")
            .into();
    }
    run
}

#[test]
fn status_of_a_finished_run_keeps_its_json_fields_and_its_table() {
    let (_dir, store) = quickstart();
    let json = support::respawn([
        "status",
        "quickstart",
        "--store",
        &store,
        "--format",
        "json",
    ]);
    json.success();
    let run = json.json();
    insta::assert_json_snapshot!("status_json", redact_json(run.clone(), &store));

    let text = support::respawn(["status", "quickstart", "--store", &store]);
    text.success();
    insta::assert_snapshot!("status_text", redact_text(&text.stdout, &run, &store));
}

#[test]
fn plan_from_the_file_alone_keeps_its_json_fields_and_its_table() {
    let file = support::workflow("ecommerce-sessions.yaml")
        .display()
        .to_string();
    let json = support::respawn(["plan", &file, "--no-history", "--format", "json"]);
    json.success();
    insta::assert_json_snapshot!("plan_json", json.json());
    let text = support::respawn(["plan", &file, "--no-history"]);
    text.success();
    insta::assert_snapshot!("plan_text", text.stdout);
}

#[test]
fn batches_of_a_schedule_no_run_touched_lists_each_due_date_missing() {
    let dir = tempfile::tempdir().unwrap();
    // An empty store: no run has written to it.
    std::fs::create_dir(dir.path().join("store")).unwrap();
    let store = dir.path().join("store").display().to_string();
    let file = support::workflow("orders-daily.yaml").display().to_string();
    let now = "2026-11-05T12:00:00Z";
    let args = |format: &'static str| {
        [
            "batches", &file, "--store", &store, "--now", now, "--format", format,
        ]
        .map(String::from)
    };
    let text = support::respawn(args("text"));
    text.success();
    insta::assert_snapshot!("batches_text", text.stdout.replace(&store, "[store]"));
    let json = support::respawn(args("json"));
    json.success();
    insta::assert_json_snapshot!("batches_json", json.json());
}
