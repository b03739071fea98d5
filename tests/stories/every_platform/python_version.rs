//! The Python major an app asks for is the one it gets, and the log says which and why: Python 2
//! apps get miniconda2 and a Python 2 environment, conflicting files are a warning, impossible
//! requests an error listing what the manifest offers, and BP_ settings choose the installer.

use crate::support;

use std::path::Path;

use crate::support::{StageOptions, launch, stdout};

/// Pushes a fixture app with `cf set-env`-style settings.
fn push(fixture: &str, settings: &[(&str, &str)]) -> support::Pushed {
    support::push(fixture, |server| {
        settings.iter().fold(
            StageOptions::with_channels(server),
            |options, (name, value)| options.env(name, value),
        )
    })
}

fn python_at_run_time(droplet: &Path) -> String {
    let run = launch(droplet, "python --version 2>&1", &[]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    stdout(&run).trim().to_string()
}

#[test]
fn python_2_from_runtime_txt_alone_gets_miniconda2_and_a_pinned_python_2() {
    let pushed = push("python2-runtime-txt", &[]);
    pushed
        .staging
        .assert_success()
        .assert_clean_log()
        .assert_log_contains(
            "-----> Using Python 2 (from runtime.txt: python-2.7.18) with miniconda2 4.7.12.1",
        )
        .assert_log_contains("Miniconda2-4.7.12.1-Linux-x86_64.sh")
        .assert_log_contains("with python==2.7.18 from runtime.txt")
        .assert_log_contains(
            "**WARNING**\u{1b}[0m miniconda2 4.7.x reached its end of life on 2020-01-01",
        );
    assert_eq!(
        python_at_run_time(&pushed.staging.droplet()),
        "Python 2.7.18"
    );
    let run = launch(&pushed.staging.droplet(), "python app.py", &[]);
    assert!(
        stdout(&run).contains("legacy app on numpy 1.16.6 six"),
        "{}",
        stdout(&run)
    );
}

#[test]
fn python_2_from_environment_yml_alone() {
    let pushed = push("python2-environment", &[]);
    pushed
        .staging
        .assert_success()
        .assert_log_contains(
            "-----> Using Python 2 (from environment.yml: python=2.7) with miniconda2 4.7.12.1",
        )
        .assert_log_lacks("from runtime.txt");
    assert!(python_at_run_time(&pushed.staging.droplet()).starts_with("Python 2.7."));
}

#[test]
fn python_3_from_environment_yml() {
    let pushed = push("python3-environment", &[]);
    pushed
        .staging
        .assert_success()
        .assert_log_contains(
            "-----> Using Python 3 (from environment.yml: python=3.9) with miniforge3 26.5.3",
        )
        .assert_log_lacks("runtime.txt");
    assert!(python_at_run_time(&pushed.staging.droplet()).starts_with("Python 3.9."));
}

#[test]
fn no_version_anywhere_means_python_3_and_the_default_installer() {
    let pushed = push("no-python-version", &[]);
    pushed
        .staging
        .assert_success()
        .assert_log_contains("-----> Using Python 3 (the default) with miniforge3 26.5.3 (the default for Python 3: conda-forge, without Anaconda's Terms of Service)");
    assert!(python_at_run_time(&pushed.staging.droplet()).starts_with("Python 3."));
}

#[test]
fn conflicting_files_warn_naming_both_and_environment_yml_wins() {
    let pushed = push("conflicting-versions", &[]);
    pushed
        .staging
        .assert_success()
        .assert_log_contains("runtime.txt asks for python-2.7.18 but environment.yml asks for `python=3.11`; using environment.yml")
        .assert_log_contains("-----> Using Python 3 (from environment.yml: python=3.11) with miniforge3 26.5.3");
    assert_eq!(
        python_at_run_time(&pushed.staging.droplet()),
        "Python 3.11.9"
    );
}

#[test]
fn an_impossible_version_fails_listing_what_the_manifest_offers() {
    let pushed = push("impossible-version", &[]);
    assert_eq!(pushed.staging.code, 223, "{}", pushed.staging.log);
    pushed
        .staging
        .assert_clean_log()
        .assert_log_contains(
            "**ERROR**\u{1b}[0m No conda installer for Python 4 (from runtime.txt: python-4.0.1)",
        )
        .assert_log_contains("DEPENDENCY MISSING IN MANIFEST:")
        .assert_log_contains("  - miniconda3-py311 25.9.1 (Python 3)")
        .assert_log_contains("  - miniconda3-py39 25.7.0 (Python 3)")
        .assert_log_contains("  - miniconda2 4.7.12.1 (Python 2)")
        .assert_log_contains("  - miniforge3 26.5.3 (Python 3)");
}

#[test]
fn miniconda_is_chosen_with_bp_conda_distribution() {
    let pushed = push(
        "python3-environment",
        &[("BP_CONDA_DISTRIBUTION", "miniconda")],
    );
    pushed
        .staging
        .assert_success()
        .assert_log_contains(
            "-----> Using Python 3 (from environment.yml: python=3.9) with miniconda3-py311 25.9.1 (BP_CONDA_DISTRIBUTION=miniconda)",
        )
        .assert_log_contains("Miniconda3-py311_25.9.1-1-Linux-x86_64.sh");
    assert!(python_at_run_time(&pushed.staging.droplet()).starts_with("Python 3.9."));
}

#[test]
fn miniforge_is_the_default_for_python_3() {
    let pushed = push("miniforge", &[]);
    pushed
        .staging
        .assert_success()
        .assert_log_contains(
            "-----> Using Python 3 (from environment.yml: python=3.12) with miniforge3 26.5.3 (the default for Python 3: conda-forge, without Anaconda's Terms of Service)",
        )
        .assert_log_contains("Miniforge3-26.5.3-0-Linux-x86_64.sh");
    assert_eq!(
        python_at_run_time(&pushed.staging.droplet()),
        "Python 3.12.5"
    );
}

#[test]
fn a_version_line_is_chosen_with_bp_conda_version() {
    let pushed = push("version-line", &[("BP_CONDA_VERSION", "4.12.x")]);
    pushed
        .staging
        .assert_success()
        .assert_log_contains(
            "-----> Using Python 3 (from environment.yml: python=3.9) with miniconda3-py39 4.12.0",
        )
        .assert_log_contains("Miniconda3-py39_4.12.0-Linux-x86_64.sh");
    assert!(python_at_run_time(&pushed.staging.droplet()).starts_with("Python 3.9."));
    let missing = push("version-line", &[("BP_CONDA_VERSION", "3.x")]);
    assert_eq!(missing.staging.code, 223);
    missing
        .staging
        .assert_log_contains("No conda installer for Python 3 (from environment.yml: python=3.9) with installer version 3.x (BP_CONDA_VERSION)");
}
