//! A run's stored events read back as a timeline: attempts with their outcomes, cluster
//! generations, interruptions, checkpoint commits and restores, all in seconds since the
//! run was first taken. Pure: the caller reads the events from the store.
//!
//! `elapsed_s` counts from the start of each orchestrator process (a resumed run starts
//! again at 0) and `at` is to the second, so each process's start is placed at the latest
//! `at - elapsed_s` among its events, and every event at that start plus its `elapsed_s`.

use crate::contract::event::{InstanceUse, NoticeKind, RunEvent, StampedEvent};
use crate::workflow::Market;
use serde::Serialize;

/// How an attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Succeeded,
    /// The stage's own failure (a non-zero exit).
    Failed,
    /// Ended with its cluster.
    Interrupted,
    /// Succeeded, but its work-table was later found stale and rebuilt.
    Stale,
    /// Still running at the last event of a live run.
    Running,
    /// Its orchestrator stopped or died before the attempt ended.
    Abandoned,
    /// It exited 0, but an `error` check refused its output.
    Refused,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Interrupted => "interrupted",
            Outcome::Stale => "stale",
            Outcome::Running => "running",
            Outcome::Abandoned => "abandoned",
            Outcome::Refused => "refused",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Attempt {
    pub stage: String,
    pub attempt: u32,
    /// Index into [`Timeline::generations`].
    pub generation: usize,
    pub market: Market,
    pub start: f64,
    pub end: f64,
    pub outcome: Outcome,
    pub log: String,
    pub code: Option<i32>,
    /// A successful attempt of a stage that had already succeeded in this run: its
    /// ephemeral work-table was lost with a cluster and a consumer still needed it.
    pub recompute: bool,
    /// The checks that ran on its output, in order (they run after it exits 0, and the
    /// attempt lasts until the last has ended).
    pub checks: Vec<CheckMark>,
}

/// How one check of an attempt's output ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CheckMark {
    pub name: String,
    pub severity: String,
    pub code: i32,
}

impl Attempt {
    pub fn seconds(&self) -> f64 {
        (self.end - self.start).max(0.0)
    }
}

/// How a cluster generation ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ClusterEnd {
    Lost {
        cause: String,
    },
    Released,
    /// Its orchestrator died without a word; charged until another took the run over.
    Abandoned,
    /// Still up at the last event, or its orchestrator stopped without a word.
    Open,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Generation {
    /// Numbered from 1 over the whole run (each orchestrator process numbers its own).
    pub number: usize,
    pub market: Market,
    pub provider: String,
    pub cluster: String,
    pub requested: f64,
    pub ready: Option<f64>,
    pub end: f64,
    pub ended: ClusterEnd,
    /// EMR: instance-hours as the provider reported them at release.
    pub instance_hours: Option<f64>,
    /// EMR: the instances it listed at release, per fleet, type and market (`None` in
    /// records written before respawn kept them).
    pub instances: Option<Vec<InstanceUse>>,
}

impl Generation {
    pub fn seconds(&self) -> f64 {
        (self.end - self.requested).max(0.0)
    }

