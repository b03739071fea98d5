//! The push benchmark (issue 13): what a `cf push` costs on Cloud Foundry's real builder,
//! Diego's cache round trip included (the builder gzips the droplet and the whole cache dir;
//! `stage` ships the cache back as a tgz before the next push), with real conda 26.7.1 and
//! the numpy + scipy + pandas + scikit-learn + flask app. Side by side in one run:
//!
//! - this buildpack (the cached zip): a cold push, a warm push (a code change), and a push
//!   that adds one package to environment.yml;
//! - python-buildpack's method, as a stand-in buildpack doing what its conda path does (the
//!   installer into the deps dir, `conda env update -n dep_env`, the `envs` folder copied
//!   into the cache and moved back and `sed`-relocated on the next push), with the same
//!   installer and channel;
//! - the floor: a buildpack that only copies the finished environment into the deps dir and
//!   keeps no cache, so the builder packs the same droplet and nothing else happens.
//!
//! It prints each time, the cache's bytes after a push against the environment's bytes, and
//! the ratios the issue sets goals for. Then the same app at conda-forge's size (issue 21): a
//! channel of conda-forge's shape and `.conda` format (~445k records), each push in a 1 GiB
//! memory cgroup as Cloud Foundry stages by default: this buildpack's cold and changed pushes
//! against the same pushes on the 21-package `.conda` channel, and python-buildpack's method
//! (the installer's own solver) on the big channel. Needs `../shared/real`.
//!
//! `cargo bench --bench push` (or `ci/benchmark --push`; `cargo bench --bench push --
//! --conda-forge-size` for the conda-forge-sized comparison alone). `cargo test --all-targets` builds
//! it and runs it without `--bench`: it then returns at once. `-- --locked` pushes the same app
//! cold from environment.yml and from a pixi.lock of the same environment (issue 22).

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{median, print_goal, summary_duration, summary_time, tree_bytes};
use support::real_conda::{self, Miniconda};
use support::{Packaging, Server, StageOptions, Staging, package, scratch, stage};

/// The one package the third push adds: in the channel, not yet in the environment.
const ADDED: &str = "cloudpickle";

/// python-buildpack's conda path (`src/python/conda/conda.go`), for the same installer.
const PYTHON_BUILDPACK_SUPPLY: &str = r#"#!/usr/bin/env bash
set -euo pipefail
build=$1 cache=$2 deps=$3 idx=$4
buildpack=$(cd "$(dirname "$0")/.." && pwd)
home="$deps/$idx/conda"
echo "-----> Supplying conda"
bash "$buildpack/installer.sh" -b -p "$home" >/dev/null
if [ -d "$cache/envs" ]; then
  echo "-----> Restoring conda cache"
  old=$(cat "$cache/conda_prefix")
  mv "$cache/envs" "$home/envs"
  grep -rlI "$old" "$home/envs" | xargs -r sed -i "s|$old|$home|g"
fi
echo "-----> Installing conda environment from environment.yml"
"$home/bin/conda" env update --quiet -n dep_env -f "$build/environment.yml"
"$home/bin/conda" clean -pt -y >/dev/null
echo "-----> Saving conda cache"
rm -rf "$cache/envs"
cp -a "$home/envs" "$cache/envs"
echo "$home" > "$cache/conda_prefix"
"#;

/// Copies the finished environment into place: the least any buildpack can do.
const FLOOR_SUPPLY: &str = r#"#!/usr/bin/env bash
set -euo pipefail
mkdir -p "$3/$4"
cp -a "$FLOOR_ENVIRONMENT" "$3/$4/conda-env"
"#;

