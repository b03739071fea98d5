//! `local-cf launch`: what Cloud Foundry's launcher does with a droplet, at the
//! run-time paths. The droplet is unpacked into `/home/vcap` (app at `/home/vcap/app`, deps
//! at `/home/vcap/deps`), never into the staging root, so a buildpack that bakes staging-time
//! paths into the droplet fails here as it would on CF.
//!
//! `/home/vcap` is a fresh tmpfs in a private mount namespace: the command re-executes itself
//! with a hidden flag, the re-executed process starts inside the namespace (see
//! `namespace::private_home_vcap_on_exec`), unpacks the droplet and `exec`s bash the way the
//! launcher does. The host is left as it was, apart from an empty `/home/vcap` mount point
//! created when it is missing.

use std::fs;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use super::droplet;
use super::environment::{self, Environment};
use super::errors::LifecycleError;
use super::files;
use super::metadata;
use super::namespace::{self, HOME_VCAP, VCAP_UID};

#[derive(Debug, clap::Args)]
pub(crate) struct LaunchArgs {
    /// The `droplet.tgz` written by `local-cf stage`.
    droplet: PathBuf,
    /// An app environment variable, as set with `cf set-env`; repeat as needed, later wins.
    #[arg(long = "env", value_name = "KEY=VALUE", allow_hyphen_values = true)]
    env: Vec<String>,
    /// The port the app must listen on (`PORT`).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The app's memory limit (`MEMORY_LIMIT`, `VCAP_APPLICATION.limits.mem`).
    #[arg(long, default_value = "1024m")]
    memory: String,
    /// The start command (`cf push -c`); without it, the droplet's own.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
    /// Run Cloud Foundry's real `launcher` executable instead of our model of it.
    #[arg(long, value_name = "PATH")]
    launcher: Option<PathBuf>,
    /// Set on the re-executed process that already runs inside the private namespace.
    #[arg(long, hide = true)]
    inside_namespace: bool,
}

