//! The layering rules of design.md, checked on the source: the pure core (the workflow
//! layer, the planner, the simulator, the reports and the engine's state machine) does no
//! I/O, no async and never reads the clock; and every source file stays small enough to
//! read in one sitting. A rule broken here names the file, the line and what it uses.

mod support;

use std::path::{Path, PathBuf};

/// What the pure core must not use, and why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("crate::drivers", "the drivers layer (I/O)"),
    ("respawn::drivers", "the drivers layer (I/O)"),
    ("tokio", "the async runtime"),
    ("aws_sdk", "the AWS SDK"),
    ("aws_config", "the AWS SDK"),
    ("std::fs", "the file system"),
    ("std::net", "the network"),
    ("std::process", "processes"),
    ("SystemTime::now", "the clock"),
    ("Instant::now", "the clock"),
    ("Timestamp::now", "the clock"),
    ("Zoned::now", "the clock"),
    ("std::env::var", "the environment"),
];

/// The one file of the pure core allowed to read files: it turns a path into the text
/// that the pure reader takes.
const LOADER: &str = "src/workflow/load.rs";

/// Longest source file, in lines ("roughly 500 lines"; this is the hard limit).
const MAX_LINES: usize = 600;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn pure_core() -> Vec<PathBuf> {
    let root = support::repo();
    let mut files = Vec::new();
    for dir in ["src/workflow", "src/plan", "src/sim", "src/report"] {
        rust_files(&root.join(dir), &mut files);
    }
    files.push(root.join("src/engine/machine.rs"));
    files.push(root.join("src/engine/tally.rs"));
    files.push(root.join("src/engine/setup.rs"));
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(support::repo())
        .unwrap()
        .display()
        .to_string()
}

#[test]
fn the_pure_core_imports_no_io_no_async_and_reads_no_clock() {
    let files = pure_core();
    assert!(files.len() > 10, "found the pure core: {files:?}");
    let mut broken = Vec::new();
    for file in files {
        let name = relative(&file);
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit tests at the end of a file may read fixtures and time themselves.
        let code_part = text.split("\n#[cfg(test)]").next().unwrap_or("");
        for (number, line) in code_part.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (needle, what) in FORBIDDEN {
                let allowed = name == LOADER && *needle == "std::fs";
                if code.contains(needle) && !allowed {
                    broken.push(format!("{name}:{}: uses {what} (`{needle}`)", number + 1));
                }
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

#[test]
fn the_rule_would_catch_a_driver_import() {
    // The check above must not pass because it reads nothing: a line like the ones it
    // forbids is caught by the same test of a line.
    let line = "use crate::drivers::store::AnyStore;";
    assert!(FORBIDDEN.iter().any(|(needle, _)| line.contains(needle)));
    let text = std::fs::read_to_string(support::repo().join("src/engine/machine.rs")).unwrap();
    assert!(
        text.contains("pub fn apply"),
        "the machine is where it is said to be"
    );
}

#[test]
fn no_source_file_is_longer_than_one_sitting() {
    let mut files = Vec::new();
    rust_files(&support::repo().join("src"), &mut files);
    rust_files(&support::repo().join("emr-emulator/src"), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(file).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} has {lines} lines", relative(file)))
        })
        .collect();
    assert!(
        long.is_empty(),
        "files over {MAX_LINES} lines:\n{}",
        long.join("\n")
    );
}
