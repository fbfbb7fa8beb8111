//! The log files the console's logs view reads: one folder per component
//! under `log/`, daily files (`<component>.YYYY-MM-DD.log`) or one file
//! (`broker.log`); the newest file's last lines.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Lines shown of a component's log.
pub const TAIL_LINES: usize = 500;
/// Bytes read from the end of a file to find them.
const TAIL_BYTES: u64 = 256 * 1024;

/// Components with a log folder, by name.
pub fn folders(log_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(log_dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|name| !name.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The last `lines` lines of the component's most recently written file.
pub fn tail(log_dir: &Path, component: &str, lines: usize) -> Vec<String> {
    let folder = log_dir.join(component);
    let newest = std::fs::read_dir(&folder).ok().and_then(|entries| {
        entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
            .max()
    });
    let Some((_, path)) = newest else {
        return vec![format!("no log file in {}", folder.display())];
    };
    let Ok(mut file) = std::fs::File::open(&path) else {
        return vec![format!("cannot read {}", path.display())];
    };
    let length = file.metadata().map_or(0, |m| m.len());
    let start = length.saturating_sub(TAIL_BYTES);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return vec![format!("cannot read {}", path.display())];
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut all: Vec<&str> = text.lines().collect();
    // A cut first line is not a line.
    if start > 0 && !all.is_empty() {
        all.remove(0);
    }
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|l| l.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_the_newest_files_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let api = dir.path().join("api");
        std::fs::create_dir_all(&api).unwrap();
        std::fs::create_dir_all(dir.path().join("broker")).unwrap();
        std::fs::write(api.join("api.2026-11-30.log"), "old\n").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(api.join("api.2026-12-01.log"), text).unwrap();
        assert_eq!(folders(dir.path()), vec!["api", "broker"]);
        let lines = tail(dir.path(), "api", 3);
        assert_eq!(lines, vec!["line 997", "line 998", "line 999"]);
        assert!(tail(dir.path(), "broker", 3)[0].starts_with("no log file"));
    }
}
