//! What the app asks for: its `environment.yml` or a lockfile (`lockfile/`), `runtime.txt`,
//! vendored packages, and the `BP_` settings set with `cf set-env`. Everything a user writes is
//! read here, once, with limits and with messages that point at the line to fix.

pub(crate) mod lockfile;

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

/// The environment file names conda accepts, in the order we look for them.
pub(crate) const ENVIRONMENT_FILES: [&str; 2] = ["environment.yml", "environment.yaml"];
pub(crate) const RUNTIME_TXT: &str = "runtime.txt";
pub(crate) const VENDOR_DIR: &str = "vendor";

/// An environment file larger than this is not an environment file; reading it whole would
/// only let a mistake (a data file committed under that name) exhaust staging memory.
const MAX_TEXT_FILE_BYTES: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    #[error("cannot read {file}: {source}")]
    Unreadable {
        file: String,
        source: std::io::Error,
    },
    #[error("{file} is {size} bytes")]
    TooLarge { file: String, size: u64 },
    #[error("{file} is not UTF-8 text")]
    NotUtf8 { file: String },
    #[error("{file} is not a regular file")]
    NotAFile { file: String },
    #[error("{file} is a link to {target}, outside the app")]
    LinkOutsideApp { file: String, target: String },
    #[error("{file} is a link to {target}, which does not exist")]
    BrokenLink { file: String, target: String },
    #[error("the app has no environment.yml and no lockfile")]
    NothingToInstall,
    #[error("{0}")]
    Lock(#[from] lockfile::LockError),
    #[error("{file} is not valid YAML: {reason}")]
    InvalidYaml {
        file: String,
        reason: String,
        line: Option<usize>,
        column: Option<usize>,
    },
    #[error("{file}: {reason}")]
    InvalidEnvironment { file: String, reason: String },
    #[error("{file} line {line}: conda cannot read the spec {spec:?}: {reason}")]
    InvalidSpec {
        file: String,
        line: usize,
        spec: String,
        reason: String,
    },
    #[error("runtime.txt: {reason}")]
    InvalidRuntimeTxt { content: String, reason: String },
    #[error("CF_STACK={stack} is not a stack this buildpack supports")]
    UnsupportedStack { stack: String },
    #[error("{variable}={value}: {reason}")]
    InvalidSetting {
        variable: &'static str,
        value: String,
        reason: String,
    },
}

/// One entry of `dependencies:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Dependency {
    /// A conda match spec, as written.
    Conda(String),
    /// The nested `- pip: [...]` list.
    Pip(Vec<String>),
}

/// The parts of an environment file the buildpack acts on; conda reads the file itself too.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EnvironmentSpec {
    pub(crate) name: Option<String>,
    pub(crate) channels: Vec<String>,
    pub(crate) dependencies: Vec<Dependency>,
    /// `variables:` become environment variables of the running app, as `conda activate`
    /// would set them.
    pub(crate) variables: BTreeMap<String, String>,
    /// What conda warns about and ignores (an unknown top-level key, a selector entry): said
    /// in the log, never a failure, since conda itself accepts the file.
    pub(crate) warnings: Vec<String>,
}

impl EnvironmentSpec {
    pub(crate) fn conda_specs(&self) -> impl Iterator<Item = &str> {
        self.dependencies
            .iter()
            .filter_map(|dependency| match dependency {
                Dependency::Conda(spec) => Some(spec.as_str()),
                Dependency::Pip(_) => None,
            })
    }

    pub(crate) fn pip_requirements(&self) -> impl Iterator<Item = &str> {
        self.dependencies
            .iter()
            .filter_map(|dependency| match dependency {
                Dependency::Pip(requirements) => Some(requirements.iter().map(String::as_str)),
                Dependency::Conda(_) => None,
            })
            .flatten()
    }
}

#[derive(Debug, Clone)]
pub(crate) struct EnvironmentFile {
    pub(crate) file_name: String,
    pub(crate) bytes: Vec<u8>,
    pub(crate) spec: EnvironmentSpec,
}

/// `runtime.txt`: `python-2.7.18`, `python-3.9.x`, `python-3`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RuntimeTxt {
    /// The version as written after `python-`, e.g. `3.9.x`.
    pub(crate) written: String,
    /// Its numeric segments, e.g. `[3, 9]` for `3.9.x`.
    pub(crate) segments: Vec<u64>,
    /// Whether the last segment was a wildcard (`3.9.x`) or absent (`3`).
    pub(crate) is_line: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) environment: Option<EnvironmentFile>,
    pub(crate) runtime_txt: Option<RuntimeTxt>,
    /// The lockfile staging installs from, when the app has one: it wins over environment.yml.
    pub(crate) lock: Option<lockfile::Lock>,
    /// The other files the app has that could have been installed from, for the log.
    pub(crate) passed_over: Vec<String>,
    /// `vendor/`, when it holds conda packages.
    pub(crate) vendor_dir: Option<PathBuf>,
}

impl App {
    /// What conda would warn about in the app's files and go on.
    pub(crate) fn warnings(&self) -> impl Iterator<Item = &str> {
        self.environment
            .iter()
            .flat_map(|environment| environment.spec.warnings.iter().map(String::as_str))
    }

