//! Interruption traces: the times a real spot cluster was lost, replayed by the simulator.

/// Reads an interruption trace: one time per line (seconds, or a duration like `1h30m`),
/// or `trace,time` pairs to give several traces. `#` comments and a header line are skipped.
pub fn parse_trace(text: &str) -> Result<Vec<Vec<f64>>, String> {
    let mut traces: Vec<(String, Vec<f64>)> = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (trace, time) = match line.split_once(',') {
            Some((trace, time)) => (trace.trim().to_string(), time.trim()),
            None => (String::new(), line),
        };
        let seconds = match time.parse::<f64>() {
            Ok(value) => value,
            Err(_) => match crate::workflow::units::parse_duration(time) {
                Ok(duration) => duration.as_secs_f64(),
                Err(_) if number == 0 => continue, // a header
                Err(reason) => return Err(format!("line {}: {reason}", number + 1)),
            },
        };
        if !seconds.is_finite() || seconds < 0.0 {
            return Err(format!(
                "line {}: `{time}` is not a time since the start",
                number + 1
            ));
        }
        match traces.iter_mut().find(|(name, _)| *name == trace) {
            Some((_, times)) => times.push(seconds),
            None => traces.push((trace, vec![seconds])),
        }
    }
    if traces.is_empty() {
        return Err("the trace has no interruption times".into());
    }
    Ok(traces
        .into_iter()
        .map(|(_, mut times)| {
            times.sort_by(f64::total_cmp);
            times
        })
        .collect())
}
