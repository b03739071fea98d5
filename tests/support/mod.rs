//! The test world: the offline conda fixtures (built once per run by
//! `fixtures/conda/build.py`), a loopback HTTP server that serves them and counts requests
//! (and misbehaves on request), the buildpack packaged through its own `package` command with
//! a manifest pointing at that server, and `stage` / `launch` run as a user would.
#![allow(dead_code)]

pub(crate) mod canary;
pub(crate) mod memory_cgroup;
pub(crate) mod pip_index;
pub(crate) mod proxy;
pub(crate) mod real_conda;
pub(crate) mod server;
pub(crate) mod tls;
#[allow(clippy::duplicate_mod)]
#[path = "../world/mod.rs"]
pub(crate) mod world;

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

#[allow(unused_imports)]
pub(crate) use server::{Fault, Server};

/// The buildpack's executable, as the zip carries it (`package`, `vendor`, the scripts).
pub(crate) const BINARY: &str = env!("CARGO_BIN_EXE_conda-buildpack");
/// The local Cloud Foundry that stages and launches: never in the zip.
pub(crate) const LOCAL_CF: &str = env!("CARGO_BIN_EXE_local-cf");
pub(crate) const REPO: &str = env!("CARGO_MANIFEST_DIR");

pub(crate) fn repo() -> &'static Path {
    Path::new(REPO)
}

/// The interpreter the fixture conda runs on. Buildpacks stage as vcap (uid 2000), so it must
/// be one every user can run: the system's, not a per-user install under /root.
pub(crate) const FIXTURE_PYTHON: &str = "/usr/bin/python3";

/// The built fixtures: channels, installers and their summary.
pub(crate) struct Fixtures {
    pub(crate) dir: PathBuf,
    pub(crate) info: Value,
}

impl Fixtures {
    pub(crate) fn installer(&self, name: &str, version: &str) -> &Value {
        self.info["installers"]
            .as_array()
            .and_then(|installers| {
                installers
                    .iter()
                    .find(|i| i["name"] == name && i["version"] == version)
            })
            .unwrap_or_else(|| panic!("no fixture installer {name} {version}"))
    }
}

/// Builds the fixtures once per test process; the build is cached across runs under
/// `target/conda-fixtures`, keyed by a digest of `fixtures/conda`, and guarded by a file lock
/// because test binaries may run in parallel.
pub(crate) fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let sources = repo().join("fixtures/conda");
        let digest = digest_tree(&sources);
        let root = repo().join("target/conda-fixtures");
        fs::create_dir_all(&root).unwrap();
        let _lock = FileLock::acquire(&root.join(".lock"));
        let dir = root.join(&digest[..16]);
        if !dir.join("fixtures.json").is_file() {
            let status = Command::new(FIXTURE_PYTHON)
                .arg(sources.join("build.py"))
                .arg(&dir)
                .status()
                .expect("python3 runs the fixture builder");
            assert!(status.success(), "fixtures/conda/build.py failed");
            // Older builds are of no use to anyone.
            for entry in fs::read_dir(&root).unwrap().flatten() {
                let name = entry.file_name();
                if entry.path() != dir && name != ".lock" {
                    let _ = fs::remove_dir_all(entry.path());
                }
            }
        }
        let info = serde_json::from_slice(&fs::read(dir.join("fixtures.json")).unwrap()).unwrap();
        Fixtures { dir, info }
    })
}

