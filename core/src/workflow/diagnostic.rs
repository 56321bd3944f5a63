//! A problem found in a workflow file, located at file:line:column, with a hint.

use super::yaml::Position;
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// The file as the user named it.
    pub file: String,
    pub line: u32,
    pub column: u32,
    pub message: String,
    pub hint: Option<String>,
    /// The source line the position points into, for the caret display.
    pub source_line: Option<String>,
}

impl Diagnostic {
    pub fn new(file: &str, source: &str, position: Position, message: impl Into<String>) -> Self {
        let source_line = (position.line > 0)
            .then(|| source.lines().nth(position.line as usize - 1))
            .flatten()
            .map(|line| line.chars().take(300).collect());
        Diagnostic {
            file: file.to_string(),
            line: position.line,
            column: position.column,
            message: message.into(),
            hint: None,
            source_line,
        }
    }

    /// A problem with the file as a whole (unreadable, empty, too large): line 1, column 1.
    pub fn whole_file(file: &str, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            line: 1,
            column: 1,
            message: message.into(),
            hint: None,
            source_line: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// `file:line:column`, the way editors and terminals make it clickable.
    pub fn location(&self) -> String {
        format!("{}:{}:{}", self.file, self.line, self.column)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}: {}", self.location(), self.message)?;
        if let Some(line) = &self.source_line {
            let number = self.line.to_string();
            let gutter = " ".repeat(number.len());
            writeln!(f, " {number} | {line}")?;
            let indent: String = line
                .chars()
                .take(self.column.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            writeln!(f, " {gutter} | {indent}^")?;
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found in one file, in source order.
#[derive(Clone, Debug, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn sort(&mut self) {
        self.0
            .sort_by(|a, b| (a.line, a.column, &a.message).cmp(&(b.line, b.column, &b.message)));
        self.0.dedup();
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diagnostic in &self.0 {
            write!(f, "{diagnostic}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// The closest of `candidates` to a misspelt `word`, if any is close enough to suggest.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| {
            let edits = strsim::levenshtein(word, candidate);
            let similarity = strsim::jaro_winkler(word, candidate);
            (edits, similarity, candidate)
        })
        .filter(|(edits, similarity, candidate)| {
            *similarity > 0.8 || *edits <= (candidate.chars().count() / 3).max(1)
        })
        .min_by(|a, b| a.0.cmp(&b.0).then(b.1.total_cmp(&a.1)))
        .map(|(_, _, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_known_key() {
        let keys = ["estimate", "needs", "run", "output_size"];
        assert_eq!(did_you_mean("estimat", keys), Some("estimate"));
        assert_eq!(did_you_mean("need", keys), Some("needs"));
        assert_eq!(did_you_mean("rn", keys), Some("run"));
        assert_eq!(did_you_mean("zzz", keys), None);
    }

    #[test]
    fn renders_location_caret_and_hint() {
        let source = "name: x\nstages:\n  a:\n    rn: echo\n";
        let position = Position {
            line: 4,
            column: 5,
            byte_start: None,
            byte_len: None,
        };
        let text = Diagnostic::new("w.yaml", source, position, "unknown key `rn` in stage `a`")
            .with_hint("did you mean `run`?")
            .to_string();
        assert_eq!(
            text,
            "error: w.yaml:4:5: unknown key `rn` in stage `a`\n 4 |     rn: echo\n   |     ^\n  hint: did you mean `run`?\n"
        );
    }
}
