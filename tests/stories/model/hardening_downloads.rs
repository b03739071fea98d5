//! The installer comes over a network the buildpack does not control: a mirror that alters
//! files, connections that drop or stall, servers that fail for a while, redirect loops, a
//! corporate proxy that wants credentials. A file that fails its checksum is deleted and
//! never run; transient faults are retried; permanent ones fail at once with a message that
//! says what to do; credentials never reach the log.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::proxy::Proxy;
use crate::support::{Fault, Packaging, PushWorld, StageOptions, fixtures, launch, stage, stdout};

const INSTALLER: &str = "Miniforge3-26.5.3-0-Linux-x86_64.sh";

/// A push world whose stagings each keep their own cache and output under one name.
struct World {
    base: PushWorld,
}

support::extends_push_world!(World);

impl World {
    fn new() -> Self {
        Self::packaged(&Packaging::default())
    }

    /// A world whose server answers every request for the installer with `fault`.
    fn installer_answers(fault: Fault) -> Self {
        let world = Self::new();
        world.server.fault(INSTALLER, fault);
        world
    }

    fn packaged(packaging: &Packaging) -> Self {
        Self {
            base: PushWorld::packaged("numpy-web", packaging),
        }
    }

    fn cache(&self, name: &str) -> PathBuf {
        self.dir.path().join(name).join("cache")
    }

    fn stage(&self, name: &str, options: StageOptions) -> support::Staging {
        stage(
            &self.app,
            &[&self.zip],
            &options.cache(&self.cache(name)).tmpdir(self.dir.path()),
            &self.dir.path().join(name).join("out"),
        )
    }

    /// Stages `case` with the installer answered by `fault` alone (earlier faults cleared).
    fn stage_against(&self, case: &str, fault: Fault) -> support::Staging {
        self.server.clear_faults();
        self.server.fault(INSTALLER, fault);
        self.stage(case, self.options())
    }

    fn options(&self) -> StageOptions {
        StageOptions::with_channels(&self.server)
    }

    fn installer_requests(&self) -> usize {
        self.server.requests_ending_with(INSTALLER)
    }
}

/// Every file under `dir` whose name contains `part`.
fn files_named(dir: &Path, part: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else if entry.file_name().to_string_lossy().contains(part) {
                found.push(entry.path());
            }
        }
    }
    found
}

#[test]
fn a_tampered_installer_is_deleted_and_never_run() {
    let world = World::installer_answers(Fault::Tamper);
    let staging = world.stage("tampered", world.options());
    staging
        .assert_supply_failed()
        .assert_clean_log()
        .assert_bounded(30, 64)
        .assert_log_contains("A download does not match its pinned checksum")
        .assert_log_contains("dependency sha256 mismatch: expected sha256 ")
        .assert_log_contains("was deleted and nothing was installed from it")
        .assert_log_lacks("-----> Installing the conda environment");
    assert_eq!(world.installer_requests(), 1, "a mismatch is not retried");
    assert!(
        files_named(&world.cache("tampered"), "Miniconda3").is_empty(),
        "the tampered file (or its .partial) was kept"
    );
}

#[test]
fn broken_connections_are_retried_then_fail_cleanly() {
    let world = World::new();
    let cases: Vec<(&str, Fault, &[&str])> = vec![
        (
            "truncated",
            Fault::Truncate(100_000),
            &[
                "A download was interrupted",
                "the connection broke after 100000 of ",
            ],
        ),
        (
            "reset",
            Fault::Reset,
            &[
                "A download was interrupted",
                "connection closed before message completed",
            ],
        ),
    ];
    for (case, fault, expected) in cases {
        let before = world.installer_requests();
        let staging = world.stage_against(case, fault);
        staging
            .assert_supply_failed()
            .assert_bounded(30, 64)
            .assert_log_contains("retrying in 500ms (attempt 2 of 4)")
            .assert_log_contains("retrying in 2.0s (attempt 4 of 4)");
        for text in expected {
            staging.assert_log_contains(text);
        }
        assert_eq!(
            world.installer_requests() - before,
            4,
            "{case}: four attempts"
        );
        assert!(
            files_named(&world.cache(case), "Miniconda3").is_empty(),
            "{case}: a partial download was kept"
        );
    }
}

#[test]
fn permanent_answers_fail_at_once() {
    let world = World::new();
    let cases: Vec<(&str, Fault, usize, &[&str])> = vec![
        (
            "not-found",
            Fault::Status {
                status: 404,
                times: usize::MAX,
            },
            1,
            &[
                "A download failed with HTTP 404",
                "The file is not where the manifest says",
            ],
        ),
        (
            "redirect-loop",
            Fault::RedirectLoop,
            // reqwest follows ten redirects, then gives up once.
            11,
            &[
                "A download redirects in a loop",
                "kept redirecting (more than 10 times)",
            ],
        ),
    ];
    for (case, fault, requests, expected) in cases {
        let before = world.installer_requests();
        let staging = world.stage_against(case, fault);
        staging
            .assert_supply_failed()
            .assert_bounded(15, 64)
            .assert_log_lacks("retrying");
        for text in expected {
            staging.assert_log_contains(text);
        }
        assert_eq!(world.installer_requests() - before, requests, "{case}");
    }
}

