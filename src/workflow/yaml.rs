//! A YAML document as a tree of located nodes.
//!
//! serde stops at the first error of a derived struct, but `respawn validate` must report
//! every problem of a file at once. So the file is first read into this loosely typed tree
//! (every node keeps its line and column through `serde_saphyr::Spanned`), and the schema is
//! then checked by hand in `read.rs`, collecting diagnostics instead of stopping. A plain
//! file gets the same tree a cheaper way, from the parser's events (`yaml/plain.rs`).

mod plain;

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
///
/// A plain document (no anchors, aliases, tags or merge keys) takes the short way of
/// `yaml/plain.rs`, which builds the same tree from the parser's events; anything else,
/// and every error, goes through serde-saphyr's deserializer.
pub fn parse_document(text: &str) -> Result<Option<Node>, serde_saphyr::Error> {
    match short_way(text) {
        Some(root) => Ok(Some(root)),
        None => with_serde_saphyr(text),
    }
}

/// The tree of a plain document from the parser's events, or `None` when serde-saphyr
/// must build it. A scalar of doubtful type is typed by serde-saphyr alone.
fn short_way(text: &str) -> Option<Node> {
    plain::build(text, |scalar| match with_serde_saphyr(scalar) {
        Ok(Some(node)) if !matches!(node.value, Value::Seq(_) | Value::Map(_)) => Some(node.value),
        _ => None,
    })
}

