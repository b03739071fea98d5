//! `conda-buildpack stage`: what Cloud Foundry's builder does, from buildpack zips.
//!
//! The story, top to bottom: check the inputs -> lay out a staging root like the staging
//! container (`app`, `contents<N>/deps`, `contents<N>/profile.d`, `buildpacks/<md5>`, a home
//! and a tmp for the staging user) -> copy the app -> unpack the buildpacks -> detect, or take
//! the named buildpacks in order -> `bin/supply` of every supply buildpack -> `bin/finalize`
//! (or the legacy `bin/compile`) of the final one -> process types from `launch.yml`,
//! `bin/release` and the `Procfile` -> `staging_info.yml`, the droplet and `result.json` ->
//! drop the caches of buildpacks no longer used. The builder's exit codes (222..226) are kept.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::buildpack_zip::{self, Buildpack};
use super::droplet;
use super::environment::{self, Environment};
use super::errors::LifecycleError;
use super::files::{self, local_io, md5_hex};
use super::metadata::{self, BuildpackMetadata};
use super::process_types::{self, ProcessTypes};
use super::script::ScriptRunner;

#[derive(Debug, clap::Args)]
pub(crate) struct StageArgs {
    /// The app directory, as you would `cf push` it.
    app_dir: PathBuf,
    /// A buildpack zip. Repeat for multi-buildpack staging: the zips run in the order given
    /// and the last one is the final buildpack (`cf push -b A -b B`).
    #[arg(long = "buildpack", value_name = "ZIP", required = true)]
    buildpacks: Vec<PathBuf>,
    /// Treat the zips as the admin buildpacks in position order and let their `bin/detect`
    /// choose one (`cf push` without `-b`).
    #[arg(long)]
    detect: bool,
    /// The build artifacts cache root, kept between stagings of the same app. Without it
    /// every staging starts with empty caches.
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// The stack the scripts see in `CF_STACK`.
    #[arg(long, default_value = "cflinuxfs4")]
    stack: String,
    /// Where `droplet.tgz` and `result.json` are written.
    #[arg(long, value_name = "DIR", default_value = "staging-output")]
    output: PathBuf,
    /// An app environment variable, as set with `cf set-env`; repeat as needed, later wins.
    #[arg(long = "env", value_name = "KEY=VALUE", allow_hyphen_values = true)]
    env: Vec<String>,
    /// The app's memory limit (`MEMORY_LIMIT`, `VCAP_APPLICATION.limits.mem`).
    #[arg(long, default_value = "1024m")]
    memory: String,
    /// Run every buildpack script in a network namespace of its own, with only a loopback.
    #[arg(long)]
    no_network: bool,
    /// Keep the staging root for inspection instead of removing it.
    #[arg(long)]
    keep_staging_dir: bool,
}

pub(crate) fn run(args: &StageArgs) -> ExitCode {
    match stage(args) {
        Ok(droplet) => {
            println!("Staging complete: {}", droplet.display());
            ExitCode::SUCCESS
        }
        Err(error) if error.is_staging_failure() => {
            // CF's builder prints its error, then the platform reports the exit status.
            println!("{}", error.message());
            println!(
                "Staging failed: exit status {} ({})",
                error.exit_code(),
                error.staging_reason()
            );
            ExitCode::from(error.exit_code())
        }
        Err(error) => {
            eprintln!("{}", error.message());
            ExitCode::from(error.exit_code())
        }
    }
}

/// Everything the staging needs, checked before anything is created.
struct Staging {
    app_dir: PathBuf,
    app_name: String,
    zips: Vec<(String, PathBuf)>,
    detect: bool,
    cache_root: Option<PathBuf>,
    stack: String,
    output: PathBuf,
    app_env: Vec<(String, String)>,
    memory_mb: u64,
    no_network: bool,
}

