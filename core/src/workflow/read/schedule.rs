//! `schedule`: cron expressions, a time zone, the first and last logical dates, catch-up,
//! runs at once and the batch id format. The batch format is checked on the schedule's
//! own dates: every id valid, no two logical dates with one id.

use super::publish_by::read_publish_by;
use super::reader::Reader;
use crate::workflow::defaults;
use crate::workflow::diagnostic::did_you_mean;
use crate::workflow::model::*;
use crate::workflow::schedule::{BatchProblem, parse_cron, rfc3339};
use crate::workflow::yaml::{Node, Value};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

const SCHEDULE_KEYS: &[&str] = &[
    "cron",
    "timezone",
    "start",
    "end",
    "catchup",
    "max_active",
    "batch",
    "publish_by",
];

/// Most runs of one workflow at once.
const MAX_ACTIVE_LIMIT: i64 = 1000;

const WHEN_EXAMPLE: &str = "2026-01-01";
const WHEN_EXPECTED: &str =
    "a date (`2026-01-01`), a local date and time (`2026-01-01T03:00`) or an RFC 3339 time";

/// `start:` or `end:` as written.
#[derive(Clone, Copy)]
enum When {
    Date(Date),
    Local(DateTime),
    Instant(Timestamp),
}

fn parse_when(text: &str) -> Result<When, String> {
    let text = text.trim();
    if let Ok(instant) = text.parse::<Timestamp>() {
        return Ok(When::Instant(instant));
    }
    if text.len() == 10
        && let Ok(date) = text.parse::<Date>()
    {
        return Ok(When::Date(date));
    }
    text.parse::<DateTime>()
        .map(When::Local)
        .map_err(|_| format!("`{text}` is not a date"))
}

impl When {
    /// As it was written (in its normal form).
    fn shown(self) -> String {
        match self {
            When::Date(date) => date.to_string(),
            When::Local(local) => local.to_string(),
            When::Instant(instant) => instant.to_string(),
        }
    }

    /// The first instant it names on the wall clock of `timezone`.
    fn first(self, timezone: &TimeZone) -> Option<Timestamp> {
        match self {
            When::Date(date) => date.to_zoned(timezone.clone()).ok().map(|z| z.timestamp()),
            When::Local(local) => local.to_zoned(timezone.clone()).ok().map(|z| z.timestamp()),
            When::Instant(instant) => Some(instant),
        }
    }

    /// The last instant it names: a date reaches to the end of its day.
    fn last(self, timezone: &TimeZone) -> Option<Timestamp> {
        match self {
            When::Date(date) => {
                let next = date.checked_add(1.day()).ok()?;
                let midnight = next.to_zoned(timezone.clone()).ok()?.timestamp();
                midnight.checked_sub(SignedDuration::from_nanos(1)).ok()
            }
            other => other.first(timezone),
        }
    }
}

/// Whether `t` lies in the years cron expressions are matched in (croner stops at
/// [`croner::YEAR_UPPER_LIMIT`]).
fn in_cron_range(timezone: &TimeZone, t: Timestamp) -> bool {
    i32::from(t.to_zoned(timezone.clone()).year()) < croner::YEAR_UPPER_LIMIT
}

/// Reports `schedule.<key>` (`when`) as past the years cron expressions are matched in.
fn out_of_range<T>(r: &mut Reader, node: &Node, key: &str, when: When, hint: &str) -> Option<T> {
    r.error(
        node.position,
        format!(
            "`schedule.{key}` `{}` is after the last year respawn schedules ({})",
            when.shown(),
            croner::YEAR_UPPER_LIMIT - 1
        ),
        Some(hint.into()),
    );
    None
}

