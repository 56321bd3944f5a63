//! Names that become parts of storage paths, checked in one place: the reader checks the
//! ones a workflow file gives, and the drivers the ones a command line or a schedule gives.

/// Longest batch id accepted.
pub const MAX_BATCH_LEN: usize = 64;

/// A batch id becomes part of a storage path: letters, digits, `.`, `_` and `-`, not
/// starting with `.`, at most 64 characters (`2026-11-21`, `hourly_2026-11-21T10`).
pub fn check_batch(batch: &str) -> Result<(), String> {
    if batch.is_empty() {
        return Err("is empty".into());
    }
    if batch.len() > MAX_BATCH_LEN {
        return Err(format!(
            "is {} characters long; at most {MAX_BATCH_LEN} are allowed",
            batch.len()
        ));
    }
    if let Some(c) = batch
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "contains `{}`; use letters, digits, `.`, `_` and `-`",
            c.escape_default()
        ));
    }
    if batch.starts_with('.') {
        return Err("starts with `.`".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ids_are_path_safe() {
        for good in ["2026-11-21", "hourly_2026-11-21T10", "b1.2"] {
            assert!(check_batch(good).is_ok(), "{good}");
        }
        for bad in ["", "../x", "a/b", ".hidden", "a b", &"x".repeat(65)] {
            assert!(check_batch(bad).is_err(), "{bad}");
        }
    }
}
