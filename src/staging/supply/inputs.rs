//! What a staging reads on every push to decide the cache: the pip section (with its `-r`
//! files and `vendor/pip/`) and the fingerprint of everything that decides the environment.

use std::path::Path;

use crate::errors::Error;
use crate::manifest::Dependency;
use crate::staging::app::{App, Settings};
use crate::staging::buildpack::Buildpack;
use crate::staging::cache::{self, Fingerprint};
use crate::staging::pip;
use crate::staging::private_channels::{self, ChannelConfig};
use crate::staging::python_version::PythonChoice;
use crate::staging::stager::Stager;
use crate::staging::vendored;

/// The pip section, read on every push (its `-r` files and `vendor/pip/` decide the cache as
/// environment.yml does).
pub(crate) struct PipInputs {
    pub(super) lines: Vec<pip::requirements::Located>,
    pub(super) wheelhouse: Option<pip::wheelhouse::Wheelhouse>,
}

pub(super) fn read_pip(app: &App, build_dir: &Path) -> Result<Option<PipInputs>, Error> {
    let wheelhouse = || match &app.vendor_dir {
        Some(vendor_dir) => pip::wheelhouse::scan(vendor_dir),
        None => Ok(None),
    };
    // A lock names its PyPI files itself; vendor/pip/ is where they are offline.
    if app.lock.as_ref().is_some_and(|lock| !lock.pypi.is_empty()) {
        return Ok(Some(PipInputs {
            lines: Vec::new(),
            wheelhouse: wheelhouse()?,
        }));
    }
    let Some(environment) = &app.environment else {
        return Ok(None);
    };
    let written: Vec<String> = environment
        .spec
        .pip_requirements()
        .map(str::to_string)
        .collect();
    if written.is_empty() {
        return Ok(None);
    }
    let lines = pip::requirements::expand(&written, &environment.file_name, build_dir)?;
    for line in &lines {
        crate::staging::secrets::register_urls_in(&line.text);
    }
    Ok(Some(PipInputs {
        lines,
        wheelhouse: wheelhouse()?,
    }))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn fingerprint(
    buildpack: &Buildpack,
    settings: &Settings,
    app: &App,
    private: &ChannelConfig,
    dependency: &Dependency,
    python: &PythonChoice,
    stager: &Stager,
    vendored: Option<&vendored::Scan>,
    pip: Option<&PipInputs>,
) -> Fingerprint {
    let mut inputs = std::collections::BTreeMap::new();
    if let Some(environment) = &app.environment {
        inputs.insert(
            environment.file_name.clone(),
            private_channels::digest_without_credentials(&environment.bytes),
        );
    }
    // The lock's linux-64 content: another platform's packages or a reordering change
    // nothing that is installed here.
    if let Some(lock) = &app.lock {
        inputs.insert(
            lock.file_name.clone(),
            private_channels::digest_without_credentials(lock.content().as_bytes()),
        );
    }
    private.fingerprint_inputs(&mut inputs);
    if let Some(pip) = pip {
        // What `-r` files add; environment.yml's own lines are in its digest already.
        let read: Vec<String> = pip
            .lines
            .iter()
            .filter(|located| located.origin.contains(':'))
            .map(|located| format!("{}\t{}", located.origin, located.text))
            .collect();
        if !read.is_empty() {
            inputs.insert(
                "the pip section's -r files".into(),
                private_channels::digest_without_credentials(read.join("\n").as_bytes()),
            );
        }
        if let Some(wheelhouse) = &pip.wheelhouse {
            inputs.insert("vendor/pip".into(), wheelhouse.digest.clone());
        }
    }
    Fingerprint {
        buildpack_version: buildpack.version.clone(),
        stack: settings.stack.name.to_string(),
        installer: dependency.to_string(),
        installer_sha256: dependency.sha256.to_ascii_lowercase(),
        python: format!("{} {}", python.major, python.pin.as_deref().unwrap_or(""))
            .trim()
            .to_string(),
        inputs,
        vendor: vendored.map(|scan| scan.digest.clone()),
        runtime_prefix: stager.runtime_env_dir().display().to_string(),
        settings: cache::relevant_settings(std::env::vars()),
    }
}
