//! Mapping a step's command line so that a workflow written for EMR runs locally:
//! `spark-submit [options] app.py [args]` (as argv[0], or inside the line of `bash -c` /
//! `sh -c`, found with `shell.rs`) becomes a real `spark-submit` in local mode with the
//! emulator's settings when the emulator has one ([`crate::EmulatorConfig::spark_submit`]),
//! and `python3 app.py [args]` otherwise; the step's own options are dropped either way.
//! The `s3://` and `hdfs://` URLs in the line are found and replaced by local paths.

use crate::shell::shell_tokens;
use crate::steps::Failure;
use std::collections::HashMap;
use std::path::Path;

const SCHEMES: [&str; 4] = ["s3://", "s3a://", "s3n://", "hdfs://"];
const SPARK_FLAGS: [&str; 4] = ["--verbose", "--supervise", "--help", "--version"];

/// What replaces a step's own spark-submit options in local mode: two cores, no web UI,
/// few shuffle partitions, a small driver, and a JIT that starts fast (a step's JVM lives
/// seconds, not hours). The driver and its executors share one JVM in local mode, so the
/// driver's memory is all there is.
pub(crate) const LOCAL_SPARK_OPTIONS: [&str; 10] = [
    "--master",
    "local[2]",
    "--conf",
    "spark.ui.enabled=false",
    "--conf",
    "spark.sql.shuffle.partitions=2",
    "--driver-memory",
    "768m",
    "--driver-java-options",
    "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
];

/// A word quoted for a shell line (left alone when it needs no quotes).
fn shell_quote(word: &str) -> String {
    if !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b))
    {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

/// The words that replace `spark-submit [options]`.
fn runner(spark_submit: Option<&Path>) -> Vec<String> {
    match spark_submit {
        Some(path) => std::iter::once(path.display().to_string())
            .chain(LOCAL_SPARK_OPTIONS.iter().map(|o| o.to_string()))
            .collect(),
        None => vec!["python3".to_string()],
    }
}

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

/// Replaces `spark-submit [options] app.py` by a local-mode `spark-submit` (when
/// `spark_submit` names one) or `python3`, in an argv or in the line of `bash -c` /
/// `sh -c`. Returns the argv and the applications named.
pub(crate) fn map_spark_submit(
    args: &[String],
    spark_submit: Option<&Path>,
) -> Result<(Vec<String>, Vec<String>), Failure> {
    let mut apps = Vec::new();
    let program = program_name(&args[0]);
    let runner = runner(spark_submit);
    if program == "spark-submit" {
        let words: Vec<&str> = args.iter().map(String::as_str).collect();
        let app = spark_app(&words)?;
        apps.push(args[app].clone());
        let argv = runner
            .into_iter()
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
        let runner: Vec<String> = runner.iter().map(|w| shell_quote(w)).collect();
        argv[flag + 1] = map_shell_line(&argv[flag + 1], &runner.join(" "), &mut apps)?;
    }
    Ok((argv, apps))
}

fn map_shell_line(line: &str, runner: &str, apps: &mut Vec<String>) -> Result<String, Failure> {
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
            out.push_str(runner);
            out.push(' ');
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| w.to_string()).collect()
    }

    fn mapped(args: &[&str]) -> (Vec<String>, Vec<String>) {
        match map_spark_submit(&strings(args), None) {
            Ok(mapped) => mapped,
            Err(failure) => panic!("{}: {}", failure.reason, failure.message),
        }
    }

    fn refused(args: &[&str]) -> Failure {
        match map_spark_submit(&strings(args), None) {
            Ok(mapped) => panic!("expected a failure, got {mapped:?}"),
            Err(failure) => failure,
        }
    }

    #[test]
    fn spark_submit_as_argv0_becomes_python3_and_its_options_are_dropped() {
        let (argv, apps) = mapped(&[
            "/usr/bin/spark-submit",
            "--master",
            "yarn",
            "--conf=spark.x=1",
            "--verbose",
            "s3://b/code/job.py",
            "--in",
            "s3://b/in/",
        ]);
        assert_eq!(
            argv,
            ["python3", "s3://b/code/job.py", "--in", "s3://b/in/"]
        );
        assert_eq!(apps, ["s3://b/code/job.py"]);
    }

    #[test]
    fn spark_submit_inside_a_bash_line_is_rewritten_in_place() {
        let line = "set -e; spark-submit --deploy-mode cluster 's3://b/a b.py' x && echo done";
        let (argv, apps) = mapped(&["bash", "-c", line]);
        assert_eq!(
            argv,
            [
                "bash",
                "-c",
                "set -e; python3 's3://b/a b.py' x && echo done"
            ]
        );
        assert_eq!(apps, ["s3://b/a b.py"]);
    }

    #[test]
    fn with_a_spark_submit_the_step_runs_real_spark_in_local_mode_with_the_emulators_options() {
        let spark = Path::new("/opt/spark venv/bin/spark-submit");
        let words = [
            "spark-submit",
            "--deploy-mode",
            "cluster",
            "s3://b/j.py",
            "--x",
        ];
        let (argv, apps) = map_spark_submit(&strings(&words), Some(spark)).unwrap_or_else(|f| {
            panic!("{}", f.message);
        });
        let mut want = vec!["/opt/spark venv/bin/spark-submit"];
        want.extend(LOCAL_SPARK_OPTIONS);
        want.extend(["s3://b/j.py", "--x"]);
        assert_eq!(argv, want);
        assert_eq!(apps, ["s3://b/j.py"]);
        let line = "sleep 1; spark-submit --master yarn s3://b/j.py --out s3://b/o/";
        let (argv, _) = map_spark_submit(&strings(&["bash", "-c", line]), Some(spark))
            .unwrap_or_else(|f| panic!("{}", f.message));
        assert_eq!(
            argv[2],
            "sleep 1; '/opt/spark venv/bin/spark-submit' --master 'local[2]' \
             --conf spark.ui.enabled=false --conf spark.sql.shuffle.partitions=2 \
             --driver-memory 768m --driver-java-options '-XX:TieredStopAtLevel=1 -XX:+UseSerialGC' \
             s3://b/j.py --out s3://b/o/"
        );
    }

    #[test]
    fn other_commands_are_left_alone() {
        let args = ["python3", "job.py", "--out", "hdfs:///t"];
        assert_eq!(mapped(&args), (strings(&args), Vec::new()));
    }

    #[test]
    fn a_jar_application_or_none_fails_the_step() {
        let jar = refused(&["spark-submit", "--class", "Main", "app.jar"]);
        assert_eq!(jar.reason, "Unsupported Spark application");
        assert!(jar.message.contains("a JAR application (app.jar)"));
        let none = refused(&["spark-submit", "--master", "yarn"]);
        assert_eq!(none.message, "spark-submit has no application");
    }

    #[test]
    fn urls_start_at_a_word_boundary_and_end_at_a_separator() {
        let text = "--in=s3://b/x,hdfs:///t/y my_s3://no 's3a://b/q' s3://";
        let urls: Vec<&str> = find_urls(text).iter().map(|&(s, e)| &text[s..e]).collect();
        assert_eq!(urls, ["s3://b/x", "hdfs:///t/y", "s3a://b/q"]);
    }

    #[test]
    fn substitute_replaces_the_urls_it_knows_and_keeps_the_rest() {
        let local = HashMap::from([("s3://b/in".to_string(), "/tmp/s3/0".to_string())]);
        assert_eq!(
            substitute("--in=s3://b/in --out s3://b/out", &local),
            "--in=/tmp/s3/0 --out s3://b/out"
        );
    }
}