/// `schedule`, or `None` for a workflow without one (also when it is wrong: reported).
pub(super) fn read_schedule(r: &mut Reader, node: &Node) -> Option<ScheduleSpec> {
    let fields = r.fields(node, "`schedule`", SCHEDULE_KEYS)?;
    let hint = "add `cron: \"0 3 * * *\"` (five fields, or @daily, @hourly, @weekly, @monthly)";
    let crons = r
        .required(&fields, "cron", "`schedule`", hint)
        .and_then(|node| read_crons(r, node));
    let timezone = match fields.get("timezone") {
        Some(node) => read_timezone(r, node),
        None => TimeZone::get(defaults::TIMEZONE).ok(),
    };
    let hint = "add `start: 2026-01-01`: the first logical date";
    let start = r
        .required(&fields, "start", "`schedule`", hint)
        .and_then(|node| Some((read_when(r, node, "`schedule.start`")?, node)));
    let end = fields
        .get("end")
        .map(|node| read_when(r, node, "`schedule.end`").map(|when| (when, node)));
    let catchup = fields
        .get("catchup")
        .map(|node| read_catchup(r, node))
        .unwrap_or(Some(defaults::CATCHUP));
    let max_active = fields
        .get("max_active")
        .map(|node| r.integer(node, "`schedule.max_active`", 1, MAX_ACTIVE_LIMIT))
        .unwrap_or(Some(defaults::MAX_ACTIVE));
    let batch = fields
        .get("batch")
        .map(|node| r.string(node, "`schedule.batch`").map(|text| (text, node)));
    let publish_by = match fields.get("publish_by") {
        Some(node) => read_publish_by(r, node).map(Some),
        None => Some(None),
    };
    // The order of `start` and `end` is checked even when another key is wrong.
    let (timezone, (start, start_node)) = (timezone?, start?);
    let Some(start) = start
        .first(&timezone)
        .filter(|t| in_cron_range(&timezone, *t))
    else {
        let hint = "start the schedule at a date such as 2026-01-01";
        return out_of_range(r, start_node, "start", start, hint);
    };
    let end = match end {
        Some(end) => Some(read_end(r, &timezone, (start, start_node), end?)?),
        None => None,
    };
    let mut spec = ScheduleSpec {
        crons: crons?,
        timezone,
        start,
        end,
        catchup: catchup.unwrap_or(defaults::CATCHUP),
        max_active: max_active.unwrap_or(defaults::MAX_ACTIVE),
        batch: String::new(),
        publish_by: publish_by.flatten(),
    };
    let within_end = |t: &Timestamp| spec.end.is_none_or(|end| *t <= end);
    let Some(first) = spec.next_time(spec.start, true).filter(within_end) else {
        let cron = fields.get("cron").unwrap_or(start_node);
        r.error(
            cron.position,
            "`schedule.cron` never matches between `start` and `end`",
            Some("check the day-of-month and month fields against `start` and `end`".into()),
        );
        return None;
    };
    let batch_node = match batch {
        Some(given) => {
            let (text, batch_node) = given?;
            spec.batch = text;
            batch_node
        }
        None => {
            spec.batch = defaults::batch_format(spec.shortest_gap(first)).to_string();
            node
        }
    };
    check_batch_format(r, &spec, first, batch_node)?;
    // A wrong `catchup`, `max_active` or `publish_by` was reported; the batch format was
    // still checked.
    (catchup.is_some() && max_active.is_some() && publish_by.is_some()).then_some(spec)
}

/// `end`, the last logical date (inclusive), which cannot come before `start`.
fn read_end(
    r: &mut Reader,
    timezone: &TimeZone,
    (start, start_node): (Timestamp, &Node),
    (end, node): (When, &Node),
) -> Option<Timestamp> {
    let Some(end) = end.last(timezone).filter(|t| in_cron_range(timezone, *t)) else {
        let hint = "leave `end` out for a schedule without an end";
        return out_of_range(r, node, "end", end, hint);
    };
    if end < start {
        let text = |node: &Node| node.scalar_text(r.source).unwrap_or_default();
        r.error(
            node.position,
            format!(
                "`schedule.end` ({}) is before `schedule.start` ({})",
                text(node),
                text(start_node)
            ),
            Some("`end` is the last logical date, inclusive; it cannot come before `start`".into()),
        );
        return None;
    }
    Some(end)
}

