//! The report's Gantt chart: where each stage's row, each attempt, each cluster and each
//! mark goes, in SVG pixels, and what its tooltip says.

use super::critical::critical_attempts;
use super::markers;
use super::page::{Band, Bar, Marker, ReportInput, Row, Tick};
use super::timeline::{ClusterEnd, Timeline};
use crate::workflow::units::format_seconds;
use std::collections::{BTreeMap, BTreeSet};

/// Geometry of the Gantt, in SVG pixels.
pub(super) const LABEL_WIDTH: f64 = 220.0;
pub(super) const PLOT_WIDTH: f64 = 960.0;
const ROW_HEIGHT: f64 = 18.0;
const BAR_HEIGHT: f64 = 12.0;
const TOP: f64 = 4.0;
/// Longest stage name shown in full on its row; the whole name is on hover.
const LABEL_CHARS: usize = 30;

/// The chart of one timeline: its time axis and the row of each stage.
pub(super) struct Chart<'t> {
    timeline: &'t Timeline,
    /// The axis' end, in seconds from the run's start.
    end: f64,
    /// One row per stage: the workflow's order, then stages only the events name.
    names: Vec<String>,
    row_of: BTreeMap<String, usize>,
    /// The attempts on the critical path, by their index in the timeline.
    pub critical: BTreeSet<usize>,
}

