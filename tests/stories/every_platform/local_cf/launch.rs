//! `local-cf launch`: a droplet started at /home/vcap as the launcher starts it.

use super::*;

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
