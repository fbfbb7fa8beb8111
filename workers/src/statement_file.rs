//! A statement file followed while the workers built from it run: when its
//! text changes, they are built again from it (a new stream gets its lake
//! folder, a new table its warehouse table) without a restart. `lakectl up`
//! and the worker binaries run on their own follow it alike.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a followed file is looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(2);

/// The statement file as last applied, and when it was last looked at.
#[derive(Debug)]
pub struct FollowedFile {
    path: PathBuf,
    text: String,
    checked: Instant,
}

impl FollowedFile {
    /// Follows `path` from `text`, its contents as applied now.
    pub fn new(path: &Path, text: String) -> Self {
        Self {
            path: path.to_path_buf(),
            text,
            checked: Instant::now(),
        }
    }

    /// Reads `path` and follows it from what it holds now.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        Ok(Self::new(path, std::fs::read_to_string(path)?))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The text as last applied.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The file's new text if it changed since it was last applied (looked
    /// at once per [`CHECK_EVERY`]). The new text counts as applied from
    /// now on, whether or not it plans: a refused file is not reported
    /// again until it changes once more. A file that cannot be read (being
    /// replaced by an editor, say) is looked at again next time.
    pub fn changed(&mut self) -> Option<&str> {
        if self.checked.elapsed() < CHECK_EVERY {
            return None;
        }
        self.checked = Instant::now();
        let text = std::fs::read_to_string(&self.path).ok()?;
        if text == self.text {
            return None;
        }
        self.text = text;
        Some(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_reported_once_and_not_before_the_next_look() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.sql");
        std::fs::write(&path, "one").unwrap();
        let mut file = FollowedFile::read(&path).unwrap();
        assert_eq!(file.text(), "one");
        std::fs::write(&path, "two").unwrap();
        assert_eq!(file.changed(), None, "looked at once per CHECK_EVERY");
        file.checked -= CHECK_EVERY;
        assert_eq!(file.changed(), Some("two"));
        file.checked -= CHECK_EVERY;
        assert_eq!(file.changed(), None, "reported once");
        std::fs::remove_file(&path).unwrap();
        file.checked -= CHECK_EVERY;
        assert_eq!(file.changed(), None, "an unreadable file is no change");
        assert_eq!(file.text(), "two");
    }
}
