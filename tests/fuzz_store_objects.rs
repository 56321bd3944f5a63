//! Damaged objects in the store, at random: a run record, an event, a COMMIT manifest, a
//! lease or a `_SUCCESS` manifest of a real store (one run stopped after a COMMIT, one
//! finished) is cut, emptied, has bytes flipped or inserted, or has a JSON value replaced
//! or removed; then `status`, `history`, `gc --dry-run` and `run` (resuming the stopped
//! run) go through the real binary. Never a panic; each command ends with exit 0, or exit 3
//! naming the damaged object; a `run` that ends with 0 has healed itself correctly (its
//! published outputs equal those of a run without damage).

mod support;

use proptest::prelude::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const WORKFLOW: &str = "ecommerce-sessions";
const STOPPED: &str = "2019-10-01";
const FINISHED: &str = "2019-10-02";
/// See the targets in [`template`].
const DAMAGE_THE_STOPPED_RECORD: bool = true;

/// A store with a stopped run (killed right after `sessions` committed) and a finished run,
/// made once; each case works on a copy.
struct Template {
    _dir: tempfile::TempDir,
    store: PathBuf,
    file: PathBuf,
    /// The objects worth damaging, by key.
    targets: Vec<String>,
    /// The outputs of the stopped batch after a run without damage.
    reference: BTreeMap<String, Vec<u8>>,
}

fn env(scratch: &Path) -> Vec<(&'static str, String)> {
    vec![("RESPAWN_SCRATCH", scratch.display().to_string())]
}

fn run_batch(file: &Path, store: &Path, scratch: &Path, batch: &str) -> support::Run {
    support::respawn_env(
        [
            "run",
            &file.display().to_string(),
            "--batch",
            batch,
            "--store",
            &store.display().to_string(),
        ],
        &env(scratch),
        &[],
    )
}

fn outputs(store: &Path, batch: &str) -> BTreeMap<String, Vec<u8>> {
    let mut objects = BTreeMap::new();
    support::walk(store, store, &mut objects);
    // Only this batch's outputs: another batch's `_SUCCESS` may be the damaged object.
    objects.retain(|key, _| key.contains(&format!("/{batch}/")));
    support::published(objects, WORKFLOW)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("shop.yaml");
        std::fs::write(&file, support::small_ecommerce(&[])).unwrap();
        let store = dir.path().join("store");
        let scratch = dir.path().join("scratch");
        run_batch(&file, &store, &scratch, FINISHED).success();
        let mut command = support::command();
        command
            .args(["run", &file.display().to_string(), "--batch", STOPPED])
            .args(["--store", &store.display().to_string()])
            .env("RESPAWN_SCRATCH", &scratch)
            .env("RESPAWN_CRASH_AT", "after-commit:sessions");
        let status = command.output().unwrap().status;
        assert_eq!(status.code(), None, "killed after the COMMIT of sessions");
        // The reference: the stopped run resumed on an undamaged copy.
        let healthy = dir.path().join("healthy");
        copy_dir(&store, &healthy);
        run_batch(&file, &healthy, &scratch, STOPPED).success();
        let reference = outputs(&healthy, STOPPED);
        assert!(!reference.is_empty());
        let mut objects = BTreeMap::new();
        support::walk(&store, &store, &mut objects);
        let stopped_record = objects
            .iter()
            .find(|(k, bytes)| {
                k.ends_with("/run.json") && String::from_utf8_lossy(bytes).contains(STOPPED)
            })
            .map(|(k, _)| k.clone())
            .unwrap();
        let targets: Vec<String> = objects
            .keys()
            // The stopped run's own record is left out until item 13 of issue 18 (a damaged
            // run.json skipped with a warning; `status` then says "no such run", exit 2) is
            // fixed by part A of the issue; this property found it.
            .filter(|k| **k != stopped_record || DAMAGE_THE_STOPPED_RECORD)
            .filter(|k| {
                k.ends_with("run.json")
                    || k.contains("/events/")
                    || k.ends_with("/COMMIT")
                    || k.contains("/leases/")
                    || k.ends_with("/_SUCCESS")
            })
            .cloned()
            .collect();
        assert!(
            targets.iter().any(|k| k.ends_with("/COMMIT"))
                && targets.iter().any(|k| k.contains("/leases/")),
            "{targets:?}"
        );
        Template {
            _dir: dir,
            store,
            file,
            targets,
            reference,
        }
    })
}

#[derive(Debug, Clone)]
enum Damage {
    Empty,
    Truncate(usize),
    FlipByte(usize, u8),
    Insert(usize, Vec<u8>),
    /// Replaces the n-th JSON value (depth first) with one of [`odd_values`].
    ReplaceValue(usize, usize),
    /// Removes the n-th key of an object (depth first).
    RemoveKey(usize),
}

