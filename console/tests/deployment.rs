//! The cluster setup checked without a Docker engine (none runs here):
//! `docker-compose.yml` and the `Dockerfile` against the binaries they run.
//! Every command and flag of our containers exists in the binary's CLI,
//! every environment variable is one a binary reads, every file they name
//! exists, host ports and named volumes are consistent, the start order's
//! conditions can be met, and ksqlDB runs the statement file our engine runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use yaml_serde::Value;

/// Our image's binaries.
const BINARIES: [&str; 6] = [
    "lakectl",
    "lake-sink",
    "table-sink",
    "lake-purge",
    "lakehouse-api",
    "stream-sql",
];
/// Read by the tracing filter of every binary, not by a flag.
const NOT_FLAGS: [&str; 1] = ["RUST_LOG"];
const STATEMENT_FILE: &str = "producer/ksql_queries.sql";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A workspace binary, built next to this test's (cargo builds every
/// package's binaries for the workspace's tests).
fn binary(name: &str) -> PathBuf {
    if name == "lakectl" {
        return PathBuf::from(env!("CARGO_BIN_EXE_lakectl"));
    }
    let dir = PathBuf::from(env!("CARGO_BIN_EXE_lakectl"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --bins` (the workspace's test command does)",
        path.display()
    );
    path
}

fn help(binary_name: &str, subcommand: &[String]) -> String {
    let out = Command::new(binary(binary_name))
        .args(subcommand)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{binary_name} {subcommand:?} --help");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn compose() -> Value {
    let text = std::fs::read_to_string(root().join("docker-compose.yml")).unwrap();
    let mut value: Value = yaml_serde::from_str(&text).expect("docker-compose.yml is YAML");
    value.apply_merge().expect("merge keys resolve");
    value
}

fn services(compose: &Value) -> BTreeMap<String, Value> {
    compose["services"]
        .as_mapping()
        .expect("services")
        .iter()
        .map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone()))
        .collect()
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_sequence()
        .map(|s| {
            s.iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => yaml_serde::to_string(other).unwrap().trim().to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn environment(service: &Value) -> BTreeMap<String, String> {
    service["environment"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let value = match v {
                        Value::String(s) => s.clone(),
                        other => yaml_serde::to_string(other).unwrap().trim().to_string(),
                    };
                    (k.as_str().unwrap().to_string(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn ours(service: &Value) -> bool {
    service["image"].as_str() == Some("lakehouse:latest")
}

/// The Dockerfile's `ENV` variables and `COPY` sources (from the build context).
fn dockerfile() -> (BTreeMap<String, String>, Vec<String>, String) {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let mut env = BTreeMap::new();
    let mut copied = Vec::new();
    for line in joined.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("ENV ") {
            for pair in rest.split_whitespace() {
                let (k, v) = pair.split_once('=').expect("ENV KEY=VALUE");
                env.insert(k.to_string(), v.to_string());
            }
        }
        if let Some(rest) = line.strip_prefix("COPY ") {
            if !rest.starts_with("--from") {
                let parts: Vec<&str> = rest.split_whitespace().collect();
                copied.extend(parts[..parts.len() - 1].iter().map(|s| s.to_string()));
            }
        }
    }
    (env, copied, joined)
}

#[test]
fn every_command_flag_and_variable_of_our_containers_exists_in_the_binary() {
    let compose = compose();
    let mut checked = 0;
    for (name, service) in services(&compose) {
        if !ours(&service) {
            continue;
        }
        let command = strings(&service["command"]);
        let binary_name = command
            .first()
            .unwrap_or_else(|| panic!("{name} has no command"));
        assert!(
            BINARIES.contains(&binary_name.as_str()),
            "{name}: {binary_name} is not one of our binaries"
        );
        let subcommand: Vec<String> = command[1..]
            .iter()
            .take_while(|a| !a.starts_with('-'))
            .cloned()
            .collect();
        let text = help(binary_name, &subcommand);
        for flag in command.iter().filter(|a| a.starts_with("--")) {
            let flag = flag.split('=').next().unwrap();
            assert!(
                text.contains(&format!("{flag} ")) || text.contains(&format!("{flag}\n")),
                "{name}: {binary_name} {subcommand:?} has no {flag}"
            );
        }
        for variable in environment(&service).keys() {
            if NOT_FLAGS.contains(&variable.as_str()) {
                continue;
            }
            assert!(
                text.contains(&format!("[env: {variable}=")),
                "{name}: {binary_name} {subcommand:?} does not read {variable}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 5, "our containers: {checked}");
}

#[test]
fn the_image_holds_every_binary_and_reads_only_variables_that_exist() {
    let (env, copied, text) = dockerfile();
    for source in &copied {
        assert!(
            root().join(source).exists(),
            "the Dockerfile copies {source}, which does not exist"
        );
    }
    for name in BINARIES {
        assert!(
            text.contains(&format!("/src/target/release/{name}")),
            "the image lacks {name}"
        );
        binary(name);
    }
    let all_help: String = BINARIES.iter().map(|b| help(b, &[])).collect();
    for variable in env.keys() {
        let read = all_help.contains(&format!("[env: {variable}="))
            || help("lake-sink", &[]).contains(&format!("[env: {variable}="));
        assert!(read, "the image sets {variable}, which no binary reads");
    }
    assert_eq!(env["LAKEHOUSE_SQL"], format!("/app/{STATEMENT_FILE}"));
    assert!(copied.contains(&STATEMENT_FILE.to_string()));
}

#[test]
fn files_ports_volumes_and_the_start_order_are_consistent() {
    let compose = compose();
    let services = services(&compose);
    let (env, _, _) = dockerfile();
    let declared: BTreeSet<String> = compose["volumes"]
        .as_mapping()
        .map(|m| m.keys().map(|k| k.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    let mut used = BTreeSet::new();
    let mut host_ports = BTreeMap::new();
    for (name, service) in &services {
        if let Some(dockerfile) = service["build"]["dockerfile"].as_str() {
            assert!(root().join(dockerfile).exists(), "{name}: {dockerfile}");
        }
        for volume in strings(&service["volumes"]) {
            let (source, target) = volume
                .split_once(':')
                .unwrap_or_else(|| panic!("{name}: {volume}"));
            let target = target.trim_end_matches(":ro");
            if source.starts_with("./") {
                assert!(
                    root().join(source).exists(),
                    "{name} mounts {source}, which does not exist"
                );
            } else {
                assert!(
                    declared.contains(source),
                    "{name} uses volume {source}, not declared"
                );
                used.insert(source.to_string());
            }
            if ours(service) {
                let dirs: Vec<&String> = env.values().collect();
                assert!(
                    dirs.iter().any(|d| *d == target),
                    "{name} mounts {target}, which is none of the image's folders {dirs:?}"
                );
            }
        }
        for port in strings(&service["ports"]) {
            let host = port.split(':').next().unwrap().to_string();
            if let Some(other) = host_ports.insert(host.clone(), name.clone()) {
                panic!("host port {host} is published by {other} and {name}");
            }
        }
        if let Some(depends) = service["depends_on"].as_mapping() {
            for (target, condition) in depends {
                let target = target.as_str().unwrap();
                let other = services
                    .get(target)
                    .unwrap_or_else(|| panic!("{name} depends on {target}, which is no service"));
                match condition["condition"].as_str() {
                    Some("service_healthy") => assert!(
                        !other["healthcheck"].is_null(),
                        "{name} waits for {target} to be healthy; it has no health check"
                    ),
                    Some("service_completed_successfully") => assert_eq!(
                        other["restart"].as_str(),
                        Some("no"),
                        "{name} waits for {target} to complete; it restarts"
                    ),
                    other => panic!("{name} -> {target}: condition {other:?}"),
                }
            }
        }
    }
    assert_eq!(
        used, declared,
        "declared volumes that nothing uses, or the reverse"
    );
    // The API listens where its port and health check point.
    let api = &services["api"];
    assert_eq!(environment(api)["LAKEHOUSE_API_LISTEN"], "0.0.0.0:8080");
    assert!(strings(&api["ports"]).contains(&"8080:8080".to_string()));
    assert!(strings(&api["healthcheck"]["test"])
        .iter()
        .any(|t| t.contains("localhost:8080/health")));
}

#[test]
fn ksqldb_runs_the_statement_file_our_engine_runs() {
    let compose = compose();
    let services = services(&compose);
    let apply = &services["ksqldb-apply"];
    let mount = strings(&apply["volumes"])
        .into_iter()
        .find(|v| v.starts_with(&format!("./{STATEMENT_FILE}:")))
        .expect("the job mounts the statement file");
    let inside = mount.split(':').nth(1).unwrap();
    let script = strings(&apply["entrypoint"]).join(" ");
    assert!(script.contains(&format!("--file {inside}")), "{script}");
    assert!(script.contains("http://ksqldb-server:8088"), "{script}");
    // What the job applies is a file our engine accepts, with the streams
    // the job checks for.
    let plan = lakehouse_streamsql::load_file(&root().join(STATEMENT_FILE))
        .expect("the engine accepts it");
    assert!(plan.relations.iter().any(|r| r.name == "TRANSACTIONS_FLAT"));
    assert!(script.contains("grep -q TRANSACTIONS_FLAT"));
    // Our sinks read the same file.
    for name in ["lake-sink", "table-sink"] {
        assert_eq!(
            environment(&services[name])["LAKEHOUSE_SQL"],
            format!("/app/{STATEMENT_FILE}")
        );
    }
}