pub(crate) fn digest_tree(root: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "__pycache__" || name == "out" || name.ends_with(".pyc") {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut hasher = Sha256::new();
    for file in files {
        hasher.update(
            file.strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .as_bytes(),
        );
        hasher.update(fs::read(&file).unwrap());
    }
    // The host interpreter is baked into the fixtures.
    hasher.update(host_python().as_bytes());
    format!("{:x}", hasher.finalize())
}

fn host_python() -> String {
    let output = Command::new(FIXTURE_PYTHON)
        .args([
            "-c",
            "import os, sys; print(os.path.realpath(sys.executable))",
        ])
        .output()
        .expect("python3 exists");
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

pub(crate) struct FileLock(fs::File);

impl FileLock {
    pub(crate) fn acquire(path: &Path) -> Self {
        use std::os::fd::AsRawFd;
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap();
        // SAFETY: a valid descriptor owned by `file`, which outlives the lock.
        let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(result, 0, "flock");
        Self(file)
    }
}

/// A scratch directory for one test, kept when `KEEP_TEST_DIRS` is set.
pub(crate) fn scratch() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("conda-bp-test-")
        .tempdir()
        .unwrap();
    if std::env::var_os("KEEP_TEST_DIRS").is_some() {
        eprintln!("scratch: {}", dir.path().display());
    }
    dir
}

/// A directory the staging container can write to at the same path: stagings run as vcap
/// with their own `/tmp`, so a spy file in the test's scratch dir would be out of their
/// reach. Lives under `target/`, removed with the returned guard.
pub(crate) fn container_visible_dir() -> tempfile::TempDir {
    let parent = repo().join("target/container-visible");
    fs::create_dir_all(&parent).unwrap();
    let dir = tempfile::Builder::new().tempdir_in(&parent).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
    dir
}

/// Copies a fixture app (`fixtures/apps/<name>`) to a place the test may change.
pub(crate) fn app(name: &str, into: &Path) -> PathBuf {
    let source = repo().join("fixtures/apps").join(name);
    assert!(source.is_dir(), "no fixture app {name}");
    let target = into.join(name);
    copy_dir(&source, &target);
    target
}

/// Copies a sample app from `cf-apps/<name>`.
pub(crate) fn sample_app(name: &str, into: &Path) -> PathBuf {
    let source = repo().join("cf-apps").join(name);
    let target = into.join(name);
    copy_dir(&source, &target);
    target
}

pub(crate) fn copy_dir(source: &Path, target: &Path) {
    fs::create_dir_all(target).unwrap();
    for entry in fs::read_dir(source).unwrap().flatten() {
        let to = target.join(entry.file_name());
        let file_type = entry.file_type().unwrap();
        if file_type.is_dir() {
            copy_dir(&entry.path(), &to);
        } else if file_type.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(entry.path()).unwrap(), &to).unwrap();
        } else {
            fs::copy(entry.path(), &to).unwrap();
        }
    }
}

/// The repository's manifest with every installer's URI and sha256 swapped for the fixture
/// installer of the same name and version, served by `server`. Defaults, deprecation dates and
/// the file list stay the real ones.
pub(crate) fn fixture_manifest(server: &Server, into: &Path) -> PathBuf {
    fixture_manifest_edited(server, into, None)
}

fn fixture_manifest_edited(
    server: &Server,
    into: &Path,
    edit: Option<fn(&mut serde_yaml_ng::Value)>,
) -> PathBuf {
    let fixtures = fixtures();
    let text = fs::read_to_string(repo().join("manifest.yml")).unwrap();
    let mut manifest: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    for dependency in manifest["dependencies"].as_sequence_mut().unwrap() {
        let name = dependency["name"].as_str().unwrap().to_string();
        let version = dependency["version"].as_str().unwrap().to_string();
        let installer = fixtures.installer(&name, &version);
        let file = installer["file"].as_str().unwrap();
        dependency["uri"] = format!("{}/installers/{file}", server.url()).into();
        dependency["sha256"] = installer["sha256"].as_str().unwrap().into();
    }
    if let Some(edit) = edit {
        edit(&mut manifest);
    }
    fs::create_dir_all(into).unwrap();
    let path = into.join("fixture-manifest.yml");
    fs::write(&path, serde_yaml_ng::to_string(&manifest).unwrap()).unwrap();
    path
}

/// How to package.
#[derive(Default, Clone)]
pub(crate) struct Packaging {
    pub(crate) cached: bool,
    pub(crate) stack: Option<String>,
    pub(crate) version: Option<String>,
    pub(crate) cache_dir: Option<PathBuf>,
    /// A change to the fixture manifest before packaging (say, credentials in the URIs).
    pub(crate) edit_manifest: Option<fn(&mut serde_yaml_ng::Value)>,
    /// A whole manifest instead of the fixture one (the real-conda world's).
    pub(crate) manifest: Option<PathBuf>,
}

