//! What conda's output says went wrong, read once into a record: the kind of failure, conda's
//! own error text, and the lists it names (missing packages, channels searched, channels gated
//! by Terms of Service, what pip could not find). The error messages render this record; they
//! never read conda's output themselves.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// `PackagesNotFoundInChannelsError` (conda 26), `PackagesNotFoundError` (older): a
    /// name no channel has.
    PackagesNotFound,
    /// `PluginError: ... Invalid spec` (conda 26 reading environment.yml),
    /// `EnvironmentFileInvalid`, `InvalidMatchSpec`: a spec conda cannot parse.
    InvalidSpec,
    /// `NoChannelsConfiguredError`: conda 26 adds no `defaults` by itself.
    NoChannels,
    /// `UnavailableInvalidChannel ... for channel nodefaults`: conda 26.7.1 reads `nodefaults`
    /// in an environment file as a channel to download (measured).
    NodefaultsAsChannel,
    /// `CondaToSNonInteractiveError`, `CondaToSRejectedError`: Anaconda's Terms of Service
    /// plugin (Miniconda >= 25.5) stops at `defaults` until the terms are accepted.
    TermsOfService,
    /// `ResolvePackageNotFound`, `UnsatisfiableError`: the specs cannot be met together.
    Unsatisfiable,
    /// `CondaHTTPError: HTTP 401` or `403`: a channel refused the credentials (or wants some).
    CredentialsRefused,
    /// `CondaSSLError`: a channel's certificate is signed by a CA conda does not trust.
    Certificate,
    /// `CondaHTTPError` and friends: a channel could not be reached.
    ChannelUnreachable,
    /// conda ran pip for the `pip:` entries and pip failed.
    Pip,
    /// pip installed from `vendor/pip/` alone and a project it needs is not there.
    PipNotVendored,
    /// Out of memory: SIGKILL or exit 137 (the container's out-of-memory killer), Python's
    /// `MemoryError`, or `std::bad_alloc` from a compiled solver.
    OutOfMemory,
    /// `[Errno 28] No space left on device`: the staging container's disk quota.
    DiskFull,
    #[default]
    Other,
}

/// A failed conda run, as its output tells it.
#[derive(Debug, Clone, Default)]
pub(crate) struct CondaFailure {
    pub(crate) kind: FailureKind,
    /// conda's error text, from its first error line, at most 60 lines.
    pub(crate) output: Vec<String>,
    /// What no channel has (`The following packages are not available`), sorted.
    pub(crate) missing: Vec<String>,
    /// The channels conda lists as searched (`Current channels:`).
    pub(crate) searched: Vec<String>,
    /// The channels whose Terms of Service were not accepted (`... before proceeding:`).
    pub(crate) gated: Vec<String>,
    /// What pip found no distribution for (`No matching distribution found for X`).
    pub(crate) pip_missing: Vec<String>,
}

/// Reads a failed run's output. `killed`: the out-of-memory killer's SIGKILL reached it;
/// `pip_offline`: pip could install only from `vendor/pip`.
pub(crate) fn read(
    stderr: &[String],
    stdout: &[String],
    killed: bool,
    pip_offline: bool,
) -> CondaFailure {
    let output = error_text(stderr, stdout);
    let pip_missing = crate::staging::pip::missing_distributions(output.iter().map(String::as_str));
    let kind = match classify(&output) {
        _ if killed => FailureKind::OutOfMemory,
        FailureKind::Pip if pip_offline && !pip_missing.is_empty() => FailureKind::PipNotVendored,
        kind => kind,
    };
    let mut missing = listed_after(&output, "packages are not available");
    missing.sort();
    CondaFailure {
        kind,
        missing,
        searched: listed_after(&output, "Current channels:"),
        gated: listed_after(&output, "before proceeding:"),
        pip_missing,
        output,
    }
}

/// The part of conda's output that explains a failure: from its first error line on (stderr
/// first, where conda writes errors), at most 60 lines.
fn error_text(stderr: &[String], stdout: &[String]) -> Vec<String> {
    let is_marker = |line: &String| {
        line.contains("Error")
            || line.contains("ResolvePackageNotFound")
            || line.contains("Pip failed")
            || line.contains("CondaEnvException")
            || line.starts_with("ERROR")
    };
    let source = if stderr.iter().any(|line| !line.trim().is_empty()) {
        stderr
    } else {
        stdout
    };
    let start = source.iter().position(is_marker).unwrap_or(0);
    source[start..].iter().take(60).cloned().collect()
}

