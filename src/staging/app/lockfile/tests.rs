use super::*;

const SHA: &str = "4468e97e962cf7f0c8b2fed944c8c59c35fc7e0556a348650a8222c7ffdf108a";
const MD5: &str = "a6199f9346b442548ec213a5b4d73677";
const FORGE: &str = "https://conda.anaconda.org/conda-forge";

/// A pixi.lock as pixi 0.5x writes it: two environments, three platforms, a PyPI package.
fn pixi_lock() -> String {
    format!(
        "version: 6
environments:
  default:
    channels:
    - url: {FORGE}/
    indexes:
    - https://pypi.org/simple
    packages:
      linux-64:
      - conda: {FORGE}/linux-64/python-3.11.7-h0_0.conda
      - conda: {FORGE}/noarch/flask-3.1.3-pyhd8ed1ab_0.conda
      - pypi: https://files.pythonhosted.org/packages/ab/cd/tinydep-1.0-py3-none-any.whl
      osx-arm64:
      - conda: {FORGE}/osx-arm64/python-3.11.7-h1_0.conda
  test:
    channels:
    - url: {FORGE}/
    packages:
      osx-arm64:
      - conda: {FORGE}/osx-arm64/python-3.11.7-h1_0.conda
packages:
- conda: {FORGE}/linux-64/python-3.11.7-h0_0.conda
  sha256: {SHA}
  md5: {MD5}
  depends:
  - libzlib >=1.3
  license: Python-2.0
- conda: {FORGE}/noarch/flask-3.1.3-pyhd8ed1ab_0.conda
  md5: {MD5}
- conda: {FORGE}/osx-arm64/python-3.11.7-h1_0.conda
  sha256: {SHA}
- pypi: https://files.pythonhosted.org/packages/ab/cd/tinydep-1.0-py3-none-any.whl
  name: tinydep
  version: '1.0'
  sha256: {SHA}
  requires_dist:
  - six
"
    )
}

fn conda_lock() -> String {
    format!(
        "version: 1
metadata:
  content_hash:
    linux-64: abc
  channels:
  - url: conda-forge
    used_env_vars: []
  platforms:
  - linux-64
  - osx-64
  sources:
  - environment.yml
package:
- name: python
  version: 3.11.7
  manager: conda
  platform: linux-64
  dependencies: {{}}
  url: {FORGE}/linux-64/python-3.11.7-h0_0.conda
  hash:
    md5: {MD5}
    sha256: {SHA}
  category: main
  optional: false
- name: python
  version: 3.11.7
  manager: conda
  platform: osx-64
  dependencies: {{}}
  url: {FORGE}/osx-64/python-3.11.7-h2_0.conda
  hash:
    md5: {MD5}
  category: main
  optional: false
- name: pytest
  version: '8.0'
  manager: conda
  platform: linux-64
  url: {FORGE}/noarch/pytest-8.0-pyhd8ed1ab_0.conda
  hash:
    md5: {MD5}
  category: dev
  optional: true
- name: tinydep
  version: '1.0'
  manager: pip
  platform: linux-64
  dependencies: {{}}
  url: https://files.pythonhosted.org/packages/ab/cd/tinydep-1.0-py3-none-any.whl
  hash:
    sha256: {SHA}
  category: main
  optional: false
"
    )
}

#[test]
fn a_pixi_lock_gives_its_default_environments_linux_packages() {
    let lock = parse("pixi.lock", Format::Pixi, &pixi_lock(), None).unwrap();
    assert_eq!(lock.environment, Some(("default".into(), false)));
    let names: Vec<&str> = lock.conda.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["python", "flask"]);
    assert_eq!(lock.conda[0].hash, Some(Hash::Sha256(SHA.into())));
    assert_eq!(lock.conda[1].hash, Some(Hash::Md5(MD5.into())));
    assert_eq!(lock.conda[1].subdir, "noarch");
    assert_eq!(lock.pypi.len(), 1);
    assert_eq!(lock.pypi[0].name, "tinydep");
    assert_eq!(lock.pypi[0].file_name(), "tinydep-1.0-py3-none-any.whl");
    assert_eq!(lock.python().unwrap().version, "3.11.7");
    assert_eq!(
        lock.describe(),
        "2 conda packages and 1 PyPI package from pixi.lock (environment `default`)"
    );
}

