//! The spot simulator of local runs (`--chaos mtti=30s,seed=7[,provision=2s]`): each spot
//! cluster is lost after an exponential time with mean `mtti`, drawn from a seeded RNG so
//! the same seed gives the same sequence of draws.

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
}

impl std::str::FromStr for Chaos {
    type Err = String;

    /// `mtti=30s,seed=7[,provision=2s]`.
    fn from_str(text: &str) -> Result<Chaos, String> {
        let mut mtti = None;
        let mut seed = 1;
        let mut provision = None;
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
                other => {
                    return Err(format!(
                        "unknown chaos setting `{other}`; the settings are mtti, seed and provision"
                    ));
                }
            }
        }
        Ok(Chaos {
            mtti: mtti.ok_or("mtti is required, e.g. `mtti=30s,seed=7`")?,
            seed,
            provision,
        })
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
    fn says_when_the_plan_assumes_another_rate() {
        let chaos: Chaos = "mtti=30s".parse().unwrap();
        assert!(chaos.mismatch(Duration::from_secs(7200)).is_some());
        assert!(chaos.mismatch(Duration::from_secs(40)).is_none());
    }
}
