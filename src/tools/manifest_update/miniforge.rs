//! Miniforge's releases, as GitHub's releases API lists them
//! (`GET /repos/conda-forge/miniforge/releases`): JSON pages of releases, each with a
//! `tag_name` (`24.7.1-0`) and `assets[]` (`name`, `browser_download_url`), the next page
//! named by a `Link: <...>; rel="next"` header. Each installer has a `.sha256` asset beside
//! it, the publisher's statement of its checksum.

use serde::Deserialize;

use super::{Release, Skipped, Stated, split_build};
use crate::io::download::{self, DownloadError};
use crate::staging::log::redact_url;

/// GitHub's default page holds 30 releases; 100 is its largest.
pub(crate) const DEFAULT_URL: &str =
    "https://api.github.com/repos/conda-forge/miniforge/releases?per_page=100";

/// Miniforge has a few hundred releases; a chain of pages longer than this is a loop.
const MAX_PAGES: usize = 50;

#[derive(Debug, thiserror::Error)]
pub(crate) enum MiniforgeError {
    #[error("{0}")]
    Fetch(#[from] DownloadError),
    #[error("{url} is not GitHub's list of releases: {reason}")]
    Format { url: String, reason: String },
    #[error("{url} links more than {MAX_PAGES} pages of releases")]
    TooManyPages { url: String },
    #[error("{url} states no sha256 (it begins `{start}`)")]
    ChecksumFile { url: String, start: String },
}

#[derive(Deserialize)]
struct GithubRelease {
    tag_name: String,
    #[serde(default)]
    draft: bool,
    #[serde(default)]
    prerelease: bool,
    #[serde(default)]
    published_at: Option<String>,
    #[serde(default)]
    assets: Vec<Asset>,
}

#[derive(Deserialize)]
struct Asset {
    name: String,
    browser_download_url: String,
}

/// Every Miniforge3 Linux x86_64 release on every page, and the releases that could not be
/// used (no installer, or no `.sha256` beside it).
pub(crate) fn list(url: &str) -> Result<(Vec<Release>, Vec<Skipped>), MiniforgeError> {
    let mut releases = Vec::new();
    let mut skipped = Vec::new();
    let mut next = Some(url.to_string());
    let mut pages = 0;
    while let Some(page_url) = next {
        pages += 1;
        if pages > MAX_PAGES {
            return Err(MiniforgeError::TooManyPages {
                url: redact_url(url),
            });
        }
        let page = download::fetch_page(&page_url, "application/vnd.github+json")?;
        let (mut found, mut lacking) =
            parse_page(&page.text).map_err(|reason| MiniforgeError::Format {
                url: redact_url(&page_url),
                reason,
            })?;
        releases.append(&mut found);
        skipped.append(&mut lacking);
        next = page.link.as_deref().and_then(next_link);
    }
    Ok((releases, skipped))
}

/// One page of the API's answer.
pub(crate) fn parse_page(text: &str) -> Result<(Vec<Release>, Vec<Skipped>), String> {
    let list: Vec<GithubRelease> = serde_json::from_str(text).map_err(|error| {
        let start: String = text.trim_start().chars().take(80).collect();
        format!("{error} (the answer begins `{start}`)")
    })?;
    let mut releases = Vec::new();
    let mut skipped = Vec::new();
    for release in list {
        if release.draft || release.prerelease {
            continue;
        }
        let tag = release.tag_name.trim();
        let (version, build) = split_build(tag);
        let installer = format!("Miniforge3-{tag}-Linux-x86_64.sh");
        let checksum = format!("{installer}.sha256");
        let find = |name: &str| release.assets.iter().find(|asset| asset.name == name);
        let Some(asset) = find(&installer) else {
            skipped.push(Skipped {
                line: "miniforge3".into(),
                version,
                reason: format!("release {tag} has no {installer}"),
            });
            continue;
        };
        let Some(sha256_asset) = find(&checksum) else {
            skipped.push(Skipped {
                line: "miniforge3".into(),
                version,
                reason: format!(
                    "release {tag} has no {checksum}: the publisher states no checksum to verify against"
                ),
            });
            continue;
        };
        releases.push(Release {
            line: "miniforge3".into(),
            version,
            build,
            file_name: installer,
            url: asset.browser_download_url.clone(),
            stated: Stated::Asset {
                url: sha256_asset.browser_download_url.clone(),
            },
            date: release
                .published_at
                .as_deref()
                .and_then(|at| at.get(..10))
                .and_then(|day| jiff::civil::Date::strptime("%Y-%m-%d", day).ok()),
        });
    }
    Ok((releases, skipped))
}

/// The `rel="next"` URL of a `Link` header.
pub(crate) fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params.split(';').any(|param| {
            let param = param.trim().replace(' ', "");
            param == "rel=\"next\"" || param == "rel=next"
        });
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        is_next.then(|| target.to_string())
    })
}

