//! `supply BUILD CACHE DEPS IDX`: the staging story, top to bottom. Read the app, decide the
//! Python, choose the installer, then restore the environment from the cache or build it
//! (installer, conda, relocation to the run-time path, cache save), write DEPS/IDX for the
//! buildpacks after this one, and summarise.

use std::path::Path;
use std::time::Instant;

use crate::errors::Error;
use crate::io::fsutil;
use crate::io::scratch::Scratch;
use crate::manifest::{self, Dependency};
use crate::staging::app::{App, Settings};
use crate::staging::buildpack::Buildpack;
use crate::staging::cache::{AppCache, Fingerprint, Restore};
use crate::staging::channels;
use crate::staging::conda::Conda;
use crate::staging::conda_failure::{CondaFailure, FailureKind};
use crate::staging::condarc::Layer;
use crate::staging::environment;
use crate::staging::installer;
use crate::staging::locked;
use crate::staging::log;
use crate::staging::pip;
use crate::staging::private_channels::ChannelConfig;
use crate::staging::python_version::{self, PythonChoice};
use crate::staging::relocate;
use crate::staging::slim;
use crate::staging::solver;
use crate::staging::stager::{Facts, Stager};
use crate::staging::summary::{self, CacheOutcome, Summary};
use crate::staging::vendored;

mod inputs;
use inputs::{PipInputs, fingerprint, read_pip};

