//! The developer's side of pip vendoring: `pip download` run for the platform Cloud Foundry
//! stages on (Linux x86_64, the environment's CPython, manylinux tags whose glibc the stacks
//! have), never for the machine running it, into `vendor/pip/`.
//!
//! pip refuses to target another platform unless it only takes wheels. A project with no
//! suitable wheel is therefore fetched as an sdist on its own, and pip is handed a stand-in
//! wheel with the sdist's declared dependencies so that it still resolves (and fetches)
//! everything the project needs; the stand-in never reaches `vendor/pip/`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::staging::pip::requirements::{Line, Located, normalize};
use crate::staging::pip::wheelhouse::PIP_DIR;

mod sdist;
use sdist::{build_requirements, read_sdist, write_stand_in};

/// A project can need a project that needs an sdist...: each round fetches one more sdist.
const MAX_ROUNDS: usize = 32;
const MAX_METADATA: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    #[error(
        "{origin} has `{line}`: a URL or VCS requirement cannot be vendored, because pip fetches \
         it from there at staging. Publish it to an index (or build its wheel into the app) \
         and require it by name"
    )]
    Direct { line: String, origin: String },
    #[error("`{command}` failed ({status}):\n{output}")]
    Pip {
        command: String,
        status: String,
        output: String,
    },
    #[error(
        "pip found neither a wheel for {target} nor an sdist of `{requirement}`. Check its \
         name and version, or name the index that has it (`--extra-index-url` in the pip \
         section); pip said:\n{output}"
    )]
    Unavailable {
        requirement: String,
        target: String,
        output: String,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> FetchError + '_ {
    move |source| FetchError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The platform the wheels are for.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The environment's CPython, e.g. (3, 11).
    pub(crate) python: (u32, u32),
    /// The glibc and the stacks it serves, from the stack table.
    pub(crate) stacks: crate::stack::Target,
}

impl Target {
    pub(crate) fn new(stacks: crate::stack::Target, python: (u32, u32)) -> Self {
        Self { python, stacks }
    }

    /// Every manylinux tag the target's glibc accepts, newest first, in both spellings pip
    /// knows (PEP 600 and the legacy aliases).
    fn platforms(&self) -> Vec<String> {
        let (major, newest) = self.stacks.glibc;
        let mut platforms = Vec::new();
        for minor in (5..=newest).rev() {
            platforms.push(format!("manylinux_{major}_{minor}_x86_64"));
            match minor {
                17 => platforms.push("manylinux2014_x86_64".into()),
                12 => platforms.push("manylinux2010_x86_64".into()),
                5 => platforms.push("manylinux1_x86_64".into()),
                _ => {}
            }
        }
        platforms
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Linux x86_64, CPython {}.{}, glibc {} ({})",
            self.python.0,
            self.python.1,
            self.stacks.glibc_version(),
            self.stacks.stacks_in_words()
        )
    }
}

/// What was vendored.
pub(crate) struct Fetched {
    pub(crate) files: usize,
    pub(crate) bytes: u64,
    pub(crate) removed: usize,
}

/// Refuses the lines no wheelhouse can serve, naming the first.
pub(crate) fn refuse_direct(lines: &[Located]) -> Result<(), FetchError> {
    match lines.iter().find(|located| located.line == Line::Direct) {
        Some(located) => Err(FetchError::Direct {
            line: located.text.trim().to_string(),
            origin: located.origin.clone(),
        }),
        None => Ok(()),
    }
}

