//! Slimming the environment: the droplet carries what the app runs, not what conda unpacked.
//!
//! Removed: the test suites inside installed packages (`tests`/`test` folders of packages in
//! site-packages, the interpreter's own `lib/pythonX.Y/test`), documentation and man pages
//! (`share/{doc,man,info,gtk-doc}`), and the symbol tables and debug sections of ELF
//! executables and shared libraries (`.symtab` and its `.strtab`, `.debug_*`): sections no
//! loader reads, since dynamic linking uses `.dynsym`/`.dynstr`, which stay. Never touched:
//! headers, pkg-config files, static libraries and object files, which a later buildpack may
//! build against, and every module a package imports.
//!
//! The ELF rewrite is the buildpack's own, in `elf.rs`: it gives up on a file it does not fully
//! understand, leaving it as it was.
//!
//! What was removed is listed in `SLIM_LIST` inside the environment, which travels with it into
//! the droplet and the cache.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::io::fsutil;
use elf::{elf_candidates, strip_file};

mod elf;

/// The list of what slimming removed, inside the environment.
pub(crate) const SLIM_LIST: &str = "conda-meta/.conda-buildpack-slimmed.txt";

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slimmed {
    pub(crate) removed_files: u64,
    pub(crate) stripped_files: u64,
    pub(crate) bytes: u64,
}

/// Slims the environment at `env` in place and writes `SLIM_LIST`. An environment updated
/// from a slimmed one keeps its earlier list, which this run's lines are added to; the
/// returned totals are this run's.
pub(crate) fn slim(env: &Path) -> io::Result<Slimmed> {
    let earlier = recorded(env).unwrap_or_default();
    let earlier_lines: Vec<String> = fs::read_to_string(env.join(SLIM_LIST))
        .map(|text| text.lines().skip(1).map(str::to_string).collect())
        .unwrap_or_default();
    let mut totals = Slimmed::default();
    let mut lines = earlier_lines;
    for dir in removable_dirs(env)? {
        let (files, bytes) = count_tree(&dir)?;
        fsutil::remove_if_exists(&dir)?;
        totals.removed_files += files;
        totals.bytes += bytes;
        lines.push(format!(
            "removed {} ({files} files, {bytes} bytes)",
            relative(env, &dir)
        ));
    }
    for file in elf_candidates(env)? {
        if let Some(saved) = strip_file(&file)? {
            totals.stripped_files += 1;
            totals.bytes += saved;
            lines.push(format!("stripped {} ({saved} bytes)", relative(env, &file)));
        }
    }
    let mut text = format!(
        "# conda buildpack: {} files removed, {} files stripped of symbols, {} bytes saved\n",
        earlier.removed_files + totals.removed_files,
        earlier.stripped_files + totals.stripped_files,
        earlier.bytes + totals.bytes
    );
    for line in lines {
        text.push_str(&line);
        text.push('\n');
    }
    let list = env.join(SLIM_LIST);
    if let Some(parent) = list.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(list, text)?;
    Ok(totals)
}

/// What the list in a slimmed environment says it saved (a restored environment).
pub(crate) fn recorded(env: &Path) -> Option<Slimmed> {
    let text = fs::read_to_string(env.join(SLIM_LIST)).ok()?;
    let header = text.lines().next()?.strip_prefix("# conda buildpack: ")?;
    let numbers: Vec<u64> = header
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|part| part.parse().ok())
        .collect();
    match numbers[..] {
        [removed_files, stripped_files, bytes] => Some(Slimmed {
            removed_files,
            stripped_files,
            bytes,
        }),
        _ => None,
    }
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

fn is_real_dir(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|metadata| metadata.is_dir())
}

