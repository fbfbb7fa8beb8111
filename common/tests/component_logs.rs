//! Components sharing a process each get their own log folder: events of a
//! thread that says it works for `api` land in `log/api/` as well as in the
//! process's own log; other threads' events stay out of it.

use std::path::Path;

use tracing_subscriber::filter::LevelFilter;

fn folder_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    text
}

#[test]
fn a_thread_logs_to_its_components_folder_too() {
    let dir = tempfile::tempdir().unwrap();
    let guard = lakehouse::logging::init("lakectl", dir.path(), Some(LevelFilter::OFF));
    tracing::info!("from the console itself");
    std::thread::spawn(|| {
        lakehouse::logging::set_thread_component("api");
        tracing::info!(port = 8080, "from the api");
    })
    .join()
    .unwrap();
    std::thread::spawn(|| {
        lakehouse::logging::set_thread_component("lakectl");
        tracing::info!("from a console thread");
    })
    .join()
    .unwrap();
    drop(guard);

    let api = folder_text(&dir.path().join("api"));
    assert!(
        api.contains("from the api") && api.contains("port=8080"),
        "{api}"
    );
    assert!(!api.contains("console"), "{api}");
    let console = folder_text(&dir.path().join("lakectl"));
    assert!(console.contains("from the console itself"), "{console}");
    assert!(console.contains("from the api"), "{console}");
    // Written once, not twice, to the process's own log.
    assert_eq!(
        console.matches("from a console thread").count(),
        1,
        "{console}"
    );
}