/// Packages the buildpack with `conda-buildpack package` against `server`'s fixtures.
pub(crate) fn package(server: &Server, into: &Path, options: &Packaging) -> PathBuf {
    let manifest = match &options.manifest {
        Some(manifest) => manifest.clone(),
        None => fixture_manifest_edited(server, into, options.edit_manifest),
    };
    let output = into.join("zips");
    let mut command = Command::new(BINARY);
    command
        .arg("package")
        .arg("--manifest")
        .arg(&manifest)
        .arg("--source")
        .arg(repo())
        .arg("--output")
        .arg(&output);
    if options.cached {
        command.arg("--cached").arg("--cache-dir").arg(
            options
                .cache_dir
                .clone()
                .unwrap_or_else(|| into.join("download-cache")),
        );
    }
    if let Some(stack) = &options.stack {
        command.arg("--stack").arg(stack);
    }
    if let Some(version) = &options.version {
        command.arg("--buildpack-version").arg(version);
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "package failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let path = String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    PathBuf::from(path)
}

/// One `stage` run.
pub(crate) struct Staging {
    pub(crate) code: i32,
    pub(crate) log: String,
    pub(crate) output: PathBuf,
    /// Wall-clock time of the whole staging.
    pub(crate) elapsed: std::time::Duration,
    /// The largest resident set of `stage` and everything it ran (the buildpack, the installer,
    /// conda), in KiB: what a staging container's memory limit would have to hold.
    pub(crate) peak_memory_kib: u64,
}

impl Staging {
    pub(crate) fn droplet(&self) -> PathBuf {
        self.output.join("droplet.tgz")
    }

    pub(crate) fn assert_success(&self) -> &Self {
        assert_eq!(self.code, 0, "staging failed:\n{}", self.log);
        self
    }

    pub(crate) fn assert_log_contains(&self, text: &str) -> &Self {
        assert!(
            self.log.contains(text),
            "the log lacks {text:?}:\n{}",
            self.log
        );
        self
    }

    /// A supply failure of the conda buildpack as the final (only) buildpack: CF's builder
    /// exits 223 ("Failed to compile droplet") and no droplet is written.
    pub(crate) fn assert_supply_failed(&self) -> &Self {
        assert_eq!(self.code, 223, "expected a supply failure:\n{}", self.log);
        assert!(!self.droplet().exists(), "a failed staging left a droplet");
        assert!(
            !self.log.contains("panicked"),
            "the buildpack panicked:\n{}",
            self.log
        );
        self
    }

    /// Time and memory stayed within bounds, whatever the input.
    pub(crate) fn assert_bounded(&self, seconds: u64, mebibytes: u64) -> &Self {
        assert!(
            self.elapsed < std::time::Duration::from_secs(seconds),
            "staging took {:?}:\n{}",
            self.elapsed,
            self.log
        );
        assert!(
            self.peak_memory_kib < mebibytes * 1024,
            "staging peaked at {} KiB of memory:\n{}",
            self.peak_memory_kib,
            self.log
        );
        self
    }

    /// The staging root `--keep-staging-dir` left behind.
    pub(crate) fn kept_staging_dir(&self) -> PathBuf {
        self.log
            .lines()
            .find_map(|line| line.strip_prefix("Staging directory kept: "))
            .map(PathBuf::from)
            .expect("the kept staging dir is named")
    }

    /// In the kept staging root (the container: `home/` is /home/vcap, `tmp/` is /tmp), the
    /// staging user's home is untouched and /tmp holds what the platform put there and nothing
    /// else (the builder removes its contents dir when done). Returns the root.
    pub(crate) fn assert_only_the_platform_wrote_home_and_tmp(&self) -> PathBuf {
        let root = self.kept_staging_dir();
        assert_eq!(
            names(&root.join("home")),
            Vec::<String>::new(),
            "the staging user's home was written"
        );
        assert_eq!(
            names(&root.join("tmp")),
            [
                "app",
                "buildpacks",
                "cache",
                "droplet",
                "output-cache",
                "result.json"
            ],
            "TMPDIR (/tmp) was written"
        );
        root
    }

    pub(crate) fn assert_log_lacks(&self, text: &str) -> &Self {
        assert!(
            !self.log.contains(text),
            "the log has {text:?}:\n{}",
            self.log
        );
        self
    }

    /// The staging log has no carriage returns, backspaces or escape sequences beyond colour.
    pub(crate) fn assert_clean_log(&self) -> &Self {
        for (number, line) in self.log.lines().enumerate() {
            assert!(
                !line.contains('\r') && !line.contains('\u{8}'),
                "line {} has progress residue: {line:?}",
                number + 1
            );
            let mut rest = line;
            while let Some(start) = rest.find('\u{1b}') {
                let sequence = &rest[start..];
                let is_colour = sequence.starts_with("\u{1b}[31;1m")
                    || sequence.starts_with("\u{1b}[34;1m")
                    || sequence.starts_with("\u{1b}[0m");
                assert!(
                    is_colour,
                    "line {} has a non-colour escape: {line:?}",
                    number + 1
                );
                rest = &sequence[1..];
            }
        }
        self
    }
}

/// How to stage.
#[derive(Clone)]
pub(crate) struct StageOptions {
    pub(crate) cache: Option<PathBuf>,
    pub(crate) stack: Option<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) detect: bool,
    pub(crate) no_network: bool,
    pub(crate) memory: Option<String>,
    /// `TMPDIR` of `stage` itself: where its staging root is made.
    pub(crate) tmpdir: Option<PathBuf>,
    pub(crate) keep_staging_dir: bool,
    /// The staging runs in this memory cgroup, as a Cloud Foundry container does.
    pub(crate) cgroup: Option<std::sync::Arc<memory_cgroup::MemoryCgroup>>,
}

