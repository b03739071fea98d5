//! The lines of a `pip:` section (and of the `-r` files it names), read the way pip reads a
//! requirements file, as far as the buildpack must understand them: which lines name a
//! package to fetch from an index, which point at the network directly, which at the app's
//! own files, and which only say where to look.

use std::path::{Path, PathBuf};

use crate::staging::app::{self, AppError};

/// `-r` files may name others; pip follows them to any depth, a cycle would never end.
const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line {
    /// `flask>=3`, `numpy[extra]==2; python_version>"3.9"`: a project fetched by name.
    Requirement { name: String },
    /// A URL or VCS requirement (`git+https://...`, `name @ https://...`, `-e git+...`):
    /// pip fetches it from there, never from an index or a wheelhouse.
    Direct,
    /// A path (`.`, `./lib`, `wheels/x.whl`, `-e .`), resolved against the file's folder.
    Local { path: String, editable: bool },
    /// `-r FILE` (its lines are read in its place) or `-c FILE` (a constraints file).
    File { path: String, constraint: bool },
    /// `--index-url`, `--extra-index-url`, `--find-links`, `--trusted-host`, `--no-index`:
    /// where pip looks, which a wheelhouse replaces.
    Where {
        option: String,
        value: Option<String>,
    },
    /// Any other option (`--pre`, `--only-binary`, ...), passed on as written.
    Option,
    /// Blank or a comment.
    Nothing,
}

/// A line with where it came from, for messages that name it.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    pub(crate) text: String,
    pub(crate) line: Line,
    /// `environment.yml` or `requirements.txt:3`.
    pub(crate) origin: String,
    /// The folder relative paths on this line are relative to.
    pub(crate) base: PathBuf,
}

impl Located {
    /// The line with its path made absolute, so it means the same from any working
    /// directory (conda runs pip next to the environment file it was given).
    pub(crate) fn anchored(&self) -> String {
        let absolute = |path: &str| {
            let local = path.strip_prefix("file:").unwrap_or(path);
            if Path::new(local).is_absolute() {
                local.to_string()
            } else {
                self.base.join(local).display().to_string()
            }
        };
        match &self.line {
            // `name @ file:///...` is absolute already.
            Line::Local { path, .. } if path.starts_with("file:") => self.text.trim().to_string(),
            Line::Local { path, editable } => {
                let rest = self
                    .text
                    .trim()
                    .split_once(path.as_str())
                    .map_or("", |(_, rest)| rest);
                let path = absolute(path);
                if *editable {
                    format!("-e {path}{rest}")
                } else {
                    format!("{path}{rest}")
                }
            }
            Line::File {
                path,
                constraint: true,
            } => format!("-c {}", absolute(path)),
            Line::Where {
                option,
                value: Some(value),
            } if is_find_links(option) && !value.contains("://") => {
                format!("{option} {}", absolute(value))
            }
            _ => self.text.trim().to_string(),
        }
    }
}

fn is_find_links(option: &str) -> bool {
    option == "-f" || option == "--find-links"
}

/// The PEP 503 form of a project name: what a wheel's or an sdist's file name is matched by.
pub(crate) fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for character in name.chars() {
        if matches!(character, '-' | '_' | '.') {
            separator = true;
        } else {
            if separator && !out.is_empty() {
                out.push('-');
            }
            separator = false;
            out.push(character.to_ascii_lowercase());
        }
    }
    out
}

const WHERE_OPTIONS: [&str; 8] = [
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--trusted-host",
    "--no-index",
    "--index",
];

/// Splits `--option value`, `--option=value` and `-ovalue` forms.
fn option_and_value(text: &str) -> (String, Option<String>) {
    if let Some((option, value)) = text.split_once('=').filter(|(o, _)| o.starts_with("--")) {
        if !option.contains(char::is_whitespace) {
            return (option.to_string(), Some(value.trim().to_string()));
        }
    }
    match text.split_once(char::is_whitespace) {
        Some((option, value)) => (option.to_string(), Some(value.trim().to_string())),
        // `-rfile`: the option is the dash and one character, whatever its width in bytes.
        None if !text.starts_with("--") => match text.char_indices().nth(2) {
            Some((split, _)) => (
                text[..split].to_string(),
                Some(text[split..].trim().to_string()),
            ),
            None => (text.to_string(), None),
        },
        None => (text.to_string(), None),
    }
}

