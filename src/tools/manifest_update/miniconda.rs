//! Miniconda's releases, as Anaconda's index page (https://repo.anaconda.com/miniconda/)
//! lists them: an HTML table with one row per file, its name (a link), size, date and
//! sha256. The page is read row by row, not as a whole document: only rows with a link, a
//! date and a sha256 are used.

use super::{Release, Stated, split_build};
use crate::io::download::{self, DownloadError};
use crate::staging::log::redact_url;

pub(crate) const DEFAULT_URL: &str = "https://repo.anaconda.com/miniconda/";

#[derive(Debug, thiserror::Error)]
pub(crate) enum MinicondaError {
    #[error("{0}")]
    Fetch(#[from] DownloadError),
    #[error("{url} is not Anaconda's Miniconda index: {reason}")]
    Format { url: String, reason: String },
}

/// Every Miniconda Linux x86_64 installer the index lists.
pub(crate) fn list(url: &str) -> Result<Vec<Release>, MinicondaError> {
    let page = download::fetch_page(url, "text/html")?;
    parse_index(url, &page.text).map_err(|reason| MinicondaError::Format {
        url: redact_url(url),
        reason,
    })
}

/// The installer rows of the index page at `url`.
pub(crate) fn parse_index(url: &str, html: &str) -> Result<Vec<Release>, String> {
    let base = reqwest::Url::parse(url).map_err(|error| format!("not a URL: {error}"))?;
    let mut rows = 0;
    let mut releases = Vec::new();
    for row in html.split("<tr").skip(1) {
        let row = row.split("</tr>").next().unwrap_or(row);
        let Some(href) = attribute(row, "href") else {
            continue;
        };
        let cells = cells(row);
        let Some(sha256) = cells.iter().find(|cell| is_sha256(cell)) else {
            continue;
        };
        rows += 1;
        let date = cells.iter().find_map(|cell| {
            cell.get(..10)
                .and_then(|day| jiff::civil::Date::strptime("%Y-%m-%d", day).ok())
        });
        let name = href.rsplit('/').next().unwrap_or(&href);
        let Some((line, version, build)) = parse_file_name(name) else {
            continue;
        };
        let Ok(installer) = base.join(&href) else {
            continue;
        };
        releases.push(Release {
            line,
            version,
            build,
            file_name: name.to_string(),
            url: installer.to_string(),
            stated: Stated::Inline {
                sha256: sha256.to_ascii_lowercase(),
                page: url.to_string(),
            },
            date,
        });
    }
    if rows == 0 {
        let start: String = html.trim_start().chars().take(80).collect();
        return Err(format!(
            "it has no table rows with a file and its sha256 (it begins `{start}`)"
        ));
    }
    Ok(releases)
}

/// The installer line, version and build of a Miniconda Linux x86_64 file name:
/// `Miniconda3-py39_25.9.1-1-Linux-x86_64.sh` is `miniconda3-py39` 25.9.1 build 1,
/// `Miniconda3-4.7.12.1-Linux-x86_64.sh` is `miniconda3` 4.7.12.1, `Miniconda2-...` is
/// `miniconda2`. Other platforms and the `latest` aliases are none.
pub(crate) fn parse_file_name(name: &str) -> Option<(String, String, u64)> {
    let stem = name.strip_suffix("-Linux-x86_64.sh")?;
    let (family, rest) = stem.split_once('-')?;
    let family = match family {
        "Miniconda3" => "miniconda3",
        "Miniconda2" => "miniconda2",
        _ => return None,
    };
    let (line, release) = match rest.split_once('_') {
        Some((python, release)) if python.starts_with("py") && family == "miniconda3" => {
            let digits = &python[2..];
            if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
                return None;
            }
            (format!("{family}-{python}"), release)
        }
        Some(_) => return None,
        None => (family.to_string(), rest),
    };
    let (version, build) = split_build(release);
    let plausible = version.contains('.')
        && version
            .split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()));
    plausible.then_some((line, version, build))
}

/// The value of `name="..."` in a tag's text.
fn attribute(row: &str, name: &str) -> Option<String> {
    let start = row.find(&format!("{name}=\""))? + name.len() + 2;
    let end = row[start..].find('"')? + start;
    Some(decode(&row[start..end]))
}

