//! `local-cf builder`: our model of Cloud Foundry's `builder`, the program Diego runs
//! inside the staging container (see `stage`, which plays Diego). It takes the real builder's
//! flags, so `stage` runs either program the same way, and reads and writes only the
//! container's paths.
//!
//! The story, top to bottom: read the flags -> make `TMPDIR/contents<N>/{deps,profile.d}` ->
//! find each buildpack under `buildpacksDir/<xxhash64 of its key>` -> detect, or take the
//! named buildpacks in order -> `bin/supply` of every supply buildpack -> `bin/finalize` (or
//! the legacy `bin/compile`) of the final one -> process types from `launch.yml`,
//! `bin/release` and the `Procfile` -> `staging_info.yml`, the droplet, `result.json` and the
//! output cache -> remove the contents dir. The real builder's exit codes are kept: 222 none
//! detected, 223 any failure of the final buildpack, 224 release, 225 a supply buildpack.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::buildpack_zip::Buildpack;
use super::droplet;
use super::errors::{LifecycleError, SUPPLY_FAIL_CODE};
use super::files::{self, local_io};
use super::metadata::{self, BuildpackMetadata};
use super::process_types::{self, ProcessTypes};
use super::script::ScriptRunner;

#[derive(Debug, clap::Args)]
pub(crate) struct BuilderArgs {
    /// The real builder's flags, Go style: `-buildpackOrder=a,b -skipDetect=true ...`.
    #[arg(allow_hyphen_values = true, trailing_var_arg = true)]
    flags: Vec<String>,
}

/// The builder's flags; the defaults are the real builder's.
#[derive(Debug)]
pub(crate) struct BuilderFlags {
    pub(crate) buildpack_order: Vec<String>,
    pub(crate) skip_detect: bool,
    pub(crate) build_dir: PathBuf,
    pub(crate) output_droplet: PathBuf,
    pub(crate) output_metadata: PathBuf,
    pub(crate) output_cache: PathBuf,
    pub(crate) buildpacks_dir: PathBuf,
    pub(crate) cache_dir: PathBuf,
}

impl Default for BuilderFlags {
    fn default() -> Self {
        Self {
            buildpack_order: Vec::new(),
            skip_detect: false,
            build_dir: "/tmp/app".into(),
            output_droplet: "/tmp/droplet".into(),
            output_metadata: "/tmp/result.json".into(),
            output_cache: "/tmp/output-cache".into(),
            buildpacks_dir: "/tmp/buildpacks".into(),
            cache_dir: "/tmp/cache".into(),
        }
    }
}

impl BuilderFlags {
    /// The command line Diego gives the real builder, every flag non-empty.
    pub(crate) fn to_args(&self) -> Vec<String> {
        vec![
            format!("-buildpackOrder={}", self.buildpack_order.join(",")),
            format!("-skipDetect={}", self.skip_detect),
            "-skipCertVerify=false".to_owned(),
            format!("-buildDir={}", self.build_dir.display()),
            format!("-outputDroplet={}", self.output_droplet.display()),
            format!("-outputMetadata={}", self.output_metadata.display()),
            format!("-outputBuildArtifactsCache={}", self.output_cache.display()),
            format!("-buildpacksDir={}", self.buildpacks_dir.display()),
            format!("-buildArtifactsCacheDir={}", self.cache_dir.display()),
        ]
    }

    fn parse(args: &[String]) -> Result<Self, LifecycleError> {
        let mut flags = Self::default();
        for arg in args {
            let invalid = || LifecycleError::InvalidBuilderFlag { flag: arg.clone() };
            let (name, value) = arg
                .trim_start_matches('-')
                .split_once('=')
                .ok_or_else(invalid)?;
            match name {
                "buildpackOrder" => {
                    flags.buildpack_order = value
                        .split(',')
                        .filter(|key| !key.is_empty())
                        .map(str::to_owned)
                        .collect();
                }
                "skipDetect" => flags.skip_detect = value == "true",
                "skipCertVerify" => {}
                "buildDir" => flags.build_dir = value.into(),
                "outputDroplet" => flags.output_droplet = value.into(),
                "outputMetadata" => flags.output_metadata = value.into(),
                "outputBuildArtifactsCache" => flags.output_cache = value.into(),
                "buildpacksDir" => flags.buildpacks_dir = value.into(),
                "buildArtifactsCacheDir" => flags.cache_dir = value.into(),
                _ => return Err(invalid()),
            }
        }
        Ok(flags)
    }
}

