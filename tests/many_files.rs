//! Work-tables longer than one manifest part (`ledger::PART_FILES`, 10,000 files; here
//! 500 through the `RESPAWN_PART_FILES` test hook, so that debug builds take seconds):
//! their COMMIT and `_SUCCESS` name part objects, and a run killed between its stages resumes
//! from them, restoring, verifying and publishing a part at a time, with the same outputs
//! byte for byte as a run without faults. On the S3 test server and on the local store.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use support::workspace::Workspace;

const BATCH: &str = "b1";
/// Files per part in these runs.
const PART: &str = "500";
/// Three parts of the list, the last short.
const FILES: usize = 1_234;

/// `gen` writes FILES files of a few bytes in folders of 50 (its own folder names sort
/// around `/`: `d-…` before `d/…`); `copy` copies them and is published.
fn workflow() -> String {
    format!(
        "name: many
cluster:
  provider: local
  market: on-demand
  slots: 1
checkpoint:
  policy: all
stages:
  gen:
    run: |
      python3 -c \"import os, sys
      out = sys.argv[1]
      for i in range({FILES}):
          d = os.path.join(out, 'd=%02d' % (i // 50), 'x' if i % 3 else 'x-y')
          os.makedirs(d, exist_ok=True)
          open(os.path.join(d, 'f%05d.txt' % i), 'w').write('%d\\n' % i)
      \" {{{{ output }}}}
    estimate: 10s
  copy:
    needs: [gen]
    run: cp -r {{{{ inputs.gen }}}}/. {{{{ output }}}}
    estimate: 10s
    final: true
"
    )
}

fn run(workspace: &Workspace, crash_at: Option<&str>) -> support::Run {
    let file = workspace.file_arg();
    let args = workspace.args(&["run", &file, "--batch", BATCH]);
    let mut env = workspace.env();
    env.push(("RESPAWN_PART_FILES", PART.to_string()));
    if let Some(point) = crash_at {
        env.push(("RESPAWN_CRASH_AT", point.to_string()));
    }
    support::respawn_env(args, &env, &[])
}

/// The published output's data files, by path, and its `_SUCCESS`.
fn published(workspace: &Workspace) -> (BTreeMap<String, Vec<u8>>, Value) {
    let prefix = format!("many/outputs/copy/{BATCH}/");
    let mut files = BTreeMap::new();
    let mut success = Value::Null;
    for (key, bytes) in workspace.objects(&prefix) {
        let path = key.strip_prefix(&prefix).unwrap().to_string();
        if path == "_SUCCESS" {
            success = serde_json::from_slice(&bytes).unwrap();
        } else if !path.starts_with("_SUCCESS.parts/") {
            files.insert(path, bytes);
        }
    }
    (files, success)
}

fn a_run_killed_between_stages_resumes_from_manifest_parts(s3: bool) {
    let reference = Workspace::new("many", &workflow());
    run(&reference, None).success();
    let (expected, _) = published(&reference);
    assert_eq!(expected.len(), FILES);

    let workspace = Workspace::on("many", &workflow(), s3);
    let killed = run(&workspace, Some("before-commit:copy"));
    assert_eq!(killed.code, -1, "killed\n{}", killed.stderr);
    let commit: Value = serde_json::from_slice(
        &workspace
            .objects("many/runs/")
            .into_iter()
            .find(|(k, _)| k.ends_with("/gen/COMMIT"))
            .unwrap()
            .1,
    )
    .unwrap();
    let parts = commit["parts"].as_array().expect("the COMMIT names parts");
    assert_eq!(parts.len(), 3, "{commit}");
    assert_eq!(
        commit["files"].as_array().unwrap().len(),
        0,
        "no file inline"
    );
    let counted: u64 = parts.iter().map(|p| p["files"].as_u64().unwrap()).sum();
    assert_eq!(counted, FILES as u64);

    // The resumed run verifies gen's COMMIT, restores it into a new cluster a part at a
    // time, runs copy, and publishes it with a `_SUCCESS` of its own parts.
    let resumed = run(&workspace, None);
    resumed.success();
    assert!(
        resumed.stdout.contains("gen: checkpoint restored"),
        "{}",
        resumed.stdout
    );
    let (files, success) = published(&workspace);
    assert!(
        files == expected,
        "the outputs are the reference's, byte for byte"
    );
    let parts = success["parts"]
        .as_array()
        .expect("the _SUCCESS names parts");
    assert_eq!(parts.len(), 3, "{success}");
    for part in parts {
        assert!(part["key"].as_str().unwrap().contains("/_SUCCESS.parts/"));
    }
    assert!(
        workspace
            .objects("many/runs/")
            .keys()
            .all(|k| !k.contains("/work/")),
        "the work-tables and their parts are deleted once the output is published"
    );
    let status = workspace.respawn("status", &["--batch", BATCH]);
    status.success();
}

#[test]
fn on_the_s3_server_a_run_killed_between_stages_resumes_from_manifest_parts() {
    a_run_killed_between_stages_resumes_from_manifest_parts(true);
}

#[test]
fn on_the_local_store_a_run_killed_between_stages_resumes_from_manifest_parts() {
    a_run_killed_between_stages_resumes_from_manifest_parts(false);
}