impl StageOptions {
    /// Staging against `server`'s channels, as an operator pointing conda at a mirror would.
    pub(crate) fn with_channels(server: &Server) -> Self {
        Self {
            cache: None,
            stack: None,
            env: vec![
                ("CONDA_CHANNEL_ALIAS".into(), server.url()),
                (
                    "CONDA_DEFAULT_CHANNELS".into(),
                    format!("{}/main", server.url()),
                ),
            ],
            detect: false,
            no_network: false,
            memory: None,
            tmpdir: None,
            keep_staging_dir: false,
            cgroup: None,
        }
    }

    pub(crate) fn tmpdir(mut self, dir: &Path) -> Self {
        self.tmpdir = Some(dir.to_path_buf());
        self
    }

    pub(crate) fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    pub(crate) fn cache(mut self, dir: &Path) -> Self {
        self.cache = Some(dir.to_path_buf());
        self
    }
}

pub(crate) fn stage(
    app: &Path,
    buildpacks: &[&Path],
    options: &StageOptions,
    output: &Path,
) -> Staging {
    let mut command = Command::new(LOCAL_CF);
    command.arg("stage").arg(app).args(world::stage_args());
    for buildpack in buildpacks {
        command.arg("--buildpack").arg(buildpack);
    }
    command.arg("--output").arg(output);
    if let Some(cache) = &options.cache {
        command.arg("--cache").arg(cache);
    }
    if let Some(stack) = &options.stack {
        command.arg("--stack").arg(stack);
    }
    if let Some(memory) = &options.memory {
        command.arg("--memory").arg(memory);
    }
    if options.detect {
        command.arg("--detect");
    }
    if options.no_network {
        command.arg("--no-network");
    }
    if options.keep_staging_dir {
        command.arg("--keep-staging-dir");
    }
    for (name, value) in &options.env {
        command.arg("--env").arg(format!("{name}={value}"));
    }
    if let Some(tmpdir) = &options.tmpdir {
        command.env("TMPDIR", tmpdir);
    }
    if let Some(cgroup) = &options.cgroup {
        command.env(JOIN_CGROUP, cgroup.procs());
    }
    let started = std::time::Instant::now();
    let (status, stdout, stderr, peak_memory_kib) = run_measured(&mut command);
    let mut log = String::from_utf8_lossy(&stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&stderr));
    Staging {
        code: status,
        log,
        output: output.to_path_buf(),
        elapsed: started.elapsed(),
        peak_memory_kib,
    }
}

/// Runs `command` to completion, collecting its output, and measures the peak resident
/// memory of it and every descendant it waited for.
///
/// The command is not spawned by this process directly: a child started from a test process
/// (which may hold hundreds of megabytes) is charged that process's peak when it execs, as
/// Linux carries the old memory's high-water mark across `exec`. A small python forks the
/// command instead and reports `wait4`'s figure for it.
/// Set on a command for [`run_measured`]: the measuring process joins this cgroup first, so
/// the command and everything it starts are in it.
const JOIN_CGROUP: &str = "CONDA_BP_TEST_JOIN_CGROUP";