/// The directory a buildpack is unpacked into: the builder looks for the xxhash64 of its key
/// (`%016x`, seed 0) and, for older Diego cells, the md5.
pub(crate) fn buildpack_dir_name(key: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh64::xxh64(key.as_bytes(), 0))
}

pub(crate) fn run(args: &BuilderArgs) -> ExitCode {
    let result = BuilderFlags::parse(&args.flags).and_then(|flags| build(&flags));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The real builder prints its one failure line to stderr; the platform then
            // reports the code.
            eprintln!("{}", error.message());
            ExitCode::from(error.exit_code())
        }
    }
}

/// The contents dir the builder makes in `TMPDIR`: `deps/` and `profile.d/`, the droplet's.
struct Contents {
    dir: PathBuf,
    deps: PathBuf,
    profile_d: PathBuf,
}

fn build(flags: &BuilderFlags) -> Result<(), LifecycleError> {
    let tmp = std::env::temp_dir();
    let dir = files::create_unique_dir(&tmp, "contents")
        .map_err(local_io("create a directory in", &tmp))?;
    // Go's MkdirTemp makes it 0700, and it is the droplet's root entry.
    fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(local_io("set the mode of", &dir))?;
    let contents = Contents {
        deps: dir.join("deps"),
        profile_d: dir.join("profile.d"),
        dir,
    };
    for path in [&contents.deps, &contents.profile_d] {
        fs::create_dir_all(path).map_err(local_io("create the directory", path))?;
    }
    let result = build_in(flags, &contents);
    let _ = files::remove_tree(&contents.dir);
    result
}

fn build_in(flags: &BuilderFlags, contents: &Contents) -> Result<(), LifecycleError> {
    let buildpacks: Vec<Buildpack> = flags
        .buildpack_order
        .iter()
        .map(|key| {
            let xxhash = flags.buildpacks_dir.join(buildpack_dir_name(key));
            let dir = if xxhash.exists() {
                xxhash
            } else {
                flags.buildpacks_dir.join(files::md5_hex(key))
            };
            Buildpack {
                key: key.clone(),
                dir,
            }
        })
        .collect();
    let runner = ScriptRunner::new();
    let plan = if flags.skip_detect {
        Plan::named(&buildpacks)?
    } else {
        detect(&buildpacks, &runner, &flags.build_dir)?
    };
    // The real builder writes result.json after a failure of the final buildpack or of the
    // release, not after a supply buildpack's (measured); when it cannot (the disk is full),
    // the failure it reports is still the script's.
    let outcome = plan.run(&runner, flags, contents);
    if let Err(error) = &outcome {
        if error.is_staging_failure() && error.exit_code() != SUPPLY_FAIL_CODE {
            let _ = write_metadata(flags, &plan.metadata(contents), None);
        }
    }
    outcome
}

