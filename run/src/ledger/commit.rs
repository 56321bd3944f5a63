//! The commit protocol.
//!
//! A work-table is committed by creating `work/<stage>/COMMIT` create-only: of any number
//! of attempts that finish, the first to commit wins and the others learn it from a typed
//! outcome. A half-written attempt without a COMMIT is garbage and never read.
//!
//! A final output is published to `outputs/<stage>/<batch>/`: `_SUCCESS` is removed first,
//! the files are replaced (copied from the committed work-table inside the store), files of
//! the previous version that are not in the new one are deleted, and `_SUCCESS` (a
//! manifest) is written last.
//!
//! Both manifests list their files inline or, past [`super::PART_FILES`], in part objects
//! (parts.rs); everything here reads and compares them a part at a time. Readers trust the folder only
//! while `_SUCCESS` is there, and re-publishing replaces, never appends.

use super::parts::{
    Comparison, Difference, FileList, PartRef, PartWriter, SUCCESS_PARTS, nothing,
    success_and_parts,
};
use super::{Layout, parse_json, to_compact_json};
use crate::store::{FileEntry, PutMode, Store, StoreError, TransferOptions, copy_files};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitManifest {
    pub format: u32,
    pub workflow: String,
    pub run_id: String,
    pub stage: String,
    pub attempt: u32,
    /// Hash of the stage's definition (command, template, `version:`).
    pub fingerprint: String,
    /// The COMMIT id of each input this attempt read, by stage name.
    pub inputs: BTreeMap<String, String>,
    /// The files, when there are [`super::PART_FILES`] or fewer.
    pub files: Vec<FileEntry>,
    /// The parts that list the files, when there are more.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartRef>,
    pub committed_at: String,
}

impl CommitManifest {
    /// Names this commit for its consumers' manifests: run, stage and attempt.
    pub fn commit_id(&self) -> String {
        format!("{}/{}/{}", self.run_id, self.stage, self.attempt)
    }

    pub fn file_list(&self) -> FileList {
        FileList {
            files: self.files.clone(),
            parts: self.parts.clone(),
        }
    }

    pub fn file_count(&self) -> u64 {
        self.files.len() as u64 + self.parts.iter().map(|p| p.files).sum::<u64>()
    }

    pub fn total_size(&self) -> u64 {
        let inline: u64 = self.files.iter().map(|f| f.size).sum();
        inline + self.parts.iter().map(|p| p.bytes).sum::<u64>()
    }
}

/// Where the parts of an attempt's COMMIT go: beside the COMMIT, one folder per attempt.
pub fn commit_parts(layout: &Layout, run_id: &str, stage: &str, attempt: u32) -> String {
    format!("{}.parts/{attempt}/", layout.commit(run_id, stage))
}

/// What a create-only COMMIT came to.
#[derive(Debug)]
pub enum CommitOutcome {
    /// This attempt's COMMIT is in the store (written now, or by an earlier try of this
    /// same call whose answer was lost).
    Committed,
    /// Another attempt committed first; its manifest is the one to read.
    Lost(CommitManifest),
}

/// Writes a COMMIT for `manifest` (create-only).
pub async fn commit<S: Store>(
    store: &S,
    layout: &Layout,
    manifest: &CommitManifest,
) -> Result<CommitOutcome, StoreError> {
    let key = layout.commit(&manifest.run_id, &manifest.stage);
    match store
        .put(&key, to_compact_json(manifest), PutMode::Create)
        .await
    {
        Ok(_) => Ok(CommitOutcome::Committed),
        Err(StoreError::AlreadyExists { .. }) => {
            let existing = read_commit(store, layout, &manifest.run_id, &manifest.stage)
                .await?
                .ok_or_else(|| StoreError::PreconditionFailed {
                    object: store.locate(&key),
                })?;
            if existing.attempt == manifest.attempt && existing.fingerprint == manifest.fingerprint
            {
                Ok(CommitOutcome::Committed)
            } else {
                Ok(CommitOutcome::Lost(existing))
            }
        }
        Err(other) => Err(other),
    }
}