fn run_measured(command: &mut Command) -> (i32, Vec<u8>, Vec<u8>, u64) {
    const MEASURE: &str = "import os, sys\n\
        cgroup = os.environ.pop('CONDA_BP_TEST_JOIN_CGROUP', None)\n\
        if cgroup:\n    open(cgroup, 'w').write(str(os.getpid()))\n\
        pid = os.fork()\n\
        if pid == 0:\n    os.execvp(sys.argv[2], sys.argv[2:])\n\
        _, status, usage = os.wait4(pid, 0)\n\
        open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n\
        sys.exit(os.waitstatus_to_exitcode(status))\n";
    let report = tempfile::NamedTempFile::new().unwrap();
    let mut measured = Command::new("python3");
    measured
        .arg("-c")
        .arg(MEASURE)
        .arg(report.path())
        .arg(command.get_program())
        .args(command.get_args());
    for (name, value) in command.get_envs() {
        match value {
            Some(value) => measured.env(name, value),
            None => measured.env_remove(name),
        };
    }
    let output = measured.stdin(Stdio::null()).output().unwrap();
    let peak = fs::read_to_string(report.path())
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(0);
    (
        output.status.code().unwrap_or(-1),
        output.stdout,
        output.stderr,
        peak,
    )
}

/// Starts a staging and kills it, with everything it started, after `delay`: a staging
/// container that dies midway (an evacuated cell, an operator's stop).
pub(crate) fn stage_killed_after(
    app: &Path,
    buildpack: &Path,
    options: &StageOptions,
    output: &Path,
    delay: std::time::Duration,
) -> Staging {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(LOCAL_CF);
    command
        .arg("stage")
        .arg(app)
        .args(world::stage_args())
        .arg("--buildpack")
        .arg(buildpack)
        .arg("--output")
        .arg(output);
    if let Some(cache) = &options.cache {
        command.arg("--cache").arg(cache);
    }
    for (name, value) in &options.env {
        command.arg("--env").arg(format!("{name}={value}"));
    }
    if let Some(tmpdir) = &options.tmpdir {
        command.env("TMPDIR", tmpdir);
    }
    // SAFETY: setsid is async-signal-safe; the child gets its own process group to kill.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: signalling our own child's process group.
    unsafe {
        libc::kill(-pid, libc::SIGKILL);
    }
    let status = child.wait().unwrap();
    Staging {
        code: status.code().unwrap_or(-1),
        log: String::new(),
        output: output.to_path_buf(),
        elapsed: delay,
        peak_memory_kib: 0,
    }
}

/// Starts a droplet at /home/vcap as CF's launcher does, running `command` (or the droplet's
/// start command when empty).
pub(crate) fn launch(droplet: &Path, command: &str, env: &[(&str, &str)]) -> Output {
    let mut launch = Command::new(LOCAL_CF);
    launch.arg("launch").arg(droplet).args(world::launch_args());
    for (name, value) in env {
        launch.arg("--env").arg(format!("{name}={value}"));
    }
    if !command.is_empty() {
        launch.arg("--").arg(command);
    }
    launch.stdin(Stdio::null()).output().unwrap()
}

/// What the app printed: the launcher's own `Invoking ...` lines left out.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|line| {
            !matches!(
                *line,
                "Invoking pre-start scripts." | "Invoking start command."
            )
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

/// The names in a directory, sorted: what a test compares to say what was written where.
pub(crate) fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Writes an executable script.
pub(crate) fn write_script(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    let mut file = fs::File::create(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Lists a droplet's entries.
pub(crate) fn droplet_entries(droplet: &Path) -> Vec<String> {
    let file = fs::File::open(droplet).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            entry
                .unwrap()
                .path()
                .unwrap()
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string()
        })
        .collect()
}

/// Reads one file from a droplet.
pub(crate) fn droplet_file(droplet: &Path, wanted: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let file = fs::File::open(droplet).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry
            .path()
            .unwrap()
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if path == wanted {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            return Some(bytes);
        }
    }
    None
}

/// A developer's own conda: the fixture Miniconda installed into `into`.
pub(crate) fn developer_conda(into: &Path) -> PathBuf {
    let fixtures = fixtures();
    let installer = fixtures.installer("miniconda3-py39", "25.7.0");
    developer_conda_from(
        &fixtures
            .dir
            .join("installers")
            .join(installer["file"].as_str().unwrap()),
        into,
    )
}

/// A developer's own conda from the given installer, installed into `into`.
pub(crate) fn developer_conda_from(installer: &Path, into: &Path) -> PathBuf {
    let prefix = into.join("miniconda3");
    let status = Command::new("bash")
        .arg(installer)
        .args(["-b", "-p"])
        .arg(&prefix)
        .env("HOME", into)
        .env("TMPDIR", std::env::temp_dir())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the developer's conda installs");
    prefix.join("bin/conda")
}

