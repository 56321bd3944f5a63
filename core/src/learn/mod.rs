//! Figures learned from the run history: each stage's duration and output size from the
//! attempts that succeeded, and the spot interruption rate from the clusters runs held.
//!
//! One implementation for every command: `plan`, `simulate`, `run` (its plan and
//! `market: auto`) and `stats` call [`learn`] on the run records the store holds and
//! [`History::apply`] to the workflow, so each decision reads the same numbers and says
//! where they came from.
//!
//! A stage's samples are the runs of the same definition (its fingerprint), the last
//! [`WINDOW`] of them; runs of earlier definitions count a quarter each. The learned value
//! is their median, blended with the file's value until they weigh [`ENOUGH`] runs.

mod empirical;
mod interruptions;
mod stats;

pub use empirical::{EMPIRICAL_LOSSES, history_trace};
pub use interruptions::{InterruptionModel, ZoneFigures, cluster_kind};
pub use stats::{median, quantile};

use crate::contract::RunRecord;
use crate::contract::fingerprint::fingerprints;
use crate::workflow::Workflow;
use std::time::Duration;

/// How many runs of the same definition make a learned figure replace the file's.
pub const ENOUGH: f64 = 3.0;
/// How many of the latest samples of a stage count (older runs describe older data).
pub const WINDOW: usize = 20;
/// What a run of an earlier definition of a stage weighs against one of the current.
const EARLIER_WEIGHT: f64 = 0.25;

/// Where a number a plan uses came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// The workflow file (no history, or `--no-history`).
    File,
    /// Learned from `runs` runs (`earlier` of them of earlier definitions); `blended`
    /// when they weigh less than [`ENOUGH`] runs and the file's value still counts.
    History {
        runs: usize,
        earlier: usize,
        blended: bool,
    },
}

impl Source {
    /// `workflow file`, `history: 4 runs`, `history: 1 run, blended with the workflow file`.
    pub fn describe(&self) -> String {
        match self {
            Source::File => "workflow file".into(),
            Source::History {
                runs,
                earlier,
                blended,
            } => {
                let mut text = format!("history: {runs} run{}", if *runs == 1 { "" } else { "s" });
                if *earlier > 0 {
                    text.push_str(&format!(" ({earlier} of an earlier definition)"));
                }
                if *blended {
                    text.push_str(", blended with the workflow file");
                }
                text
            }
        }
    }

    pub fn is_learned(&self) -> bool {
        matches!(self, Source::History { .. })
    }
}

/// One learned figure of a stage: the file's value, what runs measured, and the value a
/// plan uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub file: f64,
    /// What a plan uses: the file's value, the learned median, or a blend of the two.
    pub value: f64,
    /// Median and 90th percentile of the samples used (none without samples).
    pub median: Option<f64>,
    pub p90: Option<f64>,
    pub source: Source,
}

/// The learned figures of one stage: seconds and bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct StageFigures {
    pub stage: String,
    pub estimate: Figure,
    pub output_size: Figure,
}

/// What the history says of a workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct History {
    pub stages: Vec<StageFigures>,
    pub interruptions: InterruptionModel,
    /// Run records read.
    pub runs: usize,
}

impl History {
    /// The figures of the file alone (`--no-history`).
    pub fn none(workflow: &Workflow) -> History {
        learn(workflow, &[])
    }

    /// Puts the plan's values into the workflow: each stage's estimate and output size,
    /// the cluster's `mtti` when it was learned, and the clusters held as the planning
    /// model when there were enough losses to replay.
    pub fn apply(&self, workflow: &mut Workflow) {
        for (stage, figures) in workflow.stages.iter_mut().zip(&self.stages) {
            stage.estimate = Duration::from_secs_f64(figures.estimate.value.max(0.0));
            stage.output_size = figures.output_size.value.max(0.0).round() as u64;
        }
        // A planning trace (`cluster.interruptions`) is the model the user chose.
        if self.interruptions.source.is_learned() && workflow.cluster.interruptions.is_none() {
            workflow.cluster.mtti = self.interruptions.mtti;
            workflow.cluster.learned_trace = self.interruptions.empirical.clone();
        }
    }
}

/// One measured value of a stage, and whether it came from its current definition.
struct Sample {
    value: f64,
    same: bool,
}

/// Learns from `records` (oldest first, as the ledger lists them) what the history says of
/// each stage of `workflow` and of its interruptions.
pub fn learn(workflow: &Workflow, records: &[RunRecord]) -> History {
    let prints = fingerprints(workflow);
    let stages = workflow
        .stages
        .iter()
        .zip(&prints)
        .map(|(stage, print)| {
            let samples = |pick: fn(&crate::contract::StageRecord) -> Option<f64>| {
                records
                    .iter()
                    .filter_map(|record| record.stages.get(&stage.name))
                    .filter_map(|entry| {
                        let value = pick(entry)?;
                        let same = entry.fingerprint.as_deref() == Some(print.as_str());
                        value.is_finite().then_some(Sample { value, same })
                    })
                    .collect::<Vec<_>>()
            };
            StageFigures {
                stage: stage.name.clone(),
                estimate: figure(stage.estimate.as_secs_f64(), samples(|e| e.seconds)),
                output_size: figure(
                    stage.output_size as f64,
                    samples(|e| e.bytes.map(|b| b as f64)),
                ),
            }
        })
        .collect();
    History {
        stages,
        interruptions: InterruptionModel::learn(workflow, records),
        runs: records.len(),
    }
}

/// The figure `samples` (oldest first) make of a value the file sets to `file`.
fn figure(file: f64, samples: Vec<Sample>) -> Figure {
    let latest = |same: bool| -> Vec<f64> {
        let picked: Vec<f64> = samples
            .iter()
            .filter(|s| s.same == same)
            .map(|s| s.value)
            .collect();
        picked[picked.len().saturating_sub(WINDOW)..].to_vec()
    };
    let (current, earlier) = (latest(true), latest(false));
    let used = if current.is_empty() {
        &earlier
    } else {
        &current
    };
    let Some(learned) = median(used) else {
        return Figure {
            file,
            value: file,
            median: None,
            p90: None,
            source: Source::File,
        };
    };
    let weight = current.len() as f64 + EARLIER_WEIGHT * earlier.len() as f64;
    let share = (weight / ENOUGH).min(1.0);
    Figure {
        file,
        value: share * learned + (1.0 - share) * file,
        median: Some(learned),
        p90: quantile(used, 0.9),
        source: Source::History {
            runs: current.len() + earlier.len(),
            earlier: earlier.len(),
            blended: share < 1.0,
        },
    }
}

#[cfg(test)]
mod tests;
