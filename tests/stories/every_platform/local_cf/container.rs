//! What Diego does around the builder: the caches kept between stagings, the environment
//! scripts see, the zips unpacked, the network cut, the app uploaded as `cf push` does, and
//! bad input refused with a clear message.

use super::*;

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
        .args(support::world::stage_args())
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