/// The text of each `<td>` cell, tags removed and whitespace trimmed.
fn cells(row: &str) -> Vec<String> {
    row.split("<td")
        .skip(1)
        .map(|cell| {
            let inner = cell.split_once('>').map_or("", |(_, inner)| inner);
            let inner = inner.split("</td>").next().unwrap_or(inner);
            let mut text = String::new();
            let mut in_tag = false;
            for character in inner.chars() {
                match character {
                    '<' => in_tag = true,
                    '>' => in_tag = false,
                    _ if !in_tag => text.push(character),
                    _ => {}
                }
            }
            decode(text.trim())
        })
        .collect()
}

fn decode(text: &str) -> String {
    text.replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, date: &str, sha256: &str) -> String {
        format!(
            "<tr>\n    <td><a href=\"{name}\">{name}</a></td>\n    <td class=\"s\">150.2M</td>\n    <td>{date}</td>\n    <td>{sha256}</td>\n  </tr>\n"
        )
    }

    #[test]
    fn the_index_gives_linux_x86_64_installers_by_line() {
        let a = "a".repeat(64);
        let b = "B".repeat(64);
        let html = format!(
            "<html><body><table>\n<tr><th>Filename</th><th>Size</th><th>Last Modified</th><th>SHA256</th></tr>\n{}{}{}{}{}{}</table>",
            row(
                "Miniconda3-latest-Linux-x86_64.sh",
                "2025-10-06 11:40:00",
                &a
            ),
            row(
                "Miniconda3-py313_25.9.1-1-Linux-x86_64.sh",
                "2025-10-06 11:44:38",
                &b
            ),
            row(
                "Miniconda3-py313_25.9.1-1-Linux-aarch64.sh",
                "2025-10-06 11:44:38",
                &a
            ),
            row(
                "Miniconda3-py39_25.9.1-1-MacOSX-arm64.sh",
                "2025-10-06 11:44:38",
                &a
            ),
            row(
                "Miniconda3-py39_4.12.0-Linux-x86_64.sh",
                "2022-05-12 10:00:00",
                &a
            ),
            row(
                "Miniconda2-4.7.12.1-Linux-x86_64.sh",
                "2019-10-25 10:00:00",
                &a
            ),
        );
        let releases = parse_index("https://repo.anaconda.com/miniconda/", &html).unwrap();
        let found: Vec<_> = releases
            .iter()
            .map(|r| (r.line.as_str(), r.version.as_str(), r.build))
            .collect();
        assert_eq!(
            found,
            [
                ("miniconda3-py313", "25.9.1", 1),
                ("miniconda3-py39", "4.12.0", 0),
                ("miniconda2", "4.7.12.1", 0)
            ]
        );
        let first = &releases[0];
        assert_eq!(
            first.url,
            "https://repo.anaconda.com/miniconda/Miniconda3-py313_25.9.1-1-Linux-x86_64.sh"
        );
        assert_eq!(first.date, Some(jiff::civil::date(2025, 10, 6)));
        assert!(
            matches!(&first.stated, Stated::Inline { sha256, .. } if *sha256 == "b".repeat(64))
        );
    }

    #[test]
    fn a_page_without_the_table_is_an_error_that_quotes_it() {
        let error = parse_index("https://h/", "<html>Access denied</html>").unwrap_err();
        assert!(error.contains("Access denied"), "{error}");
    }

    #[test]
    fn file_names_map_to_lines() {
        let parse = |name| parse_file_name(name);
        assert_eq!(
            parse("Miniconda3-4.7.12.1-Linux-x86_64.sh"),
            Some(("miniconda3".into(), "4.7.12.1".into(), 0))
        );
        assert_eq!(
            parse("Miniconda3-py310_25.7.0-2-Linux-x86_64.sh"),
            Some(("miniconda3-py310".into(), "25.7.0".into(), 2))
        );
        assert_eq!(parse("Miniconda3-py39_latest-Linux-x86_64.sh"), None);
        assert_eq!(parse("Miniconda3-latest-Linux-x86_64.sh"), None);
        assert_eq!(parse("Miniconda3-py39_25.7.0-2-Linux-ppc64le.sh"), None);
        assert_eq!(parse("Anaconda3-2024.10-1-Linux-x86_64.sh"), None);
        assert_eq!(parse("Miniconda3-py39_25.7.0-2-Windows-x86_64.exe"), None);
    }
}
