//! Malformed input at scale: the workflows of `workflows/` mutated at random (bytes and
//! YAML tokens inserted, deleted, lines duplicated, swapped and cut), and random bytes,
//! through `respawn validate` and `respawn plan` (the real binary). Never a panic; always
//! exit 0 or 2, and exit 2 with every problem located at FILE:LINE:COLUMN.
//!
//! Proptest shrinks a failure to a small input and prints it. Each property runs
//! `FUZZ_CASES` cases (default 48; raise `PROPTEST_CASES` for a longer hunt).

mod support;

use proptest::prelude::*;
use std::path::Path;

const FUZZ_CASES: u32 = 48;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(FUZZ_CASES);
    ProptestConfig {
        cases,
        // Each case runs the binary twice; shrinking stays bounded.
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let mut files: Vec<_> = std::fs::read_dir(support::repo().join("workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Pieces that YAML and the workflow schema give meaning to.
const TOKENS: &[&str] = &[
    ":",
    "- ",
    "{",
    "}",
    "[",
    "]",
    "{{",
    "}}",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!binary ",
    "'",
    "\"",
    "#",
    "\t",
    "\n",
    "\n  ",
    "\n    ",
    "---\n",
    "...\n",
    "? ",
    "|\n",
    ">-\n",
    "~",
    "null",
    "0",
    "-1",
    "1e309",
    "99999999999999999999",
    "9999h",
    "1ns",
    "0s",
    "NaN",
    ".inf",
    "true",
    "needs: [",
    "needs: [ingest, ingest]",
    "final: true",
    "checkpoint: always",
    "slots: 0",
    "mtti: 0s",
    "estimate: -5m",
    "output_size: 1EB",
    "retries: 4294967296",
    "\u{0}",
    "\u{feff}",
    "\u{202e}",
    "é",
    "\r\n",
    "{{ inputs.nope }}",
    "{{ output",
    "cron: '* * * * * * *'",
    "timezone: Mars/Olympus",
    "store: s3://",
    "store: s3://b/../x",
];

#[derive(Debug, Clone)]
enum Mutation {
    Insert { at: usize, token: usize },
    InsertBytes { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
    DuplicateLine { line: usize },
    SwapLines { a: usize, b: usize },
    Truncate { at: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 0..TOKENS.len()).prop_map(|(at, token)| Mutation::Insert { at, token }),
        2 => (any::<usize>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, bytes)| Mutation::InsertBytes { at, bytes }),
        3 => (any::<usize>(), 1usize..40).prop_map(|(at, len)| Mutation::Delete { at, len }),
        1 => any::<usize>().prop_map(|line| Mutation::DuplicateLine { line }),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines { a, b }),
        1 => any::<usize>().prop_map(|at| Mutation::Truncate { at }),
    ]
}

fn apply(mut text: Vec<u8>, mutation: &Mutation) -> Vec<u8> {
    let len = text.len().max(1);
    match mutation {
        Mutation::Insert { at, token } => {
            let at = at % len;
            text.splice(at..at, TOKENS[*token].bytes());
        }
        Mutation::InsertBytes { at, bytes } => {
            let at = at % len;
            text.splice(at..at, bytes.iter().copied());
        }
        Mutation::Delete { at, len: count } => {
            let at = at % len;
            let end = (at + count).min(text.len());
            text.drain(at.min(end)..end);
        }
        Mutation::DuplicateLine { line } | Mutation::SwapLines { a: line, .. } => {
            let mut lines: Vec<Vec<u8>> = text.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
            let n = lines.len();
            let i = line % n;
            match mutation {
                Mutation::SwapLines { b, .. } => lines.swap(i, b % n),
                _ => {
                    let copy = lines[i].clone();
                    lines.insert(i, copy);
                }
            }
            text = lines.join(&b'\n');
        }
        Mutation::Truncate { at } => text.truncate(at % len),
    }
    text
}

/// `validate` and `plan` on this file: no panic (the helper checks), exit 0 or 2, and exit
/// 2 only with located problems.
fn check_file(dir: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    let file = dir.join("fuzzed.yaml");
    std::fs::write(&file, bytes).unwrap();
    let path = file.display().to_string();
    for command in [vec!["validate", &path], vec!["plan", &path]] {
        let run = support::respawn(&command);
        prop_assert!(
            run.code == 0 || run.code == 2,
            "{command:?} exited {}\nstdout:\n{}\nstderr:\n{}",
            run.code,
            run.stdout,
            run.stderr
        );
        if run.code == 2 {
            let errors: Vec<&str> = run
                .stderr
                .lines()
                .filter(|l| l.starts_with("error: "))
                .collect();
            prop_assert!(
                !errors.is_empty(),
                "{command:?}: no error line:\n{}",
                run.stderr
            );
            let prefix = format!("error: {path}:");
            for line in errors {
                let located = line.strip_prefix(&prefix).is_some_and(|rest| {
                    let mut parts = rest.splitn(3, ':');
                    parts.next().is_some_and(|l| l.parse::<u32>().is_ok())
                        && parts.next().is_some_and(|c| c.parse::<u32>().is_ok())
                });
                prop_assert!(
                    located,
                    "{command:?}: an error without FILE:LINE:COLUMN: {line}\n{}",
                    run.stderr
                );
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_workflows_are_valid_or_refused_with_located_problems(
        seed in 0usize..5,
        mutations in prop::collection::vec(mutation(), 1..6),
    ) {
        let seeds = seeds();
        let mut text = seeds[seed % seeds.len()].clone();
        for m in &mutations {
            text = apply(text, m);
        }
        let dir = tempfile::tempdir().unwrap();
        check_file(dir.path(), &text)?;
    }

    #[test]
    fn random_bytes_are_refused_with_located_problems(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let dir = tempfile::tempdir().unwrap();
        check_file(dir.path(), &bytes)?;
    }
}
