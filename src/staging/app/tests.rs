use super::environment_file::{environment_text, without_extras};
use super::*;

#[test]
fn a_typical_environment_file_is_understood() {
    let spec = parse_environment(
        "environment.yml",
        "name: app\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - numpy>=1.26\n  - pip:\n    - gunicorn==22.0\nvariables:\n  MODE: prod\n",
    )
    .unwrap();
    assert_eq!(spec.channels, ["conda-forge"]);
    assert_eq!(
        spec.conda_specs().collect::<Vec<_>>(),
        ["python=3.11", "numpy>=1.26"]
    );
    assert_eq!(
        spec.pip_requirements().collect::<Vec<_>>(),
        ["gunicorn==22.0"]
    );
    assert_eq!(spec.variables["MODE"], "prod");
}

#[test]
fn crlf_bom_and_flow_lists_are_accepted() {
    let text = "\u{feff}dependencies: [python=2.7, six]\r\nchannels: [main]\r\n";
    let text = text.strip_prefix('\u{feff}').unwrap();
    let spec = parse_environment("environment.yml", text).unwrap();
    assert_eq!(spec.conda_specs().count(), 2);
}

#[test]
fn yaml_errors_carry_line_and_column() {
    let error =
        parse_environment("environment.yml", "dependencies:\n  - numpy\n - bad: [\n").unwrap_err();
    match error {
        AppError::InvalidYaml { line, column, .. } => {
            assert!(line.is_some() && column.is_some(), "{line:?} {column:?}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn what_conda_26_accepts_is_accepted_with_its_warnings() {
    // An unknown key (conda-lock's `platforms:`) and a mamba selector: conda warns or
    // skips, and creates the environment.
    let spec = parse_environment(
        "environment.yml",
        "channels: [conda-forge]\nplatforms: [linux-64]\ndependencies:\n  - python=>3.11\n  - numpy=<3\n  - sel(linux): scipy\n",
    )
    .unwrap();
    assert_eq!(
        spec.conda_specs().collect::<Vec<_>>(),
        ["python=>3.11", "numpy=<3"]
    );
    assert!(
        spec.warnings[0].contains("`platforms`"),
        "{:?}",
        spec.warnings
    );
    assert!(
        spec.warnings[1].contains("entry 3")
            && spec.warnings[1].contains("scipy will not be installed"),
        "{:?}",
        spec.warnings
    );
    // conda reads a regex version; it may find nothing, but that is conda's to say.
    assert!(parse_environment("environment.yml", "dependencies: [numpy=1.*.1]\n").is_ok());
}

#[test]
fn a_utf16_file_from_powershell_is_read() {
    let text = "channels: [conda-forge]\r\ndependencies:\r\n  - python=3.11\r\n";
    for little_endian in [true, false] {
        let mut bytes = if little_endian {
            vec![0xff, 0xfe]
        } else {
            vec![0xfe, 0xff]
        };
        for unit in text.encode_utf16() {
            bytes.extend(if little_endian {
                unit.to_le_bytes()
            } else {
                unit.to_be_bytes()
            });
        }
        let decoded = environment_text(Path::new("environment.yml"), bytes).unwrap();
        let spec = parse_environment("environment.yml", &decoded).unwrap();
        assert_eq!(spec.conda_specs().collect::<Vec<_>>(), ["python=3.11"]);
    }
    assert!(environment_text(Path::new("environment.yml"), vec![0xff, 0xfe, 0x41]).is_err());
    // Other files are UTF-8 only: a runtime.txt starting with those bytes is not text.
    assert!(into_text(Path::new("runtime.txt"), vec![0xff, 0xfe, 0x41, 0]).is_err());
}

#[test]
fn a_spec_conda_cannot_parse_is_refused_naming_its_line() {
    for (text, line, spec) in [
        (
            "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy>=<1\n",
            4,
            "numpy>=<1",
        ),
        (
            "dependencies:\n  - \"numpy[version=>1\"\n",
            2,
            "numpy[version=>1",
        ),
    ] {
        match parse_environment("environment.yml", text) {
            Err(AppError::InvalidSpec {
                line: found,
                spec: found_spec,
                ..
            }) => {
                assert_eq!((found, found_spec.as_str()), (line, spec));
            }
            other => panic!("{text:?} gave {other:?}"),
        }
    }
}

#[test]
fn pypi_style_extras_are_left_to_conda_which_drops_them() {
    // conda 26.7.1 reads `kiwipy[rmq]~=0.9.0` as `kiwipy ~=0.9.0` and solves.
    for spec in [
        "kiwipy[rmq]~=0.9.0",
        "flask[async,dotenv]>=3",
        "dask[complete]",
    ] {
        let text = format!("dependencies:\n  - python=3.11\n  - {spec}\n");
        let parsed = parse_environment("environment.yml", &text)
            .unwrap_or_else(|error| panic!("{spec} was refused: {error}"));
        assert!(parsed.conda_specs().any(|written| written == spec));
    }
    assert_eq!(
        without_extras("numpy[version='>=1']"),
        "numpy[version='>=1']"
    );
    assert_eq!(without_extras("kiwipy[rmq]~=0.9.0"), "kiwipy~=0.9.0");
}

#[test]
fn structural_mistakes_name_the_entry() {
    let error = parse_environment("environment.yml", "dependencies: numpy\n")
        .unwrap_err()
        .to_string();
    assert!(error.contains("must be a list"), "{error}");
    let error = parse_environment("environment.yml", "")
        .unwrap_err()
        .to_string();
    assert!(error.contains("empty"), "{error}");
    let error = parse_environment(
        "environment.yml",
        "name: x\ndependencies: [a]\nchannels: []\ndependencies: [b]\n",
    )
    .unwrap_err();
    assert!(error.to_string().contains("duplicate"), "{error}");
    assert!(
        matches!(
            error,
            AppError::InvalidYaml {
                line: Some(4),
                column: Some(1),
                ..
            }
        ),
        "{error:?}"
    );
    // A misspelt key is conda's EnvironmentSectionNotValid: a warning naming it.
    let spec = parse_environment("environment.yml", "depends: [a]\n").unwrap();
    assert!(
        spec.warnings[0].contains("the key `depends`"),
        "{:?}",
        spec.warnings
    );
}

#[test]
fn alias_bombs_are_refused_not_expanded() {
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for level in b'b'..=b'z' {
        let previous = char::from(level - 1);
        let name = char::from(level);
        text.push_str(&format!(
            "{name}: &{name} [*{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}, *{previous}]\n"
        ));
    }
    text.push_str("dependencies: *z\n");
    let started = std::time::Instant::now();
    assert!(parse_environment("environment.yml", &text).is_err());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

fn app_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    fs::create_dir_all(&app).unwrap();
    for (name, text) in files {
        let path = app.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    dir
}

#[test]
fn links_are_followed_only_inside_the_app() {
    let dir = app_with(&[("envs/prod.yml", "dependencies: [numpy]\n")]);
    let app = dir.path().join("app");
    std::os::unix::fs::symlink("envs/prod.yml", app.join("environment.yml")).unwrap();
    let read = App::read(&app).unwrap();
    assert_eq!(read.environment.unwrap().spec.conda_specs().count(), 1);

    fs::write(dir.path().join("outside.yml"), "dependencies: [numpy]\n").unwrap();
    fs::remove_file(app.join("environment.yml")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("outside.yml"), app.join("environment.yml"))
        .unwrap();
    let error = App::read(&app).unwrap_err().to_string();
    assert!(
        error.contains("environment.yml is a link to") && error.contains("outside.yml"),
        "{error}"
    );

    fs::remove_file(app.join("environment.yml")).unwrap();
    std::os::unix::fs::symlink("missing.yml", app.join("environment.yml")).unwrap();
    assert!(matches!(App::read(&app), Err(AppError::BrokenLink { .. })));
    // Dangling and pointing out of the app: named as what it is.
    fs::remove_file(app.join("environment.yml")).unwrap();
    std::os::unix::fs::symlink("../../nowhere.yml", app.join("environment.yml")).unwrap();
    assert!(matches!(
        App::read(&app),
        Err(AppError::LinkOutsideApp { .. })
    ));
    assert!(App::is_conda_app(&app), "a bad link is named, not ignored");

    fs::remove_file(app.join("environment.yml")).unwrap();
    fs::write(app.join("environment.yml"), "dependencies: [numpy]\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", app.join("runtime.txt")).unwrap();
    assert!(
        matches!(App::read(&app), Err(AppError::LinkOutsideApp { ref file, .. }) if file == "runtime.txt")
    );
    fs::remove_file(app.join("runtime.txt")).unwrap();
    std::os::unix::fs::symlink(dir.path(), app.join("vendor")).unwrap();
    assert!(
        matches!(App::read(&app), Err(AppError::LinkOutsideApp { ref file, .. }) if file == "vendor")
    );
}

#[test]
fn only_regular_files_are_read() {
    let dir = app_with(&[]);
    let app = dir.path().join("app");
    let fifo = std::ffi::CString::new(app.join("environment.yml").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
    // A fifo would block a reader forever; it is refused without being opened.
    assert!(matches!(App::read(&app), Err(AppError::NotAFile { .. })));
    fs::remove_file(app.join("environment.yml")).unwrap();
    fs::write(app.join("environment.yml"), "dependencies: [numpy]\n").unwrap();
    fs::create_dir(app.join("runtime.txt")).unwrap();
    assert!(matches!(App::read(&app), Err(AppError::NotAFile { .. })));
}

#[test]
fn an_app_without_an_environment_is_refused() {
    let dir = app_with(&[("app.py", "print(1)\n"), ("runtime.txt", "python-3.11\n")]);
    assert!(matches!(
        App::read(&dir.path().join("app")),
        Err(AppError::NothingToInstall)
    ));
}

#[test]
fn deep_nesting_is_refused_quickly() {
    let text = format!("dependencies: {}", "[".repeat(100_000));
    let started = std::time::Instant::now();
    let error = parse_environment("environment.yml", &text).unwrap_err();
    assert!(
        error
            .to_string()
            .contains("brackets nested more than 256 deep at line 1, column 271"),
        "{error}"
    );
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
    let braces = format!("dependencies: {}", "{a: ".repeat(250_000));
    let started = std::time::Instant::now();
    assert!(parse_environment("environment.yml", &braces).is_err());
    assert!(started.elapsed() < std::time::Duration::from_millis(500));
    // Brackets that close again are as deep as they look.
    let wide = format!(
        "dependencies: [{}]\n",
        vec!["\"numpy[version='>=1.2']\""; 5_000].join(", ")
    );
    assert_eq!(
        parse_environment("environment.yml", &wide)
            .unwrap()
            .conda_specs()
            .count(),
        5_000
    );
    let text = format!(
        "dependencies:\n{}",
        (0..5_000)
            .map(|depth| format!("{}- \n", "  ".repeat(depth)))
            .collect::<String>()
    );
    assert!(parse_environment("environment.yml", &text).is_err());
}

#[test]
fn runtime_txt_forms() {
    let parse = |text| parse_runtime_txt(text).unwrap();
    assert_eq!(parse("python-2.7.18").segments, [2, 7, 18]);
    assert!(!parse("python-2.7.18").is_line);
    assert_eq!(parse("python-3.9.x").segments, [3, 9]);
    assert!(parse("python-3.9.x").is_line);
    assert_eq!(parse("python-3").segments, [3]);
    assert_eq!(parse("\u{feff}python-3.11.9\r\n").segments, [3, 11, 9]);
    assert_eq!(
        parse("# pinned\n  python-3.12.4   \n\n").segments,
        [3, 12, 4]
    );
    assert_eq!(parse("python-3.10 # LTS").segments, [3, 10]);
}

#[test]
fn runtime_txt_garbage_is_refused_with_the_reason() {
    for text in [
        "",
        "   \n# only a comment\n",
        "python-banana",
        "3.9",
        "python-3.9\npython-2.7",
        "python-3..1",
        "python-3.9.1.2",
        "ruby-3.2",
    ] {
        assert!(parse_runtime_txt(text).is_err(), "{text:?} was accepted");
    }
}

#[test]
fn settings_come_from_bp_variables() {
    let settings = Settings::from_lookup(|name| match name {
        "BP_CONDA_DISTRIBUTION" => Some("Miniforge".into()),
        "BP_CONDA_VERSION" => Some("24.7.x".into()),
        "MEMORY_LIMIT" => Some("2g".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(settings.distribution, Some(Distribution::Miniforge));
    assert_eq!(settings.conda_version.as_deref(), Some("24.7.x"));
    assert_eq!(settings.stack.name, "cflinuxfs4");
    assert!(settings.stack_defaulted);
    assert_eq!(settings.memory_limit_mib, Some(2048));
    let on_fs5 =
        Settings::from_lookup(|name| (name == "CF_STACK").then(|| "cflinuxfs5".into())).unwrap();
    assert_eq!(
        (on_fs5.stack.name, on_fs5.stack_defaulted),
        ("cflinuxfs5", false)
    );
    assert!(matches!(
        Settings::from_lookup(|name| (name == "CF_STACK").then(|| "windows2016".into())),
        Err(AppError::UnsupportedStack { stack }) if stack == "windows2016"
    ));
    assert!(
        Settings::from_lookup(
            |name| (name == "BP_CONDA_DISTRIBUTION").then(|| "anaconda-enterprise".into())
        )
        .is_err()
    );
    assert!(
        Settings::from_lookup(|name| (name == "BP_CONDA_VERSION").then(|| "latest".into()))
            .is_err()
    );
}

#[test]
fn slimming_is_on_unless_bp_conda_slim_says_false() {
    let slim = |value: Option<&str>| {
        Settings::from_lookup(|name| {
            (name == "BP_CONDA_SLIM")
                .then(|| value.map(str::to_string))
                .flatten()
        })
        .map(|settings| settings.slim)
    };
    assert_eq!(slim(None).ok(), Some(true));
    assert_eq!(slim(Some("true")).ok(), Some(true));
    assert_eq!(slim(Some("FALSE")).ok(), Some(false));
    assert_eq!(slim(Some("0")).ok(), Some(false));
    assert!(slim(Some("sometimes")).is_err());
}
