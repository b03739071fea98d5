//! Runs the two programs the buildpack must shell out to (the installer and conda) with their
//! output cleaned for the log, a heartbeat while they work, their peak memory measured, and
//! their own words kept for the error message when they fail.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::staging::log;
use crate::staging::log::filter::{self, TerminalLines};
use crate::staging::log::heartbeat::Heartbeat;

/// Lines kept per stream for the error message: enough for conda's longest errors (a
/// `PackagesNotFoundError` lists every spec and channel), bounded so a chatty tool cannot
/// exhaust the buildpack's memory.
const KEPT_LINES: usize = 400;

pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<String>,
    pub(crate) stderr: Vec<String>,
    pub(crate) peak_memory_kib: Option<u64>,
    pub(crate) duration: Duration,
}

impl Finished {
    /// The signal that ended the process, if one did (SIGKILL: most likely the OOM killer).
    pub(crate) fn signal(&self) -> Option<i32> {
        self.status.signal()
    }
}

/// Which cleaned lines reach the log while the program runs.
#[derive(Clone, Copy)]
pub(crate) struct Echo {
    /// Lines for which this returns false are not echoed (they are still kept).
    pub(crate) keep: fn(&str) -> bool,
    /// Whether stderr is echoed as it comes. conda and the installer write their errors
    /// there; kept back, they appear once, in the error message that explains them.
    pub(crate) live_stderr: bool,
}

/// Runs `command` to completion. With `BP_DEBUG` the command line and every cleaned line are
/// logged; otherwise only lines `echo` keeps that are not progress noise.
pub(crate) fn run(command: &mut Command, activity: &str, echo: Echo) -> io::Result<Finished> {
    log::debug(&format!("Running {}", describe(command)));
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let heartbeat = Heartbeat::start(activity);
    let stdout = child.stdout.take().map(|pipe| relay(pipe, echo.keep));
    let quiet = |_: &str| false;
    let stderr_keep = if echo.live_stderr { echo.keep } else { quiet };
    let stderr = child.stderr.take().map(|pipe| relay(pipe, stderr_keep));
    let (status, peak_memory_kib) = wait_measuring(&mut child)?;
    drop(heartbeat);
    let collect = |reader: Option<thread::JoinHandle<Vec<String>>>| {
        reader
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default()
    };
    Ok(Finished {
        status,
        stdout: collect(stdout),
        stderr: collect(stderr),
        peak_memory_kib,
        duration: started.elapsed(),
    })
}

/// `exit code 1`, `signal 9 (SIGKILL)`: how a process ended, in words.
pub(crate) fn describe_status(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(libc::SIGKILL)) => "signal 9 (SIGKILL)".to_string(),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => status.to_string(),
    }
}

/// A command as a person would type it, for debug lines and error messages.
pub(crate) fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| {
            let text = part.to_string_lossy();
            if text.contains(' ') {
                format!("'{text}'")
            } else {
                text.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn relay(
    mut pipe: impl Read + Send + 'static,
    keep: fn(&str) -> bool,
) -> thread::JoinHandle<Vec<String>> {
    thread::spawn(move || {
        let kept = Arc::new(Mutex::new(VecDeque::<String>::new()));
        let mut terminal = TerminalLines::new();
        let mut buffer = [0_u8; 16 * 1024];
        let mut handle = |line: String| {
            let line = filter::tidy(&line);
            let noise = filter::is_progress_noise(&line);
            if log::debug_enabled() {
                if !line.trim().is_empty() {
                    log::detail(&line);
                }
            } else if !noise && keep(&line) {
                log::detail(line.trim_end());
            }
            if !noise {
                let mut kept = kept
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if kept.len() == KEPT_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        };
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => terminal
                    .feed(&buffer[..read])
                    .into_iter()
                    .for_each(&mut handle),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        if let Some(last) = terminal.finish() {
            handle(last);
        }
        let kept = kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        kept.iter().cloned().collect()
    })
}

/// Waits with `wait4` so the child's peak resident memory (its `ru_maxrss`, which includes
/// its waited-for descendants) comes back with its status.
fn wait_measuring(child: &mut Child) -> io::Result<(ExitStatus, Option<u64>)> {
    let pid = libc::pid_t::try_from(child.id()).map_err(io::Error::other)?;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data that wait4 fills in; zeroed is a valid value for it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own child, not yet reaped (std's Child never waited on it), and
        // both out-pointers point to live, writable values.
        let result = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) };
        if result == pid {
            break;
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
    let peak = u64::try_from(usage.ru_maxrss).ok().filter(|&kib| kib > 0);
    Ok((ExitStatus::from_raw(status), peak))
}

/// Peak resident memory of this process itself so far, in KiB.
pub(crate) fn own_peak_memory_kib() -> Option<u64> {
    // SAFETY: as above, getrusage only writes into the zeroed struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: RUSAGE_SELF with a valid out-pointer.
    let result = unsafe { libc::getrusage(libc::RUSAGE_SELF, &raw mut usage) };
    (result == 0)
        .then(|| u64::try_from(usage.ru_maxrss).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVERYTHING: Echo = Echo {
        keep: |_| true,
        live_stderr: true,
    };

    #[test]
    fn output_is_cleaned_and_the_status_and_memory_come_back() {
        let mut command = Command::new("sh");
        command.args([
            "-c",
            "printf 'a | 1 MB | #  |  10%%\\ra | 1 MB | ## | 100%%\\nSolving: /\\b-\\bdone\\n'; \
             printf 'oops\\n' >&2; exit 3",
        ]);
        let finished = run(&mut command, "testing", EVERYTHING).unwrap();
        assert_eq!(finished.status.code(), Some(3));
        assert_eq!(finished.stdout, vec!["Solving: done"]);
        assert_eq!(finished.stderr, vec!["oops"]);
        assert!(finished.peak_memory_kib.unwrap_or(0) > 0);
    }

    #[test]
    fn a_killed_process_reports_its_signal() {
        let mut command = Command::new("sh");
        command.args(["-c", "kill -9 $$"]);
        let finished = run(&mut command, "testing", EVERYTHING).unwrap();
        assert_eq!(finished.signal(), Some(libc::SIGKILL));
    }
}
