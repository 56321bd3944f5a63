//! `schedule.publish_by`: when each date's output is due.

use super::reader::Reader;
use crate::workflow::model::PublishBy;
use crate::workflow::yaml::Node;

/// `publish_by`: a duration after the interval's end (`6h`), or a time of day (`"07:30"`).
pub(super) fn read_publish_by(r: &mut Reader, node: &Node) -> Option<PublishBy> {
    let text = r.string(node, "`schedule.publish_by`")?;
    if let Ok(time) = text.trim().parse::<jiff::civil::Time>() {
        return Some(PublishBy::TimeOfDay(time));
    }
    match crate::workflow::units::parse_duration(&text) {
        Ok(after) => Some(PublishBy::After(after)),
        Err(_) => {
            r.error(
                node.position,
                format!("`schedule.publish_by` must be a duration after the interval's end or a time of day, found `{text}`"),
                Some("for example `publish_by: 6h`, or `publish_by: \"07:30\"` on the schedule's clock".into()),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::workflow::PublishBy;

    #[test]
    fn publish_by_is_a_duration_or_a_time_of_day() {
        let bad = "name: wf\nschedule:\n  cron: \"0 3 * * *\"\n  start: 2026-01-01\n  publish_by: soon\nstages:\n  a: {run: x}\n";
        assert_error!(
            bad,
            5,
            15,
            "`schedule.publish_by` must be a duration after the interval's end or a time of day, found `soon`"
        );
        let at = |value: &str| {
            let yaml = format!(
                "name: wf\nschedule:\n  cron: \"0 3 * * *\"\n  start: 2026-01-01\n  publish_by: {value}\nstages:\n  a: {{run: x}}\n"
            );
            super::super::valid(&yaml).schedule.unwrap().publish_by
        };
        assert_eq!(
            at("6h"),
            Some(PublishBy::After(std::time::Duration::from_secs(6 * 3600)))
        );
        assert_eq!(
            at("\"07:30\""),
            Some(PublishBy::TimeOfDay(jiff::civil::time(7, 30, 0, 0)))
        );
        assert_eq!(
            at("07:30"),
            Some(PublishBy::TimeOfDay(jiff::civil::time(7, 30, 0, 0)))
        );
    }
}
