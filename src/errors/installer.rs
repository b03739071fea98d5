//! The messages for obtaining and running the installer, and for downloads. Split from `errors/mod.rs` only to keep files short;
//! read them as part of it.

use super::{DISK_FULL, Message, REPORT, disk_fix};
use crate::io::download::DownloadError;
use crate::staging::installer::InstallerError;

pub(super) fn installer_message(error: &InstallerError) -> Message {
    match error {
        InstallerError::NotInManifest {
            wanted,
            stack,
            offered,
            elsewhere,
        } => {
            let mut body = vec![
                "DEPENDENCY MISSING IN MANIFEST:".to_string(),
                format!("{wanted} is not supported by this buildpack on {stack}."),
            ];
            if offered.is_empty() {
                body.push(format!("This buildpack has no installers for {stack}."));
            } else {
                body.push(format!(
                    "The installers this buildpack offers on {stack} are:"
                ));
                body.extend(offered.iter().map(|offer| format!("  - {offer}")));
            }
            let fix = match elsewhere.as_slice() {
                [] => "Ask for a Python version and installer from the list: the python spec in environment.yml, runtime.txt, and BP_CONDA_DISTRIBUTION / BP_CONDA_VERSION (cf set-env).".to_string(),
                stacks => {
                    body.push(format!(
                        "This buildpack has one for {wanted} on {}.",
                        stacks.join(", ")
                    ));
                    format!(
                        "Push the app to {} with `cf push APP -s {}`, or ask for a Python version and installer from the list (environment.yml, runtime.txt, BP_CONDA_DISTRIBUTION / BP_CONDA_VERSION).",
                        stacks.join(" or "),
                        stacks[stacks.len() - 1]
                    )
                }
            };
            Message::new(format!("No conda installer for {wanted}"), body, fix)
        }
        InstallerError::Download(download) => download_message(download),
        InstallerError::VendoredFileMissing { dependency, path } => Message::new(
            format!("The cached buildpack is missing {dependency}"),
            vec![format!(
                "Its manifest lists {} but the file is not there.",
                path.display()
            )],
            "Ask the platform operator to re-upload the cached buildpack zip.",
        ),
        InstallerError::VendoredFileCorrupt {
            dependency,
            expected,
            actual,
        } => Message::new(
            format!("The cached buildpack's copy of {dependency} is corrupt"),
            vec![format!(
                "dependency sha256 mismatch: expected sha256 {expected}, actual sha256 {actual}"
            )],
            "Ask the platform operator to re-upload the cached buildpack zip.",
        ),
        InstallerError::Failed {
            dependency,
            status,
            output,
            disk_full,
        } => {
            let mut body = vec![format!("The installer failed ({status}). Its output:")];
            body.extend(
                output
                    .iter()
                    .rev()
                    .take(30)
                    .rev()
                    .map(|line| format!("  {line}")),
            );
            if *disk_full {
                Message::new(
                    format!("The {dependency} installer ran out of disk"),
                    body,
                    DISK_FULL,
                )
            } else {
                Message::new(
                    format!("The {dependency} installer failed"),
                    body,
                    "If the output says the disk is full, raise the app's disk quota (cf push -k 4G); otherwise report it with this log.",
                )
            }
        }
        InstallerError::NoConda { dependency, path } => Message::new(
            format!("The {dependency} installer did not install conda"),
            vec![format!(
                "{} does not exist after the installer finished.",
                path.display()
            )],
            REPORT,
        ),
        InstallerError::Io { path, source } => Message::new(
            "The installer could not be prepared",
            vec![format!("{}: {source}", path.display())],
            disk_fix(source),
        ),
    }
}

pub(super) fn download_message(error: &DownloadError) -> Message {
    match error {
        DownloadError::ChecksumMismatch {
            url,
            algorithm,
            expected,
            actual,
        } => Message::new(
            "A download does not match its pinned checksum",
            vec![
                format!(
                    "dependency {algorithm} mismatch: expected {algorithm} {expected}, actual {algorithm} {actual}"
                ),
                format!("The file from {url} was deleted and nothing was installed from it."),
            ],
            "A proxy or mirror may be altering downloads. Check HTTPS_PROXY and the mirror, or use the cached buildpack, which carries verified installers.",
        ),
        DownloadError::HttpStatus { url, status: 407 } => Message::new(
            "The proxy asks for credentials",
            vec![format!(
                "{url} answered HTTP 407 (proxy authentication required)."
            )],
            "Put the credentials in the proxy URL (HTTPS_PROXY=http://user:password@proxy:port); they are redacted in this log.",
        ),
        DownloadError::HttpStatus { url, status } => Message::new(
            format!("A download failed with HTTP {status}"),
            vec![format!("{url} answered HTTP {status}.")],
            if *status >= 500 {
                "The server failed several times in a row. Push again later, or use the cached buildpack.".to_string()
            } else {
                "The file is not where the manifest says. Ask the platform operator for a current buildpack, or use the cached buildpack.".to_string()
            },
        ),
        DownloadError::Unreachable { url, reason } => Message::new(
            "The network is unreachable from staging",
            vec![format!("Could not reach {url}: {reason}")],
            "This foundation may have no internet access. Ask the operator to install the cached conda buildpack (conda_buildpack-cached-*.zip), vendor the app's packages with `conda-buildpack vendor`, or set HTTPS_PROXY.",
        ),
        DownloadError::Transfer { url, reason } => Message::new(
            "A download was interrupted",
            vec![format!("{url}: {reason}")],
            "The connection failed repeatedly. Push again, set BP_DOWNLOAD_TIMEOUT (seconds) for a slow link, or use the cached buildpack.",
        ),
        DownloadError::RedirectLoop { url } => Message::new(
            "A download redirects in a loop",
            vec![format!(
                "{url} kept redirecting (more than 10 times) and never answered with the file."
            )],
            "A server or proxy on the way is misconfigured. Ask the platform operator to check the proxy and mirror, or use the cached buildpack.",
        ),
        DownloadError::Write { path, source } => Message::new(
            "A download could not be saved",
            vec![format!("{}: {source}", path.display())],
            disk_fix(source),
        ),
    }
}
