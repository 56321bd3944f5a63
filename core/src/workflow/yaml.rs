//! A YAML document as a tree of located nodes.
//!
//! serde stops at the first error of a derived struct, but `respawn validate` must report
//! every problem of a file at once. So the file is first read into this loosely typed tree
//! (every node keeps its line and column through `serde_saphyr::Spanned`), and the schema is
//! then checked by hand in `read/`, collecting diagnostics instead of stopping.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::{Location, Spanned};
use std::fmt;

/// Where a node starts in the source: 1-based line and column, and the byte range when known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Position {
    pub line: u32,
    pub column: u32,
    pub byte_start: Option<usize>,
    pub byte_len: Option<usize>,
}

impl Position {
    fn from_location(location: Location) -> Self {
        let span = location.span();
        Position {
            line: u32::try_from(location.line()).unwrap_or(u32::MAX),
            column: u32::try_from(location.column()).unwrap_or(u32::MAX),
            byte_start: span.byte_offset().and_then(|o| usize::try_from(o).ok()),
            byte_len: span.byte_len().and_then(|o| usize::try_from(o).ok()),
        }
    }

    /// The same position moved `chars` characters to the right on the same line.
    pub fn shifted(self, chars: usize, bytes: usize) -> Self {
        Position {
            line: self.line,
            column: self
                .column
                .saturating_add(u32::try_from(chars).unwrap_or(u32::MAX)),
            byte_start: self.byte_start.map(|b| b + bytes),
            byte_len: None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub position: Position,
}

impl Node {
    /// What kind of node this is, for messages ("expected a duration, found a mapping").
    pub fn kind(&self) -> &'static str {
        match &self.value {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }

    /// The scalar as text, the way it was written where the source still has it.
    pub fn scalar_text(&self, source: &str) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            // `yes`, `On` and friends are booleans to YAML but names to a user.
            Value::Bool(_) | Value::Int(_) | Value::Float(_) => {
                let raw = self
                    .position
                    .byte_start
                    .zip(self.position.byte_len)
                    .and_then(|(start, len)| source.get(start..start + len))
                    .map(str::trim);
                match (&self.value, raw) {
                    (_, Some(raw)) if !raw.is_empty() => Some(raw.to_string()),
                    (Value::Bool(b), _) => Some(b.to_string()),
                    (Value::Int(i), _) => Some(i.to_string()),
                    (Value::Float(f), _) => Some(f.to_string()),
                    _ => None,
                }
            }
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            value: spanned.value,
            position: Position::from_location(spanned.referenced),
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::Float(v as f64), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        Value::deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}

/// The most a workflow file may weigh; a larger file is refused before it is parsed.
pub const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

/// Parses one YAML document into a located tree, within budgets that stop alias bombs,
/// deep nesting and node floods. Duplicate keys are passed through so that the reader can
/// report each of them with both locations.
pub fn parse_document(text: &str) -> Result<Option<Node>, serde_saphyr::Error> {
    let mut alias_limits = serde_saphyr::options::AliasLimits::default();
    alias_limits.max_total_replayed_events = 100_000;
    alias_limits.max_replay_stack_depth = 16;
    alias_limits.max_alias_expansions_per_anchor = 1_000;
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: 48,
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_nodes: 400_000,
            max_events: 1_500_000,
            max_documents: 1,
        },
        alias_limits: alias_limits,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
    };
    serde_saphyr::from_str_with_options::<Option<Node>>(text, options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_keep_line_and_column_of_keys_and_values() {
        let node = parse_document("a: 1\nb:\n  - x\n  - {c: d}\n")
            .unwrap()
            .unwrap();
        let Value::Map(entries) = node.value else {
            panic!("not a map")
        };
        assert_eq!(entries[1].0.position.line, 2);
        assert_eq!(entries[1].0.position.column, 1);
        let Value::Seq(items) = &entries[1].1.value else {
            panic!("not a seq")
        };
        assert_eq!(items[0].position.line, 3);
        assert_eq!(items[0].position.column, 5);
    }

    #[test]
    fn duplicate_keys_are_kept_for_the_reader_to_report() {
        let node = parse_document("a: 1\na: 2\n").unwrap().unwrap();
        let Value::Map(entries) = node.value else {
            panic!("not a map")
        };
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn numbers_keep_their_written_form() {
        let text = "version: 1.10\n";
        let node = parse_document(text).unwrap().unwrap();
        let Value::Map(entries) = node.value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].1.scalar_text(text).as_deref(), Some("1.10"));
    }

    #[test]
    fn an_alias_bomb_is_refused_quickly() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let started = std::time::Instant::now();
        assert!(parse_document(&text).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(100_000);
        assert!(parse_document(&text).is_err());
        let text = format!("a: {}1{}\n", "[".repeat(5_000), "]".repeat(5_000));
        assert!(parse_document(&text).is_err());
    }

    #[test]
    fn empty_document_is_none() {
        assert!(parse_document("").unwrap().is_none());
        assert!(parse_document("# only a comment\n").unwrap().is_none());
    }
}