/// `cron`: one expression or a list of them.
fn read_crons(r: &mut Reader, node: &Node) -> Option<Vec<croner::Cron>> {
    let items: Vec<&Node> = match &node.value {
        Value::Seq(items) if !items.is_empty() => items.iter().collect(),
        Value::Seq(_) => {
            r.error(
                node.position,
                "`schedule.cron` is an empty list",
                Some("for example `\"0 3 * * *\"`".into()),
            );
            return None;
        }
        _ => vec![node],
    };
    let mut crons = Vec::with_capacity(items.len());
    for item in items {
        let text = r.string(item, "`schedule.cron`")?;
        match parse_cron(&text) {
            Ok(cron) => crons.push(cron),
            Err(reason) => r.error(
                item.position,
                format!("`schedule.cron` is not a valid cron expression: {reason}"),
                Some("five fields: minute hour day-of-month month day-of-week, e.g. `0 3 * * *`; or @daily, @hourly, @weekly, @monthly".into()),
            ),
        }
    }
    (crons.len() == items_len(node)).then_some(crons)
}

fn items_len(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => items.len(),
        _ => 1,
    }
}

/// `timezone`: an IANA name from the time zone database bundled with jiff.
fn read_timezone(r: &mut Reader, node: &Node) -> Option<TimeZone> {
    let name = r.string(node, "`schedule.timezone`")?;
    if let Ok(timezone) = TimeZone::get(name.trim()) {
        return Some(timezone);
    }
    let names: Vec<String> = jiff::tz::db()
        .available()
        .map(|n| n.as_str().to_string())
        .collect();
    let hint = match did_you_mean(&name, names.iter().map(String::as_str)) {
        Some(known) => format!("did you mean `{known}`?"),
        None => "use an IANA name such as `UTC`, `Europe/Paris` or `America/New_York`".into(),
    };
    r.error(
        node.position,
        format!("`schedule.timezone` `{name}` is not a known time zone"),
        Some(hint),
    );
    None
}

fn read_when(r: &mut Reader, node: &Node, what: &str) -> Option<When> {
    r.scalar_with(node, what, WHEN_EXPECTED, WHEN_EXAMPLE, parse_when)
}

/// `catchup`: `all`, `latest` or a positive whole number.
fn read_catchup(r: &mut Reader, node: &Node) -> Option<Catchup> {
    let found = match &node.value {
        Value::Int(n) if *n >= 1 => {
            return Some(Catchup::Latest(u32::try_from(*n).unwrap_or(u32::MAX)));
        }
        Value::Str(text) if text == "all" => return Some(Catchup::All),
        Value::Str(text) if text == "latest" => return Some(Catchup::Latest(1)),
        Value::Str(text) => format!("`{text}`"),
        Value::Int(n) => n.to_string(),
        _ => node
            .scalar_text(r.source)
            .map_or_else(|| node.kind().to_string(), |t| format!("`{t}`")),
    };
    let hint = match &node.value {
        Value::Str(text) => {
            did_you_mean(text, ["all", "latest"]).map(|s| format!("did you mean `{s}`?"))
        }
        _ => None,
    };
    r.error(
        node.position,
        format!(
            "`schedule.catchup` must be `all`, `latest` or a positive whole number, found {found}"
        ),
        Some(
            hint.unwrap_or_else(|| {
                "`3` runs at most the 3 latest missed dates, oldest first".into()
            }),
        ),
    );
    None
}

/// Every logical date of the sample gets a valid batch id of its own.
fn check_batch_format(
    r: &mut Reader,
    spec: &ScheduleSpec,
    first: Timestamp,
    node: &Node,
) -> Option<()> {
    let problem = match spec.check_batch_ids(first) {
        Ok(()) => return Some(()),
        Err(problem) => problem,
    };
    let hint = match problem {
        BatchProblem::Invalid { .. } => {
            "a batch id is letters, digits, `.`, `_` and `-`, e.g. `%Y-%m-%d`"
        }
        BatchProblem::Unreadable { .. } => {
            "respawn reads a batch id back to its logical date, so write the date with numeric fields respawn can parse, e.g. `%Y-%m-%d` or `%Y%m%dT%H%M` (not `%s`, `%Z` or `%Q`)"
        }
        BatchProblem::Shared { .. } => {
            "a batch id names one logical date: write every field that changes between two of them, e.g. `%Y-%m-%dT%H` for an hourly schedule"
        }
    };
    let what = format!("`schedule.batch` `{}`", spec.batch);
    let message = match problem {
        BatchProblem::Invalid { date, reason } => format!(
            "{what} {reason} (logical date {})",
            rfc3339(&spec.timezone, date)
        ),
        BatchProblem::Unreadable { date, id } => format!(
            "{what} gives `{id}` to logical date {}, and `{id}` does not read back as that date",
            rfc3339(&spec.timezone, date)
        ),
        BatchProblem::Shared { id, first, second } => format!(
            "{what} gives `{id}` to two logical dates ({} and {})",
            rfc3339(&spec.timezone, first),
            rfc3339(&spec.timezone, second)
        ),
    };
    r.error(node.position, message, Some(hint.into()));
    None
}

