//! The staging benchmark (issue 7): what a user waits for and pays for, as ratios measured side
//! by side in one run so they hold on a noisy machine.
//!
//! `ci/benchmark [--quick]` runs it (or `cargo bench --bench staging [-- --quick]`). Every
//! figure goes through the product as a user meets it: the buildpack zip made by `package`,
//! staged by `stage` (empty cache, then the same cache with the app unchanged), started by
//! `launch`; plus `bin/supply` and `bin/detect` run straight from the unpacked zip. The
//! numerator and denominator of each ratio are measured in the same iteration, one after the
//! other, and each is the median of the iterations. The workload is the `workload` channel of
//! `fixtures/conda/build.py` (small and large). The full run writes the generated part of
//! `docs/benchmarks.md`; `--quick` (small env only) writes `target/benchmarks-quick.md`.
//!
//! `cargo test --all-targets` builds this target and runs it without `--bench`: it then returns
//! at once, so the test suite never pays for it.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::fmt::Write as _;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{distinct_tree_bytes, median, parse_duration, summary_duration};
use support::{BINARY, LOCAL_CF, Server, StageOptions};

/// What python-buildpack bakes into an environment: its staging deps dir, rewritten at every
/// start by a profile.d script (the peer baseline of figure 3).
const PEER_STAGING_DEPS_IDX: &str = "/tmp/contents1234567890/deps/0";
const RUNTIME_DEPS_IDX: &str = "/home/vcap/deps/0";
const APP_COMMAND: &str = "python -c 'print(1)'";

struct Config {
    quick: bool,
    runs: usize,
    levels: Vec<Level>,
    download_mib: u64,
    detect_runs: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Small,
    Large,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Large => "large",
        }
    }
}

fn main() {
    if !common::benchmarking() {
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|arg| arg == "--quick");
    let config = if quick {
        Config {
            quick,
            runs: 3,
            levels: vec![Level::Small],
            download_mib: 100,
            detect_runs: 50,
        }
    } else {
        Config {
            quick,
            runs: 5,
            levels: vec![Level::Small, Level::Large],
            download_mib: 500,
            detect_runs: 100,
        }
    };
    let started = Instant::now();
    progress(if quick {
        "quick benchmark: the small env"
    } else {
        "full benchmark: the small and large envs"
    });
    let machine = Machine::read();
    let scratch = tempfile::Builder::new()
        .prefix("conda-bp-bench-")
        .tempdir_in(std::env::temp_dir())
        .expect("a scratch directory");
    let mut report = Report::default();
    for &level in &config.levels {
        bench_level(&config, level, scratch.path(), &mut report);
    }
    bench_download(&config, scratch.path(), &mut report);
    bench_tools(&config, scratch.path(), &mut report);
    report.memory_rows();
    let elapsed = started.elapsed();
    let load_after = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let table = report.table();
    println!("\n{table}");
    let command = std::env::var("BENCH_COMMAND").unwrap_or_else(|_| {
        format!(
            "cargo bench --bench staging{}",
            if quick { " -- --quick" } else { "" }
        )
    });
    let generated = render(
        &config,
        &machine,
        &command,
        &table,
        &report,
        elapsed,
        &load_after,
    );
    let target = if config.quick {
        support::repo().join("target/benchmarks-quick.md")
    } else {
        support::repo().join("docs/benchmarks.md")
    };
    write_generated(&target, &generated);
    println!(
        "benchmark finished in {:.0} s; figures written to {}",
        elapsed.as_secs_f64(),
        target.display()
    );
}

/// A progress line on stderr, with the time since the benchmark started.
fn progress(text: &str) {
    static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let elapsed = STARTED.get_or_init(Instant::now).elapsed();
    eprintln!("[{:>4.0} s] {text}", elapsed.as_secs_f64());
}

// ---------------------------------------------------------------------------------------------
// Figures 1, 2, 3, 5, 7: one workload level, staged cold and warm, restored, started.