fn main() {
    let Some(world) = common::real_platform_world() else {
        return;
    };
    let dir = scratch();
    // `-- --locked`: only the lockfile comparison (issue 22).
    if std::env::args().any(|arg| arg == "--locked") {
        locked_against_environment_yml(dir.path());
        return;
    }
    // `-- --conda-forge-size`: only the conda-forge-sized comparison.
    if std::env::args().any(|arg| arg == "--conda-forge-size") {
        conda_forge_size(dir.path(), &peer_supply_zip(dir.path(), world));
        return;
    }
    let server = Server::start(world);
    let ours = package(
        &server,
        &dir.path().join("ours"),
        &Packaging {
            cached: true,
            ..real_conda::packaging(&server, dir.path(), Miniconda::Plain)
        },
    );
    let app = real_conda::pydata_app(dir.path());
    fs::write(app.join("app.py"), "print('hello')\n").unwrap();

    let visible = support::container_visible_dir();
    let peer = stand_in(
        dir.path(),
        "python-buildpack-method",
        PYTHON_BUILDPACK_SUPPLY,
        Some(&world.join("installers").join(real_conda::MINIFORGE)),
    );
    let floor = stand_in(dir.path(), "floor", FLOOR_SUPPLY, None);

    let push = |name: &str, zip: &Path, cache: &Path, env: &[(&str, String)]| {
        let mut options = StageOptions::with_channels(&server).cache(cache);
        for (key, value) in env {
            options = options.env(key, value);
        }
        let started = Instant::now();
        let staging = stage(&app, &[zip], &options, &dir.path().join(name));
        let elapsed = started.elapsed();
        staging.assert_success();
        (elapsed, staging)
    };
    let ours_cache = dir.path().join("ours-cache");
    let peer_cache = dir.path().join("peer-cache");

    eprintln!("cold pushes...");
    let (ours_cold, ours_cold_staging) = push("ours-cold", &ours, &ours_cache, &[]);
    let (peer_cold, _) = push("peer-cold", &peer, &peer_cache, &[]);
    let ours_cache_bytes = tree_bytes(&ours_cache);
    let peer_cache_bytes = tree_bytes(&peer_cache);
    let environment_bytes = environment_bytes(&ours_cold_staging);

    // The floor packs the very environment this buildpack made.
    let floor_env = visible.path().join("floor-env");
    unpack_environment(&ours_cold_staging.droplet(), &floor_env);
    let floor_cache = dir.path().join("floor-cache");

    // Warm pushes and the floor are the closest figures: each is the median of three,
    // interleaved so that a busy moment of the machine falls on both.
    eprintln!("warm pushes and the floor, three of each...");
    let (mut ours_warms, mut floors, mut warm_logs) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        fs::write(app.join("app.py"), format!("print('hello {round}')\n")).unwrap();
        let (time, staging) = push(&format!("ours-warm-{round}"), &ours, &ours_cache, &[]);
        staging.assert_log_contains("Restoring the conda environment from the cache");
        ours_warms.push(time);
        warm_logs.push(summary_time(&staging.log).unwrap_or("?").to_string());
        let _ = fs::remove_dir_all(&floor_cache);
        let (time, _) = push(
            &format!("floor-{round}"),
            &floor,
            &floor_cache,
            &[("FLOOR_ENVIRONMENT", floor_env.display().to_string())],
        );
        floors.push(time);
    }
    // Sorted: the lists are printed below in that order.
    ours_warms.sort();
    floors.sort();
    let ours_warm = median(&ours_warms);
    let floor_time = median(&floors);
    let (peer_warm, _) = push("peer-warm", &peer, &peer_cache, &[]);

    eprintln!("pushes that add {ADDED}...");
    fs::write(
        app.join("environment.yml"),
        format!("{}  - {ADDED}\n", real_conda::PYDATA_ENVIRONMENT),
    )
    .unwrap();
    let (ours_changed, ours_changed_staging) = push("ours-changed", &ours, &ours_cache, &[]);
    ours_changed_staging.assert_log_contains("Updating the cached environment");
    let (peer_changed, _) = push("peer-changed", &peer, &peer_cache, &[]);

    let seconds = |duration: Duration| duration.as_secs_f64();
    let mib = |bytes: u64| bytes as f64 / 1024.0 / 1024.0;
    println!("pydata app on the real builder and real conda 26.7.1, one run:");
    println!();
    println!("| | cold push | warm push | push adding {ADDED} | cache after a push |");
    println!("|---|---|---|---|---|");
    println!(
        "| this buildpack | {:.1} s | {:.1} s | {:.1} s | {:.1} MiB |",
        seconds(ours_cold),
        seconds(ours_warm),
        seconds(ours_changed),
        mib(ours_cache_bytes)
    );
    println!(
        "| python-buildpack's method | {:.1} s | {:.1} s | {:.1} s | {:.1} MiB |",
        seconds(peer_cold),
        seconds(peer_warm),
        seconds(peer_changed),
        mib(peer_cache_bytes)
    );
    println!(
        "| the floor (same droplet, no work, no cache) | {:.1} s | {:.1} s | | 0 |",
        seconds(floor_time),
        seconds(floor_time)
    );
    println!();
    // (The peer's envs/ is hard-linked to its package cache in its droplet: not comparable.)
    println!(
        "environment: {:.1} MiB in this buildpack's droplet",
        mib(environment_bytes)
    );
    println!(
        "this buildpack's own time (its summary): cold {}; warm {}; adding {ADDED} {}",
        summary_time(&ours_cold_staging.log).unwrap_or("?"),
        warm_logs.join(" / "),
        summary_time(&ours_changed_staging.log).unwrap_or("?")
    );
    println!(
        "warm pushes {:?}, floor {:?} (medians above)",
        ours_warms
            .iter()
            .map(|d| format!("{:.1} s", d.as_secs_f64()))
            .collect::<Vec<_>>(),
        floors
            .iter()
            .map(|d| format!("{:.1} s", d.as_secs_f64()))
            .collect::<Vec<_>>()
    );
    print_goal(
        "warm push / floor",
        seconds(ours_warm) / seconds(floor_time),
        1.5,
    );
    print_goal(
        "cold push / python-buildpack's cold push",
        seconds(ours_cold) / seconds(peer_cold),
        0.9,
    );
    print_goal(
        "push adding a package / python-buildpack's",
        seconds(ours_changed) / seconds(peer_changed),
        0.7,
    );
    print_goal(
        "cache bytes / environment bytes",
        ours_cache_bytes as f64 / environment_bytes as f64,
        0.65,
    );
    // `-- --small-channel-only`: the figures above alone.
    if !std::env::args().any(|arg| arg == "--small-channel-only") {
        conda_forge_size(dir.path(), &peer_supply_zip(dir.path(), world));
    }
}

