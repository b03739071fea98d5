//! Figures 1, 2, 3, 5 and 7: one workload level, staged cold and warm, restored, started.

use super::*;

pub(crate) fn bench_level(config: &Config, level: Level, scratch: &Path, report: &mut Report) {
    let name = level.name();
    progress(&format!("== {name} environment"));
    let fixtures = workload_fixtures(level);
    let info: serde_json::Value =
        serde_json::from_slice(&fs::read(fixtures.join("fixtures.json")).unwrap()).unwrap();
    let dir = scratch.join(name);
    fs::create_dir_all(&dir).unwrap();
    let server = Server::start(&fixtures);
    let manifest = workload_manifest(&info, &server.url(), &dir);
    let zip = package(&manifest, &dir.join("zips"), None);
    let app = dir.join("app");
    support::copy_dir(&fixtures.join("apps/workload"), &app);
    let buildpack_dir = unzip(&zip, &dir.join("buildpack"));
    let options = StageOptions::with_channels(&server);
    let cache = dir.join("cache");

    // A large staging is 30-45 s cold and ~13 s warm on 2 cores: three of each keep the run
    // within minutes. The cheap measurements (bin/supply, cp) get every run.
    let stagings = if level == Level::Large {
        config.runs.min(3)
    } else {
        config.runs
    };
    let mut samples = LevelSamples::default();
    for run in 0..config.runs {
        progress(&format!("   run {} of {}", run + 1, config.runs));
        if run < stagings {
            let _ = fs::remove_dir_all(&cache);
            let (wall, staging) = timed_stage(&app, &zip, &options, &cache, &dir.join("cold"));
            assert!(
                staging.log.contains("Cache: miss"),
                "a cold staging missed the cache:\n{}",
                staging.log
            );
            samples.cold_stage.push(wall);
            samples.cold_supply.push(summary_time(&staging.log));
            samples.cold_memory.push(peak_memory(&staging.log));

            let (wall, staging) = timed_stage(&app, &zip, &options, &cache, &dir.join("warm"));
            assert!(
                staging
                    .log
                    .contains("Cache: hit, the environment was restored without running conda"),
                "a warm staging missed the cache:\n{}",
                staging.log
            );
            samples.warm_stage.push(wall);
            samples.warm_supply.push(summary_time(&staging.log));
            samples.warm_memory.push(peak_memory(&staging.log));
        }

        let (wall, restore) = direct_supply(&buildpack_dir, &app, &cache, &server, &dir);
        samples.supply_wall.push(wall);
        samples.supply_restore.push(restore);
        let tree = dir.join("direct/deps/0/conda-env");
        samples
            .cp_al
            .push(timed_copy("-al", &tree, &dir.join("cp-al")));
        samples
            .cp_a
            .push(timed_copy("-a", &tree, &dir.join("cp-a")));
    }

    let droplet = dir.join("warm/droplet.tgz");
    let mut sizes = droplet_sizes(&droplet, &dir.join("direct/deps/0/conda-env"));
    sizes.cache = distinct_tree_bytes(&cache).0;
    progress("   building the peer droplet (python-buildpack's start-time relocation)");
    let peer = peer_droplet(&droplet, &dir.join("peer.tgz"));
    check_peer(&peer);

    // Starting is cheap for the small env: more samples for a steadier median.
    let launches = if level == Level::Small {
        config.runs * 2
    } else {
        config.runs
    };
    let direct_command = format!("{RUNTIME_DEPS_IDX}/conda-env/bin/python -c 'print(1)'");
    for _ in 0..launches {
        let ours = timed_launch(&droplet, APP_COMMAND);
        let direct = timed_launch(&droplet, &direct_command);
        let theirs = timed_launch(&peer, APP_COMMAND);
        samples.launch_ours.push(ours.to_output - ours.prestart);
        samples.launch_total.push(ours.to_output);
        samples.python_direct.push(direct.to_output - direct.start);
        samples.launch_peer.push(theirs.to_output - theirs.prestart);
    }
    let _ = fs::remove_dir_all(&dir);
    report.add_level(level, &info, &samples, &sizes, launches);
}

