//! Every malformed workflow in `tests/malformed/` through the real binary: exit code 2,
//! and each expected problem reported at its file:line:column. See tests/malformed/README.md.

mod support;
use std::path::{Path, PathBuf};
use support::{repo, respawn};

/// The `# expect: LINE:COL: TEXT` lines of a catalog entry (or of its `.expect` sidecar).
fn expectations(file: &Path) -> Vec<(String, String)> {
    let sidecar = file.with_extension("expect");
    let text = std::fs::read(if sidecar.exists() { &sidecar } else { file }).unwrap();
    String::from_utf8_lossy(&text)
        .lines()
        .filter_map(|line| line.strip_prefix("# expect: "))
        .map(|rest| {
            let mut parts = rest.splitn(3, ':');
            let (line, column, text) = (
                parts.next().unwrap(),
                parts.next().unwrap(),
                parts.next().unwrap(),
            );
            (format!("{line}:{column}"), text.trim().to_string())
        })
        .collect()
}

fn catalog() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/malformed"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_catalog_has_at_least_twenty_five_entries_each_with_expectations() {
    let files = catalog();
    assert!(
        files.len() >= 25,
        "only {} malformed workflows",
        files.len()
    );
    for file in &files {
        assert!(
            !expectations(file).is_empty(),
            "{} has no `# expect:` line",
            file.display()
        );
    }
}

#[test]
fn every_malformed_workflow_is_refused_with_located_messages() {
    let mut failures = Vec::new();
    for file in catalog() {
        let relative = file.strip_prefix(repo()).unwrap().to_path_buf();
        let run = respawn(["validate".as_ref(), relative.as_os_str()]);
        if run.code != 2 {
            failures.push(format!(
                "{}: exit {} (expected 2)\n{}",
                relative.display(),
                run.code,
                run.stderr
            ));
            continue;
        }
        if !run.stdout.is_empty() {
            failures.push(format!(
                "{}: printed to stdout: {}",
                relative.display(),
                run.stdout
            ));
        }
        for (location, text) in expectations(&file) {
            let prefix = format!("error: {}:{location}: ", relative.display());
            let found = run.stderr.lines().any(|line| {
                line.strip_prefix(&prefix)
                    .is_some_and(|message| message.contains(&text))
            });
            if !found {
                failures.push(format!(
                    "{}: expected `{location}: ...{text}...`, got:\n{}",
                    relative.display(),
                    run.stderr
                ));
            }
        }
        for line in run.stderr.lines().filter(|l| l.starts_with("error: ")) {
            if !line.starts_with(&format!("error: {}:", relative.display())) {
                failures.push(format!(
                    "{}: an error without file location: {line}",
                    relative.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_huge_file_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("huge.yaml");
    let line = "# padding padding padding padding padding padding padding padding padding\n";
    std::fs::write(&file, line.repeat(17 * 1024 * 1024 / line.len() + 1)).unwrap();
    let run = respawn(["validate".as_ref(), file.as_os_str()]);
    run.invalid_input();
    assert!(
        run.stderr.contains(":1:1: the file is") && run.stderr.contains("limited to"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_file_with_a_hundred_thousand_stages_is_refused_or_validated_without_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("wide.yaml");
    let mut text = String::from("name: wide\nstages:\n");
    for i in 0..100_000 {
        text.push_str(&format!("  s{i}: {{run: x}}\n"));
    }
    std::fs::write(&file, text).unwrap();
    let run = respawn(["validate".as_ref(), file.as_os_str()]);
    assert!(run.code == 0 || run.code == 2, "{}", run.stderr);
}

#[test]
fn a_directory_is_not_a_workflow() {
    let dir = tempfile::tempdir().unwrap();
    let run = respawn(["validate".as_ref(), dir.path().as_os_str()]);
    run.invalid_input();
    assert!(run.stderr.contains("is a directory"));
}
