//! Reading a droplet: its members, one file's bytes, the bytes under a folder.

use super::*;

/// Lists a droplet's entries.
pub(crate) fn droplet_entries(droplet: &Path) -> Vec<String> {
    let file = fs::File::open(droplet).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string()
        })
        .collect()
}

/// Reads one file from a droplet.
pub(crate) fn droplet_file(droplet: &Path, wanted: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let file = fs::File::open(droplet).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if path == wanted {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            return Some(bytes);
        }
    }
    None
}

/// Bytes of the regular files under `prefix` (`deps/0/`) in a droplet.
pub(crate) fn droplet_bytes_under(droplet: &Path, prefix: &str) -> u64 {
    let file = fs::File::open(droplet).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .filter(|entry| {
            entry.header().entry_type().is_file()
                && entry
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_start_matches("./")
                    .starts_with(prefix)
        })
        .map(|entry| entry.header().size().unwrap())
        .sum()
}
