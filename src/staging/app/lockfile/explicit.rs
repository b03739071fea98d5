//! `@EXPLICIT` files (CEP 23): what `conda list --explicit [--md5|--sha256]`, `conda export
//! --format explicit` and conda-lock's `--kind explicit` write. Comments (one may name the
//! platform), the `@EXPLICIT` marker, then one package URL per line with an optional `#md5`,
//! `#sha256:HEX` or bare sha256 fragment.

use super::{CondaPackage, LockError, PLATFORM, invalid};

pub(crate) fn parse(file: &str, text: &str) -> Result<Vec<CondaPackage>, LockError> {
    let invalid = invalid(file);
    let mut explicit = false;
    let mut platform = None;
    let mut packages = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(named) = line
            .strip_prefix('#')
            .map(str::trim)
            .and_then(|comment| comment.strip_prefix("platform:"))
        {
            platform = Some(named.trim().to_string());
            continue;
        }
        if line.is_empty() || (line.starts_with('#') && !line.starts_with("#@")) {
            continue;
        }
        if line == "@EXPLICIT" {
            explicit = true;
            continue;
        }
        if !explicit {
            return Err(invalid(format!(
                "line {} comes before the `@EXPLICIT` marker; write the file with \
                 `conda list --explicit --md5 > {file}`",
                number + 1
            )));
        }
        if let Some(platform) = platform.as_ref().filter(|platform| *platform != PLATFORM) {
            return Err(LockError::NoLinux {
                file: file.to_string(),
                environment: None,
                platforms: vec![platform.clone()],
            });
        }
        let (url, fragment) = line
            .split_once('#')
            .map_or((line, None), |(url, fragment)| (url, Some(fragment.trim())));
        let is_package = url.ends_with(".tar.bz2") || url.ends_with(".conda");
        if !url.contains("://") || !is_package {
            return Err(invalid(format!(
                "line {} is not a package URL ending in .tar.bz2 or .conda: `{line}`",
                number + 1
            )));
        }
        let (sha256, md5) = match fragment {
            Some(fragment) if fragment.starts_with("sha256:") => (Some(&fragment[7..]), None),
            Some(fragment) if fragment.len() == 64 => (Some(fragment), None),
            Some(fragment) if !fragment.is_empty() => (None, Some(fragment)),
            _ => (None, None),
        };
        packages.push(super::conda_package(file, url, sha256, md5)?);
    }
    if !explicit {
        return Err(invalid(
            "the file has no `@EXPLICIT` line; write it with `conda list --explicit --md5`".into(),
        ));
    }
    if let Some(platform) = platform.filter(|platform| platform != PLATFORM) {
        return Err(LockError::NoLinux {
            file: file.to_string(),
            environment: None,
            platforms: vec![platform],
        });
    }
    if packages.is_empty() {
        return Err(invalid("the file lists no packages".into()));
    }
    Ok(packages)
}
