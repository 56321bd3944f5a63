//! Snapshot tests (insta) of what commands print, where a `contains` check would miss a
//! field that vanished, was renamed or changed its meaning: `status` of a finished
//! quickstart run, as JSON and as text. What differs from run to run (run ids, times,
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
