//! The staging log is the only window a developer has: quiet by default, everything (still
//! clean) with BP_DEBUG, a summary that says where time and bytes went, and for each way
//! staging fails a message with what failed, why, and what to do.

use std::fs;

use crate::support::{
    Fault, Packaging, Server, StageOptions, Staging, app, fixtures, package, scratch, stage,
};

fn push(fixture: &str, server: &Server, options: StageOptions) -> (Staging, tempfile::TempDir) {
    let dir = scratch();
    let zip = package(server, dir.path(), &Packaging::default());
    let app = app(fixture, dir.path());
    let staging = stage(&app, &[&zip], &options, &dir.path().join("out"));
    (staging, dir)
}

#[test]
fn the_default_log_is_short_and_ends_with_a_summary() {
    let server = Server::start(&fixtures().dir);
    let (staging, _dir) = push("numpy-web", &server, StageOptions::with_channels(&server));
    staging
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("       Solving environment: done")
        .assert_log_lacks("## Package Plan ##")
        .assert_log_lacks("Downloading and Extracting Packages")
        .assert_log_lacks("conda activate")
        .assert_log_lacks("DEBUG:")
        // The summary is the log's last word: one block, in this order.
        .assert_log_block(&[
            "-----> Summary",
            "       Time: …",
            "       Cache: miss (no cached environment); the cache now holds …",
            "       Environment: …",
            "       Slimmed: …",
            "       Largest packages: …",
            "       Peak memory: conda …",
            "-----> Writing the launch environment",
        ])
        .assert_log_contains("building the environment")
        .assert_log_contains("numpy 1.26.4 (")
        .assert_log_contains("the droplet gains")
        .assert_log_contains("; MEMORY_LIMIT 1024 MB, ");
    let lines = staging.log.lines().count();
    assert!(lines < 40, "the log has {lines} lines:\n{}", staging.log);
}

#[test]
fn bp_debug_shows_everything_conda_says_still_without_progress_residue() {
    let server = Server::start(&fixtures().dir);
    let options = StageOptions::with_channels(&server).env("BP_DEBUG", "1");
    let (staging, _dir) = push("numpy-web", &server, options);
    staging
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("\u{1b}[34;1mDEBUG:\u{1b}[0m Running ")
        .assert_log_contains(" env create -p ")
        .assert_log_contains("Downloading and Extracting Packages")
        // A bar redrawn many times with carriage returns leaves its final rendering only.
        .assert_log_contains("| ########## | 100%")
        .assert_log_lacks("|  10%")
        .assert_log_contains("# To activate this environment, use");
}

#[test]
fn a_malformed_environment_file_names_its_line_and_column_before_anything_is_downloaded() {
    let server = Server::start(&fixtures().dir);
    let (staging, _dir) = push(
        "malformed-yaml",
        &server,
        StageOptions::with_channels(&server),
    );
    assert_eq!(staging.code, 223, "{}", staging.log);
    staging
        .assert_clean_log()
        .assert_log_contains(
            "**ERROR**\u{1b}[0m environment.yml is not valid YAML at line 8, column 1",
        )
        .assert_log_contains("while parsing a flow sequence at line 6 column 12")
        .assert_log_contains("Fix environment.yml at line 8, column 1");
    assert_eq!(
        server.total_requests(),
        0,
        "nothing is fetched for a broken app"
    );
}

#[test]
fn a_tampered_installer_is_deleted_and_never_run() {
    let server = Server::start(&fixtures().dir);
    server.fault("Miniforge3-26.5.3-0-Linux-x86_64.sh", Fault::Tamper);
    let dir = scratch();
    let zip = package(&server, dir.path(), &Packaging::default());
    let app = app("numpy-web", dir.path());
    let cache = dir.path().join("cache");
    let staging = stage(
        &app,
        &[&zip],
        &StageOptions::with_channels(&server).cache(&cache),
        &dir.path().join("out"),
    );
    assert_eq!(staging.code, 223, "{}", staging.log);
    let expected = fixtures().installer("miniforge3", "26.5.3")["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    staging
        .assert_clean_log()
        .assert_log_contains("**ERROR**\u{1b}[0m A download does not match its pinned checksum")
        .assert_log_contains(&format!(
            "dependency sha256 mismatch: expected sha256 {expected}, actual sha256 "
        ))
        .assert_log_contains("was deleted and nothing was installed from it")
        .assert_log_lacks("Installing the conda environment");
    let leftovers: Vec<_> = walk(&cache)
        .into_iter()
        .filter(|path| path.contains("Miniconda"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "the tampered file was kept: {leftovers:?}"
    );
}

#[test]
fn a_missing_installer_says_the_server_answered_404() {
    let server = Server::start(&fixtures().dir);
    server.fault(
        "Miniforge3-26.5.3-0-Linux-x86_64.sh",
        Fault::Status {
            status: 404,
            times: 100,
        },
    );
    let (staging, _dir) = push("numpy-web", &server, StageOptions::with_channels(&server));
    assert_eq!(staging.code, 223, "{}", staging.log);
    staging
        .assert_log_contains("**ERROR**\u{1b}[0m A download failed with HTTP 404")
        .assert_log_contains("answered HTTP 404");
    assert_eq!(
        server.requests_ending_with(".sh"),
        1,
        "a 404 is not retried"
    );
}

#[test]
fn a_solver_killed_for_memory_is_explained_and_was_warned_about() {
    let server = Server::start(&fixtures().dir);
    let mut options = StageOptions::with_channels(&server);
    options.memory = Some("128m".into());
    let (staging, _dir) = push("numpy-web", &server, options);
    assert_eq!(staging.code, 223, "{}", staging.log);
    let warning = staging
        .log
        .find("This app stages with 128 MB of memory (MEMORY_LIMIT)")
        .expect("a warning before the solve");
    let error = staging.log.find("**ERROR**").expect("an error");
    assert!(warning < error, "the warning comes first");
    staging
        .assert_clean_log()
        .assert_log_contains("conda ran out of memory while solving")
        .assert_log_contains("signal 9 (SIGKILL)) with the rattler solver.")
        .assert_log_contains("against the staging's MEMORY_LIMIT 128 MB")
        .assert_log_contains("`cf push APP -m 2G`, or `cf scale APP -m 2G` then `cf restage APP`")
        .assert_log_contains("spec-file.txt");
}

fn walk(root: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.path().is_dir() {
                pending.push(entry.path());
            }
            found.push(entry.path().display().to_string());
        }
    }
    found
}
