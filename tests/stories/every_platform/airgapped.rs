//! A foundation with no route to the internet: the operator uploads the cached zip, the
//! developer vendors the app's packages with `conda-buildpack vendor`, and staging runs in a
//! network namespace where the fixture server is out of reach.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{
    Packaging, Server, StageOptions, app, developer_conda, fixtures, launch, package, scratch,
    stage, stdout, vendor,
};

fn offline(server: &Server) -> StageOptions {
    StageOptions::with_channels(server).offline()
}

fn vendored_packages(app: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![app.join("vendor")];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap().flatten() {
            if entry.path().is_dir() {
                pending.push(entry.path());
            } else {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn a_vendored_app_stages_with_no_network_from_the_cached_zip() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(&server, dir.path(), &Packaging::cached());
    let app = app("numpy-web", dir.path());
    support::vendor_as_developer(&app, &server, dir.path());
    let packages = vendored_packages(&app);
    assert!(
        packages
            .iter()
            .any(|p| p.to_string_lossy().contains("/numpy-1.26.4")),
        "{packages:?}"
    );
    assert!(
        packages
            .iter()
            .any(|p| p.to_string_lossy().contains("/python-3.11")),
        "{packages:?}"
    );

    let requests_before = server.total_requests();
    let staging = stage(&app, &[&zip], &offline(&server), &dir.path().join("out"));
    staging
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("       Copy [")
        .assert_log_contains("-----> Indexing the vendored packages")
        .assert_log_lacks("Download [");
    assert_eq!(
        server.total_requests(),
        requests_before,
        "staging reached the network"
    );
    support::assert_numpy_web_runs(&staging);

    // A package missing from vendor/ fails, naming it.
    let pandas = packages
        .iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("pandas-")
        })
        .unwrap();
    fs::remove_file(pandas).unwrap();
    let missing = stage(
        &app,
        &[&zip],
        &offline(&server),
        &dir.path().join("out-missing"),
    );
    assert_eq!(missing.code, 223, "{}", missing.log);
    missing
        .assert_log_contains("A package the app needs is not in vendor/")
        .assert_log_contains("pandas")
        .assert_log_contains("conda-buildpack vendor");
}

#[test]
fn an_explicit_spec_installs_vendored_packages_without_a_solve() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(&server, dir.path(), &Packaging::cached());
    let app = app("numpy-web", dir.path());
    let conda = developer_conda(dir.path());
    // The developer writes the spec from an environment they built.
    let prefix = dir.path().join("dev-env");
    let created = Command::new(&conda)
        .args(["env", "create", "-q", "-p"])
        .arg(&prefix)
        .arg("-f")
        .arg(app.join("environment.yml"))
        .env("CONDA_CHANNEL_ALIAS", server.url())
        .env("CONDA_DEFAULT_CHANNELS", format!("{}/main", server.url()))
        .env("HOME", dir.path())
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let listing = Command::new(&conda)
        .args(["list", "--explicit", "--md5", "-p"])
        .arg(&prefix)
        .env("HOME", dir.path())
        .output()
        .unwrap();
    fs::write(app.join("spec-file.txt"), &listing.stdout).unwrap();

    let vendored = vendor(&app, &conda, &server, dir.path());
    assert!(
        vendored.status.success(),
        "{}",
        String::from_utf8_lossy(&vendored.stderr)
    );
    let staging = stage(&app, &[&zip], &offline(&server), &dir.path().join("out"));
    staging
        .assert_success()
        .assert_log_contains("packages from spec-file.txt (no solve)")
        .assert_log_lacks("Solving environment");
    let run = launch(&staging.droplet(), "python app.py --once", &[]);
    assert!(stdout(&run).contains("numpy 1.26.4"), "{}", stdout(&run));

    let numpy = vendored_packages(&app)
        .into_iter()
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("numpy-")
        })
        .unwrap();
    let name = numpy.file_name().unwrap().to_string_lossy().into_owned();
    fs::remove_file(&numpy).unwrap();
    let missing = stage(
        &app,
        &[&zip],
        &offline(&server),
        &dir.path().join("out-missing"),
    );
    assert_eq!(missing.code, 223);
    missing.assert_log_contains(&format!("{name} is not in vendor/"));
}

#[test]
fn without_network_the_uncached_zip_fails_fast_and_says_what_to_do() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(&server, dir.path(), &Packaging::default());
    let app = app("numpy-web", dir.path());
    let started = Instant::now();
    let staging = stage(&app, &[&zip], &offline(&server), &dir.path().join("out"));
    assert_eq!(staging.code, 223, "{}", staging.log);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "staging hung for {:?}",
        started.elapsed()
    );
    staging
        .assert_clean_log()
        .assert_log_contains("The network is unreachable from staging")
        .assert_log_contains(&format!(
            "Could not reach {}/installers/Miniforge3-26.5.3-0-Linux-x86_64.sh",
            server.url()
        ))
        .assert_log_contains("cached conda buildpack")
        .assert_log_contains("conda-buildpack vendor");
    assert_eq!(server.total_requests(), 0);

    // The cached zip gets further, to conda's channels, and fails as fast.
    let cached = package(&server, &dir.path().join("cached"), &Packaging::cached());
    let started = Instant::now();
    let staging = stage(
        &app,
        &[&cached],
        &offline(&server),
        &dir.path().join("out-cached"),
    );
    assert_eq!(staging.code, 223, "{}", staging.log);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "staging hung for {:?}",
        started.elapsed()
    );
    staging
        .assert_log_contains("conda cannot reach the app's channels")
        .assert_log_contains("conda-buildpack vendor");
}