pub(crate) fn run(stager: &Stager) -> Result<(), Error> {
    let started = Instant::now();
    let buildpack = Buildpack::locate()?;
    log::step(&format!("Conda Buildpack version {}", buildpack.version));

    let settings = Settings::from_env()?;
    if settings.stack_defaulted {
        log::detail(&format!(
            "CF_STACK is not set: staging for {}, the default stack",
            settings.stack
        ));
    }
    if let Some(warning) = crate::stack::deprecation_warning(settings.stack) {
        log::warning(&warning);
    }
    let app = App::read(&stager.build_dir)?;
    for warning in app.warnings() {
        log::warning(warning);
    }
    if let Some(line) = app.source_line() {
        log::detail(&line);
    }
    let private = ChannelConfig::read(&stager.build_dir, &app)?;
    let decision = python_version::decide(&app)?;
    if let Some(conflict) = &decision.conflict {
        log::warning(conflict);
    }
    let python = decision.choice;
    let choice = installer::choose(&buildpack.manifest, &python, &settings)?;
    let dependency = choice.dependency;
    log::step(&format!(
        "Using {python} with {dependency} ({})",
        choice.reason
    ));
    warn_about_deprecation(&buildpack.manifest, dependency);

    let mut summary = Summary::new();
    summary.memory_limit_mib = settings.memory_limit_mib;
    let cache = AppCache::open(&stager.cache_dir)?;
    if settings.clear_cache {
        log::step("Clearing the app cache (BP_CONDA_CLEAR_CACHE)");
        cache.clear()?;
    }
    // Every push hashes vendor/ (its digest decides the cache); only a build indexes it.
    if let Some(stacks) = app.vendor_dir.as_deref().and_then(vendored::vendored_for) {
        if !stacks.iter().any(|stack| stack == settings.stack.name) {
            log::warning(&format!(
                "vendor/ holds packages chosen for {}, and this staging is on {}: some may need a \
                 newer glibc than it has. Vendor again with `conda-buildpack vendor --stack {}`.",
                stacks.join(", "),
                settings.stack.name,
                settings.stack.name
            ));
        }
    }
    let vendored = match &app.vendor_dir {
        Some(vendor_dir) => summary.time("scanning vendor/", || vendored::scan(vendor_dir))?,
        None => None,
    };
    let pip = read_pip(&app, &stager.build_dir)?;
    let fingerprint = fingerprint(
        &buildpack,
        &settings,
        &app,
        &private,
        dependency,
        &python,
        stager,
        vendored.as_ref(),
        pip.as_ref(),
    );

    let env_dir = stager.env_dir();
    fsutil::remove_if_exists(&env_dir).map_err(Error::io(&env_dir))?;
    // A changed environment.yml is solved by `conda env update` on the last environment:
    // only what changed is downloaded and linked. An explicit spec, or anything else that
    // changed (buildpack, stack, installer, settings), starts from nothing.
    let mut update = false;
    let restored = match cache.restore(&fingerprint, &env_dir) {
        Restore::Restored(stats) => {
            log::step("Restoring the conda environment from the cache");
            log::detail(&format!(
                "{} files, {} unpacked from a {} archive in {}",
                stats.files,
                log::format_size(stats.bytes),
                log::format_size(stats.archive_bytes),
                log::format_duration(stats.duration)
            ));
            summary.record("restoring the environment", stats.duration);
            summary.cache = CacheOutcome::Hit;
            true
        }
        Restore::Empty => {
            summary.cache = CacheOutcome::Miss("no cached environment".into());
            false
        }
        Restore::Stale {
            reasons,
            can_update,
        } => {
            update = can_update;
            log::step(&format!(
                "{} cached environment: {}",
                if update { "Updating the" } else { "Discarding" },
                reasons.join("; ")
            ));
            summary.cache = CacheOutcome::Miss(reasons.join("; "));
            false
        }
        Restore::Corrupt(reason) => {
            log::warning(&format!(
                "Discarding the cached environment: {reason}. Building it again from scratch."
            ));
            summary.cache =
                CacheOutcome::Miss(format!("the cached environment was unusable: {reason}"));
            false
        }
    };
    if !restored {
        build(
            stager,
            &cache,
            &buildpack,
            dependency,
            &app,
            &python,
            &settings,
            &private,
            vendored.as_ref(),
            pip.as_ref(),
            update.then_some(&fingerprint),
            &mut summary,
        )?;
        match summary.time("saving the cache", || cache.save(&fingerprint, &env_dir)) {
            Ok(()) => {}
            Err(error) => log::warning(&format!(
                "Could not save the environment to the cache ({error}). The app is fine and \
                 the cache keeps what it had; the next push of this environment builds it \
                 again.{}",
                if error.source.raw_os_error() == Some(libc::ENOSPC) {
                    " A bigger disk quota (cf push -k 4G) leaves room for the cache."
                } else {
                    ""
                }
            )),
        }
    }

    summary.slimmed = if settings.slim {
        slim::recorded(&env_dir)
    } else {
        None
    };
    let facts = summary::environment_facts(&env_dir);
    let variables = app
        .environment
        .as_ref()
        .map(|environment| environment.spec.variables.clone())
        .unwrap_or_default();
    stager.write_layout(&Facts {
        buildpack_version: &buildpack.version,
        python_version: facts.python_version.clone(),
        installer: dependency.to_string(),
        variables: &variables,
    })?;
    summary.cache_size = cache.prune();
    summary.print(&facts, &stager.deps_idx(), started.elapsed());
    Ok(())
}

/// conda's `add_pip_as_python_dependency` (on unless `CONDA_ADD_PIP_AS_PYTHON_DEPENDENCY` turns it
/// off): the classic and libmamba solvers give every Python environment pip; the rattler
/// solver (conda-rattler-solver 0.1) does not, so the buildpack asks for pip itself and the
/// solvers give the same environment (tests/real_conda/agreement.rs).
fn pip_is_python_dependency() -> bool {
    !std::env::var("CONDA_ADD_PIP_AS_PYTHON_DEPENDENCY").is_ok_and(|value| {
        matches!(
            value.trim().to_ascii_lowercase().as_str(),
            "false" | "no" | "0" | "off"
        )
    })
}

