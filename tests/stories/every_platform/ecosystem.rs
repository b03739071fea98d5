//! The conda buildpack among others, and the sample apps a user can push: as a supply
//! buildpack before a libbuildpack-style final buildpack, as the final buildpack after a
//! supply buildpack, and each app in cf-apps/ staged and started from the fixture channel.

use crate::support;

use std::fs;
use std::path::Path;

use crate::support::{
    Packaging, Server, StageOptions, app, droplet_entries, droplet_file, fixtures, launch, package,
    sample_app, scratch, stage, standin_buildpack, stdout,
};

fn record(droplet: &Path) -> String {
    String::from_utf8(droplet_file(droplet, "app/.standin-record").expect("the stand-in's record"))
        .unwrap()
}

#[test]
fn as_a_supply_buildpack_the_environment_reaches_the_final_buildpack_and_the_app() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let conda = package(&server, dir.path(), &Packaging::default());
    let binary = standin_buildpack("binary-final", dir.path());
    let app = sample_app("multi-buildpack-binary", dir.path());
    let staging = stage(
        &app,
        &[&conda, &binary],
        &StageOptions::with_channels(&server),
        &dir.path().join("out"),
    );
    staging
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("Relocated to /home/vcap/deps/0/conda-env")
        .assert_log_contains("-----> Stand-in final buildpack")
        .assert_log_lacks("Writing the launch environment");
    // During staging: python first on PATH through DEPS/0/bin, env vars through DEPS/0/env.
    let seen = record(&staging.droplet());
    assert!(seen.contains("/deps/0/bin/python\n"), "{seen}");
    assert!(seen.contains("python_version=Python 3.11.9"), "{seen}");
    assert!(
        seen.contains("/deps/0/conda-env\n"),
        "the interpreter runs from the environment: {seen}"
    );
    assert!(
        seen.contains("report_title=numpy via the conda supply buildpack"),
        "{seen}"
    );
    assert!(
        seen.contains("conda_prefix=/") && seen.contains("/deps/0/conda-env"),
        "{seen}"
    );
    assert!(
        seen.contains("/deps/0/lib"),
        "lib/ reaches LD_LIBRARY_PATH: {seen}"
    );
    assert!(seen.contains("/deps/0/pkgconfig"), "{seen}");
    // At run time, through the final buildpack's profile.d copies.
    let entries = droplet_entries(&staging.droplet());
    assert!(
        entries.iter().any(|e| e == "profile.d/0_conda.sh"),
        "{entries:?}"
    );
    let run = launch(&staging.droplet(), "python report.py --once", &[]);
    let output = stdout(&run);
    assert!(
        output.contains("numpy via the conda supply buildpack: numpy 1.26.4, mean 5.0"),
        "{output}{}",
        String::from_utf8_lossy(&run.stderr)
    );
}

#[test]
fn as_the_final_buildpack_it_launches_every_supplied_dependency() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let conda = package(&server, dir.path(), &Packaging::default());
    let tool = standin_buildpack("tool-supply", dir.path());
    let app = app("numpy-web", dir.path());
    let staging = stage(
        &app,
        &[&tool, &conda],
        &StageOptions::with_channels(&server),
        &dir.path().join("out"),
    );
    staging
        .assert_success()
        .assert_log_contains("-----> Tool supply buildpack: supplied hello-tool")
        .assert_log_contains("Relocated to /home/vcap/deps/1/conda-env")
        .assert_log_contains("-----> Writing the launch environment");
    let entries = droplet_entries(&staging.droplet());
    for wanted in [
        "profile.d/000_multi-supply.sh",
        "profile.d/0_tool.sh",
        "profile.d/1_conda.sh",
    ] {
        assert!(
            entries.iter().any(|e| e == wanted),
            "no {wanted}: {entries:?}"
        );
    }
    let run = launch(
        &staging.droplet(),
        "hello-tool && echo \"$TOOL_GREETING\" && python app.py --once",
        &[],
    );
    let output = stdout(&run);
    assert!(
        output.contains("hello from the tool supply buildpack"),
        "{output}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(output.contains("set by the tool buildpack"), "{output}");
    assert!(
        output.contains("numpy from /home/vcap/deps/1/conda-env/lib/python3.11/site-packages"),
        "{output}"
    );
}

fn stage_sample(name: &str) -> (support::Staging, tempfile::TempDir, Server) {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let conda = package(&server, dir.path(), &Packaging::default());
    let app = sample_app(name, dir.path());
    let staging = stage(
        &app,
        &[&conda],
        &StageOptions::with_channels(&server),
        &dir.path().join("out"),
    );
    (staging, dir, server)
}

