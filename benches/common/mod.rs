//! What the benchmarks share: whether cargo runs them as benchmarks (and on what world),
//! medians, the bytes of a tree, reading the staging summary's times, and the line that
//! compares a ratio with its goal. Each bench includes it with `mod common;`, beside
//! `mod support;` (the tests' world).

#![allow(dead_code)] // each benchmark uses a different subset

use std::fs;
use std::path::Path;
use std::time::Duration;

/// Whether cargo runs this as a benchmark. `cargo test --all-targets` builds every bench and
/// runs it without `--bench`: it then returns at once, so the test suite never pays for it.
pub fn benchmarking() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// For a benchmark on the real programs, when cargo runs it as one: the real-conda world of
/// `../shared/real`, with every staging on Cloud Foundry's real builder and launcher. `None`
/// when not benchmarking, or (said on stderr) when `../shared/real` is absent.
pub fn real_platform_world() -> Option<&'static Path> {
    if !benchmarking() {
        return None;
    }
    let world = crate::support::real_conda::world()?;
    crate::support::world::use_the_real_platform();
    Some(world)
}

/// The median of `samples` (the upper one of an even count).
pub fn median<T: Ord + Copy>(samples: &[T]) -> T {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

/// Calls `each` with the metadata of every regular file under `root`; links are not
/// followed, and a folder that cannot be read is skipped.
fn for_each_file(root: &Path, mut each: impl FnMut(&fs::Metadata)) {
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).into_iter().flatten().flatten() {
            let metadata = fs::symlink_metadata(entry.path()).unwrap();
            if metadata.is_dir() {
                pending.push(entry.path());
            } else if metadata.is_file() {
                each(&metadata);
            }
        }
    }
}

/// The bytes of every regular file under `root`, a hard-linked file counted at each name.
pub fn tree_bytes(root: &Path) -> u64 {
    let mut bytes = 0;
    for_each_file(root, |metadata| bytes += metadata.len());
    bytes
}

/// The bytes and the number of the distinct files under `root`: a hard-linked file counted
/// once, as the disk holds it.
pub fn distinct_tree_bytes(root: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt as _;
    let mut seen = std::collections::HashSet::new();
    let (mut bytes, mut files) = (0, 0);
    for_each_file(root, |metadata| {
        if seen.insert(metadata.ino()) {
            bytes += metadata.len();
            files += 1;
        }
    });
    (bytes, files)
}

/// The staging summary's time line, `12.3s in all (...)`, without its indent and `Time: `.
pub fn summary_time(log: &str) -> Option<&str> {
    log.lines()
        .find_map(|line| line.trim().strip_prefix("Time: "))
}

/// The summary's total (`Time: 12.3s in all`): the whole supply phase, as the buildpack
/// measured it.
pub fn summary_duration(log: &str) -> Option<Duration> {
    parse_duration(summary_time(log)?.split(" in all").next()?)
}

/// `82ms`, `29.2s`, `1m 05s` (the buildpack's `log::format_duration`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if let Some(millis) = text.strip_suffix("ms") {
        return millis.parse().ok().map(Duration::from_millis);
    }
    if let Some((minutes, seconds)) = text.split_once("m ") {
        let seconds: f64 = seconds.trim_end_matches('s').parse().ok()?;
        return Some(Duration::from_secs_f64(
            minutes.parse::<f64>().ok()? * 60.0 + seconds,
        ));
    }
    text.trim_end_matches('s')
        .parse()
        .ok()
        .map(Duration::from_secs_f64)
}

/// `name: 0.42 (goal <= 0.50) met`, or `MISSED`.
pub fn print_goal(name: &str, value: f64, goal: f64) {
    println!(
        "{name}: {value:.2} (goal <= {goal:.2}) {}",
        if value <= goal { "met" } else { "MISSED" }
    );
}