/// The sha256 a `.sha256` asset states: its first word (`<hex>  <file name>`).
pub(crate) fn stated_sha256(url: &str) -> Result<String, MiniforgeError> {
    let page = download::fetch_page(url, "text/plain, application/octet-stream")?;
    parse_checksum_file(&page.text).ok_or_else(|| MiniforgeError::ChecksumFile {
        url: redact_url(url),
        start: page.text.trim().chars().take(80).collect(),
    })
}

fn parse_checksum_file(text: &str) -> Option<String> {
    let word = text.split_whitespace().next()?;
    (word.len() == 64 && word.bytes().all(|byte| byte.is_ascii_hexdigit()))
        .then(|| word.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"[
      {"tag_name": "26.1.0-0", "draft": false, "prerelease": true, "published_at": "2026-11-01T10:00:00Z",
       "assets": [{"name": "Miniforge3-26.1.0-0-Linux-x86_64.sh", "browser_download_url": "https://g/26.1.0-0/Miniforge3-26.1.0-0-Linux-x86_64.sh"}]},
      {"tag_name": "25.11.0-1", "published_at": "2026-10-02T10:00:00Z", "assets": [
        {"name": "Miniforge3-25.11.0-1-Linux-aarch64.sh", "browser_download_url": "https://g/a"},
        {"name": "Miniforge3-Linux-x86_64.sh", "browser_download_url": "https://g/latest"},
        {"name": "Miniforge3-25.11.0-1-Linux-x86_64.sh", "browser_download_url": "https://g/25.11.0-1/Miniforge3-25.11.0-1-Linux-x86_64.sh"},
        {"name": "Miniforge3-25.11.0-1-Linux-x86_64.sh.sha256", "browser_download_url": "https://g/25.11.0-1/Miniforge3-25.11.0-1-Linux-x86_64.sh.sha256"}]},
      {"tag_name": "25.9.0-0", "published_at": "2026-08-02T10:00:00Z", "assets": [
        {"name": "Miniforge3-25.9.0-0-Linux-x86_64.sh", "browser_download_url": "https://g/x"}]},
      {"tag_name": "25.8.0-0", "published_at": "2026-07-02T10:00:00Z", "assets": []}
    ]"#;

    #[test]
    fn a_page_gives_the_linux_x86_64_installers_with_their_checksum_files() {
        let (releases, skipped) = parse_page(PAGE).unwrap();
        assert_eq!(
            releases.len(),
            1,
            "the prerelease and the incomplete ones are not used"
        );
        let release = &releases[0];
        assert_eq!(release.version, "25.11.0");
        assert_eq!(release.build, 1);
        assert_eq!(release.file_name, "Miniforge3-25.11.0-1-Linux-x86_64.sh");
        assert!(
            release
                .url
                .ends_with("/25.11.0-1/Miniforge3-25.11.0-1-Linux-x86_64.sh")
        );
        assert_eq!(release.date, Some(jiff::civil::date(2026, 10, 2)));
        let reasons: Vec<_> = skipped.iter().map(|s| s.reason.as_str()).collect();
        assert!(reasons[0].contains("has no Miniforge3-25.9.0-0-Linux-x86_64.sh.sha256"));
        assert!(reasons[1].contains("has no Miniforge3-25.8.0-0-Linux-x86_64.sh"));
    }

    #[test]
    fn an_answer_that_is_not_a_release_list_is_an_error_that_quotes_it() {
        let error = parse_page(r#"{"message": "API rate limit exceeded"}"#).unwrap_err();
        assert!(error.contains("API rate limit exceeded"), "{error}");
    }

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        let header = r#"<https://api.github.com/repositories/1/releases?page=2>; rel="next", <https://api.github.com/repositories/1/releases?page=5>; rel="last""#;
        assert_eq!(
            next_link(header).as_deref(),
            Some("https://api.github.com/repositories/1/releases?page=2")
        );
        assert_eq!(
            next_link(r#"<https://h/?page=1>; rel="prev", <https://h/?page=1>; rel="first""#),
            None
        );
    }

    #[test]
    fn a_checksum_file_states_its_first_word() {
        let hex = "AB".repeat(32);
        assert_eq!(
            parse_checksum_file(&format!("{hex}  Miniforge3.sh\n")),
            Some(hex.to_ascii_lowercase())
        );
        assert_eq!(parse_checksum_file("<html>Not Found</html>"), None);
    }
}
