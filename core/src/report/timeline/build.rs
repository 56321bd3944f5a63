//! Reading a run's events into its [`Timeline`], one event at a time: clusters, attempts
//! and the marks between them (commits, notices, restores, publishing).

use super::{
    Attempt, CapacityMark, CheckMark, ClusterEnd, Commit, Generation, Interruption, NoticeMark,
    Outcome, Restore, Timeline, absolute_times,
};
use crate::contract::event::{NoticeKind, RunEvent, StampedEvent};
use std::collections::BTreeSet;

/// Builds the timeline of one run from its events, in stored order. `live` says whether
/// the run is still going (its open attempts are running, not abandoned).
pub fn timeline(events: &[StampedEvent], live: bool) -> Timeline {
    let times = absolute_times(events);
    let origin_time = times.iter().copied().fold(f64::INFINITY, f64::min);
    let mut build = Build::default();
    build.out.origin = events.first().map(|_| {
        jiff::Timestamp::from_millisecond((origin_time * 1000.0).round() as i64)
            .map(|t| t.to_string())
            .unwrap_or_default()
    });
    if events.is_empty() {
        return build.out;
    }
    let mut previous_elapsed = f64::NEG_INFINITY;
    for (index, stamped) in events.iter().enumerate() {
        let t = times[index] - origin_time;
        // A new orchestrator process counts its elapsed time from 0 again.
        if stamped.elapsed_s < previous_elapsed && index > 0 {
            build.close_session(times[index - 1] - origin_time, false);
            build.abandon_generations(t);
            build.sessions.clear();
        }
        previous_elapsed = stamped.elapsed_s;
        build.out.end = build.out.end.max(t);
        build.event(t, &stamped.event);
    }
    let last = build.out.end;
    build.close_session(last, live);
    build.out
}

/// The timeline so far, and what reading the next event needs to know.
#[derive(Default)]
struct Build {
    out: Timeline,
    /// Per orchestrator process: its generation numbers to the run's generations.
    sessions: Vec<(u32, usize)>,
    /// Attempts launched and not ended yet, by index in `out.attempts`.
    open: Vec<usize>,
    /// Stages that succeeded once in the run: a later success is a recomputation.
    succeeded_once: BTreeSet<String>,
}

impl Build {
    /// The run's generation (its index) of this process's generation `number`.
    fn generation_of(&self, number: u32) -> Option<usize> {
        (self.sessions.iter().rev())
            .find(|(n, _)| *n == number)
            .map(|(_, index)| *index)
    }

    /// An orchestrator process ends at `at`: its open attempts end there (running in a
    /// live run, abandoned otherwise), and so do its open clusters.
    fn close_session(&mut self, at: f64, live: bool) {
        for index in self.open.drain(..) {
            let attempt = &mut self.out.attempts[index];
            attempt.end = at;
            attempt.outcome = if live {
                Outcome::Running
            } else {
                Outcome::Abandoned
            };
        }
        for generation in &mut self.out.generations {
            if generation.ended == ClusterEnd::Open && generation.end < at {
                generation.end = at;
            }
        }
    }

    /// The clusters a dead orchestrator left open end when the next one takes the run
    /// over (`at`): it then sweeps or adopts them, and nothing of the dead one's runs on
    /// them after.
    fn abandon_generations(&mut self, at: f64) {
        for generation in &mut self.out.generations {
            if generation.ended == ClusterEnd::Open {
                generation.end = generation.end.max(at);
                generation.ended = ClusterEnd::Abandoned;
            }
        }
    }

    fn event(&mut self, t: f64, event: &RunEvent) {
        match event {
            RunEvent::Provision { .. }
            | RunEvent::ClusterReady { .. }
            | RunEvent::ClusterLost { .. }
            | RunEvent::ClusterReleased { .. } => self.cluster(t, event),
            RunEvent::Launch { .. } | RunEvent::Exit { .. } | RunEvent::Interrupted { .. } => {
                self.attempt(t, event)
            }
            RunEvent::Check { .. } | RunEvent::Stale { .. } => self.verdict(t, event),
            _ => self.mark(t, event),
        }
    }

