//! A data scientist pushes a conda app: the buildpack is packaged with its own `package`
//! command, staged through the zip with `stage` exactly as Cloud Foundry's builder would, and
//! the droplet is started with `launch` at /home/vcap, far from where it was staged.

use crate::support;

use std::fs;

use crate::support::{
    Packaging, Server, StageOptions, app, droplet_entries, droplet_file, fixtures, launch, package,
    scratch, stage, stdout,
};

#[test]
fn a_numpy_app_stages_and_runs_from_its_conda_environment() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(&server, dir.path(), &Packaging::default());
    assert!(
        zip.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("conda_buildpack-v")
    );
    let app = app("numpy-web", dir.path());

    let staging = stage(
        &app,
        &[&zip],
        &StageOptions::with_channels(&server),
        &dir.path().join("out"),
    );
    staging
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("-----> Conda Buildpack version")
        .assert_log_contains(
            "-----> Using Python 3 (from environment.yml: python=3.11) with miniforge3 26.5.3",
        )
        .assert_log_contains("-----> Installing miniforge3 26.5.3")
        .assert_log_contains(&format!(
            "       Download [{}/installers/Miniforge3-26.5.3-0-Linux-x86_64.sh]",
            server.url()
        ))
        .assert_log_contains("-----> Installing the conda environment")
        .assert_log_contains("Relocated to /home/vcap/deps/0/conda-env")
        .assert_log_contains("-----> Summary")
        .assert_log_contains("Cache: miss (no cached environment)");

    // The droplet has CF's layout, the environment and no package tarballs or installer.
    let droplet = staging.droplet();
    let entries = droplet_entries(&droplet);
    for wanted in [
        "app/app.py",
        "deps/0/config.yml",
        "deps/0/conda-env/conda-meta/history",
        "staging_info.yml",
    ] {
        assert!(
            entries.iter().any(|entry| entry == wanted),
            "droplet lacks {wanted}"
        );
    }
    assert!(
        entries.iter().any(|entry| entry.starts_with("profile.d/")),
        "no profile.d scripts"
    );
    for entry in &entries {
        assert!(
            !(entry.ends_with(".tar.bz2")
                || entry.ends_with(".conda")
                || entry.contains("Miniconda3-")),
            "the droplet carries {entry}"
        );
        assert!(
            !entry.contains("/pkgs/"),
            "the droplet carries conda's package cache: {entry}"
        );
    }
    let staging_info: serde_json::Value =
        serde_json::from_slice(&droplet_file(&droplet, "staging_info.yml").unwrap()).unwrap();
    assert_eq!(staging_info["start_command"], "python app.py");
    let config: serde_yaml_ng::Value =
        serde_yaml_ng::from_slice(&droplet_file(&droplet, "deps/0/config.yml").unwrap()).unwrap();
    assert_eq!(config["name"], "conda");
    assert_eq!(config["config"]["python_version"], "3.11.9");

    // Started at /home/vcap: the app's imports come from the relocated environment, whose
    // text and binary prefixes (checked by the fixture numpy at import) name /home/vcap.
    let run = launch(&droplet, "python app.py --once", &[]);
    let output = stdout(&run);
    assert!(
        run.status.success(),
        "app failed: {output}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(output.contains("numpy 1.26.4 mean 2.5"), "{output}");
    assert!(output.contains("pandas"), "{output}");
    assert!(
        output.contains("greeting hello from the conda environment"),
        "{output}"
    );
    assert!(
        output.contains("numpy from /home/vcap/deps/0/conda-env/lib/python3.11/site-packages"),
        "{output}"
    );
    // An entry-point script: its shebang was rewritten to the run-time python.
    let f2py = launch(
        &droplet,
        "f2py --version && head -1 \"$(command -v f2py)\"",
        &[],
    );
    let f2py_output = stdout(&f2py);
    assert!(
        f2py.status.success(),
        "{f2py_output}{}",
        String::from_utf8_lossy(&f2py.stderr)
    );
    assert!(
        f2py_output.contains("#!/home/vcap/deps/0/conda-env/bin/python"),
        "{f2py_output}"
    );
    let version = launch(&droplet, "python --version", &[]);
    assert_eq!(stdout(&version).trim(), "Python 3.11.9");
}

