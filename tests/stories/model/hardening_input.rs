//! A developer pushes whatever is in the app directory: an empty or binary environment.yml, a
//! data file committed under that name, YAML that explodes when expanded, a runtime.txt
//! with garbage, links to files that are not theirs. Each bad input ends the staging with
//! exit 225, a message naming the file and the fix, in bounded time and memory; the harmless
//! oddities of other editors (a byte-order mark, CRLF line ends, a Procfile without `web:`)
//! stage and run.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::{Packaged, Packaging, StageOptions, app, assert_numpy_web_runs, droplet_file};

/// Seconds and MiB a failing staging may take: it copies the app and unpacks the zip, then
/// the buildpack refuses the input before the installer runs. Reading a 100 MB file whole, or
/// expanding an alias bomb, would blow through the memory bound.
const FAIL_SECONDS: u64 = 30;
const FAIL_MIB: u64 = 64;

/// A fresh copy of the numpy-web fixture app.
fn numpy_web(world: &Packaged, name: &str) -> PathBuf {
    let parent = world.dir.path().join(name);
    fs::create_dir_all(&parent).unwrap();
    app("numpy-web", &parent)
}

/// Stages `app` with the scratch dir as `stage`'s TMPDIR, its output beside the app.
fn stage_app(world: &Packaged, app: &Path, name: &str) -> support::Staging {
    let options = StageOptions::with_channels(&world.server).tmpdir(world.dir.path());
    world.stage(app, &format!("{name}/out"), &options)
}

