//! The learned interruption model: losses per hour of spot capacity actually held, from
//! the run records of the same kind of cluster, with the file's `mtti` as a prior so that
//! a few runs do not swing it.
//!
//! The prior is worth [`PRIOR_LOSSES`] losses over that many MTTIs (a Gamma prior on the
//! rate); the runs add the losses they saw and the spot hours they held. The learned MTTI
//! is the posterior mean of the time between losses: `(prior hours + held) / (prior
//! losses + losses)`.

use super::Source;
use crate::contract::RunRecord;
use crate::workflow::{Provider, Workflow};
use std::time::Duration;

/// What the file's `mtti` weighs, in losses.
pub const PRIOR_LOSSES: f64 = 2.0;

/// The kind of cluster a run held, for matching history to a workflow's cluster:
/// `local`, or `emr` with the region, the primary and core fleets' instance types, and the
/// task fleet's apart (`emr eu-west-1 m5.xlarge,r5.xlarge task c5.xlarge`).
pub fn cluster_kind(workflow: &Workflow) -> String {
    let cluster = &workflow.cluster;
    match (cluster.provider, &cluster.emr) {
        (Provider::Emr, Some(emr)) => {
            let mut types: Vec<&str> = std::iter::once(&emr.primary)
                .chain(&emr.core)
                .flat_map(|fleet| fleet.instance_types.iter().map(String::as_str))
                .collect();
            types.sort_unstable();
            types.dedup();
            let region = emr.region.as_deref().unwrap_or("default-region");
            let mut kind = format!("emr {region} {}", types.join(","));
            // A task fleet (spot beside an on-demand primary and core) loses nodes, not
            // the cluster: another kind, whatever its types.
            if let Some(task) = &emr.task {
                let mut types: Vec<&str> = task.instance_types.iter().map(String::as_str).collect();
                types.sort_unstable();
                types.dedup();
                kind.push_str(&format!(" task {}", types.join(",")));
            }
            kind
        }
        _ => "local".into(),
    }
}

/// The spot MTTI a plan uses and where it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct InterruptionModel {
    /// The kind of cluster it is about ([`cluster_kind`]).
    pub kind: String,
    pub mtti: Duration,
    /// The file's `mtti`.
    pub file: Duration,
    /// Spot losses seen and spot cluster-hours held by the runs of this kind.
    pub losses: u32,
    pub hours: f64,
    /// Runs of this kind that held spot capacity.
    pub runs: usize,
    pub source: Source,
}

impl InterruptionModel {
    /// What `records` say of spot clusters of the workflow's kind.
    pub fn learn(workflow: &Workflow, records: &[RunRecord]) -> InterruptionModel {
        let kind = cluster_kind(workflow);
        let file = workflow.cluster.mtti;
        let (mut losses, mut hours, mut runs) = (0u32, 0.0f64, 0usize);
        for record in records {
            let held = record.cluster_hours.get("spot").copied().unwrap_or(0.0);
            if record.cluster_kind.as_deref() != Some(kind.as_str()) || held <= 0.0 {
                continue;
            }
            runs += 1;
            hours += held;
            losses += record
                .interruptions
                .iter()
                .filter(|loss| loss.market == "spot")
                .count() as u32;
        }
        let prior_hours = PRIOR_LOSSES * file.as_secs_f64() / 3600.0;
        let (mtti, source) = if runs == 0 || !prior_hours.is_finite() {
            (file, Source::File)
        } else {
            let mean_hours = (prior_hours + hours) / (PRIOR_LOSSES + f64::from(losses));
            let source = Source::History {
                runs,
                earlier: 0,
                blended: true,
            };
            (Duration::from_secs_f64(mean_hours * 3600.0), source)
        };
        InterruptionModel {
            kind,
            mtti,
            file,
            losses,
            hours,
            runs,
            source,
        }
    }

    /// `history: 4 runs, 3 losses in 2.5 h of spot (the file's mtti as a prior)`.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::File => "workflow file".into(),
            Source::History { runs, .. } => format!(
                "history: {runs} run{}, {} loss{} in {:.2} h of spot (the file's mtti as a prior)",
                if *runs == 1 { "" } else { "s" },
                self.losses,
                if self.losses == 1 { "" } else { "es" },
                self.hours
            ),
        }
    }
}

impl InterruptionModel {
    /// A 90% interval of the MTTI the history allows (the Gamma posterior of the rate, by
    /// the Wilson-Hilferty approximation); none without history.
    pub fn interval(&self) -> Option<(Duration, Duration)> {
        if !self.source.is_learned() {
            return None;
        }
        let shape = PRIOR_LOSSES + f64::from(self.losses);
        let hours = PRIOR_LOSSES * self.file.as_secs_f64() / 3600.0 + self.hours;
        let rate_at = |z: f64| {
            let cube = 1.0 - 1.0 / (9.0 * shape) + z / (3.0 * shape.sqrt());
            shape * cube.max(0.0).powi(3) / hours
        };
        let mtti = |rate: f64| Duration::from_secs_f64((3600.0 / rate).min(1e12));
        Some((mtti(rate_at(1.645)), mtti(rate_at(-1.645))))
    }
}
