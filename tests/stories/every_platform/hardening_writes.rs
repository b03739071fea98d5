//! A supply buildpack may write only inside `DEPS/IDX` and its own cache dir (Cloud Foundry
//! documents the rule but does not enforce it). Staged as a supply buildpack before another
//! final buildpack, with a `pip:` section that has conda write a requirements file next to
//! environment.yml and pip fill its caches, the conda buildpack leaves the app directory, the
//! staging user's home and TMPDIR exactly as they were.

use crate::support;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::{
    Packaging, Server, StageOptions, app, fixtures, launch, names, package, scratch, stage,
};
use sha2::{Digest, Sha256};

/// What a tree holds: every path with its kind, mode and content digest (or link target).
fn snapshot(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut found = BTreeMap::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let metadata = fs::symlink_metadata(&path).unwrap();
            let mode = metadata.permissions().mode() & 0o7777;
            let description = if metadata.file_type().is_symlink() {
                format!("link -> {}", fs::read_link(&path).unwrap().display())
            } else if metadata.is_dir() {
                pending.push(path.clone());
                format!("dir {mode:o}")
            } else {
                let digest = Sha256::digest(fs::read(&path).unwrap());
                format!("file {mode:o} {digest:x}")
            };
            found.insert(path.strip_prefix(root).unwrap().to_path_buf(), description);
        }
    }
    found
}

/// A pure-Python wheel, as pip finds it in a local `--find-links` directory.
fn write_wheel(dir: &Path) {
    fs::create_dir_all(dir).unwrap();
    let file = fs::File::create(dir.join("hello_pip-1.0-py3-none-any.whl")).unwrap();
    let mut wheel = zip::ZipWriter::new(file);
    let options = zip::write::SimpleFileOptions::default();
    for (name, text) in [
        ("hello_pip.py", "GREETING = 'hello from pip'\n"),
        (
            "hello_pip-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: hello-pip\nVersion: 1.0\n",
        ),
        (
            "hello_pip-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: hardening-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        (
            "hello_pip-1.0.dist-info/RECORD",
            "hello_pip.py,,\nhello_pip-1.0.dist-info/METADATA,,\nhello_pip-1.0.dist-info/WHEEL,,\nhello_pip-1.0.dist-info/RECORD,,\n",
        ),
    ] {
        wheel.start_file(name, options).unwrap();
        wheel.write_all(text.as_bytes()).unwrap();
    }
    wheel.finish().unwrap();
}

#[test]
fn supply_writes_nothing_outside_deps_idx_and_its_cache_dir() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let conda_zip = package(&server, dir.path(), &Packaging::default());
    // Another buildpack finalizes; it writes nothing at all, so every change is ours.
    let final_zip = support::scripted::Buildpack::new("final.zip")
        .script("finalize", "true")
        .release_web("python app.py")
        .write(dir.path());
    let app = app("numpy-web", dir.path());
    let environment = fs::read_to_string(app.join("environment.yml")).unwrap();
    fs::write(
        app.join("environment.yml"),
        environment.replace(
            "  - pandas\n",
            "  - pandas\n  - pip\n  - pip:\n    - hello-pip==1.0\n",
        ),
    )
    .unwrap();
    // Where the staging container can read it: stagings have their own /tmp.
    let visible = support::container_visible_dir();
    let wheels = visible.path().join("wheels");
    write_wheel(&wheels);
    let before = snapshot(&app);

    let tmpdir = dir.path().join("tmp");
    fs::create_dir_all(&tmpdir).unwrap();
    let cache = dir.path().join("cache");
    let mut options = StageOptions::with_channels(&server)
        .cache(&cache)
        .tmpdir(&tmpdir)
        .env("PIP_NO_INDEX", "1")
        .env("PIP_FIND_LINKS", &wheels.display().to_string());
    options.keep_staging_dir = true;
    let staging = stage(
        &app,
        &[&conda_zip, &final_zip],
        &options,
        &dir.path().join("out"),
    );
    staging.assert_success();
    let root = staging.assert_only_the_platform_wrote_home_and_tmp();
    assert_eq!(
        snapshot(&root.join("tmp/app")),
        before,
        "the app directory changed during staging"
    );
    let droplet = support::droplet_entries(&staging.droplet());
    let under = |prefix: &str| {
        droplet
            .iter()
            .filter(|entry| entry.starts_with(prefix) && entry.as_str() != prefix)
            .cloned()
            .collect::<Vec<_>>()
    };
    assert!(
        droplet.iter().any(|entry| entry == "deps/0/"),
        "{droplet:?}"
    );
    assert_eq!(
        under("deps/1/"),
        Vec::<String>::new(),
        "the conda buildpack wrote into the next buildpack's deps dir"
    );
    assert_eq!(
        under("profile.d/"),
        Vec::<String>::new(),
        "supply wrote into the profile dir"
    );
    // The cache root: the final buildpack's (empty) and ours.
    let caches = names(&cache);
    assert_eq!(caches.len(), 2, "{caches:?}");
    assert_eq!(names(&cache.join("final")), Vec::<String>::new());
    // And `stage`'s own TMPDIR holds only the kept staging root.
    assert_eq!(
        names(&tmpdir),
        [root.file_name().unwrap().to_string_lossy().into_owned()]
    );

    let run = launch(
        &staging.droplet(),
        "$DEPS_DIR/0/conda-env/bin/python -c 'import hello_pip; print(hello_pip.GREETING)'",
        &[],
    );
    assert!(
        String::from_utf8_lossy(&run.stdout).contains("hello from pip"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    fs::remove_dir_all(&root).unwrap();
}
