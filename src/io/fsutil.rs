//! File-system moves the buildpack makes many times: atomic writes, and trees restored or
//! saved by hard links where the source and target share a file system (a copy where not),
//! walked and measured with every core (a warm restage is tens of thousands of `stat` and
//! `link` calls, CPU-bound in the kernel: `docs/benchmarks.md`).

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

/// Writes `contents` to `path` so that a reader sees the old file or the new one, never half:
/// a temporary sibling, flushed to disk, renamed over.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let parent = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(parent)?;
    let temporary = parent.join(format!(
        ".{}.tmp-{}",
        path.file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// Removes a file or a tree if it exists; a missing path is not an error.
pub(crate) fn remove_if_exists(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// What the buildpack checks of a file before it reads it: its kind and size.
pub(crate) struct FileStat {
    pub(crate) is_file: bool,
    pub(crate) len: u64,
}

impl FileStat {
    pub(crate) fn from_metadata(metadata: &fs::Metadata) -> Self {
        Self {
            is_file: metadata.is_file(),
            len: metadata.len(),
        }
    }
}

/// The directory of the files being looked at, kept open while the next file is in the same
/// one, so that each `stat` or `link` costs the kernel a lookup of a name instead of a walk of a
/// whole path: path walks were the largest kernel cost of a warm restage (`docs/benchmarks.md`).
pub(crate) struct OpenDir {
    relative: String,
    file: fs::File,
}

impl OpenDir {
    /// `root/relative`, open: the one in `slot` when it is that directory already.
    pub(crate) fn at<'a>(
        slot: &'a mut Option<Self>,
        root: &Path,
        relative: &str,
    ) -> io::Result<&'a fs::File> {
        if slot.as_ref().is_none_or(|open| open.relative != relative) {
            *slot = Some(Self {
                relative: relative.to_string(),
                file: fs::File::open(root.join(relative))?,
            });
        }
        slot.as_ref()
            .map(|open| &open.file)
            .ok_or_else(|| io::Error::other("no open directory"))
    }
}

/// `("a/b", "c")` for `"a/b/c"`, `("", "c")` for `"c"`.
pub(crate) fn split_parent(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// `lstat` of `name` in the open directory `dir`; where `statx` is unavailable (a kernel
/// before 4.11) or fails, the standard library's `lstat` of the whole path `path()`.
pub(crate) fn stat_at(
    dir: &fs::File,
    name: &str,
    path: impl FnOnce() -> PathBuf,
) -> io::Result<FileStat> {
    use rustix::fs::{AtFlags, StatxFlags};
    let wanted = StatxFlags::TYPE | StatxFlags::MODE | StatxFlags::SIZE;
    match rustix::fs::statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, wanted) {
        Ok(statx) => {
            let mode = u32::from(statx.stx_mode);
            Ok(FileStat {
                is_file: mode & libc::S_IFMT == libc::S_IFREG,
                len: statx.stx_size,
            })
        }
        Err(_) => fs::symlink_metadata(path()).map(|metadata| FileStat::from_metadata(&metadata)),
    }
}

/// The xxHash3-128 digest of a file's bytes, hex: what the app cache records of each file,
/// fast enough to check a whole environment at every restore.
pub(crate) fn digest_file(file: &fs::File) -> io::Result<String> {
    use std::io::Read as _;
    let mut hasher = xxhash_rust::xxh3::Xxh3Default::new();
    let mut buffer = vec![0_u8; 256 * 1024];
    let mut reader = file;
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(format!("{:032x}", hasher.digest128()))
}

/// Bytes of the regular files in a tree, each inode counted once: what the tree costs on
/// disk and in a droplet. A missing tree (or a directory that vanishes midway) counts 0.
pub(crate) fn tree_size(root: &Path) -> io::Result<u64> {
    #[derive(Default)]
    struct Tally {
        /// Files with one link: they appear once in any tree.
        single: u64,
        /// Files with more: counted once by (device, inode) when the tallies are merged.
        shared: HashMap<(u64, u64), u64>,
    }
    let tallies = walk_parallel(root, |tally: &mut Tally, entry, file_type| {
        if file_type.is_file() {
            let metadata = entry.metadata()?;
            if metadata.nlink() > 1 {
                tally
                    .shared
                    .insert((metadata.dev(), metadata.ino()), metadata.len());
            } else {
                tally.single += metadata.len();
            }
        }
        Ok(())
    })?;
    let mut shared = HashMap::new();
    let mut total = 0;
    for tally in tallies {
        total += tally.single;
        shared.extend(tally.shared);
    }
    Ok(total + shared.values().sum::<u64>())
}

/// How many threads walk or link a tree: every core, up to four (beyond that a staging cell's
/// neighbours lose more than the staging gains).
pub(crate) fn worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |count| count.get().min(4))
}

