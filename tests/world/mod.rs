//! Which world a test stages in. Every staging story is written once and run on each
//! platform it applies to:
//!
//! - `model` (the default): our own `stage` playing Diego and our model of the builder
//!   (`local-cf builder`) and launcher;
//! - `real`: the same `stage` (Diego's part: the container, vcap, the cache's tgz round trip)
//!   running Cloud Foundry's real `builder`, and `launch` running its real `launcher`, from
//!   `../shared/real/cf`.
//!
//! `CONDA_BP_PLATFORM=real` selects the real programs; `ci/test` runs the staging suites a
//! second time that way when `../shared/real` is present, and says so when it is not.
//! The real conda kit (`../shared/real/conda`) is its own lane: see `tests/real_conda/`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `../shared/real` beside the repository, when this machine has it.
pub(crate) fn real_kit() -> Option<PathBuf> {
    let kit = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/real");
    kit.join("README.md")
        .is_file()
        .then(|| kit.canonicalize().unwrap_or(kit))
}

/// The platform chosen for this test run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Platform {
    Model,
    Real,
}

static REAL_FOR_EVERY_STORY: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// For a test binary whose stories exist only on the real programs (the real-conda lane):
/// every staging and launch of this process uses the real builder and launcher.
pub(crate) fn use_the_real_platform() {
    REAL_FOR_EVERY_STORY.store(true, std::sync::atomic::Ordering::SeqCst);
}

pub(crate) fn platform() -> Platform {
    if REAL_FOR_EVERY_STORY.load(std::sync::atomic::Ordering::SeqCst) && real_kit().is_some() {
        return Platform::Real;
    }
    match std::env::var("CONDA_BP_PLATFORM").as_deref() {
        Ok("real") => {
            assert!(
                real_kit().is_some(),
                "CONDA_BP_PLATFORM=real needs ../shared/real beside the repository"
            );
            Platform::Real
        }
        _ => Platform::Model,
    }
}

/// Extra arguments of `stage` for this run's platform.
pub(crate) fn stage_args() -> Vec<std::ffi::OsString> {
    match (platform(), real_kit()) {
        (Platform::Real, Some(kit)) => vec!["--builder".into(), kit.join("cf/builder").into()],
        _ => Vec::new(),
    }
}

/// Extra arguments of `launch` for this run's platform.
pub(crate) fn launch_args() -> Vec<std::ffi::OsString> {
    match (platform(), real_kit()) {
        (Platform::Real, Some(kit)) => {
            vec!["--launcher".into(), kit.join("cf/launcher").into()]
        }
        _ => Vec::new(),
    }
}
