//! Stage fingerprints: a hash of what defines a stage's work-table.
//!
//! A stage's fingerprint covers its name, its `run:` command as written, its `version:`,
//! and the fingerprints of the stages it needs, so that changing a stage changes the
//! fingerprint of everything downstream of it: a COMMIT made under another fingerprint is
//! stale, and the stage runs again. Values rendered into the command at run time (paths,
//! run id, attempt) are not part of it.

use crate::workflow::Workflow;
use sha2::{Digest, Sha256};

/// The fingerprint of every stage, in stage order: 32 hex digits.
pub fn fingerprints(workflow: &Workflow) -> Vec<String> {
    let mut prints: Vec<String> = Vec::with_capacity(workflow.stages.len());
    for stage in &workflow.stages {
        let mut hash = Sha256::new();
        hash.update(b"respawn stage v1\0");
        for part in [
            stage.name.as_str(),
            stage.run.source.as_str(),
            stage.version.as_deref().unwrap_or(""),
        ] {
            hash.update(part.len().to_le_bytes());
            hash.update(part.as_bytes());
        }
        for &input in &stage.needs {
            hash.update(workflow.stages[input].name.as_bytes());
            hash.update(b"=");
            hash.update(prints[input].as_bytes());
            hash.update(b"\0");
        }
        let digest = hash.finalize();
        prints.push(digest[..16].iter().map(|b| format!("{b:02x}")).collect());
    }
    prints
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Workflow {
        crate::workflow::parse("wf.yaml", text).expect("valid workflow")
    }

    const BASE: &str = "name: wf\nstages:\n  a:\n    run: echo a > {{ output }}/a\n  b:\n    needs: [a]\n    run: echo b\n  c:\n    run: echo c\n";

    #[test]
    fn changing_a_stage_changes_it_and_everything_downstream_and_nothing_else() {
        let before = fingerprints(&load(BASE));
        let after = fingerprints(&load(&BASE.replace("echo a >", "echo A >")));
        assert_ne!(before[0], after[0]);
        assert_ne!(before[1], after[1], "b needs a");
        assert_eq!(before[2], after[2], "c does not");
        let versioned = fingerprints(&load(
            &BASE.replace("    run: echo c\n", "    run: echo c\n    version: \"2\"\n"),
        ));
        assert_eq!(before[..2], versioned[..2]);
        assert_ne!(before[2], versioned[2]);
    }

    #[test]
    fn the_same_definition_gives_the_same_fingerprint() {
        assert_eq!(fingerprints(&load(BASE)), fingerprints(&load(BASE)));
        assert!(fingerprints(&load(BASE)).iter().all(|f| f.len() == 32));
    }
}