/// The solver for this staging: the user's or operator's `CONDA_SOLVER`, else the fastest the
/// installed conda offers, asked of that conda.
fn choose_solver(
    conda: &Conda<'_>,
    base: &Path,
    dependency: &Dependency,
    layers: &[Layer],
) -> Result<Option<solver::Solver>, Error> {
    // The environment first, then a bound service's or the app's `.condarc`, as conda reads them.
    let requested = std::env::var("CONDA_SOLVER")
        .ok()
        .map(|value| ("CONDA_SOLVER".to_string(), value.trim().to_string()))
        .or_else(|| {
            layers.iter().find_map(|layer| {
                layer
                    .solver
                    .as_ref()
                    .map(|solver| (layer.source.clone(), solver.trim().to_string()))
            })
        })
        .filter(|(_, value)| !value.is_empty());
    let Some(offered) =
        solver::python_of(base).and_then(|python| solver::offered(conda.command_for(&python)))
    else {
        log::detail(
            "Solver: conda's own default (the installed conda could not be asked which it has)",
        );
        return Ok(None);
    };
    let chosen = solver::choose(
        offered,
        requested
            .as_ref()
            .map(|(source, wanted)| (source.as_str(), wanted.as_str())),
        &dependency.to_string(),
    )?;
    log::detail(&format!("Solver: {} ({})", chosen.name, chosen.reason));
    Ok(Some(chosen))
}