/// Fetches what `lines` need into `app_dir/vendor/pip/`, with `python` (a command that runs a
/// Python with pip), working in `scratch`.
pub(crate) fn fetch(
    app_dir: &Path,
    lines: &[Located],
    python: &[OsString],
    target: &Target,
    scratch: &Path,
) -> Result<Fetched, FetchError> {
    let mut wanted = Vec::new();
    let mut local_wheels = BTreeSet::new();
    let mut local_projects = Vec::new();
    refuse_direct(lines)?;
    for located in lines {
        match &located.line {
            Line::Local { path, .. } => {
                let anchored = located
                    .base
                    .join(path.strip_prefix("file:").unwrap_or(path));
                if anchored.is_dir() {
                    local_projects.push(anchored);
                } else {
                    // pip resolves a wheel in the app for its dependencies; the wheel itself
                    // ships with the app.
                    if let Some(name) = anchored.file_name() {
                        local_wheels.insert(name.to_string_lossy().into_owned());
                    }
                    wanted.push(located.anchored());
                }
            }
            Line::Nothing => {}
            _ => wanted.push(located.anchored()),
        }
    }
    let where_options: Vec<String> = lines
        .iter()
        .filter(|located| matches!(located.line, Line::Where { .. }))
        .map(Located::anchored)
        .collect();
    let pip = Pip { python };

    // A project in the app is built at staging: its build backend and its dependencies must
    // be vendored, though the project itself is not.
    let mut extra = Vec::new();
    for project in &local_projects {
        extra.extend(build_requirements(
            fs::read_to_string(project.join("pyproject.toml"))
                .ok()
                .as_deref(),
        ));
        extra.extend(pip.dependencies_of(project, &where_options, scratch)?);
    }

    let download = scratch.join("pip-download");
    let stubs = scratch.join("pip-stand-ins");
    let sdists = scratch.join("pip-sdists");
    for dir in [&download, &stubs, &sdists] {
        crate::io::fsutil::remove_if_exists(dir).map_err(at(dir))?;
        fs::create_dir_all(dir).map_err(at(dir))?;
    }
    let mut sources = BTreeMap::new();
    let mut stand_ins = BTreeSet::new();
    let mut notes = Vec::new();
    let requirements_file = scratch.join("pip-requirements.txt");
    for _ in 0..MAX_ROUNDS {
        let mut text = wanted.join("\n");
        text.push('\n');
        for line in &extra {
            text.push_str(line);
            text.push('\n');
        }
        fs::write(&requirements_file, text).map_err(at(&requirements_file))?;
        let mut command = pip.command();
        command
            .args(["download", "--dest"])
            .arg(&download)
            .arg("--only-binary=:all:")
            .args(["--implementation", "cp", "--python-version"])
            .arg(format!("{}.{}", target.python.0, target.python.1));
        for platform in target.platforms() {
            command.args(["--platform", &platform]);
        }
        if !stand_ins.is_empty() {
            command.arg("--find-links").arg(&stubs);
        }
        command.arg("-r").arg(&requirements_file);
        let run = pip.run(&mut command)?;
        record_sources(&run.output, &mut sources);
        if run.success {
            break;
        }
        let Some(requirement) = crate::staging::pip::missing_distributions(run.output.lines())
            .into_iter()
            .next()
        else {
            return Err(FetchError::Pip {
                command: run.command,
                status: run.status,
                output: tail(&run.output),
            });
        };
        let project = normalize(
            &requirement
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .collect::<String>(),
        );
        if !stand_ins.insert(project.clone()) {
            return Err(FetchError::Pip {
                command: run.command,
                status: run.status,
                output: tail(&run.output),
            });
        }
        // No wheel fits: the sdist, alone, and pip builds it at staging.
        let before = listing(&sdists)?;
        let mut command = pip.command();
        command
            .args(["download", "--no-deps", "--no-binary=:all:", "--dest"])
            .arg(&sdists)
            .args(
                where_options
                    .iter()
                    .flat_map(|option| option.split_whitespace()),
            )
            .arg(&requirement);
        let sdist_run = pip.run(&mut command)?;
        record_sources(&sdist_run.output, &mut sources);
        let after = listing(&sdists)?;
        let Some(sdist) = after
            .difference(&before)
            .next()
            .cloned()
            .filter(|_| sdist_run.success)
        else {
            return Err(FetchError::Unavailable {
                requirement,
                target: target.to_string(),
                output: tail(&format!("{}{}", run.output, sdist_run.output)),
            });
        };
        let metadata = read_sdist(&sdists.join(&sdist))?;
        extra.extend(build_requirements(metadata.pyproject.as_deref()));
        write_stand_in(&stubs, &project, &metadata)?;
        notes.push(format!(
            "{requirement} has no wheel for {target}: vendored its sdist {sdist}, which pip \
             builds at staging (with a compiler on the stack if it has C code)"
        ));
    }
    // What pip was handed but must not be vendored: the stand-ins, and wheels in the app.
    let stand_in_names = listing(&stubs)?;
    let mut fetched = BTreeMap::new();
    for name in listing(&download)? {
        if stand_in_names.contains(&name) || local_wheels.contains(&name) {
            continue;
        }
        fetched.insert(name.clone(), download.join(&name));
    }
    for name in listing(&sdists)? {
        fetched.insert(name.clone(), sdists.join(&name));
    }
    let result = sync(app_dir, &fetched, &sources)?;
    for note in notes {
        eprintln!("Note: {note}.");
    }
    Ok(result)
}

