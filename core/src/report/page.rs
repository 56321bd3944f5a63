//! The report of one run as a page model: every bar, band, marker and table row with its
//! place on the Gantt, ready for the template (`templates/report.html`).

use super::cost::{Cost, cost};
use super::critical::critical_attempts;
use super::markers;
use super::timeline::{CheckMark, ClusterEnd, Timeline, timeline};
use crate::contract::event::StampedEvent;
use crate::workflow::Workflow;
use crate::workflow::units::format_seconds;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// What the report is made from: the run record's fields, its events, the workflow it ran
/// (when the store keeps it), and the tails of the attempts' logs.
pub struct ReportInput<'a> {
    pub run: RunSummary,
    pub events: &'a [StampedEvent],
    /// Events that could not be read, already in words.
    pub problems: Vec<String>,
    pub workflow: Option<&'a Workflow>,
    /// Why there is no workflow, when there is none.
    pub workflow_missing: Option<String>,
    /// The last lines of each attempt's log, by (stage, attempt).
    pub tails: &'a BTreeMap<(String, u32), String>,
}

/// The run record, as far as the report shows it.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunSummary {
    pub workflow: String,
    pub run_id: String,
    pub batch: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub message: Option<String>,
    pub interruptions: usize,
    pub attempts: u32,
}

/// Geometry of the Gantt, in SVG pixels.
const LABEL_WIDTH: f64 = 220.0;
const PLOT_WIDTH: f64 = 960.0;
const ROW_HEIGHT: f64 = 18.0;
const BAR_HEIGHT: f64 = 12.0;
/// Longest stage name shown in full on its row; the whole name is on hover.
const LABEL_CHARS: usize = 30;

#[derive(Debug, Serialize)]
pub struct Row {
    pub y: f64,
    pub text_y: f64,
    pub label: String,
    pub name: String,
    pub critical: bool,
}

#[derive(Debug, Serialize)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub stage: String,
    pub attempt: u32,
    pub outcome: &'static str,
    pub critical: bool,
    pub title: String,
}

#[derive(Debug, Serialize)]
pub struct Band {
    pub x: f64,
    pub width: f64,
    pub provisioning_width: f64,
    pub market: &'static str,
    pub label: String,
    pub title: String,
}

#[derive(Debug, Serialize)]
pub struct Marker {
    pub x: f64,
    pub y: f64,
    pub title: String,
}

#[derive(Debug, Serialize)]
pub struct Tick {
    pub x: f64,
    pub label: String,
}

#[derive(Debug, Serialize)]
pub struct AttemptRow {
    pub stage: String,
    pub attempt: u32,
    pub generation: usize,
    pub market: &'static str,
    pub start: String,
    pub duration: String,
    /// The stage's `estimate` in the workflow the run kept (`-` without it).
    pub estimate: String,
    /// It took more than twice its estimate.
    pub over: bool,
    pub outcome: &'static str,
    /// Its checks: `-`, or `name passed`, `name failed`, `name warned`.
    pub checks: String,
    pub critical: bool,
    pub log: String,
}

#[derive(Debug, Serialize)]
pub struct MoneyRow {
    pub what: String,
    pub amount: String,
    pub cost: String,
    pub source: String,
}

#[derive(Debug, Serialize)]
pub struct Page {
    pub run: RunSummary,
    pub live: bool,
    pub origin: Option<String>,
    pub duration: String,
    pub width: f64,
    pub plot_x: f64,
    pub plot_width: f64,
    pub height: f64,
    pub rows: Vec<Row>,
    pub bars: Vec<Bar>,
    pub bands: Vec<Band>,
    pub interruptions: Vec<Marker>,
    /// Spot notices, on the axis and across the rows.
    pub notices: Vec<Marker>,
    /// Nodes of a cluster lost while it worked on.
    pub capacity: Vec<Marker>,
    pub checkpoints: Vec<Marker>,
    pub ticks: Vec<Tick>,
    pub attempts: Vec<AttemptRow>,
    pub cost: Option<Cost>,
    pub cost_summary: Vec<MoneyRow>,
    pub generations: Vec<MoneyRow>,
    pub waste: Vec<MoneyRow>,
    /// What spot notices bought (empty without a notice).
    pub notice_rows: Vec<MoneyRow>,
    pub no_cost: Option<String>,
    pub problems: Vec<String>,
}

