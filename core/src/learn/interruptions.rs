//! The learned interruption model: losses per hour of spot capacity actually held, from
//! the run records of the same kind of cluster, with the file's `mtti` as a prior so that
//! a few runs do not swing it.
//!
//! The prior is worth [`PRIOR_LOSSES`] losses over that many MTTIs (a Gamma prior on the
//! rate); the runs add the losses they saw and the spot hours they held. The learned MTTI
//! is the posterior mean of the time between losses: `(prior hours + held) / (prior
//! losses + losses)`. Where the history lost enough clusters, the clusters themselves are
//! the planning model ([`super::empirical`]), their bursts and quiet spells kept.
//!
//! Runs record each cluster's zone (EMR tells it): a workflow whose subnets the history
//! has seen learns from those zones alone, and `stats` gives the figures per zone.

use super::Source;
use crate::contract::{HeldCluster, RunRecord};
use crate::workflow::capacity::CapacityTrace;
use crate::workflow::{Provider, Workflow};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
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
    /// Spot losses seen and spot cluster-hours held by the runs of this kind (in the zones
    /// the workflow's subnets are in, where the history knows them).
    pub losses: u32,
    pub hours: f64,
    /// Runs of this kind that held spot capacity.
    pub runs: usize,
    pub source: Source,
    /// The zones the figures are from, when the workflow's subnets pin them.
    pub zones: Vec<String>,
    /// The spot clusters held, laid end to end as a capacity trace, when they lost enough
    /// clusters ([`super::empirical`]): the planning model then, replayed as it came.
    pub empirical: Option<Arc<CapacityTrace>>,
    /// Losses and hours per zone, for `stats` (every zone of the kind the history saw).
    pub by_zone: Vec<ZoneFigures>,
}

/// What the history says of spot clusters in one availability zone.
#[derive(Clone, Debug, PartialEq)]
pub struct ZoneFigures {
    pub zone: String,
    pub clusters: usize,
    pub losses: u32,
    pub hours: f64,
}

/// What the runs of one kind held on spot: per cluster where the record lists them,
/// summed for older records that only kept totals.
#[derive(Default)]
struct Exposure<'a> {
    losses: u32,
    hours: f64,
    runs: usize,
    clusters: Vec<&'a HeldCluster>,
}

impl<'a> Exposure<'a> {
    fn add(&mut self, record: &'a RunRecord, zones: &BTreeSet<String>) {
        if !record.clusters.is_empty() {
            let spot = (record.clusters.iter())
                .filter(|c| c.market == "spot")
                .filter(|c| zones.is_empty() || c.zone.as_ref().is_some_and(|z| zones.contains(z)));
            let before = self.clusters.len();
            for cluster in spot {
                self.hours += cluster.seconds.max(0.0) / 3600.0;
                self.losses += u32::from(cluster.lost);
                self.clusters.push(cluster);
            }
            self.runs += usize::from(self.clusters.len() > before);
            return;
        }
        let held = record.cluster_hours.get("spot").copied().unwrap_or(0.0);
        if held <= 0.0 || !zones.is_empty() {
            return;
        }
        self.runs += 1;
        self.hours += held;
        self.losses += (record.interruptions.iter())
            .filter(|loss| loss.market == "spot")
            .count() as u32;
    }
}

impl InterruptionModel {
    /// What `records` say of spot clusters of the workflow's kind.
    pub fn learn(workflow: &Workflow, records: &[RunRecord]) -> InterruptionModel {
        let kind = cluster_kind(workflow);
        let file = workflow.cluster.mtti;
        let of_kind: Vec<&RunRecord> = (records.iter())
            .filter(|r| r.cluster_kind.as_deref() == Some(kind.as_str()))
            .collect();
        let zones = pinned_zones(workflow, &of_kind);
        let mut seen = Exposure::default();
        for record in &of_kind {
            seen.add(record, &zones);
        }
        let prior_hours = PRIOR_LOSSES * file.as_secs_f64() / 3600.0;
        let (mtti, source) = if seen.runs == 0 || !prior_hours.is_finite() {
            (file, Source::File)
        } else {
            let mean_hours = (prior_hours + seen.hours) / (PRIOR_LOSSES + f64::from(seen.losses));
            let source = Source::History {
                runs: seen.runs,
                earlier: 0,
                blended: true,
            };
            (Duration::from_secs_f64(mean_hours * 3600.0), source)
        };
        InterruptionModel {
            kind,
            mtti,
            file,
            losses: seen.losses,
            hours: seen.hours,
            runs: seen.runs,
            source,
            zones: zones.into_iter().collect(),
            empirical: super::empirical::history_trace(&seen.clusters),
            by_zone: by_zone(&of_kind),
        }
    }

    /// `history: 4 runs, 3 losses in 2.5 h of spot (the file's mtti as a prior)`.
    pub fn describe(&self) -> String {
        let Source::History { runs, .. } = &self.source else {
            return "workflow file".into();
        };
        let zones = if self.zones.is_empty() {
            String::new()
        } else {
            format!(" in {}", self.zones.join(", "))
        };
        let how = if self.empirical.is_some() {
            "replayed as they came"
        } else {
            "the file's mtti as a prior"
        };
        format!(
            "history: {runs} run{}, {} loss{} in {:.2} h of spot{zones} ({how})",
            if *runs == 1 { "" } else { "s" },
            self.losses,
            if self.losses == 1 { "" } else { "es" },
            self.hours
        )
    }
}

/// The zones of the workflow's subnets, when the history saw a cluster in each of them:
/// a workflow pinned to some zones learns from those zones alone. Empty otherwise (no
/// subnets, or one the history never ran in: EMR may place the cluster anywhere).
fn pinned_zones(workflow: &Workflow, records: &[&RunRecord]) -> BTreeSet<String> {
    let Some(emr) = &workflow.cluster.emr else {
        return BTreeSet::new();
    };
    let zone_of: BTreeMap<&str, &str> = (records.iter())
        .flat_map(|r| &r.clusters)
        .filter_map(|c| Some((c.subnet.as_deref()?, c.zone.as_deref()?)))
        .collect();
    let zones: Option<BTreeSet<String>> = (emr.subnets.iter())
        .map(|s| zone_of.get(s.as_str()).map(|z| z.to_string()))
        .collect();
    zones.unwrap_or_default()
}

/// Spot losses and hours per zone, over every cluster of the kind whose zone is known.
fn by_zone(records: &[&RunRecord]) -> Vec<ZoneFigures> {
    let mut zones: BTreeMap<&str, ZoneFigures> = BTreeMap::new();
    let spot = (records.iter().flat_map(|r| &r.clusters)).filter(|c| c.market == "spot");
    for cluster in spot {
        let Some(zone) = cluster.zone.as_deref() else {
            continue;
        };
        let figures = zones.entry(zone).or_insert_with(|| ZoneFigures {
            zone: zone.into(),
            clusters: 0,
            losses: 0,
            hours: 0.0,
        });
        figures.clusters += 1;
        figures.losses += u32::from(cluster.lost);
        figures.hours += cluster.seconds.max(0.0) / 3600.0;
    }
    zones.into_values().collect()
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
