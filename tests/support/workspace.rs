//! One test workspace: a workflow file in a temporary directory, its store (a local
//! directory, or the `team` prefix of a bucket on the S3 test server), its scratch
//! directory, and the environment `respawn` runs with. The fixtures of the schedule tests
//! (`tick`, `schedule`, `backfill`) are built on it rather than each carrying a copy.

use super::s3_server::{BUCKET, S3Server};
use super::{Run, respawn_env, walk};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub struct Workspace {
    pub dir: tempfile::TempDir,
    /// The workflow file, `<dir>/<name>.yaml`.
    pub file: PathBuf,
    pub s3: Option<S3Server>,
}

impl Workspace {
    /// `text` as the workflow `<name>.yaml` with a local-directory store.
    pub fn new(name: &str, text: &str) -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&file, text).unwrap();
        Workspace {
            dir,
            file,
            s3: None,
        }
    }

    /// The same, with its store on the S3 test server when `s3`.
    pub fn on(name: &str, text: &str, s3: bool) -> Workspace {
        let mut workspace = Workspace::new(name, text);
        workspace.s3 = s3.then(S3Server::start);
        workspace
    }

    /// A path in the workspace's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Replaces the workflow file's text.
    pub fn write(&self, text: &str) {
        std::fs::write(&self.file, text).unwrap();
    }

    /// The workflow file, as an argument.
    pub fn file_arg(&self) -> String {
        self.file.display().to_string()
    }

    /// The store as `--store` names it.
    pub fn store_url(&self) -> String {
        match &self.s3 {
            Some(_) => format!("s3://{BUCKET}/team"),
            None => self.path("store").display().to_string(),
        }
    }

    /// Where the store's objects are on disk.
    pub fn store_root(&self) -> PathBuf {
        match &self.s3 {
            Some(server) => server.root().join(BUCKET).join("team"),
            None => self.path("store"),
        }
    }

    /// What `respawn` runs with: its scratch directory, and the S3 server's endpoint and
    /// credentials when the store is there.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![(
            "RESPAWN_SCRATCH",
            self.path("scratch").display().to_string(),
        )];
        if let Some(server) = &self.s3 {
            env.extend(server.env());
        }
        env
    }

    /// `args` followed by `--store` and the store.
    pub fn args(&self, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(["--store".into(), self.store_url()]);
        all
    }

    /// `respawn COMMAND FILE REST... --store STORE` in this workspace's environment.
    pub fn respawn(&self, command: &str, rest: &[&str]) -> Run {
        let file = self.file_arg();
        let mut args = vec![command, file.as_str()];
        args.extend_from_slice(rest);
        respawn_env(self.args(&args), &self.env(), &[])
    }

    /// Every object of the store under `prefix`, by key.
    pub fn objects(&self, prefix: &str) -> BTreeMap<String, Vec<u8>> {
        let root = self.store_root();
        let mut objects = BTreeMap::new();
        walk(&root, &root.join(prefix), &mut objects);
        objects
    }

    /// The files under `<workflow>/outputs/<stage>/` named `name`, by batch, as text.
    pub fn outputs(&self, workflow: &str, stage: &str, name: &str) -> BTreeMap<String, String> {
        let prefix = format!("{workflow}/outputs/{stage}/");
        let suffix = format!("/{name}");
        self.objects(&prefix)
            .into_iter()
            .filter_map(|(key, bytes)| {
                let batch = key.strip_prefix(&prefix)?.strip_suffix(&suffix)?;
                Some((batch.to_string(), String::from_utf8(bytes).unwrap()))
            })
            .collect()
    }

    /// How many run records each batch of `workflow` has.
    pub fn runs(&self, workflow: &str) -> BTreeMap<String, usize> {
        let mut runs = BTreeMap::new();
        for (key, bytes) in self.objects(&format!("{workflow}/runs")) {
            if key.ends_with("/run.json") {
                let record: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                *runs
                    .entry(record["batch"].as_str().unwrap().to_string())
                    .or_insert(0) += 1;
            }
        }
        runs
    }
}