impl Plan<'_> {
    fn run(
        &self,
        runner: &ScriptRunner,
        flags: &BuilderFlags,
        contents: &Contents,
    ) -> Result<(), LifecycleError> {
        self.create_dirs(contents, &flags.cache_dir)?;
        self.run_supply_buildpacks(runner, flags, contents)?;
        self.run_final_buildpack(runner, flags, contents)?;

        let process_types = self.process_types(runner, flags, contents)?;
        let buildpack_metadata = self.metadata(contents);
        if process_types.get("web").is_none_or(str::is_empty) {
            eprintln!("No start command specified by buildpack or via Procfile.");
            eprintln!("App will not start unless a command is provided at runtime.");
        }
        self.drop_unused_caches(&flags.cache_dir)?;
        write_droplet(flags, contents, &buildpack_metadata, &process_types)?;
        write_metadata(flags, &buildpack_metadata, Some(&process_types))?;
        droplet::write_cache(&flags.output_cache, &flags.cache_dir).map_err(local_io(
            "write the build artifacts cache",
            &flags.output_cache,
        ))
    }
}

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
        cache_root.join(buildpack_dir_name(&buildpack.key))
    }

    fn create_dirs(&self, contents: &Contents, cache_root: &Path) -> Result<(), LifecycleError> {
        let mut dirs = vec![cache_root.join("final")];
        dirs.extend(
            self.supply
                .iter()
                .map(|bp| Self::supply_cache(cache_root, bp)),
        );
        dirs.extend(
            (0..=self.supply.len()).map(|position| contents.deps.join(self.index(position))),
        );
        for dir in &dirs {
            fs::create_dir_all(dir).map_err(local_io("create the directory", dir))?;
        }
        Ok(())
    }

    fn run_supply_buildpacks(
        &self,
        runner: &ScriptRunner,
        flags: &BuilderFlags,
        contents: &Contents,
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
            let cache = Self::supply_cache(&flags.cache_dir, buildpack);
            let index = self.index(position);
            runner
                .run(
                    &bp_root.join("bin/supply"),
                    &[
                        flags.build_dir.as_os_str(),
                        cache.as_os_str(),
                        contents.deps.as_os_str(),
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
        flags: &BuilderFlags,
        contents: &Contents,
    ) -> Result<(), LifecycleError> {
        let key = &self.final_buildpack.key;
        let bp_root = self
            .final_buildpack
            .root()
            .ok_or_else(|| LifecycleError::MalformedBuildpack { key: key.clone() })?;
        let cache = flags.cache_dir.join("final");
        let index = self.final_index();
        let (app, cache, deps, index) = (
            flags.build_dir.as_os_str(),
            cache.as_os_str(),
            contents.deps.as_os_str(),
            OsStr::new(&index),
        );
        if bp_root.join("bin/finalize").exists() {
            if bp_root.join("bin/supply").exists() {
                runner
                    .run(&bp_root.join("bin/supply"), &[app, cache, deps, index])
                    .map_err(|failure| LifecycleError::FinalSupplyFailed {
                        key: key.clone(),
                        failure,
                    })?;
            }
            runner
                .run(
                    &bp_root.join("bin/finalize"),
                    &[app, cache, deps, index, contents.profile_d.as_os_str()],
                )
                .map_err(|failure| LifecycleError::FinalizeFailed {
                    key: key.clone(),
                    failure,
                })
        } else {
            if !self.supply.is_empty() {
                eprintln!(
                    "Warning: the last buildpack is not compatible with multi-buildpack apps and cannot make use \
                     of any dependencies supplied by the buildpacks specified before it"
                );
            }
            // The legacy contract has no deps directory; CF removes the unused one.
            let unused = contents.deps.join(index);
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
        flags: &BuilderFlags,
        contents: &Contents,
    ) -> Result<ProcessTypes, LifecycleError> {
        let mut types = ProcessTypes::default();
        for position in 0..self.supply.len() {
            if let Some(from_launch_yml) =
                read_launch_yml(&contents.deps.join(self.index(position)))?
            {
                types.merge(from_launch_yml);
            }
        }
        let key = &self.final_buildpack.key;
        if let Some(from_launch_yml) = read_launch_yml(&contents.deps.join(self.final_index()))? {
            types.merge(from_launch_yml);
        } else {
            let bp_root = self
                .final_buildpack
                .root()
                .ok_or_else(|| LifecycleError::MalformedBuildpack { key: key.clone() })?;
            let output = runner
                .run_capturing_stdout(&bp_root.join("bin/release"), &[flags.build_dir.as_os_str()])
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
        match fs::read_to_string(flags.build_dir.join("Procfile")) {
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
    fn metadata(&self, contents: &Contents) -> Vec<BuildpackMetadata> {
        let ran = self
            .supply
            .iter()
            .copied()
            .chain(std::iter::once(self.final_buildpack));
        let mut metadata: Vec<BuildpackMetadata> = ran
            .enumerate()
            .map(|(position, bp)| {
                BuildpackMetadata::read(&bp.key, &contents.deps.join(self.index(position)))
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
    app: &Path,
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
        if let Ok(output) = runner.run_capturing_stdout(&script, &[app.as_os_str()]) {
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
    flags: &BuilderFlags,
    contents: &Contents,
    buildpacks: &[BuildpackMetadata],
    process_types: &ProcessTypes,
) -> Result<(), LifecycleError> {
    for dir in ["tmp", "logs"] {
        let path = contents.dir.join(dir);
        fs::create_dir_all(&path).map_err(local_io("create the directory", &path))?;
    }
    let staging_info = contents.dir.join("staging_info.yml");
    fs::write(
        &staging_info,
        metadata::staging_info(buildpacks, process_types),
    )
    .map_err(local_io("write", &staging_info))?;
    droplet::write(&flags.output_droplet, &flags.build_dir, &contents.dir)
        .map_err(local_io("write the droplet", &flags.output_droplet))
}

/// `result.json`; after a failed script the real builder writes it without process types.
fn write_metadata(
    flags: &BuilderFlags,
    buildpacks: &[BuildpackMetadata],
    process_types: Option<&ProcessTypes>,
) -> Result<(), LifecycleError> {
    fs::write(
        &flags.output_metadata,
        metadata::result_json(buildpacks, process_types),
    )
    .map_err(local_io("write", &flags.output_metadata))
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
