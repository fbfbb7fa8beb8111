//! The server as outside tools see it: the /docs page in a real headless
//! Chromium with the network off (it renders, and "Try it out" reaches the
//! server), and a schemathesis run over /openapi.json (no 5xx, every
//! response as documented).

mod support;

use std::process::Command;

use serde_json::Value;
use support::ApiServer;

#[test]
fn the_docs_page_renders_offline_and_try_it_out_reaches_the_server() {
    let server = ApiServer::start(&[(0, 5)], &[]);
    let screenshot = server.logs.join("docs.png");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/docs_in_browser.py");
    let output = Command::new("python3")
        .arg(script)
        .arg(&server.url)
        .arg(&screenshot)
        .output()
        .expect("run python3 (scripts/install-prereqs.sh installs Chromium and websocket-client)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert!(
        report["title"].as_str().unwrap().contains("lakehouse API"),
        "{report}"
    );
    assert!(report["operations"].as_u64().unwrap() >= 20, "{report}");
    assert_eq!(report["try_it_out_status"], "200", "{report}");
    assert_eq!(
        report["external_requests"],
        Value::Array(vec![]),
        "{report}"
    );
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
    let logged = server.wait_access_log("/health", |rows| !rows.is_empty());
    assert!(!logged.is_empty(), "the page's request reached the server");
}

#[test]
fn schemathesis_finds_no_server_error_and_no_undocumented_response() {
    let server = ApiServer::start(&[(1, 20), (0, 20)], &[]);
    let token = server.token("admin");
    let output = Command::new("schemathesis")
        .args(["run", &format!("{}/openapi.json", server.url)])
        .args(["--header", &format!("Authorization: Bearer {token}")])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
        ])
        .args(["--max-examples", "25", "--generation-deterministic"])
        // Revoking the run's own token would leave the rest of the run unauthenticated.
        .args(["--exclude-path-regex", "tokens?$"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run schemathesis (scripts/install-prereqs.sh installs it)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log_tail()
    );
    assert!(stdout.contains("passed"), "{stdout}");
    assert!(!stdout.contains("failed"), "{stdout}");
}
