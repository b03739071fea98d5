//! What pip installed into an environment, read from its `*.dist-info` folders: their
//! `INSTALLER` says `pip` (conda's own packages say `conda`), and `REQUESTED` marks the ones
//! pip was asked for by name rather than pulled in as a dependency.

use std::fs;
use std::path::Path;

use super::requirements::{Line, Located, normalize};

/// The names of the distributions pip installed into `prefix`; with `requested_only`, only
/// those it was asked for.
pub(crate) fn by_pip(prefix: &Path, requested_only: bool) -> Vec<String> {
    let mut names = Vec::new();
    let Ok(lib) = fs::read_dir(prefix.join("lib")) else {
        return names;
    };
    for python in lib.flatten() {
        let Ok(entries) = fs::read_dir(python.path().join("site-packages")) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(stem) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(".dist-info"))
            else {
                continue;
            };
            let by_pip = fs::read_to_string(path.join("INSTALLER"))
                .is_ok_and(|installer| installer.trim() == "pip");
            if by_pip && (!requested_only || path.join("REQUESTED").exists()) {
                let name = stem.rsplit_once('-').map_or(stem, |(name, _)| name);
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    names.dedup();
    names
}

/// The distributions pip was asked for in the last environment that the pip section no
/// longer names. `conda env update` leaves them installed, so staging rebuilds instead.
pub(crate) fn dropped(prefix: &Path, lines: &[Located]) -> Vec<String> {
    let named: Vec<String> = lines
        .iter()
        .filter_map(|located| match &located.line {
            Line::Requirement { name } => Some(normalize(name)),
            _ => None,
        })
        .collect();
    // A URL or path line names its project in ways only pip reads; a name written anywhere in
    // such a line counts as kept, so nothing is reported dropped that is still asked for.
    let unnamed: Vec<String> = lines
        .iter()
        .filter(|located| matches!(located.line, Line::Direct | Line::Local { .. }))
        .map(|located| normalize(&located.text))
        .collect();
    by_pip(prefix, true)
        .into_iter()
        .filter(|name| {
            let name = normalize(name);
            !named.contains(&name) && !unnamed.iter().any(|line| line.contains(&name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dist(prefix: &Path, name: &str, installer: &str, requested: bool) {
        let dir = prefix
            .join("lib/python3.11/site-packages")
            .join(format!("{name}-1.0.dist-info"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("INSTALLER"), format!("{installer}\n")).unwrap();
        if requested {
            fs::write(dir.join("REQUESTED"), "").unwrap();
        }
    }

    #[test]
    fn a_requested_pip_package_no_longer_named_is_dropped() {
        let prefix = tempfile::tempdir().unwrap();
        dist(prefix.path(), "cloudpickle", "pip", true);
        dist(prefix.path(), "six", "pip", false);
        dist(prefix.path(), "numpy", "conda", true);
        dist(prefix.path(), "Flask_Cors", "pip", true);
        let lines = crate::staging::pip::requirements::expand(
            &["flask-cors==4".to_string()],
            "environment.yml",
            prefix.path(),
        )
        .unwrap();
        assert_eq!(dropped(prefix.path(), &lines), ["cloudpickle"]);
        assert_eq!(
            by_pip(prefix.path(), false),
            ["Flask_Cors", "cloudpickle", "six"]
        );
    }
}