    pub(crate) fn read(build_dir: &Path) -> Result<Self, AppError> {
        let environment_file = find_environment_file(build_dir);
        let mut candidates = lockfile::LOCK_FILES
            .iter()
            .filter(|(name, _)| present(&build_dir.join(name)))
            .map(|(name, format)| (*name, Some(*format)))
            .chain(
                environment_file
                    .iter()
                    .filter_map(|path| path.file_name()?.to_str())
                    .map(|name| (name, None)),
            );
        let chosen = candidates.next();
        let passed_over = candidates.map(|(name, _)| name.to_string()).collect();
        let (environment, lock) = match chosen {
            None => return Err(AppError::NothingToInstall),
            Some((name, None)) => (
                Some(read_environment_file(build_dir, &build_dir.join(name))?),
                None,
            ),
            Some((name, Some(format))) => {
                let path = build_dir.join(name);
                let bytes = read_bounded_to(build_dir, &path, lockfile::MAX_LOCK_BYTES)?;
                let text = into_text(&path, bytes)?;
                let wanted = std::env::var(lockfile::PIXI_ENVIRONMENT_VARIABLE).ok();
                (
                    None,
                    Some(lockfile::parse(name, format, &text, wanted.as_deref())?),
                )
            }
        };
        let runtime_txt = match read_optional_text(build_dir, &build_dir.join(RUNTIME_TXT))? {
            Some(text) => Some(parse_runtime_txt(&text)?),
            None => None,
        };
        let vendor = build_dir.join(VENDOR_DIR);
        let vendor_dir = if fs::symlink_metadata(&vendor).is_ok() {
            let resolved = resolve_inside_app(build_dir, &vendor)?;
            resolved.is_dir().then_some(resolved)
        } else {
            None
        };
        Ok(Self {
            environment,
            runtime_txt,
            lock,
            passed_over,
            vendor_dir,
        })
    }

    /// Whether this is an app for this buildpack at all (what `detect` answers).
    pub(crate) fn is_conda_app(build_dir: &Path) -> bool {
        find_environment_file(build_dir).is_some()
            || lockfile::LOCK_FILES
                .iter()
                .any(|(name, _)| present(&build_dir.join(name)))
    }

    /// The file staging installs from, and why, for the log.
    pub(crate) fn source_line(&self) -> Option<String> {
        let chosen = match (&self.lock, &self.environment) {
            (Some(lock), _) => &lock.file_name,
            (None, Some(environment)) => &environment.file_name,
            (None, None) => return None,
        };
        if self.passed_over.is_empty() {
            return None;
        }
        Some(format!(
            "Installing from {chosen}{}; not from {}",
            if self.lock.is_some() {
                " (a lockfile wins: it is what was tested)"
            } else {
                ""
            },
            self.passed_over.join(", ")
        ))
    }
}

/// Whether the app has an entry of that name that could be the file: a file or a link (a link
/// is then checked when it is read, so that a bad one is named rather than ignored).
fn present(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|metadata| !metadata.is_dir())
}

pub(crate) fn find_environment_file(build_dir: &Path) -> Option<PathBuf> {
    ENVIRONMENT_FILES
        .iter()
        .map(|name| build_dir.join(name))
        .find(|path| present(path))
}

fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// The real path of the app's `path`, which must stay inside the app. A link is followed only
/// when it points at another file of the app: one that leaves it would have staging read the
/// staging machine's files (`/etc/passwd`) instead of the developer's.
fn resolve_inside_app(build_dir: &Path, path: &Path) -> Result<PathBuf, AppError> {
    let file = file_label(path);
    let unreadable = |source| AppError::Unreadable {
        file: file.clone(),
        source,
    };
    let metadata = fs::symlink_metadata(path).map_err(unreadable)?;
    if !metadata.file_type().is_symlink() {
        return Ok(path.to_path_buf());
    }
    let target = fs::read_link(path).map_err(unreadable)?;
    let app = fs::canonicalize(build_dir).map_err(unreadable)?;
    match fs::canonicalize(path) {
        Ok(resolved) if resolved.starts_with(&app) => Ok(resolved),
        Ok(resolved) => Err(AppError::LinkOutsideApp {
            file,
            target: resolved.display().to_string(),
        }),
        // A dangling link may still point out of the app: staged elsewhere than it was
        // written, its target is simply not there. Say where it points, not just "broken".
        Err(_) => {
            let parent = path.parent().unwrap_or(build_dir);
            let lexical = normalize(&parent.join(&target));
            let outside = !lexical.starts_with(&app) && !lexical.starts_with(build_dir);
            if outside {
                Err(AppError::LinkOutsideApp {
                    file,
                    target: target.display().to_string(),
                })
            } else {
                Err(AppError::BrokenLink {
                    file,
                    target: target.display().to_string(),
                })
            }
        }
    }
}

/// `a/b/../c` as `a/c`, without asking the file system.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut normal = PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::ParentDir => {
                normal.pop();
            }
            std::path::Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

fn read_optional_text(build_dir: &Path, path: &Path) -> Result<Option<String>, AppError> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    into_text(path, read_bounded(build_dir, path)?).map(Some)
}

/// The environment file as text: UTF-8 (with or without a byte-order mark) or, as
/// PowerShell's `conda env export > environment.yml` writes it and conda reads it, UTF-16
/// with a byte-order mark.
fn environment_text(path: &Path, bytes: Vec<u8>) -> Result<String, AppError> {
    let decode = match bytes.get(..2) {
        Some([0xff, 0xfe]) => u16::from_le_bytes as fn([u8; 2]) -> u16,
        Some([0xfe, 0xff]) => u16::from_be_bytes,
        _ => return into_text(path, bytes),
    };
    let not_text = || AppError::NotUtf8 {
        file: file_label(path),
    };
    if bytes.len() % 2 != 0 {
        return Err(not_text());
    }
    let units = bytes[2..]
        .chunks_exact(2)
        .map(|pair| decode([pair[0], pair[1]]));
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| not_text())
}

