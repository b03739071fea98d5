//! Running buildpack scripts the way the staging container runs them: a clean environment,
//! the staging user's home as working directory, no stdin, and their output going straight
//! into the staging log as it is written.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use super::errors::{LifecycleError, ScriptFailure};
use super::namespace;

pub(crate) struct ScriptRunner {
    env: Vec<(String, String)>,
    working_dir: PathBuf,
    isolate_network: bool,
}

impl ScriptRunner {
    /// With `isolate_network`, first proves a network namespace can be made, so that a
    /// missing privilege fails the staging up front with a clear reason instead of
    /// surfacing as an odd failure of the first buildpack script.
    pub(crate) fn new(
        env: Vec<(String, String)>,
        working_dir: PathBuf,
        isolate_network: bool,
    ) -> Result<Self, LifecycleError> {
        if isolate_network {
            probe_network_isolation()?;
        }
        Ok(Self {
            env,
            working_dir,
            isolate_network,
        })
    }

    fn command(&self, program: &Path, args: &[&OsStr]) -> Command {
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .current_dir(&self.working_dir)
            .stdin(Stdio::null());
        if self.isolate_network {
            namespace::isolate_network_on_exec(&mut command);
        }
        command
    }

    /// Runs a script whose stdout and stderr both go to the staging log, merged in the
    /// order they are written: the child writes to our stdout descriptor itself, so nothing
    /// is buffered here and a buildpack's progress shows as it happens.
    pub(crate) fn run(&self, program: &Path, args: &[&OsStr]) -> Result<(), ScriptFailure> {
        let start_failure = |source| ScriptFailure::Start {
            program: program.to_path_buf(),
            source,
        };
        let mut command = self.command(program, args);
        command.stdout(log_stdio().map_err(start_failure)?);
        command.stderr(log_stdio().map_err(start_failure)?);
        flush_log();
        let status = command.status().map_err(start_failure)?;
        check(status)
    }

    /// Runs a script whose stdout is data for the builder (`bin/detect` prints the name,
    /// `bin/release` the YAML); its stderr still goes to the staging log.
    pub(crate) fn run_capturing_stdout(
        &self,
        program: &Path,
        args: &[&OsStr],
    ) -> Result<String, ScriptFailure> {
        let start_failure = |source| ScriptFailure::Start {
            program: program.to_path_buf(),
            source,
        };
        let mut command = self.command(program, args);
        command.stdout(Stdio::piped());
        command.stderr(log_stdio().map_err(start_failure)?);
        flush_log();
        let mut child = command.spawn().map_err(start_failure)?;
        let mut captured = Vec::new();
        if let Some(mut stdout) = child.stdout.take() {
            // A read error only truncates what we parse; the exit status still decides.
            let _ = stdout.read_to_end(&mut captured);
        }
        let status = child.wait().map_err(start_failure)?;
        check(status)?;
        Ok(String::from_utf8_lossy(&captured).into_owned())
    }
}

fn log_stdio() -> io::Result<Stdio> {
    Ok(Stdio::from(io::stdout().as_fd().try_clone_to_owned()?))
}

/// Our own lines must be out before the child writes to the same descriptor.
fn flush_log() {
    let _ = io::stdout().flush();
}

fn check(status: ExitStatus) -> Result<(), ScriptFailure> {
    match (status.code(), status.signal()) {
        (Some(0), _) => Ok(()),
        (Some(code), _) => Err(ScriptFailure::Exit(code)),
        (None, Some(signal)) => Err(ScriptFailure::Signal(signal)),
        (None, None) => Err(ScriptFailure::Exit(-1)),
    }
}

fn probe_network_isolation() -> Result<(), LifecycleError> {
    let mut probe = Command::new("/proc/self/exe");
    probe
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    namespace::isolate_network_on_exec(&mut probe);
    probe
        .status()
        .map(drop)
        .map_err(|source| LifecycleError::NetworkIsolation { source })
}
