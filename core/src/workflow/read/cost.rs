//! `cost`: what capacity and storage cost, for the simulator, the market choice and the
//! run's cost report. Local clusters are priced per cluster-hour; EMR clusters per
//! instance-hour of each type, plus EMR's fee.

use super::reader::Reader;
use crate::workflow::defaults;
use crate::workflow::model::{CostSpec, InstancePrice};
use crate::workflow::yaml::Node;

const COST_KEYS: &[&str] = &[
    "currency",
    "spot_per_hour",
    "on_demand_per_hour",
    "storage_per_gb_month",
    "instances",
];
const INSTANCE_KEYS: &[&str] = &["spot", "on_demand", "emr_fee"];

pub(super) fn read_cost(r: &mut Reader, node: Option<&Node>) -> Option<CostSpec> {
    let mut cost = defaults::cost();
    let Some(node) = node else {
        return Some(cost);
    };
    let fields = r.fields(node, "`cost`", COST_KEYS)?;
    let mut ok = true;
    if let Some(node) = fields.get("currency") {
        ok &= r
            .scalar_with(
                node,
                "`cost.currency`",
                "a currency code of three capital letters",
                "EUR",
                check_currency,
            )
            .map(|v| cost.currency = v)
            .is_some();
    }
    for (key, slot) in [
        ("spot_per_hour", &mut cost.spot_per_hour),
        ("on_demand_per_hour", &mut cost.on_demand_per_hour),
        ("storage_per_gb_month", &mut cost.storage_per_gb_month),
    ] {
        if let Some(node) = fields.get(key) {
            ok &= r
                .price(node, format_args!("`cost.{key}`"))
                .map(|v| *slot = v)
                .is_some();
        }
    }
    if let Some(node) = fields.get("instances") {
        match read_instances(r, node) {
            Some(instances) => cost.instances = instances,
            None => ok = false,
        }
    }
    ok.then_some(cost)
}

fn check_currency(text: &str) -> Result<String, String> {
    if text.len() == 3 && text.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(text.to_string())
    } else {
        Err(format!("`{text}` is not three capital letters"))
    }
}

/// `cost.instances`: `<instance type>: {spot, on_demand, emr_fee}`, both markets required.
fn read_instances(r: &mut Reader, node: &Node) -> Option<Vec<InstancePrice>> {
    let entries = r.entries(node, "`cost.instances`")?;
    let mut instances = Vec::with_capacity(entries.len());
    let mut ok = true;
    for (instance_type, _key, value) in entries {
        let what = format!("`cost.instances.{instance_type}`");
        let Some(fields) = r.fields(value, &what, INSTANCE_KEYS) else {
            ok = false;
            continue;
        };
        let hint = "for example `m5.xlarge: {spot: 0.07, on_demand: 0.192, emr_fee: 0.048}`";
        let mut price = |key: &str| {
            let node = r.required(&fields, key, &what, hint)?;
            r.price(node, format_args!("`cost.instances.{instance_type}.{key}`"))
        };
        let spot = price("spot");
        let on_demand = price("on_demand");
        let fee = match fields.get("emr_fee") {
            Some(node) => r.price(
                node,
                format_args!("`cost.instances.{instance_type}.emr_fee`"),
            ),
            None => Some(defaults::EMR_FEE_PER_HOUR),
        };
        match (spot, on_demand, fee) {
            (Some(spot), Some(on_demand), Some(fee)) => instances.push(InstancePrice {
                instance_type,
                spot_per_hour: spot,
                on_demand_per_hour: on_demand,
                emr_fee_per_hour: fee,
            }),
            _ => ok = false,
        }
    }
    ok.then_some(instances)
}

#[cfg(test)]
mod tests {
    use crate::workflow::defaults;

    fn cost_of(yaml: &str) -> crate::workflow::model::CostSpec {
        let text = format!("name: wf\n{yaml}stages:\n  a: {{run: x}}\n");
        crate::workflow::parse("test.yaml", &text)
            .unwrap_or_else(|d| panic!("{d}"))
            .cost
    }

    #[test]
    fn a_workflow_without_cost_gets_the_default_prices_in_usd() {
        let cost = cost_of("");
        assert_eq!(cost, defaults::cost());
        assert_eq!(cost.currency, "USD");
    }

    #[test]
    fn instance_prices_are_read_in_file_order_with_the_emr_fee_defaulting_to_zero() {
        let cost = cost_of(
            "cost:
  currency: EUR
  storage_per_gb_month: 0.02
  instances:
    r5.xlarge: {spot: 0.1, on_demand: 0.252, emr_fee: 0.063}
    m5.xlarge: {spot: 0.07, on_demand: 0.192}
",
        );
        assert_eq!(cost.currency, "EUR");
        assert_eq!(cost.storage_per_gb_month, 0.02);
        let types: Vec<_> = cost
            .instances
            .iter()
            .map(|i| i.instance_type.as_str())
            .collect();
        assert_eq!(types, ["r5.xlarge", "m5.xlarge"]);
        assert_eq!(cost.instances[0].emr_fee_per_hour, 0.063);
        assert_eq!(cost.instances[1].emr_fee_per_hour, 0.0);
    }

    #[test]
    fn a_currency_that_is_not_three_capitals_is_refused_where_it_is() {
        assert_error!(
            "name: wf
cost:
  currency: dollars
stages:
  a: {run: x}
",
            3,
            13,
            "`cost.currency` must be a currency code",
            hint: "EUR"
        );
    }

    #[test]
    fn an_instance_price_without_its_on_demand_price_is_refused_where_it_is() {
        assert_error!(
            "name: wf
cost:
  instances:
    m5.xlarge: {spot: 0.07}
stages:
  a: {run: x}
",
            4,
            16,
            "`cost.instances.m5.xlarge` is missing the required key `on_demand`"
        );
    }

    #[test]
    fn a_negative_instance_price_is_refused_where_it_is() {
        assert_error!(
            "name: wf
cost:
  instances:
    m5.xlarge: {spot: -1, on_demand: 0.2}
stages:
  a: {run: x}
",
            4,
            23,
            "`cost.instances.m5.xlarge.spot` must be a price per hour"
        );
    }
}