#[derive(Default)]
pub(crate) struct LevelSamples {
    pub(crate) cold_stage: Vec<Duration>,
    pub(crate) cold_supply: Vec<Duration>,
    pub(crate) warm_stage: Vec<Duration>,
    pub(crate) warm_supply: Vec<Duration>,
    pub(crate) supply_wall: Vec<Duration>,
    pub(crate) supply_restore: Vec<Duration>,
    pub(crate) cp_al: Vec<Duration>,
    pub(crate) cp_a: Vec<Duration>,
    pub(crate) launch_ours: Vec<Duration>,
    pub(crate) launch_total: Vec<Duration>,
    pub(crate) python_direct: Vec<Duration>,
    pub(crate) launch_peer: Vec<Duration>,
    pub(crate) cold_memory: Vec<u64>,
    pub(crate) warm_memory: Vec<u64>,
}

/// Builds (once per fixture source digest) the fixture world with the workload channel.
pub(crate) fn workload_fixtures(level: Level) -> PathBuf {
    let sources = support::repo().join("fixtures/conda");
    let digest = support::digest_tree(&sources);
    let root = support::repo().join("target/bench-fixtures");
    let dir = root.join(format!("{}-{}", level.name(), &digest[..16]));
    if !dir.join("fixtures.json").is_file() {
        eprintln!("   building the {} workload fixtures", level.name());
        fs::create_dir_all(&root).unwrap();
        let status = Command::new("python3")
            .arg(sources.join("build.py"))
            .arg(&dir)
            .arg("--workload")
            .arg(level.name())
            .stdout(Stdio::null())
            .status()
            .expect("python3 runs the fixture builder");
        assert!(status.success(), "fixtures/conda/build.py failed");
        for entry in fs::read_dir(&root).unwrap().flatten() {
            let stale = entry
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{}-", level.name()));
            if stale && entry.path() != dir {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    dir
}

/// The repository's manifest with every installer swapped for the fixture of the same name and
/// version, served at `url`.
pub(crate) fn workload_manifest(info: &serde_json::Value, url: &str, into: &Path) -> PathBuf {
    let text = fs::read_to_string(support::repo().join("manifest.yml")).unwrap();
    let mut manifest: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    for dependency in manifest["dependencies"].as_sequence_mut().unwrap() {
        let installer = info["installers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|installer| {
                installer["name"].as_str() == dependency["name"].as_str()
                    && installer["version"].as_str() == dependency["version"].as_str()
            })
            .expect("a fixture installer for every manifest dependency");
        dependency["uri"] = format!(
            "{url}/installers/{}",
            installer["file"].as_str().unwrap_or_default()
        )
        .into();
        dependency["sha256"] = installer["sha256"].as_str().unwrap_or_default().into();
    }
    fs::create_dir_all(into).unwrap();
    let path = into.join("manifest.yml");
    fs::write(&path, serde_yaml_ng::to_string(&manifest).unwrap()).unwrap();
    path
}

/// `conda-buildpack package` (with `--cached` when a download cache is given).
pub(crate) fn package(manifest: &Path, output: &Path, download_cache: Option<&Path>) -> PathBuf {
    let mut command = Command::new(BINARY);
    command
        .arg("package")
        .arg("--stack")
        .arg("cflinuxfs4")
        .arg("--manifest")
        .arg(manifest)
        .arg("--source")
        .arg(support::repo())
        .arg("--output")
        .arg(output);
    if let Some(cache) = download_cache {
        command.arg("--cached").arg("--cache-dir").arg(cache);
    }
    let result = command.stderr(Stdio::piped()).output().unwrap();
    assert!(
        result.status.success(),
        "package failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    PathBuf::from(
        String::from_utf8_lossy(&result.stdout)
            .lines()
            .last()
            .unwrap_or_default(),
    )
}

pub(crate) fn unzip(zip: &Path, into: &Path) -> PathBuf {
    let status = Command::new("unzip")
        .arg("-q")
        .arg(zip)
        .arg("-d")
        .arg(into)
        .status()
        .expect("unzip runs (ci/benchmark installs it)");
    assert!(status.success(), "unzip {} failed", zip.display());
    into.to_path_buf()
}

pub(crate) fn timed_stage(
    app: &Path,
    zip: &Path,
    options: &StageOptions,
    cache: &Path,
    output: &Path,
) -> (Duration, support::Staging) {
    let options = options.clone().cache(cache);
    let started = Instant::now();
    let staging = support::stage(app, &[zip], &options, output);
    let wall = started.elapsed();
    staging.assert_success();
    (wall, staging)
}

/// `bin/supply BUILD CACHE DEPS 0` straight from the unpacked zip, on the cache the stagings
/// left, with the staging environment that matters to the cache key: the wall time of the
/// buildpack's own warm restage, without the platform's zip unpack, app copy and droplet.
/// Returns it with the restore step its summary reports.
pub(crate) fn direct_supply(
    buildpack: &Path,
    app: &Path,
    cache: &Path,
    server: &Server,
    dir: &Path,
) -> (Duration, Duration) {
    let root = dir.join("direct");
    let _ = fs::remove_dir_all(&root);
    let (build, deps, home, tmp) = (
        root.join("app"),
        root.join("deps"),
        root.join("home"),
        root.join("tmp"),
    );
    support::copy_dir(app, &build);
    for path in [deps.join("0"), home.clone(), tmp.clone()] {
        fs::create_dir_all(path).unwrap();
    }
    let log = root.join("supply.log");
    let mut child = Command::new(buildpack.join("bin/supply"))
        .arg(&build)
        .arg(cache.join("final"))
        .arg(&deps)
        .arg("0")
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", &home)
        .env("TMPDIR", &tmp)
        .env("LANG", "en_US.UTF-8")
        .env("CF_STACK", "cflinuxfs4")
        .env("MEMORY_LIMIT", "1024m")
        .env("CONDA_CHANNEL_ALIAS", server.url())
        .env("CONDA_DEFAULT_CHANNELS", format!("{}/main", server.url()))
        .stdin(Stdio::null())
        .stdout(fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = child.wait().unwrap();
    let wall = started.elapsed();
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.success() && text.contains("Restoring the conda environment from the cache"),
        "bin/supply did not restore from the cache ({status}):\n{text}"
    );
    // The restored environment stays for the copy baselines; the next run removes it.
    (wall, restore_step(&text))
}

/// `cp FLAG tree fresh` on the same file system: the physical limit of a restore.
pub(crate) fn timed_copy(flag: &str, tree: &Path, target: &Path) -> Duration {
    let _ = fs::remove_dir_all(target);
    let started = Instant::now();
    let status = Command::new("cp")
        .arg(flag)
        .arg(tree)
        .arg(target)
        .status()
        .unwrap();
    let wall = started.elapsed();
    assert!(status.success(), "cp {flag} failed");
    let _ = fs::remove_dir_all(target);
    wall
}

/// Figure 5's sizes, in bytes.
pub(crate) struct DropletSizes {
    /// Contents of the regular files the buildpack adds (`deps/`, `profile.d/`), each once.
    pub(crate) added: u64,
    /// The tar headers and padding of those members.
    pub(crate) tar_overhead: u64,
    /// The compressed droplet.
    pub(crate) droplet: u64,
    /// The environment's regular files, each inode once.
    pub(crate) environment: u64,
    pub(crate) files: u64,
    /// The app cache after the stagings (Cloud Foundry archives and uploads it each time).
    pub(crate) cache: u64,
}

pub(crate) fn droplet_sizes(droplet: &Path, environment: &Path) -> DropletSizes {
    let mut added = 0;
    let mut tar_overhead = 0;
    let file = fs::File::open(droplet).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let path = path.trim_start_matches("./");
        if !(path.starts_with("deps/") || path.starts_with("profile.d/")) {
            continue;
        }
        let size = entry.header().size().unwrap_or(0);
        let is_file = entry.header().entry_type() == tar::EntryType::Regular;
        if is_file {
            added += size;
        }
        tar_overhead += 512
            + if is_file {
                size.next_multiple_of(512) - size
            } else {
                0
            };
    }
    let (environment, files) = distinct_tree_bytes(environment);
    DropletSizes {
        added,
        tar_overhead,
        droplet: fs::metadata(droplet).unwrap().len(),
        environment,
        files,
        cache: 0,
    }
}

/// The same droplet as python-buildpack would leave it: the environment's text files name the
/// staging path, and a profile.d script rewrites them at every start with its
/// `grep -rlI <staging dir> $DEPS_DIR/<idx>/conda | xargs sed -i -e "s|...|$DEPS_DIR/<idx>|g"`
/// (python-buildpack `src/python/conda/conda.go`, `ProfileD`). Binary files are left as they
/// are, as its `grep -I` does. Written with stored (uncompressed) gzip blocks: only the time
/// after the unpack is compared.
pub(crate) fn peer_droplet(droplet: &Path, target: &Path) -> PathBuf {
    let input = fs::File::open(droplet).unwrap();
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(input)));
    let output = fs::File::create(target).unwrap();
    let encoder =
        flate2::write::GzEncoder::new(std::io::BufWriter::new(output), flate2::Compression::none());
    let mut builder = tar::Builder::new(encoder);
    let environment = "deps/0/conda-env/";
    let mut rewritten = 0;
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().into_owned();
        let mut header = entry.header().clone();
        match header.entry_type() {
            tar::EntryType::Regular => {
                let mut contents = Vec::new();
                entry.read_to_end(&mut contents).unwrap();
                let relative = path.to_string_lossy();
                if relative.trim_start_matches("./").starts_with(environment)
                    && !contents.contains(&0)
                    && memchr::memmem::find(&contents, RUNTIME_DEPS_IDX.as_bytes()).is_some()
                {
                    contents = replace(&contents, RUNTIME_DEPS_IDX, PEER_STAGING_DEPS_IDX);
                    rewritten += 1;
                }
                header.set_size(contents.len() as u64);
                builder
                    .append_data(&mut header, &path, contents.as_slice())
                    .unwrap();
            }
            tar::EntryType::Symlink | tar::EntryType::Link => {
                let link = entry.link_name().unwrap().unwrap().into_owned();
                builder.append_link(&mut header, &path, &link).unwrap();
            }
            _ => builder
                .append_data(&mut header, &path, std::io::empty())
                .unwrap(),
        }
    }
    assert!(
        rewritten > 0,
        "no text file of the environment names its prefix"
    );
    let script = format!(
        "grep -rlI {PEER_STAGING_DEPS_IDX} $DEPS_DIR/0/conda-env | xargs sed -i -e \"s|{PEER_STAGING_DEPS_IDX}|$DEPS_DIR/0|g\"\n"
    );
    let mut header = tar::Header::new_gnu();
    header.set_mode(0o644);
    header.set_size(script.len() as u64);
    header.set_mtime(1_700_000_000);
    builder
        .append_data(
            &mut header,
            "./profile.d/0_conda_relocate.sh",
            script.as_bytes(),
        )
        .unwrap();
    builder.into_inner().unwrap().finish().unwrap();
    target.to_path_buf()
}