/// Copies what was fetched into `vendor/pip/` (each file whole or not at all) and removes
/// what the app no longer needs.
pub(crate) fn sync(
    app_dir: &Path,
    fetched: &BTreeMap<String, PathBuf>,
    sources: &BTreeMap<String, String>,
) -> Result<Fetched, FetchError> {
    let dir = app_dir.join(crate::staging::app::VENDOR_DIR).join(PIP_DIR);
    if fetched.is_empty() && !dir.is_dir() {
        return Ok(Fetched {
            files: 0,
            bytes: 0,
            removed: 0,
        });
    }
    fs::create_dir_all(&dir).map_err(at(&dir))?;
    let mut bytes = 0;
    for (name, source) in fetched {
        let target = dir.join(name);
        let size = fs::metadata(source).map_err(at(source))?.len();
        bytes += size;
        let same = fs::read(&target).ok() == Some(fs::read(source).map_err(at(source))?);
        let from = sources
            .get(name)
            .map_or_else(|| "pip's cache".to_string(), |source| source.clone());
        if same {
            println!("       {name} (already vendored)");
            continue;
        }
        let partial = dir.join(format!(".{name}.partial"));
        fs::copy(source, &partial).map_err(at(&partial))?;
        fs::rename(&partial, &target).map_err(at(&target))?;
        println!(
            "       {name} ({}) from {from}",
            crate::staging::log::format_size(size)
        );
    }
    let mut removed = 0;
    for entry in fs::read_dir(&dir).map_err(at(&dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if crate::io::archive::is_python_distribution(&entry.path()) && !fetched.contains_key(&name)
        {
            fs::remove_file(entry.path()).map_err(at(&entry.path()))?;
            println!("       {name} removed: no longer needed");
            removed += 1;
        }
    }
    Ok(Fetched {
        files: fetched.len(),
        bytes,
        removed,
    })
}

fn listing(dir: &Path) -> Result<BTreeSet<String>, FetchError> {
    Ok(fs::read_dir(dir)
        .map_err(at(dir))?
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.'))
        .collect())
}

struct Pip<'a> {
    python: &'a [OsString],
}

struct Run {
    command: String,
    success: bool,
    status: String,
    output: String,
}

impl Pip<'_> {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.python[0]);
        command
            .args(&self.python[1..])
            .args(["-m", "pip"])
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_NO_INPUT", "1")
            .env("PIP_PROGRESS_BAR", "off")
            .env("PIP_NO_COLOR", "1");
        command
    }

    fn run(&self, command: &mut Command) -> Result<Run, FetchError> {
        let described = crate::io::process::describe(command);
        eprintln!("Running {}", crate::staging::log::redact_urls(&described));
        let output = command.output().map_err(at(Path::new(&self.python[0])))?;
        Ok(Run {
            command: crate::staging::log::redact_urls(&described),
            success: output.status.success(),
            status: crate::io::process::describe_status(output.status),
            output: crate::staging::log::redact_urls(&format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )),
        })
    }

    /// What a project in the app depends on, as pip resolves it (here, for this machine):
    /// pinned, so the wheels fetched for the target are the same versions.
    fn dependencies_of(
        &self,
        project: &Path,
        where_options: &[String],
        scratch: &Path,
    ) -> Result<Vec<String>, FetchError> {
        let report = scratch.join("pip-report.json");
        let mut command = self.command();
        command
            .args([
                "install",
                "--dry-run",
                "--ignore-installed",
                "--quiet",
                "--report",
            ])
            .arg(&report)
            .args(
                where_options
                    .iter()
                    .flat_map(|option| option.split_whitespace().map(str::to_string)),
            )
            .arg(project);
        let run = self.run(&mut command)?;
        if !run.success {
            return Err(FetchError::Pip {
                command: run.command,
                status: run.status,
                output: tail(&run.output),
            });
        }
        let text = fs::read_to_string(&report).map_err(at(&report))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|error| FetchError::Io {
                path: report.clone(),
                source: io::Error::other(error),
            })?;
        Ok(value["install"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|item| item["download_info"]["dir_info"].is_null())
            .filter_map(|item| {
                let name = item["metadata"]["name"].as_str()?;
                let version = item["metadata"]["version"].as_str()?;
                Some(format!("{name}=={version}"))
            })
            .collect())
    }
}

/// `Downloading URL (size)` lines: where each file came from. pip names only the file for
/// PyPI's own storage.
fn record_sources(output: &str, sources: &mut BTreeMap<String, String>) {
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("Downloading ") else {
            continue;
        };
        let location = rest.split(" (").next().unwrap_or(rest).trim();
        let name = location.rsplit('/').next().unwrap_or(location);
        let name = name.split('#').next().unwrap_or(name).to_string();
        let from = if location.contains("://") {
            location.split('#').next().unwrap_or(location).to_string()
        } else {
            "PyPI".to_string()
        };
        sources.insert(name, from);
    }
}

fn tail(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[cfg(test)]
mod tests;
