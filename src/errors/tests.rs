use super::*;
use crate::io::download::DownloadError;
use crate::staging::conda_failure::FailureKind;

#[test]
fn a_missing_package_message_names_the_packages_and_the_channels() {
    let output: Vec<String> = [
        "PackagesNotFoundInChannelsError: The following packages are not available from current channels:",
        "",
        "  - foo",
        "  - numpy=99",
        "",
        "Current channels:",
        "",
        "  - http://127.0.0.1:1/conda-forge/linux-64",
        "  - http://127.0.0.1:1/conda-forge/noarch",
        "",
        "To search for alternate channels that may provide the conda package you're",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    let error: Error = EnvironmentError::Conda {
        failure: crate::staging::conda_failure::read(&output, &[], false, false),
        command: "conda env create".into(),
        status: "exit code 1".into(),
        memory_limit_mib: None,
        vendored: false,
        channels: vec!["conda-forge from environment.yml (http://127.0.0.1:1/conda-forge)".into()],
        solver: None,
        other_solvers: vec![],
        peak_memory_kib: None,
    }
    .into();
    let message = message(&error);
    assert!(
        message
            .body
            .contains(&"Not found: foo, numpy=99".to_string()),
        "{:?}",
        message.body
    );
    // The buildpack's list, not conda's, which leaves out the file's channels.
    assert!(
        message.body.contains(
            &"Channels searched: conda-forge from environment.yml (http://127.0.0.1:1/conda-forge)"
                .to_string()
        ),
        "{:?}",
        message.body
    );
}

#[test]
fn every_message_has_a_title_a_cause_and_a_fix() {
    let samples: Vec<Error> = vec![
        AppError::InvalidYaml {
            file: "environment.yml".into(),
            reason: "bad".into(),
            line: Some(3),
            column: Some(2),
        }
        .into(),
        AppError::InvalidRuntimeTxt {
            content: "python-banana".into(),
            reason: "r".into(),
        }
        .into(),
        InstallerError::NotInManifest {
            wanted: "Python 4".into(),
            stack: "cflinuxfs4".into(),
            offered: vec!["miniconda2 4.7.12.1 (Python 2)".into()],
            elsewhere: vec!["cflinuxfs5"],
        }
        .into(),
        InstallerError::Download(DownloadError::ChecksumMismatch {
            url: "u".into(),
            algorithm: "sha256",
            expected: "a".into(),
            actual: "b".into(),
        })
        .into(),
        EnvironmentError::Conda {
            failure: crate::staging::conda_failure::CondaFailure {
                kind: FailureKind::OutOfMemory,
                ..Default::default()
            },
            command: "conda".into(),
            status: "signal: 9".into(),
            memory_limit_mib: Some(256),
            vendored: false,
            channels: vec![],
            solver: Some("classic".into()),
            other_solvers: vec!["rattler".into()],
            peak_memory_kib: Some(250_000),
        }
        .into(),
    ];
    for error in &samples {
        let message = message(error);
        assert!(!message.title.is_empty() && !message.body.is_empty() && !message.fix.is_empty());
    }
    let yaml = message(&samples[0]);
    assert_eq!(
        yaml.title,
        "environment.yml is not valid YAML at line 3, column 2"
    );
    let missing = message(&samples[2]);
    assert!(
        missing
            .body
            .contains(&"DEPENDENCY MISSING IN MANIFEST:".to_string())
    );
    let killed = message(&samples[4]);
    assert_eq!(killed.title, "conda ran out of memory while solving");
    assert!(
        killed.body[0].contains("with the classic solver"),
        "{:?}",
        killed.body
    );
    assert!(
        killed.body[1]
            .contains("Peak memory seen: 244.1 MiB, against the staging's MEMORY_LIMIT 256 MB"),
        "{:?}",
        killed.body
    );
    for fix in [
        "CONDA_SOLVER rattler",
        "cf push APP -m 2G",
        "cf scale APP -m 2G",
        "spec-file.txt",
    ] {
        assert!(killed.fix.contains(fix), "{fix} missing: {}", killed.fix);
    }
}
