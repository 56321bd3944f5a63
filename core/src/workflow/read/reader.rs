//! The reader's toolkit: typed accessors over the located YAML tree that report a problem
//! where it is (unknown keys with a "did you mean", durations, sizes, choices, names) and
//! let the caller go on, so that one pass finds every problem of a file.

use crate::workflow::diagnostic::{Diagnostic, did_you_mean};
use crate::workflow::units::parse_duration;
use crate::workflow::yaml::{Node, Position, Value};
use std::collections::HashMap;
use std::fmt::Display;
use std::time::Duration;

/// Longest stage or workflow name: names become parts of storage paths and EMR step names.
pub const MAX_NAME_LEN: usize = 63;

/// The fields of one mapping, after unknown and duplicate keys were reported.
pub(super) struct Fields<'n> {
    /// Where the mapping is, for the message about a missing key.
    pub(super) owner: Position,
    entries: Vec<(&'n str, &'n Node, &'n Node)>,
}

impl<'n> Fields<'n> {
    pub(super) fn get(&self, key: &str) -> Option<&'n Node> {
        self.entries
            .iter()
            .find(|(name, _, _)| *name == key)
            .map(|(_, _, value)| *value)
    }
}

/// The state of reading one file. Each accessor reports what is wrong with a node and
/// returns `None`, so the caller can go on to the next key.
pub(super) struct Reader<'a> {
    /// The file as the user named it, for messages.
    pub(super) file: &'a str,
    pub(super) source: &'a str,
    /// Every problem found so far.
    pub(super) diagnostics: Vec<Diagnostic>,
}

impl<'a> Reader<'a> {
    pub(super) fn error(
        &mut self,
        position: Position,
        message: impl Into<String>,
        hint: Option<String>,
    ) {
        let mut diagnostic = Diagnostic::new(self.file, self.source, position, message);
        diagnostic.hint = hint;
        self.diagnostics.push(diagnostic);
    }

    fn key_text(&mut self, key: &Node, what: impl Display + Copy) -> Option<String> {
        match &key.value {
            Value::Seq(_) | Value::Map(_) | Value::Null => {
                self.error(
                    key.position,
                    format!("{what} has a key that is {}", key.kind()),
                    Some("keys are plain words, like `name:`".into()),
                );
                None
            }
            _ => key.scalar_text(self.source),
        }
    }

