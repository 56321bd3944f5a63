//! Marks on the report's Gantt chart for what happened to clusters while they worked on:
//! spot notices, and nodes lost (capacity over time).

use super::page::Marker;
use super::timeline::Timeline;
use crate::workflow::units::format_seconds;

/// A spot notice each: its kind, lead, the instances it named, and whether it lapsed.
pub(super) fn notices(
    timeline: &Timeline,
    x: impl Fn(f64) -> f64,
    clock: impl Fn(f64) -> String,
) -> Vec<Marker> {
    timeline
        .notices
        .iter()
        .map(|n| Marker {
            x: x(n.at),
            y: 0.0,
            title: format!(
                "{} notice at {}: cluster {} warned, {} lead{}{}",
                n.kind.as_str(),
                clock(n.at),
                n.generation + 1,
                format_seconds(n.lead),
                if n.instances.is_empty() {
                    String::new()
                } else {
                    format!(" (instances {})", n.instances.join(", "))
                },
                if n.lapsed {
                    "; lapsed: no loss came"
                } else {
                    ""
                }
            ),
        })
        .collect()
}

/// Nodes lost while their cluster worked on: how many, how many were left, and why.
pub(super) fn capacity(
    timeline: &Timeline,
    x: impl Fn(f64) -> f64,
    clock: impl Fn(f64) -> String,
) -> Vec<Marker> {
    timeline
        .capacity
        .iter()
        .map(|c| Marker {
            x: x(c.at),
            y: 0.0,
            title: format!(
                "capacity lost at {}: cluster {} lost {} node(s), {} left ({})",
                clock(c.at),
                c.generation + 1,
                c.nodes,
                c.remaining,
                c.cause
            ),
        })
        .collect()
}