/// CF's launcher, in bash: `cd` into the app, source `../profile.d/*`, then
/// `.profile.d/*`, then `.profile`, then replace itself with `bash -c COMMAND`.
/// `$1` is the app directory and `$2` the command.
const LAUNCHER_SCRIPT: &str = r#"
cd "$1" || exit 1
echo 'Invoking pre-start scripts.'
for profile_script in ../profile.d/*; do
  if [ -e "$profile_script" ]; then source "$profile_script"; fi
done
for profile_script in .profile.d/*; do
  if [ -e "$profile_script" ]; then source "$profile_script"; fi
done
if [ -f .profile ]; then source .profile; fi
shift
echo 'Invoking start command.'
exec bash -c "$1"
"#;

pub(crate) fn run(args: &LaunchArgs) -> ExitCode {
    let result = if args.inside_namespace {
        start_app(args)
    } else {
        launch_in_namespace(args)
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{}", error.message());
            ExitCode::from(error.exit_code())
        }
    }
}

/// Outside: checks what can be checked, then runs the re-executed launcher in the private
/// namespace and hands back the app's exit status.
fn launch_in_namespace(args: &LaunchArgs) -> Result<ExitCode, LifecycleError> {
    let droplet = fs::canonicalize(&args.droplet)
        .and_then(|path| fs::File::open(&path).map(|_| path))
        .map_err(|source| LifecycleError::DropletUnreadable {
            path: args.droplet.clone(),
            source,
        })?;
    if droplet.starts_with(HOME_VCAP) {
        return Err(LifecycleError::DropletUnderHomeVcap { path: droplet });
    }
    // Refuse bad input here, where the message is clear, not after entering the namespace.
    app_environment(args)?;
    fs::create_dir_all(HOME_VCAP).map_err(|source| LifecycleError::MountIsolation { source })?;

    let mut inner = Command::new("/proc/self/exe");
    inner
        .arg0("local-cf")
        .arg("launch")
        .arg("--inside-namespace")
        .arg(&droplet);
    if let Some(launcher) = &args.launcher {
        let launcher = fs::canonicalize(launcher).map_err(|source| LifecycleError::AppStart {
            source: std::io::Error::new(
                source.kind(),
                format!("cannot find the launcher {}: {source}", launcher.display()),
            ),
        })?;
        inner.arg("--launcher").arg(launcher);
    }
    inner
        .arg("--port")
        .arg(args.port.to_string())
        .arg("--memory")
        .arg(&args.memory);
    for assignment in &args.env {
        inner.arg(format!("--env={assignment}"));
    }
    if !args.command.is_empty() {
        inner.arg("--").args(&args.command);
    }
    namespace::private_home_vcap_on_exec(&mut inner);
    let status = inner
        .status()
        .map_err(|source| LifecycleError::MountIsolation { source })?;
    // A shell reports death by signal N as 128+N; do the same so callers can tell.
    let code = status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// Inside the namespace: unpack, then become the app. Returns only on failure.
fn start_app(args: &LaunchArgs) -> Result<ExitCode, LifecycleError> {
    let home = Path::new(HOME_VCAP);
    // Never unpack onto the host: `--inside-namespace` run by hand, or a namespace that did
    // not come about, must not fill the real /home/vcap.
    if !namespace::home_vcap_is_private_tmpfs() {
        return Err(LifecycleError::MountIsolation {
            source: std::io::Error::other("/home/vcap is not a private tmpfs in this process"),
        });
    }
    droplet::unpack(&args.droplet, home).map_err(|source| LifecycleError::DropletUnpack {
        path: args.droplet.clone(),
        source,
    })?;
    // Diego unpacks the droplet as vcap, and the app runs as vcap.
    files::chown_tree(home, VCAP_UID).map_err(|source| LifecycleError::DropletUnpack {
        path: args.droplet.clone(),
        source,
    })?;
    let mut command = match &args.launcher {
        // The real launcher reads staging_info.yml itself when given no command.
        Some(launcher) => {
            let mut command = Command::new(launcher);
            command.arg("app").arg(args.command.join(" ")).arg("");
            command
        }
        None => {
            let start = if args.command.is_empty() {
                droplet_start_command(home)?
            } else {
                args.command.join(" ")
            };
            if start.trim().is_empty() {
                return Err(LifecycleError::NoStartCommand);
            }
            let bash = if Path::new("/bin/bash").exists() {
                "/bin/bash"
            } else {
                "bash"
            };
            let mut command = Command::new(bash);
            command
                .arg0("bash")
                .arg("-c")
                .arg(LAUNCHER_SCRIPT)
                .arg("launcher")
                .arg(home.join("app"))
                .arg(start);
            command
        }
    };
    command
        .env_clear()
        .envs(app_environment(args)?)
        // The launcher runs where the droplet was unpacked; it reads staging_info.yml there.
        .current_dir(home);
    namespace::become_vcap_on_exec(&mut command);
    let error = command.exec();
    Err(LifecycleError::AppStart { source: error })
}

fn droplet_start_command(home: &Path) -> Result<String, LifecycleError> {
    match fs::read_to_string(home.join("staging_info.yml")) {
        Ok(text) => metadata::start_command_from_staging_info(&text)
            .map_err(|reason| LifecycleError::StagingInfoInvalid { reason }),
        // CF's launcher treats a droplet without staging_info.yml as one without a command.
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(error) => Err(LifecycleError::StagingInfoInvalid {
            reason: error.to_string(),
        }),
    }
}

/// The app's environment in the container: what Diego sets, what the launcher adds (`HOME`,
/// `TMPDIR`, `DEPS_DIR` as absolute paths next to the app, host and port inside
/// `VCAP_APPLICATION`), then the app's own variables.
fn app_environment(args: &LaunchArgs) -> Result<Vec<(String, String)>, LifecycleError> {
    let memory_mb = environment::parse_memory_mb(&args.memory)?;
    let port = args.port.to_string();
    let instance_guid = "00000000-0000-4000-8000-000000000000";
    let mut vcap = environment::vcap_application("app", memory_mb);
    vcap["host"] = "0.0.0.0".into();
    vcap["port"] = args.port.into();
    vcap["instance_index"] = 0.into();
    vcap["instance_id"] = instance_guid.into();
    let home = Path::new(HOME_VCAP);
    let mut env = Environment::with_stack_path();
    env.set("HOME", home.join("app").to_string_lossy());
    env.set("TMPDIR", home.join("tmp").to_string_lossy());
    // The real launcher sets the absolute path of `../deps` next to the app.
    env.set("DEPS_DIR", home.join("deps").to_string_lossy());
    env.set("USER", "vcap");
    env.set("LANG", "en_US.UTF-8");
    env.set("PORT", port.clone());
    env.set("VCAP_APP_PORT", port.clone());
    env.set("VCAP_APP_HOST", "0.0.0.0");
    env.set("CF_INSTANCE_PORT", port);
    env.set("CF_INSTANCE_INDEX", "0");
    env.set("INSTANCE_INDEX", "0");
    env.set("CF_INSTANCE_GUID", instance_guid);
    env.set("INSTANCE_GUID", instance_guid);
    env.set("MEMORY_LIMIT", format!("{memory_mb}m"));
    env.set("VCAP_APPLICATION", vcap.to_string());
    env.set("VCAP_SERVICES", "{}");
    for assignment in &args.env {
        let (key, value) = environment::parse_env_assignment(assignment)?;
        env.set(&key, value);
    }
    Ok(env.into_vec())
}