fn odd_values() -> Vec<Value> {
    serde_json::from_str(
        r#"[null, -1, 0, 1e300, 18446744073709551616, "", "x", "../../etc", [], {}, true,
            "9999-99-99T99:99:99Z", "1970-01-01T00:00:00Z", 4294967296, -9223372036854775808]"#,
    )
    .unwrap()
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        1 => Just(Damage::Empty),
        2 => any::<usize>().prop_map(Damage::Truncate),
        2 => (any::<usize>(), 1u8..=255).prop_map(|(at, x)| Damage::FlipByte(at, x)),
        1 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..6))
            .prop_map(|(at, b)| Damage::Insert(at, b)),
        4 => (any::<usize>(), any::<usize>()).prop_map(|(n, v)| Damage::ReplaceValue(n, v)),
        2 => any::<usize>().prop_map(Damage::RemoveKey),
    ]
}

/// The JSON pointer of every value of a tree, depth first, and of every key of an object
/// (its object's pointer and the key).
fn pointers(value: &Value, at: String, all: &mut Vec<String>, keys: &mut Vec<(String, String)>) {
    all.push(at.clone());
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                pointers(item, format!("{at}/{i}"), all, keys);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                keys.push((at.clone(), key.clone()));
                let escaped = key.replace('~', "~0").replace('/', "~1");
                pointers(item, format!("{at}/{escaped}"), all, keys);
            }
        }
        _ => {}
    }
}

fn apply(bytes: &[u8], damage: &Damage) -> Vec<u8> {
    let len = bytes.len().max(1);
    let mut out = bytes.to_vec();
    match damage {
        Damage::Empty => out.clear(),
        Damage::Truncate(at) => out.truncate(at % len),
        Damage::FlipByte(at, x) => {
            if !out.is_empty() {
                out[at % len] ^= x;
            }
        }
        Damage::Insert(at, extra) => {
            let at = at % len;
            out.splice(at..at, extra.iter().copied());
        }
        Damage::ReplaceValue(n, _) | Damage::RemoveKey(n) => {
            let Ok(mut tree) = serde_json::from_slice::<Value>(bytes) else {
                out.truncate(len / 2);
                return out;
            };
            let (mut all, mut keys) = (Vec::new(), Vec::new());
            pointers(&tree, String::new(), &mut all, &mut keys);
            match damage {
                Damage::ReplaceValue(_, v) => {
                    let odd = odd_values();
                    if let Some(target) = tree.pointer_mut(&all[n % all.len()]) {
                        *target = odd[v % odd.len()].clone();
                    }
                }
                _ if keys.is_empty() => out.truncate(len / 2),
                _ => {
                    let (object, key) = &keys[n % keys.len()];
                    if let Some(map) = tree.pointer_mut(object).and_then(Value::as_object_mut) {
                        map.remove(key);
                    }
                }
            }
            out = serde_json::to_vec(&tree).unwrap();
        }
    }
    out
}

/// Exit 0, or exit 3 naming the object (its key, or its run's folder when the damage made
/// the run unreadable as a whole).
fn acceptable(run: &support::Run, key: &str, what: &str) -> Result<(), TestCaseError> {
    match run.code {
        0 => Ok(()),
        3 => {
            let named = run.stderr.contains(key);
            prop_assert!(
                named,
                "{what}: exit 3 without naming {key}\nstderr:\n{}",
                run.stderr
            );
            Ok(())
        }
        code => Err(TestCaseError::fail(format!(
            "{what}: exit {code} for a damaged {key}\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        ))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(16),
        max_shrink_iters: 40,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_damaged_ledger_object_is_named_with_exit_3_or_healed_correctly(
        target in any::<usize>(),
        damage in damage(),
    ) {
        let template = template();
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        copy_dir(&template.store, &store);
        let key = &template.targets[target % template.targets.len()];
        let path = store.join(key);
        let before = std::fs::read(&path).unwrap();
        let after = apply(&before, &damage);
        prop_assume!(after != before);
        std::fs::write(&path, &after).unwrap();
        let store_arg = store.display().to_string();
        let file = template.file.display().to_string();
        let scratch = dir.path().join("scratch");
        for (what, args) in [
            ("status", vec!["status", &file, "--batch", STOPPED]),
            ("history", vec!["history", WORKFLOW]),
            ("gc", vec!["gc", "--older-than", "0s", "--dry-run"]),
        ] {
            let mut args: Vec<&str> = args;
            args.extend(["--store", &store_arg]);
            let run = support::respawn_env(&args, &env(&scratch), &[]);
            acceptable(&run, key, what)?;
        }
        let run = run_batch(&template.file, &store, &scratch, STOPPED);
        acceptable(&run, key, "run")?;
        if run.code == 0 {
            prop_assert_eq!(
                outputs(&store, STOPPED),
                template.reference.clone(),
                "run healed the damage but its outputs differ"
            );
        }
    }
}
