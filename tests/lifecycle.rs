//! The local Cloud Foundry lifecycle, seen from the user's side: scripted buildpack zips are
//! staged with `local-cf stage`, droplets started with `local-cf launch`, and
//! the tests assert exit codes, log lines, droplet contents and what the app prints.
//!
//! Staging with `--no-network` and launching need root (namespaces), as the harness does.

mod lifecycle_support;

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use lifecycle_support::{Buildpack, LOCAL_CF, Outcome, Workspace, droplet_members, zip_with_entry};

/// The builder's name for a buildpack's directories: xxhash64 of its key, `%016x`.
fn xxhash(key: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh64::xxh64(key.as_bytes(), 0))
}

/// A supply buildpack that declares itself in config.yml and leaves a marker in DEPS/IDX.
fn supply_buildpack(file_name: &str, name: &str) -> Buildpack {
    Buildpack::new(file_name).script(
        "supply",
        &format!(
            "echo \"{name} supply: $# args, index $4\"\n\
             printf 'name: {name}\\nversion: 1.0.{name_len}\\n' > \"$3/$4/config.yml\"\n\
             echo {name} > \"$3/$4/marker\"",
            name_len = name.len()
        ),
    )
}

/// A final buildpack with supply and finalize, releasing `web: COMMAND`.
fn final_buildpack(file_name: &str, command: &str) -> Buildpack {
    Buildpack::new(file_name)
        .script(
            "supply",
            "printf 'name: final\\nversion: 2.0\\n' > \"$3/$4/config.yml\"",
        )
        .script(
            "finalize",
            "echo \"finalize: $# args, index $4\"\n\
             echo done > \"$1/finalized\"\n\
             echo 'export FROM_PROFILE_D=1' > \"$5/0_final.sh\"",
        )
        .release_web(command)
}

fn launch(droplet: &Path, extra: &[&str]) -> Outcome {
    let output = Command::new(LOCAL_CF)
        .arg("launch")
        .arg(droplet)
        .args(lifecycle_support::world::launch_args())
        .args(extra)
        .output()
        .expect("run launch");
    Outcome::of(&output)
}

fn staging_info(workspace: &Workspace) -> serde_json::Value {
    let members = droplet_members(&workspace.droplet());
    let info = &members
        .get("./staging_info.yml")
        .expect("staging_info.yml in the droplet")
        .content;
    serde_json::from_str(info).expect("staging_info.yml is JSON")
}

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

#[test]
fn caches_persist_between_stagings_and_a_dropped_supply_buildpack_loses_its_own() {
    let ws = Workspace::new();
    let cache = ws.path().join("cache");
    let counting = |file_name: &str, label: &str| {
        Buildpack::new(file_name).script(
            "supply",
            &format!("n=$(cat \"$2/count\" 2>/dev/null || echo 0); echo $((n+1)) > \"$2/count\"; echo \"{label} count $((n+1)) in $2\""),
        )
    };
    let a = ws.zip(&counting("a.zip", "a"));
    let b = ws.zip(&counting("b.zip", "b"));
    let last = ws.zip(
        &counting("final.zip", "final")
            .script("finalize", "true")
            .release_web("run"),
    );
    let cache_arg = cache.to_str().expect("utf-8 path");

    ws.stage(
        &[a.clone(), b.clone(), last.clone()],
        &["--cache", cache_arg],
    )
    .assert_code(0)
    .assert_log_contains(&format!("a count 1 in /tmp/cache/{}", xxhash("a.zip")))
    .assert_log_contains("final count 1 in /tmp/cache/final");
    ws.stage(
        &[a.clone(), b.clone(), last.clone()],
        &["--cache", cache_arg],
    )
    .assert_code(0)
    .assert_log_contains("a count 2")
    .assert_log_contains("b count 2")
    .assert_log_contains("final count 2");

    fs::write(cache.join("stray-file"), "from an older builder").expect("stray file");
    ws.stage(&[a, last], &["--cache", cache_arg])
        .assert_code(0)
        .assert_log_contains("a count 3")
        .assert_log_contains("final count 3");
    assert!(cache.join(xxhash("a.zip")).join("count").is_file());
    assert!(
        !cache.join(xxhash("b.zip")).exists(),
        "the dropped buildpack's cache must go"
    );
    assert!(!cache.join("stray-file").exists());
    assert!(cache.join("final/count").is_file());
}