/// The pydata app pushed cold from environment.yml and from the pixi.lock real conda writes
/// of the same environment, alternately, three of each, each with an empty cache: on a channel
/// of conda-forge's size and format (what users push against), then on the same packages alone.
fn locked_against_environment_yml(into: &Path) {
    let Some(big) = real_conda::conda_forge_sized() else {
        return;
    };
    let app = real_conda::pydata_app(into);
    let locked = into.join("pydata-locked");
    fs::create_dir_all(&locked).unwrap();
    fs::copy(app.join("Procfile"), locked.join("Procfile")).unwrap();
    // The developer's lock: real conda solves the same file on the small channel (the same
    // `.conda` files) and exports it with the public channel's URLs.
    let small = big.join("small");
    {
        let server = Server::start(&small);
        let developer = real_conda::LockingDeveloper::install(
            &small.join("installers"),
            &into.join("developer"),
            &server.url(),
        );
        let prefix = into.join("developer/env");
        let environment_yml = app.join("environment.yml");
        developer.run(&[
            "env".as_ref(),
            "create".as_ref(),
            "-q".as_ref(),
            "-p".as_ref(),
            prefix.as_os_str(),
            "-f".as_ref(),
            environment_yml.as_os_str(),
        ]);
        let lock = developer.export(&prefix, "rattler-lock-v6");
        fs::write(locked.join("pixi.lock"), lock).unwrap();
    }
    println!("pydata app, cold push on the real builder and real conda 26.7.1 (median of 3):");
    println!();
    println!(
        "| channel | environment.yml (repodata, rattler solve) | pixi.lock of the same environment (no solve) | locked / environment.yml |"
    );
    println!("|---|---|---|---|");
    let mut own_times = Vec::new();
    for (label, root) in [
        (
            "conda-forge-sized (~445k records, `.conda`)",
            big.to_path_buf(),
        ),
        ("the same 21 packages alone", small.clone()),
    ] {
        let server = Server::start(&root);
        let zip = package(
            &server,
            &into.join(format!("zip-{}", own_times.len())),
            &Packaging {
                cached: true,
                ..real_conda::packaging(
                    &server,
                    &into.join(format!("m-{}", own_times.len())),
                    Miniconda::Plain,
                )
            },
        );
        let push = |name: &str, app: &Path| {
            let options =
                StageOptions::with_channels(&server).cache(&into.join(format!("{name}-cache")));
            let started = Instant::now();
            let staging = stage(app, &[&zip], &options, &into.join(name));
            let elapsed = started.elapsed();
            staging.assert_success();
            (elapsed, staging)
        };
        let (mut from_yml, mut from_lock) = (Vec::new(), Vec::new());
        for round in 0..3 {
            eprintln!("{label}: cold pushes, round {}...", round + 1);
            let tag = format!("{}-{round}", own_times.len());
            let (time, staging) = push(&format!("yml-{tag}"), &app);
            staging.assert_log_contains("Solver:");
            from_yml.push(time);
            eprintln!(
                "  environment.yml: {}",
                summary_time(&staging.log).unwrap_or("?")
            );
            let (time, staging) = push(&format!("lock-{tag}"), &locked);
            staging.assert_log_contains("from pixi.lock (environment `default`) (no solve)");
            from_lock.push(time);
            eprintln!("  pixi.lock: {}", summary_time(&staging.log).unwrap_or("?"));
            own_times.push(summary_time(&staging.log).unwrap_or("?").to_string());
        }
        let yml = median(&from_yml).as_secs_f64();
        let lock = median(&from_lock).as_secs_f64();
        println!("| {label} | {yml:.1} s | {lock:.1} s | {:.2} |", lock / yml);
    }
    println!();
    println!("goal: locked / environment.yml cold push <= 0.8 (on conda-forge's size)");
    println!("a locked push's own time: {}", own_times.join(" | "));
}