impl Staging {
    fn from_args(args: &StageArgs) -> Result<Self, LifecycleError> {
        let app_dir =
            fs::canonicalize(&args.app_dir).map_err(|source| LifecycleError::AppDirUnreadable {
                path: args.app_dir.clone(),
                source,
            })?;
        if !app_dir.is_dir() {
            return Err(LifecycleError::AppDirNotADirectory {
                path: args.app_dir.clone(),
            });
        }
        let app_name = app_dir
            .file_name()
            .map_or_else(|| "app".to_owned(), |n| n.to_string_lossy().into_owned());
        if args.buildpacks.is_empty() {
            return Err(LifecycleError::NoBuildpacks);
        }
        let mut zips: Vec<(String, PathBuf)> = Vec::new();
        for zip in &args.buildpacks {
            let absolute =
                fs::canonicalize(zip).map_err(|source| LifecycleError::BuildpackZipUnreadable {
                    zip: zip.clone(),
                    source,
                })?;
            // The name as given, not the symlink target's: `latest.zip` stays `latest.zip`.
            let key = zip
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            if zips.iter().any(|(existing, _)| *existing == key) {
                return Err(LifecycleError::DuplicateBuildpack { key });
            }
            zips.push((key, absolute));
        }
        let app_env = args
            .env
            .iter()
            .map(|assignment| environment::parse_env_assignment(assignment))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            app_dir,
            app_name,
            zips,
            detect: args.detect,
            cache_root: args.cache.as_deref().map(absolute_path),
            stack: args.stack.clone(),
            output: absolute_path(&args.output),
            app_env,
            memory_mb: environment::parse_memory_mb(&args.memory)?,
            no_network: args.no_network,
        })
    }
}

fn absolute_path(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The staging root, laid out like the staging container: CF's `/tmp/app`,
/// `/tmp/contents<N>/{deps,profile.d}`, `/tmp/buildpacks/<md5>`, and the staging user's home
/// and tmp, so that tests can prove what a buildpack wrote outside DEPS/IDX and its cache.
struct StagingRoot {
    root: PathBuf,
    app: PathBuf,
    contents: PathBuf,
    deps: PathBuf,
    profile_d: PathBuf,
    buildpacks: PathBuf,
    home: PathBuf,
    tmp: PathBuf,
    fresh_cache: PathBuf,
}

impl StagingRoot {
    fn create() -> Result<Self, LifecycleError> {
        // Canonical, so that scripts get absolute paths even from a relative TMPDIR.
        let parent = fs::canonicalize(std::env::temp_dir()).map_err(local_io(
            "find the temporary directory",
            &std::env::temp_dir(),
        ))?;
        let root = files::create_unique_dir(&parent, "conda-buildpack-staging-")
            .map_err(local_io("create the staging root in", &parent))?;
        let contents = files::create_unique_dir(&root, "contents")
            .map_err(local_io("create a directory in", &root))?;
        let layout = Self {
            app: root.join("app"),
            deps: contents.join("deps"),
            profile_d: contents.join("profile.d"),
            contents,
            buildpacks: root.join("buildpacks"),
            home: root.join("home"),
            tmp: root.join("tmp"),
            fresh_cache: root.join("cache"),
            root,
        };
        for dir in [
            &layout.app,
            &layout.deps,
            &layout.profile_d,
            &layout.buildpacks,
            &layout.home,
            &layout.tmp,
        ] {
            fs::create_dir_all(dir).map_err(local_io("create the directory", dir))?;
        }
        Ok(layout)
    }
}

fn stage(args: &StageArgs) -> Result<PathBuf, LifecycleError> {
    let staging = Staging::from_args(args)?;
    let root = StagingRoot::create()?;
    let result = stage_in(&staging, &root);
    if args.keep_staging_dir {
        println!("Staging directory kept: {}", root.root.display());
    } else if let Err(error) = files::remove_tree(&root.root) {
        // The droplet is out already; a leftover temp dir is worth a line, not a failure.
        eprintln!(
            "Could not remove the staging directory {}: {error}",
            root.root.display()
        );
    }
    result
}

fn stage_in(staging: &Staging, root: &StagingRoot) -> Result<PathBuf, LifecycleError> {
    prepare_output(&staging.output)?;
    // The app as Cloud Foundry receives it, minus our own output, cache and staging root
    // when they live inside the app directory (the default output is ./staging-output).
    let skip = [
        Some(&staging.output),
        staging.cache_root.as_ref(),
        Some(&root.root),
    ]
    .into_iter()
    .flatten()
    .filter_map(|path| fs::canonicalize(path).ok())
    .collect::<Vec<_>>();
    files::copy_tree(&staging.app_dir, &root.app, &skip)
        .map_err(local_io("copy the app into", &root.app))?;

    let buildpacks = unpack_buildpacks(staging, root)?;
    let runner = ScriptRunner::new(
        staging_environment(staging, root),
        root.home.clone(),
        staging.no_network,
    )?;
    let plan = if staging.detect {
        detect(&buildpacks, &runner, root)?
    } else {
        Plan::named(&buildpacks)?
    };

    let cache_root = staging
        .cache_root
        .clone()
        .unwrap_or_else(|| root.fresh_cache.clone());
    plan.create_dirs(root, &cache_root)?;
    plan.run_supply_buildpacks(&runner, root, &cache_root)?;
    plan.run_final_buildpack(&runner, root, &cache_root)?;

    let process_types = plan.process_types(&runner, root)?;
    let buildpack_metadata = plan.metadata(root);
    if process_types.get("web").is_none_or(str::is_empty) {
        println!("No start command specified by buildpack or via Procfile.");
        println!("App will not start unless a command is provided at runtime.");
    }
    write_droplet(staging, root, &buildpack_metadata, &process_types)?;
    // Only a staging that succeeded decides which caches the app keeps, as only a
    // successful CF staging uploads its build artifacts cache.
    plan.drop_unused_caches(&cache_root)?;
    Ok(staging.output.join("droplet.tgz"))
}

/// A stale droplet from an earlier run must not pass for the result of a failed staging.
fn prepare_output(output: &Path) -> Result<(), LifecycleError> {
    fs::create_dir_all(output).map_err(local_io("create the output directory", output))?;
    for name in ["droplet.tgz", "result.json"] {
        let path = output.join(name);
        match fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                return Err(local_io("remove the earlier", &path)(error));
            }
            _ => {}
        }
    }
    Ok(())
}