/// Calls `visit` for every entry under `root` (not `root` itself) with its file type, from
/// [`worker_threads`] threads, each with a state of its own; returns the states. A directory
/// that vanishes midway is skipped; any other error stops the walk and is returned.
pub(crate) fn walk_parallel<S, F>(root: &Path, visit: F) -> io::Result<Vec<S>>
where
    S: Default + Send,
    F: Fn(&mut S, &fs::DirEntry, fs::FileType) -> io::Result<()> + Sync,
{
    struct Queue {
        pending: Vec<PathBuf>,
        /// Directories being read: the walk is over when none are and none are pending.
        busy: usize,
        error: Option<io::Error>,
    }
    let queue = Mutex::new(Queue {
        pending: vec![root.to_path_buf()],
        busy: 0,
        error: None,
    });
    let changed = Condvar::new();
    let work = || {
        let mut state = S::default();
        loop {
            let directory = {
                let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
                loop {
                    if queue.error.is_some() {
                        return state;
                    }
                    if let Some(directory) = queue.pending.pop() {
                        queue.busy += 1;
                        break directory;
                    }
                    if queue.busy == 0 {
                        return state;
                    }
                    queue = changed.wait(queue).unwrap_or_else(PoisonError::into_inner);
                }
            };
            let result = visit_directory(&directory, &mut state, &visit);
            let mut queue = queue.lock().unwrap_or_else(PoisonError::into_inner);
            queue.busy -= 1;
            match result {
                Ok(subdirectories) => queue.pending.extend(subdirectories),
                Err(error) => {
                    queue.error.get_or_insert(error);
                }
            }
            changed.notify_all();
        }
    };
    let states = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..worker_threads()).map(|_| scope.spawn(work)).collect();
        let mut states = vec![work()];
        for helper in helpers {
            states.push(
                helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        states
    });
    match queue
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .error
    {
        Some(error) => Err(error),
        None => Ok(states),
    }
}

fn visit_directory<S>(
    directory: &Path,
    state: &mut S,
    visit: &impl Fn(&mut S, &fs::DirEntry, fs::FileType) -> io::Result<()>,
) -> io::Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(directory) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut subdirectories = Vec::new();
    for entry in entries {
        let entry = entry?;
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            subdirectories.push(entry.path());
        }
        visit(state, &entry, file_type)?;
    }
    Ok(subdirectories)
}

/// `work` applied to every item, from [`worker_threads`] threads; the results in item order.
pub(crate) fn map_parallel<T, R, F>(items: &[T], work: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(index) else {
                return done;
            };
            done.push((index, work(item)));
        }
    };
    let mut results = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..worker_threads().min(items.len()))
            .map(|_| scope.spawn(worker))
            .collect();
        let mut results = worker();
        for helper in helpers {
            results.extend(
                helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        results
    });
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

/// Writes a file only its owner can read (a staging `.condarc` or `.netrc` holding
/// credentials), replacing what was there.
pub(crate) fn write_owner_only(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_size_counts_shared_inodes_once_across_threads() {
        let scratch = tempfile::tempdir().unwrap();
        let root = scratch.path().join("tree");
        for directory in 0..20 {
            let path = root.join(format!("d{directory}/sub"));
            fs::create_dir_all(&path).unwrap();
            fs::write(path.join("file"), vec![b'x'; directory + 1]).unwrap();
        }
        // One inode under three names, in different directories.
        fs::write(root.join("shared"), vec![b'y'; 1000]).unwrap();
        fs::hard_link(root.join("shared"), root.join("d3/also")).unwrap();
        fs::hard_link(root.join("shared"), root.join("d17/sub/again")).unwrap();
        assert_eq!(tree_size(&root).unwrap(), (1..=20).sum::<u64>() + 1000);
        assert_eq!(tree_size(&scratch.path().join("missing")).unwrap(), 0);
    }

    #[test]
    fn parallel_maps_keep_the_item_order() {
        let items: Vec<u64> = (0..1000).collect();
        let squares = map_parallel(&items, |item| item * item);
        assert_eq!(
            squares,
            items.iter().map(|item| item * item).collect::<Vec<_>>()
        );
        assert!(map_parallel(&[] as &[u8], |_| 0).is_empty());
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("deep/file.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }
}
