//! What can go wrong while playing Cloud Foundry's part locally, and what the user reads then.
//!
//! The builder failures keep Cloud Foundry's own first line ("Failed to run all supply
//! scripts: exit status 3") because that is what operators know and grep for; everything a
//! user reads is written in [`LifecycleError::message`], so the whole text can be reviewed in
//! one place.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Cloud Foundry's builder exit codes (buildpackapplifecycle `errors.go`).
pub(crate) const DETECT_FAIL_CODE: u8 = 222;
pub(crate) const COMPILE_FAIL_CODE: u8 = 223;
pub(crate) const RELEASE_FAIL_CODE: u8 = 224;
pub(crate) const SUPPLY_FAIL_CODE: u8 = 225;
// 226 (finalize) is declared in the real builder's source but never produced: a failed
// finalize, like a failed supply of the final buildpack, ends in 223.

/// How a buildpack script ended when it did not succeed.
#[derive(Debug)]
pub(crate) enum ScriptFailure {
    Exit(i32),
    Signal(i32),
    Start { program: PathBuf, source: io::Error },
}

/// Worded as Go's `os/exec` words it, because CF's builder appends exactly that text to its
/// failure line ("exit status 1", "fork/exec /tmp/buildpacks/.../bin/supply: permission denied").
impl fmt::Display for ScriptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exit(code) => write!(f, "exit status {code}"),
            Self::Signal(signal) => write!(f, "signal: {}", signal_name(*signal)),
            Self::Start { program, source } => {
                write!(
                    f,
                    "fork/exec {}: {}",
                    program.display(),
                    go_errno_text(source)
                )
            }
        }
    }
}

fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGHUP => "hangup".to_owned(),
        libc::SIGINT => "interrupt".to_owned(),
        libc::SIGQUIT => "quit".to_owned(),
        libc::SIGABRT => "aborted".to_owned(),
        libc::SIGKILL => "killed".to_owned(),
        libc::SIGSEGV => "segmentation fault".to_owned(),
        libc::SIGPIPE => "broken pipe".to_owned(),
        libc::SIGTERM => "terminated".to_owned(),
        other => format!("signal {other}"),
    }
}