fn peer_supply_zip(into: &Path, world: &Path) -> std::path::PathBuf {
    stand_in(
        &into.join("big-peer"),
        "python-buildpack-method",
        PYTHON_BUILDPACK_SUPPLY,
        Some(&world.join("installers").join(real_conda::MINIFORGE)),
    )
}

/// One push of the conda-forge-sized comparison.
struct Measured {
    wall: Duration,
    /// The buildpack's own time, from its summary.
    own: Option<f64>,
    peak_mib: u64,
    staging: Staging,
}

/// The pydata app at conda-forge's size, each push in a 1 GiB memory cgroup.
fn conda_forge_size(into: &Path, peer: &Path) {
    let Some(big) = real_conda::conda_forge_sized() else {
        return;
    };
    let Some(cgroup) = support::memory_cgroup::MemoryCgroup::create(1024) else {
        return;
    };
    let cgroup = std::sync::Arc::new(cgroup);
    let app = real_conda::pydata_app(&into.join("big-app"));
    let push = |server: &Server, zip: &Path, cache: &Path, name: &str| {
        let mut options = StageOptions::with_channels(server).cache(cache);
        options.memory = Some("1024".into());
        options.cgroup = Some(cgroup.clone());
        let started = Instant::now();
        let staging = stage(&app, &[zip], &options, &into.join(name));
        Measured {
            wall: started.elapsed(),
            own: summary_duration(&staging.log).map(|time| time.as_secs_f64()),
            peak_mib: staging.peak_memory_kib / 1024,
            staging,
        }
    };
    let mut rows = Vec::new();
    for (label, root) in [
        ("21-package .conda channel", big.join("small")),
        ("conda-forge-sized channel", big.to_path_buf()),
    ] {
        fs::write(app.join("environment.yml"), real_conda::PYDATA_ENVIRONMENT).unwrap();
        let server = Server::start(&root);
        let zip = package(
            &server,
            &into.join(format!("zip-{}", rows.len())),
            &real_conda::packaging(
                &server,
                &into.join(format!("m-{}", rows.len())),
                Miniconda::Plain,
            ),
        );
        let cache = into.join(format!("big-cache-{}", rows.len()));
        eprintln!("{label}: cold push...");
        let cold = push(&server, &zip, &cache, &format!("big-cold-{}", rows.len()));
        cold.staging.assert_success();
        fs::write(
            app.join("environment.yml"),
            format!("{}  - {ADDED}\n", real_conda::PYDATA_ENVIRONMENT),
        )
        .unwrap();
        eprintln!("{label}: push adding {ADDED}...");
        let changed = push(
            &server,
            &zip,
            &cache,
            &format!("big-changed-{}", rows.len()),
        );
        changed
            .staging
            .assert_success()
            .assert_log_contains("Updating the cached environment");
        rows.push((label, server, cold, changed));
    }
    eprintln!("conda-forge-sized channel: python-buildpack's method...");
    fs::write(app.join("environment.yml"), real_conda::PYDATA_ENVIRONMENT).unwrap();
    let peer_cold = push(
        &rows[1].1,
        peer,
        &into.join("big-peer-cache"),
        "big-peer-cold",
    );

    let seconds = |duration: Duration| duration.as_secs_f64();
    let own = |measured: &Measured| {
        measured
            .own
            .map_or_else(|| "?".to_string(), |own| format!("{own:.1} s"))
    };
    println!();
    println!("the pydata app at conda-forge's size, each push in a 1 GiB memory cgroup, one run:");
    println!();
    println!(
        "| | cold push (buildpack's own) | push adding {ADDED} (buildpack's own) | peak memory |"
    );
    println!("|---|---|---|---|");
    for (label, _, cold, changed) in &rows {
        println!(
            "| this buildpack, {label} | {:.1} s ({}) | {:.1} s ({}) | {} MiB / {} MiB |",
            seconds(cold.wall),
            own(cold),
            seconds(changed.wall),
            own(changed),
            cold.peak_mib,
            changed.peak_mib
        );
    }
    println!(
        "| python-buildpack's method (the installer's classic solver), conda-forge-sized | {} | | {} MiB |",
        if peer_cold.staging.code == 0 {
            format!("{:.1} s", seconds(peer_cold.wall))
        } else {
            format!(
                "failed after {:.1} s (exit {}{})",
                seconds(peer_cold.wall),
                peer_cold.staging.code,
                if peer_cold.staging.log.contains("Killed") {
                    ", killed"
                } else {
                    ""
                }
            )
        },
        peer_cold.peak_mib
    );
    println!();
    let (small_cold, big_cold, big_changed) = (&rows[0].2, &rows[1].2, &rows[1].3);
    print_goal(
        "cold push, conda-forge-sized / 21-package channel",
        seconds(big_cold.wall) / seconds(small_cold.wall),
        1.5,
    );
    print_goal(
        "peak staging memory on the big channel, GiB",
        big_cold.peak_mib.max(big_changed.peak_mib) as f64 / 1024.0,
        1.0,
    );
    if let (Some(changed), Some(cold)) = (big_changed.own, big_cold.own) {
        print_goal(
            "push adding a package / cold push, big channel, buildpack's own time",
            changed / cold,
            0.6,
        );
    }
}

