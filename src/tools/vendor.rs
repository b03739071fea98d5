//! `conda-buildpack vendor APP_DIR`: the developer's side of air-gapped staging. It fills
//! `vendor/` with exactly the packages the environment needs (from a lockfile's URLs, or from
//! a solve by the developer's own conda) and `vendor/pip/` with the pip requirements' files.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use crate::io::download::{self, Checksum, Progress};
use crate::staging::vendored::{STACKS_FILE, hash_archive, scan};

#[derive(Debug, clap::Args)]
pub(crate) struct VendorArgs {
    /// The app directory (with environment.yml or spec-file.txt).
    app_dir: PathBuf,
    /// The conda to solve with (default: $CONDA_EXE, then `conda` on PATH).
    #[arg(long)]
    conda: Option<PathBuf>,
    /// A Python with pip to fetch the pip requirements with (default: the solved
    /// environment's, then `python3` on PATH). The wheels are for the app's platform either way.
    #[arg(long)]
    python: Option<PathBuf>,
    /// The stack the app stages on: conda packages and wheels are chosen for its glibc. By
    /// default they suit every current stack (the lowest glibc among them).
    #[arg(long, value_parser = parse_stack)]
    stack: Option<&'static crate::stack::Stack>,
}

fn parse_stack(name: &str) -> Result<&'static crate::stack::Stack, String> {
    crate::stack::find(name).ok_or_else(|| {
        format!(
            "`{name}` is not a stack this buildpack supports; it supports {}",
            crate::stack::supported_names()
        )
    })
}

impl VendorArgs {
    /// The glibc the packages must run on, and the stacks that glibc serves.
    fn target(&self) -> crate::stack::Target {
        self.stack
            .map_or_else(crate::stack::every_current, crate::stack::Target::for_stack)
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum VendorCommandError {
    #[error("{0}")]
    App(#[from] crate::staging::app::AppError),
    #[error(
        "{0} has no environment.yml and no lockfile (pixi.lock, conda-lock.yml, spec-file.txt...)"
    )]
    NotCondaApp(PathBuf),
    #[error(
        "no conda found: pass --conda PATH, set CONDA_EXE, or put conda on PATH (install Miniconda or Miniforge)"
    )]
    NoConda,
    #[error("`{command}` failed ({status}):\n{output}")]
    Conda {
        command: String,
        status: String,
        output: String,
    },
    #[error("{0}")]
    Download(#[from] download::DownloadError),
    #[error("{0}")]
    Pip(#[from] crate::tools::pip_fetch::FetchError),
    #[error(
        "{url} has no checksum fragment (#md5 or #sha256:); write the spec with `conda list --explicit --md5`"
    )]
    NoChecksum { url: String },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

pub(crate) fn run(args: &VendorArgs) -> ExitCode {
    match vendor(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("conda-buildpack vendor: {error}");
            ExitCode::FAILURE
        }
    }
}

fn vendor(args: &VendorArgs) -> Result<(), VendorCommandError> {
    let app_dir = &args.app_dir;
    if !crate::staging::app::App::is_conda_app(app_dir) {
        return Err(VendorCommandError::NotCondaApp(app_dir.clone()));
    }
    let app = crate::staging::app::App::read(app_dir)?;
    let target = args.target();
    println!(
        "Vendoring for glibc {} ({})",
        target.glibc_version(),
        target.stacks_in_words()
    );
    let scratch = tempfile_dir().map_err(|source| VendorCommandError::Io {
        path: std::env::temp_dir(),
        source,
    })?;
    let result = vendor_into(args, &app, &target, &scratch);
    let _ = fs::remove_dir_all(&scratch);
    result?;
    let marker = app_dir
        .join(crate::staging::app::VENDOR_DIR)
        .join(STACKS_FILE);
    fs::create_dir_all(app_dir.join(crate::staging::app::VENDOR_DIR))
        .and_then(|()| {
            fs::write(
                &marker,
                format!(
                    "# Written by `conda-buildpack vendor`: the packages here were chosen for glibc {}, which these stacks have:\n{}\n",
                    target.glibc_version(),
                    target.stacks.join("\n")
                ),
            )
        })
        .map_err(|source| VendorCommandError::Io {
            path: marker,
            source,
        })
}

