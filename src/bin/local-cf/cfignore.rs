//! `.cfignore`: what `cf push` leaves out of the app it uploads. The CLI always leaves out
//! its own bookkeeping and version-control folders, then applies the app's `.cfignore` the
//! way `.gitignore` patterns work: one glob a line, `#` comments, `!` to take a path back,
//! a leading `/` anchoring to the app root, a trailing `/` for directories, `**` across
//! folders; the last matching line wins.

use std::path::Path;

/// Always left out by the cf CLI.
const DEFAULTS: [&str; 8] = [
    ".cfignore",
    "/manifest.yml",
    ".gitignore",
    ".git",
    ".hg",
    ".svn",
    "_darcs",
    ".DS_Store",
];

struct Pattern {
    glob: String,
    negated: bool,
    directory_only: bool,
    anchored: bool,
}

pub(crate) struct CfIgnore(Vec<Pattern>);

impl CfIgnore {
    /// The CLI's defaults and the app's `.cfignore`, when it has one.
    pub(crate) fn read(app_dir: &Path) -> Self {
        let text = std::fs::read_to_string(app_dir.join(".cfignore")).unwrap_or_default();
        Self::parse(DEFAULTS.iter().copied().chain(text.lines()))
    }

    fn parse<'a>(lines: impl Iterator<Item = &'a str>) -> Self {
        let patterns = lines
            .filter_map(|line| {
                let line = line.trim_end_matches('\r').trim_end();
                if line.is_empty() || line.starts_with('#') {
                    return None;
                }
                let (negated, line) = match line.strip_prefix('!') {
                    Some(rest) => (true, rest),
                    None => (false, line),
                };
                let (directory_only, line) = match line.strip_suffix('/') {
                    Some(rest) => (true, rest),
                    None => (false, line),
                };
                let anchored = line.contains('/');
                let glob = line.trim_start_matches('/').to_owned();
                (!glob.is_empty()).then_some(Pattern {
                    glob,
                    negated,
                    directory_only,
                    anchored,
                })
            })
            .collect();
        Self(patterns)
    }

    /// Whether the path (relative to the app root) is left out. Directories are tested
    /// before their contents are walked, so a left-out folder takes its contents with it.
    pub(crate) fn is_ignored(&self, relative: &Path, is_dir: bool) -> bool {
        let path = relative.to_string_lossy();
        let name = relative
            .file_name()
            .map(|name| name.to_string_lossy())
            .unwrap_or_default();
        let mut ignored = false;
        for pattern in &self.0 {
            if pattern.directory_only && !is_dir {
                continue;
            }
            let subject = if pattern.anchored { &path } else { &name };
            if glob_matches(pattern.glob.as_bytes(), subject.as_bytes()) {
                ignored = !pattern.negated;
            }
        }
        ignored
    }
}

/// `*` and `?` stay within a folder, `**` crosses folders, `[abc]` is a class.
fn glob_matches(glob: &[u8], text: &[u8]) -> bool {
    match glob.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) if rest.first() == Some(&b'*') => {
            let rest = rest[1..].strip_prefix(b"/").unwrap_or(&rest[1..]);
            (0..=text.len()).any(|skip| {
                (skip == 0 || text[skip - 1] == b'/' || rest.is_empty())
                    && glob_matches(rest, &text[skip..])
            })
        }
        Some((b'*', rest)) => (0..=text.len())
            .take_while(|&skip| skip == 0 || text[skip - 1] != b'/')
            .any(|skip| glob_matches(rest, &text[skip..])),
        Some((b'?', rest)) => {
            text.first().is_some_and(|&c| c != b'/') && glob_matches(rest, &text[1..])
        }
        Some((b'[', rest)) => match rest.iter().position(|&c| c == b']') {
            Some(end) => {
                text.first().is_some_and(|c| rest[..end].contains(c))
                    && glob_matches(&rest[end + 1..], &text[1..])
            }
            None => text.first() == Some(&b'[') && glob_matches(rest, &text[1..]),
        },
        Some((c, rest)) => text.first() == Some(c) && glob_matches(rest, &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(lines: &str) -> CfIgnore {
        CfIgnore::parse(DEFAULTS.iter().copied().chain(lines.lines()))
    }

    #[test]
    fn the_clis_defaults_are_always_left_out() {
        let none = ignore("");
        assert!(none.is_ignored(Path::new(".git"), true));
        assert!(none.is_ignored(Path::new("manifest.yml"), false));
        assert!(!none.is_ignored(Path::new("config/manifest.yml"), false));
        assert!(!none.is_ignored(Path::new("environment.yml"), false));
    }

    #[test]
    fn patterns_work_as_in_gitignore() {
        let rules = ignore("# data\n*.csv\n/build/\ndocs/**/*.pdf\n!keep.csv\nnotes?.txt\n");
        assert!(rules.is_ignored(Path::new("data/big.csv"), false));
        assert!(!rules.is_ignored(Path::new("data/keep.csv"), false));
        assert!(rules.is_ignored(Path::new("build"), true));
        assert!(!rules.is_ignored(Path::new("build"), false));
        assert!(!rules.is_ignored(Path::new("src/build"), true));
        assert!(rules.is_ignored(Path::new("docs/a/b/x.pdf"), false));
        assert!(rules.is_ignored(Path::new("docs/x.pdf"), false));
        assert!(rules.is_ignored(Path::new("notes1.txt"), false));
        assert!(!rules.is_ignored(Path::new("notes12.txt"), false));
        assert!(!rules.is_ignored(Path::new("app.py"), false));
    }
}
