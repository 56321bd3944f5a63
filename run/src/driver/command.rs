//! Small pieces of a stage's command line: shell quoting, environment names, and the
//! crash hook that fault tests use to kill the orchestrator at a chosen point.

/// Quotes a value for `sh` when it holds anything but plain path characters.
pub fn shell_quote(value: &str) -> String {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./,:@%+=".contains(c));
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

/// `RESPAWN_INPUT_<NAME>`'s NAME for a stage: upper case, `-` as `_`.
pub fn env_name(stage: &str) -> String {
    stage.to_ascii_uppercase().replace('-', "_")
}

/// Test hook: `RESPAWN_CRASH_AT=POINT:STAGE` kills the orchestrator with SIGKILL at that
/// point (`before-commit`, `after-commit`, `before-publish`), to test that nothing
/// committed is lost when the orchestrator dies.
pub fn crash_point(point: &str, stage: &str) {
    if let Ok(spec) = std::env::var("RESPAWN_CRASH_AT")
        && spec == format!("{point}:{stage}")
    {
        // SAFETY: raising a signal at ourselves has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_the_shell_would_split_or_expand() {
        assert_eq!(shell_quote("/tmp/x/out-1.csv"), "/tmp/x/out-1.csv");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("$HOME"), "'$HOME'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn environment_names_are_upper_case_with_underscores() {
        assert_eq!(env_name("daily-sessions"), "DAILY_SESSIONS");
    }
}
