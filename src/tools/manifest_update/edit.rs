//! Rewrites manifest.yml as text, line by line, so that its comments, blank lines, key order
//! and quoting survive: a YAML library would drop every comment operators wrote. Only block
//! lists (`- name: ...` items under a top-level key) are edited; anything else is refused
//! rather than guessed at. Also the readable diff of a proposal.

use serde_yaml_ng::Value;

#[derive(Debug, thiserror::Error)]
pub(crate) enum EditError {
    #[error("`{key}:` is not a block list of `- name:` entries ({reason})")]
    Layout { key: &'static str, reason: String },
    #[error("the manifest has no `dependencies:` entry named {name} {version}")]
    NoSuchEntry { name: String, version: String },
    #[error("default_versions has no entry named {0}")]
    NoSuchDefault(String),
}

/// An installer entry to add, above the newest entry of its line.
pub(crate) struct NewEntry {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) uri: String,
    pub(crate) sha256: String,
    pub(crate) cf_stacks: Vec<String>,
    /// One comment line above the entry: where its sha256 came from.
    pub(crate) comment: String,
}

/// A `dependency_deprecation_dates` entry to add at the end of that list.
pub(crate) struct NewDeprecation {
    pub(crate) name: String,
    pub(crate) version_line: String,
    pub(crate) date: String,
    pub(crate) link: String,
}

#[derive(Default)]
pub(crate) struct Edits {
    pub(crate) add: Vec<NewEntry>,
    /// `(name, version)` of entries to take out, with the comment lines just above them.
    pub(crate) remove: Vec<(String, String)>,
    /// `(name, version)`: the `version:` of that `default_versions` entry.
    pub(crate) defaults: Vec<(String, String)>,
    pub(crate) deprecations: Vec<NewDeprecation>,
}

/// One `- ` item of a top-level block list.
struct Item {
    /// The first line: its comments, or the `- ` line.
    start: usize,
    dash: usize,
    /// One past its last line that is not blank or a comment.
    end: usize,
    name: String,
    version: Option<String>,
}

struct Section {
    key_line: usize,
    indent: usize,
    items: Vec<Item>,
}

enum Op {
    Remove(usize),
    Replace(String),
    Insert(Vec<String>),
}