/// Go prints errno texts in lower case without Rust's "(os error N)" suffix.
fn go_errno_text(error: &io::Error) -> String {
    match error.raw_os_error() {
        Some(libc::EACCES) => "permission denied".to_owned(),
        Some(libc::ENOENT) => "no such file or directory".to_owned(),
        Some(libc::ENOEXEC) => "exec format error".to_owned(),
        Some(libc::ENOTDIR) => "not a directory".to_owned(),
        Some(libc::ETXTBSY) => "text file busy".to_owned(),
        _ => error.to_string(),
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LifecycleError {
    // --- command line and inputs -------------------------------------------------------
    #[error("invalid --env argument {assignment:?}")]
    InvalidEnvAssignment { assignment: String },
    #[error("invalid --memory value {value:?}")]
    InvalidMemory { value: String },
    #[error("app directory {path} is unreadable")]
    AppDirUnreadable { path: PathBuf, source: io::Error },
    #[error("app directory {path} is not a directory")]
    AppDirNotADirectory { path: PathBuf },
    #[error("no buildpack given")]
    NoBuildpacks,
    #[error("buildpack key {key} given twice")]
    DuplicateBuildpack { key: String },
    #[error("buildpack zip {zip} is unreadable")]
    BuildpackZipUnreadable { zip: PathBuf, source: io::Error },
    #[error("buildpack zip {zip} is corrupt")]
    BuildpackZipCorrupt {
        zip: PathBuf,
        source: zip::result::ZipError,
    },
    #[error("buildpack zip {zip} has an entry {entry:?} outside its directory")]
    ZipEntryOutsideTarget { zip: PathBuf, entry: String },
    #[error("buildpack zip {zip} has an entry {entry:?} below a symlink")]
    ZipEntryThroughSymlink { zip: PathBuf, entry: String },
    #[error("buildpack zip {zip} has a symlink {entry:?} to {target:?}, outside its directory")]
    ZipEntryLinkOutside {
        zip: PathBuf,
        entry: String,
        target: String,
    },
    #[error("buildpack zip {zip} has a device or special file {entry:?}")]
    ZipEntrySpecial { zip: PathBuf, entry: String },
    #[error("buildpack zip {zip} has the entry {entry:?} twice")]
    ZipEntryDuplicate { zip: PathBuf, entry: String },
    #[error("buildpack zip {zip} would unpack {entry:?} to {size} bytes")]
    ZipBomb {
        zip: PathBuf,
        entry: String,
        size: u64,
    },
    #[error("{what} {path}")]
    LocalIo {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot make the staging container")]
    Container { source: io::Error },
    #[error("invalid builder flag {flag:?}")]
    InvalidBuilderFlag { flag: String },

    // --- Cloud Foundry's builder failures ----------------------------------------------
    #[error("no buildpack detected the app")]
    NoBuildpackDetected,
    #[error("buildpack {key} has no bin directory")]
    MalformedBuildpack { key: String },
    #[error("supply buildpack {key} has no bin/supply")]
    NoSupplyScript { key: String },
    #[error("bin/supply of {key} failed: {failure}")]
    SupplyFailed { key: String, failure: ScriptFailure },
    #[error("bin/supply of the final buildpack {key} failed: {failure}")]
    FinalSupplyFailed { key: String, failure: ScriptFailure },
    #[error("bin/finalize of {key} failed: {failure}")]
    FinalizeFailed { key: String, failure: ScriptFailure },
    #[error("bin/compile of {key} failed: {failure}")]
    CompileFailed { key: String, failure: ScriptFailure },
    #[error("bin/release of {key} failed: {failure}")]
    ReleaseFailed { key: String, failure: ScriptFailure },
    #[error("bin/release of {key} printed invalid YAML: {reason}")]
    ReleaseOutputInvalid { key: String, reason: String },
    #[error("the Procfile is not valid YAML")]
    ProcfileInvalid,
    #[error("{path} is invalid: {reason}")]
    LaunchYmlInvalid { path: PathBuf, reason: String },

    // --- launch ------------------------------------------------------------------------
    #[error("droplet {path} is unreadable")]
    DropletUnreadable { path: PathBuf, source: io::Error },
    #[error("droplet {path} lives under /home/vcap")]
    DropletUnderHomeVcap { path: PathBuf },
    #[error("cannot give the app a private /home/vcap")]
    MountIsolation { source: io::Error },
    #[error("droplet {path} cannot be unpacked")]
    DropletUnpack { path: PathBuf, source: io::Error },
    #[error("staging_info.yml is invalid: {reason}")]
    StagingInfoInvalid { reason: String },
    #[error("no start command")]
    NoStartCommand,
    #[error("cannot start bash")]
    AppStart { source: io::Error },
}

/// The short reason shown in `Staging failed: exit status N (REASON)`: what Cloud
/// Controller reports for each of the builder's exit codes.
pub(crate) fn staging_reason(code: i32) -> &'static str {
    match code {
        222 => "None of the buildpacks detected a compatible application",
        223 => "Failed to compile droplet",
        224 => "Failed to build droplet release",
        225 => "Failed to run all supply scripts",
        _ => "the builder failed",
    }
}

impl LifecycleError {
    /// The builder's exit code for builder failures (so scripts and CI can tell them apart
    /// the way Cloud Controller does), 1 for everything else.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::NoBuildpackDetected => DETECT_FAIL_CODE,
            Self::CompileFailed { .. }
            | Self::FinalSupplyFailed { .. }
            | Self::FinalizeFailed { .. } => COMPILE_FAIL_CODE,
            Self::ReleaseFailed { .. } | Self::ReleaseOutputInvalid { .. } => RELEASE_FAIL_CODE,
            Self::MalformedBuildpack { .. }
            | Self::NoSupplyScript { .. }
            | Self::SupplyFailed { .. } => SUPPLY_FAIL_CODE,
            _ => 1,
        }
    }

    /// True for the failures Cloud Foundry's builder itself reports: they belong in the
    /// staging log (stdout) followed by a "Staging failed" line. The others are mistakes in
    /// how the tool was called or local trouble, and go to stderr.
    pub(crate) fn is_staging_failure(&self) -> bool {
        matches!(
            self,
            Self::NoBuildpackDetected
                | Self::MalformedBuildpack { .. }
                | Self::NoSupplyScript { .. }
                | Self::SupplyFailed { .. }
                | Self::FinalSupplyFailed { .. }
                | Self::FinalizeFailed { .. }
                | Self::CompileFailed { .. }
                | Self::ReleaseFailed { .. }
                | Self::ReleaseOutputInvalid { .. }
                | Self::ProcfileInvalid
                | Self::LaunchYmlInvalid { .. }
        )
    }

    /// Everything a user reads about a failure.
    #[allow(clippy::too_many_lines)] // one arm per variant keeps the texts side by side
    pub(crate) fn message(&self) -> String {
        match self {
            Self::InvalidEnvAssignment { assignment } => format!(
                "--env expects KEY=VALUE, got {assignment:?}.\n\
                 Give one variable per --env, as `cf set-env` would set it."
            ),
            Self::InvalidMemory { value } => {
                format!("--memory expects a size like 512m, 1024M or 2g, got {value:?}.")
            }
            Self::AppDirUnreadable { path, source } => format!(
                "Cannot read the app directory {}: {source}.\n\
                 Pass the directory you would `cf push`.",
                path.display()
            ),
            Self::AppDirNotADirectory { path } => format!(
                "{} is not a directory. Pass the directory you would `cf push`.",
                path.display()
            ),
            Self::NoBuildpacks => {
                "Give at least one --buildpack ZIP (the last one is the final buildpack)."
                    .to_owned()
            }
            Self::DuplicateBuildpack { key } => format!(
                "Two buildpack zips are both named {key}. The file name is the buildpack's key \
                 (it names its cache directory), so each zip needs a distinct file name."
            ),
            Self::BuildpackZipUnreadable { zip, source } => {
                format!("Cannot read the buildpack zip {}: {source}.", zip.display())
            }
            Self::BuildpackZipCorrupt { zip, source } => format!(
                "The buildpack zip {} is not a valid zip file: {source}.\n\
                 Rebuild it with `conda-buildpack package`.",
                zip.display()
            ),
            Self::ZipEntryOutsideTarget { zip, entry } => format!(
                "The buildpack zip {} contains the entry {entry:?}, which would be written \
                 outside the buildpack's directory (absolute path or `..`). Refusing to unpack it.",
                zip.display()
            ),
            Self::ZipEntryThroughSymlink { zip, entry } => format!(
                "The buildpack zip {} contains the entry {entry:?}, which would be written \
                 through a symlink stored earlier in the same zip. Refusing to unpack it.",
                zip.display()
            ),
            Self::ZipEntryLinkOutside { zip, entry, target } => format!(
                "The buildpack zip {} contains the symlink {entry:?} to {target:?}, which points \
                 outside the buildpack's directory. Refusing to unpack it.",
                zip.display()
            ),
            Self::ZipEntrySpecial { zip, entry } => format!(
                "The buildpack zip {} contains {entry:?}, a device, fifo or socket, which has no \
                 place in a buildpack. Refusing to unpack it.",
                zip.display()
            ),
            Self::ZipEntryDuplicate { zip, entry } => format!(
                "The buildpack zip {} contains the entry {entry:?} twice; which one is meant \
                 cannot be known. Refusing to unpack it. Rebuild it with `conda-buildpack package`.",
                zip.display()
            ),
            Self::ZipBomb { zip, entry, size } => format!(
                "The buildpack zip {} would unpack {entry:?} to {size} bytes, far more than a \
                 buildpack holds (a zip bomb?). Refusing to unpack it.",
                zip.display()
            ),
            Self::LocalIo { what, path, source } => format!(
                "Local staging failed: cannot {what} {}: {source}.\n\
                 This is a problem of the machine running `local-cf`, not of the app \
                 or the buildpack (disk full, permissions?). If it persists, please report it.",
                path.display()
            ),
            Self::Container { source } => format!(
                "The staging container needs private mount (and, with --no-network, network) \
                 namespaces and a switch to the vcap user, and making them failed: {source}.\n\
                 Run as root (or with CAP_SYS_ADMIN and CAP_SETUID)."
            ),
            Self::InvalidBuilderFlag { flag } => {
                format!("flag provided but not defined or malformed: {flag}")
            }
            Self::NoBuildpackDetected => {
                "None of the buildpacks detected a compatible application".to_owned()
            }
            Self::MalformedBuildpack { key } => format!(
                "Failed to run all supply scripts: malformed buildpack does not contain a /bin \
                 dir: {key}"
            ),
            Self::NoSupplyScript { key } => format!(
                "Error: one of the buildpacks chosen to supply dependencies does not support \
                 multi-buildpack apps\n       buildpack without bin/supply: {key}"
            ),
            // The real builder's lines, word for word: operators grep for them.
            Self::SupplyFailed { failure, .. } => {
                format!("Failed to run all supply scripts: {failure}")
            }
            Self::FinalSupplyFailed { failure, .. } => {
                format!("Failed to compile droplet: Failed to run all supply scripts: {failure}")
            }
            Self::FinalizeFailed { failure, .. } => {
                format!("Failed to compile droplet: Failed to run finalize script: {failure}")
            }
            Self::CompileFailed { failure, .. } => {
                format!("Failed to compile droplet: {failure}")
            }
            Self::ReleaseFailed { key, failure } => format!(
                "Failed to build droplet release: {failure}\n       failed: bin/release of {key}"
            ),
            Self::ReleaseOutputInvalid { key, reason } => format!(
                "Failed to build droplet release: buildpack's release output invalid: {reason}\n       \
                 bin/release of {key} must print YAML like `default_process_types: {{web: COMMAND}}`"
            ),
            Self::ProcfileInvalid => {
                "Failed to read command from Procfile: invalid YAML".to_owned()
            }
            Self::LaunchYmlInvalid { path, reason } => {
                format!("Failed to read {}: {reason}", path.display())
            }
            Self::DropletUnreadable { path, source } => {
                format!("Cannot read the droplet {}: {source}.", path.display())
            }
            Self::DropletUnderHomeVcap { path } => format!(
                "The droplet {} lives under /home/vcap, which `launch` hides behind a fresh \
                 tmpfs. Move it elsewhere first.",
                path.display()
            ),
            Self::MountIsolation { source } => format!(
                "`launch` runs the app at /home/vcap in a private mount namespace, and setting \
                 it up failed: {source}.\n\
                 Run as root (or with CAP_SYS_ADMIN) on Linux."
            ),
            Self::DropletUnpack { path, source } => format!(
                "Cannot unpack the droplet {} into /home/vcap: {source}.\n\
                 Is it a droplet.tgz written by `local-cf stage`?",
                path.display()
            ),
            Self::StagingInfoInvalid { reason } => {
                format!("Invalid staging info - the droplet's staging_info.yml: {reason}")
            }
            Self::NoStartCommand => "No start command specified or detected in droplet.\n\
                 Give one after `--` (local-cf launch DROPLET -- COMMAND), or let the \
                 buildpack's bin/release or a Procfile name a web process."
                .to_owned(),
            Self::AppStart { source } => format!("Cannot start the app with bash: {source}."),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_failures_read_like_go_exec_errors() {
        assert_eq!(ScriptFailure::Exit(3).to_string(), "exit status 3");
        assert_eq!(
            ScriptFailure::Signal(libc::SIGKILL).to_string(),
            "signal: killed"
        );
        let start = ScriptFailure::Start {
            program: PathBuf::from("/bp/bin/supply"),
            source: io::Error::from_raw_os_error(libc::EACCES),
        };
        assert_eq!(
            start.to_string(),
            "fork/exec /bp/bin/supply: permission denied"
        );
    }

    #[test]
    fn builder_failures_keep_cf_exit_codes() {
        let failure = || ScriptFailure::Exit(1);
        let key = || "bp.zip".to_owned();
        assert_eq!(LifecycleError::NoBuildpackDetected.exit_code(), 222);
        assert_eq!(
            LifecycleError::CompileFailed {
                key: key(),
                failure: failure()
            }
            .exit_code(),
            223
        );
        assert_eq!(
            LifecycleError::ReleaseFailed {
                key: key(),
                failure: failure()
            }
            .exit_code(),
            224
        );
        assert_eq!(
            LifecycleError::SupplyFailed {
                key: key(),
                failure: failure()
            }
            .exit_code(),
            225
        );
        assert_eq!(
            LifecycleError::NoSupplyScript { key: key() }.exit_code(),
            225
        );
        assert_eq!(
            LifecycleError::FinalizeFailed {
                key: key(),
                failure: failure()
            }
            .exit_code(),
            223
        );
        assert_eq!(
            LifecycleError::FinalSupplyFailed {
                key: key(),
                failure: failure()
            }
            .exit_code(),
            223
        );
        assert_eq!(LifecycleError::ProcfileInvalid.exit_code(), 1);
    }
}
