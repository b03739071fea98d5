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
//! The ELF rewrite is the buildpack's own (no `strip` on the stacks to rely on): it only drops
//! sections that lie after everything a program header maps, and gives up on a file it does not
//! fully understand, leaving it as it was. Every file is rewritten beside itself and renamed,
//! so a hard link elsewhere (the app cache) keeps its bytes.
//!
//! What was removed is listed in `SLIM_LIST` inside the environment, which travels with it into
//! the droplet and the cache.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::fsutil;

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

/// Every regular file of the environment that starts like an ELF file.
fn elf_candidates(env: &Path) -> io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![env.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current)? {
            let entry = entry?;
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                pending.push(entry.path());
            } else if file_type.is_file() {
                let mut magic = [0_u8; 4];
                let is_elf = fs::File::open(entry.path())
                    .and_then(|mut file| io::Read::read_exact(&mut file, &mut magic))
                    .is_ok()
                    && magic == *b"\x7fELF";
                if is_elf {
                    found.push(entry.path());
                }
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Strips one file in place (through a rename); `None` when it has nothing to strip or is not
/// an ELF file this code fully understands.
fn strip_file(path: &Path) -> io::Result<Option<u64>> {
    let bytes = fs::read(path)?;
    let Some(stripped) = strip_elf(&bytes) else {
        return Ok(None);
    };
    let mode = fs::metadata(path)?.permissions().mode();
    let partial = path.with_file_name(format!(
        ".{}.slim",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    fs::write(&partial, &stripped)?;
    fs::set_permissions(&partial, fs::Permissions::from_mode(mode))?;
    fs::rename(&partial, path)?;
    Ok(Some((bytes.len() - stripped.len()) as u64))
}

const SHF_ALLOC: u64 = 0x2;
const SHF_INFO_LINK: u64 = 0x40;
const SHT_NOBITS: u32 = 8;
const SHT_RELA: u32 = 4;
const SHT_REL: u32 = 9;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;

struct Section {
    name: String,
    kind: u32,
    flags: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
    header: [u8; 64],
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

/// The file without its symbol table and debug sections, or `None` when there are none or
/// the file is not a 64-bit little-endian executable or shared library laid out as linkers
/// lay them out (the sections to drop after everything the program headers map).
pub(crate) fn strip_elf(bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" || bytes[4] != 2 || bytes[5] != 1 {
        return None;
    }
    let kind = u16_at(bytes, 16)?;
    if kind != ET_EXEC && kind != ET_DYN {
        return None;
    }
    let phoff = usize::try_from(u64_at(bytes, 32)?).ok()?;
    let shoff = usize::try_from(u64_at(bytes, 40)?).ok()?;
    let phentsize = usize::from(u16_at(bytes, 54)?);
    let phnum = usize::from(u16_at(bytes, 56)?);
    let shentsize = usize::from(u16_at(bytes, 58)?);
    let shnum = usize::from(u16_at(bytes, 60)?);
    let shstrndx = usize::from(u16_at(bytes, 62)?);
    if shentsize != 64 || shnum == 0 || shstrndx >= shnum || phentsize != 56 {
        return None;
    }
    // Everything a program header maps, and every allocated section, stays where it is.
    let mut boundary = 0_u64;
    for index in 0..phnum {
        let at = phoff.checked_add(index.checked_mul(phentsize)?)?;
        let end = u64_at(bytes, at + 8)?.checked_add(u64_at(bytes, at + 32)?)?;
        boundary = boundary.max(end);
    }
    let mut sections = Vec::with_capacity(shnum);
    for index in 0..shnum {
        let at = shoff.checked_add(index.checked_mul(64)?)?;
        let header: [u8; 64] = bytes.get(at..at + 64)?.try_into().ok()?;
        sections.push(Section {
            name: String::new(),
            kind: u32_at(&header, 4)?,
            flags: u64_at(&header, 8)?,
            offset: u64_at(&header, 24)?,
            size: u64_at(&header, 32)?,
            link: u32_at(&header, 40)?,
            info: u32_at(&header, 44)?,
            align: u64_at(&header, 48)?,
            header,
        });
    }
    let names_at = usize::try_from(sections[shstrndx].offset).ok()?;
    let names_size = usize::try_from(sections[shstrndx].size).ok()?;
    let names = bytes.get(names_at..names_at.checked_add(names_size)?)?;
    for section in &mut sections {
        let start = usize::try_from(u32_at(&section.header, 0)?).ok()?;
        let rest = names.get(start..)?;
        let end = rest.iter().position(|&byte| byte == 0)?;
        section.name = String::from_utf8_lossy(&rest[..end]).into_owned();
    }
    for section in &sections {
        let has_bytes = section.kind != SHT_NOBITS;
        if has_bytes && section.offset.checked_add(section.size)? > bytes.len() as u64 {
            return None;
        }
        if section.flags & SHF_ALLOC != 0 && has_bytes {
            boundary = boundary.max(section.offset + section.size);
        }
    }
    let symtab_strings: Vec<u32> = sections
        .iter()
        .filter(|section| section.name == ".symtab")
        .map(|section| section.link)
        .collect();
    let removed: Vec<bool> = sections
        .iter()
        .enumerate()
        .map(|(index, section)| {
            index != 0
                && index != shstrndx
                && section.flags & SHF_ALLOC == 0
                && (section.name == ".symtab"
                    || (section.name == ".strtab"
                        && symtab_strings.iter().any(|&link| link as usize == index))
                    || section.name.starts_with(".debug_")
                    || section.name.starts_with(".zdebug_"))
        })
        .collect();
    if !removed.iter().any(|&dropped| dropped) {
        return None;
    }
    // Nothing that stays may name what goes, and what goes must lie beyond what is mapped.
    for (index, section) in sections.iter().enumerate() {
        if removed[index] {
            if section.kind != SHT_NOBITS && section.offset < boundary {
                return None;
            }
            continue;
        }
        let names_link = section.link as usize;
        let info_is_index = section.kind == SHT_REL
            || section.kind == SHT_RELA
            || section.flags & SHF_INFO_LINK != 0;
        if removed.get(names_link).copied().unwrap_or(false)
            || (info_is_index && removed.get(section.info as usize).copied().unwrap_or(false))
        {
            return None;
        }
    }
    let new_index: Vec<Option<u32>> = {
        let mut next = 0_u32;
        removed
            .iter()
            .map(|&dropped| {
                if dropped {
                    None
                } else {
                    next += 1;
                    Some(next - 1)
                }
            })
            .collect()
    };
    let boundary = usize::try_from(boundary).ok()?;
    let mut out = bytes.get(..boundary)?.to_vec();
    let mut placed: Vec<(usize, u64)> = Vec::new();
    let mut movable: Vec<usize> = (1..sections.len())
        .filter(|&index| !removed[index] && sections[index].offset as usize >= boundary)
        .collect();
    movable.sort_by_key(|&index| sections[index].offset);
    for index in movable {
        let section = &sections[index];
        let align = usize::try_from(section.align.max(1)).ok()?;
        while out.len() % align != 0 {
            out.push(0);
        }
        let new_offset = out.len() as u64;
        if section.kind != SHT_NOBITS {
            let start = usize::try_from(section.offset).ok()?;
            let end = start.checked_add(usize::try_from(section.size).ok()?)?;
            out.extend_from_slice(bytes.get(start..end)?);
        }
        placed.push((index, new_offset));
    }
    while out.len() % 8 != 0 {
        out.push(0);
    }
    let new_shoff = out.len() as u64;
    let remap = |old: u32| -> u32 { new_index.get(old as usize).copied().flatten().unwrap_or(0) };
    let mut kept = 0_u16;
    for (index, section) in sections.iter().enumerate() {
        if removed[index] {
            continue;
        }
        let mut header = section.header;
        if let Some(&(_, offset)) = placed.iter().find(|(placed, _)| *placed == index) {
            header[24..32].copy_from_slice(&offset.to_le_bytes());
        }
        header[40..44].copy_from_slice(&remap(section.link).to_le_bytes());
        if section.kind == SHT_REL || section.kind == SHT_RELA || section.flags & SHF_INFO_LINK != 0
        {
            header[44..48].copy_from_slice(&remap(section.info).to_le_bytes());
        }
        out.extend_from_slice(&header);
        kept += 1;
    }
    out[40..48].copy_from_slice(&new_shoff.to_le_bytes());
    out[60..62].copy_from_slice(&kept.to_le_bytes());
    let new_shstrndx = u16::try_from(remap(u32::try_from(shstrndx).ok()?)).ok()?;
    out[62..64].copy_from_slice(&new_shstrndx.to_le_bytes());
    (out.len() < bytes.len()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A shared library with symbols and debug sections, built by the machine's C compiler.
    fn library_with_symbols(dir: &Path) -> Option<PathBuf> {
        let source = dir.join("answer.c");
        fs::write(
            &source,
            "static int helper(int x) { return x * 6; }\nint answer(void) { return helper(7); }\n",
        )
        .ok()?;
        let library = dir.join("libanswer.so");
        let built = Command::new("cc")
            .args(["-g", "-shared", "-fPIC", "-o"])
            .arg(&library)
            .arg(&source)
            .status()
            .ok()?;
        built.success().then_some(library)
    }

    #[test]
    fn a_stripped_library_still_loads_and_answers() {
        let dir = tempfile::tempdir().unwrap();
        let Some(library) = library_with_symbols(dir.path()) else {
            panic!("no C compiler: ci/setup installs one");
        };
        let before = fs::metadata(&library).unwrap().len();
        let saved = strip_file(&library).unwrap().expect("symbols to strip");
        assert_eq!(fs::metadata(&library).unwrap().len(), before - saved);
        assert!(strip_file(&library).unwrap().is_none(), "stripped twice");
        // The dynamic linker loads it and finds its exported function.
        let path = std::ffi::CString::new(library.to_string_lossy().as_bytes()).unwrap();
        // SAFETY: loading a library this test just built, and calling its `int answer(void)`.
        unsafe {
            let handle = libc::dlopen(path.as_ptr(), libc::RTLD_NOW);
            assert!(!handle.is_null(), "the stripped library does not load");
            let symbol = libc::dlsym(handle, c"answer".as_ptr());
            assert!(!symbol.is_null(), "the exported function is gone");
            let answer: extern "C" fn() -> libc::c_int = std::mem::transmute(symbol);
            assert_eq!(answer(), 42);
            libc::dlclose(handle);
        }
    }

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
    fn what_is_not_an_elf_file_it_understands_is_left_alone() {
        assert!(strip_elf(b"not an elf file at all").is_none());
        assert!(strip_elf(b"\x7fELF").is_none());
        let mut truncated = vec![0_u8; 64];
        truncated[..4].copy_from_slice(b"\x7fELF");
        truncated[4] = 2;
        truncated[5] = 1;
        truncated[16] = 3;
        truncated[40] = 0xff;
        assert!(strip_elf(&truncated).is_none());
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
