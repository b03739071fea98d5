//! `conda-buildpack package`: the buildpack zip, as Cloud Foundry's buildpack-packager makes
//! it. Only `include_files` and this executable (as `bin/conda-buildpack`) go in, with Unix
//! modes stored; the manifest is rewritten for a single stack; the cached variant carries
//! every installer at `dependencies/<md5 of uri>/<file>` with a `file:` key in its manifest
//! entry. The zip is reproducible: sorted entries, fixed timestamps and modes, so the same
//! inputs give the same bytes, with a sha256 file beside it.

use std::fs;
use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use md5::{Digest as _, Md5};
use serde_yaml_ng::Value;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use crate::io::digest::{self, hex};
use crate::io::download::{self, Progress};
use crate::manifest::Manifest;

#[derive(Debug, clap::Args)]
pub(crate) struct PackageArgs {
    /// Vendor every installer into the zip, for foundations without internet access.
    #[arg(long)]
    cached: bool,
    /// Build for one stack: its manifest gets `stack:` and only that stack's installers.
    #[arg(long, conflicts_with = "any_stack")]
    stack: Option<String>,
    /// Build one zip for every stack (the default).
    #[arg(long)]
    any_stack: bool,
    /// Use this manifest instead of the source tree's manifest.yml.
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// Where the zip is written.
    #[arg(long, default_value = ".")]
    output: PathBuf,
    /// The buildpack source tree (bin/, manifest.yml, VERSION, README.md).
    #[arg(long, default_value = ".")]
    source: PathBuf,
    /// Keep downloaded installers here, so packaging again downloads nothing.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// Package as this version instead of the source tree's VERSION file.
    #[arg(long)]
    buildpack_version: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum PackageError {
    #[error(transparent)]
    Manifest(#[from] crate::manifest::ManifestError),
    #[error("no dependency in the manifest lists stack `{0}`")]
    UnknownStack(String),
    #[error(
        "`{0}` is not a stack this buildpack supports: it supports {supported}",
        supported = crate::stack::supported_names()
    )]
    UnsupportedStack(String),
    #[error("include_files names {0}, which does not exist in the source tree")]
    MissingFile(PathBuf),
    #[error("cannot read the buildpack's own executable: {0}")]
    Executable(io::Error),
    #[error("pre_package `{command}` failed: {status}")]
    PrePackage { command: String, status: String },
    #[error(transparent)]
    Download(#[from] download::DownloadError),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
}

fn io_context(context: impl Into<String>) -> impl FnOnce(io::Error) -> PackageError {
    let context = context.into();
    move |source| PackageError::Io { context, source }
}

pub(crate) fn run(args: &PackageArgs) -> ExitCode {
    match package(args) {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("conda-buildpack package: {error}");
            ExitCode::FAILURE
        }
    }
}

/// One file of the zip.
struct Entry {
    name: String,
    mode: u32,
    contents: Contents,
}

enum Contents {
    Bytes(Vec<u8>),
    File(PathBuf),
}

