//! Reading the app's own files safely: inside the app only (a link out of it is refused),
//! regular files only, with a size limit, as text.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::AppError;

/// An environment file larger than this is not an environment file; reading it whole would
/// only let a mistake (a data file committed under that name) exhaust staging memory.
const MAX_TEXT_FILE_BYTES: u64 = 1024 * 1024;

pub(super) fn file_label(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    )
}

/// The real path of the app's `path`, which must stay inside the app. A link is followed only
/// when it points at another file of the app: one that leaves it would have staging read the
/// staging machine's files (`/etc/passwd`) instead of the developer's.
pub(super) fn resolve_inside_app(build_dir: &Path, path: &Path) -> Result<PathBuf, AppError> {
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

pub(super) fn read_optional_text(
    build_dir: &Path,
    path: &Path,
) -> Result<Option<String>, AppError> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(None);
    }
    into_text(path, read_bounded(build_dir, path)?).map(Some)
}

/// Reads at most `MAX_TEXT_FILE_BYTES` of a regular file inside the app, refusing anything
/// larger without reading it, and anything that is not a file (a fifo would block staging).
pub(crate) fn read_bounded(build_dir: &Path, path: &Path) -> Result<Vec<u8>, AppError> {
    read_bounded_to(build_dir, path, MAX_TEXT_FILE_BYTES)
}

/// [`read_bounded`] with another limit.
pub(super) fn read_bounded_to(
    build_dir: &Path,
    path: &Path,
    limit: u64,
) -> Result<Vec<u8>, AppError> {
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
