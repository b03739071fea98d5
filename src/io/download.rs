//! Fetching a pinned file: streamed to disk with its sha256 computed in the same pass, retried
//! with backoff on network errors and 5xx answers, through the operator's proxy
//! (`HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY`, which reqwest reads), and never with a credential in
//! the log. A file whose checksum does not match is deleted before anyone can use it.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::io::digest::hex;
use crate::staging::log;

/// Attempts per download: the first try and three retries.
const ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// A connection or a read that stalls this long fails the attempt; `BP_DOWNLOAD_TIMEOUT`
/// (seconds) changes it for slow links.
const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub(crate) enum DownloadError {
    #[error(
        "dependency {algorithm} mismatch: expected {algorithm} {expected}, actual {algorithm} {actual}"
    )]
    ChecksumMismatch {
        url: String,
        algorithm: &'static str,
        expected: String,
        actual: String,
    },
    #[error("{url} answered HTTP {status}")]
    HttpStatus { url: String, status: u16 },
    #[error("could not reach {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the download of {url} failed: {reason}")]
    Transfer { url: String, reason: String },
    #[error("{url} redirects in a loop")]
    RedirectLoop { url: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
}

impl DownloadError {
    /// Whether another attempt may succeed.
    fn is_transient(&self) -> bool {
        match self {
            Self::HttpStatus { status, .. } => *status >= 500 || *status == 429,
            Self::Unreachable { .. } | Self::Transfer { .. } => true,
            // A loop answers the same way every time; retrying it only delays the message.
            Self::ChecksumMismatch { .. } | Self::Write { .. } | Self::RedirectLoop { .. } => false,
        }
    }
}

/// How a download shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Staging: the step line says what is fetched; nothing more.
    Quiet,
    /// `package` on a terminal: an indicatif bar.
    Bar,
    /// `package` without a terminal: a plain line every few seconds.
    Lines,
}

pub(crate) struct Downloaded {
    pub(crate) bytes: u64,
    pub(crate) duration: Duration,
}

fn stall_timeout() -> Duration {
    std::env::var("BP_DOWNLOAD_TIMEOUT")
        .ok()
        .and_then(|value| value.trim().parse::<u64>().ok())
        .filter(|&seconds| seconds > 0)
        .map_or(DEFAULT_STALL_TIMEOUT, Duration::from_secs)
}