/// Reads at most `MAX_TEXT_FILE_BYTES` of a regular file inside the app, refusing anything
/// larger without reading it, and anything that is not a file (a fifo would block staging).
pub(crate) fn read_bounded(build_dir: &Path, path: &Path) -> Result<Vec<u8>, AppError> {
    read_bounded_to(build_dir, path, MAX_TEXT_FILE_BYTES)
}

/// [`read_bounded`] with another limit.
fn read_bounded_to(build_dir: &Path, path: &Path, limit: u64) -> Result<Vec<u8>, AppError> {
    let file = file_label(path);
    let unreadable = |source| AppError::Unreadable {
        file: file.clone(),
        source,
    };
    let resolved = resolve_inside_app(build_dir, path)?;
    let metadata = fs::metadata(&resolved).map_err(unreadable)?;
    if !metadata.is_file() {
        return Err(AppError::NotAFile { file });
    }
    if metadata.len() > limit {
        return Err(AppError::TooLarge {
            file,
            size: metadata.len(),
        });
    }
    let handle = fs::File::open(&resolved).map_err(unreadable)?;
    let mut bytes = Vec::new();
    handle
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > limit {
        // It grew while being read.
        return Err(AppError::TooLarge {
            file,
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
}

pub(crate) fn into_text(path: &Path, bytes: Vec<u8>) -> Result<String, AppError> {
    let text = String::from_utf8(bytes).map_err(|_| AppError::NotUtf8 {
        file: file_label(path),
    })?;
    // Editors on Windows write a byte-order mark; conda and YAML do not want it.
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_string)
        .unwrap_or(text))
}

pub(crate) fn read_environment_file(
    build_dir: &Path,
    path: &Path,
) -> Result<EnvironmentFile, AppError> {
    let file_name = file_label(path);
    let bytes = read_bounded(build_dir, path)?;
    let text = environment_text(path, bytes.clone())?;
    let spec = parse_environment(&file_name, &text)?;
    Ok(EnvironmentFile {
        file_name,
        bytes,
        spec,
    })
}

/// Parses an environment file. YAML errors keep their line and column; structural errors name
/// the key and the entry.
pub(crate) fn parse_environment(file: &str, text: &str) -> Result<EnvironmentSpec, AppError> {
    let invalid = |reason: String| AppError::InvalidEnvironment {
        file: file.to_string(),
        reason,
    };
    if let Err(nesting) = check_flow_nesting(text) {
        return Err(AppError::InvalidYaml {
            file: file.to_string(),
            reason: nesting.to_string(),
            line: Some(nesting.line),
            column: Some(nesting.column),
        });
    }
    let document: Value = serde_yaml_ng::from_str(text).map_err(|error| {
        let location = error.location();
        let mut line = location.as_ref().map(serde_yaml_ng::Location::line);
        let mut column = location.as_ref().map(serde_yaml_ng::Location::column);
        // The parser points at the mapping that holds a duplicate key, often line 1; the
        // line to fix is where the key appears the second time.
        if let (Some(at), Some(indent)) = (line, column) {
            if let Some(second) = duplicate_key_line(text, &error.to_string(), at, indent) {
                line = Some(second);
                column = Some(indent);
            }
        }
        let reason = error.to_string();
        let reason = match location {
            Some(location) if line != Some(location.line()) => reason
                .split(" at line ")
                .next()
                .unwrap_or(&reason)
                .to_string(),
            _ => reason,
        };
        AppError::InvalidYaml {
            file: file.to_string(),
            reason,
            line,
            column,
        }
    })?;
    let mapping = match document {
        Value::Mapping(mapping) => mapping,
        Value::Null => return Err(invalid("the file is empty".into())),
        other => {
            return Err(invalid(format!(
                "the top level must be a mapping with `dependencies:`, not {}",
                describe(&other)
            )));
        }
    };
    let mut spec = EnvironmentSpec::default();
    for (key, value) in mapping {
        let Value::String(key) = key else {
            return Err(invalid(format!("the key {} is not a name", describe(&key))));
        };
        match key.as_str() {
            "name" => {
                spec.name =
                    Some(scalar(&value).ok_or_else(|| invalid("`name` must be text".into()))?)
            }
            "channels" => spec.channels = string_list(&value, "channels").map_err(invalid)?,
            "dependencies" => {
                spec.dependencies = dependencies(&value, &mut spec.warnings).map_err(invalid)?;
            }
            "variables" => spec.variables = variables(&value).map_err(invalid)?,
            // conda reads `prefix` too, but the buildpack decides where the environment lives.
            "prefix" => {}
            // conda 26 warns `EnvironmentSectionNotValid` and goes on (conda-lock's
            // `platforms:`, for one): so do we.
            other => spec.warnings.push(format!(
                "{file}: the key `{other}` is not one conda reads (`name`, `channels`, \
                 `dependencies`, `variables`, `prefix`); conda ignores it, and so does the \
                 buildpack"
            )),
        }
    }
    for written in spec.conda_specs() {
        check_conda_spec(written).map_err(|reason| AppError::InvalidSpec {
            file: file.to_string(),
            line: line_of(text, written),
            spec: written.to_string(),
            reason,
        })?;
    }
    Ok(spec)
}

/// conda's sloppy operators, as rattler reads them: `python=>3.11` and `numpy=<2` are accepted
/// by conda (it reads `=` then `>3.11`), so the buildpack reads them too.
pub(crate) fn tolerant_spec(written: &str) -> std::borrow::Cow<'_, str> {
    if written.contains("=>") || written.contains("=<") {
        written.replace("=>", ">=").replace("=<", "<=").into()
    } else {
        written.into()
    }
}

