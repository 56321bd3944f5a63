//! The live view of `respawn run` on a terminal: event lines scroll above a status block
//! that shows the cluster, interruptions and checkpoints so far, and each running stage
//! with its elapsed time against its estimate. Redrawn twice a second by indicatif.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use respawn_core::contract::event::RunEvent;
use respawn_core::workflow::units::format_seconds;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    cluster: String,
    interruptions: u64,
    checkpoints: u64,
    /// Running attempts: stage -> (attempt, since).
    running: BTreeMap<String, (u64, Instant)>,
    done: bool,
}

pub struct Live {
    bar: ProgressBar,
    state: Arc<Mutex<State>>,
    estimates: Arc<BTreeMap<String, f64>>,
}

impl Live {
    /// Starts the view; `estimates` are each stage's estimated seconds.
    pub fn start(estimates: BTreeMap<String, f64>) -> Live {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout_with_hz(4));
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        let state = Arc::new(Mutex::new(State {
            cluster: "no cluster yet".into(),
            ..State::default()
        }));
        let estimates = Arc::new(estimates);
        let live = Live {
            bar,
            state,
            estimates,
        };
        let (bar, state, estimates) =
            (live.bar.clone(), live.state.clone(), live.estimates.clone());
        std::thread::spawn(move || {
            loop {
                let message = {
                    let state = state.lock().unwrap_or_else(|e| e.into_inner());
                    if state.done {
                        break;
                    }
                    render(&state, &estimates)
                };
                bar.set_message(message);
                bar.tick();
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        live
    }

    /// Takes one event: updates the status block and prints `line` above it.
    pub fn event(&self, event: &RunEvent, line: Option<String>) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            RunEvent::ClusterReady {
                generation, market, ..
            } => state.cluster = format!("{} cluster {generation}", market.as_str()),
            RunEvent::Provision {
                generation, market, ..
            } => state.cluster = format!("provisioning {} cluster {generation}", market.as_str()),
            RunEvent::ClusterLost { interruptions, .. } => {
                state.interruptions = u64::from(*interruptions);
                state.running.clear();
            }
            RunEvent::Launch { stage, attempt, .. } => {
                let since = Instant::now();
                state
                    .running
                    .insert(stage.clone(), (u64::from(*attempt), since));
            }
            RunEvent::Exit { stage, .. } | RunEvent::Interrupted { stage, .. } => {
                state.running.remove(stage);
            }
            RunEvent::Committed { .. } => state.checkpoints += 1,
            RunEvent::Finished { .. } => state.done = true,
            _ => {}
        }
        let message = render(&state, &self.estimates);
        let done = state.done;
        drop(state);
        if let Some(line) = line {
            self.bar.println(line);
        }
        self.bar.set_message(message);
        if done {
            self.bar.finish_and_clear();
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).done = true;
        self.bar.finish_and_clear();
    }
}

fn render(state: &State, estimates: &BTreeMap<String, f64>) -> String {
    let mut text = format!(
        "{} · interruptions {} · checkpoints written {}",
        state.cluster, state.interruptions, state.checkpoints
    );
    for (stage, (attempt, since)) in &state.running {
        let estimate = estimates.get(stage).copied().unwrap_or(0.0);
        text.push_str(&format!(
            "\n    {stage} (attempt {attempt}): {} of ~{}",
            format_seconds(since.elapsed().as_secs_f64().floor()),
            format_seconds(estimate)
        ));
    }
    text
}
