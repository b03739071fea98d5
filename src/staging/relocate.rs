//! Moving an environment's embedded prefix from where it was built to where it runs.
//!
//! conda bakes the absolute prefix into shebangs, `*.pc` files, activation scripts,
//! `conda-meta` and some binaries. On Cloud Foundry the environment is built under
//! `/tmp/contents<random>/deps/IDX` but runs from `/home/vcap/deps/IDX`. Rewriting at every
//! app start (python-buildpack's `grep -rlI | sed` in profile.d) makes start time grow with the
//! environment; instead the buildpack rewrites once, at staging, to the run-time path, which
//! is fixed and known. Text files get a plain replacement; binary files get conda's own
//! treatment, a same-length rewrite of each NUL-terminated string padded with NULs, which is
//! why the build prefix must be at least as long as the run-time one.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use memchr::memmem;

#[derive(Debug, thiserror::Error)]
pub(crate) enum RelocateError {
    #[error(
        "{file} embeds the build path in binary data, and the run-time path {to} is longer than the build path {from}"
    )]
    PrefixTooLong {
        file: PathBuf,
        from: String,
        to: String,
    },
    #[error("cannot relocate {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Relocation {
    pub(crate) files_scanned: u64,
    pub(crate) text_files: u64,
    pub(crate) binary_files: u64,
    pub(crate) symlinks: u64,
}

/// Files this size and larger are memory-mapped for the search instead of read, so a 500 MB
/// shared library does not become 500 MB of buildpack memory.
const MAP_THRESHOLD: u64 = 1024 * 1024;

/// The build prefix for an environment that will run at `runtime`: `target` itself when its
/// path is at least as long, or `target` under a padded sibling directory, so binary prefixes
/// can always be rewritten in place. The caller renames it to `target` once relocated.
pub(crate) fn build_prefix_for(target: &Path, runtime: &Path) -> PathBuf {
    let target_length = target.as_os_str().len();
    let runtime_length = runtime.as_os_str().len();
    if target_length >= runtime_length {
        return target.to_path_buf();
    }
    let parent = target.parent().unwrap_or(target);
    let name = target
        .file_name()
        .map_or_else(|| "env".into(), |n| n.to_os_string());
    // `<parent>/.build_pad<underscores>/<name>`: the padding makes up the difference.
    let fixed = parent.as_os_str().len() + "/.build_pad".len() + 1 + name.len();
    let padding = runtime_length.saturating_sub(fixed);
    parent
        .join(format!(".build_pad{}", "_".repeat(padding)))
        .join(name)
}

/// Rewrites every occurrence of `from` to `to` under `root`: file contents and absolute
/// symlink targets. `.pyc` files are left alone: Python corrects a cached code object's file
/// name when it loads it, and their marshalled strings must not be padded.
pub(crate) fn relocate(root: &Path, from: &str, to: &str) -> Result<Relocation, RelocateError> {
    let mut relocation = Relocation::default();
    if from == to {
        return Ok(relocation);
    }
    let finder = memmem::Finder::new(from.as_bytes());
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let entries = fs::read_dir(&directory).map_err(|source| RelocateError::Io {
            path: directory.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| RelocateError::Io {
                path: directory.clone(),
                source,
            })?;
            let path = entry.path();
            let io_error = |source| RelocateError::Io {
                path: path.clone(),
                source,
            };
            let file_type = entry.file_type().map_err(io_error)?;
            if file_type.is_dir() {
                pending.push(path);
            } else if file_type.is_symlink() {
                let target = fs::read_link(&path).map_err(io_error)?;
                let text = target.to_string_lossy();
                if text.contains(from) {
                    let rewritten = text.replace(from, to);
                    let temporary = sibling(&path, "link");
                    std::os::unix::fs::symlink(&rewritten, &temporary).map_err(io_error)?;
                    fs::rename(&temporary, &path).map_err(io_error)?;
                    relocation.symlinks += 1;
                }
            } else if file_type.is_file() {
                relocation.files_scanned += 1;
                if path.extension().is_some_and(|extension| extension == "pyc") {
                    continue;
                }
                match relocate_file(&path, &finder, from.as_bytes(), to.as_bytes())? {
                    Rewrite::None => {}
                    Rewrite::Text => relocation.text_files += 1,
                    Rewrite::Binary => relocation.binary_files += 1,
                }
            }
        }
    }
    Ok(relocation)
}