#[test]
fn scripts_see_cf_environment_and_nothing_else_of_the_callers() {
    let ws = Workspace::new();
    let zip = ws.zip(
        &Buildpack::new("final.zip")
            .script("supply", "env > \"$3/$4/env.txt\"")
            .script("finalize", "true")
            .release_web("run"),
    );
    let mut command = Command::new(LOCAL_CF);
    command
        .args(["stage", "--output"])
        .arg(ws.output())
        .arg("--buildpack")
        .arg(&zip)
        .args([
            "--env",
            "FOO=first",
            "--env",
            "FOO=second",
            "--env",
            "WITH_EQUALS=a=b",
            "--memory",
            "2g",
            "--stack",
            "cflinuxfs3",
        ])
        .arg(ws.app())
        .args(lifecycle_support::world::stage_args())
        .env("TMPDIR", ws.tmpdir())
        .env("LEAKY_SECRET", "must-not-reach-buildpacks")
        .env("HTTPS_PROXY", "http://proxy.internal:3128")
        .env("BP_DEBUG", "1");
    Outcome::of(&command.output().expect("stage")).assert_code(0);

    let members = droplet_members(&ws.droplet());
    let env: std::collections::HashMap<&str, &str> = members["./deps/0/env.txt"]
        .content
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    assert_eq!(env.get("FOO"), Some(&"second"), "later --env wins");
    assert_eq!(env.get("WITH_EQUALS"), Some(&"a=b"));
    assert_eq!(
        env.get("LEAKY_SECRET"),
        None,
        "the caller's environment leaked"
    );
    assert_eq!(env.get("CF_STACK"), Some(&"cflinuxfs3"));
    assert_eq!(env.get("MEMORY_LIMIT"), Some(&"2048m"));
    assert_eq!(env.get("LANG"), Some(&"en_US.UTF-8"));
    assert_eq!(env.get("VCAP_SERVICES"), Some(&"{}"));
    assert_eq!(env.get("HTTPS_PROXY"), Some(&"http://proxy.internal:3128"));
    assert_eq!(env.get("BP_DEBUG"), Some(&"1"));
    assert!(
        env["PATH"].starts_with("/usr/local/bin:/usr/bin:/bin"),
        "PATH {}",
        env["PATH"]
    );
    // Diego's staging container: the vcap user's home, and /tmp.
    assert_eq!(env.get("HOME"), Some(&"/home/vcap"));
    assert_eq!(env.get("TMPDIR"), Some(&"/tmp"));
    assert_eq!(env.get("USER"), Some(&"vcap"));
    let vcap: serde_json::Value =
        serde_json::from_str(env["VCAP_APPLICATION"]).expect("VCAP_APPLICATION is JSON");
    assert_eq!(vcap["application_name"], "app");
    assert_eq!(vcap["limits"]["mem"], 2048);
}

#[test]
fn a_kept_staging_dir_shows_what_a_buildpack_wrote_outside_deps() {
    let ws = Workspace::new();
    let zip = ws.zip(
        &Buildpack::new("final.zip")
            .script(
                "supply",
                "touch \"$HOME/.stray-config\" \"$TMPDIR/scratch\" \"$3/$4/proper\"",
            )
            .script("finalize", "true")
            .release_web("run"),
    );
    let outcome = ws.stage(&[zip], &["--keep-staging-dir"]);
    outcome.assert_code(0);
    let kept = outcome
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("Staging directory kept: "))
        .map(PathBuf::from)
        .expect("the kept staging dir is named");
    // The staging root is the container: its home/ is /home/vcap and its tmp/ is /tmp.
    assert!(kept.join("home/.stray-config").exists());
    assert!(kept.join("tmp/scratch").exists());
    assert!(droplet_members(&ws.droplet()).contains_key("./deps/0/proper"));
}

