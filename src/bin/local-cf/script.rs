//! Running buildpack scripts the way the builder runs them inside the staging container: with
//! the builder's own environment and working directory (which Diego set), no stdin, and their
//! output going straight into the staging log as it is written.

use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

use super::errors::ScriptFailure;

pub(crate) struct ScriptRunner;

impl ScriptRunner {
    pub(crate) fn new() -> Self {
        Self
    }

    fn command(program: &Path, args: &[&OsStr]) -> Command {
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::null());
        command
    }

    /// Runs a script whose stdout and stderr go to the builder's own (both are the staging
    /// log): the child writes to our descriptors itself, so nothing is buffered here and a
    /// buildpack's progress shows as it happens.
    pub(crate) fn run(&self, program: &Path, args: &[&OsStr]) -> Result<(), ScriptFailure> {
        let start_failure = |source| ScriptFailure::Start {
            program: program.to_path_buf(),
            source,
        };
        let mut command = Self::command(program, args);
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
        let mut command = Self::command(program, args);
        command.stdout(Stdio::piped());
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
