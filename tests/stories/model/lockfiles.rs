//! An app that brings a lockfile (pixi.lock, conda-lock.yml, an @EXPLICIT file) instead of
//! environment.yml: staging installs exactly the locked packages, checked against their hashes,
//! with no solve and no repodata, also offline from `vendor/`; what it cannot use is explained
//! before anything is downloaded. The stories run on the model (our builder, the conda
//! double); tests/real_conda/lockfiles.rs tells them on real conda.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::support::{
    Packaged, Packaging, Server, StageOptions, Staging, fixtures, launch, stdout,
};
use sha2::{Digest, Sha256};

const PUBLIC: &str = "https://conda.anaconda.org/conda-forge";

/// The fixture channel's packages a Python 3.11 app with click needs.
const PACKAGES: [&str; 3] = [
    "linux-64/python-3.11.9-hb53b8cb_0_cpython.conda",
    "noarch/pip-23.0.1-pyhd8ed1ab_0.conda",
    "noarch/click-8.1.3-pyhd8ed1ab_0.conda",
];

fn sha256_of(path: &Path) -> String {
    format!("{:x}", Sha256::digest(fs::read(path).unwrap()))
}

fn channel_file(package: &str) -> PathBuf {
    fixtures().dir.join("channels/conda-forge").join(package)
}

/// A pixi.lock of `packages` (fixture channel paths) with their real sha256, in the default
/// environment and an `other` one that has only osx-arm64, plus `pypi` entries
/// `(name, version, url, sha256)`.
fn pixi_lock(packages: &[&str], pypi: &[(&str, &str, String, String)]) -> String {
    let mut text = String::from(
        "version: 6\nenvironments:\n  default:\n    channels:\n    - url: https://conda.anaconda.org/conda-forge/\n    packages:\n      linux-64:\n",
    );
    for package in packages {
        text.push_str(&format!("      - conda: {PUBLIC}/{package}\n"));
    }
    for (_, _, url, _) in pypi {
        text.push_str(&format!("      - pypi: {url}\n"));
    }
    text.push_str(&format!(
        "      osx-arm64:\n      - conda: {PUBLIC}/osx-arm64/python-3.11.9-h1_0.conda\n  other:\n    channels: []\n    packages:\n      osx-arm64:\n      - conda: {PUBLIC}/osx-arm64/python-3.11.9-h1_0.conda\npackages:\n"
    ));
    for package in packages {
        text.push_str(&format!(
            "- conda: {PUBLIC}/{package}\n  sha256: {}\n",
            sha256_of(&channel_file(package))
        ));
    }
    text.push_str(&format!(
        "- conda: {PUBLIC}/osx-arm64/python-3.11.9-h1_0.conda\n  sha256: {}\n",
        "1".repeat(64)
    ));
    for (name, version, url, sha256) in pypi {
        text.push_str(&format!(
            "- pypi: {url}\n  name: {name}\n  version: '{version}'\n  sha256: {sha256}\n"
        ));
    }
    text
}

/// The app cache every push of a story shares.
fn options(world: &Packaged) -> StageOptions {
    StageOptions::with_channels(&world.server).cache(&world.dir.path().join("cache"))
}

fn conda_meta(staging: &Staging) -> Vec<String> {
    let output = launch(
        &staging.droplet(),
        "ls $DEPS_DIR/0/conda-env/conda-meta",
        &[],
    );
    let mut names: Vec<String> = stdout(&output)
        .lines()
        .filter_map(|line| line.trim().strip_suffix(".json").map(str::to_string))
        .collect();
    names.sort();
    names
}