fn unpack_buildpacks(
    staging: &Staging,
    root: &StagingRoot,
) -> Result<Vec<Buildpack>, LifecycleError> {
    let mut buildpacks = Vec::with_capacity(staging.zips.len());
    for (key, zip) in &staging.zips {
        let dir = root.buildpacks.join(md5_hex(key));
        fs::create_dir(&dir).map_err(local_io("create the buildpack directory", &dir))?;
        buildpack_zip::unpack(zip, &dir)?;
        buildpacks.push(Buildpack {
            key: key.clone(),
            dir,
        });
    }
    Ok(buildpacks)
}

/// The environment of every buildpack script: nothing of the caller's leaks in except what a
/// CF operator could pass on (proxies, `BP_DEBUG`).
fn staging_environment(staging: &Staging, root: &StagingRoot) -> Vec<(String, String)> {
    let mut env = Environment::with_stack_path();
    env.set("HOME", root.home.to_string_lossy());
    env.set("TMPDIR", root.tmp.to_string_lossy());
    env.set("LANG", "en_US.UTF-8");
    env.set("CF_STACK", staging.stack.clone());
    env.set("MEMORY_LIMIT", format!("{}m", staging.memory_mb));
    env.set(
        "VCAP_APPLICATION",
        environment::vcap_application(&staging.app_name, staging.memory_mb).to_string(),
    );
    env.set("VCAP_SERVICES", "{}");
    for name in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
        "BP_DEBUG",
    ] {
        env.pass_through(name);
    }
    for (key, value) in &staging.app_env {
        env.set(key, value.clone());
    }
    env.into_vec()
}

