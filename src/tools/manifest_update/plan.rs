//! What happens to a line beyond its new installers: the `--keep` window (never dropping a
//! default), whether the line has stopped, and the deprecation date its Python gives it.

use super::{Release, UpdateError, edit, eol};
use crate::manifest::{Manifest, compare_versions, version_matches_line};

/// The versions of `line` that fall out of the `--keep` window once `added` joins `pinned`:
/// the newest `keep` stay, and so does every entry the line's default (moved or not) matches.
pub(crate) fn keep_window(
    line: &str,
    added: &[String],
    pinned: &[&str],
    moved: Option<&str>,
    manifest: &Manifest,
    keep: usize,
) -> Result<Vec<String>, UpdateError> {
    let default = moved.or_else(|| manifest.default_version(line));
    let mut held: Vec<&str> = added
        .iter()
        .map(String::as_str)
        .chain(pinned.iter().copied())
        .collect();
    held.sort_by(|a, b| compare_versions(b, a));
    if let Some(moved) = moved {
        if !held
            .iter()
            .any(|version| version_matches_line(version, moved))
        {
            return Err(UpdateError::Default {
                given: format!("{line}={moved}"),
                reason: format!(
                    "no {line} entry matches {moved}; the line would hold {}",
                    held.join(", ")
                ),
            });
        }
    }
    Ok(held
        .iter()
        .skip(keep)
        .filter(|version| !default.is_some_and(|default| version_matches_line(version, default)))
        .map(|version| (*version).to_string())
        .collect())
}

/// Whether a line has stopped: its Python is past its end of life, or its publisher's newest
/// release is over 12 months old. `None` for a line that is alive.
pub(crate) fn status(
    line: &str,
    publisher: &str,
    newest: Option<&Release>,
    today: jiff::civil::Date,
) -> Option<String> {
    let Some(newest) = newest else {
        return Some(format!(
            "{line}: {publisher} lists no Linux x86_64 installer for this line"
        ));
    };
    let mut reasons = Vec::new();
    let python = eol::python_of_line(line);
    if let Some((python, end)) = python
        .as_deref()
        .and_then(|python| eol::end_of_life(python).map(|end| (python, end)))
    {
        if end <= today {
            reasons.push(format!("Python {python} reached its end of life on {end}"));
        }
    }
    let year_ago = today
        .checked_sub(jiff::Span::new().months(12))
        .unwrap_or(today);
    if newest.date.is_some_and(|date| date < year_ago) {
        reasons.push("that is over 12 months old".to_string());
    }
    if reasons.is_empty() {
        return None;
    }
    let date = newest
        .date
        .map(|date| format!(" ({date})"))
        .unwrap_or_default();
    Some(format!(
        "{line}: the publisher's newest release is {}{date}; {}: this line has stopped",
        newest.version,
        reasons.join("; ")
    ))
}

/// Python's end of life as the deprecation date of a line built on one Python, unless the
/// manifest has a date for the line already. `version_line: x`: every installer of the line
/// carries that Python.
pub(crate) fn deprecation(line: &str, manifest: &Manifest) -> Option<edit::NewDeprecation> {
    let python = eol::python_of_line(line)?;
    let end = eol::end_of_life(&python)?;
    let has_date = manifest
        .dependency_deprecation_dates
        .iter()
        .any(|entry| entry.name == line);
    (!has_date).then(|| edit::NewDeprecation {
        name: line.to_string(),
        version_line: "x".into(),
        date: end.to_string(),
        link: eol::SOURCE.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::manifest_update::Stated;

    fn manifest() -> Manifest {
        let sha = "a".repeat(64);
        let entry = |version: &str| {
            format!(
                "- name: miniforge3\n  version: {version}\n  uri: https://h/{version}.sh\n  sha256: {sha}\n  cf_stacks: [cflinuxfs4]\n"
            )
        };
        let text = format!(
            "language: conda\ndefault_versions:\n- name: miniforge3\n  version: 23.1.x\ndependencies:\n{}{}{}",
            entry("24.7.1"),
            entry("24.5.0"),
            entry("23.1.0")
        );
        Manifest::parse(&text).unwrap()
    }

    #[test]
    fn the_window_keeps_the_newest_and_the_default() {
        let manifest = manifest();
        let pinned = ["24.7.1", "24.5.0", "23.1.0"];
        let added = ["25.1.0".to_string()];
        let removed = keep_window("miniforge3", &added, &pinned, None, &manifest, 2).unwrap();
        assert_eq!(removed, ["24.5.0"], "23.1.0 is the default's");
        let moved =
            keep_window("miniforge3", &added, &pinned, Some("25.1.x"), &manifest, 1).unwrap();
        assert_eq!(moved, ["24.7.1", "24.5.0", "23.1.0"]);
        let error = keep_window("miniforge3", &added, &pinned, Some("9.x"), &manifest, 1);
        assert!(matches!(error, Err(UpdateError::Default { .. })));
    }

    #[test]
    fn a_line_stops_with_its_python_or_a_year_without_releases() {
        let release = |date| Release {
            line: "miniconda3-py312".into(),
            version: "26.1.0".into(),
            build: 0,
            file_name: String::new(),
            url: String::new(),
            stated: Stated::Asset { url: String::new() },
            date: Some(date),
        };
        let today = jiff::civil::date(2027, 3, 1);
        let fresh = release(jiff::civil::date(2027, 1, 1));
        assert_eq!(
            status("miniconda3-py312", "Miniconda", Some(&fresh), today),
            None
        );
        let old = release(jiff::civil::date(2026, 2, 1));
        assert_eq!(
            status("miniconda3-py312", "Miniconda", Some(&old), today).unwrap(),
            "miniconda3-py312: the publisher's newest release is 26.1.0 (2026-02-01); that is over 12 months old: this line has stopped"
        );
        let past_python = jiff::civil::date(2029, 11, 1);
        assert!(
            status("miniconda3-py312", "Miniconda", Some(&fresh), past_python)
                .unwrap()
                .contains("Python 3.12 reached its end of life on 2028-10-02")
        );
        assert!(
            status("miniconda3-py38", "Miniconda", None, today)
                .unwrap()
                .contains("lists no Linux x86_64 installer")
        );
    }
}
