//! What a stage's output may hold and how it is published: a stage that writes its own
//! `_SUCCESS` marker (Spark does, by default) and Hadoop's hidden `.crc` files, on the
//! local store and on the S3 test server; final outputs copied inside the store.

mod support;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use support::s3_server::{BUCKET, S3Server};

const BATCH: &str = "2019-10-01";

/// A final stage that writes as Spark does: two part files, their hidden checksums and
/// its own (empty) `_SUCCESS` marker.
const SPARK_LIKE: &str = "name: marker
cluster:
  provider: local
  market: on-demand
stages:
  table:
    run: >-
      mkdir -p {{ output }} &&
      printf 'a,1\\n' > {{ output }}/part-00000.csv &&
      printf 'b,2\\n' > {{ output }}/part-00001.csv &&
      printf crc > {{ output }}/.part-00000.csv.crc &&
      touch {{ output }}/_SUCCESS &&
      printf crc > {{ output }}/._SUCCESS.crc
    final: true
";

struct Place {
    dir: tempfile::TempDir,
    s3: Option<S3Server>,
}

impl Place {
    fn new(s3: bool) -> Place {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("marker.yaml"), SPARK_LIKE).unwrap();
        Place {
            dir,
            s3: s3.then(S3Server::start),
        }
    }

    fn store(&self) -> String {
        match &self.s3 {
            Some(_) => format!("s3://{BUCKET}/team"),
            None => self.dir.path().join("store").display().to_string(),
        }
    }

    /// The store's objects on disk.
    fn store_root(&self) -> PathBuf {
        match &self.s3 {
            Some(s3) => s3.root().join(BUCKET).join("team"),
            None => self.dir.path().join("store"),
        }
    }

    fn run(&self, extra: &[&str]) -> support::Run {
        let file = self.dir.path().join("marker.yaml").display().to_string();
        let mut args = vec!["run", &file, "--batch", BATCH];
        args.extend_from_slice(extra);
        let store = self.store();
        args.extend(["--store", &store]);
        let mut env = vec![(
            "RESPAWN_SCRATCH",
            self.dir.path().join("scratch").display().to_string(),
        )];
        if let Some(s3) = &self.s3 {
            env.extend(s3.env());
        }
        support::respawn_env(args, &env, &[])
    }

    fn published(&self) -> (Value, Vec<String>) {
        let folder = self.store_root().join("marker/outputs/table").join(BATCH);
        let manifest = std::fs::read(folder.join("_SUCCESS")).expect("a published _SUCCESS");
        let manifest: Value = serde_json::from_slice(&manifest).expect("respawn's manifest");
        (manifest, names(&folder))
    }
}

fn names(folder: &Path) -> Vec<String> {
    let mut all = BTreeMap::new();
    walk_all(folder, folder, &mut all);
    all.into_keys().collect()
}

/// Every file under `dir`, hidden ones included.
fn walk_all(root: &Path, dir: &Path, out: &mut BTreeMap<String, ()>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk_all(root, &path, out);
        } else {
            let name = path.strip_prefix(root).unwrap().display().to_string();
            out.insert(name, ());
        }
    }
}

fn listed(manifest: &Value) -> Vec<String> {
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

fn a_stage_with_its_own_success_marker(s3: bool) {
    let place = Place::new(s3);
    place.run(&[]).success();
    let (manifest, files) = place.published();
    // The stage's marker and Hadoop's checksums are not data: the manifest lists only the
    // part files, and respawn's `_SUCCESS` is the only marker in the folder.
    assert_eq!(listed(&manifest), ["part-00000.csv", "part-00001.csv"]);
    assert_eq!(files, ["_SUCCESS", "part-00000.csv", "part-00001.csv"]);
    assert_eq!(manifest["stage"], "table");
    // The same batch again finds its output usable: nothing to do, not a damaged store.
    let again = place.run(&[]);
    again.success();
    let said = format!("{}{}", again.stdout, again.stderr);
    assert!(said.contains("nothing to do"), "{said}");
    // Reprocessing replaces it, and it is still usable afterwards.
    place.run(&["--force"]).success();
    place.run(&[]).success();
    let (manifest, files) = place.published();
    assert_eq!(listed(&manifest), ["part-00000.csv", "part-00001.csv"]);
    assert_eq!(files, ["_SUCCESS", "part-00000.csv", "part-00001.csv"]);
}

#[test]
fn a_stage_that_writes_its_own_success_marker_publishes_a_usable_output_on_the_local_store() {
    a_stage_with_its_own_success_marker(false);
}

#[test]
fn a_stage_that_writes_its_own_success_marker_publishes_a_usable_output_on_s3() {
    a_stage_with_its_own_success_marker(true);
}

#[test]
fn final_outputs_on_s3_are_published_with_copy_object_and_without_the_work_tag() {
    let place = Place::new(true);
    place.run(&[]).success();
    let s3 = place.s3.as_ref().unwrap();
    assert_eq!(
        s3.faults.copy_object_calls.load(Ordering::Relaxed),
        2,
        "one server-side copy per published file"
    );
    for name in ["part-00000.csv", "part-00001.csv"] {
        let key = format!("team/marker/outputs/table/{BATCH}/{name}");
        assert_eq!(
            s3.tags_of(BUCKET, &key),
            Vec::new(),
            "{key} is not work data"
        );
        let bytes = std::fs::read(s3.root().join(BUCKET).join(&key)).unwrap();
        assert!(bytes.ends_with(b"\n"), "{key}: {bytes:?}");
    }
}