#[test]
fn a_zip_stored_without_unix_modes_fails_like_on_cf() {
    let ws = Workspace::new();
    let zip = ws.zip(&final_buildpack("no-modes.zip", "run").without_modes());
    ws.stage(&[zip], &[])
        .assert_code(223)
        .assert_log_contains(
            "Failed to compile droplet: Failed to run all supply scripts: fork/exec",
        )
        .assert_log_contains("bin/supply: permission denied");

    let ws = Workspace::new();
    let zip = ws.zip(
        &Buildpack::new("no-modes.zip")
            .script("detect", "exit 0")
            .script("compile", "true")
            .without_modes(),
    );
    ws.stage(&[zip], &["--detect"])
        .assert_code(222)
        .assert_log_contains("WARNING: buildpack script '/bin/detect' is not executable");
}

#[test]
fn zip_entries_escaping_the_buildpack_dir_are_refused() {
    for entry in ["../escaped", "bin/../../escaped", "/tmp/escaped-absolute"] {
        let ws = Workspace::new();
        let zip = zip_with_entry(ws.path(), "evil.zip", entry);
        ws.stage(&[zip], &[])
            .assert_code(1)
            .assert_no_panic()
            .assert_stderr_contains("outside the buildpack's directory");
        assert!(!ws.tmpdir().join("escaped").exists());
        assert!(!Path::new("/tmp/escaped-absolute").exists());
    }
    let ws = Workspace::new();
    let zip = ws.zip(
        &Buildpack::new("links.zip")
            .symlink("lib", "/etc")
            .file("lib/evil", "x", 0o644)
            .script("compile", "true"),
    );
    ws.stage(&[zip], &[])
        .assert_code(1)
        .assert_stderr_contains("points outside the buildpack's directory");
    // A link that stays inside is kept, as CF keeps it, but nothing is written through it.
    let ws = Workspace::new();
    let zip = ws.zip(
        &Buildpack::new("links.zip")
            .symlink("lib", "bin")
            .file("lib/evil", "x", 0o644)
            .script("compile", "true"),
    );
    ws.stage(&[zip], &[])
        .assert_code(1)
        .assert_stderr_contains("through a symlink");
}

#[test]
fn no_network_cuts_the_callers_loopback_but_keeps_a_loopback() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("addr").port().to_string();
    let ws = Workspace::new();
    let probe = "if (exec 3<>\"/dev/tcp/127.0.0.1/$TEST_PORT\") 2>/dev/null; then echo 'caller reachable: yes'; \
                 else echo 'caller reachable: no'; fi\n\
                 echo \"interfaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ')\"\n\
                 echo \"own loopback: $( (exec 3<>/dev/tcp/127.0.0.1/1) 2>&1 | head -n 1)\"";
    let zip = ws.zip(
        &Buildpack::new("final.zip")
            .script("supply", probe)
            .script("finalize", "true")
            .release_web("run"),
    );
    let env_port = format!("TEST_PORT={port}");

    // Without --no-network the caller's loopback server is reachable: the probe works.
    ws.stage(std::slice::from_ref(&zip), &["--env", &env_port])
        .assert_code(0)
        .assert_log_contains("caller reachable: yes");

    let outcome = ws.stage(&[zip], &["--env", &env_port, "--no-network"]);
    outcome
        .assert_code(0)
        .assert_log_contains("caller reachable: no")
        .assert_log_contains("interfaces: lo \n")
        // `lo` is up: a closed port refuses instead of the network being unreachable.
        .assert_log_contains("Connection refused");
    drop(listener);
}

