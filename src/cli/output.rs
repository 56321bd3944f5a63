//! Writing results: data to stdout, diagnostics to stderr; simple aligned tables.

use super::CliError;
use respawn_core::workflow::Diagnostics;
use std::io::{self, Write};

pub fn stdout(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

pub fn stderr(text: &str) {
    // Nothing sensible is left to do if stderr itself is gone.
    let _ = io::stderr().lock().write_all(text.as_bytes());
}

pub fn json(value: &impl serde::Serialize) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    text.push('\n');
    stdout(&text)
}

/// One JSON object on one line (the lines `tick`, `schedule` and `backfill` print).
pub fn json_line(value: &impl serde::Serialize) -> io::Result<()> {
    let mut text = serde_json::to_string(value).map_err(io::Error::other)?;
    text.push('\n');
    stdout(&text)
}

/// Loads a workflow; a file that does not load is invalid input, shown as its diagnostics.
pub fn load(path: &std::path::Path) -> Result<respawn_core::workflow::Workflow, CliError> {
    Ok(respawn_core::workflow::load(path)?)
}

/// Every problem of a workflow file, located, and how many there are when more than one.
pub fn diagnostics_text(diagnostics: &Diagnostics) -> String {
    let count = diagnostics.0.len();
    let mut text = diagnostics.to_string();
    if count > 1 {
        text.push_str(&format!("{count} problems found\n"));
    }
    text
}

/// Cells up to this wide set their column's width; a wider one (a fan-in's `needs`) is
/// written whole and pushes the rest of its row along, so that one long cell does not pad
/// every row of the table to its width.
const MAX_ALIGNED: usize = 80;

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn table<S: AsRef<str>>(header: &[&str], rows: &[Vec<S>]) -> String {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            let width = cell.as_ref().chars().count();
            if width <= MAX_ALIGNED {
                widths[i] = widths[i].max(width);
            }
        }
    }
    let mut text =
        String::with_capacity((rows.len() + 1) * (widths.iter().sum::<usize>() + 2 * columns + 1));
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        out.clear();
        let mut cells = cells.peekable();
        let mut i = 0;
        while let Some(cell) = cells.next() {
            out.push_str(cell);
            if cells.peek().is_some() {
                let width = widths.get(i).copied().unwrap_or(0);
                let pad = width.saturating_sub(cell.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
            i += 1;
        }
        text.push_str(out.trim_end());
        text.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(AsRef::as_ref));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_very_long_cell_does_not_pad_every_row_to_its_width() {
        let long = "x".repeat(50_000);
        let mut rows = vec![vec!["fan-in".to_string(), long.clone(), "end".into()]];
        rows.extend((0..1000).map(|i| vec![format!("s{i}"), "-".into(), "1m".into()]));
        let text = table(&["stage", "needs", "estimate"], &rows);
        assert!(text.len() < 200_000, "{} bytes", text.len());
        assert!(text.contains(&format!("fan-in  {long}  end\n")));
        let second = text.lines().nth(2).unwrap();
        assert_eq!(second, "s0      -      1m");
    }
}