pub(crate) fn package(args: &PackageArgs) -> Result<PathBuf, PackageError> {
    let source = &args.source;
    let manifest_path = args
        .manifest
        .clone()
        .unwrap_or_else(|| source.join("manifest.yml"));
    let manifest = Manifest::load(&manifest_path)?;
    let manifest_text = fs::read_to_string(&manifest_path).map_err(io_context(format!(
        "cannot read {}",
        manifest_path.display()
    )))?;
    let mut document: Value =
        serde_yaml_ng::from_str(&manifest_text).map_err(|error| PackageError::Io {
            context: format!("cannot parse {}", manifest_path.display()),
            source: io::Error::other(error),
        })?;
    let version = match &args.buildpack_version {
        Some(version) => version.clone(),
        None => crate::staging::buildpack::version_in(source),
    };
    if let Some(command) = &manifest.pre_package {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .current_dir(source)
            .status()
            .map_err(io_context(format!("cannot run pre_package `{command}`")))?;
        if !status.success() {
            return Err(PackageError::PrePackage {
                command: command.clone(),
                status: status.to_string(),
            });
        }
    }

    // The stack: keep that stack's dependencies, say so once at the top, drop cf_stacks. The
    // others' names and stacks stay under `other_stacks`, for a staging that finds no installer.
    if let Some(stack) = &args.stack {
        if crate::stack::find(stack).is_none() {
            return Err(PackageError::UnsupportedStack(stack.clone()));
        }
        if !manifest
            .dependencies
            .iter()
            .any(|d| d.cf_stacks.iter().any(|s| s == stack))
        {
            return Err(PackageError::UnknownStack(stack.clone()));
        }
        if let Value::Mapping(mapping) = &mut document {
            mapping.insert("stack".into(), Value::String(stack.clone()));
            let mut elsewhere = Vec::new();
            if let Some(Value::Sequence(dependencies)) = mapping.get_mut("dependencies") {
                let on_stack = |dependency: &Value| {
                    dependency
                        .get("cf_stacks")
                        .and_then(Value::as_sequence)
                        .is_some_and(|stacks| stacks.iter().any(|s| s.as_str() == Some(stack)))
                };
                for dependency in dependencies.iter().filter(|d| !on_stack(d)) {
                    let mut entry = serde_yaml_ng::Mapping::new();
                    for key in ["name", "version", "cf_stacks"] {
                        if let Some(value) = dependency.get(key) {
                            entry.insert(key.into(), value.clone());
                        }
                    }
                    elsewhere.push(Value::Mapping(entry));
                }
                dependencies.retain(on_stack);
                for dependency in dependencies.iter_mut() {
                    if let Value::Mapping(entry) = dependency {
                        entry.remove("cf_stacks");
                    }
                }
            }
            if !elsewhere.is_empty() {
                mapping.insert("other_stacks".into(), Value::Sequence(elsewhere));
            }
        }
    }

    let mut entries = Vec::new();
    if args.cached {
        let cache_dir = args
            .cache_dir
            .clone()
            .unwrap_or_else(default_download_cache);
        let progress = if io::stderr().is_terminal() {
            Progress::Bar
        } else {
            Progress::Lines
        };
        if let Value::Mapping(mapping) = &mut document {
            if let Some(Value::Sequence(dependencies)) = mapping.get_mut("dependencies") {
                for dependency in dependencies.iter_mut() {
                    let (Some(uri), Some(sha256)) = (
                        dependency
                            .get("uri")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        dependency
                            .get("sha256")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                    ) else {
                        continue;
                    };
                    let file_name = uri
                        .split(['?', '#'])
                        .next()
                        .unwrap_or(&uri)
                        .rsplit('/')
                        .next()
                        .unwrap_or("dependency")
                        .to_string();
                    let cached = cache_dir.join(sha256.to_ascii_lowercase()).join(&file_name);
                    let verified = cached.is_file()
                        && digest::sha256_file(&cached)
                            .is_ok_and(|actual| actual.eq_ignore_ascii_case(&sha256));
                    if verified {
                        eprintln!("       Using {file_name} from {}", cache_dir.display());
                    } else {
                        eprintln!(
                            "       Download [{}]",
                            crate::staging::log::redact_url(&uri)
                        );
                        download::fetch_verified(&uri, &sha256, &cached, progress)?;
                    }
                    let inside = format!(
                        "dependencies/{}/{file_name}",
                        hex(&Md5::digest(uri.as_bytes()))
                    );
                    if let Value::Mapping(entry) = dependency {
                        entry.insert("file".into(), Value::String(inside.clone()));
                    }
                    entries.push(Entry {
                        name: inside,
                        mode: 0o644,
                        contents: Contents::File(cached),
                    });
                }
            }
        }
    }

    let manifest_yaml = format!(
        "---\n{}",
        serde_yaml_ng::to_string(&document).unwrap_or_default()
    );
    // What Cloud Controller will read must still be a valid manifest.
    Manifest::parse(&manifest_yaml).map_err(|reason| PackageError::Io {
        context: "the rewritten manifest is invalid".into(),
        source: io::Error::other(reason),
    })?;
    for file in &manifest.include_files {
        let contents = match file.as_str() {
            "manifest.yml" => Contents::Bytes(manifest_yaml.clone().into_bytes()),
            "VERSION" => Contents::Bytes(format!("{version}\n").into_bytes()),
            _ => {
                let path = source.join(file);
                if !path.is_file() {
                    return Err(PackageError::MissingFile(path));
                }
                Contents::File(path)
            }
        };
        entries.push(Entry {
            name: file.clone(),
            mode: mode_for(&source.join(file), file),
            contents,
        });
    }
    let executable = std::env::current_exe().map_err(PackageError::Executable)?;
    entries.push(Entry {
        name: "bin/conda-buildpack".into(),
        mode: 0o755,
        contents: Contents::File(executable),
    });
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    entries.dedup_by(|a, b| a.name == b.name);

    let name = format!(
        "{}_buildpack{}{}-v{version}.zip",
        manifest.language,
        if args.cached { "-cached" } else { "" },
        args.stack
            .as_ref()
            .map(|stack| format!("-{stack}"))
            .unwrap_or_default()
    );
    fs::create_dir_all(&args.output).map_err(io_context(format!(
        "cannot create {}",
        args.output.display()
    )))?;
    let target = args.output.join(&name);
    let partial = args.output.join(format!(".{name}.partial"));
    write_zip(&partial, &entries).inspect_err(|_| {
        let _ = fs::remove_file(&partial);
    })?;
    fs::rename(&partial, &target)
        .map_err(io_context(format!("cannot write {}", target.display())))?;
    let digest = digest::sha256_file(&target).map_err(io_context("cannot checksum the zip"))?;
    let sums = args.output.join(format!("{name}.SHA256SUMS"));
    fs::write(&sums, format!("{digest}  {name}\n"))
        .map_err(io_context(format!("cannot write {}", sums.display())))?;
    Ok(target)
}