#[test]
fn an_app_without_an_environment_file_is_not_detected() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(&server, dir.path(), &Packaging::default());
    let app = app("no-conda", dir.path());
    let mut options = StageOptions::with_channels(&server);
    options.detect = true;
    let staging = stage(&app, &[&zip], &options, &dir.path().join("out"));
    assert_eq!(staging.code, 222, "{}", staging.log);
    assert!(
        staging
            .log
            .contains("None of the buildpacks detected a compatible application"),
        "{}",
        staging.log
    );

    let conda_app = support::app("numpy-web", dir.path());
    let detected = stage(&conda_app, &[&zip], &options, &dir.path().join("out2"));
    detected.assert_success();
    let staging_info: serde_json::Value =
        serde_json::from_slice(&droplet_file(&detected.droplet(), "staging_info.yml").unwrap())
            .unwrap();
    assert!(
        staging_info["detected_buildpack"]
            .as_str()
            .unwrap_or("")
            .starts_with("conda"),
        "{staging_info}"
    );
}

#[test]
fn an_unsolvable_environment_fails_supply_with_condas_own_words() {
    // conda 26 (the default Miniforge's, with the rattler solver it picks) reports a version no
    // channel has as PackagesNotFoundInChannelsError, and the failure names the solver.
    let support::Pushed {
        staging,
        dir,
        server,
        zip,
        app,
    } = support::push("unsolvable", StageOptions::with_channels);
    assert_eq!(staging.code, 223, "{}", staging.log);
    staging
        .assert_clean_log()
        .assert_log_contains("**ERROR**\u{1b}[0m conda cannot find some of the app's packages")
        .assert_log_contains("       Solver: rattler (the fastest this conda offers: rattler, libmamba, classic; set CONDA_SOLVER to choose)")
        .assert_log_contains("failed (exit code 1) with the rattler solver.")
        .assert_log_contains("PackagesNotFoundInChannelsError: The following packages are not available from current channels:")
        .assert_log_contains("  - numpy=99")
        .assert_log_contains("Check the package names and the channels in environment.yml");
    assert_eq!(
        staging
            .log
            .matches("PackagesNotFoundInChannelsError")
            .count(),
        1,
        "conda's error appears once:\n{}",
        staging.log
    );
    assert!(
        !staging.droplet().exists(),
        "a failed staging leaves no droplet"
    );
    // conda 24.7 (libmamba) says PackagesNotFoundError.
    let options = StageOptions::with_channels(&server).env("BP_CONDA_VERSION", "24.7.1");
    let older = stage(&app, &[&zip], &options, &dir.path().join("out-24"));
    assert_eq!(older.code, 223, "{}", older.log);
    older
        .assert_log_contains("Solver: libmamba (the fastest this conda offers: libmamba, classic;")
        .assert_log_contains("PackagesNotFoundError: The following packages are not available from current channels:");
    // conda 4.12's classic solver says ResolvePackageNotFound for the same request.
    let options = StageOptions::with_channels(&server).env("BP_CONDA_VERSION", "4.12.x");
    let classic = stage(&app, &[&zip], &options, &dir.path().join("out-classic"));
    assert_eq!(classic.code, 223, "{}", classic.log);
    classic
        .assert_log_contains(
            "Solver: classic (the only solver miniconda3-py39 4.12.0's conda offers)",
        )
        .assert_log_contains("conda cannot satisfy the app's package versions")
        .assert_log_contains("ResolvePackageNotFound")
        .assert_log_contains("numpy=99");
}