fn vendor_into(
    args: &VendorArgs,
    app: &crate::staging::app::App,
    target: &crate::stack::Target,
    scratch: &Path,
) -> Result<(), VendorCommandError> {
    let app_dir = &args.app_dir;
    // A pip line vendoring cannot serve fails before the (long) solve.
    let pip_lines = pip_lines(app, app_dir)?;
    crate::tools::pip_fetch::refuse_direct(&pip_lines)?;
    // A lock needs no solve: its own URLs (through the operator's mirror), as staging fetches.
    let (urls, prefix) = match &app.lock {
        Some(lock) => (
            lock.conda
                .iter()
                .map(|package| {
                    crate::staging::locked::mirrored(&package.explicit_line(), |name| {
                        std::env::var(name).ok()
                    })
                })
                .collect(),
            None,
        ),
        None => solve(args, app, app_dir, target, scratch)?,
    };
    let vendor_dir = app_dir.join(crate::staging::app::VENDOR_DIR);
    let mut wanted = Vec::new();
    for line in &urls {
        let (url, fragment) = line
            .split_once('#')
            .map_or((line.as_str(), None), |(url, fragment)| {
                (url, Some(fragment))
            });
        let mut parts = url.rsplit('/');
        let file_name = parts.next().unwrap_or(url).to_string();
        let subdir = parts
            .next()
            .filter(|s| s.contains('-') || *s == "noarch")
            .unwrap_or("linux-64")
            .to_string();
        let checksum = match fragment {
            Some(fragment) if fragment.starts_with("sha256:") => Checksum::Sha256(&fragment[7..]),
            Some(fragment) if fragment.len() == 32 => Checksum::Md5(fragment),
            _ => {
                return Err(VendorCommandError::NoChecksum {
                    url: url.to_string(),
                });
            }
        };
        let target = vendor_dir.join(&subdir).join(&file_name);
        let present = target.is_file() && matches_checksum(&target, checksum);
        if !present {
            if let Some(local) = url.strip_prefix("file://") {
                fs::create_dir_all(target.parent().unwrap_or(&vendor_dir)).map_err(|source| {
                    VendorCommandError::Io {
                        path: target.clone(),
                        source,
                    }
                })?;
                fs::copy(local, &target).map_err(|source| VendorCommandError::Io {
                    path: PathBuf::from(local),
                    source,
                })?;
                if !matches_checksum(&target, checksum) {
                    let _ = fs::remove_file(&target);
                    return Err(VendorCommandError::Download(
                        download::DownloadError::Transfer {
                            url: url.to_string(),
                            reason: "the copied file does not match its checksum".into(),
                        },
                    ));
                }
            } else {
                eprintln!("Download [{}]", crate::staging::log::redact_url(url));
                download::fetch_checked(url, checksum, &target, Progress::Lines)?;
            }
        }
        wanted.push(target);
    }
    // Exactly what the environment needs: archives no longer wanted go.
    let mut removed = 0;
    if let Ok(Some(existing)) = scan(&vendor_dir) {
        for archive in existing.archives {
            if !wanted.contains(&archive.path) {
                let _ = fs::remove_file(&archive.path);
                removed += 1;
            }
        }
    }
    let size: u64 = wanted
        .iter()
        .filter_map(|path| fs::metadata(path).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "Vendored {} packages ({}) into {}{}",
        wanted.len(),
        crate::staging::log::format_size(size),
        vendor_dir.display(),
        if removed > 0 {
            format!("; removed {removed} no longer needed")
        } else {
            String::new()
        }
    );
    match &app.lock {
        Some(lock) => vendor_locked_pypi(app_dir, lock, scratch),
        None => vendor_pip(args, &pip_lines, prefix.as_deref(), target, scratch),
    }
}

