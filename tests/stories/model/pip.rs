//! An environment.yml with a `pip:` section: conda runs pip inside the environment, pip's
//! packages (and the scripts it writes with the staging path in their shebang) run from the
//! relocated environment, and a pip failure shows pip's own words.

use crate::support;

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::support::{
    Packaging, Server, StageOptions, app, fixtures, launch, package, scratch, stage, stdout,
};

/// A pure-Python wheel with a console script, in a find-links directory.
fn wheelhouse(into: &Path) -> std::path::PathBuf {
    let dir = into.join("wheels");
    fs::create_dir_all(&dir).unwrap();
    let files = [
        (
            "tinywheel/__init__.py",
            "VALUE = 42\n\ndef main():\n    print('tinywheel says hello')\n",
        ),
        (
            "tinywheel-1.0.dist-info/METADATA",
            "Metadata-Version: 2.1\nName: tinywheel\nVersion: 1.0\n",
        ),
        (
            "tinywheel-1.0.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        (
            "tinywheel-1.0.dist-info/entry_points.txt",
            "[console_scripts]\ntinywheel-hello = tinywheel:main\n",
        ),
    ];
    let mut writer =
        zip::ZipWriter::new(fs::File::create(dir.join("tinywheel-1.0-py3-none-any.whl")).unwrap());
    let options = zip::write::SimpleFileOptions::default();
    let mut record = String::new();
    for (name, text) in files {
        writer.start_file(name, options).unwrap();
        writer.write_all(text.as_bytes()).unwrap();
        record.push_str(&format!("{name},,\n"));
    }
    record.push_str("tinywheel-1.0.dist-info/RECORD,,\n");
    writer
        .start_file("tinywheel-1.0.dist-info/RECORD", options)
        .unwrap();
    writer.write_all(record.as_bytes()).unwrap();
    writer.finish().unwrap();
    dir
}

/// The pip-requirements app and the buildpack, with pip pointed at a wheelhouse holding
/// tinywheel; `None` (said on stderr) when the fixture channel has no pip on this machine.
struct TinywheelWorld {
    dir: tempfile::TempDir,
    _server: Server,
    zip: std::path::PathBuf,
    app: std::path::PathBuf,
    /// Where the staging container can read the wheels: stagings have their own /tmp.
    _visible: tempfile::TempDir,
    options: StageOptions,
}

impl TinywheelWorld {
    fn push(&self, name: &str, options: &StageOptions) -> support::Staging {
        stage(
            &self.app,
            &[&self.zip],
            options,
            &self.dir.path().join(name),
        )
    }

    fn new() -> Option<Self> {
        if fixtures().info["skipped"].to_string().contains("pip") {
            eprintln!("this machine's python has no pip for the fixture channel; nothing to test");
            return None;
        }
        let dir = scratch();
        let server = Server::start(&fixtures().dir);
        let zip = package(&server, dir.path(), &Packaging::default());
        let app = app("pip-requirements", dir.path());
        let visible = support::container_visible_dir();
        let wheels = wheelhouse(visible.path());
        let options = StageOptions::with_channels(&server)
            .env("PIP_NO_INDEX", "1")
            .env("PIP_FIND_LINKS", &wheels.display().to_string());
        Some(Self {
            dir,
            _server: server,
            zip,
            app,
            _visible: visible,
            options,
        })
    }
}

#[test]
fn pip_requirements_are_installed_into_the_environment_and_run_relocated() {
    let Some(world) = TinywheelWorld::new() else {
        return;
    };
    let (app, options) = (&world.app, &world.options);
    let staging = world.push("out", options);
    staging
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("3 conda specs from environment.yml and 1 pip requirement");
    let run = launch(
        &staging.droplet(),
        "python app.py && tinywheel-hello && head -1 \"$(command -v tinywheel-hello)\"",
        &[],
    );
    let output = stdout(&run);
    assert!(
        output.contains("tinywheel 42 next to numpy 1.26.4"),
        "{output}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        output.contains("tinywheel says hello"),
        "pip's script runs: {output}"
    );
    assert!(
        output.contains("/home/vcap/deps/0/conda-env/bin/python"),
        "pip's shebang was relocated: {output}"
    );

    // A requirement pip cannot find: pip's own words, and what to fix.
    fs::write(
        app.join("environment.yml"),
        fs::read_to_string(app.join("environment.yml"))
            .unwrap()
            .replace("tinywheel==1.0", "tinywheel==9.9"),
    )
    .unwrap();
    let failed = world.push("out-failed", options);
    assert_eq!(failed.code, 223, "{}", failed.log);
    failed
        .assert_clean_log()
        .assert_log_contains("pip failed to install the app's pip requirements")
        .assert_log_contains("tinywheel==9.9");
}

#[test]
fn a_package_dropped_from_the_pip_section_is_gone_after_the_next_push() {
    let Some(world) = TinywheelWorld::new() else {
        return;
    };
    let app = &world.app;
    let options = world.options.clone().cache(&world.dir.path().join("cache"));
    world.push("first", &options).assert_success();
    let with_pip = fs::read_to_string(app.join("environment.yml")).unwrap();
    // The developer drops the pip section and adds a conda package.
    let without: String = with_pip
        .lines()
        .filter(|line| !line.contains("pip:") && !line.contains("tinywheel"))
        .chain(["  - click"])
        .map(|line| format!("{line}\n"))
        .collect();
    fs::write(app.join("environment.yml"), without).unwrap();
    let second = world.push("second", &options);
    second
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("Updating the cached environment: environment.yml changed")
        .assert_log_contains(
            "The pip section no longer names tinywheel: building the environment from nothing",
        );
    let run = launch(
        &second.droplet(),
        "python -c 'import tinywheel' 2>&1; command -v tinywheel-hello || echo gone",
        &[],
    );
    let output = stdout(&run);
    assert!(output.contains("No module named 'tinywheel'"), "{output}");
    assert!(output.contains("gone"), "{output}");
}