fn is_url_or_vcs(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("://")
        && !lower.starts_with("file:")
        && !lower.contains(" @ file:")
        && !lower.contains("@file:")
}

fn looks_like_path(text: &str) -> bool {
    text.starts_with('.')
        || text.starts_with('/')
        || text.starts_with("file:")
        || text.contains('/')
        || [".whl", ".tar.gz", ".zip", ".tar.bz2", ".tgz"]
            .iter()
            .any(|suffix| text.ends_with(suffix))
}

/// Reads one line as pip would.
pub(crate) fn parse(raw: &str) -> Line {
    // ` #` starts a comment anywhere; a `#` inside a URL (`#egg=`) does not.
    let text = match raw.find(" #") {
        Some(at) => &raw[..at],
        None => raw,
    }
    .trim();
    if text.is_empty() || text.starts_with('#') {
        return Line::Nothing;
    }
    if text.starts_with('-') {
        let (option, value) = option_and_value(text);
        return match option.as_str() {
            "-r" | "--requirement" | "-c" | "--constraint" => match value {
                Some(path) if is_url_or_vcs(&path) => Line::Direct,
                Some(path) => Line::File {
                    path,
                    constraint: option.starts_with("-c") || option == "--constraint",
                },
                None => Line::Option,
            },
            "-e" | "--editable" => match value {
                Some(target) if is_url_or_vcs(&target) => Line::Direct,
                Some(path) => Line::Local {
                    path: path
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                    editable: true,
                },
                None => Line::Option,
            },
            option if WHERE_OPTIONS.contains(&option) => Line::Where {
                option: option.to_string(),
                value,
            },
            _ => Line::Option,
        };
    }
    let first = text.split_whitespace().next().unwrap_or_default();
    if is_url_or_vcs(text) {
        return Line::Direct;
    }
    if text.contains('@') && text.to_ascii_lowercase().contains("file:") {
        // `name @ file:///...`: a local file named by URL.
        let path = text.split_once('@').map(|(_, p)| p.trim()).unwrap_or("");
        return Line::Local {
            path: path.split(';').next().unwrap_or(path).trim().to_string(),
            editable: false,
        };
    }
    if looks_like_path(first) {
        return Line::Local {
            path: first.to_string(),
            editable: false,
        };
    }
    let name: String = text
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if name.is_empty() {
        return Line::Option;
    }
    Line::Requirement {
        name: normalize(&name),
    }
}

/// Every line of the pip section, with each `-r` file read in its place. The files are read
/// as untrusted input, and must be inside the app.
pub(crate) fn expand(
    lines: &[String],
    origin: &str,
    build_dir: &Path,
) -> Result<Vec<Located>, AppError> {
    let mut out = Vec::new();
    expand_into(&mut out, lines, origin, build_dir, build_dir, 0)?;
    Ok(out)
}