/// A staging whose supply installs a tool into DEPS/IDX and whose finalize writes profile
/// scripts in all three places the launcher sources, plus a start script that reports.
fn launchable_buildpacks(ws: &Workspace) -> Vec<PathBuf> {
    let supply = Buildpack::new("tools.zip").script(
        "supply",
        "mkdir -p \"$3/$4/bin\"\n\
         printf '#!/bin/bash\\necho tool-ran\\n' > \"$3/$4/bin/tool\"\n\
         chmod +x \"$3/$4/bin/tool\"\n\
         echo \"$3\" > \"$1/staged_deps_dir\"",
    );
    let start = r#"#!/bin/bash
echo "ORDER=$ORDER"
echo "HOME=$HOME DEPS_DIR=$DEPS_DIR TMPDIR=$TMPDIR PWD=$(pwd) PORT=$PORT GREETING=$GREETING"
tool
if [ -e "$(cat staged_deps_dir)" ]; then echo staging-root-exists; else echo staging-root-gone; fi
exit 0
"#;
    let finalize = format!(
        "echo 'export ORDER=\"${{ORDER}}a\"' > \"$5/000_a.sh\"\n\
         echo 'export ORDER=\"${{ORDER}}b\"; export PATH=\"$DEPS_DIR/0/bin:$PATH\"' > \"$5/001_b.sh\"\n\
         mkdir -p \"$1/.profile.d\"\n\
         echo 'export ORDER=\"${{ORDER}}c\"' > \"$1/.profile.d/c.sh\"\n\
         echo 'export ORDER=\"${{ORDER}}d\"' > \"$1/.profile\"\n\
         cat > \"$1/start.sh\" <<'START'\n{start}START\n"
    );
    let last = Buildpack::new("final.zip")
        .script("finalize", &finalize)
        .release_web("bash start.sh");
    vec![ws.zip(&supply), ws.zip(&last)]
}

#[test]
fn launch_runs_the_droplet_at_home_vcap_after_the_staging_root_is_gone() {
    let ws = Workspace::new();
    ws.stage(&launchable_buildpacks(&ws), &[]).assert_code(0);
    assert_eq!(
        fs::read_dir(ws.tmpdir()).expect("tmpdir").count(),
        0,
        "staging root left behind"
    );

    let outcome = launch(&ws.droplet(), &["--port", "9123", "--env", "GREETING=hi"]);

    outcome
        .assert_code(0)
        .assert_log_contains("ORDER=abcd")
        .assert_log_contains("HOME=/home/vcap/app DEPS_DIR=/home/vcap/deps TMPDIR=/home/vcap/tmp PWD=/home/vcap/app PORT=9123 GREETING=hi")
        .assert_log_contains("tool-ran")
        .assert_log_contains("staging-root-gone");
    // The droplet was unpacked in a private tmpfs: nothing of it reached the host.
    assert!(
        !Path::new("/home/vcap/app/start.sh").exists(),
        "launch leaked the droplet onto the host"
    );
}

#[test]
fn launch_runs_a_given_command_and_returns_its_exit_code() {
    let ws = Workspace::new();
    ws.stage(&launchable_buildpacks(&ws), &[]).assert_code(0);
    launch(
        &ws.droplet(),
        &["--", "echo", "custom:$ORDER;", "exit", "7"],
    )
    .assert_code(7)
    .assert_log_contains("custom:abcd");
}

#[test]
fn launch_without_any_start_command_fails_clearly() {
    let ws = Workspace::new();
    let zip = ws.zip(
        &Buildpack::new("final.zip")
            .script("finalize", "true")
            .script("release", "echo '---'"),
    );
    ws.stage(&[zip], &[])
        .assert_code(0)
        .assert_log_contains("No start command specified by buildpack or via Procfile.");
    // The real launcher: "launcher: no start command specified or detected in droplet".
    let launched = launch(&ws.droplet(), &[]);
    launched.assert_code(1);
    assert!(
        launched
            .stderr
            .to_lowercase()
            .contains("no start command specified or detected in droplet"),
        "{launched}"
    );
}

