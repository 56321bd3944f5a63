//! The layering rules of docs/architecture.md. The crates hold most of them: `respawn-core`
//! cannot call the run crate or the CLI because it does not depend on them, and these tests
//! check the manifests that make it so. The rest is checked on the source: the pure core
//! reads no file, no clock and no environment, and every source file stays small enough to
//! read in one sitting. A rule broken here names the file, the line and what it uses.

mod support;

use std::path::{Path, PathBuf};

/// What the pure core's source must not use, and why. The crate boundaries hold the rest:
/// `respawn-core` has no I/O crate among its dependencies (checked below), so it cannot
/// name the drivers, tokio or the AWS SDK at all.
const FORBIDDEN: &[(&str, &str)] = &[
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
const LOADER: &str = "core/src/workflow/load.rs";

/// Longest source file, in lines ("roughly 500 lines"; this is the hard limit).
const MAX_LINES: usize = 600;

/// Crates that do I/O, run async or talk to AWS: none may be a dependency of the core.
const IO_CRATES: &[&str] = &[
    "tokio",
    "aws-",
    "hyper",
    "backon",
    "libc",
    "reqwest",
    "respawn-run",
    "respawn ",
];

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

fn relative(path: &Path) -> String {
    path.strip_prefix(support::repo())
        .unwrap()
        .display()
        .to_string()
}

/// The `[dependencies]` of a crate's manifest, one line each (dev-dependencies excluded:
/// tests may use what they like).
fn dependencies(manifest: &str) -> Vec<String> {
    let text = std::fs::read_to_string(support::repo().join(manifest)).unwrap();
    let mut in_dependencies = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.starts_with('[') {
            in_dependencies = line.trim() == "[dependencies]";
        } else if in_dependencies && !line.trim().is_empty() && !line.starts_with('#') {
            lines.push(line.to_string());
        }
    }
    lines
}

#[test]
fn the_core_crate_depends_on_no_io_async_or_aws_crate() {
    let deps = dependencies("core/Cargo.toml");
    assert!(
        deps.iter().any(|d| d.starts_with("serde")),
        "read the core's manifest: {deps:?}"
    );
    let broken: Vec<&String> = deps
        .iter()
        .filter(|d| IO_CRATES.iter().any(|c| d.starts_with(c)))
        .collect();
    assert!(broken.is_empty(), "the pure core depends on {broken:?}");
}

#[test]
fn the_run_crate_depends_on_the_core_and_not_on_the_cli() {
    let deps = dependencies("run/Cargo.toml");
    assert!(
        deps.iter().any(|d| d.starts_with("respawn-core ")),
        "{deps:?}"
    );
    assert!(!deps.iter().any(|d| d.starts_with("respawn ")), "{deps:?}");
    // The emulator reads and writes S3 with the run crate's store, not through the CLI.
    let emulator = dependencies("emr-emulator/Cargo.toml");
    assert!(
        !emulator.iter().any(|d| d.starts_with("respawn ")),
        "{emulator:?}"
    );
}

#[test]
fn the_pure_core_reads_no_files_no_clock_and_starts_no_process() {
    let mut files = Vec::new();
    rust_files(&support::repo().join("core/src"), &mut files);
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
fn the_rule_would_catch_a_clock_read_and_an_io_dependency() {
    // The checks above must not pass because they read nothing.
    let line = "let now = std::time::SystemTime::now();";
    assert!(FORBIDDEN.iter().any(|(needle, _)| line.contains(needle)));
    assert!(IO_CRATES.iter().any(|c| "tokio = \"1\"".starts_with(c)));
    let text = std::fs::read_to_string(support::repo().join("core/src/machine/state.rs")).unwrap();
    assert!(
        text.contains("pub fn apply"),
        "the machine is where it is said to be"
    );
}

#[test]
fn no_source_file_is_longer_than_one_sitting() {
    let mut files = Vec::new();
    for dir in ["src", "core/src", "run/src", "emr-emulator/src"] {
        rust_files(&support::repo().join(dir), &mut files);
    }
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

/// What the CLI must not do itself: read or write the ledger's objects. It asks the run
/// crate's read side (`respawn_run::read`) and session, and prints what they return.
const CLI_FORBIDDEN: &[&str] = &[
    "respawn_run::ledger",
    "list_dirs(",
    "delete_prefix(",
    "store.get(",
    "store.put(",
    "store.list(",
    "store.head(",
];

#[test]
fn the_cli_uses_neither_the_ledger_nor_the_store_s_objects_directly() {
    let mut files = Vec::new();
    rust_files(&support::repo().join("src"), &mut files);
    let mut broken = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for needle in CLI_FORBIDDEN {
                if code.contains(needle) {
                    broken.push(format!("{}:{}: `{needle}`", relative(file), number + 1));
                }
            }
        }
    }
    assert!(files.len() > 10, "found the CLI: {files:?}");
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
