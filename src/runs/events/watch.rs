//! The scheduler's eye on local trigger folders: S3 announces new objects, a local folder
//! does not, so the scheduler lists the folders every [`POLL`] and makes events of what it
//! finds. Polling a listing is portable and enough for the embedded default's volumes; a
//! filesystem notification API (inotify) would save the listings but not the rest.
//!
//! A file is an object once its size and modification time are the same in two listings in
//! a row, so a file still being written is not read half-way; its fingerprint (size and
//! time) is its version, so a file written again is a new object. Files there when the
//! scheduler starts are not events, as S3 sends none for objects that were in a bucket before
//! its notifications were set up: `etl trigger` hands such a file over. Files and folders
//! whose names start with `.` or `_` (temporary files, staging) are left alone, as readers of
//! Hive tables leave them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ObjectRef;

/// How often the folders are listed.
pub const POLL: Duration = Duration::from_secs(2);

/// A file's size and modification time, as its version; none for what is not a file.
pub fn fingerprint(path: &Path) -> Option<String> {
    let metadata = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
    let modified = metadata.modified().ok()?.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Some(format!("{}-{}", metadata.len(), modified.as_nanos()))
}

pub struct Watcher {
    folders: Vec<PathBuf>,
    /// What each file was when last handed over (or when the watch started).
    known: BTreeMap<PathBuf, String>,
    /// Files new or changed in the last listing, waiting to be the same in the next.
    settling: BTreeMap<PathBuf, String>,
}

impl Watcher {
    /// Watches `folders`, the files in them now taken as known.
    pub fn new(folders: Vec<PathBuf>) -> Watcher {
        let mut watcher = Watcher { folders, known: BTreeMap::new(), settling: BTreeMap::new() };
        watcher.known = watcher.list();
        watcher
    }

    /// The files new or changed since the last look that have settled, as objects.
    pub fn look(&mut self) -> Vec<ObjectRef> {
        let now = self.list();
        let mut arrived = Vec::new();
        let mut settling = BTreeMap::new();
        for (path, print) in now {
            if self.known.get(&path) == Some(&print) {
                continue;
            }
            if self.settling.get(&path) == Some(&print) {
                arrived.push(ObjectRef {
                    bucket: String::new(),
                    key: path.to_string_lossy().into_owned(),
                    version_id: None,
                    etag: Some(print.clone()),
                });
                self.known.insert(path, print);
            } else {
                settling.insert(path, print);
            }
        }
        self.settling = settling;
        arrived
    }

    fn list(&self) -> BTreeMap<PathBuf, String> {
        let mut files = BTreeMap::new();
        let mut stack = self.folders.clone();
        while let Some(folder) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&folder) else { continue };
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(['.', '_']) {
                    continue;
                }
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if let Some(print) = fingerprint(&path) {
                    files.insert(path, print);
                }
            }
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_file_is_an_object_once_it_settles_and_again_once_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("old.csv"), "a").unwrap();
        let mut watcher = Watcher::new(vec![dir.path().to_path_buf()]);
        assert!(watcher.look().is_empty(), "files there at the start are not events");
        std::fs::create_dir(dir.path().join("day")).unwrap();
        std::fs::write(dir.path().join("day/new.csv"), "ab").unwrap();
        std::fs::write(dir.path().join("_staging.csv"), "x").unwrap();
        assert!(watcher.look().is_empty(), "seen once: may still be written");
        let arrived = watcher.look();
        assert_eq!(arrived.len(), 1);
        assert_eq!(arrived[0].key, dir.path().join("day/new.csv").to_string_lossy());
        assert_eq!(arrived[0].etag, fingerprint(&dir.path().join("day/new.csv")));
        assert!(watcher.look().is_empty(), "handed over once");
        std::fs::write(dir.path().join("day/new.csv"), "abc").unwrap();
        watcher.look();
        assert_eq!(watcher.look().len(), 1, "written again: another object");
    }
}
