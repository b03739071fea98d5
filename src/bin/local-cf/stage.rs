//! `local-cf stage`: what Diego does around a staging, from buildpack zips.
//!
//! The story, top to bottom: check the inputs -> lay out a staging root that becomes the
//! container's `/tmp` and `/home/vcap` -> upload the app as `cf push` does (`.cfignore`
//! applied) -> unpack the buildpacks into `/tmp/buildpacks/<xxhash64 of the key>` -> bring
//! back the app's build artifacts cache the way Diego does, through its tgz (every file a new
//! copy, new mtimes, hard links broken, a 022 umask, owned by vcap) -> run the builder as vcap
//! in a private mount namespace (our model, `local-cf builder`, or the real one with
//! `--builder`) -> collect `result.json` (also on failure), the droplet, and the new cache.
//! The builder's exit code is the staging's.

use std::ffi::CString;
use std::fs;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use super::builder::{BuilderFlags, buildpack_dir_name};
use super::buildpack_zip;
use super::cfignore::CfIgnore;
use super::environment::{self, Environment};
use super::errors::{LifecycleError, staging_reason};
use super::files::{self, local_io};
use super::namespace::{self, ContainerSpec, HOME_VCAP, VCAP_UID};

#[derive(Debug, clap::Args)]
pub(crate) struct StageArgs {
    /// The app directory, as you would `cf push` it (`.cfignore` is honoured).
    app_dir: PathBuf,
    /// A buildpack zip. Repeat for multi-buildpack staging: the zips run in the order given
    /// and the last one is the final buildpack (`cf push -b A -b B`).
    #[arg(long = "buildpack", value_name = "ZIP", required = true)]
    buildpacks: Vec<PathBuf>,
    /// Treat the zips as the admin buildpacks in position order and let their `bin/detect`
    /// choose one (`cf push` without `-b`).
    #[arg(long)]
    detect: bool,
    /// The app's build artifacts cache, kept between stagings of the same app. It goes
    /// through Diego's round trip every staging. Without it every staging starts empty.
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
    /// Stage in a network namespace of its own, with only a loopback.
    #[arg(long)]
    no_network: bool,
    /// Keep the staging root (the container's `tmp/` and `home/`) for inspection.
    #[arg(long)]
    keep_staging_dir: bool,
    /// Run Cloud Foundry's real `builder` executable instead of our model of it.
    #[arg(long, value_name = "PATH")]
    builder: Option<PathBuf>,
    /// Run the builder as root instead of vcap (uid 2000), as Diego never does.
    #[arg(long)]
    as_root: bool,
}

pub(crate) fn run(args: &StageArgs) -> ExitCode {
    match stage(args) {
        Ok(0) => {
            println!(
                "Staging complete: {}",
                absolute_path(&args.output).join("droplet.tgz").display()
            );
            ExitCode::SUCCESS
        }
        Ok(code) => {
            println!(
                "Staging failed: exit status {code} ({})",
                staging_reason(code)
            );
            ExitCode::from(u8::try_from(code).unwrap_or(1))
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
    builder: Option<PathBuf>,
    as_root: bool,
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
        let builder = args
            .builder
            .as_deref()
            .map(|path| {
                fs::canonicalize(path).map_err(local_io("find the builder executable", path))
            })
            .transpose()?;
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
            builder,
            as_root: args.as_root,
        })
    }
}

fn absolute_path(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The staging root: `tmp/` becomes the container's `/tmp` (app, buildpacks, cache, the
/// builder's contents dir and outputs) and `home/` its `/home/vcap`.
struct StagingRoot {
    root: PathBuf,
    tmp: PathBuf,
    home: PathBuf,
}

impl StagingRoot {
    fn create() -> Result<Self, LifecycleError> {
        let parent = fs::canonicalize(std::env::temp_dir()).map_err(local_io(
            "find the temporary directory",
            &std::env::temp_dir(),
        ))?;
        let root = files::create_unique_dir(&parent, "conda-buildpack-staging-")
            .map_err(local_io("create the staging root in", &parent))?;
        let layout = Self {
            tmp: root.join("tmp"),
            home: root.join("home"),
            root,
        };
        for (dir, mode) in [(&layout.tmp, 0o1777), (&layout.home, 0o755)] {
            fs::create_dir(dir).map_err(local_io("create the directory", dir))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(mode))
                .map_err(local_io("set the mode of", dir))?;
        }
        files::chown_tree(&layout.home, VCAP_UID).map_err(local_io("chown", &layout.home))?;
        Ok(layout)
    }

    /// A path inside the container as the host sees it: `/tmp/app` is `ROOT/tmp/app`.
    fn host_path(&self, container_path: &Path) -> PathBuf {
        match container_path.strip_prefix("/tmp") {
            Ok(rest) => self.tmp.join(rest),
            Err(_) => container_path.to_path_buf(),
        }
    }
}

fn stage(args: &StageArgs) -> Result<i32, LifecycleError> {
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
    // The droplet's name last of all, after the clean-up: its presence means the staging
    // ended, so a staging killed while it cleaned up leaves only the `.partial`.
    if let Ok(0) = result {
        let to = staging.output.join("droplet.tgz");
        fs::rename(staging.output.join(DROPLET_PARTIAL), &to)
            .map_err(local_io("copy the droplet to", &to))?;
    }
    result
}