#[test]
fn the_user_chooses_the_solver_and_one_the_installed_conda_lacks_is_refused_before_solving() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(&server, dir.path(), &Packaging::default());
    let app = app("numpy-web", dir.path());
    let chosen = stage(
        &app,
        &[&zip],
        &StageOptions::with_channels(&server).env("CONDA_SOLVER", "classic"),
        &dir.path().join("classic"),
    );
    chosen
        .assert_success()
        .assert_log_contains("       Solver: classic (CONDA_SOLVER=classic)");

    // The app's own .condarc chooses too.
    fs::write(app.join(".condarc"), "solver: classic\n").unwrap();
    let from_condarc = stage(
        &app,
        &[&zip],
        &StageOptions::with_channels(&server),
        &dir.path().join("condarc"),
    );
    from_condarc
        .assert_success()
        .assert_log_contains("       Solver: classic (solver: classic in the app's .condarc)");
    fs::remove_file(app.join(".condarc")).unwrap();

    // Miniforge 24.7's conda has no rattler solver.
    let refused = stage(
        &app,
        &[&zip],
        &StageOptions::with_channels(&server)
            .env("BP_CONDA_VERSION", "24.7.1")
            .env("CONDA_SOLVER", "rattler"),
        &dir.path().join("refused"),
    );
    refused
        .assert_supply_failed()
        .assert_clean_log()
        .assert_log_contains("The conda of miniforge3 24.7.1 has no rattler solver")
        .assert_log_contains("CONDA_SOLVER asks for the rattler solver; the installed conda offers libmamba, classic.")
        .assert_log_contains("cf unset-env APP CONDA_SOLVER")
        .assert_log_lacks("Solving environment");
}

#[test]
fn without_a_procfile_release_is_valid_and_the_log_says_what_is_missing() {
    let pushed = support::push("no-procfile", StageOptions::with_channels);
    let staging = &pushed.staging;
    staging
        .assert_success()
        .assert_log_contains("The app has no Procfile with a `web:` line");
    let staging_info: serde_json::Value =
        serde_json::from_slice(&droplet_file(&staging.droplet(), "staging_info.yml").unwrap())
            .unwrap();
    assert_eq!(staging_info["start_command"].as_str().unwrap_or(""), "");
    let run = launch(&staging.droplet(), "python job.py", &[]);
    assert!(stdout(&run).contains("job ran on"), "{}", stdout(&run));
}

#[test]
fn the_legacy_compile_path_runs_the_app_from_inside_its_own_directory() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(&server, dir.path(), &Packaging::default());
    // An old single-buildpack foundation: the final buildpack has no bin/finalize.
    let legacy = dir.path().join("legacy.zip");
    strip_entry(&zip, &legacy, "bin/finalize");
    let app = app("numpy-web", dir.path());
    let staging = stage(
        &app,
        &[&legacy],
        &StageOptions::with_channels(&server),
        &dir.path().join("out"),
    );
    staging
        .assert_success()
        .assert_log_contains("Relocated to /home/vcap/app/.cloudfoundry/0/conda-env");
    let entries = droplet_entries(&staging.droplet());
    assert!(
        entries
            .iter()
            .any(|e| e == "app/.cloudfoundry/0/conda-env/conda-meta/history"),
        "deps inside the app"
    );
    assert!(
        entries
            .iter()
            .any(|e| e == "app/.profile.d/0000_set-deps-dir.sh")
    );
    let run = launch(
        &staging.droplet(),
        "python app.py --once && echo \"DEPS_DIR=$DEPS_DIR\"",
        &[],
    );
    let output = stdout(&run);
    assert!(
        output.contains("numpy 1.26.4 mean 2.5"),
        "{output}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        output.contains("DEPS_DIR=/home/vcap/app/.cloudfoundry"),
        "{output}"
    );
}

/// Copies a zip without one entry, keeping every other entry's bytes and modes.
fn strip_entry(from: &std::path::Path, to: &std::path::Path, name: &str) {
    let mut archive = zip::ZipArchive::new(fs::File::open(from).unwrap()).unwrap();
    let mut writer = zip::ZipWriter::new(fs::File::create(to).unwrap());
    for index in 0..archive.len() {
        let entry = archive.by_index_raw(index).unwrap();
        if entry.name() != name {
            writer.raw_copy_file(entry).unwrap();
        }
    }
    writer.finish().unwrap();
}
