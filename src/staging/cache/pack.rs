//! The environment as one zstd-compressed tar: cheap for the builder to gzip, for Diego to
//! ship and for the next staging to restore (a few large sequential reads and writes instead
//! of tens of thousands of small files, at a fraction of the bytes).
//!
//! Unpacking treats the archive as untrusted even after its digest matched (the digest only
//! says it is the archive that was written, and a cache can be written by anything): every
//! entry must be a plain relative path, is created fresh, and is never written through a link.

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::{Mutex, PoisonError, mpsc};

use super::entry::{ArchiveRecord, digest};

/// zstd's default: about as fast to write as the disk, a third of the bytes or less.
const LEVEL: i32 = 3;

/// Packs the tree at `source` into `archive`, in a stable order, with modes and mtimes (so
/// the restored sources keep the `.pyc` files conda compiled valid).
pub(crate) fn pack(source: &Path, archive: &Path) -> io::Result<ArchiveRecord> {
    let file = fs::File::create(archive)?;
    let mut encoder = zstd::stream::write::Encoder::new(BufWriter::new(file), LEVEL)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    // Without zstd's threads the buildpack's own cores sit idle while it compresses.
    let _ = encoder.multithread(threads);
    let mut builder = tar::Builder::new(encoder);
    builder.mode(tar::HeaderMode::Complete);
    builder.follow_symlinks(false);
    let (mut files, mut bytes) = (0_u64, 0_u64);
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let directory = source.join(&relative);
        let mut children: Vec<_> = fs::read_dir(&directory)?.collect::<Result<_, _>>()?;
        children.sort_by_key(fs::DirEntry::file_name);
        let mut subdirectories = Vec::new();
        for child in children {
            let name = relative.join(child.file_name());
            let path = child.path();
            let metadata = fs::symlink_metadata(&path)?;
            let mut header = tar::Header::new_gnu();
            header.set_metadata_in_mode(&metadata, tar::HeaderMode::Complete);
            header.set_uid(0);
            header.set_gid(0);
            let kind = metadata.file_type();
            if kind.is_dir() {
                header.set_size(0);
                builder.append_data(&mut header, &name, io::empty())?;
                subdirectories.push(name);
            } else if kind.is_symlink() {
                header.set_size(0);
                builder.append_link(&mut header, &name, fs::read_link(&path)?)?;
            } else if kind.is_file() {
                files += 1;
                bytes += metadata.len();
                builder.append_data(&mut header, &name, fs::File::open(&path)?)?;
            }
            // Sockets and fifos have no place in an environment: left out.
        }
        pending.extend(subdirectories.into_iter().rev());
    }
    let encoder = builder.into_inner()?;
    let mut writer = encoder.finish()?;
    writer.flush()?;
    let file = writer
        .into_inner()
        .map_err(io::IntoInnerError::into_error)?;
    file.sync_all()?;
    let size = file.metadata()?.len();
    drop(file);
    Ok(ArchiveRecord {
        size,
        digest: digest(archive)?,
        files,
        unpacked_bytes: bytes,
    })
}

/// What an unpack wrote.
pub(crate) struct Unpacked {
    pub(crate) files: u64,
    pub(crate) bytes: u64,
}

/// Files up to this size are handed to the writer threads whole; larger ones (a few shared
/// libraries) are streamed to disk by the reading thread. Bounds the memory in flight to
/// `QUEUE * SMALL_FILE`.
const SMALL_FILE: u64 = 1024 * 1024;
const QUEUE: usize = 64;

/// A file read from the archive, to be written by a writer thread.
struct Pending {
    path: PathBuf,
    raw: PathBuf,
    mode: u32,
    mtime: u64,
    data: Vec<u8>,
}