enum Rewrite {
    None,
    Text,
    Binary,
}

fn relocate_file(
    path: &Path,
    finder: &memmem::Finder<'_>,
    from: &[u8],
    to: &[u8],
) -> Result<Rewrite, RelocateError> {
    let io_error = |source| RelocateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = fs::File::open(path).map_err(io_error)?;
    let metadata = file.metadata().map_err(io_error)?;
    if metadata.len() < from.len() as u64 {
        return Ok(Rewrite::None);
    }
    let mapped;
    let read;
    let contents: &[u8] = if metadata.len() >= MAP_THRESHOLD {
        // SAFETY: the map is read-only and lives only within this call; the environment is
        // the buildpack's own staging output, which nothing else modifies concurrently.
        mapped = unsafe { memmap2::Mmap::map(&file) }.map_err(io_error)?;
        &mapped
    } else {
        read = fs::read(path).map_err(io_error)?;
        &read
    };
    let Some(first) = finder.find(contents) else {
        return Ok(Rewrite::None);
    };
    let binary = memchr::memchr(0, contents).is_some();
    let rewritten = if binary {
        if to.len() > from.len() {
            return Err(RelocateError::PrefixTooLong {
                file: path.to_path_buf(),
                from: String::from_utf8_lossy(from).into_owned(),
                to: String::from_utf8_lossy(to).into_owned(),
            });
        }
        rewrite_binary(contents, first, finder, from, to)
    } else {
        rewrite_text(contents, finder, from, to)
    };
    // A new file renamed over the old one: the original may be a hard link into conda's
    // package cache, which must keep its own bytes.
    let temporary = sibling(path, "reloc");
    let result = (|| {
        let mut output = fs::File::create(&temporary)?;
        output.write_all(&rewritten)?;
        output.set_permissions(fs::Permissions::from_mode(
            std::os::unix::fs::MetadataExt::mode(&metadata) & 0o7777,
        ))?;
        fs::rename(&temporary, path)
    })();
    if let Err(source) = result {
        let _ = fs::remove_file(&temporary);
        return Err(io_error(source));
    }
    Ok(if binary {
        Rewrite::Binary
    } else {
        Rewrite::Text
    })
}

fn rewrite_text(contents: &[u8], finder: &memmem::Finder<'_>, from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut output = Vec::with_capacity(contents.len());
    let mut last = 0;
    for start in finder.find_iter(contents) {
        output.extend_from_slice(&contents[last..start]);
        output.extend_from_slice(to);
        last = start + from.len();
    }
    output.extend_from_slice(&contents[last..]);
    output
}

/// conda's binary replacement: each NUL-terminated string holding the prefix is rewritten and
/// padded back to its length with NULs, so offsets in the binary do not move.
fn rewrite_binary(
    contents: &[u8],
    first: usize,
    finder: &memmem::Finder<'_>,
    from: &[u8],
    to: &[u8],
) -> Vec<u8> {
    let mut output = contents.to_vec();
    let mut position = first;
    loop {
        let end = memchr::memchr(0, &contents[position..])
            .map_or(contents.len(), |offset| position + offset);
        // The string starts after the previous NUL (or at the start of the file).
        let start = memchr::memrchr(0, &contents[..position]).map_or(0, |offset| offset + 1);
        let original = &contents[start..end];
        let replaced = rewrite_text(original, finder, from, to);
        output[start..start + replaced.len()].copy_from_slice(&replaced);
        for byte in &mut output[start + replaced.len()..end] {
            *byte = 0;
        }
        match finder.find(&contents[end..]) {
            Some(offset) => position = end + offset,
            None => break,
        }
    }
    output
}

