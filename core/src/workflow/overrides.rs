//! "What if" from the command line: `--price PATH=VALUE` sets one price of the `cost:`
//! section, named by its path in the file (`spot_per_hour`, `on_demand_per_hour`,
//! `storage_per_gb_month`, `instances.<type>.spot`, `instances.<type>.on_demand`,
//! `instances.<type>.emr_fee`).

use super::model::CostSpec;

/// One `--price PATH=VALUE`.
#[derive(Clone, Debug, PartialEq)]
pub struct PriceOverride {
    pub path: String,
    pub value: f64,
}

const PATHS: &str = "spot_per_hour, on_demand_per_hour, storage_per_gb_month, instances.<type>.spot, instances.<type>.on_demand or instances.<type>.emr_fee";

/// Reads `PATH=VALUE`; the value is a price, a number of at least zero.
pub fn parse_price(text: &str) -> Result<PriceOverride, String> {
    let Some((path, value)) = text.split_once('=') else {
        return Err(format!(
            "`{text}` is not PATH=VALUE (PATH is {PATHS}; for example spot_per_hour=0.35)"
        ));
    };
    let value: f64 = value
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| format!("`{value}` is not a price (a number of at least 0)"))?;
    Ok(PriceOverride {
        path: path.trim().to_string(),
        value,
    })
}

/// Sets the price `price.path` names, or says why the path names none.
pub fn apply_price(cost: &mut CostSpec, price: &PriceOverride) -> Result<(), String> {
    let slot = match price.path.as_str() {
        "spot_per_hour" => &mut cost.spot_per_hour,
        "on_demand_per_hour" => &mut cost.on_demand_per_hour,
        "storage_per_gb_month" => &mut cost.storage_per_gb_month,
        path => {
            let rest = path
                .strip_prefix("instances.")
                .ok_or_else(|| unknown(path))?;
            let (instance_type, key) = rest.rsplit_once('.').ok_or_else(|| unknown(path))?;
            let entry = cost
                .instances
                .iter_mut()
                .find(|p| p.instance_type == instance_type)
                .ok_or_else(|| {
                    format!(
                        "`--price {path}`: `cost.instances` has no `{instance_type}`; add its prices to the workflow file"
                    )
                })?;
            match key {
                "spot" => &mut entry.spot_per_hour,
                "on_demand" => &mut entry.on_demand_per_hour,
                "emr_fee" => &mut entry.emr_fee_per_hour,
                _ => return Err(unknown(path)),
            }
        }
    };
    *slot = price.value;
    Ok(())
}

fn unknown(path: &str) -> String {
    format!("`--price {path}` names no price: PATH is {PATHS}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::model::InstancePrice;

    fn cost() -> CostSpec {
        CostSpec {
            currency: "USD".into(),
            spot_per_hour: 0.3,
            on_demand_per_hour: 1.0,
            storage_per_gb_month: 0.023,
            instances: vec![InstancePrice {
                instance_type: "m5.xlarge".into(),
                spot_per_hour: 0.07,
                on_demand_per_hour: 0.192,
                emr_fee_per_hour: 0.048,
            }],
        }
    }

    #[test]
    fn a_price_is_set_by_its_path_in_the_cost_section() {
        let mut c = cost();
        apply_price(&mut c, &parse_price("spot_per_hour=0.5").unwrap()).unwrap();
        apply_price(
            &mut c,
            &parse_price("instances.m5.xlarge.emr_fee=0").unwrap(),
        )
        .unwrap();
        assert_eq!(c.spot_per_hour, 0.5);
        assert_eq!(c.instances[0].emr_fee_per_hour, 0.0);
    }

    #[test]
    fn bad_prices_and_paths_are_named() {
        assert!(
            parse_price("spot_per_hour")
                .unwrap_err()
                .contains("not PATH=VALUE")
        );
        assert!(
            parse_price("spot_per_hour=-1")
                .unwrap_err()
                .contains("not a price")
        );
        assert!(
            parse_price("spot_per_hour=NaN")
                .unwrap_err()
                .contains("not a price")
        );
        let mut c = cost();
        let e = apply_price(&mut c, &parse_price("spot=1").unwrap()).unwrap_err();
        assert!(e.contains("names no price"), "{e}");
        let e =
            apply_price(&mut c, &parse_price("instances.c5.large.spot=1").unwrap()).unwrap_err();
        assert!(e.contains("has no `c5.large`"), "{e}");
        let e =
            apply_price(&mut c, &parse_price("instances.m5.xlarge.fee=1").unwrap()).unwrap_err();
        assert!(e.contains("names no price"), "{e}");
    }
}