#[test]
fn a_server_that_fails_twice_then_answers_is_retried_and_staging_succeeds() {
    let world = World::installer_answers(Fault::Status {
        status: 500,
        times: 2,
    });
    let staging = world.stage("flaky", world.options());
    staging
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("answered HTTP 500; retrying in 500ms (attempt 2 of 4)")
        .assert_log_contains("answered HTTP 500; retrying in 1.0s (attempt 3 of 4)");
    assert_eq!(world.installer_requests(), 3);
}

#[test]
fn a_stalled_server_times_out_after_bp_download_timeout() {
    let world = World::installer_answers(Fault::Stall(Duration::from_secs(60)));
    let staging = world.stage("stalled", world.options().env("BP_DOWNLOAD_TIMEOUT", "2"));
    // Four attempts of two seconds and the backoff between them (0.5 + 1 + 2 s).
    staging
        .assert_supply_failed()
        .assert_bounded(25, 64)
        .assert_log_contains("A download was interrupted")
        .assert_log_contains("the server sent nothing for 2s after 1024 of ")
        .assert_log_contains("BP_DOWNLOAD_TIMEOUT");
    assert_eq!(world.installer_requests(), 4);
}

#[test]
fn a_slow_link_that_keeps_sending_is_not_cut_off() {
    let world = World::new();
    // About 3 s for the whole installer, never more than 0.2 s without a byte: the timeout
    // is for a stalled transfer, not for a slow one.
    let size = fs::metadata(fixtures().dir.join("installers").join(INSTALLER))
        .unwrap()
        .len();
    let pieces = 15;
    world.server.fault(
        INSTALLER,
        Fault::Trickle {
            bytes: usize::try_from(size).unwrap() / pieces + 1,
            pause: Duration::from_millis(200),
        },
    );
    let staging = world.stage("slow", world.options().env("BP_DOWNLOAD_TIMEOUT", "1"));
    staging.assert_success().assert_log_lacks("retrying");
    assert_eq!(world.installer_requests(), 1);
}

/// Stages with both spellings of the proxy variable set to `proxy`, as operators set them.
fn stage_through_proxy(world: &World, name: &str, proxy: &str) -> support::Staging {
    let options = world
        .options()
        .env("HTTP_PROXY", proxy)
        .env("http_proxy", proxy);
    world.stage(name, options)
}

#[test]
fn a_proxy_that_wants_credentials_gets_them_and_they_never_reach_the_log() {
    let world = World::new();
    let proxy = Proxy::start("alice", "s3cret-Pa55");

    let right = proxy.url_with("alice", "s3cret-Pa55");
    let staging = stage_through_proxy(&world, "right-credentials", &right);
    staging
        .assert_success()
        .assert_log_lacks("s3cret-Pa55")
        .assert_log_lacks("s3cret");
    assert!(
        proxy.forwarded() >= 1,
        "the installer came through the proxy"
    );
    assert_eq!(proxy.refused(), 0);
    let run = launch(&staging.droplet(), "python app.py --once", &[]);
    assert!(stdout(&run).contains("numpy 1.26.4"), "{}", stdout(&run));

    let wrong = proxy.url_with("alice", "wr0ng-Guess");
    let staging = stage_through_proxy(&world, "wrong-credentials", &wrong);
    staging
        .assert_supply_failed()
        .assert_bounded(15, 64)
        .assert_log_contains("The proxy asks for credentials")
        .assert_log_contains("answered HTTP 407")
        .assert_log_contains("they are redacted in this log")
        .assert_log_lacks("wr0ng-Guess")
        .assert_log_lacks("retrying");
    assert_eq!(proxy.refused(), 1, "a 407 is not retried");
}

#[test]
fn credentials_in_a_manifest_uri_are_redacted() {
    let world = World::packaged(&Packaging {
        edit_manifest: Some(|manifest| {
            for dependency in manifest["dependencies"].as_sequence_mut().unwrap() {
                let uri = dependency["uri"].as_str().unwrap().to_string();
                dependency["uri"] = uri.replace("http://", "http://bob:t0ken-XYZ@").into();
            }
        }),
        ..Packaging::default()
    });
    world.server.fault(
        INSTALLER,
        Fault::Status {
            status: 404,
            times: usize::MAX,
        },
    );
    let staging = world.stage("uri-credentials", world.options());
    staging
        .assert_supply_failed()
        .assert_log_contains("Download [http://bob:-redacted-@127.0.0.1:")
        .assert_log_contains("A download failed with HTTP 404")
        .assert_log_lacks("t0ken-XYZ");
}