/// `text` with `edits` applied.
pub(crate) fn apply(text: &str, edits: &Edits) -> Result<String, EditError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut ops: Vec<(usize, Op)> = Vec::new();
    let dependencies = section(&lines, "dependencies")?.ok_or(EditError::Layout {
        key: "dependencies",
        reason: "there is no such key".into(),
    })?;
    let indent = " ".repeat(dependencies.indent);
    // Entries of one line go above its first entry, in the order given.
    let mut blocks: Vec<(usize, Vec<String>)> = Vec::new();
    for entry in &edits.add {
        let at = dependencies
            .items
            .iter()
            .find(|item| item.name == entry.name)
            .map_or(
                dependencies
                    .items
                    .last()
                    .map_or(dependencies.key_line + 1, |i| i.end),
                |item| item.start,
            );
        let block = match blocks.iter_mut().find(|(index, _)| *index == at) {
            Some((_, block)) => block,
            None => {
                blocks.push((at, Vec::new()));
                &mut blocks.last_mut().expect("just pushed").1
            }
        };
        block.push(format!("{indent}{}", entry.comment));
        block.push(format!("{indent}- name: {}", scalar(&entry.name)));
        block.push(format!("{indent}  version: {}", scalar(&entry.version)));
        block.push(format!("{indent}  uri: {}", scalar(&entry.uri)));
        block.push(format!("{indent}  sha256: {}", scalar(&entry.sha256)));
        block.push(format!("{indent}  cf_stacks:"));
        for stack in &entry.cf_stacks {
            block.push(format!("{indent}    - {}", scalar(stack)));
        }
    }
    ops.extend(
        blocks
            .into_iter()
            .map(|(at, block)| (at, Op::Insert(block))),
    );
    for (name, version) in &edits.remove {
        let item = dependencies
            .items
            .iter()
            .find(|item| item.name == *name && item.version.as_deref() == Some(version.as_str()))
            .ok_or_else(|| EditError::NoSuchEntry {
                name: name.clone(),
                version: version.clone(),
            })?;
        ops.push((item.start, Op::Remove(item.end)));
    }
    if !edits.defaults.is_empty() {
        let defaults = section(&lines, "default_versions")?.ok_or(EditError::Layout {
            key: "default_versions",
            reason: "there is no such key".into(),
        })?;
        for (name, version) in &edits.defaults {
            let item = defaults
                .items
                .iter()
                .find(|item| item.name == *name)
                .ok_or_else(|| EditError::NoSuchDefault(name.clone()))?;
            let line = (item.dash..item.end)
                .find(|&index| field(lines[index]) == Some("version"))
                .ok_or_else(|| EditError::Layout {
                    key: "default_versions",
                    reason: format!("the entry for {name} has no `version:` line"),
                })?;
            let original = lines[line];
            let prefix_end = original.find("version:").unwrap_or(0) + "version:".len();
            // A comment after the value stays.
            let comment = original[prefix_end..]
                .find(" #")
                .map_or("", |at| &original[prefix_end + at..]);
            let replaced = format!("{} {}{comment}", &original[..prefix_end], scalar(version));
            ops.push((line, Op::Replace(replaced)));
        }
    }
    if !edits.deprecations.is_empty() {
        let existing = section(&lines, "dependency_deprecation_dates")?;
        let (at, indent, header) = match &existing {
            Some(section) => (
                section.items.last().map_or(section.key_line + 1, |i| i.end),
                " ".repeat(section.indent),
                Vec::new(),
            ),
            None => (
                dependencies.key_line,
                indent.clone(),
                vec!["dependency_deprecation_dates:".to_string()],
            ),
        };
        let mut block = header;
        for entry in &edits.deprecations {
            block.push(format!("{indent}- name: {}", scalar(&entry.name)));
            block.push(format!(
                "{indent}  version_line: {}",
                scalar(&entry.version_line)
            ));
            // Quoted: a bare date is not a string to Cloud Controller's safe YAML loader.
            block.push(format!("{indent}  date: \"{}\"", entry.date));
            block.push(format!("{indent}  link: {}", scalar(&entry.link)));
        }
        if existing.is_none() {
            block.push(String::new());
        }
        ops.push((at, Op::Insert(block)));
    }

    // Bottom up, so that every index still points at the line it was found on; at one index
    // a removal or replacement goes first, so an insertion there is not taken with it.
    ops.sort_by(|(a, a_op), (b, b_op)| {
        b.cmp(a)
            .then_with(|| matches!(a_op, Op::Insert(_)).cmp(&matches!(b_op, Op::Insert(_))))
    });
    let mut out: Vec<String> = lines.iter().map(|line| (*line).to_string()).collect();
    for (at, op) in ops {
        match op {
            Op::Remove(end) => {
                out.drain(at..end);
            }
            Op::Replace(line) => out[at] = line,
            Op::Insert(block) => {
                out.splice(at..at, block);
            }
        }
    }
    let mut result = out.join("\n");
    if text.ends_with('\n') {
        result.push('\n');
    }
    Ok(result)
}