/// Test suites and documentation, as whole directories.
fn removable_dirs(env: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for docs in ["share/doc", "share/man", "share/info", "share/gtk-doc"] {
        let dir = env.join(docs);
        if is_real_dir(&dir) {
            found.push(dir);
        }
    }
    let Ok(lib) = fs::read_dir(env.join("lib")) else {
        return Ok(found);
    };
    for entry in lib.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with("python") || !is_real_dir(&entry.path()) {
            continue;
        }
        // The interpreter's own test suite.
        let stdlib_tests = entry.path().join("test");
        if is_real_dir(&stdlib_tests) {
            found.push(stdlib_tests);
        }
        let site_packages = entry.path().join("site-packages");
        let Ok(packages) = fs::read_dir(&site_packages) else {
            continue;
        };
        for package in packages.flatten() {
            // A top-level package that is itself named `tests` is somebody's import.
            if is_real_dir(&package.path()) && !is_test_dir_name(&package.file_name()) {
                let mut tests = Vec::new();
                collect_test_dirs(&package.path(), &mut tests)?;
                if !tests.is_empty() {
                    found.extend(not_imported(&site_packages, &package.path(), tests)?);
                }
            }
        }
    }
    Ok(found)
}

fn is_test_dir_name(name: &std::ffi::OsStr) -> bool {
    name == "tests" || name == "test"
}

fn collect_test_dirs(dir: &Path, found: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        if is_test_dir_name(&entry.file_name()) {
            found.push(entry.path());
        } else {
            collect_test_dirs(&entry.path(), found)?;
        }
    }
    Ok(())
}

/// The test folders of a package that none of its other modules imports. Some do: numpy's
/// `numpy.testing` imports `numpy._core.tests._natype`, and scipy imports `numpy.testing`
/// (found on the real packages). Every `import`/`from` line of every other module is
/// resolved, relative imports included, and any mention of a test package's dotted name
/// keeps it.
fn not_imported(
    site_packages: &Path,
    package: &Path,
    tests: Vec<PathBuf>,
) -> io::Result<Vec<PathBuf>> {
    let module_of = |dir: &Path| {
        relative(site_packages, dir)
            .trim_end_matches(".py")
            .replace('/', ".")
    };
    let candidates: Vec<(PathBuf, String)> = tests
        .into_iter()
        .map(|dir| {
            let module = module_of(&dir);
            (dir, module)
        })
        .collect();
    let mut imported = vec![false; candidates.len()];
    let mut pending = vec![package.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                if !candidates.iter().any(|(test_dir, _)| *test_dir == path) {
                    pending.push(path);
                }
                continue;
            }
            if !file_type.is_file() || path.extension().is_none_or(|ext| ext != "py") {
                continue;
            }
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            // The package a relative import starts from: the file's folder.
            let own_package = module_of(&dir);
            for target in imports(&text, &own_package) {
                for (index, (_, module)) in candidates.iter().enumerate() {
                    if target == *module || target.starts_with(&format!("{module}.")) {
                        imported[index] = true;
                    }
                }
            }
            for (index, (_, module)) in candidates.iter().enumerate() {
                if text.contains(module.as_str()) {
                    imported[index] = true;
                }
            }
        }
    }
    Ok(candidates
        .into_iter()
        .zip(imported)
        .filter(|(_, imported)| !imported)
        .map(|((dir, _), _)| dir)
        .collect())
}

/// The absolute module names a Python file's `import` and `from ... import` lines name,
/// with each imported name appended to a `from` target (it may be a submodule).
fn imports(text: &str, own_package: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("from ") {
            let Some((target, names)) = rest.split_once(" import ") else {
                continue;
            };
            let target = target.trim();
            let dots = target.len() - target.trim_start_matches('.').len();
            let absolute = if dots == 0 {
                target.to_string()
            } else {
                let mut base: Vec<&str> = own_package.split('.').collect();
                for _ in 1..dots {
                    base.pop();
                }
                let rest = target.trim_start_matches('.');
                if rest.is_empty() {
                    base.join(".")
                } else {
                    format!("{}.{rest}", base.join("."))
                }
            };
            for name in names.trim_matches(|c| c == '(' || c == ')').split(',') {
                let name = name.split_whitespace().next().unwrap_or("");
                if !name.is_empty() && name != "*" {
                    found.push(format!("{absolute}.{name}"));
                }
            }
            found.push(absolute);
        } else if let Some(rest) = line.strip_prefix("import ") {
            for name in rest.split(',') {
                if let Some(name) = name.split_whitespace().next() {
                    found.push(name.to_string());
                }
            }
        }
    }
    found
}