/// Which buildpacks run, in which role, at which index.
struct Plan<'a> {
    supply: Vec<&'a Buildpack>,
    final_buildpack: &'a Buildpack,
    /// What the detecting `bin/detect` printed, CF's fallback name for it.
    detect_output: Option<String>,
}

impl<'a> Plan<'a> {
    /// Named buildpacks (`cf push -b A -b B`): no detect, all but the last supply.
    fn named(buildpacks: &'a [Buildpack]) -> Result<Self, LifecycleError> {
        let (final_buildpack, supply) = buildpacks
            .split_last()
            .ok_or(LifecycleError::NoBuildpacks)?;
        Ok(Self {
            supply: supply.iter().collect(),
            final_buildpack,
            detect_output: None,
        })
    }

    /// The index of the buildpack at `position`; CF pads to the digits of the number of
    /// buildpacks that run, so after detect the one buildpack is `0`.
    fn index(&self, position: usize) -> String {
        deps_index(position, self.supply.len() + 1)
    }

    fn final_index(&self) -> String {
        self.index(self.supply.len())
    }

    fn supply_cache(cache_root: &Path, buildpack: &Buildpack) -> PathBuf {
        cache_root.join(md5_hex(&buildpack.key))
    }

    fn create_dirs(&self, root: &StagingRoot, cache_root: &Path) -> Result<(), LifecycleError> {
        let mut dirs = vec![cache_root.join("final")];
        dirs.extend(
            self.supply
                .iter()
                .map(|bp| Self::supply_cache(cache_root, bp)),
        );
        dirs.extend((0..=self.supply.len()).map(|position| root.deps.join(self.index(position))));
        for dir in &dirs {
            fs::create_dir_all(dir).map_err(local_io("create the directory", dir))?;
        }
        Ok(())
    }

    fn run_supply_buildpacks(
        &self,
        runner: &ScriptRunner,
        root: &StagingRoot,
        cache_root: &Path,
    ) -> Result<(), LifecycleError> {
        // CF checks every supply buildpack before running any.
        let mut roots = Vec::with_capacity(self.supply.len());
        for buildpack in &self.supply {
            let bp_root = buildpack
                .root()
                .ok_or_else(|| LifecycleError::MalformedBuildpack {
                    key: buildpack.key.clone(),
                })?;
            if !bp_root.join("bin/supply").exists() {
                return Err(LifecycleError::NoSupplyScript {
                    key: buildpack.key.clone(),
                });
            }
            roots.push(bp_root);
        }
        for (position, (buildpack, bp_root)) in self.supply.iter().zip(roots).enumerate() {
            let cache = Self::supply_cache(cache_root, buildpack);
            let index = self.index(position);
            runner
                .run(
                    &bp_root.join("bin/supply"),
                    &[
                        root.app.as_os_str(),
                        cache.as_os_str(),
                        root.deps.as_os_str(),
                        OsStr::new(&index),
                    ],
                )
                .map_err(|failure| LifecycleError::SupplyFailed {
                    key: buildpack.key.clone(),
                    failure,
                })?;
        }
        Ok(())
    }