impl<'t> Chart<'t> {
    pub fn new(input: &ReportInput, timeline: &'t Timeline) -> Chart<'t> {
        let mut names: Vec<String> = input
            .workflow
            .map(|wf| wf.stages.iter().map(|s| s.name.clone()).collect())
            .unwrap_or_default();
        let mut known: BTreeSet<String> = names.iter().cloned().collect();
        for attempt in &timeline.attempts {
            if known.insert(attempt.stage.clone()) {
                names.push(attempt.stage.clone());
            }
        }
        let row_of = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        let critical = input
            .workflow
            .map(|wf| critical_attempts(wf, timeline).into_iter().collect())
            .unwrap_or_default();
        Chart {
            timeline,
            end: timeline.end.max(1.0),
            names,
            row_of,
            critical,
        }
    }

    fn x(&self, t: f64) -> f64 {
        LABEL_WIDTH + t / self.end * PLOT_WIDTH
    }

    fn width(&self, seconds: f64) -> f64 {
        (seconds / self.end * PLOT_WIDTH).max(1.0)
    }

    fn row_y(row: usize) -> f64 {
        TOP + row as f64 * ROW_HEIGHT
    }

    pub fn height(&self) -> f64 {
        TOP + self.names.len() as f64 * ROW_HEIGHT + 4.0
    }

    pub fn rows(&self) -> Vec<Row> {
        let critical_stages: BTreeSet<&str> = (self.critical.iter())
            .map(|&i| self.timeline.attempts[i].stage.as_str())
            .collect();
        (self.names.iter().enumerate())
            .map(|(i, name)| Row {
                y: Self::row_y(i),
                text_y: Self::row_y(i) + BAR_HEIGHT,
                label: short(name),
                name: name.clone(),
                critical: critical_stages.contains(name.as_str()),
            })
            .collect()
    }

    /// A bar per attempt; its tooltip ends with its log's last lines, when known.
    pub fn bars(&self, tails: &BTreeMap<(String, u32), String>) -> Vec<Bar> {
        (self.timeline.attempts.iter().enumerate())
            .map(|(index, a)| {
                let mut title = format!(
                    "{} attempt {}: {}{}\n{} to {} ({}) on cluster {} ({})\nlog: {}",
                    a.stage,
                    a.attempt,
                    a.outcome.as_str(),
                    (a.code.filter(|c| *c != 0))
                        .map(|c| format!(" (exit {c})"))
                        .unwrap_or_default(),
                    clock(a.start),
                    clock(a.end),
                    format_seconds(a.seconds()),
                    a.generation + 1,
                    a.market.as_str(),
                    a.log
                );
                if a.recompute {
                    title.push_str("\nrecomputed: its earlier work-table was lost with a cluster");
                }
                if let Some(tail) = tails.get(&(a.stage.clone(), a.attempt)) {
                    title.push_str("\n--- the log's last lines ---\n");
                    title.push_str(tail);
                }
                Bar {
                    x: self.x(a.start),
                    y: Self::row_y(self.row_of[&a.stage]) + (ROW_HEIGHT - BAR_HEIGHT) / 2.0,
                    width: self.width(a.seconds()),
                    stage: a.stage.clone(),
                    attempt: a.attempt,
                    outcome: a.outcome.as_str(),
                    critical: self.critical.contains(&index),
                    title,
                }
            })
            .collect()
    }

    /// A band per cluster, from its request to its end.
    pub fn bands(&self) -> Vec<Band> {
        (self.timeline.generations.iter())
            .map(|g| Band {
                x: self.x(g.requested),
                width: self.width(g.seconds()),
                provisioning_width: self.width(g.provisioning_seconds()),
                market: g.market.as_str(),
                label: format!("{} {}", g.number, g.market.as_str()),
                title: format!(
                    "cluster {} ({}{}): asked at {}, up after {}, {} at {}{}",
                    g.number,
                    g.market.as_str(),
                    if g.provider.is_empty() {
                        String::new()
                    } else {
                        format!(", {}", g.provider)
                    },
                    clock(g.requested),
                    format_seconds(g.provisioning_seconds()),
                    match &g.ended {
                        ClusterEnd::Lost { cause } => format!("lost ({cause})"),
                        ClusterEnd::Released => "released".into(),
                        ClusterEnd::Abandoned => "abandoned: its orchestrator died".into(),
                        ClusterEnd::Open => "still up".into(),
                    },
                    clock(g.end),
                    (g.instance_hours)
                        .map(|h| format!(", {h} instance-hours"))
                        .unwrap_or_default()
                ),
            })
            .collect()
    }

    pub fn interruptions(&self) -> Vec<Marker> {
        (self.timeline.interruptions.iter())
            .map(|i| Marker {
                x: self.x(i.at),
                y: 0.0,
                title: format!(
                    "interruption at {}: cluster {} ({}) lost: {}",
                    clock(i.at),
                    i.generation + 1,
                    i.market.as_str(),
                    i.cause
                ),
            })
            .collect()
    }

    pub fn notices(&self) -> Vec<Marker> {
        markers::notices(self.timeline, |t| self.x(t), clock)
    }

    pub fn capacity(&self) -> Vec<Marker> {
        markers::capacity(self.timeline, |t| self.x(t), clock)
    }

    /// A mark per commit, on its stage's row.
    pub fn checkpoints(&self) -> Vec<Marker> {
        (self.timeline.commits.iter())
            .filter_map(|c| {
                let row = *self.row_of.get(&c.stage)?;
                Some(Marker {
                    x: self.x(c.at),
                    y: Self::row_y(row) + ROW_HEIGHT / 2.0,
                    title: format!(
                        "{} committed (attempt {}) at {}: {} in {} files, written in {}{}",
                        c.stage,
                        c.attempt,
                        clock(c.at),
                        bytesize::ByteSize(c.bytes),
                        c.files,
                        format_seconds(c.seconds),
                        if c.window {
                            ", saved in a notice's window"
                        } else {
                            ""
                        }
                    ),
                })
            })
            .collect()
    }

    /// About eight ticks along the time axis.
    pub fn ticks(&self) -> Vec<Tick> {
        let step = tick_step(self.end);
        (0..)
            .map(|i| i as f64 * step)
            .take_while(|t| *t <= self.end + 1e-9)
            .map(|t| Tick {
                x: self.x(t),
                label: format_seconds(t),
            })
            .collect()
    }
}

/// A moment as the chart shows it: seconds from the run's start.
pub(super) fn clock(t: f64) -> String {
    format!("+{}", format_seconds(t))
}

/// A tick every so often, so that about eight fit on the axis.
fn tick_step(end: f64) -> f64 {
    const STEPS: [f64; 18] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        10800.0, 21600.0, 43200.0, 86400.0,
    ];
    STEPS
        .iter()
        .copied()
        .find(|step| end / step <= 8.0)
        .unwrap_or(86400.0 * (end / 86400.0 / 8.0).ceil())
}

fn short(name: &str) -> String {
    if name.chars().count() <= LABEL_CHARS {
        name.to_string()
    } else {
        let head: String = name.chars().take(LABEL_CHARS - 1).collect();
        format!("{head}…")
    }
}