    /// Every `key: value` of a mapping, reporting duplicate keys; `None` if not a mapping.
    pub(super) fn entries<'n>(
        &mut self,
        node: &'n Node,
        what: impl Display + Copy,
    ) -> Option<Vec<(String, &'n Node, &'n Node)>> {
        let Value::Map(pairs) = &node.value else {
            self.error(
                node.position,
                format!("{what} must be a mapping, found {}", node.kind()),
                None,
            );
            return None;
        };
        let mut seen: HashMap<String, Position> = HashMap::with_capacity(pairs.len());
        let mut entries: Vec<(String, &Node, &Node)> = Vec::with_capacity(pairs.len());
        for (key, value) in pairs {
            let Some(name) = self.key_text(key, what) else {
                continue;
            };
            if let Some(first) = seen.get(&name) {
                self.error(
                    key.position,
                    format!("duplicate key `{name}` in {what}"),
                    Some(format!(
                        "`{name}` is already defined at line {}, column {}",
                        first.line, first.column
                    )),
                );
                continue;
            }
            seen.insert(name.clone(), key.position);
            entries.push((name, key, value));
        }
        Some(entries)
    }

    /// A mapping with a fixed set of keys: unknown keys are reported with a suggestion.
    pub(super) fn fields<'n>(
        &mut self,
        node: &'n Node,
        what: impl Display + Copy,
        allowed: &'static [&'static str],
    ) -> Option<Fields<'n>> {
        let entries = self.entries(node, what)?;
        let mut fields = Fields {
            owner: node.position,
            entries: Vec::with_capacity(entries.len()),
        };
        for (name, key, value) in entries {
            match allowed.iter().find(|a| **a == name) {
                Some(known) => fields.entries.push((known, key, value)),
                None => {
                    let hint = match did_you_mean(&name, allowed.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("known keys: {}", allowed.join(", ")),
                    };
                    self.error(
                        key.position,
                        format!("unknown key `{name}` in {what}"),
                        Some(hint),
                    );
                }
            }
        }
        Some(fields)
    }

    pub(super) fn required<'n>(
        &mut self,
        fields: &Fields<'n>,
        key: &str,
        what: impl Display + Copy,
        hint: &str,
    ) -> Option<&'n Node> {
        let found = fields.get(key);
        if found.is_none() {
            self.error(
                fields.owner,
                format!("{what} is missing the required key `{key}`"),
                Some(hint.to_string()),
            );
        }
        found
    }

    pub(super) fn string(&mut self, node: &Node, what: impl Display + Copy) -> Option<String> {
        match &node.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(_) | Value::Float(_) | Value::Bool(_) => node.scalar_text(self.source),
            _ => {
                self.error(
                    node.position,
                    format!("{what} must be a string, found {}", node.kind()),
                    None,
                );
                None
            }
        }
    }

    pub(super) fn scalar_with<T>(
        &mut self,
        node: &Node,
        what: impl Display + Copy,
        expected: &str,
        example: &str,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Option<T> {
        let text = match &node.value {
            Value::Seq(_) | Value::Map(_) | Value::Null => None,
            _ => node.scalar_text(self.source),
        };
        let Some(text) = text else {
            self.error(
                node.position,
                format!("{what} must be {expected}, found {}", node.kind()),
                Some(format!("for example `{example}`")),
            );
            return None;
        };
        match parse(&text) {
            Ok(value) => Some(value),
            Err(reason) => {
                self.error(
                    node.position,
                    format!("{what} must be {expected}: {reason}"),
                    Some(format!("for example `{example}`")),
                );
                None
            }
        }
    }

    pub(super) fn duration(
        &mut self,
        node: &Node,
        what: impl Display + Copy,
        example: &str,
    ) -> Option<Duration> {
        self.scalar_with(node, what, "a duration", example, parse_duration)
    }

    pub(super) fn positive_duration(
        &mut self,
        node: &Node,
        what: impl Display + Copy,
        example: &str,
    ) -> Option<Duration> {
        self.scalar_with(node, what, "a duration", example, |text| {
            let value = parse_duration(text)?;
            if value.is_zero() {
                Err("it must be longer than zero".into())
            } else {
                Ok(value)
            }
        })
    }

    pub(super) fn integer(
        &mut self,
        node: &Node,
        what: impl Display + Copy,
        min: i64,
        max: i64,
    ) -> Option<u32> {
        match node.value {
            Value::Int(value) if (min..=max).contains(&value) => Some(value as u32),
            Value::Int(value) => {
                self.error(
                    node.position,
                    format!("{what} must be between {min} and {max}, found {value}"),
                    None,
                );
                None
            }
            Value::Float(value) if value.fract() == 0.0 => {
                let text = node
                    .scalar_text(self.source)
                    .unwrap_or_else(|| value.to_string());
                self.error(
                    node.position,
                    format!("{what} must be between {min} and {max}, found {text}"),
                    None,
                );
                None
            }
            _ => {
                self.error(
                    node.position,
                    format!("{what} must be a whole number, found {}", node.kind()),
                    Some(format!("for example `{}`", min.max(1))),
                );
                None
            }
        }
    }

    pub(super) fn price(&mut self, node: &Node, what: impl Display + Copy) -> Option<f64> {
        let value = match node.value {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
            _ => f64::NAN,
        };
        if value.is_finite() && value >= 0.0 {
            Some(value)
        } else {
            self.error(
                node.position,
                format!("{what} must be a price per hour (a number, zero or more)"),
                Some("for example `0.35`".into()),
            );
            None
        }
    }

    pub(super) fn boolean(&mut self, node: &Node, what: impl Display + Copy) -> Option<bool> {
        match node.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.error(
                    node.position,
                    format!("{what} must be `true` or `false`, found {}", node.kind()),
                    None,
                );
                None
            }
        }
    }

    pub(super) fn choice<T: Copy>(
        &mut self,
        node: &Node,
        what: impl Display + Copy,
        choices: &[(&str, T)],
    ) -> Option<T> {
        let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
        let text = match &node.value {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        };
        if let Some(found) = text.and_then(|t| choices.iter().find(|(name, _)| *name == t)) {
            return Some(found.1);
        }
        let hint = match text.and_then(|t| did_you_mean(t, names.iter().copied())) {
            Some(s) => format!("did you mean `{s}`? one of: {}", names.join(", ")),
            None => format!("one of: {}", names.join(", ")),
        };
        let found = match text {
            Some(t) => format!("`{t}`"),
            None => node.kind().to_string(),
        };
        self.error(
            node.position,
            format!("{what} must be one of {}, found {found}", names.join(" | ")),
            Some(hint),
        );
        None
    }

    pub(super) fn name(
        &mut self,
        text: &str,
        position: Position,
        what: impl Display + Copy,
    ) -> bool {
        match check_name(text) {
            Ok(()) => true,
            Err(reason) => {
                let lower = text.to_ascii_lowercase().replace(['_', ' ', '.'], "-");
                let hint = if lower != text && check_name(&lower).is_ok() {
                    format!(
                        "names become storage paths: use lowercase letters, digits and `-`, e.g. `{lower}`"
                    )
                } else {
                    "names become storage paths: use lowercase letters, digits and `-`".to_string()
                };
                self.error(position, format!("{what} `{text}` {reason}"), Some(hint));
                false
            }
        }
    }

    /// A string that must look like an S3 URL (`s3://bucket/...`).
    pub(super) fn s3_url(&mut self, node: &Node, what: impl Display + Copy) -> Option<String> {
        let text = self.string(node, what)?;
        let bucket = text
            .strip_prefix("s3://")
            .map(|rest| rest.split('/').next().unwrap_or(""));
        match bucket {
            Some(bucket) if !bucket.is_empty() => Some(text),
            _ => {
                self.error(
                    node.position,
                    format!("{what} must be an S3 URL, found `{text}`"),
                    Some("for example `s3://my-bucket/emr-logs/`".into()),
                );
                None
            }
        }
    }

    /// A list of non-empty strings.
    pub(super) fn string_list(
        &mut self,
        node: &Node,
        what: impl Display + Copy,
    ) -> Option<Vec<String>> {
        let Value::Seq(items) = &node.value else {
            self.error(
                node.position,
                format!("{what} must be a list, found {}", node.kind()),
                Some("for example `[a, b]`".into()),
            );
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        let mut ok = true;
        for item in items {
            match self.string(item, what) {
                Some(text) if !text.trim().is_empty() => out.push(text),
                Some(_) => {
                    self.error(item.position, format!("{what} has an empty entry"), None);
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// Where a character offset inside a string value lies, when the source shows the value
    /// as written (a plain or simply quoted scalar on one line).
    pub(super) fn position_inside(
        &self,
        node: &Node,
        value: &str,
        chars: usize,
        bytes: usize,
    ) -> Position {
        let Some(start) = node.position.byte_start else {
            return node.position;
        };
        let Some(written) = self.source.get(start..) else {
            return node.position;
        };
        let prefix = &value[..bytes];
        if written.starts_with(prefix) {
            node.position.shifted(chars, bytes)
        } else if (written.starts_with('"') || written.starts_with('\''))
            && written[1..].starts_with(prefix)
        {
            node.position.shifted(chars + 1, bytes + 1)
        } else {
            node.position
        }
    }
}

/// A stage or workflow name: it becomes part of storage paths and EMR step names.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!(
            "is {} characters long; at most {} are allowed",
            name.len(),
            MAX_NAME_LEN
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "contains `{}`, which is not allowed",
            bad.escape_default()
        ));
    }
    if name.starts_with('-') {
        return Err("starts with `-`".into());
    }
    Ok(())
}