fn expected(packages: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = packages
        .iter()
        .map(|package| {
            let file = package.rsplit('/').next().unwrap();
            file.trim_end_matches(".conda")
                .trim_end_matches(".tar.bz2")
                .to_string()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn a_pixi_lock_installs_exactly_its_packages_with_no_repodata() {
    let world = Packaged::new(&Packaging::default());
    let app = world.app(
        "pixi",
        &[
            ("pixi.lock", &pixi_lock(&PACKAGES, &[])),
            ("pixi.toml", "[workspace]\nname = \"app\"\n"),
            ("Procfile", "web: python -c 'import click'\n"),
        ],
    );
    let staging = world.stage(&app, "out", &options(&world));
    staging
        .assert_success()
        .assert_clean_log()
        .assert_log_block(&[
            "-----> Installing the conda environment",
            "       3 conda packages from pixi.lock (environment `default`) (no solve)",
            "       Channel settings, …",
            "       Downloaded 3 locked packages (…",
        ])
        .assert_log_contains("), each matching the lock's hash")
        .assert_log_lacks("Solving environment");
    assert_eq!(world.server.requests_ending_with("repodata.json"), 0);
    assert_eq!(conda_meta(&staging), expected(&PACKAGES));

    // A reordered lock, or another platform's change, is the same environment.
    let reordered = pixi_lock(&[PACKAGES[2], PACKAGES[0], PACKAGES[1]], &[])
        .replace(&"1".repeat(64), &"2".repeat(64));
    fs::write(app.join("pixi.lock"), reordered).unwrap();
    world
        .stage(&app, "out2", &options(&world))
        .assert_success()
        .assert_log_contains("Restoring the conda environment from the cache");
}

#[test]
fn a_runtime_txt_that_disagrees_with_the_lock_is_warned_about() {
    let world = Packaged::new(&Packaging::default());
    let app = world.app(
        "pixi",
        &[
            ("pixi.lock", &pixi_lock(&PACKAGES, &[])),
            ("runtime.txt", "python-3.9.x\n"),
        ],
    );
    world
        .stage(&app, "out", &options(&world))
        .assert_success()
        .assert_log_contains(
            "runtime.txt asks for python-3.9.x but pixi.lock asks for `python 3.11.9`",
        );
}

#[test]
fn what_the_lock_cannot_give_fails_before_any_download() {
    let world = Packaged::new(&Packaging::default());
    let lock = pixi_lock(&PACKAGES, &[]);
    let unknown = world.app("unknown", &[("pixi.lock", &lock)]);
    world
        .stage(
            &unknown,
            "unknown",
            &options(&world).env("BP_PIXI_ENVIRONMENT", "prod"),
        )
        .assert_supply_failed()
        .assert_clean_log()
        .assert_log_contains("pixi.lock has no environment `prod`")
        .assert_log_contains("BP_PIXI_ENVIRONMENT asks for `prod`.")
        .assert_log_contains("The lock has: default, other.");
    world
        .stage(
            &unknown,
            "mac",
            &options(&world).env("BP_PIXI_ENVIRONMENT", "other"),
        )
        .assert_supply_failed()
        .assert_log_contains("pixi.lock has no packages for linux-64")
        .assert_log_contains("locks packages for osx-arm64")
        .assert_log_contains("pixi workspace platform add linux-64");
    let v5 = world.app(
        "v5",
        &[("pixi.lock", &lock.replace("version: 6", "version: 5"))],
    );
    world
        .stage(&v5, "v5", &options(&world))
        .assert_supply_failed()
        .assert_log_contains("pixi.lock says `version: 5`; the buildpack, like conda's lockfile plugin, reads version 6.");
    let escaping = world.app(
        "escaping",
        &[(
            "conda-lock.yml",
            &format!("version: 1\nmetadata: {{platforms: [linux-64]}}\npackage:\n- {{name: x, version: '1', manager: conda, platform: linux-64, url: '{PUBLIC}/linux-64/..%2F..%2Fx-1-0.conda', hash: {{md5: {}}}}}\n", "0".repeat(32)),
        )],
    );
    world
        .stage(&escaping, "escaping", &options(&world))
        .assert_supply_failed()
        .assert_log_contains("conda-lock.yml locks a package the buildpack cannot install")
        .assert_log_contains("is not a conda package file name");
    let truncated = world.app("truncated", &[("pixi.lock", &lock[..lock.len() / 2])]);
    world
        .stage(&truncated, "truncated", &options(&world))
        .assert_supply_failed()
        .assert_clean_log()
        .assert_log_contains("pixi.lock");
    let huge = world.app("huge", &[]);
    let mut file = fs::File::create(huge.join("pixi.lock")).unwrap();
    file.write_all(lock.as_bytes()).unwrap();
    file.write_all(&vec![b'#'; 33 * 1024 * 1024]).unwrap();
    world
        .stage(&huge, "huge", &options(&world))
        .assert_supply_failed()
        .assert_log_contains("pixi.lock is too large");
    assert_eq!(
        world.server.total_requests(),
        0,
        "nothing was downloaded, not even the installer"
    );
}

#[test]
fn a_package_that_does_not_match_its_hash_fails_and_a_fixed_lock_then_stages() {
    let world = Packaged::new(&Packaging::default());
    let good = pixi_lock(&PACKAGES, &[]);
    let click = sha256_of(&channel_file(PACKAGES[2]));
    let app = world.app(
        "tampered",
        &[("pixi.lock", &good.replace(&click, &"0".repeat(64)))],
    );
    world
        .stage(&app, "bad", &options(&world))
        .assert_supply_failed()
        .assert_clean_log()
        .assert_log_contains("click-8.1.3-pyhd8ed1ab_0.conda does not match pixi.lock")
        .assert_log_contains(&format!(
            "but {}/conda-forge/noarch/click",
            world.server.url()
        ))
        .assert_log_contains(&click);
    fs::write(app.join("pixi.lock"), &good).unwrap();
    world.stage(&app, "good", &options(&world)).assert_success();
}

/// A wheel with one module, served by its own loopback index.
fn wheel(into: &Path) -> (PathBuf, String) {
    // The test server serves its root's `channels/`.
    let dir = into.join("pypi/channels");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lockedwheel-1.0-py3-none-any.whl");
    let mut writer = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    let files = [
        ("lockedwheel.py", "VALUE = 'locked'\n"),
        (
            "lockedwheel-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: lockedwheel\nVersion: 1.0\n",
        ),
        (
            "lockedwheel-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        (
            "lockedwheel-1.0.dist-info/RECORD",
            "lockedwheel.py,,\nlockedwheel-1.0.dist-info/METADATA,,\nlockedwheel-1.0.dist-info/WHEEL,,\nlockedwheel-1.0.dist-info/RECORD,,\n",
        ),
    ];
    for (name, text) in files {
        writer.start_file(name, options).unwrap();
        writer.write_all(text.as_bytes()).unwrap();
    }
    writer.finish().unwrap();
    let sha = sha256_of(&path);
    (into.join("pypi"), sha)
}

#[test]
fn a_locked_app_with_pypi_packages_is_vendored_and_stages_air_gapped() {
    if fixtures().info["skipped"].to_string().contains("pip") {
        eprintln!("this machine's python has no pip for the fixture channel; nothing to test");
        return;
    }
    let world = Packaged::new(&Packaging::cached());
    let (wheels, sha) = wheel(world.dir.path());
    let index = Server::start(&wheels);
    let url = format!("{}/lockedwheel-1.0-py3-none-any.whl", index.url());
    let lock = pixi_lock(
        &PACKAGES,
        &[("lockedwheel", "1.0", url.clone(), sha.clone())],
    );
    let app = world.app(
        "locked-pypi",
        &[
            ("pixi.lock", &lock),
            ("Procfile", "web: python -c 'import lockedwheel'\n"),
        ],
    );
    // Online: pip fetches the locked wheel itself, checking its hash.
    let online = world.stage(&app, "online", &options(&world));
    online
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("3 conda packages and 1 PyPI package from pixi.lock");
    let printed = launch(
        &online.droplet(),
        "python -c 'import lockedwheel; print(lockedwheel.VALUE)'",
        &[],
    );
    assert!(stdout(&printed).contains("locked"), "{}", stdout(&printed));

    // The developer vendors from the lock: no conda needed, exactly the locked files.
    let vendored = std::process::Command::new(env!("CARGO_BIN_EXE_conda-buildpack"))
        .arg("vendor")
        .arg(&app)
        .env("CONDA_CHANNEL_ALIAS", world.server.url())
        .env("HOME", world.dir.path())
        .output()
        .unwrap();
    assert!(
        vendored.status.success(),
        "{}",
        String::from_utf8_lossy(&vendored.stderr)
    );
    assert!(
        app.join("vendor/noarch/click-8.1.3-pyhd8ed1ab_0.conda")
            .is_file()
    );
    assert!(
        app.join("vendor/pip/lockedwheel-1.0-py3-none-any.whl")
            .is_file()
    );
    drop(index);
    let offline = StageOptions::with_channels(&world.server)
        .cache(&world.dir.path().join("offline-cache"))
        .offline();
    let staging = world.stage(&app, "offline", &offline);
    staging
        .assert_success()
        .assert_clean_log()
        .assert_log_lacks("Downloaded 3 locked packages");
    let printed = launch(
        &staging.droplet(),
        "python -c 'import lockedwheel; print(lockedwheel.VALUE)'",
        &[],
    );
    assert!(stdout(&printed).contains("locked"), "{}", stdout(&printed));

    // A tampered vendored wheel is caught by pip's hash check.
    let tampered = pixi_lock(&PACKAGES, &[("lockedwheel", "1.0", url, "0".repeat(64))]);
    fs::write(app.join("pixi.lock"), tampered).unwrap();
    world
        .stage(&app, "tampered", &offline)
        .assert_supply_failed()
        .assert_log_contains("Staging failed installing the locked PyPI packages")
        .assert_log_contains("HASHES");
}

#[test]
fn a_changed_lock_removes_what_it_dropped() {
    let world = Packaged::new(&Packaging::default());
    let app = world.app("changing", &[("pixi.lock", &pixi_lock(&PACKAGES, &[]))]);
    world
        .stage(&app, "first", &options(&world))
        .assert_success();
    fs::write(app.join("pixi.lock"), pixi_lock(&PACKAGES[..2], &[])).unwrap();
    let updated = world.stage(&app, "second", &options(&world));
    updated
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("Updating by the difference: 0 conda packages added or changed, 1 removed (click), 2 unchanged");
    assert_eq!(conda_meta(&updated), expected(&PACKAGES[..2]));
}

#[test]
fn pypi_extras_in_environment_yml_are_left_to_conda() {
    let world = Packaged::new(&Packaging::default());
    let app = world.app(
        "extras",
        &[(
            "environment.yml",
            "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - click[colors]>=8\n",
        )],
    );
    world
        .stage(&app, "out", &options(&world))
        .assert_success()
        .assert_log_lacks("conda cannot read");
}

#[test]
fn every_python_3_installer_line_installs_a_lock_even_without_conda_s_lockfile_plugin() {
    let world = Packaged::new(&Packaging::default());
    let app = world.app("lines", &[("pixi.lock", &pixi_lock(&PACKAGES, &[]))]);
    for (distribution, version) in [
        ("miniforge", "24.7.1"),
        ("miniconda", "25.9.1"),
        ("miniconda", "4.12.0"),
        ("miniconda", "4.7.12.1"),
    ] {
        let options = options(&world)
            .cache(&world.dir.path().join(format!("cache-{version}")))
            .env("BP_CONDA_DISTRIBUTION", distribution)
            .env("BP_CONDA_VERSION", version);
        let staging = world.stage(&app, &format!("out-{version}"), &options);
        staging
            .assert_success()
            .assert_log_contains(&format!(" {version} "))
            .assert_log_contains("(no solve)");
        assert_eq!(
            conda_meta(&staging),
            expected(&PACKAGES),
            "{distribution} {version}"
        );
    }
    assert_eq!(world.server.requests_ending_with("repodata.json"), 0);
}
