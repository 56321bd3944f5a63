//! The short way to the located tree, for plain documents.
//!
//! serde-saphyr's deserializer costs about twice what its parser does: on a 10,000-stage
//! workflow, building the tree through serde's visitors and `Spanned` took 940 million
//! instructions, of which the parser's own events were 340 million. A workflow file rarely
//! uses the parts of YAML that need the deserializer's machinery, so for a document that uses
//! none of them this module builds the same [`Node`] tree straight from the events of the
//! parser serde-saphyr itself runs (granit-parser, which serde-saphyr re-exports), with
//! positions computed the way serde-saphyr computes them.
//!
//! It gives up, returning `None`, at the first thing it does not handle alone: an anchor,
//! an alias, a tag, a merge key (`<<`), a key that is not a scalar, a `%YAML` directive, a
//! second document, a top level that is not a mapping, a size near the budgets of
//! [`super::parse_document`], and any syntax error. The caller then parses the document
//! with serde-saphyr, which also words every error. A plain scalar whose type is not
//! obvious (`1.10`, `0x1f`, `-3`, `.inf`) is typed by serde-saphyr too, one scalar at a
//! time. A differential test (in `yaml.rs`) holds the two ways to the same tree.

use super::{Node, Position, Value};
use serde_saphyr::granit_parser::{self, Event, Parser, ScalarStyle, Span};

/// Margins under the budgets of `parse_document` (depth 48, 400,000 nodes, 1,500,000
/// events): a document this module accepts is well inside them.
const MAX_DEPTH: usize = 40;
const MAX_NODES: usize = 300_000;
const MAX_EVENTS: usize = 1_000_000;

enum Frame {
    Seq(Vec<Node>, Position),
    /// Entries so far, where the mapping starts, and a key waiting for its value.
    Map(Vec<(Node, Node)>, Position, Option<Node>),
}

/// Builds the located tree of a plain document, or `None` when serde-saphyr must.
/// `typed` types a plain scalar whose type is not obvious, or returns `None` to give up.
pub(super) fn build(text: &str, mut typed: impl FnMut(&str) -> Option<Value>) -> Option<Node> {
    // The parser limits serde-saphyr sets from its default budget.
    let options = granit_parser::options! {
        simple_key_max_lookahead: 1024,
        flow_nesting_limit: 255,
        block_nesting_limit: 255,
        emit_comments: false,
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut root = None;
    let (mut events, mut nodes, mut documents) = (0usize, 0usize, 0usize);
    for item in Parser::new_from_str_with_options(text, options) {
        let (event, span) = item.ok()?;
        events += 1;
        if events > MAX_EVENTS || nodes > MAX_NODES {
            return None;
        }
        let node = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => continue,
            Event::DocumentStart(_, version) => {
                documents += 1;
                if version.is_some() || documents > 1 {
                    return None;
                }
                continue;
            }
            Event::Scalar(text, style, anchor, tag) => {
                if anchor != 0 || tag.is_some() {
                    return None;
                }
                nodes += 1;
                let plain = if style == ScalarStyle::Plain {
                    plain_scalar(&text)
                } else {
                    Plain::Str
                };
                let value = match plain {
                    Plain::Null => Value::Null,
                    Plain::Bool(b) => Value::Bool(b),
                    Plain::Int(int) => Value::Int(int),
                    Plain::Str => Value::Str(text.into_owned()),
                    Plain::Unsure => typed(&text)?,
                };
                Node {
                    value,
                    position: position(&span),
                }
            }
            Event::SequenceStart(_, anchor, ref tag) | Event::MappingStart(_, anchor, ref tag) => {
                if anchor != 0 || tag.is_some() || stack.len() >= MAX_DEPTH {
                    return None;
                }
                nodes += 1;
                let position = position(&span);
                stack.push(if matches!(event, Event::SequenceStart(..)) {
                    Frame::Seq(Vec::new(), position)
                } else {
                    Frame::Map(Vec::new(), position, None)
                });
                continue;
            }
            Event::SequenceEnd => match stack.pop()? {
                Frame::Seq(items, position) => Node {
                    value: Value::Seq(items),
                    position,
                },
                Frame::Map(..) => return None,
            },
            Event::MappingEnd => match stack.pop()? {
                Frame::Map(entries, position, None) => Node {
                    value: Value::Map(entries),
                    position,
                },
                Frame::Map(..) | Frame::Seq(..) => return None,
            },
            _ => return None,
        };
        match stack.last_mut() {
            None if root.is_none() => root = Some(node),
            None => return None,
            Some(Frame::Seq(items, _)) => items.push(node),
            Some(Frame::Map(entries, _, waiting)) => match waiting.take() {
                Some(key) => entries.push((key, node)),
                None => match &node.value {
                    Value::Seq(_) | Value::Map(_) => return None,
                    Value::Str(key) if key == "<<" => return None,
                    _ => *waiting = Some(node),
                },
            },
        }
    }
    root.filter(|root| matches!(root.value, Value::Map(_)))
}