/// Refuses, before anything is downloaded, the specs conda 26 refuses to parse (a broken
/// operator like `numpy>=<1`, a name with brackets left open). Anything conda merely fails
/// to find, or reads in ways rattler does not (regex versions like `1.*.1`), is left for
/// conda to judge, so that nothing conda accepts is refused here.
fn check_conda_spec(written: &str) -> Result<(), String> {
    use rattler_conda_types::{MatchSpec, ParseMatchSpecError, ParseStrictness};
    let spec = without_extras(written);
    match MatchSpec::from_str(&tolerant_spec(&spec), ParseStrictness::Lenient) {
        Ok(_) => Ok(()),
        Err(error @ ParseMatchSpecError::InvalidVersionAndBuild(_)) => Err(format!(
            "{error}; write a version constraint like `numpy>=1.26`, `numpy=1.26` or \
             `numpy>=1.26,<2`"
        )),
        Err(error @ ParseMatchSpecError::InvalidPackageNameMatcher(_)) => Err(format!(
            "{error}; a package name has letters, digits, `-`, `_` and `.`, and options go in \
             closed brackets like `numpy[version='>=1.26']`"
        )),
        Err(_) => Ok(()),
    }
}

/// `kiwipy[rmq]~=0.9.0` as conda 26 reads it, `kiwipy~=0.9.0`: PyPI-style extras (a bracket
/// right after the name holding only names, no `key=value` option) are dropped, and the rest
/// goes on to the solve. Anything else is left as written.
fn without_extras(written: &str) -> std::borrow::Cow<'_, str> {
    let Some(open) = written.find('[') else {
        return written.into();
    };
    let Some(length) = written[open..].find(']') else {
        return written.into();
    };
    let inside = &written[open + 1..open + length];
    let name_only = written[..open]
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let extras_only = inside
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ',' | ' '));
    if open == 0 || !name_only || !extras_only {
        return written.into();
    }
    format!("{}{}", &written[..open], &written[open + length + 1..]).into()
}

/// The 1-based line of `environment.yml` where the spec is written (1 if not found, e.g. in
/// a flow list on the first line).
fn line_of(text: &str, written: &str) -> usize {
    text.lines()
        .position(|line| line.contains(written))
        .map_or(1, |index| index + 1)
}

/// For serde_yaml's `duplicate entry with key "K"` in the block mapping at `line`, `column`:
/// the line where K appears again at that indentation.
fn duplicate_key_line(text: &str, reason: &str, line: usize, column: usize) -> Option<usize> {
    let key = reason
        .strip_prefix("duplicate entry with key \"")?
        .split('"')
        .next()?;
    let indent = column.checked_sub(1)?;
    let mut seen = 0;
    for (number, content) in text.lines().enumerate().skip(line.saturating_sub(1)) {
        let Some(rest) = content.get(indent..) else {
            continue;
        };
        let at_indent = content[..indent].chars().all(|c| c == ' ');
        let names_key = [
            format!("{key}:"),
            format!("\"{key}\":"),
            format!("'{key}':"),
        ]
        .iter()
        .any(|form| rest.starts_with(form.as_str()));
        if at_indent && names_key {
            seen += 1;
            if seen == 2 {
                return Some(number + 1);
            }
        }
    }
    None
}

/// Brackets nested deeper than this are refused before the YAML parser sees them.
const MAX_FLOW_NESTING: usize = 256;

/// Where a YAML text nests its `[` and `{` deeper than [`MAX_FLOW_NESTING`].
#[derive(Debug, thiserror::Error)]
#[error("brackets nested more than {MAX_FLOW_NESTING} deep at line {line}, column {column}")]
pub(crate) struct TooDeep {
    pub(crate) line: usize,
    pub(crate) column: usize,
}

