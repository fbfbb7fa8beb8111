//! `LAKEHOUSE_LOG_FORMAT=json`: every line of a component's log file is one
//! JSON object with the event's time, level, message and fields, for a log
//! collector to read without parsing text. (A test binary of its own: the
//! format is read once, when logging starts.)

use tracing_subscriber::filter::LevelFilter;

#[test]
fn each_log_line_is_a_json_object_with_its_fields() {
    std::env::set_var(lakehouse::logging::LOG_FORMAT_ENV, "json");
    let dir = tempfile::tempdir().unwrap();
    let guard = lakehouse::logging::init("lake-sink", dir.path(), Some(LevelFilter::OFF));
    tracing::info!(partition = 3, topic = "transaction_log", "resuming");
    tracing::warn!(
        error = "broker gone",
        attempt = 2,
        "failed; restarting with backoff"
    );
    drop(guard);

    let folder = dir.path().join(lakehouse::logging::log_folder("lake-sink"));
    let mut events = Vec::new();
    for file in std::fs::read_dir(&folder).unwrap() {
        for line in std::fs::read_to_string(file.unwrap().path())
            .unwrap()
            .lines()
        {
            let event: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            events.push(event);
        }
    }
    assert_eq!(events.len(), 2, "{events:?}");
    let resuming = &events[0];
    assert_eq!(resuming["level"], "INFO");
    assert_eq!(resuming["fields"]["message"], "resuming");
    assert_eq!(resuming["fields"]["partition"], 3);
    assert_eq!(resuming["fields"]["topic"], "transaction_log");
    assert!(resuming["timestamp"]
        .as_str()
        .is_some_and(|t| t.contains('T')));
    let failed = &events[1];
    assert_eq!(failed["level"], "WARN");
    assert_eq!(failed["fields"]["attempt"], 2);
    assert_eq!(failed["fields"]["error"], "broker gone");
}
