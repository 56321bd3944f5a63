//! A cap on what the store keeps of an attempt's log: a stage that prints gigabytes must
//! not fill the store (or the report's reads). Past [`LOG_CAP`] bytes the log is kept as
//! its first and last halves with a line between them saying how much was cut.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The most of one attempt's log kept in the store, in bytes.
pub const LOG_CAP: u64 = 16 << 20;

/// The file to upload for the log at `path`: itself under the cap, else a capped copy
/// beside it (`<attempt>.log.capped`).
pub(super) fn capped(path: &Path) -> std::io::Result<PathBuf> {
    let length = std::fs::metadata(path)?.len();
    if length <= LOG_CAP {
        return Ok(path.to_path_buf());
    }
    let half = LOG_CAP / 2;
    let copy = path.with_extension("log.capped");
    let mut from = std::fs::File::open(path)?;
    let mut to = std::io::BufWriter::new(std::fs::File::create(&copy)?);
    std::io::copy(&mut (&mut from).take(half), &mut to)?;
    writeln!(
        to,
        "\n[respawn: {} bytes of this {length}-byte log were cut here; the store keeps its \
         first and last {half} bytes]",
        length - 2 * half
    )?;
    from.seek(SeekFrom::Start(length - half))?;
    std::io::copy(&mut from, &mut to)?;
    to.flush()?;
    Ok(copy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_over_the_cap_keeps_its_first_and_last_halves_and_says_what_was_cut() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("1.log");
        std::fs::write(&small, "hello\n").unwrap();
        assert_eq!(capped(&small).unwrap(), small);
        let big = dir.path().join("2.log");
        let length = LOG_CAP as usize + 1000;
        let mut text = vec![b'm'; length];
        text[0] = b'A';
        text[length - 1] = b'Z';
        std::fs::write(&big, &text).unwrap();
        let kept = std::fs::read(capped(&big).unwrap()).unwrap();
        assert!(kept.len() < LOG_CAP as usize + 200, "{}", kept.len());
        assert_eq!((kept[0], kept[kept.len() - 1]), (b'A', b'Z'));
        let said = String::from_utf8_lossy(&kept);
        assert!(
            said.contains("[respawn: 1000 bytes of this"),
            "the cut is named"
        );
    }
}
