//! What a run finds in the store when it starts or resumes: which stages have a fresh
//! COMMIT, which finals are published, and which attempt numbers are taken.

use crate::ledger::{
    CommitManifest, CommitState, FileList, Layout, RunRecord, check_commit, read_commit,
    read_output, read_success,
};
use crate::store::{Listing, Store, StoreError};
use respawn_core::workflow::Workflow;
use std::collections::BTreeMap;

/// A work-table that survives any cluster: a fresh COMMIT, or a published final output.
/// Its file list is not held: a run of work-tables of a million files each would hold
/// them all. A restore or a publish reads it from where it is kept ([`Durable::files`]).
#[derive(Clone, Debug)]
pub struct Durable {
    /// Where its files are in the store (ends in `/`).
    pub prefix: String,
    /// Where its file list is kept.
    pub listed_in: ListedIn,
    /// The commit id consumers record as their input.
    pub commit_id: String,
    /// The attempt whose COMMIT it is, when it comes from one.
    pub committed_attempt: Option<u32>,
}

/// The manifest that lists a durable work-table's files.
#[derive(Clone, Debug)]
pub enum ListedIn {
    /// The COMMIT of `stage` in run `run_id`.
    Commit { run_id: String, stage: String },
    /// The `_SUCCESS` of the published output of `stage` for `batch`.
    Output { stage: String, batch: String },
}

impl Durable {
    /// The work-table a COMMIT manifest names.
    pub fn committed(layout: &Layout, manifest: &CommitManifest) -> Durable {
        Durable {
            prefix: layout.attempt(&manifest.run_id, &manifest.stage, manifest.attempt),
            listed_in: ListedIn::Commit {
                run_id: manifest.run_id.clone(),
                stage: manifest.stage.clone(),
            },
            commit_id: manifest.commit_id(),
            committed_attempt: Some(manifest.attempt),
        }
    }

    /// Its files, read from its manifest, which must still be the one it was found by.
    pub async fn files<S: Store>(
        &self,
        store: &S,
        layout: &Layout,
    ) -> Result<FileList, StoreError> {
        let (found, object) = match &self.listed_in {
            ListedIn::Commit { run_id, stage } => (
                read_commit(store, layout, run_id, stage)
                    .await?
                    .map(|m| (m.commit_id(), m.file_list())),
                store.locate(&layout.commit(run_id, stage)),
            ),
            ListedIn::Output { stage, batch } => (
                read_success(store, layout, stage, batch)
                    .await?
                    .map(|m| (m.commit_id.clone(), m.file_list())),
                store.locate(&layout.success(stage, batch)),
            ),
        };
        match found {
            Some((commit_id, files)) if commit_id == self.commit_id => Ok(files),
            Some((commit_id, _)) => Err(StoreError::Corrupt {
                object,
                detail: format!(
                    "it names commit {commit_id}, where this run found {}",
                    self.commit_id
                ),
            }),
            None => Err(StoreError::NotFound { object }),
        }
    }
}

#[derive(Debug, Default)]
pub struct Inspection {
    pub durable: Vec<Option<Durable>>,
    pub published: Vec<bool>,
    /// The highest attempt number of each stage already used in this run.
    pub attempts: Vec<u32>,
    /// Stages that run again although something of theirs was in the store: (stage, why).
    pub stale: Vec<(String, String)>,
}

/// Looks at run `record` in the store. Stale or damaged COMMITs are deleted (the caller
/// holds the workflow's lease), so that the stage can commit again.
pub async fn inspect<S: Store>(
    store: &S,
    layout: &Layout,
    workflow: &Workflow,
    fingerprints: &[String],
    record: &RunRecord,
) -> Result<Inspection, StoreError> {
    let (mut attempts, has_commit) = scan(store, layout, workflow, &record.run_id).await?;
    for (s, stage) in workflow.stages.iter().enumerate() {
        if let Some(previous) = record.stages.get(&stage.name) {
            attempts[s] = attempts[s].max(previous.attempts);
        }
    }
    let check = Check {
        store,
        layout,
        workflow,
        fingerprints,
        record,
    };
    let (mut durable, stale) = check.commits(&has_commit).await?;
    let published = check.outputs(&mut durable).await?;
    Ok(Inspection {
        durable,
        published,
        attempts,
        stale,
    })
}