/// libyaml's scanner (under serde_yaml) revisits every open bracket for every token, so the
/// time to reject `[[[[...` grows with the square of its length: a megabyte of brackets
/// would hold staging for minutes before the parser's own depth limit ever speaks. Every
/// bracket counts here, quoted or not: no real file nests anywhere near this deep, so the
/// count needs no YAML rules that an input could play against it.
pub(crate) fn check_flow_nesting(text: &str) -> Result<(), TooDeep> {
    let mut depth: usize = 0;
    let (mut line, mut column) = (1, 0);
    for character in text.chars() {
        column += 1;
        match character {
            '\n' => {
                line += 1;
                column = 0;
            }
            '[' | '{' => {
                depth += 1;
                if depth > MAX_FLOW_NESTING {
                    return Err(TooDeep { line, column });
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "an empty value",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// Text, or a number or boolean written where text was meant (`- 3.9` is `3.9`).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn string_list(value: &Value, key: &str) -> Result<Vec<String>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Sequence(items) => items
            .iter()
            .enumerate()
            .map(|(index, item)| {
                scalar(item).ok_or_else(|| {
                    format!(
                        "`{key}` entry {} is {}, not text",
                        index + 1,
                        describe(item)
                    )
                })
            })
            .collect(),
        other => Err(format!("`{key}` must be a list, not {}", describe(other))),
    }
}

fn dependencies(value: &Value, warnings: &mut Vec<String>) -> Result<Vec<Dependency>, String> {
    let Value::Sequence(items) = value else {
        if matches!(value, Value::Null) {
            return Ok(Vec::new());
        }
        return Err(format!(
            "`dependencies` must be a list, not {}",
            describe(value)
        ));
    };
    let mut result = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let position = index + 1;
        match item {
            Value::Mapping(mapping) => {
                let mut pip = None;
                for (key, requirements) in mapping {
                    if key.as_str() == Some("pip") {
                        pip = Some(string_list(requirements, "pip")?);
                    } else {
                        // conda 26 skips mapping entries it does not know, such as the
                        // `sel(linux): numpy` selectors of mamba and boa recipes.
                        let key = scalar(key).unwrap_or_else(|| describe(key).to_string());
                        let what = scalar(requirements).unwrap_or_default();
                        warnings.push(format!(
                            "`dependencies` entry {position} (`{key}: {what}`) is not a package \
                             spec; conda skips it, so {} will not be installed. Write the \
                             package as a plain entry (`- {}`) if the app needs it",
                            if what.is_empty() { "it" } else { what.as_str() },
                            if what.is_empty() {
                                "NAME"
                            } else {
                                what.as_str()
                            },
                        ));
                    }
                }
                if let Some(pip) = pip {
                    result.push(Dependency::Pip(pip));
                }
            }
            other => {
                let spec = scalar(other).ok_or_else(|| {
                    format!(
                        "`dependencies` entry {position} is {}, not a package spec like \
                         `numpy=1.26`",
                        describe(other)
                    )
                })?;
                if spec.trim().is_empty() {
                    return Err(format!("`dependencies` entry {position} is empty"));
                }
                result.push(Dependency::Conda(spec.trim().to_string()));
            }
        }
    }
    Ok(result)
}

fn variables(value: &Value) -> Result<BTreeMap<String, String>, String> {
    let Value::Mapping(mapping) = value else {
        if matches!(value, Value::Null) {
            return Ok(BTreeMap::new());
        }
        return Err(format!(
            "`variables` must be a mapping, not {}",
            describe(value)
        ));
    };
    let mut result = BTreeMap::new();
    for (key, value) in mapping {
        let name = scalar(key).ok_or_else(|| "a `variables` name is not text".to_string())?;
        let valid_name = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(format!(
                "`variables` has `{name}`, which is not an environment variable name"
            ));
        }
        let value = match value {
            Value::Null => String::new(),
            other => scalar(other).ok_or_else(|| {
                format!("`variables.{name}` must be text, not {}", describe(other))
            })?,
        };
        result.insert(name, value);
    }
    Ok(result)
}

/// Parses `runtime.txt`. Comment lines, blank lines, CRLF and surrounding spaces are fine;
/// anything but one `python-<version>` line is an error that shows what was found.
pub(crate) fn parse_runtime_txt(text: &str) -> Result<RuntimeTxt, AppError> {
    let invalid = |reason: &str| AppError::InvalidRuntimeTxt {
        content: text.trim().chars().take(80).collect(),
        reason: reason.to_string(),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter(|line| !line.is_empty())
        .collect();
    let line = match lines.as_slice() {
        [] => return Err(invalid("the file names no Python version")),
        [line] => *line,
        _ => return Err(invalid("the file must hold one line like `python-3.11.9`")),
    };
    let Some(written) = line
        .strip_prefix("python-")
        .or_else(|| line.strip_prefix("python="))
    else {
        return Err(invalid(
            "the line must start with `python-`, e.g. `python-3.11.9`",
        ));
    };
    let mut segments = Vec::new();
    let mut is_line = false;
    let parts: Vec<&str> = written.split('.').collect();
    for (index, part) in parts.iter().enumerate() {
        if (*part == "x" || *part == "*") && index == parts.len() - 1 && index > 0 {
            is_line = true;
        } else if let Ok(number) = part.parse::<u64>() {
            if part.len() > 1 && part.starts_with('0') {
                return Err(invalid("version numbers do not start with 0"));
            }
            segments.push(number);
        } else {
            return Err(invalid(
                "the version must be numbers separated by dots, e.g. `python-3.11.9` or \
                 `python-3.11.x`",
            ));
        }
    }
    if segments.len() > 3 {
        return Err(invalid("a Python version has at most three numbers"));
    }
    if segments.len() < 3 {
        is_line = true;
    }
    Ok(RuntimeTxt {
        written: written.to_string(),
        segments,
        is_line,
    })
}

/// The conda distribution the app chose with `BP_CONDA_DISTRIBUTION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Distribution {
    Miniconda,
    Miniforge,
}

impl Distribution {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Miniconda => "miniconda",
            Self::Miniforge => "miniforge",
        }
    }
}

/// The buildpack's settings, from the app's environment (`cf set-env`, manifest `env:`).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `BP_CONDA_DISTRIBUTION`; unset, the manifest's `default_versions` decide.
    pub(crate) distribution: Option<Distribution>,
    /// `BP_CONDA_VERSION`: an exact installer version or a line like `4.12.x`.
    pub(crate) conda_version: Option<String>,
    /// `CF_STACK`, checked against the stacks this buildpack supports.
    pub(crate) stack: &'static crate::stack::Stack,
    /// `CF_STACK` was unset (a local run): the stack is the default one.
    pub(crate) stack_defaulted: bool,
    /// `MEMORY_LIMIT` in MiB, as CF sets it (`1024m`).
    pub(crate) memory_limit_mib: Option<u64>,
    /// `BP_CONDA_CLEAR_CACHE`: start this staging from an empty app cache.
    pub(crate) clear_cache: bool,
    /// `BP_CONDA_SLIM`: leave out of the droplet what no running app needs (default on).
    pub(crate) slim: bool,
}