#[test]
fn an_unknown_pixi_environment_lists_the_ones_there_are() {
    let error = parse("pixi.lock", Format::Pixi, &pixi_lock(), Some("prod")).unwrap_err();
    assert_eq!(
        error,
        LockError::UnknownEnvironment {
            file: "pixi.lock".into(),
            wanted: "prod".into(),
            available: vec!["default".into(), "test".into()],
            from_setting: true,
        }
    );
}

#[test]
fn an_environment_without_linux_fails_naming_the_platforms_it_has() {
    let error = parse("pixi.lock", Format::Pixi, &pixi_lock(), Some("test")).unwrap_err();
    assert_eq!(
        error,
        LockError::NoLinux {
            file: "pixi.lock".into(),
            environment: Some("test".into()),
            platforms: vec!["osx-arm64".into()],
        }
    );
    let explicit = "# platform: osx-arm64\n@EXPLICIT\nhttps://x/osx-arm64/a-1-0.conda\n";
    assert!(matches!(
        parse("spec-file.txt", Format::Explicit, explicit, None),
        Err(LockError::NoLinux { .. })
    ));
    let mac_only = conda_lock().replace("platform: linux-64", "platform: osx-arm64");
    match parse("conda-lock.yml", Format::CondaLock, &mac_only, None).unwrap_err() {
        LockError::NoLinux { platforms, .. } => assert_eq!(platforms, ["osx-64", "osx-arm64"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_conda_lock_gives_the_main_linux_packages_and_pip_ones() {
    let lock = parse("conda-lock.yml", Format::CondaLock, &conda_lock(), None).unwrap();
    let names: Vec<&str> = lock.conda.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["python"], "not osx-64's, not the optional dev one");
    assert_eq!(lock.conda[0].hash, Some(Hash::Sha256(SHA.into())));
    assert_eq!(lock.pypi[0].name, "tinydep");
    assert_eq!(lock.pypi[0].sha256.as_deref(), Some(SHA));
}

#[test]
fn the_fingerprint_is_the_linux_content_alone() {
    let lock = parse("pixi.lock", Format::Pixi, &pixi_lock(), None).unwrap();
    // Another platform's package changes, the linux-64 content does not.
    let other_platform = pixi_lock().replace("h1_0", "h9_0");
    let same = parse("pixi.lock", Format::Pixi, &other_platform, None).unwrap();
    assert_eq!(lock.content(), same.content());
    let changed = pixi_lock().replace("flask-3.1.3", "flask-3.1.4");
    let changed = parse("pixi.lock", Format::Pixi, &changed, None).unwrap();
    assert_ne!(lock.content(), changed.content());
}

#[test]
fn explicit_files_read_every_fragment_conda_writes() {
    let text = format!(
        "# This file may be used to create an environment using:\n# platform: linux-64\n@EXPLICIT\n\
         {FORGE}/linux-64/a-1-0.conda#{MD5}\n{FORGE}/linux-64/b-1-0.conda#sha256:{SHA}\n\
         {FORGE}/noarch/c-1-0.tar.bz2#{SHA}\n{FORGE}/linux-64/d-1-0.conda\n"
    );
    let lock = parse("explicit.txt", Format::Explicit, &text, None).unwrap();
    let hashes: Vec<_> = lock.conda.iter().map(|p| p.hash.clone()).collect();
    assert_eq!(
        hashes,
        [
            Some(Hash::Md5(MD5.into())),
            Some(Hash::Sha256(SHA.into())),
            Some(Hash::Sha256(SHA.into())),
            None
        ]
    );
    assert!(
        parse(
            "x",
            Format::Explicit,
            "https://x/linux-64/a-1-0.conda\n",
            None
        )
        .is_err()
    );
    assert!(parse("x", Format::Explicit, "@EXPLICIT\nnumpy=1.26\n", None).is_err());
    assert!(parse("x", Format::Explicit, "@EXPLICIT\n", None).is_err());
}

#[test]
fn hostile_package_entries_are_refused() {
    for (url, why) in [
        (
            format!("{FORGE}/linux-64/..%2F..%2Fetc-1-0.conda"),
            "not a conda package file name",
        ),
        (
            format!("{FORGE}/linux-64/.hidden-1-0.conda"),
            "not a conda package file name",
        ),
        (
            format!("{FORGE}/linux-64/a-1-0.conda?x=../../y"),
            "no query",
        ),
        (
            "ftp://host/linux-64/a-1-0.conda".to_string(),
            "scheme `ftp`",
        ),
        ("./local/a-1-0.conda".to_string(), "not a URL"),
        (
            format!("{FORGE}/osx-64/a-1-0.conda"),
            "not linux-64 or noarch",
        ),
        (
            format!("{FORGE}/linux-64/nodashes.conda"),
            "NAME-VERSION-BUILD",
        ),
        (
            format!("{FORGE}/linux-64/a-1-0.whl"),
            "not a conda package file name",
        ),
    ] {
        let text = format!("@EXPLICIT\n{url}\n");
        match parse("spec-file.txt", Format::Explicit, &text, None) {
            Err(LockError::BadPackage { reason, .. }) => {
                assert!(reason.contains(why), "{url}: {reason}");
            }
            Err(LockError::Invalid { reason, .. }) => {
                // Not a package URL at all: refused by the explicit reader itself.
                assert!(reason.contains("not a package URL"), "{url}: {reason}");
            }
            other => panic!("{url} gave {other:?}"),
        }
    }
    let bad_hash = pixi_lock().replace(SHA, "not-a-hash");
    assert!(matches!(
        parse("pixi.lock", Format::Pixi, &bad_hash, None),
        Err(LockError::BadPackage { .. })
    ));
    let editable = pixi_lock().replace(
        "https://files.pythonhosted.org/packages/ab/cd/tinydep-1.0-py3-none-any.whl",
        "./libs/tinydep",
    );
    match parse("pixi.lock", Format::Pixi, &editable, None) {
        Err(LockError::BadPackage { reason, .. }) => assert!(reason.contains("a path"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let wheel_escape = pixi_lock().replace("tinydep-1.0-py3-none-any.whl", "..%2Ftinydep.whl");
    assert!(matches!(
        parse("pixi.lock", Format::Pixi, &wheel_escape, None),
        Err(LockError::BadPackage { .. })
    ));
}

#[test]
fn unknown_versions_and_broken_structure_are_named() {
    let v5 = pixi_lock().replace("version: 6", "version: 5");
    assert_eq!(
        parse("pixi.lock", Format::Pixi, &v5, None).unwrap_err(),
        LockError::UnsupportedVersion {
            file: "pixi.lock".into(),
            found: "5".into(),
            supported: "6",
        }
    );
    let v2 = conda_lock().replace("version: 1\n", "version: 2\n");
    assert!(matches!(
        parse("conda-lock.yml", Format::CondaLock, &v2, None),
        Err(LockError::UnsupportedVersion { .. })
    ));
    for broken in [
        "",
        "[1, 2]",
        "version: 6\n",
        "version: 6\nenvironments: 3\n",
        "version: 6\nenvironments:\n  default:\n    packages:\n      linux-64: 7\n",
        "version: 6\nenvironments:\n  default:\n    packages:\n      linux-64:\n      - conda: https://x/linux-64/a-1-0.conda\n",
        "version: 6\nenvironments: {default: {packages: {linux-64: [{pip: x}]}}}\npackages: []\n",
        ": : :",
    ] {
        assert!(
            parse("pixi.lock", Format::Pixi, broken, None).is_err(),
            "{broken:?} was accepted"
        );
    }
    for broken in [
        "version: 1\npackage: 3\n",
        "version: 1\npackage:\n- name: a\n",
        "version: 1\npackage:\n- {name: a, version: '1', manager: npm, platform: linux-64, url: 'https://x/linux-64/a-1-0.conda'}\n",
    ] {
        assert!(
            parse("conda-lock.yml", Format::CondaLock, broken, None).is_err(),
            "{broken:?} was accepted"
        );
    }
    let twice = format!("@EXPLICIT\n{FORGE}/linux-64/a-1-0.conda\n{FORGE}/linux-64/a-2-0.conda\n");
    assert!(matches!(
        parse("x", Format::Explicit, &twice, None),
        Err(LockError::Invalid { .. })
    ));
}

#[test]
fn deep_nesting_is_refused_before_the_yaml_parser() {
    let deep = format!(
        "version: 6\nenvironments: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    match parse("pixi.lock", Format::Pixi, &deep, None) {
        Err(LockError::InvalidYaml { reason, .. }) => {
            assert!(reason.contains("nested"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_pixi_sample_s_real_lock_is_read_whole() {
    // Written by pixi itself (prefix-dev/pixi's examples/docker/pixi.lock, linux-64 part).
    let text = include_str!("../../../../cf-apps/pixi-flask/pixi.lock");
    let lock = parse("pixi.lock", Format::Pixi, text, None).unwrap();
    assert_eq!(lock.conda.len(), 44);
    assert!(
        lock.conda
            .iter()
            .all(|p| matches!(p.hash, Some(Hash::Sha256(_))))
    );
    assert_eq!(lock.python().unwrap().version, "3.12.12");
    assert!(
        lock.conda
            .iter()
            .any(|p| p.name == "flask" && p.version == "3.0.3")
    );
    assert!(lock.conda.iter().any(|p| p.name == "ld_impl_linux-64"));
}

#[test]
fn every_lockfile_makes_an_app_a_conda_app_and_the_first_one_wins() {
    for (name, _) in LOCK_FILES {
        let app = tempfile::tempdir().unwrap();
        assert!(!crate::staging::app::App::is_conda_app(app.path()));
        std::fs::write(app.path().join(name), "").unwrap();
        assert!(crate::staging::app::App::is_conda_app(app.path()), "{name}");
    }
    let app = tempfile::tempdir().unwrap();
    let explicit = format!("@EXPLICIT\n{FORGE}/linux-64/python-3.11.7-h0_0.conda#{MD5}\n");
    std::fs::write(app.path().join("explicit.txt"), &explicit).unwrap();
    std::fs::write(app.path().join("conda-linux-64.lock"), &explicit).unwrap();
    std::fs::write(
        app.path().join("environment.yml"),
        "dependencies: [python]\n",
    )
    .unwrap();
    let read = crate::staging::app::App::read(app.path()).unwrap();
    assert_eq!(read.lock.unwrap().file_name, "conda-linux-64.lock");
    assert!(
        read.environment.is_none(),
        "the lock wins over environment.yml"
    );
    assert_eq!(read.passed_over, ["explicit.txt", "environment.yml"]);
}

#[test]
fn a_lock_with_some_pypi_hashes_only_is_refused_before_anything_runs() {
    // A second PyPI package, locked without its sha256.
    let second = "- pypi: https://files.pythonhosted.org/packages/ef/gh/other-2.0-py3-none-any.whl\n  name: other\n  version: '2.0'\n";
    let mut text = pixi_lock().replace(
        "      - pypi: https://files.pythonhosted.org/packages/ab/cd/tinydep-1.0-py3-none-any.whl\n",
        "      - pypi: https://files.pythonhosted.org/packages/ab/cd/tinydep-1.0-py3-none-any.whl\n      - pypi: https://files.pythonhosted.org/packages/ef/gh/other-2.0-py3-none-any.whl\n",
    );
    text.push_str(second);
    match parse("pixi.lock", Format::Pixi, &text, None) {
        Err(LockError::Invalid { reason, .. }) => {
            assert!(
                reason.contains("the sha256 of 1 of its 2 PyPI packages"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
}