/// The key of a `key: value` or `- key: value` line.
fn field(line: &str) -> Option<&str> {
    let trimmed = line.trim_start();
    let trimmed = trimmed.strip_prefix("- ").unwrap_or(trimmed).trim_start();
    let (key, _) = trimmed.split_once(':')?;
    Some(key.trim())
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_filler(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// The items of the top-level block list under `key:`, or none when the key is absent.
fn section(lines: &[&str], key: &'static str) -> Result<Option<Section>, EditError> {
    let Some(key_line) = lines.iter().position(|line| {
        line.strip_prefix(key)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|rest| rest.trim().is_empty() || rest.trim().starts_with('#'))
    }) else {
        if lines
            .iter()
            .any(|line| line.starts_with(&format!("{key}:")))
        {
            return Err(EditError::Layout {
                key,
                reason: "it is written on one line".into(),
            });
        }
        return Ok(None);
    };
    let mut indent = None;
    let mut items: Vec<Item> = Vec::new();
    let mut comments_from: Option<usize> = None;
    for (index, line) in lines.iter().enumerate().skip(key_line + 1) {
        if line.trim().is_empty() {
            comments_from = None;
            continue;
        }
        if line.trim_start().starts_with('#') {
            comments_from.get_or_insert(index);
            continue;
        }
        let own = indent_of(line);
        let is_dash = line.trim_start().starts_with("- ") || line.trim() == "-";
        let item_indent = *indent.get_or_insert(own);
        if is_dash && own == item_indent {
            items.push(Item {
                start: comments_from.unwrap_or(index),
                dash: index,
                end: index + 1,
                name: String::new(),
                version: None,
            });
        } else if own > item_indent && !items.is_empty() {
            if let Some(item) = items.last_mut() {
                item.end = index + 1;
            }
        } else {
            break;
        }
        comments_from = None;
    }
    let indent = indent.unwrap_or(2);
    for item in &mut items {
        let body: String = lines[item.dash..item.end]
            .iter()
            .filter(|line| !is_filler(line))
            .map(|line| format!("{}\n", line.get(indent..).unwrap_or(line.trim_start())))
            .collect();
        let parsed: Vec<Value> =
            serde_yaml_ng::from_str(&body).map_err(|error| EditError::Layout {
                key,
                reason: format!("line {}: {error}", item.dash + 1),
            })?;
        let text = |value: Option<&Value>| match value {
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Number(number)) => Some(number.to_string()),
            _ => None,
        };
        let entry = parsed.first();
        item.name = text(entry.and_then(|e| e.get("name"))).unwrap_or_default();
        item.version = text(entry.and_then(|e| e.get("version")));
    }
    Ok(Some(Section {
        key_line,
        indent,
        items,
    }))
}

/// A YAML scalar that reads back as the same string: bare when it is plainly one, otherwise
/// double-quoted (JSON's quoting is YAML's). Cloud Controller reads YAML 1.1, where `yes`
/// and `off` are booleans, so those are quoted too.
fn scalar(text: &str) -> String {
    const YAML_1_1_WORDS: &[&str] = &[
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
    ];
    let plain = !text.is_empty()
        && !YAML_1_1_WORDS.contains(&text.to_ascii_lowercase().as_str())
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    '.' | '_' | '-' | '/' | ':' | '+' | '%' | '~' | '=' | '?' | '&'
                )
        })
        && !text.starts_with(['-', '?', ':', '%'])
        && !text.contains(": ")
        && matches!(serde_yaml_ng::from_str::<Value>(text), Ok(Value::String(ref read)) if read == text);
    if plain {
        text.to_string()
    } else {
        serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
    }
}