/// A lock's PyPI packages into `vendor/pip/`: exactly the locked files, each checked against
/// its hash; nothing is resolved.
fn vendor_locked_pypi(
    app_dir: &Path,
    lock: &crate::staging::app::lockfile::Lock,
    scratch: &Path,
) -> Result<(), VendorCommandError> {
    let mut fetched = BTreeMap::new();
    let mut sources = BTreeMap::new();
    for package in &lock.pypi {
        let url = crate::staging::locked::mirrored(&package.url, |name| std::env::var(name).ok());
        let target = scratch.join("locked-pypi").join(package.file_name());
        let checksum = package
            .sha256
            .as_deref()
            .map_or(Checksum::Unchecked, Checksum::Sha256);
        eprintln!("Download [{}]", crate::staging::log::redact_url(&url));
        download::fetch_checked(&url, checksum, &target, Progress::Lines)?;
        fetched.insert(package.file_name().to_string(), target);
        sources.insert(
            package.file_name().to_string(),
            crate::staging::log::redact_url(&url),
        );
    }
    let synced = crate::tools::pip_fetch::sync(app_dir, &fetched, &sources)?;
    if !lock.pypi.is_empty() || synced.removed > 0 {
        println!(
            "Vendored {} locked PyPI file{} ({}){}",
            synced.files,
            if synced.files == 1 { "" } else { "s" },
            crate::staging::log::format_size(synced.bytes),
            if synced.removed > 0 {
                format!("; removed {} no longer needed", synced.removed)
            } else {
                String::new()
            }
        );
    }
    Ok(())
}

fn pip_lines(
    app: &crate::staging::app::App,
    app_dir: &Path,
) -> Result<Vec<crate::staging::pip::requirements::Located>, VendorCommandError> {
    let Some(environment) = &app.environment else {
        return Ok(Vec::new());
    };
    let written: Vec<String> = environment
        .spec
        .pip_requirements()
        .map(str::to_string)
        .collect();
    Ok(crate::staging::pip::requirements::expand(
        &written,
        &environment.file_name,
        app_dir,
    )?)
}

/// The pip section's wheels into `vendor/pip/`, for the platform the app stages on.
fn vendor_pip(
    args: &VendorArgs,
    lines: &[crate::staging::pip::requirements::Located],
    prefix: Option<&Path>,
    stacks: &crate::stack::Target,
    scratch: &Path,
) -> Result<(), VendorCommandError> {
    let app_dir = &args.app_dir;
    if lines.is_empty() {
        // No pip section (any more): what vendor/pip holds is of no use.
        let removed =
            crate::tools::pip_fetch::sync(app_dir, &Default::default(), &Default::default())?;
        if removed.removed > 0 {
            println!("Removed {} pip files no longer needed", removed.removed);
        }
        return Ok(());
    }
    let env_python = prefix
        .map(|prefix| prefix.join("bin/python"))
        .filter(|python| has_pip(python));
    let runner = args
        .python
        .clone()
        .or_else(|| env_python.clone())
        .unwrap_or_else(|| PathBuf::from("python3"));
    let version = python_version(env_python.as_ref().unwrap_or(&runner))?;
    let target = crate::tools::pip_fetch::Target::new(stacks.clone(), version);
    println!("Vendoring the pip requirements for {target}");
    let fetched = crate::tools::pip_fetch::fetch(
        app_dir,
        lines,
        &[runner.into_os_string()],
        &target,
        scratch,
    )?;
    println!(
        "Vendored {} pip file{} ({}) into {}{}",
        fetched.files,
        if fetched.files == 1 { "" } else { "s" },
        crate::staging::log::format_size(fetched.bytes),
        app_dir
            .join(crate::staging::app::VENDOR_DIR)
            .join(crate::staging::pip::wheelhouse::PIP_DIR)
            .display(),
        if fetched.removed > 0 {
            format!("; removed {} no longer needed", fetched.removed)
        } else {
            String::new()
        }
    );
    Ok(())
}

fn has_pip(python: &Path) -> bool {
    python.is_file()
        && Command::new(python)
            .args(["-m", "pip", "--version"])
            .output()
            .is_ok_and(|output| output.status.success())
}