    fn run_final_buildpack(
        &self,
        runner: &ScriptRunner,
        root: &StagingRoot,
        cache_root: &Path,
    ) -> Result<(), LifecycleError> {
        let key = &self.final_buildpack.key;
        let bp_root = self
            .final_buildpack
            .root()
            .ok_or_else(|| LifecycleError::MalformedBuildpack { key: key.clone() })?;
        let cache = cache_root.join("final");
        let index = self.final_index();
        let (app, cache, deps, index) = (
            root.app.as_os_str(),
            cache.as_os_str(),
            root.deps.as_os_str(),
            OsStr::new(&index),
        );
        if bp_root.join("bin/finalize").exists() {
            if bp_root.join("bin/supply").exists() {
                runner
                    .run(&bp_root.join("bin/supply"), &[app, cache, deps, index])
                    .map_err(|failure| LifecycleError::SupplyFailed {
                        key: key.clone(),
                        failure,
                    })?;
            }
            runner
                .run(
                    &bp_root.join("bin/finalize"),
                    &[app, cache, deps, index, root.profile_d.as_os_str()],
                )
                .map_err(|failure| LifecycleError::FinalizeFailed {
                    key: key.clone(),
                    failure,
                })
        } else {
            if !self.supply.is_empty() {
                println!(
                    "Warning: the last buildpack is not compatible with multi-buildpack apps and cannot make use \
                     of any dependencies supplied by the buildpacks specified before it"
                );
            }
            // The legacy contract has no deps directory; CF removes the unused one.
            let unused = root.deps.join(index);
            files::remove_tree(&unused)
                .map_err(local_io("remove the unused deps directory", &unused))?;
            runner
                .run(&bp_root.join("bin/compile"), &[app, cache])
                .map_err(|failure| LifecycleError::CompileFailed {
                    key: key.clone(),
                    failure,
                })
        }
    }

    /// `launch.yml` of the supply buildpacks, then the final buildpack's `launch.yml` or its
    /// `bin/release`, then the `Procfile`.
    fn process_types(
        &self,
        runner: &ScriptRunner,
        root: &StagingRoot,
    ) -> Result<ProcessTypes, LifecycleError> {
        let mut types = ProcessTypes::default();
        for position in 0..self.supply.len() {
            if let Some(from_launch_yml) = read_launch_yml(&root.deps.join(self.index(position)))? {
                types.merge(from_launch_yml);
            }
        }
        let key = &self.final_buildpack.key;
        if let Some(from_launch_yml) = read_launch_yml(&root.deps.join(self.final_index()))? {
            types.merge(from_launch_yml);
        } else {
            let bp_root = self
                .final_buildpack
                .root()
                .ok_or_else(|| LifecycleError::MalformedBuildpack { key: key.clone() })?;
            let output = runner
                .run_capturing_stdout(&bp_root.join("bin/release"), &[root.app.as_os_str()])
                .map_err(|failure| LifecycleError::ReleaseFailed {
                    key: key.clone(),
                    failure,
                })?;
            let released = process_types::parse_release(&output).map_err(|reason| {
                LifecycleError::ReleaseOutputInvalid {
                    key: key.clone(),
                    reason,
                }
            })?;
            types.merge(released);
        }
        match fs::read_to_string(root.app.join("Procfile")) {
            Ok(text) => types.merge(
                process_types::parse_procfile(&text)
                    .map_err(|()| LifecycleError::ProcfileInvalid)?,
            ),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return Err(LifecycleError::ProcfileInvalid),
        }
        Ok(types)
    }

    /// Every buildpack that ran, with the name and version its `config.yml` declares; after
    /// detect, the detect output names a buildpack that wrote no `config.yml`.
    fn metadata(&self, root: &StagingRoot) -> Vec<BuildpackMetadata> {
        let ran = self
            .supply
            .iter()
            .copied()
            .chain(std::iter::once(self.final_buildpack));
        let mut metadata: Vec<BuildpackMetadata> = ran
            .enumerate()
            .map(|(position, bp)| {
                BuildpackMetadata::read(&bp.key, &root.deps.join(self.index(position)))
            })
            .collect();
        if let (Some(detected), Some(last)) = (&self.detect_output, metadata.last_mut()) {
            if last.name.is_empty() {
                last.name.clone_from(detected);
            }
        }
        metadata
    }

    /// CF keeps `final` and the caches of this staging's supply buildpacks, and deletes
    /// everything else in the cache root (caches of buildpacks no longer used, stray files).
    fn drop_unused_caches(&self, cache_root: &Path) -> Result<(), LifecycleError> {
        let mut keep = vec![cache_root.join("final")];
        keep.extend(
            self.supply
                .iter()
                .map(|bp| Self::supply_cache(cache_root, bp)),
        );
        let entries =
            fs::read_dir(cache_root).map_err(local_io("read the cache directory", cache_root))?;
        for entry in entries.flatten() {
            let path = entry.path();
            if keep.contains(&path) {
                continue;
            }
            let removed = if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                files::remove_tree(&path)
            } else {
                fs::remove_file(&path)
            };
            removed.map_err(local_io("remove the unused cache", &path))?;
        }
        Ok(())
    }
}