#[cfg(test)]
mod tests {
    use crate::workflow::{Catchup, defaults};

    const STAGES: &str = "stages:\n  a: {run: x}\n";

    fn schedule(block: &str) -> crate::workflow::ScheduleSpec {
        let workflow = super::super::valid(&format!("name: wf\nschedule:\n{block}{STAGES}"));
        workflow.schedule.expect("a schedule")
    }

    #[test]
    fn every_key_is_checked_in_one_pass() {
        let yaml = "name: wf
schedule:
  cron: \"0 25 * * *\"
  timezone: Europe/Pari
  start: 2026-13-01
  catchup: some
  max_active: 0
  batchh: x
stages:
  a: {run: x}
";
        assert_error!(yaml, 3, 9, "the hour field `25` is wrong", hint: "five fields");
        assert_error!(yaml, 4, 13, "`Europe/Pari` is not a known time zone", hint: "did you mean `Europe/Paris`?");
        assert_error!(yaml, 5, 10, "`2026-13-01` is not a date", hint: "`2026-01-01`");
        assert_error!(
            yaml,
            6,
            12,
            "`schedule.catchup` must be `all`, `latest` or a positive whole number, found `some`"
        );
        assert_error!(
            yaml,
            7,
            15,
            "`schedule.max_active` must be between 1 and 1000, found 0"
        );
        assert_error!(yaml, 8, 3, "unknown key `batchh` in `schedule`", hint: "did you mean `batch`?");
    }

