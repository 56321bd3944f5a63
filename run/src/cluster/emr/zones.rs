//! Zone avoidance: with several subnets, a replacement cluster is asked in the subnets
//! whose zone had no capacity reclaimed lately (`cluster.emr.avoid_reclaimed_zone`), as
//! EC2 reclaims spot capacity per pool, and a pool that was just drained tends to be
//! drained again. The zone of a subnet is learned from `DescribeCluster`
//! (`Ec2InstanceAttributes`), so a subnet never used yet is never avoided.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What the run has seen of subnets and zones.
#[derive(Default)]
pub(super) struct Zones {
    /// Subnet to its availability zone.
    of_subnet: BTreeMap<String, String>,
    /// When capacity was reclaimed, in which subnet and zone.
    reclaimed: Vec<(Instant, String, String)>,
}

impl Zones {
    /// A cluster runs in `subnet`, in `zone`.
    pub(super) fn seen(&mut self, subnet: &str, zone: &str) {
        if !subnet.is_empty() && !zone.is_empty() {
            self.of_subnet.insert(subnet.into(), zone.into());
        }
    }

    /// Capacity of a cluster in `subnet` was reclaimed at `at`.
    pub(super) fn reclaimed(&mut self, subnet: &str, at: Instant) {
        let zone = self.of_subnet.get(subnet).cloned().unwrap_or_default();
        self.reclaimed.push((at, subnet.into(), zone));
    }

    /// The subnets to ask a new cluster in at `now`, and what to say when that is not all
    /// of them: those whose zone lost capacity within `window` are left out, unless that
    /// leaves none.
    pub(super) fn choose(
        &self,
        subnets: &[String],
        window: Option<Duration>,
        now: Instant,
    ) -> (Vec<String>, Option<String>) {
        let Some(window) = window.filter(|_| subnets.len() > 1) else {
            return (subnets.to_vec(), None);
        };
        let avoided = |subnet: &String| {
            let zone = self.of_subnet.get(subnet);
            self.reclaimed
                .iter()
                .filter(|(at, _, _)| now.saturating_duration_since(*at) < window)
                .filter(|(_, lost, lost_zone)| {
                    lost == subnet || (!lost_zone.is_empty() && zone == Some(lost_zone))
                })
                .map(|(at, lost, zone)| (now.saturating_duration_since(*at), lost, zone))
                .min_by_key(|(ago, _, _)| *ago)
        };
        let kept: Vec<String> = subnets
            .iter()
            .filter(|s| avoided(s).is_none())
            .cloned()
            .collect();
        let left_out: Vec<String> = subnets
            .iter()
            .filter_map(|s| avoided(s).map(|(ago, _, zone)| (s, ago, zone)))
            .map(|(s, ago, zone)| {
                let zone = if zone.is_empty() { "its zone" } else { zone };
                format!("{s} ({zone}, reclaimed {}s ago)", ago.as_secs())
            })
            .collect();
        if left_out.is_empty() {
            return (kept, None);
        }
        if kept.is_empty() {
            let note = format!(
                "capacity was reclaimed lately in the zone of every subnet ({}): asking in \
                 all of them",
                left_out.join(", ")
            );
            return (subnets.to_vec(), Some(note));
        }
        let note = format!(
            "asking in {}, avoiding {} for {}",
            kept.join(", "),
            left_out.join(", "),
            humantime::format_duration(window)
        );
        (kept, Some(note))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subnets(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_replacement_avoids_the_zone_reclaimed_within_the_window_and_only_then() {
        let mut zones = Zones::default();
        let all = subnets(&["subnet-a", "subnet-b", "subnet-c"]);
        let window = Some(Duration::from_secs(1800));
        let start = Instant::now();
        zones.seen("subnet-a", "us-east-1a");
        zones.seen("subnet-c", "us-east-1a");
        assert_eq!(zones.choose(&all, window, start), (all.clone(), None));
        zones.reclaimed("subnet-a", start);
        let later = start + Duration::from_secs(120);
        let (chosen, note) = zones.choose(&all, window, later);
        assert_eq!(chosen, subnets(&["subnet-b"]), "subnet-c shares the zone");
        let note = note.unwrap();
        assert!(
            note.contains("avoiding subnet-a (us-east-1a, reclaimed 120s ago)"),
            "{note}"
        );
        let much_later = start + Duration::from_secs(1801);
        assert_eq!(zones.choose(&all, window, much_later), (all.clone(), None));
        assert_eq!(zones.choose(&all, None, later), (all, None));
    }

    #[test]
    fn when_every_zone_was_reclaimed_all_subnets_are_asked_and_one_subnet_is_never_avoided() {
        let mut zones = Zones::default();
        let now = Instant::now();
        let window = Some(Duration::from_secs(1800));
        zones.reclaimed("subnet-a", now);
        zones.reclaimed("subnet-b", now);
        let all = subnets(&["subnet-a", "subnet-b"]);
        let (chosen, note) = zones.choose(&all, window, now);
        assert_eq!(chosen, all);
        assert!(note.unwrap().contains("every subnet"));
        let one = subnets(&["subnet-a"]);
        assert_eq!(zones.choose(&one, window, now), (one, None));
    }
}