    fn cluster(&mut self, t: f64, event: &RunEvent) {
        match event {
            RunEvent::Provision {
                generation, market, ..
            } => {
                self.sessions
                    .push((*generation, self.out.generations.len()));
                self.out.generations.push(Generation {
                    number: self.out.generations.len() + 1,
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
                if let Some(g) = self.generation_of(*generation) {
                    let generation = &mut self.out.generations[g];
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
                let g = self.generation_of(*generation);
                if let Some(g) = g {
                    self.out.generations[g].end = t;
                    self.out.generations[g].ended = ClusterEnd::Lost {
                        cause: cause.clone(),
                    };
                }
                self.out.interruptions.push(Interruption {
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
                if let Some(g) = self.generation_of(*generation) {
                    let generation = &mut self.out.generations[g];
                    if generation.ended == ClusterEnd::Open {
                        generation.end = t;
                        generation.ended = ClusterEnd::Released;
                    }
                    generation.instance_hours = *instance_hours;
                    generation.instances.clone_from(instances);
                }
            }
            _ => {}
        }
    }

    /// The open attempt `attempt` of `stage`, taken out of the open ones.
    fn take_open(&mut self, stage: &str, attempt: u32) -> Option<usize> {
        let attempts = &self.out.attempts;
        let position = (self.open.iter())
            .position(|&i| attempts[i].stage == stage && attempts[i].attempt == attempt)?;
        Some(self.open.remove(position))
    }

    fn attempt(&mut self, t: f64, event: &RunEvent) {
        match event {
            RunEvent::Launch {
                stage,
                attempt,
                market,
                generation,
                log,
            } => {
                self.open.push(self.out.attempts.len());
                let generation = self.generation_of(*generation).unwrap_or(0);
                self.out.attempts.push(Attempt {
                    stage: stage.clone(),
                    attempt: *attempt,
                    generation,
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
                if let Some(index) = self.take_open(stage, *attempt) {
                    let a = &mut self.out.attempts[index];
                    a.end = t;
                    a.code = Some(*code);
                    a.outcome = if *code == 0 {
                        Outcome::Succeeded
                    } else {
                        Outcome::Failed
                    };
                    if *code == 0 {
                        a.recompute = !self.succeeded_once.insert(stage.clone());
                    }
                }
            }
            RunEvent::Interrupted { stage, attempt } => {
                // An attempt that exited 0 is interrupted while its checks run.
                let found = self.take_open(stage, *attempt).or_else(|| {
                    (self.out.attempts.iter()).rposition(|a| {
                        a.stage == *stage
                            && a.attempt == *attempt
                            && a.outcome == Outcome::Succeeded
                    })
                });
                if let Some(index) = found {
                    self.out.attempts[index].end = t;
                    self.out.attempts[index].outcome = Outcome::Interrupted;
                }
            }
            _ => {}
        }
    }

    /// What was said of an attempt after it exited: its checks, or that its work-table
    /// was stale and rebuilt.
    fn verdict(&mut self, t: f64, event: &RunEvent) {
        match event {
            RunEvent::Check {
                stage,
                attempt,
                check,
                severity,
                code,
                ..
            } => {
                let found = (self.out.attempts.iter_mut())
                    .rfind(|a| a.stage == *stage && a.attempt == *attempt);
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
            RunEvent::Stale { message, stage } => {
                // An earlier success of the stage in this run was rebuilt. Events written
                // before `stage` was kept name it only at the start of their message
                // ("stage `NAME` runs again: ..."), read for those events alone.
                let stage = stage.as_deref().or_else(|| {
                    let named = message.strip_prefix("stage `")?;
                    named.split_once("` runs again").map(|(name, _)| name)
                });
                let rebuilt = self.out.attempts.iter_mut().rev().find(|attempt| {
                    attempt.outcome == Outcome::Succeeded && Some(attempt.stage.as_str()) == stage
                });
                if let Some(attempt) = rebuilt {
                    attempt.outcome = Outcome::Stale;
                    self.succeeded_once.remove(&attempt.stage);
                }
            }
            _ => {}
        }
    }

    /// Marks on the timeline: commits, restores, notices, capacity lost, publishing.
    fn mark(&mut self, t: f64, event: &RunEvent) {
        let generation = |build: &Build, number: u32| build.generation_of(number).unwrap_or(0);
        match event {
            RunEvent::Committed {
                stage,
                attempt,
                files,
                bytes,
                seconds,
                window,
            } => self.out.commits.push(Commit {
                stage: stage.clone(),
                attempt: *attempt,
                at: t,
                files: *files,
                bytes: *bytes,
                seconds: *seconds,
                window: *window,
            }),
            RunEvent::Notice {
                generation: g,
                kind,
                lead_s,
                instances,
            } => {
                let g = generation(self, *g);
                self.out.notices.push(NoticeMark {
                    at: t,
                    generation: g,
                    kind: *kind,
                    lead: *lead_s,
                    instances: instances.clone(),
                    lapsed: false,
                })
            }
            RunEvent::CapacityLost {
                generation: g,
                nodes,
                remaining,
                cause,
            } => {
                let g = generation(self, *g);
                self.out.capacity.push(CapacityMark {
                    at: t,
                    generation: g,
                    nodes: *nodes,
                    remaining: *remaining,
                    cause: cause.clone(),
                })
            }
            RunEvent::NoticeLapsed { generation: g } => {
                let g = generation(self, *g);
                let warned = (self.out.notices.iter_mut().rev())
                    .find(|n| n.generation == g && n.kind == NoticeKind::Interruption);
                if let Some(notice) = warned {
                    notice.lapsed = true;
                }
            }
            RunEvent::Restored {
                stage,
                generation: g,
                bytes,
                seconds,
            } => {
                let g = generation(self, *g);
                self.out.restores.push(Restore {
                    stage: stage.clone(),
                    generation: g,
                    at: t,
                    bytes: *bytes,
                    seconds: *seconds,
                })
            }
            RunEvent::Published { stage, .. } => self.out.published.push(stage.clone()),
            RunEvent::Cleaned { .. } => self.out.cleaned = Some(t),
            _ => {}
        }
    }
}