fn count_tree(dir: &Path) -> io::Result<(u64, u64)> {
    let mut files = 0;
    let mut bytes = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current)? {
            let entry = entry?;
            let metadata = fs::symlink_metadata(entry.path())?;
            if metadata.is_dir() {
                pending.push(entry.path());
            } else {
                files += 1;
                if metadata.is_file() {
                    bytes += metadata.len();
                }
            }
        }
    }
    Ok((files, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_updated_environment_keeps_the_record_of_what_went_before() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path();
        let docs = env.join("share/doc/numpy");
        fs::create_dir_all(&docs).unwrap();
        fs::write(docs.join("README"), "12345").unwrap();
        let first = slim(env).unwrap();
        assert_eq!((first.removed_files, first.bytes), (1, 5));
        // conda updates it and a new package brings documentation of its own.
        let docs = env.join("share/man/man1");
        fs::create_dir_all(&docs).unwrap();
        fs::write(docs.join("pandas.1"), "123").unwrap();
        let second = slim(env).unwrap();
        assert_eq!((second.removed_files, second.bytes), (1, 3));
        assert_eq!(
            recorded(env),
            Some(Slimmed {
                removed_files: 2,
                stripped_files: 0,
                bytes: 8
            })
        );
        let list = fs::read_to_string(env.join(SLIM_LIST)).unwrap();
        assert!(list.contains("removed share/doc"), "{list}");
        assert!(list.contains("removed share/man"), "{list}");
    }

    #[test]
    fn a_test_package_another_module_imports_stays() {
        let dir = tempfile::tempdir().unwrap();
        let site = dir.path().join("lib/python3.11/site-packages");
        for (file, text) in [
            // As numpy 2.2's numpy/testing/_private/utils.py does.
            (
                "numpy/testing/_private/utils.py",
                "from numpy._core.tests._natype import pd_NA\n",
            ),
            ("numpy/_core/tests/_natype.py", "pd_NA = None\n"),
            ("numpy/linalg/tests/test_linalg.py", "import numpy\n"),
            // A relative import of a sibling's tests.
            ("other/core/api.py", "from ..util.tests import helpers\n"),
            ("other/util/tests/helpers.py", "X = 1\n"),
            ("other/io/tests/test_io.py", "X = 2\n"),
        ] {
            let path = site.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }
        slim(dir.path()).unwrap();
        assert!(site.join("numpy/_core/tests/_natype.py").exists());
        assert!(site.join("other/util/tests/helpers.py").exists());
        assert!(!site.join("numpy/linalg/tests").exists());
        assert!(!site.join("other/io/tests").exists());
    }

    #[test]
    fn tests_and_docs_go_headers_and_imports_stay() {
        let dir = tempfile::tempdir().unwrap();
        let env = dir.path();
        for file in [
            "lib/python3.11/site-packages/numpy/__init__.py",
            "lib/python3.11/site-packages/numpy/_core/tests/test_a.py",
            "lib/python3.11/site-packages/numpy/testing/__init__.py",
            "lib/python3.11/site-packages/tests/__init__.py",
            "lib/python3.11/test/test_os.py",
            "lib/python3.11/os.py",
            "share/man/man1/python.1",
            "share/doc/numpy/README",
            "include/python3.11/Python.h",
            "lib/pkgconfig/python3.pc",
            "lib/libz.a",
        ] {
            let path = env.join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, "x").unwrap();
        }
        let slimmed = slim(env).unwrap();
        assert_eq!(slimmed.removed_files, 4);
        for gone in [
            "lib/python3.11/site-packages/numpy/_core/tests",
            "lib/python3.11/test",
            "share/man",
            "share/doc",
        ] {
            assert!(!env.join(gone).exists(), "{gone} stayed");
        }
        for kept in [
            "lib/python3.11/site-packages/numpy/__init__.py",
            "lib/python3.11/site-packages/numpy/testing/__init__.py",
            "lib/python3.11/site-packages/tests/__init__.py",
            "lib/python3.11/os.py",
            "include/python3.11/Python.h",
            "lib/pkgconfig/python3.pc",
            "lib/libz.a",
        ] {
            assert!(env.join(kept).exists(), "{kept} was removed");
        }
        assert_eq!(recorded(env), Some(slimmed));
        let list = fs::read_to_string(env.join(SLIM_LIST)).unwrap();
        assert!(
            list.contains("removed share/man (1 files, 1 bytes)"),
            "{list}"
        );
    }
}