/// The COMMIT of a stage in a run, if there is one.
pub async fn read_commit<S: Store>(
    store: &S,
    layout: &Layout,
    run_id: &str,
    stage: &str,
) -> Result<Option<CommitManifest>, StoreError> {
    let key = layout.commit(run_id, stage);
    let bytes = match store.get(&key).await {
        Ok((bytes, _)) => bytes,
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(other) => return Err(other),
    };
    let manifest: CommitManifest = parse_json(store.locate(&key), &bytes)?;
    if manifest.run_id != run_id
        || manifest.stage != stage
        || manifest.workflow != layout.workflow()
    {
        return Err(StoreError::Corrupt {
            object: store.locate(&key),
            detail: format!(
                "it commits stage `{}` of run `{}` (workflow `{}`), not the stage and run it is stored under",
                manifest.stage, manifest.run_id, manifest.workflow
            ),
        });
    }
    Ok(Some(manifest))
}

/// Checks that every file the manifest lists is in the store with its size.
pub async fn verify_commit<S: Store>(
    store: &S,
    layout: &Layout,
    manifest: &CommitManifest,
) -> Result<(), StoreError> {
    let prefix = layout.attempt(&manifest.run_id, &manifest.stage, manifest.attempt);
    let commit_object = store.locate(&layout.commit(&manifest.run_id, &manifest.stage));
    let list = manifest.file_list();
    let mut comparison = Comparison::new(store, &prefix, &list, nothing, commit_object.clone());
    while let Some(difference) = comparison.next().await? {
        let detail = match &difference {
            Difference::Extra(_) => continue,
            Difference::Missing(_) => format!("it is listed in {commit_object} but missing"),
            Difference::Size { entry, stored } => format!(
                "{commit_object} lists it with {} bytes, the store has {stored}",
                entry.size
            ),
        };
        return Err(StoreError::Corrupt {
            object: store.locate(&format!("{prefix}{}", path_of(&difference))),
            detail,
        });
    }
    Ok(())
}

/// The path (relative to the prefix) of a file a list names.
fn path_of(difference: &Difference) -> &str {
    match difference {
        Difference::Missing(entry) | Difference::Size { entry, .. } => &entry.path,
        Difference::Extra(_) => "",
    }
}

/// Whether a stage's committed work-table can be used as it is.
#[derive(Debug)]
pub enum CommitState {
    Missing,
    Fresh(CommitManifest),
    /// Committed for another definition of the stage or other inputs: run it again.
    Stale {
        manifest: CommitManifest,
        reason: String,
    },
    /// The COMMIT or its files are damaged (the reason names the object): run it again.
    Broken {
        reason: String,
    },
}