impl Settings {
    pub(crate) fn from_env() -> Result<Self, AppError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AppError> {
        let distribution_value = lookup("BP_CONDA_DISTRIBUTION")
            .map(|value| value.trim().to_ascii_lowercase())
            .filter(|value| !value.is_empty());
        let distribution = match distribution_value.as_deref() {
            None => None,
            Some("miniconda" | "miniconda3" | "anaconda") => Some(Distribution::Miniconda),
            Some("miniforge" | "miniforge3" | "conda-forge") => Some(Distribution::Miniforge),
            Some(other) => {
                return Err(AppError::InvalidSetting {
                    variable: "BP_CONDA_DISTRIBUTION",
                    value: other.to_string(),
                    reason: "choose `miniconda` or `miniforge`".into(),
                });
            }
        };
        let conda_version = lookup("BP_CONDA_VERSION")
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty());
        if let Some(version) = &conda_version {
            let valid = version
                .split('.')
                .all(|part| part == "x" || part == "*" || part.parse::<u64>().is_ok());
            if !valid {
                return Err(AppError::InvalidSetting {
                    variable: "BP_CONDA_VERSION",
                    value: version.clone(),
                    reason: "write an installer version like `24.7.1` or a line like `4.12.x`"
                        .into(),
                });
            }
        }
        let named_stack = lookup("CF_STACK")
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty());
        let stack_defaulted = named_stack.is_none();
        let stack_name = named_stack.unwrap_or_else(|| crate::stack::DEFAULT.to_string());
        let stack = crate::stack::find(&stack_name)
            .ok_or(AppError::UnsupportedStack { stack: stack_name })?;
        let memory_limit_mib = lookup("MEMORY_LIMIT").and_then(|value| parse_memory_limit(&value));
        let clear_cache = lookup("BP_CONDA_CLEAR_CACHE").is_some_and(|value| {
            matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes"
            )
        });
        let slim = match lookup("BP_CONDA_SLIM")
            .map(|value| value.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("" | "1" | "true" | "yes" | "on") => true,
            Some("0" | "false" | "no" | "off") => false,
            Some(other) => {
                return Err(AppError::InvalidSetting {
                    variable: "BP_CONDA_SLIM",
                    value: other.to_string(),
                    reason: "write `false` to keep the environment as conda installed it, or \
                             `true` (the default)"
                        .into(),
                });
            }
        };
        Ok(Self {
            distribution,
            conda_version,
            stack,
            stack_defaulted,
            memory_limit_mib,
            clear_cache,
            slim,
        })
    }
}

