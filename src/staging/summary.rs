//! The closing summary of a staging: where the time went, whether the cache was used and why
//! not, what the environment costs on disk and in the droplet, its largest packages, and the
//! peak memory of conda and of the buildpack itself. What users asked for: what took the time
//! and what made the droplet big.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::io::fsutil;
use crate::io::process;
use crate::staging::log;

#[derive(Debug, Clone, Default)]
pub(crate) enum CacheOutcome {
    #[default]
    Unknown,
    Hit,
    Miss(String),
}

#[derive(Default)]
pub(crate) struct Summary {
    steps: Vec<(String, Duration)>,
    pub(crate) cache: CacheOutcome,
    pub(crate) cache_size: u64,
    pub(crate) conda_peak_memory_kib: Option<u64>,
    /// `MEMORY_LIMIT`, which the peaks are shown against.
    pub(crate) memory_limit_mib: Option<u64>,
    /// What slimming left out of the droplet, built now or restored from the cache.
    pub(crate) slimmed: Option<crate::staging::slim::Slimmed>,
}

/// What the installed environment holds, read from its `conda-meta` records.
#[derive(Debug, Default)]
pub(crate) struct EnvironmentFacts {
    pub(crate) python_version: Option<String>,
    /// `name-version-build` of every package: the package cache keeps exactly these.
    pub(crate) dists: Vec<String>,
    /// (name, version, bytes), largest first.
    pub(crate) packages: Vec<(String, String, u64)>,
}

#[derive(Deserialize)]
struct PrefixRecord {
    name: String,
    version: String,
    #[serde(default)]
    build: String,
    #[serde(default)]
    files: Vec<String>,
}

pub(crate) fn environment_facts(env_dir: &Path) -> EnvironmentFacts {
    let mut facts = EnvironmentFacts::default();
    let Ok(entries) = fs::read_dir(env_dir.join("conda-meta")) else {
        return facts;
    };
    let records: Vec<_> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "json")
        })
        .collect();
    // A stat of every file of every package: spread over the cores, and each relative to its
    // open directory (a package's files are listed directory by directory).
    let sized = fsutil::map_parallel(&records, |path| {
        let bytes = fs::read(path).ok()?;
        let record = serde_json::from_slice::<PrefixRecord>(&bytes).ok()?;
        let mut open_dir = None;
        let size: u64 = record
            .files
            .iter()
            .filter_map(|file| {
                let whole_path = || env_dir.join(file);
                let (parent, name) = fsutil::split_parent(file);
                match fsutil::OpenDir::at(&mut open_dir, env_dir, parent) {
                    Ok(dir) => fsutil::stat_at(dir, name, whole_path).ok(),
                    Err(_) => fs::symlink_metadata(whole_path())
                        .ok()
                        .map(|metadata| fsutil::FileStat::from_metadata(&metadata)),
                }
            })
            .filter(|stat| stat.is_file)
            .map(|stat| stat.len)
            .sum();
        Some((record, size))
    });
    for (record, size) in sized.into_iter().flatten() {
        if record.name == "python" {
            facts.python_version = Some(record.version.clone());
        }
        facts.dists.push(format!(
            "{}-{}-{}",
            record.name, record.version, record.build
        ));
        facts.packages.push((record.name, record.version, size));
    }
    facts.dists.sort();
    facts
        .packages
        .sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    facts
}

impl Summary {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn record(&mut self, step: &str, duration: Duration) {
        self.steps.push((step.to_string(), duration));
    }

    /// Runs `work`, recording how long it took under `step`.
    pub(crate) fn time<T>(&mut self, step: &str, work: impl FnOnce() -> T) -> T {
        let started = Instant::now();
        let result = work();
        self.record(step, started.elapsed());
        result
    }

    pub(crate) fn print(&self, facts: &EnvironmentFacts, deps_idx: &Path, total: Duration) {
        log::step("Summary");
        let steps = self
            .steps
            .iter()
            .map(|(step, duration)| format!("{step} {}", log::format_duration(*duration)))
            .collect::<Vec<_>>()
            .join(", ");
        log::detail(&format!(
            "Time: {} in all ({steps})",
            log::format_duration(total)
        ));
        let cache = match &self.cache {
            CacheOutcome::Hit => {
                "hit, the environment was restored without running conda".to_string()
            }
            CacheOutcome::Miss(reason) => format!("miss ({reason})"),
            CacheOutcome::Unknown => "not used".to_string(),
        };
        log::detail(&format!(
            "Cache: {cache}; the cache now holds {}",
            log::format_size(self.cache_size)
        ));
        let environment_size: u64 = facts.packages.iter().map(|package| package.2).sum();
        let droplet = fsutil::tree_size(deps_idx).unwrap_or(0);
        log::detail(&format!(
            "Environment: {} packages, {} on disk; the droplet gains {} from this buildpack",
            facts.packages.len(),
            log::format_size(environment_size),
            log::format_size(droplet)
        ));
        match self.slimmed {
            Some(slimmed) => log::detail(&format!(
                "Slimmed: {} less in the droplet ({} files of tests and documentation removed, \
                 {} libraries stripped of symbols; listed in {}; BP_CONDA_SLIM=false keeps them)",
                log::format_size(slimmed.bytes),
                slimmed.removed_files,
                slimmed.stripped_files,
                crate::staging::slim::SLIM_LIST
            )),
            None => log::detail("Slimmed: no (BP_CONDA_SLIM=false)"),
        }
        if !facts.packages.is_empty() {
            let largest = facts
                .packages
                .iter()
                .take(5)
                .map(|(name, version, size)| {
                    format!("{name} {version} ({})", log::format_size(*size))
                })
                .collect::<Vec<_>>()
                .join(", ");
            log::detail(&format!("Largest packages: {largest}"));
        }
        let mut memory = Vec::new();
        if let Some(kib) = self.conda_peak_memory_kib {
            memory.push(format!("conda {}", log::format_size(kib * 1024)));
        }
        if let Some(kib) = process::own_peak_memory_kib() {
            memory.push(format!("buildpack {}", log::format_size(kib * 1024)));
        }
        if !memory.is_empty() {
            let limit = self.memory_limit_mib.map_or_else(String::new, |mib| {
                let peak_mib = self.conda_peak_memory_kib.unwrap_or(0) / 1024;
                format!(
                    "; MEMORY_LIMIT {mib} MB, {}% of it used by conda",
                    peak_mib * 100 / mib.max(1)
                )
            });
            log::detail(&format!("Peak memory: {}{limit}", memory.join(", ")));
        }
    }
}