/// Unpacks `archive` into `target`, which must not exist. Every entry becomes a new file
/// owned by this staging: nothing written into the restored environment later reaches the
/// cache. An entry that would land outside `target` or pass through a link fails the whole
/// unpack, naming it.
///
/// One thread decompresses and makes directories and links in order; creating and writing
/// the tens of thousands of small files, the larger part of a restore, is spread over every
/// core.
pub(crate) fn unpack(archive: &Path, target: &Path) -> Result<Unpacked, String> {
    fs::create_dir(target)
        .map_err(|error| format!("cannot create {}: {error}", target.display()))?;
    let file =
        fs::File::open(archive).map_err(|error| format!("its archive is unreadable ({error})"))?;
    let decoder = zstd::stream::read::Decoder::new(file)
        .map_err(|error| format!("its archive cannot be decompressed ({error})"))?;
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let fail = |reason: String| {
        let mut slot = failure.lock().unwrap_or_else(PoisonError::into_inner);
        slot.get_or_insert(reason);
    };
    let mut unpacked = Unpacked { files: 0, bytes: 0 };
    let mut directory_modes = Vec::new();
    let (sender, receiver) = mpsc::sync_channel::<Pending>(QUEUE);
    let receiver = Mutex::new(receiver);
    std::thread::scope(|scope| {
        for _ in 0..crate::io::fsutil::worker_threads() {
            let (receiver, fail) = (&receiver, &fail);
            scope.spawn(move || {
                loop {
                    let next = receiver
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .recv();
                    let Ok(pending) = next else { break };
                    let written = create_file(&pending.path, pending.mode, pending.mtime, |file| {
                        file.write_all(&pending.data)
                    });
                    if let Err(error) = written {
                        fail(format!("cannot restore {}: {error}", pending.raw.display()));
                    }
                }
            });
        }
        let read = read_entries(
            decoder,
            target,
            &sender,
            &mut unpacked,
            &mut directory_modes,
        );
        drop(sender);
        if let Err(reason) = read {
            fail(reason);
        }
    });
    if let Some(reason) = failure.into_inner().unwrap_or_else(PoisonError::into_inner) {
        return Err(reason);
    }
    // Directories get their modes last, deepest first: a read-only one is filled by then.
    for (path, mode) in directory_modes.into_iter().rev() {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode))
            .map_err(|error| format!("cannot restore {}: {error}", path.display()))?;
    }
    Ok(unpacked)
}

/// The reading thread's part: checks every entry, makes directories and links, writes large
/// files itself and queues the rest.
fn read_entries(
    decoder: impl Read,
    target: &Path,
    sender: &mpsc::SyncSender<Pending>,
    unpacked: &mut Unpacked,
    directory_modes: &mut Vec<(PathBuf, u32)>,
) -> Result<(), String> {
    let mut tar = tar::Archive::new(decoder);
    let broken = |error: io::Error| format!("its archive is broken ({error})");
    let mut links = HashSet::new();
    for entry in tar.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let raw = entry.path().map_err(broken)?.into_owned();
        let escapes = || format!("its archive has an entry that escapes: {}", raw.display());
        if raw.as_os_str().is_empty()
            || !raw
                .components()
                .all(|component| matches!(component, Component::Normal(_)))
        {
            return Err(escapes());
        }
        // Never through a link: every ancestor must be a directory this unpack made.
        if raw
            .ancestors()
            .skip(1)
            .any(|ancestor| links.contains(ancestor))
        {
            return Err(escapes());
        }
        let path = target.join(&raw);
        let header = entry.header();
        let mode = header.mode().map_err(broken)? & 0o7777;
        let mtime = header.mtime().unwrap_or(0);
        let failed = |error: io::Error| format!("cannot restore {}: {error}", raw.display());
        match header.entry_type() {
            tar::EntryType::Directory => {
                fs::create_dir(&path).map_err(failed)?;
                directory_modes.push((path, mode));
            }
            tar::EntryType::Symlink => {
                let link = entry.link_name().map_err(broken)?.ok_or_else(|| {
                    format!("its archive has a link without a target: {}", raw.display())
                })?;
                std::os::unix::fs::symlink(&link, &path).map_err(failed)?;
                links.insert(raw.clone());
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let size = header.size().map_err(broken)?;
                unpacked.files += 1;
                unpacked.bytes += size;
                if size > SMALL_FILE {
                    create_file(&path, mode, mtime, |file| {
                        let copied = io::copy(&mut (&mut entry).take(size), file)?;
                        if copied == size {
                            Ok(())
                        } else {
                            Err(io::Error::new(
                                io::ErrorKind::UnexpectedEof,
                                "the archive ends inside it",
                            ))
                        }
                    })
                    .map_err(failed)?;
                    continue;
                }
                let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                (&mut entry)
                    .take(size)
                    .read_to_end(&mut data)
                    .map_err(broken)?;
                if data.len() as u64 != size {
                    return Err(format!("its archive ends inside {}", raw.display()));
                }
                let pending = Pending {
                    path,
                    raw,
                    mode,
                    mtime,
                    data,
                };
                if sender.send(pending).is_err() {
                    // Every writer has stopped: their failure is the one to report.
                    return Ok(());
                }
            }
            other => {
                return Err(format!(
                    "its archive has an entry of a kind an environment never holds ({other:?}): {}",
                    raw.display()
                ));
            }
        }
    }
    Ok(())
}

/// Creates `path` (never through a link, never over an existing file), fills it, and gives
/// it its mode and modification time.
fn create_file(
    path: &Path,
    mode: u32,
    mtime: u64,
    fill: impl FnOnce(&mut fs::File) -> io::Result<()>,
) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    fill(&mut file)?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    let time = rustix::fs::Timespec {
        tv_sec: i64::try_from(mtime).unwrap_or(0),
        tv_nsec: 0,
    };
    rustix::fs::futimens(
        &file,
        &rustix::fs::Timestamps {
            last_access: time,
            last_modification: time,
        },
    )?;
    Ok(())
}
