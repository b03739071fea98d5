//! Staging and launching as a user would: `local-cf stage` with its options, the staging's
//! outcome and log, a staging killed midway, `local-cf launch`, and `push`, the preamble most
//! stories share.

use super::*;

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

    /// The log holds `lines` as one block, in this order and nothing between them: each
    /// pattern is a whole line, or its start when it ends with `…`.
    pub(crate) fn assert_log_block(&self, lines: &[&str]) -> &Self {
        let matches = |line: &str, pattern: &str| match pattern.strip_suffix('…') {
            Some(start) => line.starts_with(start),
            None => line == pattern,
        };
        let log: Vec<&str> = self.log.lines().collect();
        let found = log.windows(lines.len()).any(|window| {
            window
                .iter()
                .zip(lines)
                .all(|(line, pattern)| matches(line, pattern))
        });
        assert!(
            found,
            "the log lacks the block\n{}\n---- the log:\n{}",
            lines.join("\n"),
            self.log
        );
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

    /// With the network cut, as on an air-gapped foundation: loopback only.
    pub(crate) fn offline(mut self) -> Self {
        self.no_network = true;
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
/// What `command` printed in the staged app's droplet, with its stderr for a failure message.
pub(crate) fn run_in_droplet(staging: &Staging, command: &str) -> String {
    let output = launch(&staging.droplet(), command, &[]);
    let printed = stdout(&output);
    assert!(
        output.status.success(),
        "`{command}` failed:\n{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    printed
}

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

/// The cached environment's entry directory in the app cache `cache` (`stage --cache`) left
/// by the final buildpack.
pub(crate) fn cache_entry(cache: &Path) -> PathBuf {
    fs::read_dir(cache.join("final/environment"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("entry-")
        })
        .expect("a cached environment entry")
}

/// `impl Deref<Target = PushWorld>` for a story's own world that holds one in `base` and adds
/// what the story needs, so that `world.app`, `world.server`... read as on a `PushWorld`.
#[allow(unused_macros)] // used by some stories only
macro_rules! extends_push_world {
    ($world:ty) => {
        impl std::ops::Deref for $world {
            type Target = $crate::support::PushWorld;

            fn deref(&self) -> &$crate::support::PushWorld {
                &self.base
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use extends_push_world;

/// The numpy-web fixture app, started from its droplet, answers from its environment.
pub(crate) fn assert_numpy_web_runs(staging: &Staging) {
    let run = launch(&staging.droplet(), "python app.py --once", &[]);
    let output = stdout(&run);
    assert!(
        run.status.success() && output.contains("numpy 1.26.4 mean 2.5"),
        "the app did not run: {output}{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// Where most stories push: a fixture app and the buildpack freshly packaged against a fresh
/// fixture server, in one scratch dir. The scratch dir and server live as long as this.
pub(crate) struct PushWorld {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) server: Server,
    pub(crate) zip: PathBuf,
    pub(crate) app: PathBuf,
}

impl PushWorld {
    /// The fixture app `fixture` and the uncached zip.
    pub(crate) fn new(fixture: &str) -> Self {
        Self::packaged(fixture, &Packaging::default())
    }

    pub(crate) fn packaged(fixture: &str, packaging: &Packaging) -> Self {
        let Packaged { dir, server, zip } = Packaged::new(packaging);
        let app = app(fixture, dir.path());
        Self {
            dir,
            server,
            zip,
            app,
        }
    }

    /// The app staged through the zip with `options`, its output in the scratch dir's `name`.
    pub(crate) fn push(&self, name: &str, options: &StageOptions) -> Staging {
        stage(
            &self.app,
            &[&self.zip],
            options,
            &self.dir.path().join(name),
        )
    }
}

/// The buildpack packaged against a fresh fixture server, in a scratch dir: the start of a
/// story that writes or copies apps of its own and stages each through the zip.
pub(crate) struct Packaged {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) server: Server,
    pub(crate) zip: PathBuf,
}

impl Packaged {
    pub(crate) fn new(packaging: &Packaging) -> Self {
        let dir = scratch();
        let server = Server::start(&fixtures().dir);
        let zip = package(&server, dir.path(), packaging);
        Self { dir, server, zip }
    }

    /// An app written under the scratch dir from `(file, content)` pairs.
    pub(crate) fn app(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        write_app(self.dir.path(), name, files)
    }

    /// `app` staged through the zip with `options`, its output in the scratch dir's `name`.
    pub(crate) fn stage(&self, app: &Path, name: &str, options: &StageOptions) -> Staging {
        stage(app, &[&self.zip], options, &self.dir.path().join(name))
    }
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
    let world = PushWorld::new(fixture);
    let staging = world.push("out", &options(&world.server));
    let PushWorld {
        dir,
        server,
        zip,
        app,
    } = world;
    Pushed {
        staging,
        dir,
        server,
        zip,
        app,
    }
}
