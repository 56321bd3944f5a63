//! Which events make alerts: a pure reading of the run's event stream.

use super::{Payload, RunIdentity};
use respawn_core::contract::RunStatus;
use respawn_core::contract::event::{RunEvent, StampedEvent};
use respawn_core::workflow::{AlertKind, Market};

/// One thing to tell the destinations.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub kind: AlertKind,
    pub stage: Option<String>,
    pub check: Option<String>,
    pub message: String,
    pub at: String,
}

impl Alert {
    /// What makes it one alert of its run: its kind, and its stage and check.
    pub fn key(&self) -> String {
        let mut key = self.kind.as_str().to_string();
        for part in [&self.stage, &self.check].into_iter().flatten() {
            key.push('.');
            key.push_str(part);
        }
        key
    }

    pub fn payload(&self, run: &RunIdentity, id: &str) -> Payload {
        Payload {
            id: id.to_string(),
            workflow: run.workflow.clone(),
            batch: run.batch.clone(),
            run_id: run.run_id.clone(),
            event: self.kind.as_str(),
            stage: self.stage.clone(),
            check: self.check.clone(),
            message: self.message.clone(),
            summary: format!("{} {}: {}", run.workflow, run.batch, self.summary()),
            at: self.at.clone(),
        }
    }

    fn summary(&self) -> String {
        let stage = self.stage.as_deref().unwrap_or("?");
        match self.kind {
            AlertKind::Failed => "the run failed".into(),
            AlertKind::CheckFailed => format!(
                "check `{}` refused the output of `{stage}`",
                self.check.as_deref().unwrap_or("?")
            ),
            AlertKind::Fallback => "the run fell back from spot to on-demand".into(),
            AlertKind::DeadlineAtRisk => "the run may miss its deadline".into(),
            AlertKind::Late => "the output is late".into(),
            AlertKind::Recovered => "the batch succeeded after a failed run".into(),
        }
    }
}

/// What the watcher remembers of the events so far.
#[derive(Clone, Debug)]
pub struct Watch {
    run: RunIdentity,
    /// The failed run of the batch that this run follows.
    recovering: Option<String>,
    /// A spot cluster was asked for in this process.
    spot: bool,
}

impl Watch {
    pub fn new(run: RunIdentity, recovering: Option<String>) -> Watch {
        Watch {
            run,
            recovering,
            spot: false,
        }
    }

    /// The alert `event` makes, if any.
    pub fn alert_of(&mut self, stamped: &StampedEvent) -> Option<Alert> {
        let alert = |kind, stage: Option<&String>, check: Option<&String>, message: String| Alert {
            kind,
            stage: stage.cloned(),
            check: check.cloned(),
            message,
            at: stamped.at.clone(),
        };
        match &stamped.event {
            RunEvent::Check {
                stage,
                attempt,
                check,
                severity,
                code,
                log,
            } if *code != 0 && severity != "warn" => {
                let message = format!(
                    "check `{check}` refused the output of attempt {attempt} of stage `{stage}` (exit code {code}); nothing of it was committed or published; log: {log}"
                );
                Some(alert(
                    AlertKind::CheckFailed,
                    Some(stage),
                    Some(check),
                    message,
                ))
            }
            RunEvent::Provision { market, reason, .. } => {
                let fell_back = *market == Market::OnDemand && self.spot;
                self.spot |= *market == Market::Spot;
                let message = format!("the next cluster is on-demand: {reason}");
                fell_back.then(|| alert(AlertKind::Fallback, None, None, message))
            }
            RunEvent::DeadlineAtRisk { reason } => {
                Some(alert(AlertKind::DeadlineAtRisk, None, None, reason.clone()))
            }
            RunEvent::Late { due } => {
                let message = format!(
                    "the output of batch {} was due at {due} and is not published",
                    self.run.batch
                );
                Some(alert(AlertKind::Late, None, None, message))
            }
            RunEvent::Finished { status, message } => match status {
                RunStatus::Failed => {
                    let message = message.clone().unwrap_or_else(|| "the run failed".into());
                    Some(alert(AlertKind::Failed, None, None, message))
                }
                RunStatus::Succeeded => {
                    let failed = self.recovering.take()?;
                    let message = format!(
                        "batch {} succeeded in run {} after run {failed} failed",
                        self.run.batch, self.run.run_id
                    );
                    Some(alert(AlertKind::Recovered, None, None, message))
                }
                _ => None,
            },
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamped(event: RunEvent) -> StampedEvent {
        StampedEvent {
            at: "2026-12-01T03:00:00Z".into(),
            elapsed_s: 1.0,
            event,
        }
    }

    fn watch(recovering: Option<&str>) -> Watch {
        let run = RunIdentity {
            workflow: "orders".into(),
            batch: "2026-11-30".into(),
            run_id: "r2".into(),
        };
        Watch::new(run, recovering.map(String::from))
    }

    fn check(severity: &str, code: i32) -> RunEvent {
        RunEvent::Check {
            stage: "silver".into(),
            attempt: 1,
            check: "amounts".into(),
            severity: severity.into(),
            code,
            log: "l".into(),
        }
    }

    fn provision(market: Market) -> RunEvent {
        RunEvent::Provision {
            generation: 1,
            market,
            reason: "r".into(),
            wait_s: 0.0,
        }
    }

    #[test]
    fn only_a_refusing_error_check_alerts_and_its_key_names_stage_and_check() {
        let mut w = watch(None);
        assert_eq!(w.alert_of(&stamped(check("error", 0))), None);
        assert_eq!(w.alert_of(&stamped(check("warn", 1))), None);
        let alert = w.alert_of(&stamped(check("error", 1))).unwrap();
        assert_eq!(alert.kind, AlertKind::CheckFailed);
        assert_eq!(alert.key(), "check-failed.silver.amounts");
        let payload = alert.payload(&w.run, "id");
        assert_eq!(
            payload.summary,
            "orders 2026-11-30: check `amounts` refused the output of `silver`"
        );
    }

    #[test]
    fn on_demand_after_spot_is_a_fallback_and_on_demand_from_the_start_is_not() {
        let mut w = watch(None);
        assert_eq!(w.alert_of(&stamped(provision(Market::OnDemand))), None);
        assert_eq!(w.alert_of(&stamped(provision(Market::Spot))), None);
        let fallback = w.alert_of(&stamped(provision(Market::OnDemand))).unwrap();
        assert_eq!(fallback.kind, AlertKind::Fallback);
    }

    #[test]
    fn a_success_after_a_failed_run_recovers_once_and_a_failure_alerts() {
        let finished = |status| {
            stamped(RunEvent::Finished {
                status,
                message: Some("stage `a` failed".into()),
            })
        };
        let mut fresh = watch(None);
        assert_eq!(fresh.alert_of(&finished(RunStatus::Succeeded)), None);
        let mut after = watch(Some("r1"));
        let recovered = after.alert_of(&finished(RunStatus::Succeeded)).unwrap();
        assert_eq!(recovered.kind, AlertKind::Recovered);
        assert!(recovered.message.contains("after run r1 failed"));
        let failed = fresh.alert_of(&finished(RunStatus::Failed)).unwrap();
        assert_eq!(
            (failed.kind, failed.message.as_str()),
            (AlertKind::Failed, "stage `a` failed")
        );
    }
}