pub fn money(currency: &str, amount: f64) -> String {
    if amount.abs() < 10.0 {
        format!("{amount:.4} {currency}")
    } else {
        format!("{amount:.2} {currency}")
    }
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

pub fn page(input: &ReportInput) -> Page {
    let live = input.run.status == "running";
    let timeline: Timeline = timeline(input.events, live);
    let end = timeline.end.max(1.0);
    let x = |t: f64| LABEL_WIDTH + t / end * PLOT_WIDTH;
    let w = |seconds: f64| (seconds / end * PLOT_WIDTH).max(1.0);

    // One row per stage: the workflow's order, then stages only the events name.
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
    let row_of: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let top = 4.0;
    let row_y = |row: usize| top + row as f64 * ROW_HEIGHT;
    let critical: BTreeSet<usize> = input
        .workflow
        .map(|wf| critical_attempts(wf, &timeline).into_iter().collect())
        .unwrap_or_default();
    let critical_stages: BTreeSet<&str> = critical
        .iter()
        .map(|&i| timeline.attempts[i].stage.as_str())
        .collect();
    let rows = names
        .iter()
        .enumerate()
        .map(|(i, name)| Row {
            y: row_y(i),
            text_y: row_y(i) + BAR_HEIGHT,
            label: short(name),
            name: name.clone(),
            critical: critical_stages.contains(name.as_str()),
        })
        .collect();
    let clock = |t: f64| format!("+{}", format_seconds(t));
    let bars = timeline
        .attempts
        .iter()
        .enumerate()
        .map(|(index, a)| {
            let mut title = format!(
                "{} attempt {}: {}{}\n{} to {} ({}) on cluster {} ({})\nlog: {}",
                a.stage,
                a.attempt,
                a.outcome.as_str(),
                a.code
                    .filter(|c| *c != 0)
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
            if let Some(tail) = input.tails.get(&(a.stage.clone(), a.attempt)) {
                title.push_str("\n--- the log's last lines ---\n");
                title.push_str(tail);
            }
            Bar {
                x: x(a.start),
                y: row_y(row_of[a.stage.as_str()]) + (ROW_HEIGHT - BAR_HEIGHT) / 2.0,
                width: w(a.seconds()),
                stage: a.stage.clone(),
                attempt: a.attempt,
                outcome: a.outcome.as_str(),
                critical: critical.contains(&index),
                title,
            }
        })
        .collect();
    let bands = timeline
        .generations
        .iter()
        .map(|g| Band {
            x: x(g.requested),
            width: w(g.seconds()),
            provisioning_width: w(g.provisioning_seconds()),
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
                g.instance_hours
                    .map(|h| format!(", {h} instance-hours"))
                    .unwrap_or_default()
            ),
        })
        .collect();
    let interruptions = timeline
        .interruptions
        .iter()
        .map(|i| Marker {
            x: x(i.at),
            y: 0.0,
            title: format!(
                "interruption at {}: cluster {} ({}) lost: {}",
                clock(i.at),
                i.generation + 1,
                i.market.as_str(),
                i.cause
            ),
        })
        .collect();
    let notices = markers::notices(&timeline, x, clock);
    let capacity = markers::capacity(&timeline, x, clock);
    let checkpoints = timeline
        .commits
        .iter()
        .filter_map(|c| {
            let row = *row_of.get(c.stage.as_str())?;
            Some(Marker {
                x: x(c.at),
                y: row_y(row) + ROW_HEIGHT / 2.0,
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
        .collect();
    let step = tick_step(end);
    let ticks = (0..)
        .map(|i| i as f64 * step)
        .take_while(|t| *t <= end + 1e-9)
        .map(|t| Tick {
            x: x(t),
            label: format_seconds(t),
        })
        .collect();
    let attempts = timeline
        .attempts
        .iter()
        .enumerate()
        .map(|(index, a)| {
            let estimate = input
                .workflow
                .and_then(|wf| wf.stages.iter().find(|s| s.name == a.stage))
                .map(|s| s.estimate.as_secs_f64());
            AttemptRow {
                stage: a.stage.clone(),
                attempt: a.attempt,
                generation: a.generation + 1,
                market: a.market.as_str(),
                start: clock(a.start),
                duration: format_seconds(a.seconds()),
                estimate: estimate.map_or("-".into(), format_seconds),
                over: estimate.is_some_and(|e| e > 0.0 && a.seconds() > 2.0 * e),
                outcome: if a.recompute && a.outcome.as_str() == "succeeded" {
                    "succeeded (recomputed)"
                } else {
                    a.outcome.as_str()
                },
                checks: checks_text(&a.checks),
                critical: critical.contains(&index),
                log: a.log.clone(),
            }
        })
        .collect();
    let cost = input.workflow.map(|wf| cost(wf, &timeline));
    let (cost_summary, generations, waste) = cost.as_ref().map(money_rows).unwrap_or_default();
    let notice_rows = cost.as_ref().map(window_rows).unwrap_or_default();
    let mut problems = input.problems.clone();
    problems.extend(timeline.problems.iter().cloned());
    Page {
        live,
        origin: timeline.origin.clone(),
        duration: format_seconds(timeline.end),
        width: LABEL_WIDTH + PLOT_WIDTH + 10.0,
        plot_x: LABEL_WIDTH,
        plot_width: PLOT_WIDTH,
        height: top + names.len() as f64 * ROW_HEIGHT + 4.0,
        rows,
        bars,
        bands,
        interruptions,
        notices,
        capacity,
        checkpoints,
        ticks,
        attempts,
        no_cost: cost
            .is_none()
            .then(|| input.workflow_missing.clone().unwrap_or_default()),
        cost,
        cost_summary,
        generations,
        waste,
        notice_rows,
        problems,
        run: input.run.clone(),
    }
}

type MoneyTables = (Vec<MoneyRow>, Vec<MoneyRow>, Vec<MoneyRow>);

fn checks_text(checks: &[CheckMark]) -> String {
    let said = |c: &CheckMark| match (c.code, c.severity.as_str()) {
        (0, _) => format!("{} passed", c.name),
        (_, "warn") => format!("{} warned", c.name),
        _ => format!("{} failed", c.name),
    };
    let text: Vec<String> = checks.iter().map(said).collect();
    if text.is_empty() {
        "-".into()
    } else {
        text.join(", ")
    }
}

fn money_rows(cost: &Cost) -> MoneyTables {
    let m = |amount: f64| money(&cost.currency, amount);
    let summary = vec![
        MoneyRow {
            what: "this run".into(),
            amount: String::new(),
            cost: m(cost.cost),
            source: format!(
                "clusters {} + checkpoint storage {}",
                m(cost.cluster_cost),
                m(cost.storage_cost)
            ),
        },
        MoneyRow {
            what: "the same work on on-demand".into(),
            amount: format!(
                "{} of cluster",
                format_seconds(cost.on_demand_hours * 3600.0)
            ),
            cost: m(cost.on_demand_cost),
            source: cost.on_demand_source.clone(),
        },
        MoneyRow {
            what: "saving".into(),
            amount: if cost.complete {
                format!("{:.1}%", cost.saving_percent)
            } else {
                "unfinished run".into()
            },
            cost: m(cost.saving),
            source: "on-demand minus this run".into(),
        },
    ];
    // Each cluster, then (EMR) one row per fleet, instance type and market.
    let generations = cost
        .generations
        .iter()
        .flat_map(|g| {
            let cluster = MoneyRow {
                what: format!("cluster {} ({})", g.generation, g.market.as_str()),
                amount: format!(
                    "{} ({} provisioning){}",
                    format_seconds(g.hours * 3600.0),
                    format_seconds(g.provisioning_hours * 3600.0),
                    g.instance_hours
                        .map(|h| format!(", {h} instance-hours"))
                        .unwrap_or_default()
                ),
                cost: m(g.cost),
                source: g.source.clone(),
            };
            let instances = g.instances.iter().map(|i| MoneyRow {
                what: format!(
                    "\u{21b3} {}: {} x {} ({})",
                    i.fleet,
                    i.count,
                    i.instance_type,
                    i.market.as_str()
                ),
                amount: format!(
                    "{} instance-hours at {}/h",
                    i.instance_hours,
                    m(i.price_per_hour)
                ),
                cost: m(i.cost),
                source: i.source.clone(),
            });
            std::iter::once(cluster).chain(instances)
        })
        .collect();
    let w = &cost.waste;
    let item = |what: &str, unit: &str, i: &super::cost::WasteItem| MoneyRow {
        what: format!("{what} ({})", i.count),
        amount: if unit == "hours" {
            format_seconds(i.hours * 3600.0)
        } else {
            format!("{:.4} {unit}", i.hours)
        },
        cost: m(i.cost),
        source: i.source.clone(),
    };
    let mut waste = vec![
        item(
            "attempts lost to interruptions",
            "hours",
            &w.interrupted_attempts,
        ),
        item(
            "producers re-run for lost work-tables",
            "hours",
            &w.recomputed_producers,
        ),
        item(
            "provisioning of replacement clusters",
            "hours",
            &w.provisioning,
        ),
        item("checkpoint writes", "hours", &w.checkpoint_writes),
        item("checkpoint restores", "hours", &w.restores),
        item("checkpoint storage", "GB-hours", &w.checkpoint_storage),
    ];
    waste.push(MoneyRow {
        what: "total waste".into(),
        amount: String::new(),
        cost: m(w.total),
        source: String::new(),
    });
    (summary, generations, waste)
}

/// The spot notices' table: empty when none came.
fn window_rows(cost: &Cost) -> Vec<MoneyRow> {
    let n = &cost.notices;
    if !n.any() {
        return Vec::new();
    }
    let row = |what: String, item: &super::cost::WasteItem, cost: String| MoneyRow {
        what,
        amount: format_seconds(item.hours * 3600.0),
        cost,
        source: item.source.clone(),
    };
    vec![
        MoneyRow {
            what: "notices".into(),
            amount: format!(
                "{} interruption ({} lapsed), {} rebalance",
                n.interruption_notices, n.lapsed, n.rebalance_notices
            ),
            cost: String::new(),
            source: String::new(),
        },
        row(
            format!("work-tables saved in the window ({})", n.saved.count),
            &n.saved,
            money(&cost.currency, n.saved.cost),
        ),
        row(
            format!("provisioning overlapped ({})", n.provisioning_overlap.count),
            &n.provisioning_overlap,
            "-".into(),
        ),
    ]
}