/// Where a node starts, as serde-saphyr's `Location` reports it: 1-based line and
/// column (the parser's column is 0-based), and the byte range when the parser knows it.
fn position(span: &Span) -> Position {
    let (start, end) = (span.start, span.end);
    let bytes = match (start.byte_offset(), end.byte_offset()) {
        (Some(from), Some(to)) => {
            let len = to.saturating_sub(from);
            (from <= u32::MAX as usize && len <= u32::MAX as usize).then_some((from, len))
        }
        _ => None,
    };
    Position {
        line: u32::try_from(start.line()).unwrap_or(u32::MAX),
        column: u32::try_from(start.col() + 1).unwrap_or(u32::MAX),
        byte_start: bytes.map(|(from, _)| from),
        byte_len: bytes.map(|(_, len)| len),
    }
}

/// What a plain scalar is; `Str` when it is text beyond doubt.
enum Plain {
    Null,
    Bool(bool),
    Int(i64),
    Str,
    Unsure,
}

/// Types a plain scalar the way serde-saphyr's defaults do (YAML 1.1 booleans, YAML 1.2
/// nulls and numbers) where that is beyond doubt; everything that could be a number in
/// some notation is `Unsure`.
fn plain_scalar(text: &str) -> Plain {
    if matches!(text, "" | "~" | "null" | "Null" | "NULL") {
        return Plain::Null;
    }
    let trimmed = text.trim_matches([' ', '\t', '\r', '\n']);
    for (word, value) in [
        ("true", true),
        ("yes", true),
        ("y", true),
        ("on", true),
        ("false", false),
        ("no", false),
        ("n", false),
        ("off", false),
    ] {
        if trimmed.eq_ignore_ascii_case(word) {
            return Plain::Bool(value);
        }
    }
    let bytes = trimmed.as_bytes();
    if (1..=18).contains(&bytes.len())
        && bytes.iter().all(u8::is_ascii_digit)
        && (bytes.len() == 1 || bytes[0] != b'0')
    {
        return match trimmed.parse() {
            Ok(int) => Plain::Int(int),
            Err(_) => Plain::Unsure,
        };
    }
    let unsigned = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    let word = unsigned.strip_prefix('.').unwrap_or(unsigned);
    if ["inf", "infinity", "nan"]
        .iter()
        .any(|special| word.eq_ignore_ascii_case(special))
    {
        return Plain::Unsure;
    }
    let numeral = unsigned
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_digit() || b == b'.' || b == b'_');
    // Every character a YAML or Rust numeral may hold: digits, signs, points,
    // underscores, hexadecimal digits, radix prefixes and the letters of inf and nan.
    let numeric = |b: u8| {
        b.is_ascii_hexdigit()
            || matches!(
                b.to_ascii_lowercase(),
                b'+' | b'-' | b'.' | b'_' | b'x' | b'o' | b'i' | b'n' | b't' | b'y'
            )
    };
    if numeral && bytes.iter().all(|&b| numeric(b)) {
        Plain::Unsure
    } else {
        Plain::Str
    }
}
