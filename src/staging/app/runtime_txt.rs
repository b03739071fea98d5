//! `runtime.txt`: `python-3.11.9`, `python-3.11.x`, `python-2.7.18`.

use super::AppError;

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
