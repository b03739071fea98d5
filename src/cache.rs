//! The app cache: what survives between pushes in the buildpack's CACHE dir.
//!
//! ```text
//! CACHE/installers/<sha256>/<file>   verified installers
//! CACHE/pkgs/                        conda's package cache (CONDA_PKGS_DIRS), never shipped
//! CACHE/pip/                         pip's wheel cache
//! CACHE/environment/entry-<key>/     one built environment: tree/ + metadata.json
//! CACHE/work/                        scratch of one staging, wiped at its start and end
//! ```
//!
//! An environment entry carries a [`Fingerprint`] of everything that decides the environment,
//! compared field by field so the log can say why an entry was discarded, and a record of
//! every file (size, permission bits, an xxHash3 digest of its bytes, link target) so a
//! partial, edited or truncated entry is caught before anything is restored from it. Nothing
//! is trusted that Diego's round trip of the cache changes (every file comes back as a new
//! copy with a new mtime, hard links broken, modes through a 022 umask): only content. Entries are written under a temporary name
//! and renamed into place complete: an interruption leaves the old entry or the new one.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::download::hex;
use crate::fsutil;

/// Bumped whenever the entry layout or the meaning of a field changes: an entry of another
/// format is discarded, never interpreted.
pub(crate) const FORMAT: u32 = 2;

/// The permission bits that survive Diego's round trip of the cache (a 022 umask).
const KEPT_MODE_BITS: u32 = 0o7755;

const ENVIRONMENT_DIR: &str = "environment";
const ENTRY_PREFIX: &str = "entry-";
const INCOMING_PREFIX: &str = ".incoming-";
const METADATA: &str = "metadata.json";
const TREE: &str = "tree";

/// Everything that decides a built environment. A field added here takes part in the
/// comparison (and gets a reason line in `differences`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fingerprint {
    pub(crate) buildpack_version: String,
    pub(crate) stack: String,
    pub(crate) installer: String,
    pub(crate) installer_sha256: String,
    pub(crate) python: String,
    /// `(file name, sha256 of its bytes)` of each input file: environment.yml, spec-file.txt.
    pub(crate) inputs: BTreeMap<String, String>,
    /// A digest of `vendor/`: every archive's path, size and sha256.
    pub(crate) vendor: Option<String>,
    /// Where the environment runs, which its embedded paths name.
    pub(crate) runtime_prefix: String,
    /// Digests of the `CONDA_*`, `PIP_*` and `BP_CONDA_*` settings that change a solve.
    /// Values are hashed: a token in `PIP_INDEX_URL` must not be written into the cache.
    pub(crate) settings: BTreeMap<String, String>,
}

impl Fingerprint {
    /// The reasons `self` (this staging) differs from `cached`, in plain words.
    pub(crate) fn differences(&self, cached: &Self) -> Vec<String> {
        let mut reasons = Vec::new();
        let mut changed = |what: &str, old: &str, new: &str| {
            if old != new {
                reasons.push(format!("{what} {old} -> {new}"));
            }
        };
        changed(
            "buildpack",
            &cached.buildpack_version,
            &self.buildpack_version,
        );
        changed("stack", &cached.stack, &self.stack);
        changed("installer", &cached.installer, &self.installer);
        changed("Python", &cached.python, &self.python);
        changed(
            "run-time path",
            &cached.runtime_prefix,
            &self.runtime_prefix,
        );
        if cached.installer == self.installer && cached.installer_sha256 != self.installer_sha256 {
            reasons.push(format!("the sha256 of {} changed", self.installer));
        }
        for (file, digest) in &self.inputs {
            match cached.inputs.get(file) {
                None => reasons.push(format!("{file} added")),
                Some(old) if old != digest => reasons.push(format!("{file} changed")),
                Some(_) => {}
            }
        }
        for file in cached
            .inputs
            .keys()
            .filter(|file| !self.inputs.contains_key(*file))
        {
            reasons.push(format!("{file} removed"));
        }
        match (&cached.vendor, &self.vendor) {
            (None, Some(_)) => reasons.push("vendor/ added".into()),
            (Some(_), None) => reasons.push("vendor/ removed".into()),
            (Some(old), Some(new)) if old != new => reasons.push("vendor/ changed".into()),
            _ => {}
        }
        for (name, digest) in &self.settings {
            match cached.settings.get(name) {
                None => reasons.push(format!("{name} set")),
                Some(old) if old != digest => reasons.push(format!("{name} changed")),
                Some(_) => {}
            }
        }
        for name in cached
            .settings
            .keys()
            .filter(|name| !self.settings.contains_key(*name))
        {
            reasons.push(format!("{name} unset"));
        }
        reasons
    }

    /// A short stable key naming the entry directory.
    fn key(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex(&Sha256::digest(json))[..16].to_string()
    }
}

/// The settings that change what conda installs. Variables the buildpack sets itself for
/// every conda run are left out: the user's value never reaches conda.
pub(crate) fn relevant_settings(
    variables: impl Iterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    const SET_BY_BUILDPACK: [&str; 15] = [
        "CONDA_PKGS_DIRS",
        "CONDA_QUIET",
        "CONDA_ALWAYS_YES",
        "CONDA_NOTIFY_OUTDATED_CONDA",
        "CONDA_AUTO_UPDATE_CONDA",
        "CONDA_REPORT_ERRORS",
        "CONDA_CHANGEPS1",
        "CONDA_ALWAYS_COPY",
        "CONDA_OFFLINE",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "PIP_NO_INPUT",
        "PIP_PROGRESS_BAR",
        "PIP_DISABLE_PIP_VERSION_CHECK",
        "PIP_CACHE_DIR",
    ];
    variables
        .filter(|(name, _)| {
            (name.starts_with("CONDA_")
                || name.starts_with("PIP_")
                || name.starts_with("BP_CONDA_"))
                && !SET_BY_BUILDPACK.contains(&name.as_str())
                && name != "PIP_NO_COLOR"
                && name != "BP_CONDA_CLEAR_CACHE"
        })
        .map(|(name, value)| {
            let digest = hex(&Sha256::digest(value.as_bytes()))[..16].to_string();
            (name, digest)
        })
        .collect()
}

