//! The spot simulator of local runs (`--chaos mtti=30s,seed=7[,provision=2s,notice=3s,
//! lapse=0.2]`): each spot cluster is lost after an exponential time with mean `mtti`,
//! drawn from a seeded RNG so the same seed gives the same sequence of draws. With
//! `notice`, each loss is announced that long before it (the losses are drawn as without
//! it); with `lapse`, that share of notices are false alarms: the notice comes, the loss
//! does not, and the cluster's next loss is drawn from there (from a second stream, so a
//! seed's losses do not depend on the share). With `partial`, that share of losses take one
//! node (slot) of the cluster, not all of it: the attempt on that node, if any, is
//! interrupted and the cluster works on until its next loss (the coins and the node are
//! drawn from a third stream; a one-node loss comes unannounced).

use rand::Rng;
use std::time::Duration;

/// Longer than any run: a spot cluster that would be lost later than this is not lost.
pub const NEVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

#[derive(Clone, Debug, PartialEq)]
pub struct Chaos {
    pub mtti: Duration,
    pub seed: u64,
    /// Overrides `cluster.provision_time` for local clusters.
    pub provision: Option<Duration>,
    /// Each loss is announced this long before it.
    pub notice: Option<Duration>,
    /// The share of notices that no loss follows.
    pub lapse: f64,
    /// The share of losses that take one node, not the whole cluster.
    pub partial: f64,
}

/// What becomes of one spot cluster, counted from when it is ready.
#[derive(Clone, Debug, PartialEq)]
pub struct Fate {
    /// Interruption notices: when, and the lead they announce.
    pub notices: Vec<(Duration, Duration)>,
    /// When the cluster is lost (or, for a one-node loss, the node).
    pub loss: Duration,
    /// The loss takes one node, not the whole cluster (it comes unannounced).
    pub one_node: bool,
}

impl std::str::FromStr for Chaos {
    type Err = String;

    /// `mtti=30s,seed=7[,provision=2s]`.
    fn from_str(text: &str) -> Result<Chaos, String> {
        let mut mtti = None;
        let mut seed = 1;
        let mut provision = None;
        let mut notice = None;
        let mut lapse = 0.0;
        let mut partial = 0.0;
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not KEY=VALUE (e.g. `mtti=30s,seed=7`)"))?;
            match key.trim() {
                "mtti" => {
                    let d = respawn_core::workflow::units::parse_duration(value.trim())?;
                    if d.is_zero() {
                        return Err("mtti must be longer than zero".into());
                    }
                    mtti = Some(d);
                }
                "seed" => {
                    seed = value
                        .trim()
                        .parse()
                        .map_err(|_| format!("seed `{value}` is not a whole number"))?
                }
                "provision" => {
                    provision = Some(respawn_core::workflow::units::parse_duration(value.trim())?)
                }
                "notice" => {
                    let d = respawn_core::workflow::units::parse_duration(value.trim())?;
                    notice = (!d.is_zero()).then_some(d);
                }
                "lapse" => {
                    lapse = value
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|p| (0.0..1.0).contains(p))
                        .ok_or_else(|| {
                            format!("lapse `{value}` is not a share from 0 up to (not with) 1")
                        })?
                }
                "partial" => {
                    partial = respawn_core::workflow::units::parse_share(value)
                        .map_err(|reason| format!("partial {reason}"))?
                }
                other => {
                    return Err(format!(
                        "unknown chaos setting `{other}`; the settings are mtti, seed, provision, notice, lapse and partial"
                    ));
                }
            }
        }
        Ok(Chaos {
            mtti: mtti.ok_or("mtti is required, e.g. `mtti=30s,seed=7`")?,
            seed,
            provision,
            notice,
            lapse,
            partial,
        })
    }
}

/// A chaos setting with its two seeded streams: the losses, and the lapses of notices.
pub(super) struct ChaosDraws {
    pub chaos: Chaos,
    losses: rand_pcg::Pcg64,
    lapses: rand_pcg::Pcg64,
    nodes: rand_pcg::Pcg64,
}