/// A unified diff of two texts, with three lines of context, as `diff -u` prints it.
pub(crate) fn unified_diff(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    const CONTEXT: usize = 3;
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // The longest common subsequence, by the classic table: manifests are a few hundred
    // lines, so the table is small.
    let mut table = vec![vec![0_u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            table[i][j] = if a[i] == b[j] {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    // (tag, old index, new index, text)
    let mut script: Vec<(char, usize, usize, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            script.push((' ', i, j, a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || table[i + 1][j] >= table[i][j + 1]) {
            script.push(('-', i, j, a[i]));
            i += 1;
        } else {
            script.push(('+', i, j, b[j]));
            j += 1;
        }
    }
    let changed: Vec<usize> = (0..script.len()).filter(|&k| script[k].0 != ' ').collect();
    if changed.is_empty() {
        return String::new();
    }
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    let mut k = 0;
    while k < changed.len() {
        let first = changed[k].saturating_sub(CONTEXT);
        let mut last = changed[k];
        while k + 1 < changed.len() && changed[k + 1] <= last + 2 * CONTEXT + 1 {
            k += 1;
            last = changed[k];
        }
        k += 1;
        let last = (last + CONTEXT).min(script.len() - 1);
        let hunk = &script[first..=last];
        let old_count = hunk.iter().filter(|step| step.0 != '+').count();
        let new_count = hunk.iter().filter(|step| step.0 != '-').count();
        let old_start = hunk[0].1 + usize::from(old_count > 0);
        let new_start = hunk[0].2 + usize::from(new_count > 0);
        out.push_str(&format!(
            "@@ -{old_start},{old_count} +{new_start},{new_count} @@\n"
        ));
        for (tag, _, _, text) in hunk {
            out.push(*tag);
            out.push_str(text);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = "\
language: conda

# Defaults.
default_versions:
  - name: miniforge3
    version: 24.7.x # the Python 3 default

dependencies:
  # Pinned in 2024.
  - name: miniforge3
    version: 24.7.1
    uri: https://h/Miniforge3-24.7.1-0-Linux-x86_64.sh
    sha256: bbbb
    cf_stacks:
      - cflinuxfs4
  # Old.
  - name: miniforge3
    version: \"4.10\"
    uri: https://h/old.sh
    sha256: cccc
    cf_stacks: [cflinuxfs4]

# Files.
include_files:
  - manifest.yml
";

    fn entry(version: &str) -> NewEntry {
        NewEntry {
            name: "miniforge3".into(),
            version: version.into(),
            uri: format!("https://h/Miniforge3-{version}-0-Linux-x86_64.sh"),
            sha256: "aaaa".into(),
            cf_stacks: vec!["cflinuxfs4".into(), "cflinuxfs3".into()],
            comment: "# sha256: stated by https://h/x.sha256".into(),
        }
    }

    #[test]
    fn entries_go_above_their_line_and_comments_stay() {
        let edits = Edits {
            add: vec![entry("25.11.0"), entry("25.9.0")],
            remove: vec![("miniforge3".into(), "4.10".into())],
            defaults: vec![("miniforge3".into(), "25.11.x".into())],
            deprecations: vec![NewDeprecation {
                name: "miniconda3-py39".into(),
                version_line: "x".into(),
                date: "2025-10-31".into(),
                link: "https://devguide.python.org/versions/".into(),
            }],
        };
        let new = apply(MANIFEST, &edits).unwrap();
        let expected = "\
language: conda

# Defaults.
default_versions:
  - name: miniforge3
    version: 25.11.x # the Python 3 default

dependency_deprecation_dates:
  - name: miniconda3-py39
    version_line: x
    date: \"2025-10-31\"
    link: https://devguide.python.org/versions/

dependencies:
  # sha256: stated by https://h/x.sha256
  - name: miniforge3
    version: 25.11.0
    uri: https://h/Miniforge3-25.11.0-0-Linux-x86_64.sh
    sha256: aaaa
    cf_stacks:
      - cflinuxfs4
      - cflinuxfs3
  # sha256: stated by https://h/x.sha256
  - name: miniforge3
    version: 25.9.0
    uri: https://h/Miniforge3-25.9.0-0-Linux-x86_64.sh
    sha256: aaaa
    cf_stacks:
      - cflinuxfs4
      - cflinuxfs3
  # Pinned in 2024.
  - name: miniforge3
    version: 24.7.1
    uri: https://h/Miniforge3-24.7.1-0-Linux-x86_64.sh
    sha256: bbbb
    cf_stacks:
      - cflinuxfs4

# Files.
include_files:
  - manifest.yml
";
        assert_eq!(new, expected, "\n{new}");
    }

    #[test]
    fn a_missing_entry_or_a_flow_list_is_refused() {
        let edits = Edits {
            remove: vec![("miniforge3".into(), "1.0".into())],
            ..Edits::default()
        };
        assert!(matches!(
            apply(MANIFEST, &edits),
            Err(EditError::NoSuchEntry { .. })
        ));
        let flow = "language: conda\ndependencies: []\n";
        assert!(matches!(
            apply(flow, &Edits::default()),
            Err(EditError::Layout { .. })
        ));
    }

    #[test]
    fn scalars_that_yaml_would_read_otherwise_are_quoted() {
        assert_eq!(scalar("25.9.1"), "25.9.1");
        assert_eq!(scalar("4.10"), "\"4.10\"");
        assert_eq!(scalar("yes"), "\"yes\"");
        assert_eq!(scalar("https://h/a b"), "\"https://h/a b\"");
        assert_eq!(scalar("https://h/x.sh?a=1&b=2"), "https://h/x.sh?a=1&b=2");
    }

    #[test]
    fn the_diff_shows_changed_lines_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\ni\nj\nk\n";
        let diff = unified_diff(old, new, "old", "new");
        assert_eq!(
            diff,
            "--- old\n+++ new\n@@ -2,9 +2,10 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n i\n j\n+k\n"
        );
        assert_eq!(unified_diff(old, old, "old", "new"), "");
    }
}