pub(crate) fn replace(contents: &[u8], from: &str, to: &str) -> Vec<u8> {
    let mut output = Vec::with_capacity(contents.len());
    let mut last = 0;
    for start in memchr::memmem::find_iter(contents, from.as_bytes()) {
        output.extend_from_slice(&contents[last..start]);
        output.extend_from_slice(to.as_bytes());
        last = start + from.len();
    }
    output.extend_from_slice(&contents[last..]);
    output
}

/// The peer droplet really relocates at start: nothing names the staging path once the
/// profile.d scripts ran, and numpy's own relocation check passes.
pub(crate) fn check_peer(peer: &Path) {
    let command = format!(
        "grep -rlI {PEER_STAGING_DEPS_IDX} $DEPS_DIR/0/conda-env | wc -l; python -c 'import numpy; print(\"numpy ok\")'"
    );
    let output = support::launch(peer, &command, &[]);
    let text = support::stdout(&output);
    assert!(
        text.starts_with("0\n") && text.contains("numpy ok"),
        "the peer droplet did not relocate at start:\n{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// When each of the launcher's lines and the app's first line arrived, from the spawn of
/// `local-cf launch`.
pub(crate) struct LaunchTimes {
    pub(crate) prestart: Duration,
    pub(crate) start: Duration,
    pub(crate) to_output: Duration,
}

pub(crate) fn timed_launch(droplet: &Path, command: &str) -> LaunchTimes {
    let started = Instant::now();
    let mut child = Command::new(LOCAL_CF)
        .arg("launch")
        .arg(droplet)
        .arg("--")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let (mut prestart, mut start, mut output) = (None, None, None);
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        let at = started.elapsed();
        match line.trim_end() {
            "Invoking pre-start scripts." => prestart = Some(at),
            "Invoking start command." => start = Some(at),
            _ if start.is_some() && output.is_none() => output = Some(at),
            _ => {}
        }
        line.clear();
    }
    let status = child.wait().unwrap();
    let errors = errors.join().unwrap_or_default();
    match (status.success(), prestart, start, output) {
        (true, Some(prestart), Some(start), Some(to_output)) => LaunchTimes {
            prestart,
            start,
            to_output,
        },
        _ => panic!(
            "launch of {} failed ({status}):\n{errors}",
            droplet.display()
        ),
    }
}