pub(crate) fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// One file-system entry of a cached tree, as recorded when it was saved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum Record {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        mode: u32,
        size: u64,
        /// xxHash3-128 of the bytes, hex.
        digest: String,
    },
    Symlink {
        path: String,
        target: String,
    },
}

impl Record {
    fn path(&self) -> &str {
        match self {
            Self::Dir { path, .. } | Self::File { path, .. } | Self::Symlink { path, .. } => path,
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Metadata {
    format: u32,
    fingerprint: Fingerprint,
    created_unix: u64,
    records: Vec<Record>,
    /// sha256 of the JSON of the fields above: an edited metadata file is caught too.
    checksum: String,
}

#[derive(Serialize)]
struct MetadataBody<'a> {
    format: u32,
    fingerprint: &'a Fingerprint,
    created_unix: u64,
    records: &'a [Record],
}

impl Metadata {
    fn body_checksum(&self) -> String {
        let body = MetadataBody {
            format: self.format,
            fingerprint: &self.fingerprint,
            created_unix: self.created_unix,
            records: &self.records,
        };
        sha256_bytes(&serde_json::to_vec(&body).unwrap_or_default())
    }
}

/// What a restore attempt found.
pub(crate) enum Restore {
    Restored(RestoreStats),
    /// No entry at all (a first push, or a cleared cache).
    Empty,
    /// An entry for other inputs: rebuild, with the reasons.
    Stale(Vec<String>),
    /// An entry that cannot be trusted: rebuild, with a warning.
    Corrupt(String),
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct RestoreStats {
    pub(crate) files: u64,
    pub(crate) bytes: u64,
    pub(crate) linked: bool,
    pub(crate) duration: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("{context}: {source}")]
pub(crate) struct CacheError {
    pub(crate) context: String,
    pub(crate) source: io::Error,
}

fn context(what: impl Into<String>) -> impl FnOnce(io::Error) -> CacheError {
    let context = what.into();
    move |source| CacheError { context, source }
}

pub(crate) struct AppCache {
    root: PathBuf,
}

impl AppCache {
    /// Opens the cache dir, removing what an interrupted staging left half-written.
    pub(crate) fn open(root: &Path) -> Result<Self, CacheError> {
        fs::create_dir_all(root).map_err(context(format!("cannot create {}", root.display())))?;
        let cache = Self {
            root: root.to_path_buf(),
        };
        fsutil::remove_if_exists(&cache.work_dir())
            .map_err(context("cannot clear the cache's work dir"))?;
        let environments = cache.root.join(ENVIRONMENT_DIR);
        if let Ok(entries) = fs::read_dir(&environments) {
            for entry in entries.flatten() {
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(INCOMING_PREFIX)
                {
                    let _ = fsutil::remove_if_exists(&entry.path());
                }
            }
        }
        Ok(cache)
    }

    /// Empties the cache: installers, packages, environments. For a user who asks
    /// (`BP_CONDA_CLEAR_CACHE`), since Cloud Foundry has no per-app command for it.
    pub(crate) fn clear(&self) -> Result<(), CacheError> {
        let entries = fs::read_dir(&self.root).map_err(context("cannot read the cache dir"))?;
        for entry in entries {
            let entry = entry.map_err(context("cannot read the cache dir"))?;
            fsutil::remove_if_exists(&entry.path())
                .map_err(context(format!("cannot remove {}", entry.path().display())))?;
        }
        Ok(())
    }

    pub(crate) fn installers_dir(&self) -> PathBuf {
        self.root.join("installers")
    }

    pub(crate) fn pkgs_dir(&self) -> PathBuf {
        self.root.join("pkgs")
    }

    pub(crate) fn pip_dir(&self) -> PathBuf {
        self.root.join("pip")
    }

    pub(crate) fn work_dir(&self) -> PathBuf {
        self.root.join("work")
    }

    fn entries(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(self.root.join(ENVIRONMENT_DIR)) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(ENTRY_PREFIX)
            })
            .map(|entry| entry.path())
            .collect();
        paths.sort();
        paths
    }

    fn read_metadata(entry: &Path) -> Result<Metadata, String> {
        let bytes = fs::read(entry.join(METADATA))
            .map_err(|error| format!("its metadata is unreadable ({error})"))?;
        parse_metadata(&bytes)
    }

    /// Restores the environment for `fingerprint` into `target` (which must not exist), or
    /// says why it cannot. A corrupt entry is deleted; a half-restored target is removed.
    pub(crate) fn restore(&self, fingerprint: &Fingerprint, target: &Path) -> Restore {
        let entries = self.entries();
        if entries.is_empty() {
            return Restore::Empty;
        }
        let wanted = self
            .root
            .join(ENVIRONMENT_DIR)
            .join(format!("{ENTRY_PREFIX}{}", fingerprint.key()));
        if !entries.contains(&wanted) {
            // Explain against the newest entry, the one the previous push wrote.
            let newest = entries
                .iter()
                .filter_map(|entry| Self::read_metadata(entry).ok())
                .max_by_key(|metadata| metadata.created_unix);
            return match newest {
                Some(metadata) => {
                    let mut reasons = fingerprint.differences(&metadata.fingerprint);
                    if reasons.is_empty() {
                        reasons.push("the cached entry is for other inputs".into());
                    }
                    Restore::Stale(reasons)
                }
                None => {
                    let reason = entries
                        .first()
                        .map(|entry| Self::read_metadata(entry).err().unwrap_or_default())
                        .unwrap_or_default();
                    self.discard_all();
                    Restore::Corrupt(reason)
                }
            };
        }
        let metadata = match Self::read_metadata(&wanted) {
            Ok(metadata) => metadata,
            Err(reason) => {
                let _ = fsutil::remove_if_exists(&wanted);
                return Restore::Corrupt(reason);
            }
        };
        if &metadata.fingerprint != fingerprint {
            let _ = fsutil::remove_if_exists(&wanted);
            return Restore::Corrupt("its fingerprint does not match its name".into());
        }
        let started = Instant::now();
        match restore_records(&wanted.join(TREE), target, &metadata.records) {
            Ok((files, bytes, linked)) => Restore::Restored(RestoreStats {
                files,
                bytes,
                linked,
                duration: started.elapsed(),
            }),
            Err(reason) => {
                let _ = fsutil::remove_if_exists(target);
                let _ = fsutil::remove_if_exists(&wanted);
                Restore::Corrupt(reason)
            }
        }
    }

    /// Saves the environment at `source` as the entry for `fingerprint`, then removes every
    /// other entry. On failure (a full disk) the previous entries are left as they were.
    pub(crate) fn save(&self, fingerprint: &Fingerprint, source: &Path) -> Result<(), CacheError> {
        let environments = self.root.join(ENVIRONMENT_DIR);
        fs::create_dir_all(&environments)
            .map_err(context("cannot create the cache's environment dir"))?;
        let incoming = environments.join(format!("{INCOMING_PREFIX}{}", std::process::id()));
        let result = (|| {
            fsutil::remove_if_exists(&incoming)
                .map_err(context("cannot clear an old incoming entry"))?;
            fs::create_dir(&incoming).map_err(context("cannot create the incoming entry"))?;
            fsutil::reproduce_tree(source, &incoming.join(TREE), true)
                .map_err(context("cannot store the environment in the cache"))?;
            let records = record_tree(&incoming.join(TREE))
                .map_err(context("cannot record the cached environment"))?;
            let mut metadata = Metadata {
                format: FORMAT,
                fingerprint: fingerprint.clone(),
                created_unix: std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |elapsed| elapsed.as_secs()),
                records,
                checksum: String::new(),
            };
            metadata.checksum = metadata.body_checksum();
            let json = serde_json::to_vec(&metadata).map_err(|error| CacheError {
                context: "cannot encode the cache metadata".into(),
                source: io::Error::other(error),
            })?;
            fsutil::write_atomically(&incoming.join(METADATA), &json)
                .map_err(context("cannot write the cache metadata"))?;
            let entry = environments.join(format!("{ENTRY_PREFIX}{}", fingerprint.key()));
            fsutil::remove_if_exists(&entry).map_err(context("cannot replace the old entry"))?;
            fs::rename(&incoming, &entry)
                .map_err(context("cannot move the new entry into place"))?;
            sync_dir(&environments);
            Ok(entry)
        })();
        match result {
            Ok(entry) => {
                for other in self.entries().into_iter().filter(|other| *other != entry) {
                    let _ = fsutil::remove_if_exists(&other);
                }
                Ok(())
            }
            Err(error) => {
                let _ = fsutil::remove_if_exists(&incoming);
                Err(error)
            }
        }
    }