#[test]
fn output_cache_and_tmpdir_inside_the_app_are_not_staged_with_it() {
    let ws = Workspace::new();
    let zip = ws.zip(&final_buildpack("final.zip", "run"));
    for _ in 0..2 {
        // As a user would run it from the app directory: default ./staging-output, relative
        // cache and TMPDIR, all inside the app.
        fs::create_dir_all(ws.app().join("tmp")).expect("tmp in app");
        let output = Command::new(LOCAL_CF)
            .current_dir(ws.app())
            .args(["stage", ".", "--cache", "cache", "--buildpack"])
            .arg(&zip)
            .env("TMPDIR", "tmp")
            .output()
            .expect("stage");
        Outcome::of(&output).assert_code(0);
    }
    let members = droplet_members(&ws.app().join("staging-output/droplet.tgz"));
    assert!(members.contains_key("./app/app.py"));
    for inside in [
        "./app/staging-output/",
        "./app/cache/",
        "./app/tmp/conda-buildpack",
    ] {
        assert!(
            !members.keys().any(|name| name.starts_with(inside)),
            "{inside} was staged: {:?}",
            members.keys()
        );
    }
}

#[test]
fn bad_input_gets_a_clear_message_and_never_a_panic() {
    let ws = Workspace::new();
    let good = ws.zip(&final_buildpack("final.zip", "run"));

    let missing_app = Command::new(LOCAL_CF)
        .args(["stage", "/nonexistent/app", "--buildpack"])
        .arg(&good)
        .output()
        .expect("stage");
    Outcome::of(&missing_app)
        .assert_code(1)
        .assert_no_panic()
        .assert_stderr_contains("Cannot read the app directory");

    ws.stage(&[ws.path().join("missing.zip")], &[])
        .assert_code(1)
        .assert_no_panic()
        .assert_stderr_contains("Cannot read the buildpack zip");

    let corrupt = ws.path().join("corrupt.zip");
    fs::write(&corrupt, "this is not a zip").expect("write");
    ws.stage(&[corrupt], &[])
        .assert_code(1)
        .assert_no_panic()
        .assert_stderr_contains("is not a valid zip file");

    let no_bin = ws.zip(&Buildpack::new("no-bin.zip").file("README.md", "hello", 0o644));
    ws.stage(&[no_bin], &[])
        .assert_code(225)
        .assert_no_panic()
        .assert_log_contains("malformed buildpack does not contain a /bin dir: no-bin.zip");

    ws.stage(std::slice::from_ref(&good), &["--env", "NOEQUALS"])
        .assert_code(1)
        .assert_stderr_contains("--env expects KEY=VALUE");
    ws.stage(&[good.clone(), good], &[])
        .assert_code(1)
        .assert_stderr_contains("Two buildpack zips are both named final.zip");

    launch(&ws.path().join("missing.tgz"), &[])
        .assert_code(1)
        .assert_no_panic()
        .assert_stderr_contains("Cannot read the droplet");
    let not_a_droplet = ws.path().join("not-a-droplet.tgz");
    fs::write(&not_a_droplet, "garbage").expect("write");
    launch(&not_a_droplet, &[])
        .assert_code(1)
        .assert_no_panic()
        .assert_stderr_contains("Cannot unpack the droplet");
}

#[test]
fn cf_push_leaves_out_what_cfignore_and_the_cli_leave_out() {
    let ws = Workspace::new();
    fs::write(ws.app().join(".cfignore"), "*.csv\n/scratch/\n!keep.csv\n").expect("write");
    for (path, content) in [
        ("data/big.csv", "1,2"),
        ("data/keep.csv", "3,4"),
        ("scratch/notes.txt", "x"),
        ("src/scratch/kept.txt", "y"),
        (".git/HEAD", "ref: refs/heads/main"),
        ("manifest.yml", "applications: []"),
    ] {
        let file = ws.app().join(path);
        fs::create_dir_all(file.parent().expect("parent")).expect("dirs");
        fs::write(file, content).expect("write");
    }
    let zip = ws.zip(&final_buildpack("final.zip", "run"));
    ws.stage(&[zip], &[]).assert_code(0);
    let members = droplet_members(&ws.droplet());
    for kept in [
        "./app/app.py",
        "./app/data/keep.csv",
        "./app/src/scratch/kept.txt",
    ] {
        assert!(members.contains_key(kept), "{kept} was left out");
    }
    for ignored in [
        "./app/data/big.csv",
        "./app/scratch/notes.txt",
        "./app/.git/HEAD",
        "./app/manifest.yml",
        "./app/.cfignore",
    ] {
        assert!(!members.contains_key(ignored), "{ignored} was pushed");
    }
}

