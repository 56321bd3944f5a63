//! Mapping a step's command line so that a workflow written for EMR runs locally:
//! `spark-submit [options] app.py [args]` becomes `python3 app.py [args]` (as argv[0], or
//! inside the line of `bash -c` / `sh -c`, found with `shell.rs`), and the `s3://` and
//! `hdfs://` URLs in it are found and replaced by local paths.

use crate::shell::shell_tokens;
use crate::steps::Failure;
use std::collections::HashMap;

const SCHEMES: [&str; 4] = ["s3://", "s3a://", "s3n://", "hdfs://"];
const SPARK_FLAGS: [&str; 4] = ["--verbose", "--supervise", "--help", "--version"];

/// The byte ranges of the `s3://...` and `hdfs://...` URLs in `text`.
pub(crate) fn find_urls(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut urls = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary
            && let Some(scheme) = SCHEMES
                .iter()
                .find(|s| bytes[i..].starts_with(s.as_bytes()))
        {
            let end = text[i..]
                .find(|c: char| c.is_whitespace() || "\"'`;&|()<>,".contains(c))
                .map_or(text.len(), |e| i + e);
            if end > i + scheme.len() {
                urls.push((i, end));
                i = end;
                continue;
            }
        }
        i += 1;
    }
    urls
}

pub(crate) fn substitute(text: &str, local: &HashMap<String, String>) -> String {
    let mut out = String::new();
    let mut last = 0;
    for (start, end) in find_urls(text) {
        out.push_str(&text[last..start]);
        out.push_str(
            local
                .get(&text[start..end])
                .map_or(&text[start..end], |s| s),
        );
        last = end;
    }
    out.push_str(&text[last..]);
    out
}

fn program_name(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// The index of the application among spark-submit's words (`words[0]` is spark-submit).
fn spark_app(words: &[&str]) -> Result<usize, Failure> {
    let mut i = 1;
    while i < words.len() && words[i].starts_with("--") {
        i += if SPARK_FLAGS.contains(&words[i]) || words[i].contains('=') {
            1
        } else {
            2
        };
    }
    let Some(app) = words.get(i) else {
        return Err(Failure::new(
            "Invalid spark-submit",
            "spark-submit has no application",
        ));
    };
    if !app.ends_with(".py") {
        let what = if app.ends_with(".jar") {
            "a JAR"
        } else {
            "this"
        };
        return Err(Failure::new(
            "Unsupported Spark application",
            format!(
                "spark-submit of {what} application ({app}) is not emulated; only Python (.py) \
                 applications run, as python3"
            ),
        ));
    }
    Ok(i)
}

/// Replaces `spark-submit [options] app.py` by `python3 app.py`, in an argv or in the
/// line of `bash -c` / `sh -c`. Returns the argv and the applications named.
pub(crate) fn map_spark_submit(args: &[String]) -> Result<(Vec<String>, Vec<String>), Failure> {
    let mut apps = Vec::new();
    let program = program_name(&args[0]);
    if program == "spark-submit" {
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        let app = spark_app(&words)?;
        apps.push(args[app].clone());
        let argv = std::iter::once("python3".to_string())
            .chain(args[app..].iter().cloned())
            .collect();
        return Ok((argv, apps));
    }
    let mut argv = args.to_vec();
    if matches!(program, "bash" | "sh")
        && let Some(flag) = argv
            .iter()
            .position(|a| a.starts_with('-') && !a.starts_with("--") && a.ends_with('c'))
        && flag + 1 < argv.len()
    {
        argv[flag + 1] = map_shell_line(&argv[flag + 1], &mut apps)?;
    }
    Ok((argv, apps))
}

fn map_shell_line(line: &str, apps: &mut Vec<String>) -> Result<String, Failure> {
    let tokens = shell_tokens(line);
    let mut out = String::new();
    let mut last = 0;
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i].word && program_name(&tokens[i].text) == "spark-submit" {
            let words: Vec<&str> = tokens[i..]
                .iter()
                .take_while(|t| t.word)
                .map(|t| t.text.as_str())
                .collect();
            let app = spark_app(&words)?;
            apps.push(words[app].to_string());
            out.push_str(&line[last..tokens[i].start]);
            out.push_str("python3 ");
            out.push_str(&line[tokens[i + app].start..tokens[i + app].end]);
            last = tokens[i + app].end;
            i += app + 1;
        } else {
            i += 1;
        }
    }
    out.push_str(&line[last..]);
    Ok(out)
}