    fn discard_all(&self) {
        for entry in self.entries() {
            let _ = fsutil::remove_if_exists(&entry);
        }
    }

    /// Removes what this staging did not use: other installers, the scratch dir, and files of
    /// earlier buildpack versions. Returns the cache's size afterwards.
    pub(crate) fn prune(&self, installer_sha256: &str) -> u64 {
        let _ = fsutil::remove_if_exists(&self.work_dir());
        if let Ok(installers) = fs::read_dir(self.installers_dir()) {
            for installer in installers.flatten() {
                if !installer
                    .file_name()
                    .to_string_lossy()
                    .eq_ignore_ascii_case(installer_sha256)
                {
                    let _ = fsutil::remove_if_exists(&installer.path());
                }
            }
        }
        if let Ok(children) = fs::read_dir(&self.root) {
            for child in children.flatten() {
                let name = child.file_name();
                let known = ["installers", "pkgs", "pip", ENVIRONMENT_DIR];
                if !known.iter().any(|known| name == *known) {
                    let _ = fsutil::remove_if_exists(&child.path());
                }
            }
        }
        fsutil::tree_size(&self.root).unwrap_or(0)
    }

    /// Removes the extracted packages in conda's package cache whose files no longer match
    /// their `info/paths.json` (missing, or of another size or kind), and returns their names.
    /// conda links an extracted package as it finds it: a file truncated or deleted there
    /// (a full disk, a killed copy, a bad sector) would end up in the app's environment. With
    /// the directory gone, conda unpacks the package again from its verified tarball, or
    /// downloads it.
    pub(crate) fn drop_damaged_packages(&self) -> Vec<String> {
        let Ok(children) = fs::read_dir(self.pkgs_dir()) else {
            return Vec::new();
        };
        let mut dropped = Vec::new();
        for child in children.flatten() {
            let path = child.path();
            if !child.file_type().is_ok_and(|kind| kind.is_dir()) {
                continue;
            }
            let Ok(bytes) = fs::read(path.join("info/paths.json")) else {
                continue;
            };
            let sound = serde_json::from_slice::<PathsJson>(&bytes)
                .is_ok_and(|paths| paths.paths.iter().all(|entry| entry.is_intact(&path)));
            if !sound {
                let _ = fsutil::remove_if_exists(&path);
                dropped.push(child.file_name().to_string_lossy().into_owned());
            }
        }
        dropped.sort();
        dropped
    }

    /// Removes conda's repodata index cache and packages the environment does not use, so the
    /// package cache holds this environment's packages and no more.
    pub(crate) fn prune_packages(&self, used: &[String]) {
        let Ok(children) = fs::read_dir(self.pkgs_dir()) else {
            return;
        };
        for child in children.flatten() {
            let name = child.file_name().to_string_lossy().into_owned();
            let stem = name
                .strip_suffix(".tar.bz2")
                .or_else(|| name.strip_suffix(".conda"))
                .unwrap_or(&name);
            let is_package = child.path().join("info").is_dir() || stem.len() != name.len();
            if name == "cache" || (is_package && !used.iter().any(|dist| dist == stem)) {
                let _ = fsutil::remove_if_exists(&child.path());
            }
        }
    }
}

/// Parses an entry's `metadata.json`, checking its format and its own checksum: the cache
/// is input from an earlier push, which may have been cut short or edited.
pub(crate) fn parse_metadata(bytes: &[u8]) -> Result<Metadata, String> {
    // The format comes first so that a future layout is named as such, not as garbage.
    // Only that field is kept: the rest is skipped, not built into a tree of values.
    #[derive(Deserialize)]
    struct FormatOnly {
        #[serde(default)]
        format: serde_json::Value,
    }
    let format = serde_json::from_slice::<FormatOnly>(bytes)
        .ok()
        .and_then(|only| only.format.as_u64());
    match format {
        Some(found) if found != u64::from(FORMAT) => {
            return Err(format!(
                "it was written in cache format {found}; this buildpack reads format {FORMAT}"
            ));
        }
        None => return Err("its metadata is not valid".into()),
        Some(_) => {}
    }
    let metadata: Metadata = serde_json::from_slice(bytes)
        .map_err(|error| format!("its metadata is not valid ({error})"))?;
    if metadata.body_checksum() != metadata.checksum {
        return Err("its metadata was modified".into());
    }
    Ok(metadata)
}

