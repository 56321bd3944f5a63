//! Several batches of one workflow at once, through the real binary: each batch has its own
//! lease, so two orchestrators run two batches side by side, while the same batch twice
//! is still refused; `respawn interrupt` then needs to be told which batch.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Stdio};

struct Workflow {
    dir: tempfile::TempDir,
    file: PathBuf,
}

impl Workflow {
    /// Two stages; the first waits for `release` to exist, so a run can be held open.
    fn new() -> Workflow {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pair.yaml");
        let release = dir.path().join("release");
        std::fs::write(
            &file,
            format!(
                "name: pair\n\
                 cluster: {{ provider: local, market: on-demand }}\n\
                 stages:\n  \
                   wait:\n    \
                     run: while [ ! -e {release} ]; do sleep 0.1; done; mkdir -p {{{{ output }}}} && echo {{{{ batch }}}} > {{{{ output }}}}/b\n    \
                     estimate: 1m\n  \
                   copy:\n    \
                     needs: [wait]\n    \
                     run: mkdir -p {{{{ output }}}} && cp {{{{ inputs.wait }}}}/b {{{{ output }}}}/b\n    \
                     estimate: 1m\n",
                release = release.display()
            ),
        )
        .unwrap();
        Workflow { dir, file }
    }

    fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        args.extend([
            "--store".to_string(),
            self.dir.path().join("store").display().to_string(),
        ]);
        args
    }

    /// Starts `respawn run --batch BATCH --format json` and waits for its first launch.
    fn start(&self, batch: &str) -> Child {
        let file = self.file.display().to_string();
        let mut child = support::command()
            .args(self.args(&["run", &file, "--batch", batch, "--format", "json"]))
            .env("RESPAWN_SCRATCH", self.dir.path().join("scratch"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
            if event["event"] == "launch" {
                break;
            }
        }
        // Keep reading so the orchestrator never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        child
    }

    fn respawn(&self, extra: &[&str]) -> support::Run {
        support::respawn_env(
            self.args(extra),
            &[(
                "RESPAWN_SCRATCH",
                self.dir.path().join("scratch").display().to_string(),
            )],
            &[],
        )
    }

    fn output(&self, batch: &str) -> String {
        let path = self
            .dir
            .path()
            .join(format!("store/pair/outputs/copy/{batch}/b"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

#[test]
fn two_batches_run_side_by_side_and_the_same_batch_twice_is_refused() {
    let workflow = Workflow::new();
    let file = workflow.file.display().to_string();
    let mut first = workflow.start("2026-11-01");
    let mut second = workflow.start("2026-11-02");

    let again = workflow.respawn(&["run", &file, "--batch", "2026-11-01"]);
    assert_eq!(again.code, 5, "{}", again.stderr);
    assert!(
        again.stderr.contains("batch 2026-11-01 of workflow `pair`")
            && again.stderr.contains(&format!("pid {}", first.id())),
        "{}",
        again.stderr
    );

    let interrupt = workflow.respawn(&["interrupt", "pair"]);
    assert_eq!(interrupt.code, 2, "{}", interrupt.stderr);
    assert!(
        interrupt.stderr.contains(
            "several batches of workflow `pair` are in progress (2026-11-01, 2026-11-02)"
        ),
        "{}",
        interrupt.stderr
    );
    let named = workflow.respawn(&["interrupt", "pair", "--batch", "2026-11-02"]);
    assert_eq!(named.code, 2, "{}", named.stderr);
    assert!(
        named.stderr.contains("on-demand"),
        "the batch is found; its cluster is on-demand: {}",
        named.stderr
    );

    std::fs::write(workflow.dir.path().join("release"), "").unwrap();
    assert_eq!(first.wait().unwrap().code(), Some(0));
    assert_eq!(second.wait().unwrap().code(), Some(0));
    assert_eq!(workflow.output("2026-11-01"), "2026-11-01\n");
    let status = workflow.respawn(&[
        "status",
        "pair",
        "--batch",
        "2026-11-01",
        "--format",
        "json",
    ]);
    status.success();
    assert_eq!(status.json()["batch"], "2026-11-01");
    assert_eq!(status.json()["status"], "succeeded");
    let none = workflow.respawn(&["status", "pair", "--batch", "2026-11-09"]);
    none.invalid_input();
    assert!(
        none.stderr.contains("no run of batch `2026-11-09`"),
        "{}",
        none.stderr
    );
    assert_eq!(workflow.output("2026-11-02"), "2026-11-02\n");
}