impl ChaosDraws {
    pub fn new(chaos: Chaos) -> ChaosDraws {
        use rand::SeedableRng;
        ChaosDraws {
            losses: rand_pcg::Pcg64::seed_from_u64(chaos.seed),
            lapses: rand_pcg::Pcg64::seed_from_u64(chaos.seed ^ 0x6c61_7073_6573),
            nodes: rand_pcg::Pcg64::seed_from_u64(chaos.seed ^ 0x6e6f_6465_7321),
            chaos,
        }
    }

    /// The next loss of a spot cluster, counted from now: from its start, or from its
    /// last one-node loss. With chance `partial` it takes one node only.
    pub fn next_fate(&mut self) -> Fate {
        let mut fate = self.chaos.next_fate(&mut self.losses, &mut self.lapses);
        if self.chaos.partial > 0.0 && self.nodes.random::<f64>() < self.chaos.partial {
            fate.one_node = true;
            fate.notices.clear();
        }
        fate
    }

    /// Which of `nodes` nodes a one-node loss takes.
    pub fn node(&mut self, nodes: usize) -> usize {
        self.nodes.random_range(0..nodes.max(1))
    }
}

impl Chaos {
    /// How long the next spot cluster lives: an exponential draw with mean `mtti`.
    /// A draw past [`NEVER`] (an mtti of billions of years) is [`NEVER`].
    pub fn next_loss(&self, rng: &mut impl Rng) -> Duration {
        let u: f64 = rng.random::<f64>();
        Duration::try_from_secs_f64(-self.mtti.as_secs_f64() * (1.0 - u).ln())
            .map_or(NEVER, |draw| draw.min(NEVER))
    }

    /// The fate of the next spot cluster: its loss is [`Chaos::next_loss`]'s draw from
    /// `rng`, as without notices; a lapsed notice (a coin from `lapses`) puts it off by
    /// another draw from `lapses`.
    pub fn next_fate(&self, rng: &mut impl Rng, lapses: &mut impl Rng) -> Fate {
        let mut loss = self.next_loss(rng);
        let mut notices = Vec::new();
        let Some(lead) = self.notice else {
            return Fate {
                notices,
                loss,
                one_node: false,
            };
        };
        while self.lapse > 0.0 && lapses.random::<f64>() < self.lapse && loss < NEVER {
            notices.push((loss.saturating_sub(lead), lead.min(loss)));
            loss = loss.saturating_add(self.next_loss(lapses)).min(NEVER);
        }
        notices.push((loss.saturating_sub(lead), lead.min(loss)));
        Fate {
            notices,
            loss,
            one_node: false,
        }
    }