fn read_launch_yml(deps_index_dir: &Path) -> Result<Option<ProcessTypes>, LifecycleError> {
    let path = deps_index_dir.join("launch.yml");
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(None);
    };
    process_types::parse_launch_yml(&text)
        .map(Some)
        .map_err(|reason| LifecycleError::LaunchYmlInvalid { path, reason })
}

/// `cf push` without `-b`: the first admin buildpack whose `bin/detect` exits 0 wins.
fn detect<'a>(
    buildpacks: &'a [Buildpack],
    runner: &ScriptRunner,
    root: &StagingRoot,
) -> Result<Plan<'a>, LifecycleError> {
    for buildpack in buildpacks {
        let Some(bp_root) = buildpack.root() else {
            println!(
                "malformed buildpack does not contain a /bin dir: {}",
                buildpack.key
            );
            continue;
        };
        let script = bp_root.join("bin/detect");
        match fs::metadata(&script) {
            Err(error) => {
                println!(
                    "failed to find detect script: stat {}: {error}",
                    script.display()
                );
                continue;
            }
            Ok(metadata)
                if std::os::unix::fs::PermissionsExt::mode(&metadata.permissions()) & 0o111
                    != 0o111 =>
            {
                println!("WARNING: buildpack script '/bin/detect' is not executable");
            }
            Ok(_) => {}
        }
        if let Ok(output) = runner.run_capturing_stdout(&script, &[root.app.as_os_str()]) {
            let name = output.trim_end_matches(['\r', '\n']).to_owned();
            return Ok(Plan {
                supply: Vec::new(),
                final_buildpack: buildpack,
                detect_output: Some(name),
            });
        }
    }
    Err(LifecycleError::NoBuildpackDetected)
}

fn write_droplet(
    staging: &Staging,
    root: &StagingRoot,
    buildpacks: &[BuildpackMetadata],
    process_types: &ProcessTypes,
) -> Result<(), LifecycleError> {
    for dir in ["tmp", "logs"] {
        let path = root.contents.join(dir);
        fs::create_dir_all(&path).map_err(local_io("create the directory", &path))?;
    }
    let staging_info = root.contents.join("staging_info.yml");
    fs::write(
        &staging_info,
        metadata::staging_info(buildpacks, process_types),
    )
    .map_err(local_io("write", &staging_info))?;
    let droplet_path = staging.output.join("droplet.tgz");
    droplet::write(&droplet_path, &root.app, &root.contents)
        .map_err(local_io("write the droplet", &droplet_path))?;
    let result_path = staging.output.join("result.json");
    fs::write(
        &result_path,
        metadata::result_json(buildpacks, process_types),
    )
    .map_err(local_io("write", &result_path))
}

/// The deps index of the buildpack at `position`, zero-padded to the number of digits of
/// `count` (CF's `int(log10(count)) + 1`): `0`..`8` for nine buildpacks, `00`..`09` for ten,
/// `00`..`10` for eleven.
pub(crate) fn deps_index(position: usize, count: usize) -> String {
    let width = count.max(1).to_string().len();
    format!("{position:0width$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_is_padded_to_the_digits_of_the_buildpack_count() {
        assert_eq!(deps_index(0, 1), "0");
        assert_eq!(deps_index(8, 9), "8");
        // CF pads to the digits of the count, not of the highest index: ten give 00..09.
        assert_eq!(deps_index(9, 10), "09");
        assert_eq!(deps_index(0, 11), "00");
        assert_eq!(deps_index(10, 11), "10");
        assert_eq!(deps_index(7, 100), "007");
    }
}
