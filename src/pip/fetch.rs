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
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::requirements::{Line, Located, normalize};
use super::wheelhouse::{PIP_DIR, project_of};

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
        crate::fsutil::remove_if_exists(dir).map_err(at(dir))?;
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
        let Some(requirement) = super::missing_distributions(run.output.lines())
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
    let dir = app_dir.join(crate::app::VENDOR_DIR).join(PIP_DIR);
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
            crate::log::format_size(size)
        );
    }
    let mut removed = 0;
    for entry in fs::read_dir(&dir).map_err(at(&dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if crate::archive::is_python_distribution(&entry.path()) && !fetched.contains_key(&name) {
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
        let described = crate::process::describe(command);
        eprintln!("Running {}", crate::log::redact_urls(&described));
        let output = command.output().map_err(at(Path::new(&self.python[0])))?;
        Ok(Run {
            command: crate::log::redact_urls(&described),
            success: output.status.success(),
            status: crate::process::describe_status(output.status),
            output: crate::log::redact_urls(&format!(
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

/// `[build-system] requires` of a pyproject.toml, or what pip assumes without one.
fn build_requirements(pyproject: Option<&str>) -> Vec<String> {
    let default = || vec!["setuptools>=40.8.0".to_string(), "wheel".to_string()];
    let Some(text) = pyproject else {
        return default();
    };
    let mut in_table = false;
    let mut collecting: Option<String> = None;
    for line in text.lines() {
        let trimmed = line.trim();
        if let Some(collected) = collecting.as_mut() {
            collected.push_str(trimmed);
            if trimmed.contains(']') {
                break;
            }
            continue;
        }
        if trimmed.starts_with('[') {
            in_table = trimmed == "[build-system]";
            continue;
        }
        if in_table {
            if let Some(value) = trimmed.strip_prefix("requires") {
                let value = value.trim_start().trim_start_matches('=').trim();
                collecting = Some(value.to_string());
                if value.contains(']') {
                    break;
                }
            }
        }
    }
    let Some(list) = collecting else {
        return default();
    };
    list.split(['"', '\''])
        .skip(1)
        .step_by(2)
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

struct SdistMetadata {
    name: String,
    version: String,
    requires: Vec<String>,
    pyproject: Option<String>,
}

/// An sdist's `PKG-INFO` (name, version, `Requires-Dist`) and `pyproject.toml`, read from its
/// top folder.
fn read_sdist(path: &Path) -> Result<SdistMetadata, FetchError> {
    let mut pkg_info = None;
    let mut pyproject = None;
    let mut keep = |name: &str, reader: &mut dyn Read| -> Result<(), FetchError> {
        let mut parts = name.trim_start_matches("./").split('/');
        let (Some(_top), Some(file), None) = (parts.next(), parts.next(), parts.next()) else {
            return Ok(());
        };
        let slot = match file {
            "PKG-INFO" => &mut pkg_info,
            "pyproject.toml" => &mut pyproject,
            _ => return Ok(()),
        };
        let mut text = String::new();
        reader
            .take(MAX_METADATA)
            .read_to_string(&mut text)
            .map_err(at(path))?;
        *slot = Some(text);
        Ok(())
    };
    let file = fs::File::open(path).map_err(at(path))?;
    let lower = path.to_string_lossy().to_ascii_lowercase();
    if lower.ends_with(".zip") {
        let mut zip = zip::ZipArchive::new(io::BufReader::new(file))
            .map_err(|error| at(path)(io::Error::other(error)))?;
        for position in 0..zip.len() {
            let mut entry = zip
                .by_index(position)
                .map_err(|error| at(path)(io::Error::other(error)))?;
            let name = entry.name().to_string();
            keep(&name, &mut entry)?;
        }
    } else {
        let reader: Box<dyn Read> = if lower.ends_with(".tar.bz2") {
            Box::new(bzip2::read::BzDecoder::new(io::BufReader::new(file)))
        } else {
            Box::new(flate2::read::GzDecoder::new(io::BufReader::new(file)))
        };
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(at(path))? {
            let mut entry = entry.map_err(at(path))?;
            let name = entry
                .path()
                .map_err(at(path))?
                .to_string_lossy()
                .into_owned();
            keep(&name, &mut entry)?;
        }
    }
    let pkg_info = pkg_info.unwrap_or_default();
    let field = |key: &str| {
        pkg_info
            .lines()
            .find_map(|line| line.strip_prefix(key).map(|value| value.trim().to_string()))
    };
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(SdistMetadata {
        name: field("Name:")
            .or_else(|| project_of(&file_name))
            .unwrap_or_default(),
        version: field("Version:").unwrap_or_else(|| "0".into()),
        requires: pkg_info
            .lines()
            .filter_map(|line| line.strip_prefix("Requires-Dist:"))
            .map(|value| value.trim().to_string())
            .collect(),
        pyproject,
    })
}

/// A wheel that only declares the sdist's dependencies, so pip resolves through it.
fn write_stand_in(dir: &Path, project: &str, metadata: &SdistMetadata) -> Result<(), FetchError> {
    let escaped = project.replace('-', "_");
    let dist_info = format!("{escaped}-{}.dist-info", metadata.version);
    let path = dir.join(format!("{escaped}-{}-py3-none-any.whl", metadata.version));
    let mut text = format!(
        "Metadata-Version: 2.1\nName: {}\nVersion: {}\n",
        metadata.name, metadata.version
    );
    for requirement in &metadata.requires {
        text.push_str(&format!("Requires-Dist: {requirement}\n"));
    }
    let file = fs::File::create(&path).map_err(at(&path))?;
    let mut writer = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default();
    let zip_error = |error: zip::result::ZipError| at(&path)(io::Error::other(error));
    for (name, content) in [
        (format!("{dist_info}/METADATA"), text),
        (
            format!("{dist_info}/WHEEL"),
            "Wheel-Version: 1.0\nGenerator: conda-buildpack\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
                .to_string(),
        ),
        (
            format!("{dist_info}/RECORD"),
            format!("{dist_info}/METADATA,,\n{dist_info}/WHEEL,,\n{dist_info}/RECORD,,\n"),
        ),
    ] {
        writer.start_file(name, options).map_err(zip_error)?;
        writer.write_all(content.as_bytes()).map_err(at(&path))?;
    }
    writer.finish().map_err(zip_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_target_takes_every_manylinux_tag_its_glibc_accepts_and_no_newer() {
        use crate::stack;
        let on = |name| {
            Target::new(
                stack::Target::for_stack(stack::find(name).unwrap()),
                (3, 11),
            )
        };
        let fs3 = on("cflinuxfs3").platforms();
        assert_eq!(
            fs3.first().map(String::as_str),
            Some("manylinux_2_27_x86_64")
        );
        assert!(fs3.contains(&"manylinux2014_x86_64".to_string()));
        assert!(fs3.contains(&"manylinux1_x86_64".to_string()));
        assert!(!fs3.iter().any(|tag| tag.contains("_2_28_")));
        let fs5 = on("cflinuxfs5").platforms();
        assert_eq!(
            fs5.first().map(String::as_str),
            Some("manylinux_2_39_x86_64")
        );
        assert!(!fs5.iter().any(|tag| tag.contains("_2_40_")));
        // By default: every current stack at once, the lowest glibc among them.
        let current = Target::new(stack::every_current(), (3, 11));
        assert_eq!(
            current.platforms().first().map(String::as_str),
            Some("manylinux_2_35_x86_64")
        );
        assert_eq!(
            current.to_string(),
            "Linux x86_64, CPython 3.11, glibc 2.35 (cflinuxfs4 and cflinuxfs5)"
        );
    }

    #[test]
    fn build_requirements_are_read_from_pyproject_or_defaulted() {
        assert_eq!(
            build_requirements(Some(
                "[project]\nname='x'\n[build-system]\nrequires = [\n  \"hatchling>=1.2\",\n  'cython'\n]\nbuild-backend = 'x'\n"
            )),
            vec!["hatchling>=1.2".to_string(), "cython".to_string()]
        );
        assert_eq!(
            build_requirements(Some("[build-system]\nrequires = []\n")),
            Vec::<String>::new()
        );
        assert_eq!(build_requirements(None)[0], "setuptools>=40.8.0");
    }

    #[test]
    fn pip_output_says_what_is_missing_and_where_files_came_from() {
        let output = "Collecting fastcalc==1.0\n  Downloading http://127.0.0.1:9/simple/fastcalc/fastcalc-1.0-cp311-cp311-manylinux2014_x86_64.whl#sha256=ab (1.2 kB)\n  Downloading six-1.16.0-py2.py3-none-any.whl (11 kB)\nERROR: Could not find a version that satisfies the requirement plainsdist (from versions: none)\nERROR: No matching distribution found for plainsdist>=1.0\n";
        let mut sources = BTreeMap::new();
        record_sources(output, &mut sources);
        assert_eq!(
            sources["fastcalc-1.0-cp311-cp311-manylinux2014_x86_64.whl"],
            "http://127.0.0.1:9/simple/fastcalc/fastcalc-1.0-cp311-cp311-manylinux2014_x86_64.whl"
        );
        assert_eq!(sources["six-1.16.0-py2.py3-none-any.whl"], "PyPI");
        assert_eq!(
            crate::pip::missing_distributions(output.lines())
                .first()
                .map(String::as_str),
            Some("plainsdist>=1.0")
        );
    }
}