/// Scripts and executables 0755, everything else 0644: what CF needs, and nothing that
/// depends on the packaging machine's umask.
fn mode_for(path: &Path, name: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let executable =
        fs::metadata(path).is_ok_and(|metadata| metadata.permissions().mode() & 0o111 != 0);
    if executable || name.starts_with("bin/") {
        0o755
    } else {
        0o644
    }
}

fn write_zip(path: &Path, entries: &[Entry]) -> Result<(), PackageError> {
    let file =
        fs::File::create(path).map_err(io_context(format!("cannot create {}", path.display())))?;
    let mut zip = ZipWriter::new(io::BufWriter::new(file));
    let zip_error = |error: zip::result::ZipError| PackageError::Io {
        context: "cannot write the zip".into(),
        source: io::Error::other(error),
    };
    for entry in entries {
        // Installers are compressed payloads already: storing them is as small and faster.
        let method = if entry.name.starts_with("dependencies/") {
            CompressionMethod::Stored
        } else {
            CompressionMethod::Deflated
        };
        let options = SimpleFileOptions::default()
            .compression_method(method)
            .unix_permissions(entry.mode)
            .last_modified_time(DateTime::default())
            .large_file(true);
        zip.start_file(entry.name.as_str(), options)
            .map_err(zip_error)?;
        match &entry.contents {
            Contents::Bytes(bytes) => zip
                .write_all(bytes)
                .map_err(io_context("cannot write the zip"))?,
            Contents::File(source) => {
                let mut input = fs::File::open(source)
                    .map_err(io_context(format!("cannot read {}", source.display())))?;
                io::copy(&mut input, &mut zip).map_err(io_context("cannot write the zip"))?;
            }
        }
    }
    let mut writer = zip.finish().map_err(zip_error)?;
    writer.flush().map_err(io_context("cannot write the zip"))?;
    writer
        .into_inner()
        .map_err(|error| PackageError::Io {
            context: "cannot write the zip".into(),
            source: error.into_error(),
        })?
        .sync_all()
        .map_err(io_context("cannot write the zip"))?;
    Ok(())
}

fn default_download_cache() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("conda-buildpack")
        .join("downloads")
}