/// `1024m`, `2g`, `2G` as Cloud Foundry writes `MEMORY_LIMIT`.
pub(crate) fn parse_memory_limit(value: &str) -> Option<u64> {
    let value = value.trim().to_ascii_lowercase();
    let (number, factor) = if let Some(number) = value.strip_suffix('g') {
        (number, 1024)
    } else if let Some(number) = value.strip_suffix('m') {
        (number, 1)
    } else {
        (value.as_str(), 1)
    };
    number.trim().parse::<u64>().ok().map(|n| n * factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typical_environment_file_is_understood() {
        let spec = parse_environment(
            "environment.yml",
            "name: app\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - numpy>=1.26\n  - pip:\n    - gunicorn==22.0\nvariables:\n  MODE: prod\n",
        )
        .unwrap();
        assert_eq!(spec.channels, ["conda-forge"]);
        assert_eq!(
            spec.conda_specs().collect::<Vec<_>>(),
            ["python=3.11", "numpy>=1.26"]
        );
        assert_eq!(
            spec.pip_requirements().collect::<Vec<_>>(),
            ["gunicorn==22.0"]
        );
        assert_eq!(spec.variables["MODE"], "prod");
    }

    #[test]
    fn crlf_bom_and_flow_lists_are_accepted() {
        let text = "\u{feff}dependencies: [python=2.7, six]\r\nchannels: [main]\r\n";
        let text = text.strip_prefix('\u{feff}').unwrap();
        let spec = parse_environment("environment.yml", text).unwrap();
        assert_eq!(spec.conda_specs().count(), 2);
    }

    #[test]
    fn yaml_errors_carry_line_and_column() {
        let error = parse_environment("environment.yml", "dependencies:\n  - numpy\n - bad: [\n")
            .unwrap_err();
        match error {
            AppError::InvalidYaml { line, column, .. } => {
                assert!(line.is_some() && column.is_some(), "{line:?} {column:?}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn what_conda_26_accepts_is_accepted_with_its_warnings() {
        // An unknown key (conda-lock's `platforms:`) and a mamba selector: conda warns or
        // skips, and creates the environment.
        let spec = parse_environment(
            "environment.yml",
            "channels: [conda-forge]\nplatforms: [linux-64]\ndependencies:\n  - python=>3.11\n  - numpy=<3\n  - sel(linux): scipy\n",
        )
        .unwrap();
        assert_eq!(
            spec.conda_specs().collect::<Vec<_>>(),
            ["python=>3.11", "numpy=<3"]
        );
        assert!(
            spec.warnings[0].contains("`platforms`"),
            "{:?}",
            spec.warnings
        );
        assert!(
            spec.warnings[1].contains("entry 3")
                && spec.warnings[1].contains("scipy will not be installed"),
            "{:?}",
            spec.warnings
        );
        // conda reads a regex version; it may find nothing, but that is conda's to say.
        assert!(parse_environment("environment.yml", "dependencies: [numpy=1.*.1]\n").is_ok());
    }

    #[test]
    fn a_utf16_file_from_powershell_is_read() {
        let text = "channels: [conda-forge]\r\ndependencies:\r\n  - python=3.11\r\n";
        for little_endian in [true, false] {
            let mut bytes = if little_endian {
                vec![0xff, 0xfe]
            } else {
                vec![0xfe, 0xff]
            };
            for unit in text.encode_utf16() {
                bytes.extend(if little_endian {
                    unit.to_le_bytes()
                } else {
                    unit.to_be_bytes()
                });
            }
            let decoded = environment_text(Path::new("environment.yml"), bytes).unwrap();
            let spec = parse_environment("environment.yml", &decoded).unwrap();
            assert_eq!(spec.conda_specs().collect::<Vec<_>>(), ["python=3.11"]);
        }
        assert!(environment_text(Path::new("environment.yml"), vec![0xff, 0xfe, 0x41]).is_err());
        // Other files are UTF-8 only: a runtime.txt starting with those bytes is not text.
        assert!(into_text(Path::new("runtime.txt"), vec![0xff, 0xfe, 0x41, 0]).is_err());
    }

    #[test]
    fn a_spec_conda_cannot_parse_is_refused_naming_its_line() {
        for (text, line, spec) in [
            (
                "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy>=<1\n",
                4,
                "numpy>=<1",
            ),
            (
                "dependencies:\n  - \"numpy[version=>1\"\n",
                2,
                "numpy[version=>1",
            ),
        ] {
            match parse_environment("environment.yml", text) {
                Err(AppError::InvalidSpec {
                    line: found,
                    spec: found_spec,
                    ..
                }) => {
                    assert_eq!((found, found_spec.as_str()), (line, spec));
                }
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn pypi_style_extras_are_left_to_conda_which_drops_them() {
        // conda 26.7.1 reads `kiwipy[rmq]~=0.9.0` as `kiwipy ~=0.9.0` and solves.
        for spec in [
            "kiwipy[rmq]~=0.9.0",
            "flask[async,dotenv]>=3",
            "dask[complete]",
        ] {
            let text = format!("dependencies:\n  - python=3.11\n  - {spec}\n");
            let parsed = parse_environment("environment.yml", &text)
                .unwrap_or_else(|error| panic!("{spec} was refused: {error}"));
            assert!(parsed.conda_specs().any(|written| written == spec));
        }
        assert_eq!(
            without_extras("numpy[version='>=1']"),
            "numpy[version='>=1']"
        );
        assert_eq!(without_extras("kiwipy[rmq]~=0.9.0"), "kiwipy~=0.9.0");
    }

    #[test]
    fn structural_mistakes_name_the_entry() {
        let error = parse_environment("environment.yml", "dependencies: numpy\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("must be a list"), "{error}");
        let error = parse_environment("environment.yml", "")
            .unwrap_err()
            .to_string();
        assert!(error.contains("empty"), "{error}");
        let error = parse_environment(
            "environment.yml",
            "name: x\ndependencies: [a]\nchannels: []\ndependencies: [b]\n",
        )
        .unwrap_err();
        assert!(error.to_string().contains("duplicate"), "{error}");
        assert!(
            matches!(
                error,
                AppError::InvalidYaml {
                    line: Some(4),
                    column: Some(1),
                    ..
                }
            ),
            "{error:?}"
        );
        // A misspelt key is conda's EnvironmentSectionNotValid: a warning naming it.
        let spec = parse_environment("environment.yml", "depends: [a]\n").unwrap();
        assert!(
            spec.warnings[0].contains("the key `depends`"),
            "{:?}",
            spec.warnings
        );
    }

    #[test]
    fn alias_bombs_are_refused_not_expanded() {
        let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
        for level in b'b'..=b'z' {
            let previous = char::from(level - 1);
            let name = char::from(level);
            text.push_str(&format!(
                "{name}: &{name} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"
            ));
        }
        text.push_str("dependencies: *z\n");
        let started = std::time::Instant::now();
        assert!(parse_environment("environment.yml", &text).is_err());
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    fn app_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let app = dir.path().join("app");
        fs::create_dir_all(&app).unwrap();
        for (name, text) in files {
            let path = app.join(name);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        dir
    }

    #[test]
    fn links_are_followed_only_inside_the_app() {
        let dir = app_with(&[("envs/prod.yml", "dependencies: [numpy]\n")]);
        let app = dir.path().join("app");
        std::os::unix::fs::symlink("envs/prod.yml", app.join("environment.yml")).unwrap();
        let read = App::read(&app).unwrap();
        assert_eq!(read.environment.unwrap().spec.conda_specs().count(), 1);

        fs::write(dir.path().join("outside.yml"), "dependencies: [numpy]\n").unwrap();
        fs::remove_file(app.join("environment.yml")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.yml"), app.join("environment.yml"))
            .unwrap();
        let error = App::read(&app).unwrap_err().to_string();
        assert!(
            error.contains("environment.yml is a link to") && error.contains("outside.yml"),
            "{error}"
        );

        fs::remove_file(app.join("environment.yml")).unwrap();
        std::os::unix::fs::symlink("missing.yml", app.join("environment.yml")).unwrap();
        assert!(matches!(App::read(&app), Err(AppError::BrokenLink { .. })));
        // Dangling and pointing out of the app: named as what it is.
        fs::remove_file(app.join("environment.yml")).unwrap();
        std::os::unix::fs::symlink("../../nowhere.yml", app.join("environment.yml")).unwrap();
        assert!(matches!(
            App::read(&app),
            Err(AppError::LinkOutsideApp { .. })
        ));
        assert!(App::is_conda_app(&app), "a bad link is named, not ignored");

        fs::remove_file(app.join("environment.yml")).unwrap();
        fs::write(app.join("environment.yml"), "dependencies: [numpy]\n").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", app.join("runtime.txt")).unwrap();
        assert!(
            matches!(App::read(&app), Err(AppError::LinkOutsideApp { ref file, .. }) if file == "runtime.txt")
        );
        fs::remove_file(app.join("runtime.txt")).unwrap();
        std::os::unix::fs::symlink(dir.path(), app.join("vendor")).unwrap();
        assert!(
            matches!(App::read(&app), Err(AppError::LinkOutsideApp { ref file, .. }) if file == "vendor")
        );
    }

    #[test]
    fn only_regular_files_are_read() {
        let dir = app_with(&[]);
        let app = dir.path().join("app");
        let fifo = std::ffi::CString::new(app.join("environment.yml").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        // A fifo would block a reader forever; it is refused without being opened.
        assert!(matches!(App::read(&app), Err(AppError::NotAFile { .. })));
        fs::remove_file(app.join("environment.yml")).unwrap();
        fs::write(app.join("environment.yml"), "dependencies: [numpy]\n").unwrap();
        fs::create_dir(app.join("runtime.txt")).unwrap();
        assert!(matches!(App::read(&app), Err(AppError::NotAFile { .. })));
    }

    #[test]
    fn an_app_without_an_environment_is_refused() {
        let dir = app_with(&[("app.py", "print(1)\n"), ("runtime.txt", "python-3.11\n")]);
        assert!(matches!(
            App::read(&dir.path().join("app")),
            Err(AppError::NothingToInstall)
        ));
    }

    #[test]
    fn deep_nesting_is_refused_quickly() {
        let text = format!("dependencies: {}", "[".repeat(100_000));
        let started = std::time::Instant::now();
        let error = parse_environment("environment.yml", &text).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("brackets nested more than 256 deep at line 1, column 271"),
            "{error}"
        );
        assert!(started.elapsed() < std::time::Duration::from_millis(500));
        let braces = format!("dependencies: {}", "{a: ".repeat(250_000));
        let started = std::time::Instant::now();
        assert!(parse_environment("environment.yml", &braces).is_err());
        assert!(started.elapsed() < std::time::Duration::from_millis(500));
        // Brackets that close again are as deep as they look.
        let wide = format!(
            "dependencies: [{}]\n",
            vec!["\"numpy[version='>=1.2']\""; 5_000].join(", ")
        );
        assert_eq!(
            parse_environment("environment.yml", &wide)
                .unwrap()
                .conda_specs()
                .count(),
            5_000
        );
        let text = format!(
            "dependencies:\n{}",
            (0..5_000)
                .map(|depth| format!("{}- \n", "  ".repeat(depth)))
                .collect::<String>()
        );
        assert!(parse_environment("environment.yml", &text).is_err());
    }

    #[test]
    fn runtime_txt_forms() {
        let parse = |text| parse_runtime_txt(text).unwrap();
        assert_eq!(parse("python-2.7.18").segments, [2, 7, 18]);
        assert!(!parse("python-2.7.18").is_line);
        assert_eq!(parse("python-3.9.x").segments, [3, 9]);
        assert!(parse("python-3.9.x").is_line);
        assert_eq!(parse("python-3").segments, [3]);
        assert_eq!(parse("\u{feff}python-3.11.9\r\n").segments, [3, 11, 9]);
        assert_eq!(
            parse("# pinned\n  python-3.12.4   \n\n").segments,
            [3, 12, 4]
        );
        assert_eq!(parse("python-3.10 # LTS").segments, [3, 10]);
    }

    #[test]
    fn runtime_txt_garbage_is_refused_with_the_reason() {
        for text in [
            "",
            "   \n# only a comment\n",
            "python-banana",
            "3.9",
            "python-3.9\npython-2.7",
            "python-3..1",
            "python-3.9.1.2",
            "ruby-3.2",
        ] {
            assert!(parse_runtime_txt(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn settings_come_from_bp_variables() {
        let settings = Settings::from_lookup(|name| match name {
            "BP_CONDA_DISTRIBUTION" => Some("Miniforge".into()),
            "BP_CONDA_VERSION" => Some("24.7.x".into()),
            "MEMORY_LIMIT" => Some("2g".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(settings.distribution, Some(Distribution::Miniforge));
        assert_eq!(settings.conda_version.as_deref(), Some("24.7.x"));
        assert_eq!(settings.stack.name, "cflinuxfs4");
        assert!(settings.stack_defaulted);
        assert_eq!(settings.memory_limit_mib, Some(2048));
        let on_fs5 =
            Settings::from_lookup(|name| (name == "CF_STACK").then(|| "cflinuxfs5".into()))
                .unwrap();
        assert_eq!(
            (on_fs5.stack.name, on_fs5.stack_defaulted),
            ("cflinuxfs5", false)
        );
        assert!(matches!(
            Settings::from_lookup(|name| (name == "CF_STACK").then(|| "windows2016".into())),
            Err(AppError::UnsupportedStack { stack }) if stack == "windows2016"
        ));
        assert!(
            Settings::from_lookup(
                |name| (name == "BP_CONDA_DISTRIBUTION").then(|| "anaconda-enterprise".into())
            )
            .is_err()
        );
        assert!(
            Settings::from_lookup(|name| (name == "BP_CONDA_VERSION").then(|| "latest".into()))
                .is_err()
        );
    }

    #[test]
    fn slimming_is_on_unless_bp_conda_slim_says_false() {
        let slim = |value: Option<&str>| {
            Settings::from_lookup(|name| {
                (name == "BP_CONDA_SLIM")
                    .then(|| value.map(str::to_string))
                    .flatten()
            })
            .map(|settings| settings.slim)
        };
        assert_eq!(slim(None).ok(), Some(true));
        assert_eq!(slim(Some("true")).ok(), Some(true));
        assert_eq!(slim(Some("FALSE")).ok(), Some(false));
        assert_eq!(slim(Some("0")).ok(), Some(false));
        assert!(slim(Some("sometimes")).is_err());
    }
}