    /// Time spent waiting for the cluster to come up.
    pub fn provisioning_seconds(&self) -> f64 {
        (self.ready.unwrap_or(self.end) - self.requested).max(0.0)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Interruption {
    pub at: f64,
    pub generation: usize,
    pub market: Market,
    pub cause: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Commit {
    pub stage: String,
    pub attempt: u32,
    pub at: f64,
    pub files: usize,
    pub bytes: u64,
    pub seconds: f64,
    /// Uploaded in a notice's window, beyond the plan.
    pub window: bool,
}

/// A warning that a cluster would be reclaimed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NoticeMark {
    pub at: f64,
    /// Index into [`Timeline::generations`].
    pub generation: usize,
    pub kind: NoticeKind,
    pub lead: f64,
    pub instances: Vec<String>,
    /// No loss came (an interruption notice only).
    pub lapsed: bool,
}

/// Nodes of a cluster reclaimed while the cluster worked on (`capacity-lost`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CapacityMark {
    pub at: f64,
    /// Index into [`Timeline::generations`].
    pub generation: usize,
    pub nodes: u32,
    pub remaining: u32,
    pub cause: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Restore {
    pub stage: String,
    pub generation: usize,
    pub at: f64,
    pub bytes: u64,
    pub seconds: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Timeline {
    /// When second 0 is (RFC 3339), if any event was read.
    pub origin: Option<String>,
    /// Seconds from the first to the last event.
    pub end: f64,
    pub attempts: Vec<Attempt>,
    pub generations: Vec<Generation>,
    pub interruptions: Vec<Interruption>,
    pub notices: Vec<NoticeMark>,
    /// Nodes lost while their cluster worked on.
    pub capacity: Vec<CapacityMark>,
    pub commits: Vec<Commit>,
    pub restores: Vec<Restore>,
    pub published: Vec<String>,
    /// When the run's work-tables were deleted.
    pub cleaned: Option<f64>,
    /// Events that could not be read, by number, and why.
    pub problems: Vec<String>,
}

/// Reads stored events (as JSON) into stamped events; one that does not read is named in
/// the returned problems and left out.
pub fn parse_events(values: &[serde_json::Value]) -> (Vec<StampedEvent>, Vec<String>) {
    let mut events = Vec::with_capacity(values.len());
    let mut problems = Vec::new();
    for (seq, value) in values.iter().enumerate() {
        match serde_json::from_value::<StampedEvent>(value.clone()) {
            Ok(event) => events.push(event),
            Err(error) => problems.push(format!("event {seq} cannot be read: {error}")),
        }
    }
    (events, problems)
}

fn epoch_seconds(at: &str) -> Option<f64> {
    let timestamp: jiff::Timestamp = at.parse().ok()?;
    Some(timestamp.as_millisecond() as f64 / 1000.0)
}

/// Seconds since the epoch of every event (see the module's comment on sessions).
fn absolute_times(events: &[StampedEvent]) -> Vec<f64> {
    let mut times = vec![0.0; events.len()];
    let mut start = 0;
    while start < events.len() {
        let mut end = start + 1;
        while end < events.len() && events[end].elapsed_s >= events[end - 1].elapsed_s {
            end += 1;
        }
        let base = events[start..end]
            .iter()
            .filter_map(|e| epoch_seconds(&e.at).map(|at| at - e.elapsed_s))
            .fold(f64::NEG_INFINITY, f64::max);
        let base = if base.is_finite() { base } else { 0.0 };
        for i in start..end {
            times[i] = base + events[i].elapsed_s;
        }
        start = end;
    }
    times
}

/// Builds the timeline of one run from its events, in stored order. `live` says whether
/// the run is still going (its open attempts are running, not abandoned).
pub fn timeline(events: &[StampedEvent], live: bool) -> Timeline {
    let times = absolute_times(events);
    let origin_time = times.iter().copied().fold(f64::INFINITY, f64::min);
    let mut out = Timeline {
        origin: events.first().map(|_| {
            jiff::Timestamp::from_millisecond((origin_time * 1000.0).round() as i64)
                .map(|t| t.to_string())
                .unwrap_or_default()
        }),
        ..Timeline::default()
    };
    if events.is_empty() {
        return out;
    }
    // Per orchestrator process: its generation numbers map to the run's generations.
    let mut session_generations: Vec<(u32, usize)> = Vec::new();
    let mut open_attempts: Vec<usize> = Vec::new();
    let mut succeeded_once: std::collections::BTreeSet<String> = Default::default();
    let mut previous_elapsed = f64::NEG_INFINITY;
    let close_session = |out: &mut Timeline, open: &mut Vec<usize>, at: f64, live: bool| {
        for index in open.drain(..) {
            let attempt = &mut out.attempts[index];
            attempt.end = at;
            attempt.outcome = if live {
                Outcome::Running
            } else {
                Outcome::Abandoned
            };
        }
        for generation in &mut out.generations {
            if generation.ended == ClusterEnd::Open && generation.end < at {
                generation.end = at;
            }
        }
    };
    for (index, stamped) in events.iter().enumerate() {
        let t = times[index] - origin_time;
        // A new orchestrator process counts its elapsed time from 0 again.
        let new_session = stamped.elapsed_s < previous_elapsed;
        if new_session && index > 0 {
            let last = times[index - 1] - origin_time;
            close_session(&mut out, &mut open_attempts, last, false);
            abandon_generations(&mut out, t);
            session_generations.clear();
        }
        previous_elapsed = stamped.elapsed_s;
        out.end = out.end.max(t);
        let generation_of = |map: &[(u32, usize)], number: u32| {
            map.iter()
                .rev()
                .find(|(n, _)| *n == number)
                .map(|(_, index)| *index)
        };
        match &stamped.event {
            RunEvent::Provision {
                generation, market, ..
            } => {
                session_generations.push((*generation, out.generations.len()));
                out.generations.push(Generation {
                    number: out.generations.len() + 1,
                    market: *market,
                    provider: String::new(),
                    cluster: String::new(),
                    requested: t,
                    ready: None,
                    end: t,
                    ended: ClusterEnd::Open,
                    instance_hours: None,
                    instances: None,
                });
            }
            RunEvent::ClusterReady {
                generation,
                provider,
                cluster,
                ..
            } => {
                if let Some(g) = generation_of(&session_generations, *generation) {
                    let generation = &mut out.generations[g];
                    generation.ready = Some(t);
                    generation.end = generation.end.max(t);
                    generation.provider = provider.clone();
                    generation.cluster = cluster.clone();
                }
            }
            RunEvent::ClusterLost {
                generation,
                market,
                cause,
                ..
            } => {
                let g = generation_of(&session_generations, *generation);
                if let Some(g) = g {
                    out.generations[g].end = t;
                    out.generations[g].ended = ClusterEnd::Lost {
                        cause: cause.clone(),
                    };
                }
                out.interruptions.push(Interruption {
                    at: t,
                    generation: g.unwrap_or(0),
                    market: *market,
                    cause: cause.clone(),
                });
            }
            RunEvent::ClusterReleased {
                generation,
                instance_hours,
                instances,
                ..
            } => {
                if let Some(g) = generation_of(&session_generations, *generation) {
                    let generation = &mut out.generations[g];
                    if generation.ended == ClusterEnd::Open {
                        generation.end = t;
                        generation.ended = ClusterEnd::Released;
                    }
                    generation.instance_hours = *instance_hours;
                    generation.instances.clone_from(instances);
                }
            }
            RunEvent::Launch {
                stage,
                attempt,
                market,
                generation,
                log,
            } => {
                open_attempts.push(out.attempts.len());
                out.attempts.push(Attempt {
                    stage: stage.clone(),
                    attempt: *attempt,
                    generation: generation_of(&session_generations, *generation).unwrap_or(0),
                    market: *market,
                    start: t,
                    end: t,
                    outcome: Outcome::Running,
                    log: log.clone(),
                    code: None,
                    recompute: false,
                    checks: Vec::new(),
                });
            }
            RunEvent::Exit {
                stage,
                attempt,
                code,
                ..
            } => {
                if let Some(index) = take_open(&out, &mut open_attempts, stage, *attempt) {
                    let a = &mut out.attempts[index];
                    a.end = t;
                    a.code = Some(*code);
                    a.outcome = if *code == 0 {
                        Outcome::Succeeded
                    } else {
                        Outcome::Failed
                    };
                    if *code == 0 {
                        a.recompute = !succeeded_once.insert(stage.clone());
                    }
                }
            }
            RunEvent::Interrupted { stage, attempt } => {
                // An attempt that exited 0 is interrupted while its checks run.
                let checking = || {
                    (out.attempts.iter()).rposition(|a| {
                        a.stage == *stage
                            && a.attempt == *attempt
                            && a.outcome == Outcome::Succeeded
                    })
                };
                let found = take_open(&out, &mut open_attempts, stage, *attempt);
                if let Some(index) = found.or_else(checking) {
                    out.attempts[index].end = t;
                    out.attempts[index].outcome = Outcome::Interrupted;
                }
            }
            RunEvent::Check {
                stage,
                attempt,
                check,
                severity,
                code,
                ..
            } => {
                let found =
                    (out.attempts.iter_mut()).rfind(|a| a.stage == *stage && a.attempt == *attempt);
                if let Some(a) = found {
                    a.end = a.end.max(t);
                    if *code != 0 && severity != "warn" {
                        a.outcome = Outcome::Refused;
                    }
                    a.checks.push(CheckMark {
                        name: check.clone(),
                        severity: severity.clone(),
                        code: *code,
                    });
                }
            }
            RunEvent::Committed {
                stage,
                attempt,
                files,
                bytes,
                seconds,
                window,
            } => out.commits.push(Commit {
                stage: stage.clone(),
                attempt: *attempt,
                at: t,
                files: *files,
                bytes: *bytes,
                seconds: *seconds,
                window: *window,
            }),
            RunEvent::Notice {
                generation,
                kind,
                lead_s,
                instances,
            } => out.notices.push(NoticeMark {
                at: t,
                generation: generation_of(&session_generations, *generation).unwrap_or(0),
                kind: *kind,
                lead: *lead_s,
                instances: instances.clone(),
                lapsed: false,
            }),
            RunEvent::CapacityLost {
                generation,
                nodes,
                remaining,
                cause,
            } => out.capacity.push(CapacityMark {
                at: t,
                generation: generation_of(&session_generations, *generation).unwrap_or(0),
                nodes: *nodes,
                remaining: *remaining,
                cause: cause.clone(),
            }),
            RunEvent::NoticeLapsed { generation } => {
                let g = generation_of(&session_generations, *generation).unwrap_or(0);
                let warned = out
                    .notices
                    .iter_mut()
                    .rev()
                    .find(|n| n.generation == g && n.kind == NoticeKind::Interruption);
                if let Some(notice) = warned {
                    notice.lapsed = true;
                }
            }
            RunEvent::Restored {
                stage,
                generation,
                bytes,
                seconds,
            } => out.restores.push(Restore {
                stage: stage.clone(),
                generation: generation_of(&session_generations, *generation).unwrap_or(0),
                at: t,
                bytes: *bytes,
                seconds: *seconds,
            }),
            RunEvent::Stale { message, stage } => {
                // An earlier success of the stage in this run was rebuilt. Events written
                // before `stage` was kept name it only at the start of their message
                // ("stage `NAME` runs again: ..."), read for those events alone.
                let stage = stage.as_deref().or_else(|| {
                    let named = message.strip_prefix("stage `")?;
                    named.split_once("` runs again").map(|(name, _)| name)
                });
                let rebuilt = out.attempts.iter_mut().rev().find(|attempt| {
                    attempt.outcome == Outcome::Succeeded && Some(attempt.stage.as_str()) == stage
                });
                if let Some(attempt) = rebuilt {
                    attempt.outcome = Outcome::Stale;
                    succeeded_once.remove(&attempt.stage);
                }
            }
            RunEvent::Published { stage, .. } => out.published.push(stage.clone()),
            RunEvent::Cleaned { .. } => out.cleaned = Some(t),
            _ => {}
        }
    }
    let last = out.end;
    close_session(&mut out, &mut open_attempts, last, live);
    out
}

/// The clusters a dead orchestrator left open end when the next one takes the run over
/// (`at`): it then sweeps or adopts them, and nothing of the dead one's runs on them after.
fn abandon_generations(out: &mut Timeline, at: f64) {
    for generation in &mut out.generations {
        if generation.ended == ClusterEnd::Open {
            generation.end = generation.end.max(at);
            generation.ended = ClusterEnd::Abandoned;
        }
    }
}

fn take_open(out: &Timeline, open: &mut Vec<usize>, stage: &str, attempt: u32) -> Option<usize> {
    let position = open.iter().position(|&i| {
        let a = &out.attempts[i];
        a.stage == stage && a.attempt == attempt
    })?;
    Some(open.remove(position))
}

#[cfg(test)]
pub(crate) mod tests;