    /// A note when checkpoints are planned for an MTTI far from the chaos rate.
    pub fn mismatch(&self, planned: Duration) -> Option<String> {
        let (chaos, planned_s) = (self.mtti.as_secs_f64(), planned.as_secs_f64());
        (chaos * 2.0 < planned_s || chaos > planned_s * 2.0).then(|| {
            format!(
                "chaos interrupts spot clusters every {} on average, but checkpoints are \
                 planned for cluster.mtti {}; set cluster.mtti to plan for the chaos rate",
                humantime::format_duration(self.mtti),
                humantime::format_duration(planned)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn parses_settings_and_names_what_is_wrong() {
        let chaos: Chaos = "mtti=30s, seed=7,provision=2s".parse().unwrap();
        assert_eq!(chaos.mtti, Duration::from_secs(30));
        assert_eq!(chaos.seed, 7);
        assert_eq!(chaos.provision, Some(Duration::from_secs(2)));
        for (text, wanted) in [
            ("seed=7", "mtti is required"),
            ("mtti=0s", "longer than zero"),
            ("mtti=1s,seed=x", "not a whole number"),
            ("mtti=1s,speed=2", "unknown chaos setting `speed`"),
            ("mtti", "not KEY=VALUE"),
        ] {
            let error = text.parse::<Chaos>().unwrap_err();
            assert!(error.contains(wanted), "{text}: {error}");
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_losses_with_the_mean_mtti() {
        let chaos: Chaos = "mtti=10s,seed=3".parse().unwrap();
        let draws = |seed| {
            let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
            (0..4000)
                .map(|_| chaos.next_loss(&mut rng).as_secs_f64())
                .collect::<Vec<_>>()
        };
        assert_eq!(draws(3), draws(3));
        let mean = draws(3).iter().sum::<f64>() / 4000.0;
        assert!((9.0..11.0).contains(&mean), "mean {mean}");
    }

    #[test]
    fn notices_announce_the_losses_drawn_without_them_and_lapses_put_them_off() {
        let losses = |text: &str| {
            let mut draws = ChaosDraws::new(text.parse().unwrap());
            (0..200).map(|_| draws.next_fate()).collect::<Vec<_>>()
        };
        let plain = losses("mtti=10s,seed=3");
        let warned = losses("mtti=10s,seed=3,notice=2s");
        for (plain, warned) in plain.iter().zip(&warned) {
            assert_eq!(plain.loss, warned.loss, "the same seed, the same losses");
            assert!(plain.notices.is_empty());
            let (at, lead) = warned.notices[0];
            assert_eq!(warned.notices.len(), 1);
            assert_eq!(at + lead, warned.loss, "the notice ends at the loss");
            assert!(lead <= Duration::from_secs(2));
        }
        let lapsing = losses("mtti=10s,seed=3,notice=2s,lapse=0.5");
        let false_alarms: usize = lapsing.iter().map(|f| f.notices.len() - 1).sum();
        // A lapse is followed by another with the same chance: one per cluster on average.
        assert!(
            (150..250).contains(&false_alarms),
            "{false_alarms} false alarms"
        );
        for (plain, lapsing) in plain.iter().zip(&lapsing) {
            assert!(lapsing.loss >= plain.loss, "a lapse only puts the loss off");
            let (at, lead) = *lapsing.notices.last().unwrap();
            assert_eq!(at + lead, lapsing.loss);
        }
        let error = "mtti=1s,lapse=1".parse::<Chaos>().unwrap_err();
        assert!(error.contains("lapse `1`"), "{error}");
    }

    #[test]
    fn a_share_of_losses_take_one_node_unannounced_and_the_losses_stay_those_of_the_seed() {
        let fates = |text: &str| {
            let mut draws = ChaosDraws::new(text.parse().unwrap());
            (0..1000).map(|_| draws.next_fate()).collect::<Vec<_>>()
        };
        let whole = fates("mtti=10s,seed=3,notice=2s");
        let mixed = fates("mtti=10s,seed=3,notice=2s,partial=0.5");
        let one_node = mixed.iter().filter(|f| f.one_node).count();
        assert!((420..580).contains(&one_node), "{one_node} of 1000");
        for (whole, mixed) in whole.iter().zip(&mixed) {
            assert_eq!(whole.loss, mixed.loss);
            assert!(!whole.one_node);
            assert_eq!(mixed.notices.is_empty(), mixed.one_node);
        }
        assert!(fates("mtti=10s,partial=1").iter().all(|f| f.one_node));
        let mut draws = ChaosDraws::new("mtti=1s,partial=1".parse().unwrap());
        assert!((0..100).all(|_| draws.node(3) < 3));
        let error = "mtti=1s,partial=1.5".parse::<Chaos>().unwrap_err();
        assert!(error.contains("partial `1.5`"), "{error}");
    }

    #[test]
    fn says_when_the_plan_assumes_another_rate() {
        let chaos: Chaos = "mtti=30s".parse().unwrap();
        assert!(chaos.mismatch(Duration::from_secs(7200)).is_some());
        assert!(chaos.mismatch(Duration::from_secs(40)).is_none());
    }
}