/// The checksum a download must have: the manifest pins sha256; an `@EXPLICIT` spec line may
/// carry only an md5.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Checksum<'a> {
    Sha256(&'a str),
    Md5(&'a str),
    /// An `@EXPLICIT` line written without `--md5`: nothing to check against, as conda itself
    /// installs it.
    Unchecked,
}

/// Downloads `url` to `target`, verifying `sha256`. The file appears at `target` only once
/// verified; a partial or mismatched download is removed.
pub(crate) fn fetch_verified(
    url: &str,
    sha256: &str,
    target: &Path,
    progress: Progress,
) -> Result<Downloaded, DownloadError> {
    fetch_checked(url, Checksum::Sha256(sha256), target, progress)
}

/// [`fetch_verified`] for any [`Checksum`].
pub(crate) fn fetch_checked(
    url: &str,
    checksum: Checksum<'_>,
    target: &Path,
    progress: Progress,
) -> Result<Downloaded, DownloadError> {
    let client = client(url)?;
    with_retries(|| fetch_once(&client, url, checksum, target, progress))
}

/// The one HTTP client every download uses: the stall timeout, our user agent, the
/// operator's proxy settings, which reqwest reads from the environment, and the platform's
/// trusted CAs.
fn client(url: &str) -> Result<reqwest::blocking::Client, DownloadError> {
    let mut builder = reqwest::blocking::Client::builder()
        .connect_timeout(stall_timeout())
        .timeout(stall_timeout())
        .user_agent(concat!("conda-buildpack/", env!("CARGO_PKG_VERSION")));
    // The operator's CAs (CF_SYSTEM_CERT_PATH), beside the system store reqwest reads: an
    // installer mirror signed by the company's CA needs no setting.
    for pem in crate::staging::certs::platform_certificates() {
        if let Ok(certificate) = reqwest::Certificate::from_pem(pem.as_bytes()) {
            builder = builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(|error| DownloadError::Unreachable {
        url: log::redact_url(url),
        reason: error.to_string(),
    })
}

/// Runs `attempt_once` until it succeeds, fails for good, or the attempts run out, with a
/// doubling pause between attempts.
fn with_retries<T>(
    mut attempt_once: impl FnMut() -> Result<T, DownloadError>,
) -> Result<T, DownloadError> {
    let mut backoff = FIRST_BACKOFF;
    let mut attempt = 1;
    loop {
        match attempt_once() {
            Ok(value) => return Ok(value),
            Err(error) if error.is_transient() && attempt < ATTEMPTS => {
                log::detail(&format!(
                    "{error}; retrying in {} (attempt {} of {ATTEMPTS})",
                    log::format_duration(backoff),
                    attempt + 1
                ));
                std::thread::sleep(backoff);
                backoff *= 2;
                attempt += 1;
            }
            Err(error) => return Err(error),
        }
    }
}

/// A page of metadata (a release list, an index page) and its `Link` header, which a paged
/// API uses to name the next page.
pub(crate) struct Page {
    pub(crate) text: String,
    pub(crate) link: Option<String>,
}

/// A metadata page is small; anything larger is not the page we asked for.
const MAX_PAGE_BYTES: u64 = 32 * 1024 * 1024;

/// Fetches a metadata page into memory, with the same client, proxies, timeouts, retries and
/// redaction as an installer download. `accept` is the media type asked for.
pub(crate) fn fetch_page(url: &str, accept: &str) -> Result<Page, DownloadError> {
    let client = client(url)?;
    with_retries(|| {
        let shown = log::redact_url(url);
        let response = send(
            client.get(url).header(reqwest::header::ACCEPT, accept),
            &shown,
        )?;
        let link = response
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let mut bytes = Vec::new();
        response
            .take(MAX_PAGE_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|error| DownloadError::Transfer {
                url: shown.clone(),
                reason: broken_body(&error, bytes.len() as u64, None),
            })?;
        Ok(Page {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            link,
        })
    })
}

fn fetch_once(
    client: &reqwest::blocking::Client,
    url: &str,
    checksum: Checksum<'_>,
    target: &Path,
    progress: Progress,
) -> Result<Downloaded, DownloadError> {
    let shown = log::redact_url(url);
    let started = Instant::now();
    let mut response = send(client.get(url), &shown)?;
    let expected_length = response.content_length();
    let partial = partial_path(target);
    let write_error = |source| DownloadError::Write {
        path: partial.clone(),
        source,
    };
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(write_error)?;
    }
    let result = (|| {
        let mut file = fs::File::create(&partial).map_err(write_error)?;
        let mut hasher = Hasher::new(checksum);
        let mut buffer = vec![0_u8; 256 * 1024];
        let mut received: u64 = 0;
        let mut meter = Meter::new(progress, &shown, expected_length);
        loop {
            let read = match response.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    return Err(DownloadError::Transfer {
                        url: shown.clone(),
                        reason: broken_body(&error, received, expected_length),
                    });
                }
            };
            hasher.update(&buffer[..read]);
            file.write_all(&buffer[..read]).map_err(write_error)?;
            received += read as u64;
            meter.update(received);
        }
        meter.finish(received);
        if let Some(expected) = expected_length {
            if received != expected {
                return Err(DownloadError::Transfer {
                    url: shown.clone(),
                    reason: format!("the body ended after {received} of {expected} bytes"),
                });
            }
        }
        hasher.verify(&shown)?;
        file.sync_all().map_err(write_error)?;
        fs::rename(&partial, target).map_err(|source| DownloadError::Write {
            path: target.to_path_buf(),
            source,
        })?;
        Ok(Downloaded {
            bytes: received,
            duration: started.elapsed(),
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result
}

/// What broke a transfer midway, in words: reqwest's own ("error decoding response body")
/// says neither that the server went quiet nor that the connection closed.
fn broken_body(error: &io::Error, received: u64, expected: Option<u64>) -> String {
    let progress = match expected {
        Some(expected) => format!("{received} of {expected} bytes"),
        None => format!("{received} bytes"),
    };
    let mut timed_out = error.kind() == io::ErrorKind::TimedOut;
    let mut cause = error.to_string();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(inner) = source {
        timed_out |= inner
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
            || inner
                .downcast_ref::<io::Error>()
                .is_some_and(|inner| inner.kind() == io::ErrorKind::TimedOut);
        cause = inner.to_string();
        source = inner.source();
    }
    if timed_out || cause.contains("timed out") {
        format!(
            "the server sent nothing for {}s after {progress} (BP_DOWNLOAD_TIMEOUT)",
            stall_timeout().as_secs()
        )
    } else {
        format!("the connection broke after {progress} ({cause})")
    }
}

fn partial_path(target: &Path) -> PathBuf {
    let mut name = target
        .file_name()
        .map(std::ffi::OsStr::to_os_string)
        .unwrap_or_default();
    name.push(".partial");
    target.with_file_name(name)
}

/// Words for what went wrong before a byte arrived. reqwest's own text names the URL with its
/// credentials, so only the redacted URL and the underlying cause are kept.
/// Sends `request` for the URL shown as `shown`; an answer other than 2xx is an error.
fn send(
    request: reqwest::blocking::RequestBuilder,
    shown: &str,
) -> Result<reqwest::blocking::Response, DownloadError> {
    let response = request.send().map_err(|error| classify(shown, &error))?;
    let status = response.status();
    if !status.is_success() {
        return Err(DownloadError::HttpStatus {
            url: shown.to_string(),
            status: status.as_u16(),
        });
    }
    Ok(response)
}

fn classify(shown: &str, error: &reqwest::Error) -> DownloadError {
    let mut cause = String::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = inner.to_string();
        source = inner.source();
    }
    if cause.is_empty() {
        cause = if error.is_timeout() {
            "the connection timed out".to_string()
        } else if error.is_redirect() {
            "too many redirects".to_string()
        } else {
            "the request failed".to_string()
        };
    }
    if error.is_redirect() {
        return DownloadError::RedirectLoop {
            url: shown.to_string(),
        };
    }
    if error.is_connect() || error.is_timeout() {
        DownloadError::Unreachable {
            url: shown.to_string(),
            reason: cause,
        }
    } else {
        DownloadError::Transfer {
            url: shown.to_string(),
            reason: cause,
        }
    }
}

/// Computes the one digest a download is checked against, as the bytes stream past.
enum Hasher<'a> {
    Sha256(Sha256, &'a str),
    Md5(md5::Md5, &'a str),
    Unchecked,
}

impl<'a> Hasher<'a> {
    fn new(checksum: Checksum<'a>) -> Self {
        match checksum {
            Checksum::Sha256(expected) => Self::Sha256(Sha256::new(), expected),
            Checksum::Md5(expected) => Self::Md5(md5::Md5::new(), expected),
            Checksum::Unchecked => Self::Unchecked,
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Sha256(hasher, _) => hasher.update(bytes),
            Self::Md5(hasher, _) => hasher.update(bytes),
            Self::Unchecked => {}
        }
    }

    fn verify(self, url: &str) -> Result<(), DownloadError> {
        let (algorithm, actual, expected) = match self {
            Self::Sha256(hasher, expected) => ("sha256", hex(&hasher.finalize()), expected),
            Self::Md5(hasher, expected) => ("md5", hex(&hasher.finalize()), expected),
            Self::Unchecked => return Ok(()),
        };
        if actual.eq_ignore_ascii_case(expected) {
            Ok(())
        } else {
            Err(DownloadError::ChecksumMismatch {
                url: url.to_string(),
                algorithm,
                expected: expected.to_ascii_lowercase(),
                actual,
            })
        }
    }
}

/// Progress display for one download.
struct Meter {
    progress: Progress,
    bar: Option<indicatif::ProgressBar>,
    label: String,
    last_line: Instant,
}

impl Meter {
    fn new(progress: Progress, url: &str, length: Option<u64>) -> Self {
        let label = url.rsplit('/').next().unwrap_or(url).to_string();
        let bar = (progress == Progress::Bar).then(|| {
            let bar = length.map_or_else(
                indicatif::ProgressBar::new_spinner,
                indicatif::ProgressBar::new,
            );
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg:40} {bar:30} {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12}",
            ) {
                bar.set_style(style);
            }
            bar.set_message(label.clone());
            bar
        });
        Self {
            progress,
            bar,
            label,
            last_line: Instant::now(),
        }
    }

    fn update(&mut self, received: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(received);
        } else if self.progress == Progress::Lines
            && self.last_line.elapsed() >= Duration::from_secs(5)
        {
            eprintln!(
                "       {}: {} so far",
                self.label,
                log::format_size(received)
            );
            self.last_line = Instant::now();
        }
    }

    fn finish(&mut self, received: u64) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.progress != Progress::Quiet {
            eprintln!("       {}: {}", self.label, log::format_size(received));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_and_network_faults_are_retried() {
        let status = |status| DownloadError::HttpStatus {
            url: String::new(),
            status,
        };
        assert!(status(500).is_transient());
        assert!(status(503).is_transient());
        assert!(!status(404).is_transient());
        assert!(!status(407).is_transient());
        let mismatch = DownloadError::ChecksumMismatch {
            url: String::new(),
            algorithm: "sha256",
            expected: String::new(),
            actual: String::new(),
        };
        assert!(!mismatch.is_transient());
    }
}