/// A buildpack folder with `bin/supply` (and the installer, for the peer), zipped.
fn stand_in(into: &Path, name: &str, supply: &str, installer: Option<&Path>) -> std::path::PathBuf {
    let source = into.join(format!("{name}-src"));
    fs::create_dir_all(source.join("bin")).unwrap();
    let scripts = [
        ("bin/detect", "#!/usr/bin/env bash\nexit 0\n"),
        ("bin/supply", supply),
        ("bin/finalize", "#!/usr/bin/env bash\nexit 0\n"),
        (
            "bin/release",
            "#!/usr/bin/env bash\necho '--- {default_process_types: {web: python app.py}}'\n",
        ),
    ];
    for (path, text) in scripts {
        fs::write(source.join(path), text).unwrap();
        fs::set_permissions(source.join(path), fs::Permissions::from_mode(0o755)).unwrap();
    }
    if let Some(installer) = installer {
        fs::copy(installer, source.join("installer.sh")).unwrap();
    }
    let zip = into.join(format!("{name}.zip"));
    support::zip_buildpack_dir(&source, &zip);
    zip
}

fn environment_bytes(staging: &Staging) -> u64 {
    support::droplet_bytes_under(&staging.droplet(), "deps/0/conda-env/")
}

/// Unpacks the droplet's `deps/0/conda-env` to `target`, as the floor's buildpack finds it.
fn unpack_environment(droplet: &Path, target: &Path) {
    let scratch = target.with_extension("droplet");
    fs::create_dir_all(&scratch).unwrap();
    let file = fs::File::open(droplet).unwrap();
    tar::Archive::new(flate2::read::GzDecoder::new(file))
        .unpack(&scratch)
        .unwrap();
    fs::rename(scratch.join("deps/0/conda-env"), target).unwrap();
    let _ = fs::remove_dir_all(&scratch);
    // The container's vcap must read it.
    let status = std::process::Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(target)
        .status()
        .unwrap();
    assert!(status.success());
}