/// Looks at a stage's COMMIT against its current fingerprint and the commit ids of its
/// inputs. `inputs` names the inputs that are committed now; an input that is not (an
/// ephemeral work-table, or a COMMIT deleted to have it rebuilt) is not compared, since
/// the fingerprint already covers its definition.
pub async fn check_commit<S: Store>(
    store: &S,
    layout: &Layout,
    run_id: &str,
    stage: &str,
    fingerprint: &str,
    inputs: &BTreeMap<String, String>,
) -> Result<CommitState, StoreError> {
    let manifest = match read_commit(store, layout, run_id, stage).await {
        Ok(None) => return Ok(CommitState::Missing),
        Ok(Some(manifest)) => manifest,
        Err(error @ StoreError::Corrupt { .. }) => {
            return Ok(CommitState::Broken {
                reason: error.to_string(),
            });
        }
        Err(other) => return Err(other),
    };
    if manifest.fingerprint != fingerprint {
        return Ok(CommitState::Stale {
            reason: format!(
                "the stage's definition changed since attempt {} was committed",
                manifest.attempt
            ),
            manifest,
        });
    }
    let changed: Vec<&str> = inputs
        .iter()
        .filter(|(name, id)| manifest.inputs.get(*name) != Some(id))
        .map(|(name, _)| name.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !changed.is_empty() {
        return Ok(CommitState::Stale {
            reason: format!(
                "its inputs were rebuilt since it was committed ({})",
                changed.join(", ")
            ),
            manifest,
        });
    }
    match verify_commit(store, layout, &manifest).await {
        Ok(()) => Ok(CommitState::Fresh(manifest)),
        Err(error @ StoreError::Corrupt { .. }) => Ok(CommitState::Broken {
            reason: error.to_string(),
        }),
        Err(other) => Err(other),
    }
}

/// The `_SUCCESS` manifest of a published final output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuccessManifest {
    pub format: u32,
    pub workflow: String,
    pub stage: String,
    pub batch: String,
    pub run_id: String,
    pub commit_id: String,
    /// The files, when there are [`super::PART_FILES`] or fewer.
    pub files: Vec<FileEntry>,
    /// The parts that list the files, when there are more.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartRef>,
    pub published_at: String,
}

impl SuccessManifest {
    pub fn file_list(&self) -> FileList {
        FileList {
            files: self.files.clone(),
            parts: self.parts.clone(),
        }
    }
}

/// The committed work-table a final output is published from.
pub struct Committed<'a> {
    /// Where its files are in the store (ends in `/`).
    pub prefix: &'a str,
    pub files: &'a FileList,
    pub commit_id: &'a str,
}

/// Publishes a committed work-table as the final output of `stage` for `batch`, replacing
/// any earlier version. Its files are copied inside the store (server-side on S3), so the
/// output is exactly what was committed and no byte goes through respawn.
#[allow(clippy::too_many_arguments)]
pub async fn publish_output<S: Store + Clone + 'static>(
    store: &S,
    layout: &Layout,
    stage: &str,
    batch: &str,
    run_id: &str,
    committed: Committed<'_>,
    options: &TransferOptions,
    now: SystemTime,
) -> Result<(), StoreError> {
    let prefix = layout.output(stage, batch);
    let success = layout.success(stage, batch);
    // Readers must stop trusting the folder before any file in it changes.
    store.delete_many(std::slice::from_ref(&success)).await?;
    // A publish killed midway may have left a temporary file here, which no listing shows.
    store.collect_stale(&prefix).await?;
    let mut chunks = committed.files.chunks();
    while let Some(files) = chunks.next(store).await? {
        copy_files(store, committed.prefix, &prefix, &files, options).await?;
    }
    remove_leftovers(store, &prefix, committed.files, &success).await?;
    // The parts of the `_SUCCESS` are copies of the COMMIT's, inside the store.
    let parts_prefix = format!("{prefix}{SUCCESS_PARTS}");
    store.delete_prefix(&parts_prefix).await?;
    let mut parts = PartWriter::new(store, parts_prefix);
    for part in &committed.files.parts {
        parts.copy_part(part).await?;
    }
    let written = parts.finish().await?;
    // The files are the committed ones (copy_files checked every size), borrowed.
    let manifest = SuccessManifestRef {
        format: respawn_core::contract::FORMAT,
        workflow: layout.workflow(),
        stage,
        batch,
        run_id,
        commit_id: committed.commit_id,
        files: &committed.files.files,
        parts: &written.parts,
        published_at: super::timestamp(now),
    };
    store
        .put(&success, to_compact_json(&manifest), PutMode::Overwrite)
        .await?;
    Ok(())
}

