//! The views of a run's event stream in `respawn run`: one JSON object per line
//! (`--format json`), or one line of text per event, above the live status block on a
//! terminal.

use super::Format;
use super::live::Live;
use respawn_core::contract::event::{NoticeKind, RunEvent, StampedEvent};
use respawn_core::workflow::units::format_size;
use std::io::Write;

/// Prints one event: a JSON line, or a line of text (above the live view on a terminal).
pub fn print(format: Format, live: Option<&Live>, stamped: &StampedEvent) {
    let line = match format {
        Format::Json => Some(stamped.to_json().to_string()),
        Format::Text => {
            describe(&stamped.event).map(|line| format!("[{:>8.1}s] {line}", stamped.elapsed_s))
        }
    };
    if let Some(live) = live {
        live.event(&stamped.event, line);
        return;
    }
    if let Some(line) = line {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

/// The text line of an event, or `None` for events the text view leaves out.
pub fn describe(event: &RunEvent) -> Option<String> {
    Some(match event {
        RunEvent::RunStarted { reused, .. } => {
            if reused.is_empty() {
                return None;
            }
            format!("reusing committed work-tables: {}", reused.join(", "))
        }
        RunEvent::Provision {
            generation,
            market,
            reason,
            wait_s,
        } => format!(
            "provisioning {} cluster {generation} ({reason}){}",
            market.as_str(),
            if *wait_s > 0.0 {
                format!(", ready in {wait_s}s")
            } else {
                String::new()
            }
        ),
        RunEvent::MarketChosen { reason, .. } => format!("market (auto): {reason}"),
        RunEvent::DeadlineAtRisk { reason } => format!("warning: {reason}"),
        RunEvent::Late { due } => format!("late: the output was due at {due}"),
        RunEvent::ClusterReady {
            generation, market, ..
        } => format!("{} cluster {generation} is up", market.as_str()),
        RunEvent::Launch { stage, attempt, .. } => format!("{stage}: attempt {attempt} started"),
        RunEvent::Exit {
            stage,
            attempt,
            code: 0,
            ..
        } => format!("{stage}: attempt {attempt} finished"),
        RunEvent::Exit {
            stage,
            attempt,
            code,
            log,
        } => format!(
            "{stage}: attempt {attempt} failed with exit code {code} (log: {})",
            log.as_deref().unwrap_or("")
        ),
        RunEvent::Check {
            stage,
            attempt,
            check,
            code: 0,
            ..
        } => format!("{stage}: check `{check}` passed (attempt {attempt})"),
        RunEvent::Check {
            stage,
            attempt,
            check,
            severity,
            code,
            log,
        } => {
            let what = if severity == "warn" {
                "warns"
            } else {
                "refused the output"
            };
            format!(
                "{stage}: check `{check}` {what} (attempt {attempt}, exit code {code}; log: {log})"
            )
        }
        RunEvent::Committed {
            stage,
            files,
            bytes,
            window,
            ..
        } => format!(
            "{stage}: checkpoint committed ({files} files, {}){}",
            format_size(*bytes),
            if *window {
                ", saved in the notice's window"
            } else {
                ""
            }
        ),
        RunEvent::Restore { stage, .. } => format!("{stage}: restoring its checkpoint"),
        RunEvent::Restored { stage, .. } => format!("{stage}: checkpoint restored"),
        RunEvent::Published { stage, output, .. } => {
            format!("{stage}: output published to {output}")
        }
        RunEvent::Retry { stage, delay_s } => format!("{stage}: retrying in {delay_s:.1}s"),
        RunEvent::Interrupted { stage, attempt } => {
            format!("{stage}: attempt {attempt} interrupted")
        }
        RunEvent::ClusterLost {
            generation,
            market,
            cause,
            interruptions,
        } => format!(
            "{} cluster {generation} lost: {cause} (interruption {interruptions})",
            market.as_str()
        ),
        RunEvent::Notice {
            generation,
            kind: NoticeKind::Interruption,
            lead_s,
            ..
        } => format!("cluster {generation}: interruption notice, reclaimed in about {lead_s:.1}s"),
        RunEvent::Notice {
            generation, kind, ..
        } => format!("cluster {generation}: {} recommendation", kind.as_str()),
        RunEvent::CapacityLost {
            generation,
            nodes,
            remaining,
            cause,
        } => format!("cluster {generation} lost {nodes} node(s), {remaining} left: {cause}"),
        RunEvent::NoticeLapsed { generation } => {
            format!("cluster {generation}: the interruption it was warned of did not come")
        }
        RunEvent::Stale { message, .. }
        | RunEvent::Swept { message }
        | RunEvent::Note { message }
        | RunEvent::Stopping { message }
        | RunEvent::InterruptIgnored { message } => message.clone(),
        RunEvent::Cleaned { deleted, prefix } => {
            format!("deleted the run's work-tables ({deleted} objects under {prefix})")
        }
        RunEvent::Finished { status, message } => match message {
            Some(message) => format!("run {}: {message}", status.as_str()),
            None => format!("run {}", status.as_str()),
        },
        RunEvent::ClusterReleased { .. } => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use respawn_core::contract::RunStatus;
    use respawn_core::workflow::Market;

    #[test]
    fn text_lines_name_the_stage_and_what_happened() {
        let lost = RunEvent::ClusterLost {
            generation: 2,
            market: Market::Spot,
            cause: "spot interruption".into(),
            interruptions: 1,
        };
        assert_eq!(
            describe(&lost).unwrap(),
            "spot cluster 2 lost: spot interruption (interruption 1)"
        );
        let failed = RunEvent::Exit {
            stage: "ingest".into(),
            attempt: 2,
            code: 3,
            log: Some("/s/log".into()),
        };
        assert_eq!(
            describe(&failed).unwrap(),
            "ingest: attempt 2 failed with exit code 3 (log: /s/log)"
        );
        let provision = RunEvent::Provision {
            generation: 2,
            market: Market::OnDemand,
            reason: "fallback".into(),
            wait_s: 1.5,
        };
        assert_eq!(
            describe(&provision).unwrap(),
            "provisioning on-demand cluster 2 (fallback), ready in 1.5s"
        );
        let finished = RunEvent::Finished {
            status: RunStatus::Succeeded,
            message: None,
        };
        assert_eq!(describe(&finished).unwrap(), "run succeeded");
    }

    #[test]
    fn quiet_events_print_nothing() {
        let started = RunEvent::RunStarted {
            workflow: "w".into(),
            run_id: "r".into(),
            batch: "b".into(),
            store: "s".into(),
            reused: vec![],
        };
        assert_eq!(describe(&started), None);
    }
}
