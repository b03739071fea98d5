//! The builder's phases: named and detected buildpacks, supply, finalize and the legacy
//! compile, release and the Procfile, and the real builder's exit codes when one fails.

use super::*;

#[test]
fn named_buildpacks_supply_then_finalize_into_a_cf_shaped_droplet() {
    let ws = Workspace::new();
    let app = ws.app();
    fs::write(app.join("run.sh"), "#!/bin/sh\n").expect("file");
    fs::set_permissions(
        app.join("run.sh"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("mode");
    std::os::unix::fs::symlink("app.py", app.join("link.py")).expect("symlink");
    fs::write(app.join("data1"), "shared").expect("file");
    fs::hard_link(app.join("data1"), app.join("data2")).expect("hard link");
    let zips = [
        ws.zip(&supply_buildpack("first.zip", "first")),
        ws.zip(&final_buildpack("final.zip", "python app.py")),
    ];

    let outcome = ws.stage(&zips, &[]);

    outcome
        .assert_code(0)
        .assert_log_contains("first supply: 4 args, index 0")
        .assert_log_contains("finalize: 5 args, index 1")
        .assert_log_contains(&format!("Staging complete: {}", ws.droplet().display()));
    let members = droplet_members(&ws.droplet());
    for name in [
        "./",
        "./app/",
        "./app/app.py",
        "./app/finalized",
        "./deps/",
        "./deps/0/",
        "./deps/1/",
        "./profile.d/",
        "./tmp/",
        "./logs/",
        "./staging_info.yml",
    ] {
        assert!(
            members.contains_key(name),
            "droplet lacks {name}: {:?}",
            members.keys()
        );
    }
    assert!(
        !members
            .keys()
            .any(|name| name.starts_with("./tmp/") && name.len() > 6),
        "tmp/ must be empty"
    );
    assert!(
        !members
            .keys()
            .any(|name| name.starts_with("./logs/") && name.len() > 7),
        "logs/ must be empty"
    );
    assert_eq!(members["./deps/0/marker"].content, "first\n");
    assert_eq!(
        members["./profile.d/0_final.sh"].content,
        "export FROM_PROFILE_D=1\n"
    );
    assert_eq!(members["./app/run.sh"].mode & 0o777, 0o755);
    assert_eq!(members["./app/link.py"].kind, tar::EntryType::Symlink);
    assert_eq!(members["./app/link.py"].link.as_deref(), Some("app.py"));
    assert_eq!(members["./app/data2"].kind, tar::EntryType::Link);
    assert_eq!(members["./app/data2"].link.as_deref(), Some("./app/data1"));

    assert_eq!(
        staging_info(&ws),
        serde_json::json!({"detected_buildpack": "final", "start_command": "python app.py"})
    );
    let result = ws.result_json();
    assert_eq!(result["lifecycle_type"], "buildpack");
    assert_eq!(
        result["process_types"],
        serde_json::json!({"web": "python app.py"})
    );
    assert_eq!(result["lifecycle_metadata"]["buildpack_key"], "final.zip");
    assert_eq!(
        result["lifecycle_metadata"]["buildpacks"],
        serde_json::json!([
            {"key": "first.zip", "name": "first", "version": "1.0.5"},
            {"key": "final.zip", "name": "final", "version": "2.0"}
        ])
    );
    // The staging root is gone once the droplet is out.
    assert_eq!(
        fs::read_dir(ws.tmpdir()).expect("tmpdir").count(),
        0,
        "staging root left behind"
    );
}

#[test]
fn bin_may_sit_under_one_top_folder_of_the_zip() {
    let ws = Workspace::new();
    let zip = ws.zip(&final_buildpack("nested.zip", "run").under_folder("conda-buildpack-v1"));
    ws.stage(&[zip], &[])
        .assert_code(0)
        .assert_log_contains("finalize: 5 args, index 0");
}

#[test]
fn detect_picks_the_first_buildpack_that_detects_and_names_it_by_its_output() {
    let ws = Workspace::new();
    let zips = [
        ws.zip(
            &Buildpack::new("a.zip")
                .script("detect", "echo a-was-asked; exit 1")
                .script("compile", "echo A COMPILED"),
        ),
        ws.zip(
            &Buildpack::new("b.zip")
                .script("detect", "test -f \"$1/app.py\" && echo 'b-buildpack 1.0'")
                .script("supply", "echo \"b supply index $4\"")
                .script("finalize", "echo b > \"$1/staged_by\"")
                .release_web("b-web"),
        ),
        ws.zip(
            &Buildpack::new("c.zip")
                .script("detect", "echo c")
                .script("compile", "echo c > \"$1/staged_by\""),
        ),
    ];

    let outcome = ws.stage(&zips, &["--detect"]);

    outcome
        .assert_code(0)
        .assert_log_contains("b supply index 0");
    assert!(
        !outcome.stdout.contains("a-was-asked"),
        "detect stdout is data, not log\n{outcome}"
    );
    assert!(
        !outcome.stdout.contains("A COMPILED"),
        "only the detected buildpack runs\n{outcome}"
    );
    let members = droplet_members(&ws.droplet());
    assert_eq!(members["./app/staged_by"].content, "b\n");
    assert_eq!(
        staging_info(&ws),
        serde_json::json!({"detected_buildpack": "b-buildpack 1.0", "start_command": "b-web"})
    );
    assert_eq!(
        ws.result_json()["lifecycle_metadata"]["buildpacks"],
        serde_json::json!([{"key": "b.zip", "name": "b-buildpack 1.0"}])
    );
}

#[test]
fn no_buildpack_detecting_fails_with_222() {
    let ws = Workspace::new();
    let zips = [
        ws.zip(
            &Buildpack::new("a.zip")
                .script("detect", "exit 1")
                .script("compile", "true"),
        ),
        ws.zip(
            &Buildpack::new("b.zip")
                .script("detect", "exit 100")
                .script("compile", "true"),
        ),
    ];
    ws.stage(&zips, &["--detect"])
        .assert_code(222)
        .assert_log_contains("None of the buildpacks detected a compatible application")
        .assert_log_contains("Staging failed: exit status 222");
    assert!(!ws.droplet().exists());
}

#[test]
fn eleven_buildpacks_get_indices_00_to_10() {
    let ws = Workspace::new();
    let mut zips: Vec<PathBuf> = (0..10)
        .map(|n| {
            ws.zip(
                &Buildpack::new(&format!("bp{n}.zip"))
                    .script("supply", "echo \"$4\" > \"$3/$4/index\""),
            )
        })
        .collect();
    zips.push(
        ws.zip(
            &Buildpack::new("final.zip")
                .script(
                    "finalize",
                    "echo \"final index $4, deps: $(ls \"$3\" | tr '\\n' ' ')\"",
                )
                .release_web("run"),
        ),
    );

    ws.stage(&zips, &[])
        .assert_code(0)
        .assert_log_contains("final index 10, deps: 00 01 02 03 04 05 06 07 08 09 10 ");
    let members = droplet_members(&ws.droplet());
    assert_eq!(members["./deps/00/index"].content, "00\n");
    assert_eq!(members["./deps/09/index"].content, "09\n");
    assert!(members.contains_key("./deps/10/"));
}

#[test]
fn a_failing_supply_script_stops_staging_with_225() {
    let ws = Workspace::new();
    let zips = [
        ws.zip(&supply_buildpack("ok.zip", "ok")),
        ws.zip(&Buildpack::new("broken.zip").script("supply", "echo 'about to fail' >&2; exit 3")),
        ws.zip(&final_buildpack("final.zip", "run")),
    ];
    let outcome = ws.stage(&zips, &[]);
    outcome
        .assert_code(225)
        .assert_log_contains("about to fail")
        .assert_log_contains("Failed to run all supply scripts: exit status 3")
        .assert_log_contains("Staging failed: exit status 225");
    assert!(
        !outcome.stdout.contains("finalize:"),
        "nothing runs after a failed supply\n{outcome}"
    );
    assert!(!ws.droplet().exists());
}

#[test]
fn a_supply_buildpack_without_bin_supply_fails_with_225_before_any_script_runs() {
    let ws = Workspace::new();
    let zips = [
        ws.zip(&supply_buildpack("ok.zip", "ok")),
        ws.zip(&Buildpack::new("legacy.zip").script("compile", "true")),
        ws.zip(&final_buildpack("final.zip", "run")),
    ];
    let outcome = ws.stage(&zips, &[]);
    outcome.assert_code(225).assert_log_contains(
        "one of the buildpacks chosen to supply dependencies does not support multi-buildpack apps",
    );
    assert!(
        !outcome.stdout.contains("ok supply"),
        "CF checks all supply buildpacks first\n{outcome}"
    );
}

#[test]
fn a_failing_finalize_script_exits_223_as_on_the_real_builder() {
    let ws = Workspace::new();
    let zip = ws.zip(
        &Buildpack::new("final.zip")
            .script("finalize", "exit 5")
            .release_web("run"),
    );
    ws.stage(&[zip], &[])
        .assert_code(223)
        .assert_log_contains(
            "Failed to compile droplet: Failed to run finalize script: exit status 5",
        )
        .assert_log_contains("Staging failed: exit status 223");
}

#[test]
fn a_legacy_final_buildpack_compiles_without_a_deps_dir() {
    let ws = Workspace::new();
    let zips = [
        ws.zip(&supply_buildpack("first.zip", "first")),
        ws.zip(
            &Buildpack::new("legacy.zip")
                .script("compile", "echo \"compile: $# args\"")
                .release_web("run"),
        ),
    ];
    let outcome = ws.stage(&zips, &[]);
    outcome
        .assert_code(0)
        .assert_log_contains("compile: 2 args")
        .assert_log_contains(
            "Warning: the last buildpack is not compatible with multi-buildpack apps",
        );
    let members = droplet_members(&ws.droplet());
    assert!(members.contains_key("./deps/0/marker"));
    assert!(
        !members.keys().any(|name| name.starts_with("./deps/1")),
        "deps/1 must be removed: {:?}",
        members.keys()
    );
    // Without config.yml the final buildpack has no name, as on CF.
    assert_eq!(
        ws.result_json()["lifecycle_metadata"]["buildpacks"][1],
        serde_json::json!({"key": "legacy.zip", "name": ""})
    );
}

#[test]
fn a_failing_compile_script_exits_223() {
    let ws = Workspace::new();
    let zip = ws.zip(
        &Buildpack::new("legacy.zip")
            .script("compile", "exit 4")
            .release_web("run"),
    );
    ws.stage(&[zip], &[])
        .assert_code(223)
        .assert_log_contains("Failed to compile droplet: exit status 4");
}

#[test]
fn release_output_that_is_not_the_expected_yaml_exits_224() {
    for release in [
        "echo 'default_process_types: [web, worker]'",
        "echo 'default_process_types: {web: \"unclosed'",
        "echo plain words",
    ] {
        let ws = Workspace::new();
        let zip = ws.zip(
            &Buildpack::new("final.zip")
                .script("finalize", "true")
                .script("release", release),
        );
        ws.stage(&[zip], &[]).assert_code(224).assert_log_contains(
            "Failed to build droplet release: buildpack's release output invalid",
        );
    }
    let ws = Workspace::new();
    let zip = ws.zip(
        &Buildpack::new("final.zip")
            .script("finalize", "true")
            .script("release", "exit 2"),
    );
    ws.stage(&[zip], &[])
        .assert_code(224)
        .assert_log_contains("Failed to build droplet release: exit status 2");
}

#[test]
fn the_procfile_overrides_the_release_per_process_type() {
    let ws = Workspace::new();
    fs::write(
        ws.app().join("Procfile"),
        "web: gunicorn app:app --bind 0.0.0.0:$PORT\nclock: python clock.py\n",
    )
    .expect("Procfile");
    let zip = ws.zip(
        &Buildpack::new("final.zip")
            .script("finalize", "true")
            .script(
                "release",
                "printf 'default_process_types:\\n  web: bp-web\\n  worker: bp-worker\\n'",
            ),
    );
    ws.stage(&[zip], &[]).assert_code(0);
    assert_eq!(
        staging_info(&ws)["start_command"],
        "gunicorn app:app --bind 0.0.0.0:$PORT"
    );
    assert_eq!(
        ws.result_json()["process_types"],
        serde_json::json!({"web": "gunicorn app:app --bind 0.0.0.0:$PORT", "worker": "bp-worker", "clock": "python clock.py"})
    );
}

#[test]
fn an_invalid_procfile_fails_the_staging() {
    let ws = Workspace::new();
    fs::write(ws.app().join("Procfile"), "web: [not, a, command]\n").expect("Procfile");
    let zip = ws.zip(&final_buildpack("final.zip", "run"));
    ws.stage(&[zip], &[])
        .assert_code(1)
        .assert_log_contains("Failed to read command from Procfile: invalid YAML");
}

#[test]
fn launch_yml_of_the_final_buildpack_replaces_bin_release() {
    let ws = Workspace::new();
    let zip = ws.zip(
        &Buildpack::new("final.zip")
            .script("finalize", "printf 'processes:\\n- type: web\\n  command: from-launch-yml\\n' > \"$3/$4/launch.yml\"")
            .script("release", "echo RELEASE RAN >&2; exit 1"),
    );
    let outcome = ws.stage(&[zip], &[]);
    outcome.assert_code(0);
    assert!(!outcome.stdout.contains("RELEASE RAN"), "{outcome}");
    assert_eq!(staging_info(&ws)["start_command"], "from-launch-yml");
}