/// Deletes what an earlier version left under an output's `prefix` that `files` does not
/// list, and checks that every file it lists is there (a merge of the two, a page at a
/// time: a million new files are never held as a set of keys).
async fn remove_leftovers<S: Store>(
    store: &S,
    prefix: &str,
    files: &FileList,
    success: &str,
) -> Result<(), StoreError> {
    let mut comparison = Comparison::new(
        store,
        prefix,
        files,
        success_and_parts,
        store.locate(success),
    );
    let mut leftovers = Vec::new();
    while let Some(difference) = comparison.next().await? {
        match difference {
            Difference::Extra(key) => leftovers.push(key),
            missing_or_resized => {
                return Err(StoreError::Corrupt {
                    object: store.locate(&format!("{prefix}{}", path_of(&missing_or_resized))),
                    detail: "it was copied into the output, but the store does not list it with the committed size".into(),
                });
            }
        }
        if leftovers.len() >= 1_000 {
            store.delete_many(&std::mem::take(&mut leftovers)).await?;
        }
    }
    store.delete_many(&leftovers).await
}

/// A [`SuccessManifest`] as it is written: the same fields, borrowed.
#[derive(Serialize)]
struct SuccessManifestRef<'a> {
    format: u32,
    workflow: &'a str,
    stage: &'a str,
    batch: &'a str,
    run_id: &'a str,
    commit_id: &'a str,
    files: &'a [FileEntry],
    #[serde(skip_serializing_if = "<[PartRef]>::is_empty")]
    parts: &'a [PartRef],
    published_at: String,
}

/// The published output of a stage for a batch: `None` unless `_SUCCESS` is there and
/// every file it lists is too, at its size ([`output_problem`] says what is wrong).
pub async fn read_output<S: Store>(
    store: &S,
    layout: &Layout,
    stage: &str,
    batch: &str,
) -> Result<Option<SuccessManifest>, StoreError> {
    Ok(check_output(store, layout, stage, batch).await?.ok())
}

/// Why the published output of a stage for a batch cannot be trusted (no `_SUCCESS`, or a
/// file it lists is missing or has another size), or `None` when it is complete.
pub async fn output_problem<S: Store>(
    store: &S,
    layout: &Layout,
    stage: &str,
    batch: &str,
) -> Result<Option<String>, StoreError> {
    Ok(check_output(store, layout, stage, batch).await?.err())
}

/// The `_SUCCESS` manifest of a published output, as it is (its files not looked at).
pub async fn read_success<S: Store>(
    store: &S,
    layout: &Layout,
    stage: &str,
    batch: &str,
) -> Result<Option<SuccessManifest>, StoreError> {
    let key = layout.success(stage, batch);
    match store.get(&key).await {
        Ok((bytes, _)) => Ok(Some(parse_json(store.locate(&key), &bytes)?)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(other) => Err(other),
    }
}

/// The `_SUCCESS` manifest, checked against one LIST of the output's prefix.
async fn check_output<S: Store>(
    store: &S,
    layout: &Layout,
    stage: &str,
    batch: &str,
) -> Result<Result<SuccessManifest, String>, StoreError> {
    let prefix = layout.output(stage, batch);
    let Some(manifest) = read_success(store, layout, stage, batch).await? else {
        return Ok(Err(format!("{} is gone", store.locate(&prefix))));
    };
    let list = manifest.file_list();
    let mut comparison = Comparison::new(
        store,
        &prefix,
        &list,
        success_and_parts,
        store.locate(&layout.success(stage, batch)),
    );
    while let Some(difference) = comparison.next().await? {
        let locate = |entry: &FileEntry| store.locate(&format!("{prefix}{}", entry.path));
        match difference {
            Difference::Extra(_) => {}
            Difference::Size { entry, stored } => {
                return Ok(Err(format!(
                    "{} has {stored} bytes where its _SUCCESS says {}",
                    locate(&entry),
                    entry.size
                )));
            }
            Difference::Missing(entry) => {
                return Ok(Err(format!(
                    "{}, listed in its _SUCCESS, is missing",
                    locate(&entry)
                )));
            }
        }
    }
    Ok(Ok(manifest))
}
