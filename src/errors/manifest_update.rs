//! The messages of `conda-buildpack manifest update`. Split from `errors/mod.rs` only to keep files short;
//! read them as part of it.

use super::{Message, REPORT};
use crate::io::download::DownloadError;
use crate::tools::manifest_update::{
    Failure, MinicondaError, MiniforgeError, UpdateError, VerifyError,
};

/// `conda-buildpack manifest update`: an operator's pipeline reads these, not a staging log.
pub(crate) fn manifest_update_message(error: &UpdateError) -> Message {
    const UNTOUCHED: &str = "The manifest was not changed.";
    let publisher = |what: &str, source: &DownloadError| {
        let (cause, fix) = match source {
            DownloadError::HttpStatus {
                status: 403 | 429, ..
            } => (
                format!("{source} (a rate limit, most likely)."),
                "Wait for the limit to reset and run again, or point the flag at a mirror.",
            ),
            _ => (
                format!("{source}."),
                "Check the network, HTTPS_PROXY and the URL (--miniforge-releases, --miniconda-index), then run again.",
            ),
        };
        Message::new(
            format!("{what} could not be read"),
            vec![cause, UNTOUCHED.into()],
            fix,
        )
    };
    match error {
        UpdateError::Manifest(manifest) => Message::new(
            "The manifest cannot be read",
            vec![manifest.to_string(), UNTOUCHED.into()],
            "Fix the file (or --manifest PATH) so that `conda-buildpack package` accepts it, then run again.",
        ),
        UpdateError::Miniforge(MiniforgeError::Fetch(source)) => {
            publisher("Miniforge's release list", source)
        }
        UpdateError::Miniconda(MinicondaError::Fetch(source)) => {
            publisher("Miniconda's index page", source)
        }
        UpdateError::Miniforge(format) => Message::new(
            "Miniforge's release list is not what GitHub answers",
            vec![format.to_string(), UNTOUCHED.into()],
            "Check --miniforge-releases: it must answer as https://api.github.com/repos/conda-forge/miniforge/releases does.",
        ),
        UpdateError::Miniconda(format) => Message::new(
            "Miniconda's index page is not what Anaconda serves",
            vec![format.to_string(), UNTOUCHED.into()],
            "Check --miniconda-index: it must answer as https://repo.anaconda.com/miniconda/ does.",
        ),
        UpdateError::Edit(edit) => Message::new(
            "The manifest's layout cannot be edited safely",
            vec![edit.to_string(), UNTOUCHED.into()],
            "Write the list as block entries (`  - name: ...` on their own lines), as the repository's manifest.yml does, or make the change by hand.",
        ),
        UpdateError::Default { given, reason } => Message::new(
            format!("--default {given} cannot be applied"),
            vec![reason.clone(), UNTOUCHED.into()],
            "Name a default_versions line and a version (or version line like 25.11.x) that the updated manifest holds.",
        ),
        UpdateError::Invalid { reason } => Message::new(
            "The updated manifest would not be valid",
            vec![reason.clone(), UNTOUCHED.into()],
            REPORT,
        ),
        UpdateError::Io { path, source } => Message::new(
            "The manifest could not be written",
            vec![format!("{}: {source}", path.display())],
            "Check that the directory is writable and has space, then run again.",
        ),
        UpdateError::Unverified { failures } => {
            let mut body = vec!["Nothing was written for these installers:".to_string()];
            for Failure { release, error } in failures {
                body.push(match error {
                    VerifyError::Download(DownloadError::ChecksumMismatch {
                        url,
                        expected,
                        actual,
                        ..
                    }) => format!(
                        "  {release}: the publisher states sha256 {expected}, but {url} downloaded with sha256 {actual}"
                    ),
                    other => format!("  {release}: {other}"),
                });
            }
            Message::new(
                format!(
                    "{} proposed installers could not be verified",
                    failures.len()
                ),
                body,
                "A checksum is pinned only when the downloaded bytes agree with the publisher's. Check the proxy or mirror and run again; if they still disagree, tell the publisher. Every other entry was handled as shown.",
            )
        }
    }
}