const DROPLET_PARTIAL: &str = "droplet.tgz.partial";

fn stage_in(staging: &Staging, root: &StagingRoot) -> Result<i32, LifecycleError> {
    prepare_output(&staging.output)?;
    let flags = BuilderFlags {
        buildpack_order: staging.zips.iter().map(|(key, _)| key.clone()).collect(),
        skip_detect: !staging.detect,
        ..BuilderFlags::default()
    };
    upload_app(staging, root, &root.host_path(&flags.build_dir))?;
    let buildpacks_dir = root.host_path(&flags.buildpacks_dir);
    fs::create_dir(&buildpacks_dir).map_err(local_io("create the directory", &buildpacks_dir))?;
    for (key, zip) in &staging.zips {
        let dir = buildpacks_dir.join(buildpack_dir_name(key));
        fs::create_dir(&dir).map_err(local_io("create the buildpack directory", &dir))?;
        buildpack_zip::unpack(zip, &dir)?;
    }
    let cache = root.host_path(&flags.cache_dir);
    match &staging.cache_root {
        Some(kept) if kept.is_dir() => files::copy_through_tgz(kept, &cache, VCAP_UID),
        _ => fs::create_dir(&cache).and_then(|()| files::chown_tree(&cache, VCAP_UID)),
    }
    .map_err(local_io(
        "bring back the build artifacts cache into",
        &cache,
    ))?;

    let code = run_builder(staging, root, &flags)?;

    let result_json = root.host_path(&flags.output_metadata);
    if result_json.exists() {
        let to = staging.output.join("result.json");
        fs::copy(&result_json, &to).map_err(local_io("copy result.json to", &to))?;
    }
    if code == 0 {
        // Only a staging that succeeded uploads its build artifacts cache.
        if let Some(kept) = &staging.cache_root {
            files::replace_with_tgz(&root.host_path(&flags.output_cache), kept)
                .map_err(local_io("keep the build artifacts cache in", kept))?;
        }
        // The droplet whole or not at all; `stage` gives it its name once all else is done.
        let partial = staging.output.join(DROPLET_PARTIAL);
        fs::copy(root.host_path(&flags.output_droplet), &partial)
            .map_err(local_io("copy the droplet to", &partial))?;
    }
    Ok(code)
}

/// `cf push`: the app's files less what `.cfignore` and the CLI's defaults leave out, and
/// less our own output, cache and staging root when they live inside the app directory.
fn upload_app(staging: &Staging, root: &StagingRoot, to: &Path) -> Result<(), LifecycleError> {
    let skip = [
        Some(&staging.output),
        staging.cache_root.as_ref(),
        Some(&root.root),
    ]
    .into_iter()
    .flatten()
    .filter_map(|path| fs::canonicalize(path).ok())
    .collect::<Vec<_>>();
    let ignore = CfIgnore::read(&staging.app_dir);
    files::copy_tree(&staging.app_dir, to, &skip, &ignore)
        .and_then(|()| files::chown_tree(to, VCAP_UID))
        .map_err(local_io("copy the app into", to))
}

/// A stale droplet from an earlier run must not pass for the result of a failed staging.
fn prepare_output(output: &Path) -> Result<(), LifecycleError> {
    fs::create_dir_all(output).map_err(local_io("create the output directory", output))?;
    for name in ["droplet.tgz", DROPLET_PARTIAL, "result.json"] {
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

/// Runs the builder in the container and returns its exit code; its output is the staging
/// log. A builder killed by a signal counts as the shell would count it.
fn run_builder(
    staging: &Staging,
    root: &StagingRoot,
    flags: &BuilderFlags,
) -> Result<i32, LifecycleError> {
    let mut command = match &staging.builder {
        Some(real) => Command::new(real),
        None => {
            let exe =
                std::env::current_exe().map_err(|source| LifecycleError::Container { source })?;
            let mut command = Command::new(exe);
            command.arg("builder");
            command
        }
    };
    command
        .args(flags.to_args())
        .env_clear()
        .envs(staging_environment(staging))
        .stdin(std::process::Stdio::null());
    fs::create_dir_all(HOME_VCAP).map_err(|source| LifecycleError::Container { source })?;
    let c_path = |path: &Path| {
        CString::new(path.as_os_str().as_bytes()).map_err(|error| LifecycleError::Container {
            source: std::io::Error::other(error),
        })
    };
    namespace::enter_container_on_exec(
        &mut command,
        ContainerSpec {
            tmp: c_path(&root.tmp)?,
            home: c_path(&root.home)?,
            isolate_network: staging.no_network,
            as_vcap: !staging.as_root,
        },
    );
    let _ = std::io::stdout().flush();
    let status = command
        .status()
        .map_err(|source| LifecycleError::Container { source })?;
    Ok(status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1))
}

/// The builder's environment as Diego sets it: nothing of the caller's leaks in except what
/// a CF operator could pass on (proxies, `BP_DEBUG`), then the app's variables.
fn staging_environment(staging: &Staging) -> Vec<(String, String)> {
    let mut env = Environment::with_stack_path();
    env.set("HOME", HOME_VCAP);
    env.set("TMPDIR", "/tmp");
    env.set("USER", "vcap");
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