#[test]
fn every_sample_app_has_what_cf_push_needs() {
    let samples = support::repo().join("cf-apps");
    for entry in fs::read_dir(&samples).unwrap().flatten() {
        let app = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        assert!(
            app.join("environment.yml").is_file() || app.join("pixi.lock").is_file(),
            "{name}: environment.yml or a lockfile"
        );
        assert!(app.join("manifest.yml").is_file(), "{name}: manifest.yml");
        assert!(app.join("README.md").is_file(), "{name}: README.md");
        let manifest = fs::read_to_string(app.join("manifest.yml")).unwrap();
        let parsed: serde_yaml_ng::Value = serde_yaml_ng::from_str(&manifest).unwrap();
        let application = &parsed["applications"][0];
        assert_eq!(
            application["name"].as_str(),
            Some(name.as_str()),
            "{name}: manifest names the app"
        );
        let buildpacks = application["buildpacks"].as_sequence().unwrap();
        assert_eq!(buildpacks[0], "conda_buildpack", "{name}");
        let has_command = app.join("Procfile").is_file() || application["command"].is_string();
        assert!(has_command, "{name}: a Procfile or a manifest command");
    }
}

#[test]
fn the_flask_numpy_sample_serves_numpy_statistics() {
    let (staging, _dir, _server) = stage_sample("flask-numpy");
    staging
        .assert_success()
        .assert_log_contains("with miniforge3 26.5.3");
    let skipped = fixtures().info["skipped"].to_string();
    if skipped.contains("flask") {
        eprintln!(
            "the fixture channel has no Flask on this machine ({skipped}); staged but not started"
        );
        return;
    }
    let run = launch(
        &staging.droplet(),
        "python -c \"import app; print(app.app.test_client().get('/').get_data(as_text=True))\"",
        &[],
    );
    let output = stdout(&run);
    assert!(
        output.contains("\"mean\":3.0"),
        "{output}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(output.contains("\"numpy\":\"1.26.4\""), "{output}");
}

#[test]
fn the_pandas_worker_sample_processes_its_batches() {
    let (staging, _dir, _server) = stage_sample("pandas-worker");
    staging.assert_success();
    let run = launch(&staging.droplet(), "python worker.py --once", &[]);
    let output = stdout(&run);
    assert!(
        output.contains("batch 1: processed 4 records, mean latency 19.5 ms"),
        "{output}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(output.contains("batch 3: processed 4 records"), "{output}");
}

#[test]
fn the_python27_legacy_sample_runs_on_python_2() {
    let (staging, _dir, _server) = stage_sample("python27-legacy");
    staging
        .assert_success()
        .assert_log_contains(
            "-----> Using Python 2 (from runtime.txt: python-2.7.18) with miniconda2 4.7.12.1",
        )
        .assert_log_contains("reached its end of life");
    let run = launch(
        &staging.droplet(),
        "python --version 2>&1 && python app.py --once",
        &[],
    );
    let output = stdout(&run);
    assert!(
        output.contains("Python 2.7.18"),
        "{output}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        output.contains("legacy app: numpy 1.16.6, six 1.16.0, mean 4.0"),
        "{output}"
    );
}

#[test]
fn the_vendored_offline_sample_stages_with_no_network() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let cached = package(&server, dir.path(), &Packaging::cached());
    let app = sample_app("vendored-offline", dir.path());
    // The sample's pip requirement comes from a loopback index standing in for PyPI.
    let index = Server::start(&support::pip_index::build(dir.path(), (3, 11)));
    let conda = support::developer_conda(dir.path());
    let vendored = support::vendor_command(&app, &conda, &server, dir.path())
        .env("PIP_INDEX_URL", format!("{}/simple", index.url()))
        .output()
        .unwrap();
    assert!(
        vendored.status.success(),
        "{}{}",
        stdout(&vendored),
        String::from_utf8_lossy(&vendored.stderr)
    );
    assert!(
        app.join("vendor/pip/humanize-4.9.0-py3-none-any.whl")
            .is_file(),
        "{}",
        stdout(&vendored)
    );
    let options = StageOptions::with_channels(&server).offline();
    let staging = stage(&app, &[&cached], &options, &dir.path().join("out"));
    staging
        .assert_success()
        .assert_log_contains("-----> Indexing the vendored packages");
    let run = launch(&staging.droplet(), "python app.py --once", &[]);
    assert!(
        stdout(&run).contains("offline app: numpy 1.26.4, total 6, 6.0 MB"),
        "{}{}",
        stdout(&run),
        String::from_utf8_lossy(&run.stderr)
    );
}