/// `(major, minor)` of the Python the wheels are for.
fn python_version(python: &Path) -> Result<(u32, u32), VendorCommandError> {
    let output = Command::new(python)
        .args(["-c", "import sys; print('%d %d' % sys.version_info[:2])"])
        .output()
        .map_err(|source| VendorCommandError::Io {
            path: python.to_path_buf(),
            source,
        })?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut parts = text.split_whitespace().map(str::parse::<u32>);
    match (parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor))) if output.status.success() => Ok((major, minor)),
        _ => Err(VendorCommandError::Io {
            path: python.to_path_buf(),
            source: io::Error::other("it did not say its version; pass --python PATH"),
        }),
    }
}

fn matches_checksum(path: &Path, checksum: Checksum<'_>) -> bool {
    let Ok(archive) = hash_archive(path) else {
        return false;
    };
    match checksum {
        Checksum::Sha256(expected) => archive.sha256.eq_ignore_ascii_case(expected),
        Checksum::Md5(expected) => archive.md5.eq_ignore_ascii_case(expected),
        Checksum::Unchecked => true,
    }
}

/// Solves the environment with the developer's conda into a throwaway prefix and returns its
/// `conda list --explicit --md5` lines.
/// Solves the environment with the developer's conda into a prefix in `scratch` and returns
/// its `conda list --explicit --md5` lines and the prefix (whose pip fetches the wheels).
fn solve(
    args: &VendorArgs,
    app: &crate::staging::app::App,
    app_dir: &Path,
    target: &crate::stack::Target,
    scratch: &Path,
) -> Result<(Vec<String>, Option<PathBuf>), VendorCommandError> {
    let conda = args
        .conda
        .clone()
        .or_else(|| std::env::var_os("CONDA_EXE").map(PathBuf::from))
        .or_else(|| which::which("conda").ok())
        .ok_or(VendorCommandError::NoConda)?;
    let prefix = scratch.join("env");
    let python =
        crate::staging::python_version::decide(app).map_err(|error| VendorCommandError::Conda {
            command: "reading the Python version".into(),
            status: "invalid".into(),
            output: error.to_string(),
        })?;
    let plan =
        crate::staging::environment::plan(app, &python.choice, app_dir, scratch, None, None, false)
            .map_err(|error| VendorCommandError::Io {
                path: scratch.to_path_buf(),
                source: io::Error::other(error.to_string()),
            })?;
    let crate::staging::environment::Recipe::EnvironmentFile { file } = plan.recipe else {
        return Ok((Vec::new(), None));
    };
    let run = |command: &mut Command| -> Result<String, VendorCommandError> {
        let described = crate::io::process::describe(command);
        eprintln!("Running {described}");
        let output = command.output().map_err(|source| VendorCommandError::Io {
            path: conda.clone(),
            source,
        })?;
        if !output.status.success() {
            return Err(VendorCommandError::Conda {
                command: described,
                status: crate::io::process::describe_status(output.status),
                output: String::from_utf8_lossy(&output.stderr).into_owned(),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    let result = (|| {
        run(Command::new(&conda)
            .args(["env", "create", "--quiet", "-p"])
            .arg(&prefix)
            .arg("-f")
            .arg(&file)
            .env("CONDA_ALWAYS_YES", "true")
            // conda reads `__glibc` off the machine it runs on; the app runs on the stack.
            .env("CONDA_OVERRIDE_GLIBC", target.glibc_version()))?;
        run(Command::new(&conda)
            .args(["list", "--explicit", "--md5", "-p"])
            .arg(&prefix))
    })();
    let listing = result?;
    let urls = listing
        .lines()
        .map(str::trim)
        .filter(|line| line.contains("://"))
        .map(str::to_string)
        .collect();
    Ok((urls, Some(prefix)))
}

fn tempfile_dir() -> io::Result<PathBuf> {
    let base = std::env::temp_dir().join(format!("conda-buildpack-vendor-{}", std::process::id()));
    crate::io::fsutil::remove_if_exists(&base)?;
    fs::create_dir_all(&base)?;
    Ok(base)
}