fn classify(output: &[String]) -> FailureKind {
    let text = output.join("\n");
    if mentions_full_disk(output) {
        FailureKind::DiskFull
    } else if text.contains("MemoryError")
        || text.contains("std::bad_alloc")
        || text.contains("Cannot allocate memory")
        || text.contains("memory allocation of")
    {
        FailureKind::OutOfMemory
    } else if text.contains("PackagesNotFoundError")
        || text.contains("PackagesNotFoundInChannelsError")
        || text.contains("Many packages are unavailable at once")
    {
        FailureKind::PackagesNotFound
    } else if text.contains("Invalid spec")
        || text.contains("InvalidMatchSpec")
        || text.contains("EnvironmentFileInvalid")
    {
        FailureKind::InvalidSpec
    } else if text.contains("NoChannelsConfiguredError") {
        FailureKind::NoChannels
    } else if text.contains("CondaToSNonInteractiveError") || text.contains("CondaToSRejectedError")
    {
        FailureKind::TermsOfService
    } else if text.contains("ResolvePackageNotFound")
        || text.contains("UnsatisfiableError")
        || text.contains("LibMambaUnsatisfiableError")
    {
        FailureKind::Unsatisfiable
    } else if text.contains("for channel nodefaults") {
        FailureKind::NodefaultsAsChannel
    } else if text.contains("HTTP 401") || text.contains("HTTP 403") {
        FailureKind::CredentialsRefused
    } else if text.contains("CondaSSLError") || text.contains("CERTIFICATE_VERIFY_FAILED") {
        FailureKind::Certificate
    } else if text.contains("CondaHTTPError")
        || text.contains("UnavailableInvalidChannel")
        || text.contains("CondaSSLError")
        || text.contains("Could not connect")
        || text.contains("ConnectionError")
    {
        FailureKind::ChannelUnreachable
    } else if text.contains("Pip failed") || text.contains("pip returned an error") {
        FailureKind::Pip
    } else {
        FailureKind::Other
    }
}

/// Whether a tool's output says the disk filled up (Python's and the C library's words).
pub(crate) fn mentions_full_disk(output: &[String]) -> bool {
    output.iter().any(|line| {
        line.contains("No space left on device")
            || line.contains("[Errno 28]")
            || line.contains("Disk quota exceeded")
    })
}

/// The `  - item` lines that follow the line containing `header` in conda's output.
fn listed_after(output: &[String], header: &str) -> Vec<String> {
    output
        .iter()
        .skip_while(|line| !line.contains(header))
        .skip(1)
        .skip_while(|line| line.trim().is_empty())
        .map_while(|line| line.trim_start().strip_prefix("- "))
        .map(|item| item.trim().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conda_26_errors_are_classified_by_their_names() {
        let lines = |text: &str| text.lines().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            classify(&lines(
                "PackagesNotFoundInChannelsError: The following packages are not available from current channels:\n  - foo"
            )),
            FailureKind::PackagesNotFound
        );
        assert_eq!(
            classify(&lines(
                "PluginError: Failed to parse environment specification from file: Invalid spec 'numpy>=<1': Invalid version '>=<1': invalid operator"
            )),
            FailureKind::InvalidSpec
        );
        assert_eq!(
            classify(&lines(
                "NoChannelsConfiguredError: No channels are configured."
            )),
            FailureKind::NoChannels
        );
    }

    #[test]
    fn conda_errors_are_classified_by_their_names() {
        let lines = |text: &str| text.lines().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            classify(&lines(
                "PackagesNotFoundError: The following packages are not available"
            )),
            FailureKind::PackagesNotFound
        );
        assert_eq!(
            classify(&lines("ResolvePackageNotFound:\n  - numpy=99")),
            FailureKind::Unsatisfiable
        );
        assert_eq!(
            classify(&lines("CondaHTTPError: HTTP 000 CONNECTION FAILED")),
            FailureKind::ChannelUnreachable
        );
        assert_eq!(
            classify(&lines(
                "CondaHTTPError: HTTP 401 Unauthorized for url <http://127.0.0.1:1/c/noarch/repodata.json>"
            )),
            FailureKind::CredentialsRefused
        );
        assert_eq!(
            classify(&lines(
                "CondaSSLError: Encountered an SSL error. Most likely a certificate verification issue."
            )),
            FailureKind::Certificate
        );
        assert_eq!(
            classify(&lines("CondaEnvException: Pip failed")),
            FailureKind::Pip
        );
        assert_eq!(
            classify(&lines(
                "CondaError: Failed to write to /x/pkgs/numpy\n  OSError: [Errno 28] No space left on device"
            )),
            FailureKind::DiskFull
        );
        assert_eq!(classify(&lines("something odd")), FailureKind::Other);
    }

    #[test]
    fn the_error_text_starts_at_condas_error() {
        let stderr = vec![
            "Collecting package metadata (repodata.json): done".to_string(),
            "Solving environment: failed".to_string(),
            String::new(),
            "ResolvePackageNotFound:".to_string(),
            "  - numpy=99".to_string(),
        ];
        assert_eq!(
            error_text(&stderr, &[]),
            vec!["ResolvePackageNotFound:", "  - numpy=99"]
        );
    }

    #[test]
    fn the_lists_conda_names_are_read_once() {
        let stderr: Vec<String> = [
            "PackagesNotFoundInChannelsError: The following packages are not available from current channels:",
            "",
            "  - numpy=99",
            "  - foo",
            "",
            "Current channels:",
            "",
            "  - http://127.0.0.1:1/conda-forge/linux-64",
            "",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        let failure = read(&stderr, &[], false, false);
        assert_eq!(failure.kind, FailureKind::PackagesNotFound);
        assert_eq!(failure.missing, ["foo", "numpy=99"]);
        assert_eq!(
            failure.searched,
            ["http://127.0.0.1:1/conda-forge/linux-64"]
        );
        assert_eq!(
            read(&stderr, &[], true, false).kind,
            FailureKind::OutOfMemory
        );
        let pip = vec![
            "CondaEnvException: Pip failed".to_string(),
            "ERROR: No matching distribution found for tinywheel==9.9".to_string(),
        ];
        let failure = read(&pip, &[], false, true);
        assert_eq!(failure.kind, FailureKind::PipNotVendored);
        assert_eq!(failure.pip_missing, ["tinywheel==9.9"]);
    }
}
