//! Order statistics of a handful of samples.

/// The median of `values` (the mean of the middle two for an even count); none when empty.
pub fn median(values: &[f64]) -> Option<f64> {
    quantile(values, 0.5)
}

/// The `q` quantile of `values` (0 to 1), interpolated between the two nearest ranks;
/// none when empty.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (low, high) = (rank.floor() as usize, rank.ceil() as usize);
    let part = rank - low as f64;
    Some(sorted[low] + (sorted[high] - sorted[low]) * part)
}
