//! `alerts:` of a workflow: where alerts go (a webhook, an SNS topic or a command) and
//! which kinds.

use super::reader::Reader;
use crate::workflow::model::{AlertKind, AlertSink, AlertSpec, SnsTopic};
use crate::workflow::yaml::{Node, Value};

const ALERT_KEYS: &[&str] = &["webhook", "sns", "command", "on"];

/// The alerts, or `None` when anything about them was reported.
pub(super) fn read_alerts(r: &mut Reader, node: &Node) -> Option<Vec<AlertSpec>> {
    let Value::Seq(items) = &node.value else {
        r.error(
            node.position,
            format!("`alerts` must be a list, found {}", node.kind()),
            Some("for example `alerts: [{webhook: https://hooks.example.com/respawn}]`".into()),
        );
        return None;
    };
    let alerts: Vec<Option<AlertSpec>> = items.iter().map(|item| read_alert(r, item)).collect();
    alerts.into_iter().collect()
}

fn read_alert(r: &mut Reader, node: &Node) -> Option<AlertSpec> {
    let what = "an entry of `alerts`";
    let fields = r.fields(node, what, ALERT_KEYS)?;
    let mut sinks: Vec<(&str, &Node)> = ["webhook", "sns", "command"]
        .into_iter()
        .filter_map(|key| fields.get(key).map(|n| (key, n)))
        .collect();
    sinks.sort_by_key(|(_, n)| (n.position.line, n.position.column));
    let sink = match sinks[..] {
        [("webhook", n)] => webhook(r, n),
        [("sns", n)] => {
            let arn = r.string(n, "`sns` of an alert")?;
            match SnsTopic::parse(&arn) {
                Ok(topic) => Some(AlertSink::Sns(topic)),
                Err(reason) => {
                    let hint = "for example `sns: arn:aws:sns:eu-west-1:123456789012:data-alerts`";
                    r.error(
                        n.position,
                        format!("`sns` of an alert: `{arn}` {reason}"),
                        Some(hint.into()),
                    );
                    None
                }
            }
        }
        [(_, n)] => {
            let line = r.string(n, "`command` of an alert")?;
            if line.trim().is_empty() {
                r.error(n.position, "`command` of an alert is empty", None);
                return None;
            }
            Some(AlertSink::Command(line))
        }
        [] => {
            r.error(
                fields.owner,
                "an entry of `alerts` names no destination",
                Some(
                    "give `webhook: https://...`, `sns: arn:aws:sns:...` or `command: ./notify.sh`"
                        .into(),
                ),
            );
            None
        }
        [_, (second, n), ..] => {
            r.error(
                n.position,
                format!("an entry of `alerts` has two destinations; `{second}` is the second"),
                Some("give each destination its own entry".into()),
            );
            None
        }
    };
    let on = match fields.get("on") {
        Some(n) => kinds(r, n),
        None => Some(AlertKind::ALL.to_vec()),
    };
    Some(AlertSpec {
        sink: sink?,
        on: on?,
    })
}

fn webhook(r: &mut Reader, node: &Node) -> Option<AlertSink> {
    let url = r.string(node, "`webhook` of an alert")?;
    let host = (url.strip_prefix("https://"))
        .or_else(|| url.strip_prefix("http://"))
        .map(|rest| rest.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(host) if !host.is_empty() && !host.contains(char::is_whitespace) => {
            Some(AlertSink::Webhook(url))
        }
        _ => {
            r.error(
                node.position,
                format!("`webhook` of an alert must be an http(s) URL, found `{url}`"),
                Some("for example `webhook: https://hooks.example.com/respawn`".into()),
            );
            None
        }
    }
}

fn kinds(r: &mut Reader, node: &Node) -> Option<Vec<AlertKind>> {
    let choices: Vec<(&str, AlertKind)> = AlertKind::ALL.iter().map(|k| (k.as_str(), *k)).collect();
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) => items.iter().collect(),
        _ => vec![node],
    };
    let read: Vec<Option<AlertKind>> = (items.into_iter())
        .map(|item| r.choice(item, "an entry of `on` of an alert", &choices))
        .collect();
    let mut kinds: Vec<AlertKind> = read.into_iter().collect::<Option<_>>()?;
    kinds.sort();
    kinds.dedup();
    Some(kinds)
}

#[cfg(test)]
mod tests {
    use crate::workflow::{AlertKind, AlertSink};

    #[test]
    fn each_problem_of_an_alert_is_located() {
        let yaml = "name: wf
alerts:
  - webhook: ftp://example.com/x
  - {webhook: 'https://a.example/h', command: ./n.sh}
  - on: [failed]
  - {command: ./n.sh, on: [failed, lost]}
  - {command: ./n.sh, sns: arn}
  - sns: arn:aws:sqs:eu-west-1:123456789012:q
  - {sns: 'arn:aws:sns:eu-west-1:1234:t', bcc: x}
stages:
  a: {run: x}
";
        assert_error!(
            yaml,
            3,
            14,
            "`webhook` of an alert must be an http(s) URL, found `ftp://example.com/x`"
        );
        assert_error!(
            yaml,
            4,
            47,
            "an entry of `alerts` has two destinations; `command` is the second"
        );
        assert_error!(yaml, 5, 5, "an entry of `alerts` names no destination");
        assert_error!(
            yaml,
            6,
            36,
            "an entry of `on` of an alert must be one of failed | check-failed | fallback | deadline-at-risk | late | recovered, found `lost`"
        );
        assert_error!(
            yaml,
            7,
            28,
            "an entry of `alerts` has two destinations; `sns` is the second"
        );
        assert_error!(
            yaml,
            8,
            10,
            "`sns` of an alert: `arn:aws:sqs:eu-west-1:123456789012:q` is an ARN of `sqs`, not of `sns`"
        );
        assert_error!(
            yaml,
            9,
            11,
            "`sns` of an alert: `arn:aws:sns:eu-west-1:1234:t` has no 12-digit account id"
        );
        assert_error!(yaml, 9, 43, "unknown key `bcc` in an entry of `alerts`");
        assert_error!(
            "name: wf\nalerts: {webhook: x}\nstages:\n  a: {run: x}\n",
            2,
            9,
            "`alerts` must be a list, found a mapping"
        );
    }

    #[test]
    fn every_kind_goes_to_a_destination_without_on() {
        let workflow = crate::workflow::read::valid(
            "name: wf
alerts:
  - webhook: https://hooks.example.com/respawn
  - {command: ./notify.sh, on: [recovered, failed, failed]}
  - sns: arn:aws:sns:eu-west-1:123456789012:data-alerts
stages:
  a: {run: x}
",
        );
        let [web, command, sns] = &workflow.alerts[..] else {
            panic!("{:?}", workflow.alerts)
        };
        assert_eq!(
            web.sink,
            AlertSink::Webhook("https://hooks.example.com/respawn".into())
        );
        assert_eq!(web.on, AlertKind::ALL.to_vec());
        assert_eq!(command.sink, AlertSink::Command("./notify.sh".into()));
        assert_eq!(command.on, vec![AlertKind::Failed, AlertKind::Recovered]);
        let AlertSink::Sns(topic) = &sns.sink else {
            panic!("{sns:?}")
        };
        assert_eq!(topic.region, "eu-west-1");
    }
}