/// `info/paths.json` of an extracted package: what conda will link from it.
#[derive(Deserialize)]
struct PathsJson {
    paths: Vec<PathEntry>,
}

#[derive(Deserialize)]
struct PathEntry {
    #[serde(rename = "_path")]
    path: String,
    #[serde(default)]
    path_type: Option<String>,
    #[serde(default)]
    size_in_bytes: Option<u64>,
}

impl PathEntry {
    fn is_intact(&self, package: &Path) -> bool {
        // A path that leaves the package is not one conda would link; leave it to conda.
        if Path::new(&self.path)
            .components()
            .any(|component| !matches!(component, std::path::Component::Normal(_)))
        {
            return true;
        }
        let Ok(metadata) = fs::symlink_metadata(package.join(&self.path)) else {
            return false;
        };
        match self.path_type.as_deref() {
            Some("softlink") => metadata.file_type().is_symlink(),
            Some("directory") => metadata.is_dir(),
            _ => metadata.is_file() && self.size_in_bytes.is_none_or(|size| size == metadata.len()),
        }
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(handle) = fs::File::open(dir) {
        let _ = handle.sync_all();
    }
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// Records a tree, directories before their contents, in a stable order.
fn record_tree(root: &Path) -> io::Result<Vec<Record>> {
    let mut records = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(directory) = pending.pop() {
        let mut children: Vec<_> = fs::read_dir(&directory)?.collect::<Result<_, _>>()?;
        children.sort_by_key(fs::DirEntry::file_name);
        let mut subdirectories = Vec::new();
        for child in children {
            let path = child.path();
            let metadata = fs::symlink_metadata(&path)?;
            let file_type = metadata.file_type();
            if file_type.is_dir() {
                records.push(Record::Dir {
                    path: relative(root, &path),
                    mode: metadata.mode() & KEPT_MODE_BITS,
                });
                subdirectories.push(path);
            } else if file_type.is_symlink() {
                records.push(Record::Symlink {
                    path: relative(root, &path),
                    target: fs::read_link(&path)?.to_string_lossy().into_owned(),
                });
            } else if file_type.is_file() {
                records.push(Record::File {
                    path: relative(root, &path),
                    mode: metadata.mode() & KEPT_MODE_BITS,
                    size: metadata.len(),
                    digest: fsutil::digest_file(&fs::File::open(&path)?)?,
                });
            }
        }
        pending.extend(subdirectories.into_iter().rev());
    }
    Ok(records)
}

/// Recreates `records` from `source` at `target`, checking each file against its record
/// before it is linked. Returns (files, bytes, whether hard links were used).
///
/// The directories are made first, in order; the files and symlinks, most of the work, then
/// go in parallel. Whatever fails, the error reported is the one of the first record in
/// order, as a record-by-record restore would report it.
fn restore_records(
    source: &Path,
    target: &Path,
    records: &[Record],
) -> Result<(u64, u64, bool), String> {
    fs::create_dir(target)
        .map_err(|error| format!("cannot create {}: {error}", target.display()))?;
    let mut directory_modes = Vec::new();
    let mut leaves = Vec::with_capacity(records.len());
    let mut first_pass_error = None;
    let mut symlinks = std::collections::HashSet::new();
    for (index, record) in records.iter().enumerate() {
        let created = check_record_path(record, &symlinks).and_then(|()| match record {
            Record::Dir { path, mode } => {
                if !fs::symlink_metadata(source.join(path)).is_ok_and(|metadata| metadata.is_dir())
                {
                    return Err(format!("{path} is missing"));
                }
                let to = target.join(path);
                fs::create_dir(&to).map_err(|error| format!("cannot create {path}: {error}"))?;
                directory_modes.push((to, *mode));
                Ok(())
            }
            Record::Symlink { path, .. } => {
                symlinks.insert(PathBuf::from(path));
                leaves.push((index, record));
                Ok(())
            }
            Record::File { .. } => {
                leaves.push((index, record));
                Ok(())
            }
        });
        if let Err(reason) = created {
            first_pass_error = Some((index, reason));
            break;
        }
    }
    let restored = restore_leaves(source, target, &leaves);
    let result = match (restored, first_pass_error) {
        (Err((leaf, reason)), Some((first_pass, _))) if leaf < first_pass => Err(reason),
        (_, Some((_, reason))) | (Err((_, reason)), None) => Err(reason),
        (Ok(totals), None) => Ok(totals),
    };
    for (directory, mode) in directory_modes.into_iter().rev() {
        let _ = fs::set_permissions(&directory, fs::Permissions::from_mode(mode));
    }
    result
}

/// A record's path must stay inside the tree and not pass below a recorded link: the
/// buildpack never records such a path, and restoring one would write wherever the link points.
fn check_record_path(
    record: &Record,
    symlinks: &std::collections::HashSet<PathBuf>,
) -> Result<(), String> {
    let path = record.path();
    if Path::new(path)
        .components()
        .any(|component| !matches!(component, std::path::Component::Normal(_)))
    {
        return Err(format!("it names a path outside its tree: {path}"));
    }
    if let Some(link) = Path::new(path)
        .ancestors()
        .skip(1)
        .find(|ancestor| symlinks.contains(*ancestor))
    {
        return Err(format!(
            "it names {path}, below the link {}",
            link.display()
        ));
    }
    Ok(())
}

/// Links (or copies) the files and recreates the symlinks of `leaves` (record index, record)
/// from every core, in chunks taken in order. Returns (files, bytes, linked), or the first
/// failing record's index and reason.
fn restore_leaves(
    source: &Path,
    target: &Path,
    leaves: &[(usize, &Record)],
) -> Result<(u64, u64, bool), (usize, String)> {
    /// Neighbouring records share a directory: a chunk keeps one thread in one directory.
    const CHUNK: usize = 256;
    #[derive(Default)]
    struct Tally {
        files: u64,
        bytes: u64,
        copied: bool,
        error: Option<(usize, String)>,
    }
    let next = AtomicUsize::new(0);
    // The lowest failing record so far: records after it need not be restored.
    let first_failure = AtomicUsize::new(usize::MAX);
    let worker = || {
        let mut tally = Tally::default();
        let mut links_work = true;
        let mut open_dirs = OpenDirs::default();
        'chunks: loop {
            let start = next.fetch_add(CHUNK, Ordering::Relaxed);
            let Some(chunk) = leaves.get(start..(start + CHUNK).min(leaves.len())) else {
                break;
            };
            for &(index, record) in chunk {
                if index > first_failure.load(Ordering::Relaxed) {
                    break 'chunks;
                }
                match restore_leaf(source, target, record, &mut links_work, &mut open_dirs) {
                    Ok(Some(size)) => {
                        tally.files += 1;
                        tally.bytes += size;
                    }
                    Ok(None) => {}
                    Err(reason) => {
                        first_failure.fetch_min(index, Ordering::Relaxed);
                        tally.error = Some((index, reason));
                        break 'chunks;
                    }
                }
            }
        }
        tally.copied = !links_work;
        tally
    };
    let chunks = leaves.len().div_ceil(CHUNK);
    let tallies = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..fsutil::worker_threads().min(chunks))
            .map(|_| scope.spawn(worker))
            .collect();
        let mut tallies = vec![worker()];
        for helper in helpers {
            tallies.push(
                helper
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        tallies
    });
    let mut totals = (0, 0, true);
    let mut first_error: Option<(usize, String)> = None;
    for tally in tallies {
        totals.0 += tally.files;
        totals.1 += tally.bytes;
        totals.2 &= !tally.copied;
        if let Some((index, reason)) = tally.error {
            if first_error.as_ref().is_none_or(|(first, _)| index < *first) {
                first_error = Some((index, reason));
            }
        }
    }
    first_error.map_or(Ok(totals), Err)
}