/// An alias bomb: 10 references nested 9 deep, a billion entries once expanded.
fn alias_bomb() -> String {
    let mut text = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for level in b'b'..=b'j' {
        let previous = char::from(level - 1);
        let name = char::from(level);
        let refs = vec![format!("*{previous}"); 10].join(", ");
        text.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    text.push_str("dependencies: *j\n");
    text
}

#[test]
fn bad_environment_files_fail_with_a_clear_message_in_bounded_time_and_memory() {
    let world = Packaged::new(&Packaging::default());
    let hundred_mb = {
        let line = "  - numpy # a line of a data file committed as environment.yml\n";
        let mut text = String::from("dependencies:\n");
        text.push_str(&line.repeat(100 * 1024 * 1024 / line.len() + 1));
        text.into_bytes()
    };
    let mut binary = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    binary.extend((0..4096_u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "empty",
            Vec::new(),
            &[
                "environment.yml is not a valid conda environment file",
                "the file is empty",
            ],
        ),
        (
            "binary",
            binary,
            &[
                "environment.yml is not text",
                "Save environment.yml as UTF-8 text",
            ],
        ),
        (
            "invalid UTF-8",
            b"dependencies:\n  - numpy\n  - caf\xe9\n".to_vec(),
            &["environment.yml is not text"],
        ),
        (
            "huge",
            hundred_mb,
            &[
                "environment.yml is too large (100.0 MiB)",
                "Check that environment.yml is the file you meant to push",
            ],
        ),
        (
            // A megabyte of brackets, which the YAML parser alone would take minutes over.
            "deeply nested brackets",
            format!("dependencies: {}\n", "[".repeat(1_000_000)).into_bytes(),
            &[
                "environment.yml is not valid YAML at line 1, column 271",
                "brackets nested more than 256 deep",
            ],
        ),
        (
            "deeply nested lists",
            (0..400)
                .map(|depth| format!("{}-\n", " ".repeat(depth)))
                .collect::<String>()
                .into_bytes(),
            &[
                "environment.yml is not valid YAML",
                "recursion limit exceeded",
            ],
        ),
        (
            // The one spec the buildpack reads itself, absurdly long.
            "python spec",
            format!(
                "dependencies:\n  - python {}\n",
                (0..5_000)
                    .map(|i| format!("{}.{i}", i % 9 + 1))
                    .collect::<Vec<_>>()
                    .join("|")
            )
            .into_bytes(),
            &["is not a valid Python spec", "it is 33896 characters long"],
        ),
        (
            "alias bomb",
            alias_bomb().into_bytes(),
            &[
                "environment.yml is not valid YAML",
                "repetition limit exceeded",
            ],
        ),
        (
            "duplicate key",
            b"name: app\ndependencies: [numpy]\ndependencies: [pandas]\n".to_vec(),
            &[
                "environment.yml is not valid YAML at line 3, column 1",
                "duplicate entry with key \"dependencies\"",
            ],
        ),
        (
            "not a mapping",
            b"- numpy\n- pandas\n".to_vec(),
            &["the top level must be a mapping with `dependencies:`, not a list"],
        ),
    ];
    for (case, bytes, expected) in cases {
        let app = numpy_web(&world, case);
        fs::write(app.join("environment.yml"), &bytes).unwrap();
        let staging = stage_app(&world, &app, case);
        staging
            .assert_supply_failed()
            .assert_clean_log()
            .assert_bounded(FAIL_SECONDS, FAIL_MIB)
            .assert_log_lacks("-----> Installing miniconda");
        for text in expected {
            staging.assert_log_contains(text);
        }
    }
}

#[test]
fn a_garbage_runtime_txt_fails_naming_what_it_found() {
    let world = Packaged::new(&Packaging::default());
    let cases: Vec<(&str, &[u8], &[&str])> = vec![
        (
            "garbage",
            b"python-banana\n",
            &[
                "runtime.txt does not name a Python version",
                "found `python-banana`",
                "python-3.11.9",
            ],
        ),
        (
            "two versions",
            b"python-3.11\npython-2.7\n",
            &["the file must hold one line like `python-3.11.9`"],
        ),
        (
            "ruby",
            b"ruby-3.2.0",
            &["the line must start with `python-`"],
        ),
        ("binary", b"\xff\xfe\0p\0y", &["runtime.txt is not text"]),
    ];
    for (case, bytes, expected) in cases {
        let app = numpy_web(&world, case);
        fs::write(app.join("runtime.txt"), bytes).unwrap();
        let staging = stage_app(&world, &app, case);
        staging
            .assert_supply_failed()
            .assert_bounded(FAIL_SECONDS, FAIL_MIB);
        for text in expected {
            staging.assert_log_contains(text);
        }
    }
}

#[test]
fn a_byte_order_mark_and_crlf_in_environment_yml_are_accepted() {
    let world = Packaged::new(&Packaging::default());
    let app = numpy_web(&world, "bom-crlf");
    let original = fs::read_to_string(app.join("environment.yml")).unwrap();
    // What Notepad writes: a BOM and CRLF line ends. conda reads the file as it is.
    fs::write(
        app.join("environment.yml"),
        format!("\u{feff}{}", original.replace('\n', "\r\n")),
    )
    .unwrap();
    let staging = stage_app(&world, &app, "bom-crlf");
    staging
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("3 conda specs from environment.yml");
    assert_numpy_web_runs(&staging);
}

#[test]
fn a_windows_runtime_txt_and_a_procfile_without_web_are_accepted() {
    let world = Packaged::new(&Packaging::default());
    let app = numpy_web(&world, "windows-runtime-worker");
    // The Python comes from runtime.txt alone.
    let environment = fs::read_to_string(app.join("environment.yml")).unwrap();
    fs::write(
        app.join("environment.yml"),
        environment.replace("  - python=3.11\n", ""),
    )
    .unwrap();
    fs::write(app.join("runtime.txt"), "\u{feff}python-3.11.9\r\n").unwrap();
    // A worker app: no web process. Staging succeeds and says what is missing; the app runs
    // with the command given at push time.
    fs::write(app.join("Procfile"), "worker: python app.py --once\r\n").unwrap();
    let staging = stage_app(&world, &app, "windows-runtime-worker");
    staging
        .assert_success()
        .assert_log_contains("with python==3.11.9 from runtime.txt")
        .assert_log_contains("The app has no Procfile with a `web:` line");
    let staging_info: serde_json::Value =
        serde_json::from_slice(&droplet_file(&staging.droplet(), "staging_info.yml").unwrap())
            .unwrap();
    assert_eq!(staging_info["start_command"].as_str().unwrap_or(""), "");
    assert_numpy_web_runs(&staging);
}

#[test]
fn links_that_leave_the_app_are_refused_and_links_inside_it_are_followed() {
    let world = Packaged::new(&Packaging::default());
    // A real, valid environment file outside the app: refused for where it is, not for what
    // it holds.
    let outside = world.dir.path().join("outside.yml");
    fs::write(&outside, "dependencies: [python=3.11, numpy]\n").unwrap();
    let outside_dir = world.dir.path().join("outside-vendor");
    fs::create_dir_all(&outside_dir).unwrap();
    let outside = outside.display().to_string();
    let outside_dir = outside_dir.display().to_string();
    let cases: Vec<(&str, &str, &str, Vec<String>)> = vec![
        (
            "env-passwd",
            "environment.yml",
            "/etc/passwd",
            vec![
                "environment.yml is a link that points outside the app".into(),
                "environment.yml links to /etc/passwd".into(),
            ],
        ),
        (
            "env-outside",
            "environment.yml",
            &outside,
            vec![
                "environment.yml is a link that points outside the app".into(),
                format!("links to {outside}"),
            ],
        ),
        (
            "env-broken",
            "environment.yml",
            "somewhere/else.yml",
            vec!["environment.yml is a broken link".into()],
        ),
        (
            "env-dangling-outside",
            "environment.yml",
            "../../somewhere/else.yml",
            vec!["environment.yml is a link that points outside the app".into()],
        ),
        (
            "runtime-hostname",
            "runtime.txt",
            "/etc/passwd",
            vec!["runtime.txt is a link that points outside the app".into()],
        ),
        (
            "spec-outside",
            "spec-file.txt",
            &outside,
            vec!["spec-file.txt is a link that points outside the app".into()],
        ),
        (
            "vendor-outside",
            "vendor",
            &outside_dir,
            vec!["vendor is a link that points outside the app".into()],
        ),
        (
            "vendored-package-link",
            "vendor/linux-64/numpy-1.26.4-0.tar.bz2",
            &outside,
            vec![
                "The vendored packages cannot be used".into(),
                "numpy-1.26.4-0.tar.bz2, a link; vendored packages must be regular files".into(),
            ],
        ),
    ];
    for (case, name, target, expected) in cases {
        let app = numpy_web(&world, case);
        let link = app.join(name);
        fs::create_dir_all(link.parent().unwrap()).unwrap();
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(target, &link).unwrap();
        let staging = stage_app(&world, &app, case);
        staging
            .assert_supply_failed()
            .assert_bounded(FAIL_SECONDS, FAIL_MIB);
        for text in &expected {
            staging.assert_log_contains(text);
        }
        // The staging read nothing from outside the app: not even the file's first line.
        staging.assert_log_lacks("root:x:0:0");
    }

    // A link that stays inside the app is what a developer with one file per environment
    // has, and it works.
    let app = numpy_web(&world, "env-inside");
    fs::create_dir_all(app.join("envs")).unwrap();
    fs::rename(app.join("environment.yml"), app.join("envs/prod.yml")).unwrap();
    std::os::unix::fs::symlink("envs/prod.yml", app.join("environment.yml")).unwrap();
    let staging = stage_app(&world, &app, "env-inside");
    staging.assert_success();
    assert_numpy_web_runs(&staging);
}

#[test]
fn an_app_with_nothing_to_install_is_told_so() {
    let world = Packaged::new(&Packaging::default());
    // `cf push -b conda_buildpack` names the buildpack, so detect never ran.
    let dir = world.dir.path().join("no-conda");
    let app = app("no-conda", &dir);
    let staging = stage_app(&world, &app, "no-conda");
    staging
        .assert_supply_failed()
        .assert_bounded(FAIL_SECONDS, FAIL_MIB)
        .assert_log_contains("The app has no environment.yml")
        .assert_log_contains("conda env export --from-history > environment.yml");
}