    #[test]
    fn a_list_of_crons_is_checked_item_by_item_and_end_comes_after_start() {
        let yaml = "name: wf
schedule:
  cron: [\"0 3 * * *\", \"0 0 3 * * *\"]
  start: 2026-06-01
  end: 2026-01-01
stages:
  a: {run: x}
";
        assert_error!(
            yaml,
            3,
            23,
            "`0 0 3 * * *` has 6 fields; a cron expression has 5"
        );
        assert_error!(
            yaml,
            5,
            8,
            "`schedule.end` (2026-01-01) is before `schedule.start` (2026-06-01)"
        );
    }

    #[test]
    fn cron_and_start_are_required_and_the_cron_must_match() {
        assert_error!(
            &format!("name: wf\nschedule: {{timezone: UTC}}\n{STAGES}"),
            2,
            11,
            "`schedule` is missing the required key `cron`"
        );
        assert_error!(
            &format!("name: wf\nschedule: {{cron: \"@daily\"}}\n{STAGES}"),
            2,
            11,
            "`schedule` is missing the required key `start`"
        );
        assert_error!(
            &format!("name: wf\nschedule:\n  cron: \"0 0 31 2 *\"\n  start: 2026-01-01\n{STAGES}"),
            3,
            9,
            "`schedule.cron` never matches between `start` and `end`"
        );
        assert_error!(
            &format!("name: wf\nschedule:\n  cron: \"@nightly\"\n  start: 2026-01-01\n{STAGES}"),
            3,
            9,
            "`@nightly` is not a cron nickname"
        );
    }

    #[test]
    fn a_batch_format_must_give_each_logical_date_a_valid_id_of_its_own() {
        let with = |cron: &str, batch: &str| {
            format!(
                "name: wf\nschedule:\n  cron: \"{cron}\"\n  start: 2026-01-01\n  batch: \"{batch}\"\n{STAGES}"
            )
        };
        assert_error!(
            &with("0 3 * * *", "%Y"),
            5,
            10,
            "`schedule.batch` `%Y` gives `2026` to two logical dates (2026-01-01T03:00:00+00:00 and 2026-01-02T03:00:00+00:00)",
            hint: "write every field that changes"
        );
        assert_error!(
            &with("@hourly", "%Y-%m-%d"),
            5,
            10,
            "gives `2026-01-01` to two logical dates"
        );
        assert_error!(
            &with("@daily", "%m-%d"),
            5,
            10,
            "gives `01-01` to two logical dates"
        );
        assert_error!(
            &with("@daily", "%Y/%m/%d"),
            5,
            10,
            "gives `2026/01/01`, which contains `/`"
        );
        assert_error!(&with("@daily", "%Y-%m-%d%"), 5, 10, "is not a date format");
        assert_error!(
            &with("@daily", ".%Y-%m-%d"),
            5,
            10,
            "gives `.2026-01-01`, which starts with `.`"
        );
    }

    #[test]
    fn catchup_takes_all_latest_or_a_positive_number() {
        let base = "  cron: \"@daily\"\n  start: 2026-01-01\n";
        assert_eq!(
            schedule(&format!("{base}  catchup: all\n")).catchup,
            Catchup::All
        );
        assert_eq!(
            schedule(&format!("{base}  catchup: latest\n")).catchup,
            Catchup::Latest(1)
        );
        assert_eq!(
            schedule(&format!("{base}  catchup: 3\n")).catchup,
            Catchup::Latest(3)
        );
        let yaml = format!("name: wf\nschedule:\n{base}  catchup: 0\n{STAGES}");
        assert_error!(&yaml, 5, 12, "found 0");
        let yaml = format!("name: wf\nschedule:\n{base}  catchup: lastest\n{STAGES}");
        assert_error!(&yaml, 5, 12, "found `lastest`", hint: "did you mean `latest`?");
    }

    #[test]
    fn what_is_left_out_takes_the_defaults() {
        let daily = schedule("  cron: \"0 3 * * *\"\n  start: 2026-01-01\n");
        assert_eq!(daily.timezone, jiff::tz::TimeZone::UTC);
        assert_eq!(daily.catchup, defaults::CATCHUP);
        assert_eq!(daily.max_active, defaults::MAX_ACTIVE);
        assert_eq!(daily.batch, defaults::BATCH_DAILY);
        assert_eq!(daily.end, None);
        assert_eq!(daily.start.to_string(), "2026-01-01T00:00:00Z");
        let hourly =
            schedule("  cron: \"@hourly\"\n  timezone: America/New_York\n  start: 2026-01-01\n");
        assert_eq!(hourly.batch, defaults::BATCH_HOURLY);
        assert_eq!(hourly.start.to_string(), "2026-01-01T05:00:00Z");
        let twice = schedule("  cron: [\"0 3 * * *\", \"0 15 * * *\"]\n  start: 2026-01-01\n");
        assert_eq!(twice.batch, defaults::BATCH_HOURLY);
        let finer = schedule("  cron: \"*/15 * * * *\"\n  start: 2026-01-01\n");
        assert_eq!(finer.batch, defaults::BATCH_FINER);
        let monthly = schedule("  cron: \"@monthly\"\n  start: 2026-01-01\n");
        assert_eq!(monthly.batch, defaults::BATCH_DAILY);
    }

    #[test]
    fn start_and_end_are_dates_local_times_or_instants() {
        let paris = |when: &str| {
            schedule(&format!(
                "  cron: \"@daily\"\n  timezone: Europe/Paris\n  start: {when}\n  end: 2026-12-31\n"
            ))
        };
        assert_eq!(
            paris("2026-01-01").start.to_string(),
            "2025-12-31T23:00:00Z"
        );
        assert_eq!(
            paris("2026-07-01T03:00").start.to_string(),
            "2026-07-01T01:00:00Z"
        );
        assert_eq!(
            paris("2026-07-01T03:00:00Z").start.to_string(),
            "2026-07-01T03:00:00Z"
        );
        // `end` is inclusive: a date reaches to the end of that day in the time zone.
        let end = paris("2026-01-01").end.unwrap();
        assert_eq!(end.to_string(), "2026-12-31T22:59:59.999999999Z");
    }
}