fn expand_into(
    out: &mut Vec<Located>,
    lines: &[String],
    origin: &str,
    base: &Path,
    build_dir: &Path,
    depth: usize,
) -> Result<(), AppError> {
    for (number, text) in lines.iter().enumerate() {
        let line = parse(text);
        let here = if depth == 0 {
            origin.to_string()
        } else {
            format!("{origin}:{}", number + 1)
        };
        if let Line::File {
            path,
            constraint: false,
        } = &line
        {
            let file = base.join(path);
            let label = file
                .strip_prefix(build_dir)
                .unwrap_or(&file)
                .display()
                .to_string();
            if depth >= MAX_DEPTH {
                return Err(AppError::InvalidEnvironment {
                    file: here,
                    reason: format!(
                        "`-r {path}` is nested more than {MAX_DEPTH} files deep (a cycle?)"
                    ),
                });
            }
            if !app::normalize(&file).starts_with(build_dir) {
                return Err(AppError::InvalidEnvironment {
                    file: here,
                    reason: format!(
                        "`-r {path}` is outside the app; only files pushed with the app can be read"
                    ),
                });
            }
            let bytes = app::read_bounded(build_dir, &file)?;
            let content = app::into_text(&file, bytes)?;
            let nested: Vec<String> = content.lines().map(str::to_string).collect();
            let folder = file.parent().unwrap_or(base).to_path_buf();
            expand_into(out, &nested, &label, &folder, build_dir, depth + 1)?;
            continue;
        }
        if line == Line::Nothing {
            continue;
        }
        out.push(Located {
            text: text.clone(),
            line,
            origin: here,
            base: base.to_path_buf(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_read_as_pip_reads_them() {
        let requirement = |name: &str| Line::Requirement { name: name.into() };
        assert_eq!(parse("Flask_Cors>=3.0 # web"), requirement("flask-cors"));
        assert_eq!(
            parse("numpy[extra]==2; python_version > '3.9'"),
            requirement("numpy")
        );
        assert_eq!(parse("git+https://github.com/a/b.git#egg=b"), Line::Direct);
        assert_eq!(parse("b @ https://example.org/b-1.0.tar.gz"), Line::Direct);
        assert_eq!(parse("-e git+https://github.com/a/b.git"), Line::Direct);
        assert_eq!(
            parse("-e ."),
            Line::Local {
                path: ".".into(),
                editable: true
            }
        );
        assert_eq!(
            parse("./wheels/x-1.0-py3-none-any.whl"),
            Line::Local {
                path: "./wheels/x-1.0-py3-none-any.whl".into(),
                editable: false
            }
        );
        assert_eq!(
            parse("--requirement=requirements.txt"),
            Line::File {
                path: "requirements.txt".into(),
                constraint: false
            }
        );
        assert_eq!(
            parse("-c constraints.txt"),
            Line::File {
                path: "constraints.txt".into(),
                constraint: true
            }
        );
        assert_eq!(
            parse("--index-url https://user:pw@pypi.example.org/simple"),
            Line::Where {
                option: "--index-url".into(),
                value: Some("https://user:pw@pypi.example.org/simple".into())
            }
        );
        assert_eq!(parse("--pre"), Line::Option);
        assert_eq!(
            parse("-rreqs.txt"),
            Line::File {
                path: "reqs.txt".into(),
                constraint: false
            }
        );
        // Found by reading the slicing: a wide character right after the dash.
        assert_eq!(parse("-é"), Line::Option);
        assert_eq!(parse("-éx"), Line::Option);
        assert_eq!(parse("  # only a comment"), Line::Nothing);
    }

    #[test]
    fn names_are_compared_in_their_normal_form() {
        assert_eq!(normalize("Foo.Bar__baz"), "foo-bar-baz");
        assert_eq!(normalize("scikit_learn"), "scikit-learn");
    }

    #[test]
    fn requirements_files_are_read_in_place_and_must_stay_in_the_app() {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path();
        std::fs::create_dir_all(app.join("reqs")).unwrap();
        std::fs::write(app.join("reqs/base.txt"), "tinydep\n-e ..\n# note\n").unwrap();
        let lines = vec!["fastcalc==1.0".to_string(), "-r reqs/base.txt".to_string()];
        let expanded = expand(&lines, "environment.yml", app).unwrap();
        let texts: Vec<_> = expanded.iter().map(Located::anchored).collect();
        assert_eq!(
            texts,
            vec![
                "fastcalc==1.0".to_string(),
                "tinydep".to_string(),
                format!("-e {}/reqs/..", app.display()),
            ]
        );
        assert_eq!(expanded[1].origin, "reqs/base.txt:1");

        let outside = vec!["-r ../elsewhere.txt".to_string()];
        let error = expand(&outside, "environment.yml", app).unwrap_err();
        assert!(error.to_string().contains("outside the app"), "{error}");

        std::fs::write(app.join("loop.txt"), "-r loop.txt\n").unwrap();
        let error = expand(&["-r loop.txt".to_string()], "environment.yml", app).unwrap_err();
        assert!(error.to_string().contains("a cycle"), "{error}");
    }
}