#[test]
fn a_hostile_vendored_archive_is_refused_naming_the_file() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(&server, dir.path(), &Packaging::cached());
    let app = app("numpy-web", dir.path());
    fs::create_dir_all(app.join("vendor/linux-64")).unwrap();
    // A tar.bz2 whose entry climbs out of the package.
    let mut builder = tar::Builder::new(bzip2::write::BzEncoder::new(
        Vec::new(),
        bzip2::Compression::fast(),
    ));
    let index = br#"{"name": "evil", "version": "1.0", "build": "0", "build_number": 0, "depends": [], "subdir": "linux-64"}"#;
    let mut header = tar::Header::new_gnu();
    header.set_path("info/index.json").unwrap();
    header.set_size(index.len() as u64);
    header.set_cksum();
    builder.append(&header, &index[..]).unwrap();
    let mut escape = tar::Header::new_gnu();
    let name = b"../../../../tmp/pwned";
    escape.as_old_mut().name[..name.len()].copy_from_slice(name);
    escape.set_size(4);
    escape.set_cksum();
    builder.append(&escape, &b"boom"[..]).unwrap();
    fs::write(
        app.join("vendor/linux-64/evil-1.0-0.tar.bz2"),
        builder.into_inner().unwrap().finish().unwrap(),
    )
    .unwrap();
    let staging = stage(&app, &[&zip], &offline(&server), &dir.path().join("out"));
    assert_eq!(staging.code, 223, "{}", staging.log);
    staging
        .assert_log_contains("The vendored packages cannot be used")
        .assert_log_contains(
            "evil-1.0-0.tar.bz2 has an entry that escapes the package: ../../../../tmp/pwned",
        );
}

