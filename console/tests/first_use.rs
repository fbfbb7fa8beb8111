//! What a new user meets before anything runs, tried with the real binary:
//! each mistake gets one clear message, said once, and a command whose
//! output is cut short (`| head`) ends quietly.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::Project;

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[test]
fn producing_with_no_broker_says_so_at_once_and_how_to_start_one() {
    let project = Project::new("no-broker");
    let started = Instant::now();
    let out = project.run(&["produce", "--count", "5"]);
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let stderr = stderr_of(&out);
    let expected = format!(
        "no Kafka broker answers at 127.0.0.1:{}",
        project.kafka_port
    );
    assert!(
        stderr.contains(&expected) && stderr.contains("lakectl up"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("error").count(), 1, "said once: {stderr}");
}

#[test]
fn a_negative_rate_is_refused_as_a_bad_value_not_an_unknown_argument() {
    let project = Project::new("bad-rate");
    let out = project.run(&["produce", "--rate", "-5", "--count", "1"]);
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("invalid option --rate: must be a positive number"),
        "{stderr}"
    );
}

#[test]
fn an_error_and_its_cause_are_each_said_once() {
    let project = Project::new("no-config");
    let out = project.run(&["--config", "/nonexistent/lakehouse.toml", "status"]);
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("cannot read configuration file /nonexistent/lakehouse.toml"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn output_cut_short_by_a_closed_pipe_ends_quietly() {
    let project = Project::new("epipe");
    let mut child = project
        .lakectl()
        .args(["stream-sql", "check"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../producer/ksql_queries.sql"
        ))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is gone, as `| head -1` leaves it.
    let out = child.wait_with_output().unwrap();
    assert!(first.contains("TRANSACTIONS_RAW"), "{first}");
    let stderr = stderr_of(&out);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}

#[test]
fn an_unknown_aggregate_in_a_table_is_named() {
    let project = Project::new("summ");
    let file = project.dir.path().join("mine.sql");
    std::fs::write(
        &file,
        "CREATE STREAM s (a INT, amount DOUBLE) WITH (KAFKA_TOPIC='t', VALUE_FORMAT='JSON');\n\
         CREATE TABLE x AS SELECT a, SUMM(amount) AS total FROM s GROUP BY a EMIT CHANGES;\n",
    )
    .unwrap();
    let out = project.run(&["stream-sql", "check", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("line 2") && stderr.contains("unknown function SUMM"),
        "{stderr}"
    );
}

#[test]
fn a_retention_for_a_topic_the_lake_does_not_hold_is_refused() {
    let project = Project::new("purge-typo");
    std::fs::create_dir_all(project.dir.path().join("data_lake/transaction_log")).unwrap();
    let out = project.run(&["purge", "--dry-run", "--retention", "NO_SUCH_TOPIC=3"]);
    assert!(!out.status.success());
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("NO_SUCH_TOPIC") && stderr.contains("transaction_log"),
        "{stderr}"
    );
    let out = project.run(&["purge", "--dry-run", "--retention", "transaction_log=3"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
}

/// The options of `lakectl COMMAND -h`, each with its one-line description.
fn options(project: &Project, command: &[&str]) -> Vec<(String, String)> {
    let out = project.lakectl().args(command).arg("-h").output().unwrap();
    assert!(out.status.success());
    // Each option's line, then its description: on the same line, or (in
    // clap's wide layout) on the next, indented further.
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim();
        if !trimmed.starts_with('-') {
            continue;
        }
        let flag = trimmed
            .split_whitespace()
            .find(|w| w.starts_with("--"))
            .unwrap_or(trimmed)
            .to_string();
        let same_line = trimmed.split_once("  ").map(|(_, d)| d.trim().to_string());
        let next_line = lines
            .get(i + 1)
            .filter(|next| {
                !next.trim_start().starts_with('-') && next.len() - next.trim_start().len() > 6
            })
            .map(|next| next.trim().to_string());
        found.push((flag, same_line.or(next_line).unwrap_or_default()));
    }
    found
}

#[test]
fn each_command_lists_only_the_flags_it_uses_each_described() {
    let project = Project::new("help");
    let cases: [(&[&str], &[&str], &[&str]); 6] = [
        (
            &["produce"],
            &["--count", "--kafka-port"],
            &["--postgres-url", "--state-dir", "--refresh-ms"],
        ),
        (
            &["down"],
            &["--state-dir"],
            &["--kafka-port", "--postgres-url", "--data-lake-dir"],
        ),
        (
            &["purge"],
            &["--data-lake-dir", "--dry-run"],
            &["--kafka-port", "--postgres-url"],
        ),
        (
            &["stream-sql", "check"],
            &["--json", "--state-dir", "--app-id"],
            &["--kafka-port", "--postgres-url", "--data-lake-dir"],
        ),
        (
            &["user", "add"],
            &["--postgres-url", "--password-stdin"],
            &["--kafka-port", "--data-lake-dir"],
        ),
        (
            &["up"],
            &[
                "--kafka-port",
                "--postgres-url",
                "--demo",
                "--reset-state",
                "--refresh-ms",
            ],
            &[],
        ),
    ];
    for (command, present, absent) in cases {
        let listed = options(&project, command);
        let flags: Vec<&str> = listed.iter().map(|(f, _)| f.as_str()).collect();
        for flag in present {
            assert!(
                flags.contains(flag),
                "lakectl {command:?} lacks {flag}: {flags:?}"
            );
        }
        for flag in absent {
            assert!(
                !flags.contains(flag),
                "lakectl {command:?} lists {flag}, which it does not use"
            );
        }
        for (flag, description) in &listed {
            assert!(
                !description.is_empty(),
                "lakectl {command:?} {flag} has no description"
            );
        }
    }
}