fn sibling(path: &Path, purpose: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{purpose}-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, symlink};

    const FROM: &str = "/tmp/contents123456789/deps/0/conda-env";
    const TO: &str = "/home/vcap/deps/0/conda-env";

    #[test]
    fn text_shebangs_and_binaries_are_rewritten_and_hard_links_kept_apart() {
        let scratch = tempfile::tempdir().unwrap();
        let root = scratch.path().join("env");
        fs::create_dir_all(root.join("bin")).unwrap();
        fs::create_dir_all(root.join("lib/pkgconfig")).unwrap();
        let pkgs = scratch.path().join("pkgs");
        fs::create_dir_all(&pkgs).unwrap();
        let script = format!("#!{FROM}/bin/python\nimport sys\n");
        fs::write(root.join("bin/f2py"), &script).unwrap();
        fs::set_permissions(root.join("bin/f2py"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            root.join("lib/pkgconfig/openblas.pc"),
            format!("prefix={FROM}\nlibdir=${{prefix}}/lib\nx={FROM}/include\n"),
        )
        .unwrap();
        let mut binary = b"\x7fELF\0\0".to_vec();
        let start = binary.len();
        binary.extend_from_slice(format!("{FROM}/lib:{FROM}/share").as_bytes());
        binary.extend_from_slice(b"\0\0\0trailer\0");
        fs::write(root.join("lib/libopenblas.so.0"), &binary).unwrap();
        // A file hard-linked into a package cache must not change there.
        fs::write(pkgs.join("original"), &script).unwrap();
        fs::hard_link(pkgs.join("original"), root.join("bin/linked")).unwrap();
        symlink(format!("{FROM}/bin/f2py"), root.join("bin/absolute-link")).unwrap();
        fs::write(root.join("lib/module.pyc"), format!("\0{FROM}")).unwrap();

        let relocation = relocate(&root, FROM, TO).unwrap();
        assert_eq!(relocation.text_files, 3);
        assert_eq!(relocation.binary_files, 1);
        assert_eq!(relocation.symlinks, 1);

        assert_eq!(
            fs::read_to_string(root.join("bin/f2py")).unwrap(),
            format!("#!{TO}/bin/python\nimport sys\n")
        );
        assert_eq!(
            fs::metadata(root.join("bin/f2py")).unwrap().mode() & 0o777,
            0o755
        );
        let pc = fs::read_to_string(root.join("lib/pkgconfig/openblas.pc")).unwrap();
        assert!(pc.contains(&format!("prefix={TO}\n")) && !pc.contains("/tmp/"));
        let rewritten = fs::read(root.join("lib/libopenblas.so.0")).unwrap();
        assert_eq!(rewritten.len(), binary.len(), "binary length unchanged");
        let expected = format!("{TO}/lib:{TO}/share");
        assert_eq!(
            &rewritten[start..start + expected.len()],
            expected.as_bytes()
        );
        assert!(rewritten[start + expected.len()..].starts_with(&[0; 8]));
        assert!(rewritten.ends_with(b"\0trailer\0"));
        assert_eq!(
            fs::read_to_string(pkgs.join("original")).unwrap(),
            script,
            "the cache's copy is untouched"
        );
        assert!(
            fs::read_to_string(root.join("bin/linked"))
                .unwrap()
                .contains(TO)
        );
        assert_eq!(
            fs::read_link(root.join("bin/absolute-link")).unwrap(),
            Path::new(&format!("{TO}/bin/f2py"))
        );
        assert!(
            fs::read_to_string(root.join("lib/module.pyc"))
                .unwrap()
                .contains(FROM)
        );
    }

    #[test]
    fn a_longer_runtime_path_cannot_rewrite_binaries() {
        let scratch = tempfile::tempdir().unwrap();
        fs::write(scratch.path().join("lib.so"), "\0/short\0").unwrap();
        let error = relocate(scratch.path(), "/short", "/much/longer/path").unwrap_err();
        assert!(matches!(error, RelocateError::PrefixTooLong { .. }));
    }

    #[test]
    fn short_build_paths_are_padded_to_the_runtime_length() {
        let target = Path::new("/tmp/app/.cloudfoundry/0/conda-env");
        let runtime = Path::new("/home/vcap/app/.cloudfoundry/0/conda-env");
        let build = build_prefix_for(target, runtime);
        assert!(
            build.as_os_str().len() >= runtime.as_os_str().len(),
            "{}",
            build.display()
        );
        assert!(build.starts_with("/tmp/app/.cloudfoundry/0/"));
        assert_eq!(build.file_name().unwrap(), "conda-env");
        let long = Path::new("/tmp/contents123456789/deps/0/conda-env");
        assert_eq!(build_prefix_for(long, Path::new(TO)), long);
    }
}
