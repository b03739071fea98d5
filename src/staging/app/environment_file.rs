//! `environment.yml`: what the buildpack acts on (channels, conda specs, the pip section,
//! variables), read with conda's own tolerance and messages that name the line to fix.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml_ng::Value;

use super::AppError;
use super::files::{file_label, into_text, read_bounded};

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

/// The environment file as text: UTF-8 (with or without a byte-order mark) or, as
/// PowerShell's `conda env export > environment.yml` writes it and conda reads it, UTF-16
/// with a byte-order mark.
pub(super) fn environment_text(path: &Path, bytes: Vec<u8>) -> Result<String, AppError> {
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
    if let Err(nesting) = crate::io::yaml_depth::check_flow_nesting(text) {
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
pub(super) fn without_extras(written: &str) -> std::borrow::Cow<'_, str> {
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