/// The same apps and buildpacks through our model of the builder and through Cloud Foundry's
/// real one: the same exit code, the same droplet members with the same modes, the same
/// result.json. Without `../shared/real` this says so and skips.
#[test]
fn the_model_and_the_real_builder_agree() {
    let Some(kit) = lifecycle_support::world::real_kit() else {
        eprintln!("skipped: ../shared/real (Cloud Foundry's real builder) is absent");
        return;
    };
    let builder = kit.join("cf/builder");
    type Scenario = fn(&Workspace) -> Vec<PathBuf>;
    let scenarios: [(&str, Scenario); 6] = [
        ("supply then final", |ws| {
            vec![
                ws.zip(&supply_buildpack("a.zip", "a")),
                ws.zip(&final_buildpack("final.zip", "run")),
            ]
        }),
        ("a failing supply buildpack", |ws| {
            vec![
                ws.zip(&Buildpack::new("broken.zip").script("supply", "exit 3")),
                ws.zip(&final_buildpack("final.zip", "run")),
            ]
        }),
        ("a failing supply of the final buildpack", |ws| {
            vec![ws.zip(&final_buildpack("final.zip", "run").script("supply", "exit 4"))]
        }),
        ("a failing finalize", |ws| {
            vec![
                ws.zip(
                    &Buildpack::new("final.zip")
                        .script("finalize", "exit 5")
                        .release_web("run"),
                ),
            ]
        }),
        ("a legacy compile", |ws| {
            vec![
                ws.zip(
                    &Buildpack::new("legacy.zip")
                        .script(
                            "compile",
                            "mkdir -p \"$1/bin\" && echo hi > \"$1/bin/tool\"",
                        )
                        .release_web("run"),
                ),
            ]
        }),
        ("release printing garbage", |ws| {
            vec![
                ws.zip(
                    &Buildpack::new("final.zip")
                        .script("finalize", "true")
                        .script("release", "echo '- not a mapping'"),
                ),
            ]
        }),
    ];
    let mut disagreements = Vec::new();
    for (name, scenario) in scenarios {
        let outcome = |real: bool| {
            let ws = Workspace::new();
            let zips = scenario(&ws);
            let mut command = Command::new(LOCAL_CF);
            command
                .arg("stage")
                .arg(ws.app())
                .arg("--output")
                .arg(ws.output())
                .env("TMPDIR", ws.tmpdir());
            for zip in &zips {
                command.arg("--buildpack").arg(zip);
            }
            if real {
                command.arg("--builder").arg(&builder);
            }
            let staged = Outcome::of(&command.output().expect("stage"));
            let members: Vec<(String, u32)> = if ws.droplet().exists() {
                droplet_members(&ws.droplet())
                    .into_iter()
                    .map(|(name, member)| (name, member.mode))
                    .collect()
            } else {
                Vec::new()
            };
            let result = fs::read_to_string(ws.output().join("result.json")).ok();
            (staged.code, members, result)
        };
        let (model, real) = (outcome(false), outcome(true));
        if model != real {
            disagreements.push(format!("{name}:\n  model: {model:?}\n  real:  {real:?}"));
        }
    }
    assert!(
        disagreements.is_empty(),
        "our builder and Cloud Foundry's disagree:\n{}",
        disagreements.join("\n")
    );
}
