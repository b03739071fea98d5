//! `conda-buildpack manifest update`: proposes the manifest's next installers from the
//! publishers' own release metadata (GitHub's releases API for Miniforge, Anaconda's index
//! page for Miniconda), downloads each one and pins it only when the bytes have the sha256
//! the publisher states, and rewrites manifest.yml as text so that its comments stay.
//!
//! The story: read the manifest -> read every publisher's list (before any change, so an
//! unreachable endpoint changes nothing) -> per installer line, the newer releases up to
//! `--keep`, each verified by download -> the `--keep` window, never dropping a default ->
//! the line's status and Python's end of life -> the edited text, checked as `package`
//! checks it -> a diff, or with `--write` the file.

pub(crate) mod edit;
mod eol;
mod miniconda;
mod miniforge;
mod plan;
mod verify;

use std::cmp::Ordering;
use std::fs;
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::io::download::Progress;
use crate::manifest::{Manifest, ManifestError, compare_versions, version_matches_line};
use crate::staging::log::redact_url;
pub(crate) use miniconda::MinicondaError;
pub(crate) use miniforge::MiniforgeError;
use plan::{deprecation, keep_window, status};
use verify::{Downloads, verify, without_credentials};
pub(crate) use verify::{Failure, VerifyError};

#[derive(Debug, clap::Args)]
pub(crate) struct UpdateArgs {
    /// The manifest to bring up to date.
    #[arg(long, default_value = "manifest.yml")]
    manifest: PathBuf,
    /// How many of the newest installers each line keeps (a default_versions entry is
    /// always kept).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..))]
    keep: u16,
    /// Rewrite the manifest; without it the proposed change is printed as a diff.
    #[arg(long)]
    write: bool,
    /// GitHub's releases API for conda-forge/miniforge, or a mirror that answers the same.
    #[arg(long, default_value = miniforge::DEFAULT_URL)]
    miniforge_releases: String,
    /// Anaconda's Miniconda index page, or a mirror that answers the same.
    #[arg(long, default_value = miniconda::DEFAULT_URL)]
    miniconda_index: String,
    /// Move a default_versions line to another version (`miniforge3=25.11.x`); repeatable.
    #[arg(long = "default", value_name = "LINE=VERSION")]
    defaults: Vec<String>,
    /// Keep the downloaded installers here (ci/build's download cache reuses them) instead
    /// of in a temporary directory.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

/// One installer a publisher lists for Linux x86_64.
#[derive(Debug)]
pub(crate) struct Release {
    pub(crate) line: String,
    /// Without the build suffix, as the manifest names versions: `24.7.1` of `24.7.1-0`.
    pub(crate) version: String,
    pub(crate) build: u64,
    pub(crate) file_name: String,
    pub(crate) url: String,
    pub(crate) stated: Stated,
    pub(crate) date: Option<jiff::civil::Date>,
}

/// Where the publisher states an installer's sha256.
#[derive(Debug)]
pub(crate) enum Stated {
    /// On the page that lists it.
    Inline { sha256: String, page: String },
    /// In a file of its own beside the installer.
    Asset { url: String },
}

/// A release the publisher lists but that cannot be pinned, and why.
#[derive(Debug)]
pub(crate) struct Skipped {
    pub(crate) line: String,
    pub(crate) version: String,
    pub(crate) reason: String,
}

/// `25.9.1-1` is version `25.9.1` build 1; `4.12.0` is build 0.
pub(crate) fn split_build(release: &str) -> (String, u64) {
    match release.rsplit_once('-') {
        Some((version, build))
            if version.contains('.')
                && !build.is_empty()
                && build.bytes().all(|byte| byte.is_ascii_digit()) =>
        {
            (version.to_string(), build.parse().unwrap_or(0))
        }
        _ => (release.to_string(), 0),
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum UpdateError {
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("{0}")]
    Miniforge(#[from] MiniforgeError),
    #[error("{0}")]
    Miniconda(#[from] MinicondaError),
    #[error("{0}")]
    Edit(#[from] edit::EditError),
    #[error("--default {given}: {reason}")]
    Default { given: String, reason: String },
    #[error("the rewritten manifest would not be valid: {reason}")]
    Invalid { reason: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{} proposed installers were not verified", failures.len())]
    Unverified { failures: Vec<Failure> },
}

pub(crate) fn io_error(path: &Path) -> impl FnOnce(io::Error) -> UpdateError + '_ {
    move |source| UpdateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn run(args: &UpdateArgs) -> ExitCode {
    match update(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let message = crate::errors::manifest_update_message(&error);
            eprintln!("conda-buildpack manifest update: {}", message.title);
            for line in &message.body {
                eprintln!("  {line}");
            }
            eprintln!("{}", message.fix);
            ExitCode::FAILURE
        }
    }
}

/// Where a Python line's installers come from.
fn publisher_of(line: &str) -> Option<&'static str> {
    if line == "miniforge3" {
        Some("Miniforge")
    } else if line == "miniconda2" || line == "miniconda3" || eol::python_of_line(line).is_some() {
        Some("Miniconda")
    } else {
        None
    }
}

#[allow(clippy::too_many_lines)]
fn update(args: &UpdateArgs) -> Result<(), UpdateError> {
    let path = &args.manifest;
    let text = fs::read_to_string(path).map_err(|source| ManifestError::Read {
        path: path.clone(),
        source,
    })?;
    let manifest = Manifest::parse(&text).map_err(|reason| ManifestError::Invalid {
        path: path.clone(),
        reason,
    })?;
    let moves = parse_defaults(&args.defaults, &manifest)?;
    let mut lines: Vec<&str> = Vec::new();
    for dependency in &manifest.dependencies {
        if !lines.contains(&dependency.name.as_str()) {
            lines.push(&dependency.name);
        }
    }
    let today = jiff::Zoned::now().date();
    let keep = usize::from(args.keep);

    // Every list first: an endpoint that cannot be read stops the run before anything changes.
    let mut releases = Vec::new();
    let mut skipped = Vec::new();
    if lines
        .iter()
        .any(|line| publisher_of(line) == Some("Miniforge"))
    {
        eprintln!(
            "Reading Miniforge's releases from {}",
            redact_url(&args.miniforge_releases)
        );
        let (mut found, mut lacking) = miniforge::list(&args.miniforge_releases)?;
        releases.append(&mut found);
        skipped.append(&mut lacking);
    }
    if lines
        .iter()
        .any(|line| publisher_of(line) == Some("Miniconda"))
    {
        eprintln!(
            "Reading Miniconda's index from {}",
            redact_url(&args.miniconda_index)
        );
        releases.append(&mut miniconda::list(&args.miniconda_index)?);
    }

    let downloads = Downloads::new(args.cache_dir.as_deref())?;
    let progress = if io::stderr().is_terminal() {
        Progress::Bar
    } else {
        Progress::Lines
    };
    let mut report: Vec<String> = Vec::new();
    let mut edits = edit::Edits::default();
    let mut failures = Vec::new();
    for &line in &lines {
        let pinned: Vec<&str> = manifest
            .dependencies
            .iter()
            .filter(|dependency| dependency.name == line)
            .map(|dependency| dependency.version.as_str())
            .collect();
        let Some(publisher) = publisher_of(line) else {
            report.push(format!(
                "{line}: not an installer line this command reads (miniforge3, miniconda3-pyXY, miniconda3, miniconda2); left as it is"
            ));
            continue;
        };
        let newest_pinned = pinned
            .iter()
            .copied()
            .max_by(|a, b| compare_versions(a, b))
            .unwrap_or("0");
        let is_newer =
            |version: &str| compare_versions(version, newest_pinned) == Ordering::Greater;
        // One release per version, its newest build, newest first.
        let mut offered: Vec<&Release> = releases.iter().filter(|r| r.line == line).collect();
        offered.sort_by(|a, b| {
            compare_versions(&b.version, &a.version).then_with(|| b.build.cmp(&a.build))
        });
        offered.dedup_by(|later, earlier| later.version == earlier.version);
        for skip in skipped
            .iter()
            .filter(|s| s.line == line && is_newer(&s.version))
        {
            report.push(format!(
                "{line} {}: not proposed: {}",
                skip.version, skip.reason
            ));
        }

        let mut added: Vec<String> = Vec::new();
        for release in offered.iter().filter(|r| is_newer(&r.version)).take(keep) {
            match verify(release, &downloads, progress) {
                Ok((sha256, stated_by)) => {
                    report.push(format!(
                        "{line} {}: sha256 {sha256}, stated by {stated_by} and verified by download",
                        release.version
                    ));
                    let cf_stacks = manifest
                        .dependencies
                        .iter()
                        .filter(|d| d.name == line && d.version == newest_pinned)
                        .map(|d| d.cf_stacks.clone())
                        .next()
                        .unwrap_or_default();
                    edits.add.push(edit::NewEntry {
                        name: line.to_string(),
                        version: release.version.clone(),
                        uri: without_credentials(&release.url),
                        sha256,
                        cf_stacks,
                        comment: format!(
                            "# sha256: stated by {stated_by}, verified by download on {today}"
                        ),
                    });
                    added.push(release.version.clone());
                }
                Err(error) => {
                    let release = format!("{line} {}", release.version);
                    eprintln!("{release}: not added: {error}");
                    failures.push(Failure { release, error });
                }
            }
        }

        let moved = moves
            .iter()
            .find(|(name, _)| name == line)
            .map(|(_, version)| version.as_str());
        let removed = keep_window(line, &added, &pinned, moved, &manifest, keep)?;
        for version in &removed {
            report.push(format!(
                "{line} {version}: removed, older than the newest {keep} (--keep)"
            ));
            edits.remove.push((line.to_string(), version.clone()));
        }
        let newest = offered.first().copied();
        if let Some(status) = status(line, publisher, newest, today) {
            report.push(status);
        } else if let Some(newest) = newest.filter(|r| added.is_empty() && !is_newer(&r.version)) {
            report.push(format!(
                "{line}: current (the publisher's newest release is {})",
                newest.version
            ));
        }
        if let Some(deprecation) = deprecation(line, &manifest) {
            report.push(format!(
                "{line}: deprecation date {} proposed (Python {}'s end of life, {})",
                deprecation.date,
                eol::python_of_line(line).unwrap_or_default(),
                eol::SOURCE
            ));
            edits.deprecations.push(deprecation);
        }
    }
    for (line, version) in &moves {
        if manifest.default_version(line) != Some(version.as_str()) {
            report.push(format!("default_versions: {line} moves to {version}"));
            edits.defaults.push((line.clone(), version.clone()));
        }
    }

    let new_text = edit::apply(&text, &edits)?;
    check_rewrite(&manifest, &new_text, &edits)?;
    for line in &report {
        println!("{line}");
    }
    let name = path.display().to_string();
    if new_text == text {
        println!("{name} is up to date: nothing to change.");
    } else {
        println!();
        print!(
            "{}",
            edit::unified_diff(&text, &new_text, &name, &format!("{name} (proposed)"))
        );
        if args.write {
            write_in_place(path, &new_text)?;
            println!("Wrote {name}.");
        } else {
            println!("Nothing was written: run again with --write to apply this change.");
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(UpdateError::Unverified { failures })
    }
}

/// `LINE=VERSION` arguments, each naming a `default_versions` line.
fn parse_defaults(
    given: &[String],
    manifest: &Manifest,
) -> Result<Vec<(String, String)>, UpdateError> {
    given
        .iter()
        .map(|argument| {
            let error = |reason: String| UpdateError::Default {
                given: argument.clone(),
                reason,
            };
            let (line, version) = argument
                .split_once('=')
                .map(|(line, version)| (line.trim(), version.trim()))
                .filter(|(line, version)| !line.is_empty() && !version.is_empty())
                .ok_or_else(|| error("write it as LINE=VERSION, e.g. miniforge3=25.11.x".into()))?;
            if manifest.default_version(line).is_none() {
                let known: Vec<&str> = manifest
                    .default_versions
                    .iter()
                    .map(|default| default.name.as_str())
                    .collect();
                return Err(error(format!(
                    "default_versions has no {line} line (it has {})",
                    known.join(", ")
                )));
            }
            Ok((line.to_string(), version.to_string()))
        })
        .collect()
}

/// What `package` would refuse is refused here, and the text must hold exactly the entries
/// intended: the old ones less the removed, plus the verified new ones with their sha256.
fn check_rewrite(old: &Manifest, new_text: &str, edits: &edit::Edits) -> Result<(), UpdateError> {
    let new = Manifest::parse(new_text).map_err(|reason| UpdateError::Invalid { reason })?;
    let mut expected: Vec<(String, String, String)> = old
        .dependencies
        .iter()
        .filter(|d| {
            !edits
                .remove
                .iter()
                .any(|(name, version)| d.name == *name && d.version == *version)
        })
        .map(|d| (d.name.clone(), d.version.clone(), d.sha256.clone()))
        .chain(
            edits
                .add
                .iter()
                .map(|e| (e.name.clone(), e.version.clone(), e.sha256.clone())),
        )
        .collect();
    let mut actual: Vec<(String, String, String)> = new
        .dependencies
        .iter()
        .map(|d| (d.name.clone(), d.version.clone(), d.sha256.clone()))
        .collect();
    expected.sort();
    actual.sort();
    if expected != actual {
        return Err(UpdateError::Invalid {
            reason: "its entries are not the ones intended (a layout this command cannot edit)"
                .into(),
        });
    }
    for default in &new.default_versions {
        let served = new
            .dependencies
            .iter()
            .any(|d| d.name == default.name && version_matches_line(&d.version, &default.version));
        let was_served = old
            .dependencies
            .iter()
            .any(|d| d.name == default.name && version_matches_line(&d.version, &default.version));
        if was_served && !served {
            return Err(UpdateError::Invalid {
                reason: format!(
                    "default_versions {} {} would point at no entry",
                    default.name, default.version
                ),
            });
        }
    }
    Ok(())
}

/// Replaces the file in one rename, keeping its mode: a reader sees the old or the new text.
fn write_in_place(path: &Path, text: &str) -> Result<(), UpdateError> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "manifest.yml".into());
    let partial = path.with_file_name(format!(".{name}.update"));
    let result = (|| {
        fs::write(&partial, text)?;
        if let Ok(metadata) = fs::metadata(path) {
            fs::set_permissions(&partial, metadata.permissions())?;
        }
        fs::rename(&partial, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&partial);
    }
    result.map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_suffixes_split_off() {
        assert_eq!(split_build("24.7.1-0"), ("24.7.1".into(), 0));
        assert_eq!(split_build("25.9.1-12"), ("25.9.1".into(), 12));
        assert_eq!(split_build("4.12.0"), ("4.12.0".into(), 0));
        assert_eq!(split_build("latest"), ("latest".into(), 0));
    }

    #[test]
    fn the_lines_have_publishers() {
        assert_eq!(publisher_of("miniforge3"), Some("Miniforge"));
        assert_eq!(publisher_of("miniconda3-py312"), Some("Miniconda"));
        assert_eq!(publisher_of("miniconda2"), Some("Miniconda"));
        assert_eq!(publisher_of("python"), None);
    }
}