/// The document through serde-saphyr's deserializer, every node `Spanned`.
fn with_serde_saphyr(text: &str) -> Result<Option<Node>, serde_saphyr::Error> {
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

/// The short way against serde-saphyr: for any text, it either gives up or builds exactly
/// the tree (values, lines, columns, byte ranges) that serde-saphyr builds.
#[cfg(test)]
mod both_ways {
    use super::*;
    use proptest::prelude::*;
    use std::path::Path;

    /// Whether the short way took the document; panics where the two ways differ.
    fn agree(text: &str) -> bool {
        let Some(short) = short_way(text) else {
            return false;
        };
        match with_serde_saphyr(text) {
            Ok(Some(full)) => assert_eq!(short, full, "the two ways differ on:\n{text}"),
            other => panic!("the short way took a document serde-saphyr gives {other:?}:\n{text}"),
        }
        true
    }

    fn yaml_files(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "yaml" || e == "yml"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn every_example_workflow_takes_the_short_way_to_the_same_tree() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let files = yaml_files(&root.join("workflows"));
        assert!(files.len() >= 3);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            assert!(agree(&text), "{} left to serde-saphyr", file.display());
        }
    }

    #[test]
    fn malformed_workflows_agree_or_are_left_to_serde_saphyr() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut short = 0;
        for file in yaml_files(&root.join("tests/malformed")) {
            // The catalog holds a file that is not UTF-8; the reader refuses it before parsing.
            if let Ok(text) = String::from_utf8(std::fs::read(&file).unwrap()) {
                short += usize::from(agree(&text));
            }
        }
        // Most of the catalog is valid YAML with a schema error: the short way's case.
        assert!(short >= 20, "only {short} catalog files took the short way");
    }

    #[test]
    fn scalars_of_every_type_are_typed_as_serde_saphyr_types_them() {
        for scalar in SCALARS {
            for text in [
                format!("k: {scalar}\n"),
                format!("k: [{scalar}, x]\n"),
                format!("k:\n  - {scalar}\n"),
                format!("{scalar}: v\n"),
                format!("k: {{a: {scalar}}}\n"),
            ] {
                agree(&text);
            }
        }
        // The obvious ones never need serde-saphyr.
        for obvious in [
            "null",
            "~",
            "yes",
            "Off",
            "8",
            "5m",
            "12GB",
            "200MB/s",
            "s1",
            "job --in x",
        ] {
            assert!(agree(&format!("k: {obvious}\n")), "{obvious}");
        }
    }

    #[test]
    fn documents_using_more_of_yaml_are_left_to_serde_saphyr() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "base: {x: 1}\nb:\n  <<: {x: 2}\n",
            "? [a, b]\n: c\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: 1\n---\nb: 2\n",
            "- a\n- b\n",
            "just text\n",
            "",
            "a: [1, 2\n",
            "a:\n\tb: 1\n",
            "\u{feff}a: 1\n",
        ] {
            assert!(!agree(text) || text.starts_with('\u{feff}'), "{text:?}");
            // Whatever the way, parse_document answers as serde-saphyr does.
            assert_eq!(
                format!("{:?}", parse_document(text)),
                format!("{:?}", with_serde_saphyr(text))
            );
        }
    }

    #[test]
    fn nesting_and_size_near_the_budgets_are_left_to_serde_saphyr() {
        let deep = format!("a: {}1{}\n", "[".repeat(45), "]".repeat(45));
        assert!(!agree(&deep));
        let wide = format!("a: [{}]\n", vec!["1"; 350_000].join(", "));
        assert!(!agree(&wide));
    }

    /// Spellings at the edges of YAML's types.
    const SCALARS: &[&str] = &[
        "",
        "~",
        "null",
        "Null",
        "NULL",
        "nULL",
        "true",
        "True",
        "TRUE",
        "tRuE",
        "yes",
        "Yes",
        "y",
        "Y",
        "n",
        "N",
        "no",
        "NO",
        "on",
        "On",
        "off",
        "OFF",
        "0",
        "7",
        "-7",
        "+7",
        "007",
        "08",
        "1_000",
        "123456789012345678",
        "1234567890123456789",
        "99999999999999999999",
        "0x1f",
        "0X1F",
        "0o17",
        "0b101",
        "0xg",
        "1.10",
        "1.",
        ".5",
        "-.5",
        "1e3",
        "1E-3",
        "1e999",
        "-1e999",
        ".inf",
        "-.Inf",
        "+.INF",
        ".nan",
        ".NaN",
        "inf",
        "-inf",
        "infinity",
        "nan",
        "NaN",
        "1d",
        "5m",
        "12GB",
        "2h",
        "1:30",
        "12:30:00",
        "0.0.1",
        "1.2.3",
        "--1",
        "+",
        "-",
        ".",
        "_",
        "_1",
        "1_",
        "x1",
        "é",
        "日本",
        "2026-11-21",
        "2026-11-21T10:00:00Z",
        "'quoted'",
        "\"1\"",
        "'yes'",
        "\"null\"",
        "\"tab\\tin\"",
        "a b",
        "a  b",
        "1 2",
        "#",
        "s-1",
        "a/b",
        "{{ output }}",
    ];

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => proptest::sample::select(SCALARS).prop_map(str::to_string),
            2 => "[a-z][a-z0-9_-]{0,8}",
            1 => "[0-9a-fA-Fxoe.+_-]{1,6}",
            1 => "[ -~]{0,12}",
            1 => "[a-zé日 ]{1,8}".prop_map(|s| format!("'{s}'")),
        ]
    }

    #[derive(Clone, Debug)]
    enum Shape {
        Scalar(String),
        Seq(Vec<Shape>),
        Map(Vec<(String, Shape)>),
    }

    fn shape() -> impl Strategy<Value = Shape> {
        scalar()
            .prop_map(Shape::Scalar)
            .prop_recursive(4, 40, 5, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..5).prop_map(Shape::Seq),
                    proptest::collection::vec(("[a-z]{1,6}|[ -~]{1,6}", inner), 0..5)
                        .prop_map(Shape::Map),
                ]
            })
    }

    fn flow(shape: &Shape) -> String {
        match shape {
            Shape::Scalar(s) => s.clone(),
            Shape::Seq(items) => format!(
                "[{}]",
                items.iter().map(flow).collect::<Vec<_>>().join(", ")
            ),
            Shape::Map(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{k}: {}", flow(v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// Block style where `block` says so, flow style below `depth` 2 otherwise.
    fn block(shape: &Shape, indent: usize, step: usize, depth: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match shape {
            Shape::Map(entries) if !entries.is_empty() && depth < 3 => {
                for (key, value) in entries {
                    match value {
                        Shape::Scalar(s) => out.push_str(&format!("{pad}{key}: {s}\n")),
                        _ if depth >= 2 => out.push_str(&format!("{pad}{key}: {}\n", flow(value))),
                        _ => {
                            out.push_str(&format!("{pad}{key}:  # note\n"));
                            block(value, indent + step, step, depth + 1, out);
                        }
                    }
                }
            }
            Shape::Seq(items) if !items.is_empty() && depth < 3 => {
                for item in items {
                    out.push_str(&format!("{pad}- {}\n", flow(item)));
                }
            }
            other => out.push_str(&format!("{pad}{}\n", flow(other))),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_documents_give_the_same_tree_both_ways(
            entries in proptest::collection::vec(("[a-z]{1,6}", shape()), 1..6),
            step in prop_oneof![Just(2usize), Just(4usize)],
            crlf in any::<bool>(),
            as_flow in any::<bool>(),
        ) {
            let root = Shape::Map(entries);
            let mut text = String::from("# generated\n");
            if as_flow {
                text.push_str(&flow(&root));
                text.push('\n');
            } else {
                block(&root, 0, step, 0, &mut text);
            }
            if crlf {
                text = text.replace('\n', "\r\n");
            }
            agree(&text);
        }
    }
}