/// One listing of the run's objects, a page at a time (its work-tables may hold millions):
/// the highest attempt number each stage used (in its work-tables and logs), and which
/// stages have a COMMIT.
async fn scan<S: Store>(
    store: &S,
    layout: &Layout,
    workflow: &Workflow,
    run_id: &str,
) -> Result<(Vec<u32>, Vec<bool>), StoreError> {
    let n = workflow.stages.len();
    let mut attempts = vec![0u32; n];
    let mut has_commit = vec![false; n];
    let index: BTreeMap<&str, usize> = (workflow.stages.iter().enumerate())
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let work = layout.work(run_id);
    let logs = format!("{}logs/", layout.run(run_id));
    let run_prefix = layout.run(run_id);
    let mut listing = Listing::new(store, &run_prefix);
    while let Some(object) = listing.next().await? {
        let (rest, from_logs) = if let Some(rest) = object.key.strip_prefix(&work) {
            (rest, false)
        } else if let Some(rest) = object.key.strip_prefix(&logs) {
            (rest, true)
        } else {
            continue;
        };
        let mut parts = rest.splitn(2, '/');
        let (Some(stage), Some(tail)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some(&s) = index.get(stage) else { continue };
        if !from_logs && tail == "COMMIT" {
            has_commit[s] = true;
            continue;
        }
        let number = if from_logs {
            tail.strip_suffix(".log")
        } else {
            tail.split('/').next()
        };
        if let Some(number) = number.and_then(|t| t.parse::<u32>().ok()) {
            attempts[s] = attempts[s].max(number);
        }
    }
    Ok((attempts, has_commit))
}

/// What a run's COMMITs and outputs are checked against.
struct Check<'a, S> {
    store: &'a S,
    layout: &'a Layout,
    workflow: &'a Workflow,
    fingerprints: &'a [String],
    record: &'a RunRecord,
}

impl<S: Store> Check<'_, S> {
    /// The stages whose COMMIT still holds (in stage order, so that each is checked
    /// against its inputs' commits), and those that run again, with why; the COMMITs
    /// that do not hold are deleted.
    async fn commits(
        &self,
        has_commit: &[bool],
    ) -> Result<(Vec<Option<Durable>>, Vec<(String, String)>), StoreError> {
        let (store, layout, run_id) = (self.store, self.layout, &self.record.run_id);
        let stages = &self.workflow.stages;
        let mut durable: Vec<Option<Durable>> = vec![None; stages.len()];
        let mut stale = Vec::new();
        for (s, stage) in stages.iter().enumerate().filter(|(s, _)| has_commit[*s]) {
            let inputs: BTreeMap<String, String> = (stage.needs.iter())
                .filter_map(|&i| {
                    let input = durable[i].as_ref()?;
                    Some((stages[i].name.clone(), input.commit_id.clone()))
                })
                .collect();
            let fingerprint = &self.fingerprints[s];
            match check_commit(store, layout, run_id, &stage.name, fingerprint, &inputs).await? {
                CommitState::Fresh(manifest) => {
                    durable[s] = Some(Durable::committed(layout, &manifest));
                }
                CommitState::Missing => {}
                CommitState::Stale { reason, .. } | CommitState::Broken { reason } => {
                    let why = format!("stage `{}` runs again: {reason}", stage.name);
                    stale.push((stage.name.clone(), why));
                    store
                        .delete_many(&[layout.commit(run_id, &stage.name)])
                        .await?;
                }
            }
        }
        Ok((durable, stale))
    }

    /// Which final stages' outputs are this run's. An output this run published and whose
    /// stage is unchanged since is itself durable (its COMMIT went with the run's cleanup).
    async fn outputs(&self, durable: &mut [Option<Durable>]) -> Result<Vec<bool>, StoreError> {
        let (layout, record) = (self.layout, self.record);
        let mut published = vec![false; durable.len()];
        for (s, stage) in self.workflow.stages.iter().enumerate() {
            if !stage.is_final {
                continue;
            }
            let Some(output) = read_output(self.store, layout, &stage.name, &record.batch).await?
            else {
                continue;
            };
            if let Some(d) = &durable[s] {
                published[s] = d.commit_id == output.commit_id;
                continue;
            }
            let unchanged = (record.stages.get(&stage.name)).and_then(|r| r.fingerprint.as_ref())
                == Some(&self.fingerprints[s]);
            if output.run_id == record.run_id && unchanged {
                published[s] = true;
                durable[s] = Some(Durable {
                    prefix: layout.output(&stage.name, &record.batch),
                    listed_in: ListedIn::Output {
                        stage: stage.name.clone(),
                        batch: record.batch.clone(),
                    },
                    commit_id: output.commit_id,
                    committed_attempt: None,
                });
            }
        }
        Ok(published)
    }
}