/// `(major, minor)` of the fixture conda's Python: what the pip index's wheels are built for.
fn fixture_python() -> (u32, u32) {
    let output = Command::new(support::FIXTURE_PYTHON)
        .args([
            "-c",
            "import sys; print(sys.version_info[0], sys.version_info[1])",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    let mut parts = text.split_whitespace().map(|part| part.parse().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

fn pip_files(app: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(app.join("vendor/pip"))
        .map(|entries| {
            entries
                .flatten()
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn a_vendored_app_with_pip_requirements_stages_offline_and_runs() {
    if fixtures().info["skipped"].to_string().contains("pip") {
        eprintln!("this machine's python has no pip for the fixture channel; nothing to test");
        return;
    }
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(&server, dir.path(), &Packaging::cached());
    let python = fixture_python();
    let index = Server::start(&support::pip_index::build(dir.path(), python));
    let app = support::pip_index::app(
        dir.path(),
        &format!("{}/simple", index.url()),
        &format!("{}.{}", python.0, python.1),
    );

    // The developer vendors: wheels for Cloud Foundry's Linux and the environment's CPython,
    // not for this machine (whose glibc 2.36, newer than every current stack's 2.35, would take
    // the manylinux_2_36 wheel).
    let conda = developer_conda(dir.path());
    let vendored = vendor(&app, &conda, &server, dir.path());
    let said = format!(
        "{}{}",
        stdout(&vendored),
        String::from_utf8_lossy(&vendored.stderr)
    );
    assert!(vendored.status.success(), "{said}");
    let cp = format!("cp{}{}", python.0, python.1);
    assert_eq!(
        pip_files(&app),
        vec![
            format!("fastcalc-1.0-{cp}-{cp}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
            "plainsdist-1.0.tar.gz".to_string(),
            "tinydep-1.0-py3-none-any.whl".to_string(),
        ],
        "{said}"
    );
    for expected in [
        &format!(
            "Vendoring the pip requirements for Linux x86_64, CPython {}.{}",
            python.0, python.1
        ),
        &format!("from {}/files/tinydep-1.0-py3-none-any.whl", index.url()),
        "plainsdist>=1.0 has no wheel for Linux x86_64",
        "vendored its sdist plainsdist-1.0.tar.gz",
        "Vendored 3 pip files",
    ] {
        assert!(said.contains(expected), "missing {expected:?} in:\n{said}");
    }

    // Staging with the network cut: pip installs from vendor/pip alone, builds the sdist and
    // the app itself (`-e .`), and neither index nor channel hears from it.
    let requests_before = server.total_requests() + index.total_requests();
    let cached = || {
        let mut options = offline(&server);
        options.cache = Some(dir.path().join("app-cache"));
        options
    };
    // Each staging with the network cut, into its own output folder.
    let offline_push =
        |name: &str, options: &StageOptions| stage(&app, &[&zip], options, &dir.path().join(name));
    let staging = offline_push("out", &cached());
    staging
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("-----> Checking the vendored pip files")
        .assert_log_contains("3 files in vendor/pip; pip installs from them alone")
        .assert_log_contains("pip's from vendor/pip");
    assert_eq!(
        server.total_requests() + index.total_requests(),
        requests_before,
        "staging reached the network"
    );
    let run = launch(&staging.droplet(), "python app.py", &[]);
    assert!(
        stdout(&run).contains("fastcalc manylinux2014 42 | built from its sdist | 10"),
        "{}{}",
        stdout(&run),
        String::from_utf8_lossy(&run.stderr)
    );

    offline_push("out-again", &cached())
        .assert_success()
        .assert_log_contains("-----> Restoring the conda environment from the cache");

    // A requirement added after vendoring fails before conda runs, naming it and the fix.
    fs::write(
        app.join("requirements-extra.txt"),
        "plainsdist>=1.0\nmissingproj==2.0\n",
    )
    .unwrap();
    let missing = offline_push("out-missing", &offline(&server));
    assert_eq!(missing.code, 223, "{}", missing.log);
    missing
        .assert_log_contains("A pip requirement is not in vendor/pip")
        .assert_log_contains("requirements-extra.txt:2 requires `missingproj==2.0`")
        .assert_log_contains("conda-buildpack vendor APP_DIR")
        .assert_log_lacks("Installing the conda environment");

    // A VCS requirement cannot be served offline: the line is named.
    fs::write(
        app.join("requirements-extra.txt"),
        "plainsdist>=1.0\ngit+https://github.com/example/tool.git#egg=tool\n",
    )
    .unwrap();
    let vcs = offline_push("out-vcs", &offline(&server));
    assert_eq!(vcs.code, 223, "{}", vcs.log);
    vcs.assert_log_contains("A pip requirement points at the network")
        .assert_log_contains("`git+https://github.com/example/tool.git#egg=tool`");
    // A wheel that would write outside the environment is refused before pip sees it.
    let evil = app.join("vendor/pip/evil-1.0-py3-none-any.whl");
    let mut writer = zip::ZipWriter::new(fs::File::create(&evil).unwrap());
    writer
        .start_file(
            "../../../home/vcap/.profile",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
    writer.finish().unwrap();
    fs::write(app.join("requirements-extra.txt"), "plainsdist>=1.0\n").unwrap();
    let hostile = offline_push("out-evil", &offline(&server));
    assert_eq!(hostile.code, 223, "{}", hostile.log);
    hostile
        .assert_log_contains("A vendored pip file is unsafe or broken")
        .assert_log_contains("evil-1.0-py3-none-any.whl has an entry that escapes the package");
    fs::remove_file(&evil).unwrap();
    fs::write(
        app.join("requirements-extra.txt"),
        "plainsdist>=1.0\ngit+https://github.com/example/tool.git#egg=tool\n",
    )
    .unwrap();
    // ...and vendoring refuses the VCS line before it solves anything.
    let refused = vendor(&app, &conda, &server, dir.path());
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("requirements-extra.txt:2 has `git+https://github.com/example/tool.git#egg=tool`: a URL or VCS requirement cannot be vendored"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // A dependency missing from vendor/pip: pip's own failure, explained.
    fs::write(app.join("requirements-extra.txt"), "plainsdist>=1.0\n").unwrap();
    fs::remove_file(app.join("vendor/pip/tinydep-1.0-py3-none-any.whl")).unwrap();
    let transitive = offline_push("out-dep", &offline(&server));
    assert_eq!(transitive.code, 223, "{}", transitive.log);
    transitive
        .assert_log_contains("A pip requirement is not in vendor/pip")
        .assert_log_contains("it has no file for tinydep")
        .assert_log_contains("conda-buildpack vendor APP_DIR");

    // Vendoring again brings back what is needed and removes what no longer is.
    fs::write(
        app.join("requirements-extra.txt"),
        "# nothing extra any more\n",
    )
    .unwrap();
    let again = vendor(&app, &conda, &server, dir.path());
    let said = stdout(&again);
    assert!(
        again.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(
        said.contains("plainsdist-1.0.tar.gz removed: no longer needed"),
        "{said}"
    );
    assert_eq!(
        pip_files(&app),
        vec![
            format!("fastcalc-1.0-{cp}-{cp}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
            "tinydep-1.0-py3-none-any.whl".to_string(),
        ]
    );
    // What pip installs from decides the cache, as environment.yml does.
    offline_push("out-revendored", &cached())
        .assert_success()
        .assert_log_contains("-----> Updating the cached environment:")
        .assert_log_contains("the pip section's -r files removed")
        .assert_log_contains("vendor/pip changed");
}
