//! Sdists, which pip cannot resolve for another platform: their metadata read from the
//! archive, and a stand-in wheel that declares their dependencies so the resolve goes on.

use std::fs;
use std::io::{self, Read, Write};
use std::path::Path;

use super::{FetchError, MAX_METADATA, at};
use crate::staging::pip::wheelhouse::project_of;

/// `[build-system] requires` of a pyproject.toml, or what pip assumes without one.
pub(super) fn build_requirements(pyproject: Option<&str>) -> Vec<String> {
    let default = || vec!["setuptools>=40.8.0".to_string(), "wheel".to_string()];
    let Some(text) = pyproject else {
        return default();
    };
    let mut in_table = false;
    let mut collecting: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(collected) = collecting.as_mut() {
            collected.push_str(trimmed);
            if trimmed.contains(']') {
                break;
            }
            continue;
        }
        if trimmed.starts_with('[') {
            in_table = trimmed == "[build-system]";
            continue;
        }
        if in_table {
            if let Some(value) = trimmed.strip_prefix("requires") {
                let value = value.trim_start().trim_start_matches('=').trim();
                collecting = Some(value.to_string());
                if value.contains(']') {
                    break;
                }
            }
        }
    }
    let Some(list) = collecting else {
        return default();
    };
    list.split(['"', '\''])
        .skip(1)
        .step_by(2)
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

pub(super) struct SdistMetadata {
    pub(super) name: String,
    pub(super) version: String,
    pub(super) requires: Vec<String>,
    pub(super) pyproject: Option<String>,
}

/// An sdist's `PKG-INFO` (name, version, `Requires-Dist`) and `pyproject.toml`, read from its
/// top folder.
pub(super) fn read_sdist(path: &Path) -> Result<SdistMetadata, FetchError> {
    let mut pkg_info = None;
    let mut pyproject = None;
    let mut keep = |name: &str, reader: &mut dyn Read| -> Result<(), FetchError> {
        let mut parts = name.trim_start_matches("./").split('/');
        let (Some(_top), Some(file), None) = (parts.next(), parts.next(), parts.next()) else {
            return Ok(());
        };
        let slot = match file {
            "PKG-INFO" => &mut pkg_info,
            "pyproject.toml" => &mut pyproject,
            _ => return Ok(()),
        };
        let mut text = String::new();
        reader
            .take(MAX_METADATA)
            .read_to_string(&mut text)
            .map_err(at(path))?;
        *slot = Some(text);
        Ok(())
    };
    let file = fs::File::open(path).map_err(at(path))?;
    let lower = path.to_string_lossy().to_ascii_lowercase();
    if lower.ends_with(".zip") {
        let mut zip = zip::ZipArchive::new(io::BufReader::new(file))
            .map_err(|error| at(path)(io::Error::other(error)))?;
        for position in 0..zip.len() {
            let mut entry = zip
                .by_index(position)
                .map_err(|error| at(path)(io::Error::other(error)))?;
            let name = entry.name().to_string();
            keep(&name, &mut entry)?;
        }
    } else {
        let reader: Box<dyn Read> = if lower.ends_with(".tar.bz2") {
            Box::new(bzip2::read::BzDecoder::new(io::BufReader::new(file)))
        } else {
            Box::new(flate2::read::GzDecoder::new(io::BufReader::new(file)))
        };
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(at(path))? {
            let mut entry = entry.map_err(at(path))?;
            let name = entry
                .path()
                .map_err(at(path))?
                .to_string_lossy()
                .into_owned();
            keep(&name, &mut entry)?;
        }
    }
    let pkg_info = pkg_info.unwrap_or_default();
    let field = |key: &str| {
        pkg_info
            .lines()
            .find_map(|line| line.strip_prefix(key).map(|value| value.trim().to_string()))
    };
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(SdistMetadata {
        name: field("Name:")
            .or_else(|| project_of(&file_name))
            .unwrap_or_default(),
        version: field("Version:").unwrap_or_else(|| "0".into()),
        requires: pkg_info
            .lines()
            .filter_map(|line| line.strip_prefix("Requires-Dist:"))
            .map(|value| value.trim().to_string())
            .collect(),
        pyproject,
    })
}

/// A wheel that only declares the sdist's dependencies, so pip resolves through it.
pub(super) fn write_stand_in(
    dir: &Path,
    project: &str,
    metadata: &SdistMetadata,
) -> Result<(), FetchError> {
    let escaped = project.replace('-', "_");
    let dist_info = format!("{escaped}-{}.dist-info", metadata.version);
    let path = dir.join(format!("{escaped}-{}-py3-none-any.whl", metadata.version));
    let mut text = format!(
        "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
        metadata.name, metadata.version
    );
    for requirement in &metadata.requires {
        text.push_str(&format!("Requires-Dist: {requirement}\n"));
    }
    let file = fs::File::create(&path).map_err(at(&path))?;
    let mut writer = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default();
    let zip_error = |error: zip::result::ZipError| at(&path)(io::Error::other(error));
    for (name, content) in [
        (format!("{dist_info}/METADATA"), text),
        (
            format!("{dist_info}/WHEEL"),
            "Wheel-Version: 1.0\nGenerator: conda-buildpack\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_string(),
        ),
        (
            format!("{dist_info}/RECORD"),
            format!("{dist_info}/METADATA,,\n{dist_info}/WHEEL,,\n{dist_info}/RECORD,,\n"),
        ),
    ] {
        writer.start_file(name, options).map_err(zip_error)?;
        writer.write_all(content.as_bytes()).map_err(at(&path))?;
    }
    writer.finish().map_err(zip_error)?;
    Ok(())
}