/// The cold path: installer, conda, relocation.
#[allow(clippy::too_many_arguments)]
fn build(
    stager: &Stager,
    cache: &AppCache,
    buildpack: &Buildpack,
    dependency: &Dependency,
    app: &App,
    python: &PythonChoice,
    settings: &Settings,
    private: &ChannelConfig,
    vendored: Option<&vendored::Scan>,
    pip: Option<&PipInputs>,
    update_from_cache: Option<&Fingerprint>,
    summary: &mut Summary,
) -> Result<(), Error> {
    let work = cache.work_dir();
    // Vendored pip files are checked first: a requirement never vendored fails before any
    // download or solve.
    let pip_section = match pip {
        Some(PipInputs {
            lines,
            wheelhouse: Some(wheelhouse),
        }) => {
            log::step("Checking the vendored pip files");
            summary.time("checking vendor/pip", || wheelhouse.check())?;
            let section = environment::PipSection {
                lines: wheelhouse.offline_lines(lines)?,
                offline: true,
            };
            log::detail(&format!(
                "{} files in vendor/pip; pip installs from them alone, with no index",
                wheelhouse.distributions.len()
            ));
            Some(section)
        }
        Some(PipInputs { lines, .. }) => Some(environment::PipSection {
            lines: lines
                .iter()
                .map(pip::requirements::Located::anchored)
                .collect(),
            offline: false,
        }),
        None => None,
    };
    let scratch = Scratch::create(&work.join("scratch")).map_err(Error::io(&work))?;
    let local_channel = match vendored {
        Some(scan) => {
            log::step("Indexing the vendored packages");
            let channel = summary.time("indexing vendor/", || vendored::index(scan, &work))?;
            log::detail(&format!(
                "{} packages from vendor/, installed offline from a local channel",
                channel.files.len()
            ));
            Some(channel)
        }
        None => None,
    };
    let local_channel = local_channel.as_ref();
    log::step(&format!("Installing {dependency}"));
    let (installer_file, _origin) = summary.time("obtaining the installer", || {
        installer::obtain(dependency, &buildpack.dir, &cache.installers_dir())
    })?;
    let base = work.join("base");
    let conda_executable = summary.time("running the installer", || {
        installer::install(dependency, &installer_file, &base, &scratch)
    })?;

    log::step("Installing the conda environment");
    let mut conda = Conda {
        executable: conda_executable,
        pkgs_dir: cache.pkgs_dir(),
        pip_cache_dir: cache.pip_dir(),
        scratch: &scratch,
        // Locked packages are fetched and checked by the buildpack: conda reads only files.
        offline: local_channel.is_some() || app.lock.is_some(),
        pip_find_links: pip
            .and_then(|pip| pip.wheelhouse.as_ref())
            .map(|wheelhouse| wheelhouse.dir.clone()),
        env: Vec::new(),
        solver: None,
        channels: None,
    };
    // A lockfile installs with no solve.
    let solver = match app.lock {
        None => choose_solver(&conda, &base, dependency, &private.layers)?,
        Some(_) => None,
    };
    let plan = environment::plan(
        app,
        python,
        &stager.build_dir,
        &work.join("plan"),
        local_channel,
        pip_section.as_ref(),
        solver
            .as_ref()
            .is_some_and(|solver| solver.name == "rattler" && pip_is_python_dependency()),
    )?;
    log::detail(&plan.summary);
    private.log_sources();
    // Offline installs use the vendored channel alone; an explicit spec names its URLs.
    let channels = match (&app.environment, &plan.recipe, local_channel) {
        (Some(environment), environment::Recipe::EnvironmentFile { .. }, None) => {
            channels::effective(
                &environment.file_name,
                &environment.spec.channels,
                &private.with_installer(&base),
                |name| std::env::var(name).ok(),
            )
        }
        _ => Vec::new(),
    };
    if !channels.is_empty() {
        log::detail(&format!(
            "Channels: {}",
            channels
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    // Credentials and trust for conda and pip, in files that live only while conda runs
    // (until the end of this function, whatever happens).
    let prepared = private.prepare(app, &scratch, &base, plan.without_defaults)?;
    conda.env = prepared.env.clone();
    // The file's channels and conda's own, less `defaults`; offline, the vendored one alone.
    conda.channels = plan.without_defaults.then(|| match local_channel {
        Some(channel) => vec![channel.url.clone()],
        None => channels
            .iter()
            .map(|channel| channel.name.clone())
            .collect(),
    });
    if let Some(list) = &conda.channels {
        channels::restrict_installer_condarc(&base, list).map_err(Error::io(&base))?;
    }
    conda.solver = solver.as_ref().map(|solver| solver.name.clone());
    let env_dir = stager.env_dir();
    let runtime_dir = stager.runtime_env_dir();
    let build_prefix = relocate::build_prefix_for(&env_dir, &runtime_dir);
    if build_prefix != env_dir {
        fsutil::remove_if_exists(&build_prefix).map_err(Error::io(&build_prefix))?;
    }
    let mut updating = false;
    if let Some(fingerprint) = update_from_cache {
        if let Some(parent) = build_prefix.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        match cache.restore_starting_point(fingerprint, &build_prefix) {
            Ok(Some(stats)) => {
                summary.record("restoring the last environment", stats.duration);
                log::detail(&format!(
                    "Starting from the last environment ({} files in {}): conda adds, removes \
                     and changes only what differs",
                    stats.files,
                    log::format_duration(stats.duration)
                ));
                updating = true;
            }
            Ok(None) => {}
            Err(reason) => log::warning(&format!(
                "Discarding the cached environment: {reason}. Building it again from scratch."
            )),
        }
    }
    if updating && app.lock.is_none() {
        let lines = pip.map_or(&[][..], |pip| pip.lines.as_slice());
        let dropped = pip::installed::dropped(&build_prefix, lines);
        if !dropped.is_empty() {
            // `conda env update` leaves pip's packages alone: only a new environment loses them
            // and what they alone needed.
            log::detail(&format!(
                "The pip section no longer names {}: building the environment from nothing so \
                 that {} and what only {} needed are gone",
                dropped.join(", "),
                if dropped.len() == 1 { "it" } else { "they" },
                if dropped.len() == 1 { "it" } else { "they" }
            ));
            fsutil::remove_if_exists(&build_prefix).map_err(Error::io(&build_prefix))?;
            updating = false;
        }
    }
    let resolve = private.locked_urls(app);
    if let (Some(lock), environment::Recipe::Explicit { file }) = (&app.lock, &plan.recipe) {
        let prepared = locked::prepare(
            &locked::Staging {
                lock,
                conda: &conda,
                prefix: &build_prefix,
                vendored: vendored.zip(local_channel),
                dir: &work.join("locked"),
                explicit_file: file,
                resolve: &resolve,
            },
            updating,
            summary,
        )?;
        updating = prepared.updating;
        if prepared.nothing_to_install {
            summary.record("building the environment", std::time::Duration::ZERO);
            locked::pypi(&conda, lock, &build_prefix, &scratch.tmp, &resolve, summary)?;
            return finish(stager, settings, &build_prefix, summary);
        }
    }
    #[allow(clippy::result_large_err)] // conda's failure, once per staging at most
    let build_with = |update: bool| {
        environment::build(
            &conda,
            &plan,
            &build_prefix,
            settings.memory_limit_mib,
            &channels,
            solver.as_ref(),
            update,
        )
    };
    let built = match build_with(updating) {
        // A failure conda would also give a fresh build (a missing package, no network) is
        // the user's to fix; one only the update meets must not cost them the push.
        Err(environment::EnvironmentError::Conda {
            failure:
                CondaFailure {
                    kind: FailureKind::Other,
                    output,
                    ..
                },
            ..
        }) if updating => {
            log::warning(&format!(
                "conda could not update the last environment ({}); building it from nothing.",
                output.first().map_or("no error text", String::as_str)
            ));
            fsutil::remove_if_exists(&build_prefix).map_err(Error::io(&build_prefix))?;
            build_with(false)?
        }
        result => result?,
    };
    summary.record("building the environment", built.duration);
    summary.conda_peak_memory_kib = built.peak_memory_kib;
    if let Some(lock) = &app.lock {
        locked::pypi(&conda, lock, &build_prefix, &scratch.tmp, &resolve, summary)?;
    }
    finish(stager, settings, &build_prefix, summary)
}

/// After conda: relocation to the run-time path, slimming.
fn finish(
    stager: &Stager,
    settings: &Settings,
    build_prefix: &Path,
    summary: &mut Summary,
) -> Result<(), Error> {
    let build_prefix = build_prefix.to_path_buf();
    let env_dir = stager.env_dir();
    let runtime_dir = stager.runtime_env_dir();
    let relocation = summary.time("relocating", || {
        relocate::relocate(
            &build_prefix,
            &build_prefix.to_string_lossy(),
            &runtime_dir.to_string_lossy(),
        )
    })?;
    log::detail(&format!(
        "Relocated to {}: {} text and {} binary files rewritten",
        runtime_dir.display(),
        relocation.text_files,
        relocation.binary_files
    ));
    if build_prefix != env_dir {
        std::fs::rename(&build_prefix, &env_dir).map_err(Error::io(&env_dir))?;
        if let Some(padding) = build_prefix.parent() {
            fsutil::remove_if_exists(padding).map_err(Error::io(padding))?;
        }
    }
    // Slimmed before it is cached, so a restored environment is the same slim one.
    if settings.slim {
        let slimmed = summary.time("slimming", || {
            slim::slim(&env_dir).map_err(Error::io(&env_dir))
        })?;
        log::detail(&format!(
            "Slimmed: {} files of tests and documentation removed, {} libraries stripped of \
             symbols, {} less",
            slimmed.removed_files,
            slimmed.stripped_files,
            log::format_size(slimmed.bytes)
        ));
    }
    Ok(())
}

fn warn_about_deprecation(manifest: &manifest::Manifest, dependency: &Dependency) {
    let today = jiff::Zoned::now().date();
    for entry in manifest.deprecations_for(dependency) {
        if let Some(warning) = manifest::deprecation_warning(dependency, entry, today) {
            log::warning(&warning);
        }
    }
}

/// `supply` refuses to run without its four arguments being directories it can use.
pub(crate) fn check_dirs(build_dir: &Path) -> Result<(), Error> {
    if !build_dir.is_dir() {
        return Err(Error::Io {
            path: build_dir.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the build directory does not exist",
            ),
        });
    }
    Ok(())
}
