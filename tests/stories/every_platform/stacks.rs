//! Cloud Foundry's stacks: an operator on a cflinuxfs5 foundation packages the zips for it, a
//! developer pushes and restages there, an offline foundation stages a vendored app from the
//! cflinuxfs5 cached zip, and the stacks this buildpack does not (or no longer) support are
//! named as such. Runs on the model and, in `ci/test`'s real-platform lane, on Cloud Foundry's
//! real builder and launcher.

use crate::support;

use std::path::Path;
use std::process::Command;

use crate::support::{
    BINARY, Packaging, Server, StageOptions, app, assert_numpy_web_runs, fixtures, package,
    scratch, stage, stdout,
};

fn on(stack: &str, server: &Server) -> StageOptions {
    let mut options = StageOptions::with_channels(server);
    options.stack = Some(stack.into());
    options
}

fn for_stack(stack: &str, cached: bool) -> Packaging {
    Packaging {
        stack: Some(stack.into()),
        cached,
        ..Packaging::default()
    }
}

#[test]
fn a_cflinuxfs5_app_stages_restages_from_the_cache_and_runs() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(&server, dir.path(), &for_stack("cflinuxfs5", false));
    assert!(
        zip.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("conda_buildpack-cflinuxfs5-v"),
        "{}",
        zip.display()
    );
    let app = app("numpy-web", dir.path());
    let options = on("cflinuxfs5", &server).cache(&dir.path().join("cache"));

    let first = stage(&app, &[&zip], &options, &dir.path().join("first"));
    first
        .assert_success()
        .assert_clean_log()
        .assert_log_lacks("CF_STACK is not set")
        .assert_log_lacks("**WARNING**")
        .assert_log_contains("Cache: miss (no cached environment)");
    assert_numpy_web_runs(&first);

    let again = stage(&app, &[&zip], &options, &dir.path().join("again"));
    again
        .assert_success()
        .assert_log_contains("-----> Restoring the conda environment from the cache")
        .assert_log_lacks("Installing the conda environment");
    assert_numpy_web_runs(&again);
}

#[test]
fn the_cflinuxfs5_cached_zip_stages_a_vendored_app_with_the_network_cut() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let cached = package(&server, dir.path(), &for_stack("cflinuxfs5", true));
    let app = app("numpy-web", dir.path());
    let home = dir.path().join("developer");
    std::fs::create_dir_all(&home).unwrap();
    let conda = support::developer_conda(&home);
    let vendored = support::vendor_ok(&app, &conda, &server, &home, &["--stack", "cflinuxfs5"]);
    assert!(
        stdout(&vendored).contains("Vendoring for glibc 2.39 (cflinuxfs5)"),
        "{}",
        stdout(&vendored)
    );

    let offline = on("cflinuxfs5", &server).offline();
    let staging = stage(&app, &[&cached], &offline, &dir.path().join("offline"));
    staging
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("       Copy [")
        .assert_log_lacks("vendor/ holds packages chosen for");
    assert_numpy_web_runs(&staging);

    // The same vendored app on a stack it was not vendored for: said, and staged.
    let elsewhere = stage(
        &app,
        &[&package(
            &server,
            &dir.path().join("fs4"),
            &for_stack("cflinuxfs4", false),
        )],
        &on("cflinuxfs4", &server),
        &dir.path().join("fs4-out"),
    );
    elsewhere.assert_success().assert_log_contains(
        "vendor/ holds packages chosen for cflinuxfs5, and this staging is on cflinuxfs4",
    );
    assert!(
        elsewhere
            .log
            .contains("conda-buildpack vendor --stack cflinuxfs4"),
        "{}",
        elsewhere.log
    );
}

#[test]
fn a_stack_the_buildpack_does_not_support_fails_before_anything_is_downloaded() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(&server, dir.path(), &Packaging::default());
    let app = app("numpy-web", dir.path());
    let staging = stage(
        &app,
        &[&zip],
        &on("cflinuxfs9", &server),
        &dir.path().join("out"),
    );
    staging
        .assert_supply_failed()
        .assert_clean_log()
        .assert_log_contains("This buildpack does not support the stack cflinuxfs9")
        .assert_log_contains("cflinuxfs3 (deprecated), cflinuxfs4, cflinuxfs5");
    assert_eq!(server.total_requests(), 0, "something was downloaded");
}

#[test]
fn a_deprecated_stack_warns_once_and_an_unset_stack_names_the_default() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(&server, dir.path(), &Packaging::default());
    let app = app("numpy-web", dir.path());

    let old = stage(
        &app,
        &[&zip],
        &on("cflinuxfs3", &server),
        &dir.path().join("fs3"),
    );
    old.assert_success().assert_log_contains(
        "cflinuxfs3 (Ubuntu 18.04, glibc 2.27) is past its end of life since 2023-05-31",
    );
    assert_eq!(
        old.log
            .lines()
            .filter(|line| line.contains("end of life since"))
            .count(),
        1,
        "{}",
        old.log
    );
    assert_numpy_web_runs(&old);

    let local = stage(
        &app,
        &[&zip],
        &StageOptions::with_channels(&server).env("CF_STACK", ""),
        &dir.path().join("unset"),
    );
    local.assert_success().assert_log_contains(
        "       CF_STACK is not set: staging for cflinuxfs4 (Ubuntu 22.04, glibc 2.35), the default stack",
    );
}

/// An installer line that a stack's zip lacks: the message names the stacks whose zips have
/// it. Miniforge is taken off cflinuxfs3 here, as an installer needing glibc 2.28 would be.
#[test]
fn an_installer_no_entry_serves_on_this_stack_names_the_stacks_that_have_one() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(
        &server,
        dir.path(),
        &Packaging {
            edit_manifest: Some(|manifest| {
                for dependency in manifest["dependencies"].as_sequence_mut().unwrap() {
                    if dependency["name"] == "miniforge3" {
                        dependency["cf_stacks"] = vec!["cflinuxfs4", "cflinuxfs5"].into();
                    }
                }
            }),
            ..for_stack("cflinuxfs3", false)
        },
    );
    let app = app("numpy-web", dir.path());
    let staging = stage(
        &app,
        &[&zip],
        &on("cflinuxfs3", &server).env("BP_CONDA_DISTRIBUTION", "miniforge"),
        &dir.path().join("out"),
    );
    staging
        .assert_supply_failed()
        .assert_log_contains("not supported by this buildpack on cflinuxfs3")
        .assert_log_contains("on cflinuxfs4, cflinuxfs5.")
        .assert_log_contains("cf push APP -s cflinuxfs5");
    assert_eq!(server.requests_ending_with(".sh"), 0);
}

#[test]
fn package_builds_for_every_supported_stack_and_refuses_others() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let manifest = support::fixture_manifest(&server, dir.path());
    let package_for = |stack: &str| {
        Command::new(BINARY)
            .arg("package")
            .arg("--manifest")
            .arg(&manifest)
            .arg("--source")
            .arg(support::repo())
            .arg("--output")
            .arg(dir.path().join("zips"))
            .args(["--stack", stack])
            .output()
            .unwrap()
    };
    for stack in ["cflinuxfs3", "cflinuxfs4", "cflinuxfs5"] {
        let output = package_for(stack);
        assert!(
            output.status.success(),
            "{stack}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(Path::new(stdout(&output).trim()).is_file());
    }
    let unknown = package_for("cflinuxfs9");
    assert!(!unknown.status.success());
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        said.contains("`cflinuxfs9` is not a stack this buildpack supports: it supports cflinuxfs3 (deprecated), cflinuxfs4, cflinuxfs5"),
        "{said}"
    );
}
