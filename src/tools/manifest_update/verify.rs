//! Pinning only what was verified: each proposed installer is downloaded (streamed, through
//! the download module's client) and its sha256 compared with the one its publisher states.
//! Downloads go to `--cache-dir` or a temporary directory, never into the repository.

use std::fs;
use std::path::{Path, PathBuf};

use super::MiniforgeError;
use super::{Release, Stated, UpdateError, io_error, miniforge};
use crate::io::digest;
use crate::io::download::{self, DownloadError, Progress};
use crate::staging::log::redact_url;

/// A proposed installer that was not pinned.
#[derive(Debug)]
pub(crate) struct Failure {
    /// `miniforge3 25.11.0`
    pub(crate) release: String,
    pub(crate) error: VerifyError,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum VerifyError {
    #[error("{0}")]
    Stated(MiniforgeError),
    #[error("{0}")]
    Download(DownloadError),
}

/// The stated sha256 of `release` and who stated it, once the downloaded bytes agree.
pub(crate) fn verify(
    release: &Release,
    downloads: &Downloads,
    progress: Progress,
) -> Result<(String, String), VerifyError> {
    let (sha256, stated_by) = match &release.stated {
        Stated::Inline { sha256, page } => (sha256.clone(), redact_url(page)),
        Stated::Asset { url } => (
            miniforge::stated_sha256(url).map_err(VerifyError::Stated)?,
            redact_url(url),
        ),
    };
    let target = downloads.dir.join(&sha256).join(&release.file_name);
    let cached =
        target.is_file() && digest::sha256_file(&target).is_ok_and(|actual| actual == sha256);
    if cached {
        eprintln!(
            "Using {} from {}",
            release.file_name,
            downloads.dir.display()
        );
    } else {
        eprintln!("Download [{}]", redact_url(&release.url));
        download::fetch_verified(&release.url, &sha256, &target, progress)
            .map_err(VerifyError::Download)?;
    }
    Ok((sha256, stated_by))
}

/// Credentials of a mirror belong to the operator's pipeline, never in a buildpack zip.
pub(crate) fn without_credentials(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// Where installers are downloaded to be checked: `--cache-dir`, kept, or a temporary
/// directory removed at the end. Never the repository.
pub(crate) struct Downloads {
    dir: PathBuf,
    temporary: bool,
}

impl Downloads {
    pub(crate) fn new(cache_dir: Option<&Path>) -> Result<Self, UpdateError> {
        let (dir, temporary) = match cache_dir {
            Some(dir) => (dir.to_path_buf(), false),
            None => (
                std::env::temp_dir().join(format!(
                    "conda-buildpack-manifest-update-{}",
                    std::process::id()
                )),
                true,
            ),
        };
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        Ok(Self { dir, temporary })
    }
}

impl Drop for Downloads {
    fn drop(&mut self) {
        if self.temporary {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_a_pinned_uri() {
        assert_eq!(
            without_credentials("https://bot:s3cret@mirror.example/m/x.sh"),
            "https://mirror.example/m/x.sh"
        );
        assert_eq!(without_credentials("https://h/x.sh"), "https://h/x.sh");
    }
}
