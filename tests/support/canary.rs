//! A canary secret, searched for in everything a staging shows or stores.

use std::fs;
use std::path::Path;

use super::Staging;

/// Every file under `dir` (and inside every tgz there: the droplet, Diego's cache tgz) that
/// holds `needle`.
pub(crate) fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if kind.is_file() {
            let name = path.to_string_lossy().to_string();
            if name.ends_with(".tgz") || name.ends_with(".tar.gz") {
                let unpacked = tempfile::tempdir().unwrap();
                let status = std::process::Command::new("tar")
                    .arg("xzf")
                    .arg(&path)
                    .arg("-C")
                    .arg(unpacked.path())
                    .status()
                    .unwrap();
                assert!(status.success(), "cannot unpack {name}");
                found.extend(
                    files_holding(unpacked.path(), needle)
                        .into_iter()
                        .map(|inner| {
                            let root = unpacked.path().to_string_lossy().to_string();
                            let inside = inner.strip_prefix(&root).unwrap_or(&inner);
                            format!("{name}!{}", inside.trim_start_matches('/'))
                        }),
                );
            } else if name.ends_with(".tar.zst") {
                let output = std::process::Command::new("zstd")
                    .arg("-dc")
                    .arg(&path)
                    .output()
                    .unwrap();
                if contains(&output.stdout, needle) {
                    found.push(name);
                }
            } else if fs::read(&path).is_ok_and(|bytes| contains(&bytes, needle)) {
                found.push(name);
            }
        }
    }
    found
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

/// The canary is in no log line, and in no stored file but the app's own: the droplet and
/// everything else `stage` wrote (Diego's cache tgz), and the app cache.
pub(crate) fn assert_canary_nowhere(canary: &str, staging: &Staging, cache: &Path) {
    assert!(
        !staging.log.contains(canary),
        "the log shows the secret:\n{}",
        staging.log
    );
    let outside_the_app: Vec<String> = files_holding(&staging.output, canary)
        .into_iter()
        .filter(|file| !file.contains("droplet.tgz!app/"))
        .collect();
    assert_eq!(
        outside_the_app,
        Vec::<String>::new(),
        "the droplet stores the secret"
    );
    assert_eq!(
        files_holding(cache, canary),
        Vec::<String>::new(),
        "the app cache stores the secret"
    );
}
