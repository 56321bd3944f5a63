//! Durations (`40m`, `2h`) and sizes (`20GB`, `200MB/s`) as users write them.

use std::time::Duration;

/// Parses a humantime duration. A bare number is refused: `30` could mean seconds or minutes.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration".into());
    }
    if text.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(format!("`{text}` has no unit"));
    }
    humantime::parse_duration(text).map_err(|e| format!("`{text}` is not a duration ({e})"))
}

/// Parses a share: a number from 0 to 1, both included.
pub fn parse_share(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|share| (0.0..=1.0).contains(share))
        .ok_or_else(|| format!("`{}` is not a share from 0 to 1", text.trim()))
}

/// Parses a size in bytes: `20GB` (powers of 1000), `20GiB` (powers of 1024), or plain bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty size".into());
    }
    if text.starts_with('-') {
        return Err(format!("`{text}` is negative"));
    }
    let size: bytesize::ByteSize = text
        .parse()
        .map_err(|_| format!("`{text}` is not a size"))?;
    // bytesize saturates on overflow; anything near u64::MAX is a typo, not a work-table.
    if size.as_u64() >= u64::MAX / 2 {
        return Err(format!("`{text}` is too large"));
    }
    Ok(size.as_u64())
}

/// Parses a throughput such as `200MB/s` into bytes per second.
pub fn parse_throughput(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let Some(size) = trimmed.strip_suffix("/s") else {
        return Err(format!("`{trimmed}` needs a `/s` suffix, like `200MB/s`"));
    };
    let bytes = parse_size(size)?;
    if bytes == 0 {
        return Err("a throughput of zero would never finish".into());
    }
    Ok(bytes)
}

/// Formats seconds the way people say durations: `1h12m`, `58m`, `45s`, `2d3h`.
pub fn format_seconds(seconds: f64) -> String {
    if !seconds.is_finite() {
        return "never".into();
    }
    let total = seconds.max(0.0).round() as u64;
    let (days, hours, minutes, secs) = (
        total / 86_400,
        total % 86_400 / 3_600,
        total % 3_600 / 60,
        total % 60,
    );
    match (days, hours, minutes, secs) {
        (0, 0, 0, s) => format!("{s}s"),
        (0, 0, m, 0) => format!("{m}m"),
        (0, 0, m, s) => format!("{m}m{s}s"),
        (0, h, 0, _) => format!("{h}h"),
        (0, h, m, _) => format!("{h}h{m}m"),
        (d, 0, _, _) => format!("{d}d"),
        (d, h, _, _) => format!("{d}d{h}h"),
    }
}

/// Formats a byte count with a decimal unit: `20GB`, `1.5MB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if value.fract() == 0.0 {
        format!("{value}{}", UNITS[unit])
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("40m").unwrap(), Duration::from_secs(2400));
        assert_eq!(parse_duration("1h 30m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("30").unwrap_err().contains("no unit"));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes_are_decimal_or_binary() {
        assert_eq!(parse_size("20GB").unwrap(), 20_000_000_000);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert!(parse_size("-1GB").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999EB").is_err());
    }

    #[test]
    fn throughputs_need_per_second() {
        assert_eq!(parse_throughput("200MB/s").unwrap(), 200_000_000);
        assert!(parse_throughput("200MB").is_err());
        assert!(parse_throughput("0MB/s").is_err());
    }

    #[test]
    fn seconds_format_compactly() {
        assert_eq!(format_seconds(45.0), "45s");
        assert_eq!(format_seconds(3480.0), "58m");
        assert_eq!(format_seconds(4320.0), "1h12m");
        assert_eq!(format_seconds(7200.0), "2h");
        assert_eq!(format_seconds(185_000.0), "2d3h");
        assert_eq!(format_seconds(90.0), "1m30s");
        assert_eq!(format_seconds(0.4), "0s");
        assert_eq!(format_seconds(-5.0), "0s");
        assert_eq!(format_seconds(f64::NAN), "never");
        assert_eq!(format_seconds(f64::INFINITY), "never");
        assert_eq!(format_seconds(1e30), "213503982334601d7h");
    }

    #[test]
    fn sizes_format_with_decimal_units() {
        assert_eq!(format_size(20_000_000_000), "20GB");
        assert_eq!(format_size(1_500_000), "1.5MB");
        assert_eq!(format_size(12), "12B");
    }
}