fn bench_level(config: &Config, level: Level, scratch: &Path, report: &mut Report) {
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
struct LevelSamples {
    cold_stage: Vec<Duration>,
    cold_supply: Vec<Duration>,
    warm_stage: Vec<Duration>,
    warm_supply: Vec<Duration>,
    supply_wall: Vec<Duration>,
    supply_restore: Vec<Duration>,
    cp_al: Vec<Duration>,
    cp_a: Vec<Duration>,
    launch_ours: Vec<Duration>,
    launch_total: Vec<Duration>,
    python_direct: Vec<Duration>,
    launch_peer: Vec<Duration>,
    cold_memory: Vec<u64>,
    warm_memory: Vec<u64>,
}

/// Builds (once per fixture source digest) the fixture world with the workload channel.
fn workload_fixtures(level: Level) -> PathBuf {
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
fn workload_manifest(info: &serde_json::Value, url: &str, into: &Path) -> PathBuf {
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
fn package(manifest: &Path, output: &Path, download_cache: Option<&Path>) -> PathBuf {
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

fn unzip(zip: &Path, into: &Path) -> PathBuf {
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

fn timed_stage(
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
fn direct_supply(
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
fn timed_copy(flag: &str, tree: &Path, target: &Path) -> Duration {
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
struct DropletSizes {
    /// Contents of the regular files the buildpack adds (`deps/`, `profile.d/`), each once.
    added: u64,
    /// The tar headers and padding of those members.
    tar_overhead: u64,
    /// The compressed droplet.
    droplet: u64,
    /// The environment's regular files, each inode once.
    environment: u64,
    files: u64,
    /// The app cache after the stagings (Cloud Foundry archives and uploads it each time).
    cache: u64,
}

fn droplet_sizes(droplet: &Path, environment: &Path) -> DropletSizes {
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
fn peer_droplet(droplet: &Path, target: &Path) -> PathBuf {
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

fn replace(contents: &[u8], from: &str, to: &str) -> Vec<u8> {
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
fn check_peer(peer: &Path) {
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
struct LaunchTimes {
    prestart: Duration,
    start: Duration,
    to_output: Duration,
}

fn timed_launch(droplet: &Path, command: &str) -> LaunchTimes {
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

// ---------------------------------------------------------------------------------------------
// Figure 4: downloading with the sha256 check against curl piped to sha256sum.

fn bench_download(config: &Config, scratch: &Path, report: &mut Report) {
    progress(&format!(
        "== download of {} MiB over loopback",
        config.download_mib
    ));
    let file = download_file(config.download_mib);
    let sha256 = {
        let output = Command::new("sha256sum").arg(&file).output().unwrap();
        String::from_utf8_lossy(&output.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_string()
    };
    let server = FileServer::start(&file);
    let dir = scratch.join("download");
    fs::create_dir_all(&dir).unwrap();
    // A manifest whose one dependency is the big file: `package --cached` fetches it with
    // `download::fetch_verified`, exactly as staging fetches an installer.
    let manifest = dir.join("manifest.yml");
    fs::write(
        &manifest,
        format!(
            "---\nlanguage: conda\ndefault_versions:\n  - name: miniconda3-py39\n    version: 25.7.x\n\
             dependencies:\n  - name: miniconda3-py39\n    version: 25.7.0\n    \
             uri: {}/Miniconda3-py39_25.7.0-2-Linux-x86_64.sh\n    sha256: {sha256}\n    \
             cf_stacks:\n      - cflinuxfs4\ninclude_files:\n  - README.md\n  - VERSION\n  \
             - bin/supply\n  - manifest.yml\n",
            server.url()
        ),
    )
    .unwrap();
    let mut product = Vec::new();
    let mut curl = Vec::new();
    let mut curl_wall = Vec::new();
    let mut curl_alone = Vec::new();
    for _ in 0..config.runs {
        let cache = dir.join("download-cache");
        let _ = fs::remove_dir_all(&cache);
        package(&manifest, &dir.join("zips"), Some(&cache));
        product.push(server.last_transfer());
        let _ = fs::remove_dir_all(dir.join("zips"));
        let _ = fs::remove_dir_all(&cache);

        let started = Instant::now();
        let output = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "curl -sS {}/Miniconda3-py39_25.7.0-2-Linux-x86_64.sh | sha256sum",
                server.url()
            ))
            .output()
            .unwrap();
        curl_wall.push(started.elapsed());
        assert!(
            String::from_utf8_lossy(&output.stdout).starts_with(&sha256),
            "curl | sha256sum disagrees"
        );
        curl.push(server.last_transfer());

        // The transfer alone, for scale: what the network path allows without a hash.
        let status = Command::new("curl")
            .arg("-sS")
            .arg("-o")
            .arg("/dev/null")
            .arg(format!(
                "{}/Miniconda3-py39_25.7.0-2-Linux-x86_64.sh",
                server.url()
            ))
            .status()
            .unwrap();
        assert!(status.success(), "curl failed");
        curl_alone.push(server.last_transfer());
    }
    report.download(
        config.download_mib,
        &product,
        &curl,
        &curl_wall,
        &curl_alone,
    );
}

/// A deterministic incompressible file of `mib` MiB, kept under target/ between runs.
fn download_file(mib: u64) -> PathBuf {
    let dir = support::repo().join("target/bench-fixtures");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("download-{mib}m.bin"));
    if fs::metadata(&path).is_ok_and(|metadata| metadata.len() == mib << 20) {
        return path;
    }
    let partial = path.with_extension("partial");
    let mut writer = std::io::BufWriter::new(fs::File::create(&partial).unwrap());
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0_u8; 1 << 20];
    for _ in 0..mib {
        for chunk in block.chunks_exact_mut(8) {
            // xorshift64*: fast, fixed, and nothing a compressor can shrink.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            chunk.copy_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
        }
        writer.write_all(&block).unwrap();
    }
    writer.flush().unwrap();
    drop(writer);
    fs::rename(&partial, &path).unwrap();
    path
}

/// A loopback server for one file that gets out of the way: `sendfile(2)` via `io::copy`, and
/// the time from the request to the last byte handed to the socket, measured on the server so
/// the two clients are timed by the same clock and the same rule.
struct FileServer {
    port: u16,
    transfers: Arc<Mutex<Vec<Duration>>>,
}

impl FileServer {
    fn start(file: &Path) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let transfers = Arc::new(Mutex::new(Vec::new()));
        let (file, record) = (file.to_path_buf(), Arc::clone(&transfers));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 2 {
                    line.clear();
                }
                let started = Instant::now();
                let mut body = fs::File::open(&file).unwrap();
                let length = body.metadata().unwrap().len();
                let sent = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\
                     Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
                )
                .and_then(|()| std::io::copy(&mut body, &mut stream));
                if sent.is_ok() {
                    record.lock().unwrap().push(started.elapsed());
                }
                let _ = stream.shutdown(std::net::Shutdown::Write);
                // Let the client close first, so no reset cuts the last bytes.
                let _ = reader.read_to_end(&mut Vec::new());
            }
        });
        Self { port, transfers }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn last_transfer(&self) -> Duration {
        *self
            .transfers
            .lock()
            .unwrap()
            .last()
            .expect("the server saw the download")
    }
}

// ---------------------------------------------------------------------------------------------
// Figure 6: detect, and packaging the cached buildpack against zip -r.

fn bench_tools(config: &Config, scratch: &Path, report: &mut Report) {
    progress("== detect and package --cached");
    let fixtures = workload_fixtures(Level::Small);
    let info: serde_json::Value =
        serde_json::from_slice(&fs::read(fixtures.join("fixtures.json")).unwrap()).unwrap();
    let dir = scratch.join("tools");
    fs::create_dir_all(&dir).unwrap();
    let server = Server::start(&fixtures);
    let manifest = workload_manifest(&info, &server.url(), &dir);
    let downloads = dir.join("download-cache");
    // The first run fills the download cache; the timed ones find every installer there, as
    // a release pipeline packaging again does.
    let zip = package(&manifest, &dir.join("first"), Some(&downloads));
    let files = unzip(&zip, &dir.join("files"));
    let zip_bytes = fs::metadata(&zip).unwrap().len();

    let mut packaging = Vec::new();
    let mut zipping = Vec::new();
    for run in 0..config.runs {
        let output = dir.join(format!("package-{run}"));
        let started = Instant::now();
        package(&manifest, &output, Some(&downloads));
        packaging.push(started.elapsed());
        let _ = fs::remove_dir_all(&output);

        let target = dir.join(format!("zip-{run}.zip"));
        let started = Instant::now();
        let status = Command::new("zip")
            .arg("-q")
            .arg("-r")
            .arg(&target)
            .arg(".")
            .current_dir(&files)
            .status()
            .expect("zip runs (ci/benchmark installs it)");
        zipping.push(started.elapsed());
        assert!(status.success(), "zip -r failed");
        let _ = fs::remove_file(&target);
    }

    let app = fixtures.join("apps/workload");
    let not_an_app = dir.join("not-an-app");
    fs::create_dir_all(&not_an_app).unwrap();
    let detect = files.join("bin/detect");
    let executable = files.join("bin/conda-buildpack");
    let mut detecting = Vec::new();
    let mut rejecting = Vec::new();
    let mut executable_only = Vec::new();
    for _ in 0..config.detect_runs {
        detecting.push(timed_status(Command::new(&detect).arg(&app), 0));
        rejecting.push(timed_status(Command::new(&detect).arg(&not_an_app), 1));
        executable_only.push(timed_status(
            Command::new(&executable).arg("detect").arg(&app),
            0,
        ));
    }
    report.tools(
        &packaging,
        &zipping,
        zip_bytes,
        &detecting,
        &rejecting,
        &executable_only,
    );
}

fn timed_status(command: &mut Command, expected: i32) -> Duration {
    let started = Instant::now();
    let status = command.stdout(Stdio::null()).status().unwrap();
    let wall = started.elapsed();
    assert_eq!(status.code(), Some(expected), "{command:?}");
    wall
}

// ---------------------------------------------------------------------------------------------
// Reading the staging log's summary.

/// `Time: 250ms in all (...)`: the whole supply phase, as the buildpack measured it.
fn summary_time(log: &str) -> Duration {
    summary_duration(log).expect("the summary's Time line")
}

/// `(restoring the environment 113ms)` in the summary's Time line.
fn restore_step(log: &str) -> Duration {
    let line = log
        .lines()
        .find(|line| line.contains("Time: "))
        .expect("the Time line");
    let text = between(line, "restoring the environment ", ")")
        .or_else(|| between(line, "restoring the environment ", ","))
        .expect("the restore step");
    parse_duration(text).expect("a duration")
}

/// `Peak memory: conda 35.0 MiB, buildpack 29.3 MiB`: the buildpack's own, in KiB.
fn peak_memory(log: &str) -> u64 {
    let line = log
        .lines()
        .find(|line| line.contains("Peak memory:"))
        .expect("the Peak memory line");
    let text = line
        .split("buildpack ")
        .nth(1)
        .and_then(|rest| rest.split(';').next())
        .expect("the buildpack's peak memory");
    parse_size(text.trim()) / 1024
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let length = text[from..].find(end)?;
    Some(&text[from..from + length])
}

/// `512 B`, `3.4 KiB`, `29.3 MiB` (`log::format_size`), in bytes.
fn parse_size(text: &str) -> u64 {
    let (number, unit) = text.split_once(' ').expect("a size with a unit");
    let scale: f64 = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => panic!("unknown unit {unit}"),
    };
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bytes = (number.parse::<f64>().unwrap() * scale) as u64;
    bytes
}

// ---------------------------------------------------------------------------------------------
// The report.

fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

fn ms(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1000.0;
    if millis >= 10_000.0 {
        format!("{:.1} s", millis / 1000.0)
    } else if millis >= 100.0 {
        format!("{millis:.0} ms")
    } else {
        format!("{millis:.1} ms")
    }
}

#[allow(clippy::cast_precision_loss)]
fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

#[derive(Clone, Copy)]
enum Goal {
    AtMost(f64),
    AtLeast(f64),
    /// Reported, no goal set.
    None,
}

struct Row {
    figure: String,
    value: f64,
    unit: &'static str,
    detail: String,
    goal: Goal,
}

impl Row {
    fn verdict(&self) -> &'static str {
        match self.goal {
            Goal::AtMost(limit) if self.value <= limit => "pass",
            Goal::AtLeast(limit) if self.value >= limit => "pass",
            Goal::None => "-",
            _ => "MISS",
        }
    }

    fn value_text(&self) -> String {
        match self.unit {
            "" => format!("{:.3}", self.value),
            "ms" => format!("{:.1} ms", self.value),
            unit => format!("{:.1} {unit}", self.value),
        }
    }

    fn goal_text(&self) -> String {
        let number = |value: f64| match self.unit {
            "" => format!("{value}"),
            unit => format!("{value} {unit}"),
        };
        match self.goal {
            Goal::AtMost(limit) => format!("<= {}", number(limit)),
            Goal::AtLeast(limit) => format!(">= {}", number(limit)),
            Goal::None => "-".into(),
        }
    }
}

#[derive(Default)]
struct Report {
    rows: Vec<Row>,
    notes: Vec<String>,
    start_overhead: Vec<(Level, f64)>,
    memory: Vec<(Level, u64, u64)>,
}

impl Report {
    fn row(
        &mut self,
        figure: impl Into<String>,
        value: f64,
        unit: &'static str,
        goal: Goal,
    ) -> &mut Row {
        self.rows.push(Row {
            figure: figure.into(),
            value,
            unit,
            detail: String::new(),
            goal,
        });
        self.rows.last_mut().unwrap()
    }

    fn add_level(
        &mut self,
        level: Level,
        info: &serde_json::Value,
        samples: &LevelSamples,
        sizes: &DropletSizes,
        launches: usize,
    ) {
        let name = level.name();
        let workload = &info["workload"];
        self.notes.push(format!(
            "{name} env: {} packages, {} files, {} installed (the fixture's count); {} cold and \
             {} warm stagings, {} `bin/supply` and `cp` runs, {launches} starts per variant",
            workload["packages"],
            workload["files"],
            mib(workload["installed_bytes"].as_u64().unwrap_or(0)),
            samples.cold_stage.len(),
            samples.warm_stage.len(),
            samples.supply_wall.len(),
        ));
        let (cold, warm) = (median(&samples.cold_stage), median(&samples.warm_stage));
        let warm_supply = median(&samples.warm_supply);
        self.row(
            format!("1. warm restage / cold stage, `stage` end to end ({name})"),
            secs(warm) / secs(cold),
            "",
            Goal::AtMost(0.10),
        )
        .detail = format!(
            "warm {} / cold {}; of the warm, supply's own summary time {} and the rest \
             (zip unpack, app copy, finalize, release, the {} droplet.tgz) {}",
            ms(warm),
            ms(cold),
            ms(warm_supply),
            mib(sizes.droplet),
            ms(warm.saturating_sub(warm_supply))
        );
        let (cold, warm) = (median(&samples.cold_supply), median(&samples.warm_supply));
        self.row(
            format!("1. warm restage / cold stage, supply phase ({name})"),
            secs(warm) / secs(cold),
            "",
            Goal::AtMost(0.10),
        )
        .detail = format!("warm {} / cold {}", ms(warm), ms(cold));

        // A restore writes new files (nothing written into the environment later may reach
        // the cache), so its physical limit is a full copy; links are beside it.
        let (supply, cp_al, cp_a) = (
            median(&samples.supply_wall),
            median(&samples.cp_al),
            median(&samples.cp_a),
        );
        self.row(
            format!("2. warm `bin/supply` / `cp -a` of the env ({name})"),
            secs(supply) / secs(cp_a),
            "",
            Goal::AtMost(1.5),
        )
        .detail = format!(
            "supply {} / cp -a {} (cp -al {})",
            ms(supply),
            ms(cp_a),
            ms(cp_al)
        );
        let restore = median(&samples.supply_restore);
        self.row(
            format!("2. restore step alone / `cp -a` ({name})"),
            secs(restore) / secs(cp_a),
            "",
            Goal::AtMost(1.5),
        )
        .detail = format!("restore {} / cp -a {}", ms(restore), ms(cp_a));

        let (ours, direct, peer) = (
            median(&samples.launch_ours),
            median(&samples.python_direct),
            median(&samples.launch_peer),
        );
        let overhead = (secs(ours) - secs(direct)) * 1000.0;
        self.start_overhead.push((level, overhead));
        self.row(
            format!("3. start overhead over plain python ({name})"),
            overhead,
            "ms",
            Goal::AtMost(20.0),
        )
        .detail = format!(
            "launcher to first output {} - python alone {}; whole `launch` incl. unpack {}",
            ms(ours),
            ms(direct),
            ms(median(&samples.launch_total))
        );
        self.row(
            format!("3. peer: python-buildpack's start-time grep|sed ({name})"),
            (secs(peer) - secs(direct)) * 1000.0,
            "ms",
            Goal::None,
        )
        .detail = format!(
            "launcher to first output {} - python alone {}",
            ms(peer),
            ms(direct)
        );
        if let [(_, small), (_, large)] = self.start_overhead[..] {
            self.row(
                "3. start overhead, large - small (flat in env size)",
                large - small,
                "ms",
                Goal::AtMost(5.0),
            )
            .detail = format!("large {large:.1} ms - small {small:.1} ms");
        }

        #[allow(clippy::cast_precision_loss)]
        let ratio = sizes.added as f64 / sizes.environment as f64;
        self.row(
            format!("5. droplet bytes added / env size on disk ({name})"),
            ratio,
            "",
            Goal::AtMost(1.01),
        )
        .detail = format!(
            "{} in deps/ and profile.d/ / env {} in {} files; tar headers add {}; droplet.tgz {}",
            mib(sizes.added),
            mib(sizes.environment),
            sizes.files,
            mib(sizes.tar_overhead),
            mib(sizes.droplet)
        );
        #[allow(clippy::cast_precision_loss)]
        let ratio = sizes.cache as f64 / sizes.environment as f64;
        self.row(
            format!("5. app cache / env size on disk ({name})"),
            ratio,
            "",
            Goal::None,
        )
        .detail = format!(
            "cache {} (the environment's tar.zst and its metadata) / env {}",
            mib(sizes.cache),
            mib(sizes.environment)
        );
        self.memory.push((
            level,
            median(&samples.cold_memory),
            median(&samples.warm_memory),
        ));
    }

    fn download(
        &mut self,
        mib_count: u64,
        product: &[Duration],
        curl: &[Duration],
        curl_wall: &[Duration],
        curl_alone: &[Duration],
    ) {
        let (ours, theirs) = (median(product), median(curl));
        #[allow(clippy::cast_precision_loss)]
        let rate = |duration: Duration| mib_count as f64 / secs(duration);
        self.row(
            format!("4. download + sha256 throughput / curl | sha256sum ({mib_count} MiB)"),
            secs(theirs) / secs(ours),
            "",
            Goal::AtLeast(0.9),
        )
        .detail = format!(
            "{:.0} MiB/s ({}) / {:.0} MiB/s ({}; its wall {}); curl -o /dev/null alone {:.0} MiB/s",
            rate(ours),
            ms(ours),
            rate(theirs),
            ms(theirs),
            ms(median(curl_wall)),
            rate(median(curl_alone))
        );
    }

    fn tools(
        &mut self,
        packaging: &[Duration],
        zipping: &[Duration],
        zip_bytes: u64,
        detecting: &[Duration],
        rejecting: &[Duration],
        executable_only: &[Duration],
    ) {
        let (detect, reject) = (median(detecting), median(rejecting));
        self.row(
            "6. `bin/detect` wall time",
            secs(detect) * 1000.0,
            "ms",
            Goal::AtMost(5.0),
        )
        .detail = format!(
            "a conda app {}; not a conda app {}; the executable without the sh wrapper {} \
             (median of {})",
            ms(detect),
            ms(reject),
            ms(median(executable_only)),
            detecting.len()
        );
        let (package, zip) = (median(packaging), median(zipping));
        self.row(
            "6. `package --cached` / `zip -r` of the same files",
            secs(package) / secs(zip),
            "",
            Goal::AtMost(1.2),
        )
        .detail = format!(
            "package {} / zip -r {} ({} zip)",
            ms(package),
            ms(zip),
            mib(zip_bytes)
        );
    }

    fn memory_rows(&mut self) {
        for (level, cold, warm) in self.memory.clone() {
            #[allow(clippy::cast_precision_loss)]
            let value = cold as f64 / 1024.0;
            self.row(
                format!("7. buildpack peak memory, cold supply ({})", level.name()),
                value,
                "MiB",
                Goal::None,
            )
            .detail = format!(
                "warm supply {}; the summary's `Peak memory: ... buildpack` line \
                 (getrusage of the buildpack's process; conda has its own figure)",
                mib(warm * 1024)
            );
        }
    }

    fn table(&self) -> String {
        let mut text = String::from(
            "| figure | value | goal | verdict | absolute (medians) |\n|---|---:|---|---|---|\n",
        );
        for row in &self.rows {
            let cell = |text: &str| text.replace('|', "\\|");
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} | {} |",
                cell(&row.figure),
                row.value_text(),
                row.goal_text(),
                row.verdict(),
                cell(&row.detail)
            );
        }
        text
    }
}

// ---------------------------------------------------------------------------------------------
// The machine and the document.

struct Machine {
    cpus: usize,
    cpu_model: String,
    memory: String,
    kernel: String,
    tmp_filesystem: String,
    load_before: String,
}

impl Machine {
    fn read() -> Self {
        let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|line| line.strip_prefix("model name"))
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default();
        let memory = fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|line| line.strip_prefix("MemTotal:"))
            .and_then(|rest| rest.trim().trim_end_matches(" kB").parse::<u64>().ok())
            .map(|kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
            .unwrap_or_default();
        // The mount holding the temporary directory: the longest mount point above it.
        let tmp = std::env::temp_dir();
        let tmp_filesystem = fs::read_to_string("/proc/self/mounts")
            .unwrap_or_default()
            .lines()
            .filter_map(|line| {
                let mut fields = line.split(' ');
                let (device, mount_point, kind) = (fields.next()?, fields.next()?, fields.next()?);
                tmp.starts_with(mount_point)
                    .then(|| (mount_point.len(), format!("{kind} ({device})")))
            })
            .max()
            .map(|(_, kind)| kind)
            .unwrap_or_default();
        Self {
            cpus: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            cpu_model,
            memory,
            kernel: fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_string(),
            tmp_filesystem,
            load_before: fs::read_to_string("/proc/loadavg").unwrap_or_default(),
        }
    }
}

const BEGIN: &str = "<!-- BEGIN GENERATED by benches/staging.rs: do not edit by hand -->";
const END: &str = "<!-- END GENERATED -->";

fn render(
    config: &Config,
    machine: &Machine,
    command: &str,
    table: &str,
    report: &Report,
    elapsed: Duration,
    load_after: &str,
) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "{BEGIN}");
    let _ = writeln!(
        text,
        "Latest figures, from `{command}` ({} mode, {} runs per figure unless noted; took {:.0} s).\n",
        if config.quick { "quick" } else { "full" },
        config.runs,
        elapsed.as_secs_f64()
    );
    let _ = writeln!(
        text,
        "Machine: {} CPUs ({}), {} memory, Linux {}, /tmp on {}; load average {} before, {} after \
         (other work on the machine shows here).\n",
        machine.cpus,
        machine.cpu_model,
        machine.memory,
        machine.kernel,
        machine.tmp_filesystem,
        machine.load_before.split_whitespace().next().unwrap_or("?"),
        load_after.split_whitespace().next().unwrap_or("?"),
    );
    text.push_str(table);
    text.push('\n');
    for note in &report.notes {
        let _ = writeln!(text, "- {note}");
    }
    let _ = writeln!(text, "{END}");
    text
}

/// Replaces the generated block of `path` (or creates the file with it), keeping the
/// hand-written notes around it.
fn write_generated(path: &Path, generated: &str) {
    let existing = fs::read_to_string(path).unwrap_or_default();
    let text = match (existing.find(BEGIN), existing.find(END)) {
        (Some(start), Some(end)) if end > start => {
            let rest = existing[end + END.len()..].trim_start_matches('\n');
            format!("{}{generated}\n{rest}", &existing[..start])
        }
        _ if existing.is_empty() => format!("# Benchmarks\n\n{generated}"),
        _ => format!("{existing}\n{generated}"),
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, text).unwrap();
}