/// The source and target directories of the records being restored, kept open while
/// neighbouring records share them.
#[derive(Default)]
struct OpenDirs {
    source: Option<fsutil::OpenDir>,
    target: Option<fsutil::OpenDir>,
}

/// One file (linked, or copied once links are refused) or symlink, checked against its record
/// first. Returns the file's size, or `None` for a symlink.
fn restore_leaf(
    source: &Path,
    target: &Path,
    record: &Record,
    links_work: &mut bool,
    open_dirs: &mut OpenDirs,
) -> Result<Option<u64>, String> {
    let fail = |what: &str, path: &str, detail: String| format!("{what} {path}: {detail}");
    let path = record.path();
    // Whole paths only where a name relative to an open directory will not do.
    let from = || source.join(path);
    let to = || target.join(path);
    match record {
        Record::Dir { .. } => Ok(None),
        Record::Symlink { target: link, .. } => {
            let actual = fs::read_link(from()).map_err(|_| format!("{path} is missing"))?;
            if actual.to_string_lossy() != *link {
                return Err(format!("{path} was changed"));
            }
            std::os::unix::fs::symlink(link, to())
                .map_err(|error| fail("cannot create", path, error.to_string()))?;
            Ok(None)
        }
        Record::File {
            mode, size, digest, ..
        } => {
            let (parent, name) = fsutil::split_parent(path);
            let source_dir = fsutil::OpenDir::at(&mut open_dirs.source, source, parent)
                .map_err(|_| format!("{path} is missing"))?;
            let target_dir = fsutil::OpenDir::at(&mut open_dirs.target, target, parent)
                .map_err(|error| fail("cannot link", path, error.to_string()))?;
            let checked = fsutil::stat_at(source_dir, name, from)
                .map_err(|_| format!("{path} is missing"))?;
            if !checked.is_file {
                return Err(format!("{path} is no longer a file"));
            }
            if checked.len != *size {
                return Err(format!(
                    "{path} was truncated or changed ({} bytes, expected {size})",
                    checked.len
                ));
            }
            if checked.mode & KEPT_MODE_BITS != *mode {
                return Err(format!("{path} changed its permissions"));
            }
            let actual = fsutil::digest_at(source_dir, name)
                .map_err(|error| fail("cannot read", path, error.to_string()))?;
            if actual != *digest {
                return Err(format!("{path} was modified"));
            }
            if *links_work {
                match fsutil::hard_link_at(source_dir, target_dir, name) {
                    Ok(()) => return Ok(Some(*size)),
                    Err(error)
                        if matches!(
                            error.raw_os_error(),
                            Some(libc::EXDEV | libc::EMLINK | libc::EPERM)
                        ) =>
                    {
                        *links_work = false;
                    }
                    Err(error) => return Err(fail("cannot link", path, error.to_string())),
                }
            }
            let metadata =
                fs::symlink_metadata(from()).map_err(|_| format!("{path} is missing"))?;
            fsutil::copy_file_preserving(&from(), &to(), &metadata)
                .map_err(|error| fail("cannot copy", path, error.to_string()))?;
            Ok(Some(*size))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint() -> Fingerprint {
        Fingerprint {
            buildpack_version: "1.2.0".into(),
            stack: "cflinuxfs4".into(),
            installer: "miniconda3-py39 25.7.0".into(),
            installer_sha256: "a".repeat(64),
            python: "Python 3 (the default)".into(),
            inputs: BTreeMap::from([("environment.yml".into(), "1".repeat(64))]),
            vendor: None,
            runtime_prefix: "/home/vcap/deps/0/conda-env".into(),
            settings: BTreeMap::new(),
        }
    }

    fn environment(root: &Path) -> PathBuf {
        let env = root.join("deps/0/conda-env");
        fs::create_dir_all(env.join("bin")).unwrap();
        fs::create_dir_all(env.join("lib/python3.11/site-packages/numpy")).unwrap();
        fs::write(env.join("bin/python"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(env.join("bin/python"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(
            env.join("lib/python3.11/site-packages/numpy/__init__.py"),
            "x = 1\n",
        )
        .unwrap();
        std::os::unix::fs::symlink("python", env.join("bin/python3")).unwrap();
        env
    }

    #[test]
    fn a_saved_environment_comes_back_identical_and_linked() {
        let scratch = tempfile::tempdir().unwrap();
        let env = environment(scratch.path());
        let cache = AppCache::open(&scratch.path().join("cache")).unwrap();
        assert!(matches!(
            cache.restore(&fingerprint(), &scratch.path().join("x")),
            Restore::Empty
        ));
        cache.save(&fingerprint(), &env).unwrap();
        let target = scratch.path().join("deps2/0/conda-env");
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        let stats = match cache.restore(&fingerprint(), &target) {
            Restore::Restored(stats) => stats,
            Restore::Corrupt(reason) => panic!("corrupt: {reason}"),
            Restore::Stale(reasons) => panic!("stale: {reasons:?}"),
            Restore::Empty => panic!("empty"),
        };
        assert_eq!(stats.files, 2);
        assert!(stats.linked);
        assert_eq!(
            fs::read_link(target.join("bin/python3")).unwrap(),
            Path::new("python")
        );
        assert_eq!(
            fs::metadata(target.join("bin/python")).unwrap().mode() & 0o777,
            0o755
        );
        assert_eq!(
            fs::read_to_string(target.join("lib/python3.11/site-packages/numpy/__init__.py"))
                .unwrap(),
            "x = 1\n"
        );
    }

    #[test]
    fn a_changed_input_is_stale_with_every_reason() {
        let scratch = tempfile::tempdir().unwrap();
        let env = environment(scratch.path());
        let cache = AppCache::open(&scratch.path().join("cache")).unwrap();
        cache.save(&fingerprint(), &env).unwrap();
        let mut changed = fingerprint();
        changed.buildpack_version = "1.3.0".into();
        changed
            .inputs
            .insert("environment.yml".into(), "2".repeat(64));
        changed
            .settings
            .insert("CONDA_CHANNEL_ALIAS".into(), "x".into());
        let Restore::Stale(reasons) = cache.restore(&changed, &scratch.path().join("t")) else {
            panic!("expected stale");
        };
        assert_eq!(
            reasons,
            [
                "buildpack 1.2.0 -> 1.3.0",
                "environment.yml changed",
                "CONDA_CHANNEL_ALIAS set"
            ]
        );
    }

    /// What Diego does to the cache between stagings: every file a new copy (hard links
    /// broken) with a new mtime, modes through a 022 umask.
    fn round_trip_through_diego(dir: &Path) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            let metadata = fs::symlink_metadata(&path).unwrap();
            if metadata.is_dir() {
                round_trip_through_diego(&path);
            } else if metadata.is_file() {
                let bytes = fs::read(&path).unwrap();
                fs::remove_file(&path).unwrap();
                fs::write(&path, bytes).unwrap();
                let mode = metadata.mode() & 0o7777 & !0o022;
                fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            }
        }
    }

    #[test]
    fn an_entry_survives_diegos_round_trip_and_is_restored() {
        let scratch = tempfile::tempdir().unwrap();
        let env = environment(scratch.path());
        fs::set_permissions(env.join("bin/python"), fs::Permissions::from_mode(0o775)).unwrap();
        let cache_dir = scratch.path().join("cache");
        let cache = AppCache::open(&cache_dir).unwrap();
        cache.save(&fingerprint(), &env).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        round_trip_through_diego(&cache_dir);
        let target = scratch.path().join("restored");
        let Restore::Restored(stats) = cache.restore(&fingerprint(), &target) else {
            panic!("the round trip of the cache discarded a sound entry");
        };
        assert!(stats.files > 0);
        assert_eq!(
            fs::read(target.join("bin/python")).unwrap(),
            fs::read(env.join("bin/python")).unwrap()
        );
    }

    #[test]
    fn every_kind_of_damage_is_caught_before_a_restore() {
        type Damage = fn(&Path);
        let damages: [(&str, Damage); 6] = [
            ("truncated", |entry| {
                fs::write(entry.join("tree/bin/python"), "").unwrap()
            }),
            ("deleted", |entry| {
                fs::remove_file(entry.join("tree/lib/python3.11/site-packages/numpy/__init__.py"))
                    .unwrap()
            }),
            ("edited same size", |entry| {
                // Content alone decides: the edit keeps the size and the mtime.
                let file = entry.join("tree/bin/python");
                let mtime = fs::metadata(&file).unwrap().modified().unwrap();
                fs::write(&file, "#!/bin/XX\n").unwrap();
                fs::File::options()
                    .write(true)
                    .open(&file)
                    .unwrap()
                    .set_modified(mtime)
                    .unwrap();
            }),
            ("metadata edited", |entry| {
                let text = fs::read_to_string(entry.join(METADATA)).unwrap();
                fs::write(
                    entry.join(METADATA),
                    text.replace("\"size\":6", "\"size\":7"),
                )
                .unwrap();
            }),
            ("metadata truncated", |entry| {
                fs::write(entry.join(METADATA), format!("{{\"format\":{FORMAT},")).unwrap()
            }),
            ("future format", |entry| {
                let text = fs::read_to_string(entry.join(METADATA)).unwrap();
                fs::write(
                    entry.join(METADATA),
                    text.replacen(&format!("\"format\":{FORMAT}"), "\"format\":99", 1),
                )
                .unwrap();
            }),
        ];
        for (name, damage) in damages {
            let scratch = tempfile::tempdir().unwrap();
            let env = environment(scratch.path());
            let cache = AppCache::open(&scratch.path().join("cache")).unwrap();
            cache.save(&fingerprint(), &env).unwrap();
            let entry = cache.entries().pop().unwrap();
            damage(&entry);
            let target = scratch.path().join("target");
            match cache.restore(&fingerprint(), &target) {
                Restore::Corrupt(reason) => {
                    assert!(!reason.is_empty(), "{name}");
                    if name == "future format" {
                        assert!(reason.contains("format 99"), "{reason}");
                    }
                }
                Restore::Restored(_) => panic!("{name}: a damaged entry was restored"),
                _ => panic!("{name}: unexpected outcome"),
            }
            assert!(!target.exists(), "{name}: no half-restored tree is left");
            assert!(
                cache.entries().is_empty(),
                "{name}: the corrupt entry is gone"
            );
        }
    }

    /// Every path of a saved entry (its metadata and each file, link and directory of its
    /// tree), relative to the entry.
    fn entry_paths(entry: &Path) -> Vec<PathBuf> {
        let mut found = vec![PathBuf::from(METADATA)];
        let mut pending = vec![PathBuf::from(TREE)];
        while let Some(dir) = pending.pop() {
            for child in fs::read_dir(entry.join(&dir)).unwrap().flatten() {
                let relative = dir.join(child.file_name());
                if child.file_type().unwrap().is_dir() {
                    pending.push(relative.clone());
                }
                found.push(relative);
            }
        }
        found.sort();
        found
    }

    #[test]
    fn damage_to_any_file_of_an_entry_is_caught() {
        type Damage = fn(&Path);
        let damages: [(&str, Damage); 5] = [
            ("truncated", |path| {
                if path.is_dir() || path.is_symlink() {
                    fsutil::remove_if_exists(path).unwrap();
                } else {
                    let half = fs::metadata(path).unwrap().len() / 2;
                    fs::OpenOptions::new()
                        .write(true)
                        .open(path)
                        .unwrap()
                        .set_len(half)
                        .unwrap();
                }
            }),
            ("deleted", |path| fsutil::remove_if_exists(path).unwrap()),
            ("altered", |path| {
                if path.is_symlink() {
                    fs::remove_file(path).unwrap();
                    std::os::unix::fs::symlink("/etc/passwd", path).unwrap();
                } else if path.is_dir() {
                    fs::write(path.join("intruder"), "x").unwrap();
                } else {
                    // Same size, other bytes: an edit, a bad sector, a half-finished copy.
                    let mut bytes = fs::read(path).unwrap();
                    for byte in &mut bytes {
                        *byte = byte.wrapping_add(1);
                    }
                    fs::write(path, bytes).unwrap();
                }
            }),
            ("made a link", |path| {
                fsutil::remove_if_exists(path).unwrap();
                std::os::unix::fs::symlink("/etc/passwd", path).unwrap();
            }),
            ("mode changed", |path| {
                if !path.is_symlink() {
                    let mode = fs::metadata(path).unwrap().mode();
                    fs::set_permissions(path, fs::Permissions::from_mode((mode ^ 0o111) & 0o7777))
                        .unwrap();
                } else {
                    fs::remove_file(path).unwrap();
                    std::os::unix::fs::symlink("elsewhere", path).unwrap();
                }
            }),
        ];
        let scratch = tempfile::tempdir().unwrap();
        let env = environment(scratch.path());
        fs::create_dir_all(env.join("lib/empty")).unwrap();
        fs::write(env.join("lib/libz.so.1"), vec![7_u8; 4096]).unwrap();
        std::os::unix::fs::symlink("libz.so.1", env.join("lib/libz.so")).unwrap();
        let root = scratch.path().join("cache");
        let paths = {
            let cache = AppCache::open(&root).unwrap();
            cache.save(&fingerprint(), &env).unwrap();
            entry_paths(&cache.entries()[0])
        };
        assert!(paths.len() >= 10, "{paths:?}");
        let mut tried = 0;
        for relative in &paths {
            for (kind, damage) in &damages {
                let cache = AppCache::open(&root).unwrap();
                cache.save(&fingerprint(), &env).unwrap();
                let entry = cache.entries().pop().unwrap();
                // Saved and damaged in different instants, as in life.
                std::thread::sleep(Duration::from_millis(2));
                damage(&entry.join(relative));
                let target = scratch.path().join("restored");
                let outcome = cache.restore(&fingerprint(), &target);
                // Harmless changes: a directory that gained a file (only recorded files are
                // restored, the intruder stays behind), and the mode of a directory or of
                // metadata.json (restored directories get their recorded modes).
                let damaged = entry.join(relative);
                let harmless = (*kind == "altered" && damaged.is_dir())
                    || (*kind == "mode changed"
                        && (damaged.is_dir() || relative == Path::new(METADATA)));
                match outcome {
                    Restore::Restored(_) if harmless => {
                        assert!(
                            *kind != "altered"
                                || !target
                                    .join(relative.strip_prefix(TREE).unwrap())
                                    .join("intruder")
                                    .exists()
                        );
                        fs::remove_dir_all(&target).unwrap();
                    }
                    Restore::Restored(_) => {
                        panic!(
                            "{} {kind}: a damaged entry was restored",
                            relative.display()
                        )
                    }
                    Restore::Corrupt(_) => {
                        assert!(
                            !target.exists(),
                            "{} {kind}: a half-restored tree",
                            relative.display()
                        );
                        assert!(
                            cache.entries().is_empty(),
                            "{} {kind}: the entry stays",
                            relative.display()
                        );
                    }
                    Restore::Stale(_) | Restore::Empty => {
                        panic!("{} {kind}: not recognised as damaged", relative.display())
                    }
                }
                tried += 1;
            }
        }
        assert_eq!(tried, paths.len() * damages.len());
    }

    #[test]
    fn a_forged_entry_cannot_restore_through_a_link() {
        let scratch = tempfile::tempdir().unwrap();
        let env = environment(scratch.path());
        let cache = AppCache::open(&scratch.path().join("cache")).unwrap();
        cache.save(&fingerprint(), &env).unwrap();
        let entry = cache.entries().pop().unwrap();
        // Someone rewrites the entry with a link out of it and a file below that link, and
        // recomputes the metadata checksum: it is no secret.
        let outside = scratch.path().join("outside");
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("planted"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, entry.join("tree/bin/out")).unwrap();
        let mut metadata = parse_metadata(&fs::read(entry.join(METADATA)).unwrap()).unwrap();
        let planted = fs::metadata(outside.join("planted")).unwrap();
        metadata.records.push(Record::Symlink {
            path: "bin/out".into(),
            target: outside.display().to_string(),
        });
        metadata.records.push(Record::File {
            path: "bin/out/planted".into(),
            mode: planted.mode() & KEPT_MODE_BITS,
            size: planted.len(),
            digest: fsutil::digest_file(&fs::File::open(outside.join("planted")).unwrap()).unwrap(),
        });
        metadata.checksum = metadata.body_checksum();
        fs::write(entry.join(METADATA), serde_json::to_vec(&metadata).unwrap()).unwrap();
        let target = scratch.path().join("restored");
        let Restore::Corrupt(reason) = cache.restore(&fingerprint(), &target) else {
            panic!("a forged entry was restored");
        };
        assert!(reason.contains("below the link bin/out"), "{reason}");
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            1,
            "nothing written outside"
        );
    }

    /// Many directories of many files: the restore runs on several threads.
    fn wide_environment(root: &Path) -> PathBuf {
        let env = root.join("deps/0/conda-env");
        for directory in 0..10 {
            let path = env.join(format!("d{directory}"));
            fs::create_dir_all(&path).unwrap();
            for file in 0..100 {
                fs::write(
                    path.join(format!("f{file:03}")),
                    format!("{directory}/{file}"),
                )
                .unwrap();
            }
        }
        std::os::unix::fs::symlink("d0/f000", env.join("link")).unwrap();
        env
    }

    #[test]
    fn a_wide_environment_is_restored_whole() {
        let scratch = tempfile::tempdir().unwrap();
        let env = wide_environment(scratch.path());
        let cache = AppCache::open(&scratch.path().join("cache")).unwrap();
        cache.save(&fingerprint(), &env).unwrap();
        let target = scratch.path().join("target");
        let Restore::Restored(stats) = cache.restore(&fingerprint(), &target) else {
            panic!("expected a restore");
        };
        assert_eq!((stats.files, stats.linked), (1000, true));
        assert_eq!(fs::read_to_string(target.join("d7/f042")).unwrap(), "7/42");
        assert_eq!(
            fs::read_link(target.join("link")).unwrap(),
            Path::new("d0/f000")
        );
    }

    #[test]
    fn damaged_extracted_packages_are_dropped_and_sound_ones_kept() {
        let scratch = tempfile::tempdir().unwrap();
        let cache = AppCache::open(scratch.path()).unwrap();
        let package = |name: &str, files: &[(&str, &str)]| {
            let dir = cache.pkgs_dir().join(name);
            fs::create_dir_all(dir.join("info")).unwrap();
            let mut paths = Vec::new();
            for (path, content) in files {
                fs::create_dir_all(dir.join(path).parent().unwrap()).unwrap();
                fs::write(dir.join(path), content).unwrap();
                paths.push(serde_json::json!({
                    "_path": path, "path_type": "hardlink", "size_in_bytes": content.len()
                }));
            }
            fs::write(
                dir.join("info/paths.json"),
                serde_json::json!({"paths": paths, "paths_version": 1}).to_string(),
            )
            .unwrap();
            dir
        };
        package("sound-1-0", &[("lib/a.py", "a = 1\n")]);
        let truncated = package("truncated-1-0", &[("lib/b.py", "b = 1\n")]);
        fs::write(truncated.join("lib/b.py"), "b").unwrap();
        let deleted = package("deleted-1-0", &[("lib/c.py", "c = 1\n"), ("bin/c", "#!x")]);
        fs::remove_file(deleted.join("bin/c")).unwrap();
        let garbage = package("garbage-1-0", &[]);
        fs::write(garbage.join("info/paths.json"), "{").unwrap();
        fs::write(cache.pkgs_dir().join("sound-1-0.tar.bz2"), "tarball").unwrap();
        assert_eq!(
            cache.drop_damaged_packages(),
            ["deleted-1-0", "garbage-1-0", "truncated-1-0"]
        );
        assert!(cache.pkgs_dir().join("sound-1-0/lib/a.py").is_file());
        assert!(cache.pkgs_dir().join("sound-1-0.tar.bz2").is_file());
        assert!(!truncated.exists() && !deleted.exists() && !garbage.exists());
    }

    #[test]
    fn a_restore_names_the_first_damaged_file_in_order() {
        let scratch = tempfile::tempdir().unwrap();
        let env = wide_environment(scratch.path());
        let cache = AppCache::open(&scratch.path().join("cache")).unwrap();
        cache.save(&fingerprint(), &env).unwrap();
        let tree = cache.entries().pop().unwrap().join(TREE);
        fs::remove_file(tree.join("d7/f010")).unwrap();
        fs::write(tree.join("d2/f050"), "").unwrap();
        let target = scratch.path().join("target");
        let Restore::Corrupt(reason) = cache.restore(&fingerprint(), &target) else {
            panic!("expected a corrupt entry");
        };
        assert!(reason.starts_with("d2/f050 was truncated"), "{reason}");
        assert!(!target.exists());
    }

    #[test]
    fn an_interrupted_save_leaves_the_old_entry() {
        let scratch = tempfile::tempdir().unwrap();
        let env = environment(scratch.path());
        let root = scratch.path().join("cache");
        let cache = AppCache::open(&root).unwrap();
        cache.save(&fingerprint(), &env).unwrap();
        // A staging killed while writing its entry leaves an incoming dir behind.
        let incoming = root.join(ENVIRONMENT_DIR).join(".incoming-999");
        fs::create_dir_all(incoming.join("tree/bin")).unwrap();
        let cache = AppCache::open(&root).unwrap();
        assert!(!incoming.exists());
        assert!(matches!(
            cache.restore(&fingerprint(), &scratch.path().join("t")),
            Restore::Restored(_)
        ));
    }

    #[test]
    fn settings_are_hashed_and_the_buildpacks_own_are_ignored() {
        let settings = relevant_settings(
            [
                (
                    "CONDA_CHANNEL_ALIAS".to_string(),
                    "http://mirror".to_string(),
                ),
                ("CONDA_PKGS_DIRS".to_string(), "/x".to_string()),
                (
                    "PIP_INDEX_URL".to_string(),
                    "https://user:token@pypi".to_string(),
                ),
                ("HOME".to_string(), "/home/vcap".to_string()),
            ]
            .into_iter(),
        );
        assert_eq!(
            settings.keys().collect::<Vec<_>>(),
            ["CONDA_CHANNEL_ALIAS", "PIP_INDEX_URL"]
        );
        assert!(!settings["PIP_INDEX_URL"].contains("token"));
    }

    #[test]
    fn accepting_anacondas_terms_or_slimming_changes_the_fingerprint() {
        let with = |name: &str, value: &str| {
            let mut fingerprint = fingerprint();
            fingerprint.settings =
                relevant_settings([(name.to_string(), value.to_string())].into_iter());
            fingerprint
        };
        for (name, value) in [
            ("CONDA_PLUGINS_AUTO_ACCEPT_TOS", "yes"),
            ("BP_CONDA_SLIM", "false"),
        ] {
            let reasons = with(name, value).differences(&fingerprint());
            assert_eq!(reasons, [format!("{name} set")]);
        }
    }
}