pub(crate) fn vendor(
    app: &Path,
    conda: &Path,
    server: &Server,
    home: &Path,
) -> std::process::Output {
    vendor_command(app, conda, server, home).output().unwrap()
}

/// `conda-buildpack vendor` as a developer runs it, with the test's channels and pip cache.
pub(crate) fn vendor_command(app: &Path, conda: &Path, server: &Server, home: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .arg("vendor")
        .arg(app)
        .arg("--conda")
        .arg(conda)
        .env("CONDA_CHANNEL_ALIAS", server.url())
        .env("CONDA_DEFAULT_CHANNELS", format!("{}/main", server.url()))
        .env("CONDA_PKGS_DIRS", home.join("pkgs"))
        .env("PIP_CACHE_DIR", home.join("pip-cache"))
        .env("HOME", home);
    command
}

/// Zips a stand-in buildpack from `fixtures/buildpacks/<name>` with its Unix modes, as an
/// operator's buildpack zip would carry them.
pub(crate) fn standin_buildpack(name: &str, into: &Path) -> PathBuf {
    let source = repo().join("fixtures/buildpacks").join(name);
    let target = into.join(format!("{name}.zip"));
    zip_buildpack_dir(&source, &target);
    target
}

/// Bytes of the regular files under `prefix` (`deps/0/`) in a droplet.
pub(crate) fn droplet_bytes_under(droplet: &Path, prefix: &str) -> u64 {
    let file = fs::File::open(droplet).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    archive
        .entries()
        .unwrap()
        .map(Result::unwrap)
        .filter(|entry| {
            entry.header().entry_type().is_file()
                && entry
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_start_matches("./")
                    .starts_with(prefix)
        })
        .map(|entry| entry.header().size().unwrap())
        .sum()
}

/// Zips the buildpack folder `source` into `target` with its files' Unix modes.
pub(crate) fn zip_buildpack_dir(source: &Path, target: &Path) {
    use std::os::unix::fs::MetadataExt;
    let source = source.to_path_buf();
    let mut writer = zip::ZipWriter::new(fs::File::create(target).unwrap());
    let mut pending = vec![source.clone()];
    let mut files = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            if entry.path().is_dir() {
                pending.push(entry.path());
            } else {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    for file in files {
        let name = file
            .strip_prefix(&source)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mode = fs::metadata(&file).unwrap().mode() & 0o777;
        let options = zip::write::SimpleFileOptions::default().unix_permissions(mode);
        writer.start_file(name, options).unwrap();
        writer.write_all(&fs::read(&file).unwrap()).unwrap();
    }
    writer.finish().unwrap();
}

/// One push of a fixture app through a freshly packaged buildpack against a fresh fixture
/// server: the preamble most stories share. The scratch dir and server live as long as this.
pub(crate) struct Pushed {
    pub(crate) staging: Staging,
    pub(crate) dir: tempfile::TempDir,
    pub(crate) server: Server,
    pub(crate) zip: PathBuf,
    pub(crate) app: PathBuf,
}

pub(crate) fn push(fixture: &str, options: impl FnOnce(&Server) -> StageOptions) -> Pushed {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(&server, dir.path(), &Packaging::default());
    let app = app(fixture, dir.path());
    let staging = stage(&app, &[&zip], &options(&server), &dir.path().join("out"));
    Pushed {
        staging,
        dir,
        server,
        zip,
        app,
    }
}

impl Packaging {
    /// The cached zip, as an operator of an offline foundation uploads it.
    pub(crate) fn cached() -> Self {
        Self {
            cached: true,
            ..Self::default()
        }
    }
}

/// What a developer does before pushing to an offline foundation: install conda, then
/// `conda-buildpack vendor APP`. Returns the developer's conda.
pub(crate) fn vendor_as_developer(app: &Path, server: &Server, home: &Path) -> PathBuf {
    let conda = developer_conda(home);
    let vendored = vendor(app, &conda, server, home);
    assert!(
        vendored.status.success(),
        "conda-buildpack vendor failed: {}",
        String::from_utf8_lossy(&vendored.stderr)
    );
    assert!(
        stdout(&vendored).contains("Vendored "),
        "{}",
        stdout(&vendored)
    );
    conda
}
