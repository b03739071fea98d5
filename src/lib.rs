//! conda-buildpack: a Cloud Foundry buildpack for conda apps. One executable serves Cloud
//! Foundry's buildpack scripts (`detect`, `supply`, `finalize`, `release`, `compile`) and the
//! tools around them (`package`, `vendor`, `manifest update`); `cli` dispatches, and each
//! phase reads top to bottom in its module. Everything is crate-private but [`run`] and the
//! entry points the fuzz targets drive.

// Grouped by where the code runs (docs/architecture.md draws the flow through them): what
// stages an app on a foundation, what developers and pipelines run, and the plain I/O both use.
mod io;
mod staging;
mod tools;

// What every part reads: the command line, the manifest, the stacks, and the messages.
mod cli;
mod errors;
mod manifest;
mod stack;

/// Runs the command line (what `main` does).
pub fn run() -> std::process::ExitCode {
    cli::run()
}

/// Entry points for the fuzz targets in `fuzz/`: every parser of input a user controls.
/// Each must return (an error is fine) and never panic, whatever the bytes.
#[doc(hidden)]
pub mod fuzzing {
    use std::path::Path;

    /// environment.yml, as staging reads it, and the Python decision made from it.
    pub fn environment_yml(bytes: &[u8]) {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return;
        };
        if let Ok(spec) = crate::staging::app::parse_environment("environment.yml", text) {
            let app = crate::staging::app::App {
                environment: Some(crate::staging::app::EnvironmentFile {
                    file_name: "environment.yml".into(),
                    bytes: bytes.to_vec(),
                    spec,
                }),
                runtime_txt: None,
                lock: None,
                passed_over: Vec::new(),
                vendor_dir: None,
            };
            if let Ok(decision) = crate::staging::python_version::decide(&app) {
                let _ = decision.choice.to_string();
            }
        }
    }

    /// runtime.txt.
    pub fn runtime_txt(bytes: &[u8]) {
        if let Ok(text) = std::str::from_utf8(bytes) {
            let _ = crate::staging::app::parse_runtime_txt(text);
        }
    }

    /// The buildpack's manifest.yml.
    pub fn manifest_yml(bytes: &[u8]) {
        if let Ok(text) = std::str::from_utf8(bytes) {
            let _ = crate::manifest::Manifest::parse(text);
        }
    }

    /// An `@EXPLICIT` spec file.
    pub fn explicit_spec(bytes: &[u8]) {
        lockfile(
            bytes,
            "spec-file.txt",
            crate::staging::app::lockfile::Format::Explicit,
        );
    }

    /// A `pixi.lock`, read for its `default` environment and for one named in
    /// `BP_PIXI_ENVIRONMENT`.
    pub fn pixi_lock(bytes: &[u8]) {
        lockfile(
            bytes,
            "pixi.lock",
            crate::staging::app::lockfile::Format::Pixi,
        );
    }

    /// A `conda-lock.yml`.
    pub fn conda_lock_yml(bytes: &[u8]) {
        lockfile(
            bytes,
            "conda-lock.yml",
            crate::staging::app::lockfile::Format::CondaLock,
        );
    }

    fn lockfile(bytes: &[u8], name: &str, format: crate::staging::app::lockfile::Format) {
        let Ok(text) = std::str::from_utf8(bytes) else {
            return;
        };
        for environment in [None, Some("test")] {
            if let Ok(lock) = crate::staging::app::lockfile::parse(name, format, text, environment)
            {
                let _ = (lock.content(), lock.describe(), lock.explicit_lines());
            }
        }
    }

    /// A conda package archive (`.tar.bz2` when `conda` is false, `.conda` otherwise), written
    /// to `scratch` and inspected as a vendored package is.
    pub fn package_archive(bytes: &[u8], conda: bool, scratch: &Path) {
        let name = if conda {
            "fuzz-1.0-0.conda"
        } else {
            "fuzz-1.0-0.tar.bz2"
        };
        let path = scratch.join(name);
        if std::fs::write(&path, bytes).is_ok() {
            let _ = crate::io::archive::inspect(&path);
        }
    }

    /// A package's `info/index.json`, parsed and turned into the repodata record the
    /// buildpack writes for a vendored package.
    pub fn index_json(bytes: &[u8]) {
        let path = Path::new("fuzz-1.0-0.tar.bz2");
        if let Ok(index) = crate::io::archive::parse_index_json(path, bytes.to_vec()) {
            if let Ok(record) = rattler_conda_types::PackageRecord::from_index_json(
                index,
                Some(bytes.len() as u64),
                None,
                None,
            ) {
                let _ = serde_json::to_value(&record);
            }
        }
    }

    /// The tar inside a conda package, uncompressed, so that the fuzzer mutates tar headers
    /// rather than bzip2 checksums.
    pub fn package_tar(bytes: &[u8]) {
        let _ = crate::io::archive::inspect_tar(Path::new("fuzz-1.0-0.tar.bz2"), bytes);
    }

    /// A cache entry's `metadata.json`, left by an earlier push.
    pub fn cache_metadata(bytes: &[u8]) {
        let _ = crate::staging::cache::parse_metadata(bytes);
    }

    /// The lines of a `pip:` section or a `-r` file, read and made absolute as staging does.
    pub fn pip_requirements(bytes: &[u8]) {
        if let Ok(text) = std::str::from_utf8(bytes) {
            for line in text.lines() {
                let located = crate::staging::pip::requirements::Located {
                    text: line.to_string(),
                    line: crate::staging::pip::requirements::parse(line),
                    origin: "environment.yml".into(),
                    base: std::path::PathBuf::from("/tmp/app"),
                };
                let _ = located.anchored();
                let _ = crate::staging::pip::wheelhouse::project_of(line);
            }
        }
    }

    /// A vendored wheel (`.whl`, a zip) when `wheel`, else an sdist (`.tar.gz`), written to
    /// `scratch` and inspected as staging inspects `vendor/pip`.
    pub fn python_distribution(bytes: &[u8], wheel: bool, scratch: &Path) {
        let name = if wheel {
            "fuzz-1.0-py3-none-any.whl"
        } else {
            "fuzz-1.0.tar.gz"
        };
        let path = scratch.join(name);
        if std::fs::write(&path, bytes).is_ok() {
            let _ = crate::io::archive::inspect_distribution(&path);
        }
    }

    /// A Procfile.
    pub fn procfile(bytes: &[u8]) {
        if let Ok(text) = std::str::from_utf8(bytes) {
            let _ = crate::staging::finalize::parse_procfile(text);
        }
    }
}
