//! Private channels on the real programs: Cloud Foundry's real builder and launcher, real
//! conda 26.7.1 and its real packages, behind a loopback mirror that demands basic auth
//! (`401` without it) or a token path, or is signed by a company's own CA. In every story a
//! canary secret is searched for in the log, the droplet, Diego's cache tgz and the app
//! cache, and is found nowhere. Without `../shared/real` every story says so and skips.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::canary::assert_canary_nowhere;
use crate::support::real_conda::{self, Miniconda};
use crate::support::tls::{PrivateCa, TlsServer};
use crate::support::{Server, StageOptions, Staging, launch, package, scratch, stage, stdout};

const CANARY: &str = "Canary-pw-26-real";
const ROTATED: &str = "Canary-pw-26-rotated";
const WRONG: &str = "Canary-pw-26-wrong";

const ENVIRONMENT: &str = "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy\n";

struct World {
    dir: tempfile::TempDir,
    /// Serves the installers (and the open channels nobody uses here).
    server: Server,
    zip: PathBuf,
    root: PathBuf,
}

impl World {
    fn new() -> Option<Self> {
        let root = real_conda::world()?.to_path_buf();
        support::world::use_the_real_platform();
        let dir = scratch();
        let server = Server::start(&root);
        let packaging = real_conda::packaging(&server, dir.path(), Miniconda::Plain);
        let zip = package(&server, dir.path(), &packaging);
        Some(Self {
            dir,
            server,
            zip,
            root,
        })
    }

    fn app(&self, name: &str) -> PathBuf {
        let app = self.dir.path().join(name);
        fs::create_dir_all(&app).unwrap();
        fs::write(app.join("environment.yml"), ENVIRONMENT).unwrap();
        fs::write(app.join("Procfile"), "web: python -c 'import numpy'\n").unwrap();
        app
    }

    /// Staging options with no channel settings but `env`: the mirror is the only way.
    fn options(&self, cache: &Path, env: &[(&str, &str)]) -> StageOptions {
        let mut options = StageOptions::with_channels(&self.server).cache(cache);
        options.env.retain(|(name, _)| !name.starts_with("CONDA_"));
        for (name, value) in env {
            options = options.env(name, value);
        }
        options
    }

    fn push(&self, app: &Path, name: &str, options: &StageOptions) -> Staging {
        stage(app, &[&self.zip], options, &self.dir.path().join(name))
    }

    /// A first push of `app` with `env` as its only channel settings, into an output and an
    /// app cache of its own named after `name`; returns the staging and that cache.
    fn push_once(&self, app: &Path, name: &str, env: &[(&str, &str)]) -> (Staging, PathBuf) {
        let cache = self.dir.path().join(format!("{name}-cache"));
        let staging = self.push(app, &format!("{name}-out"), &self.options(&cache, env));
        (staging, cache)
    }
}

/// A mirror signed by a company's own CA, whose certificate sits where the staging container
/// can read it (what `CF_SYSTEM_CERT_PATH` names), demanding alice's canary password.
struct CaMirror {
    _visible: tempfile::TempDir,
    ca: PrivateCa,
    mirror: TlsServer,
}

impl CaMirror {
    fn start(world: &World) -> Self {
        let visible = support::container_visible_dir();
        let ca = PrivateCa::new(visible.path());
        let mirror = TlsServer::mirror(&world.root, Some(&ca), "alice", &[CANARY]);
        Self {
            _visible: visible,
            ca,
            mirror,
        }
    }

    fn cert_path(&self) -> String {
        self.ca.cert_dir.display().to_string()
    }
}

/// The mirror's URL with `alice:password@` in it.
fn with_password(mirror: &TlsServer, password: &str) -> String {
    let url = mirror.url();
    let (scheme, rest) = url.split_once("://").unwrap();
    format!("{scheme}://alice:{password}@{rest}")
}

fn binding(credentials: &str) -> String {
    format!(
        r#"{{"user-provided":[{{"name":"conda-mirror","label":"user-provided","tags":["conda"],"credentials":{credentials}}}]}}"#
    )
}

/// `VCAP_SERVICES` binding the mirror as the channel alias, with alice's `password`.
fn mirror_binding(mirror: &TlsServer, password: &str) -> String {
    binding(&format!(
        r#"{{"channel_alias":"{}/channels","username":"alice","password":"{password}"}}"#,
        mirror.url()
    ))
}

fn numpy_version(staging: &Staging) -> String {
    let output = launch(
        &staging.droplet(),
        "python -c 'import numpy; print(numpy.__version__)'",
        &[],
    );
    stdout(&output).trim().to_string()
}

#[test]
fn a_bound_service_stages_from_a_password_protected_mirror_and_a_rotated_password_keeps_the_cache()
{
    let Some(world) = World::new() else {
        return;
    };
    let mirror = TlsServer::mirror(&world.root, None, "alice", &[CANARY, ROTATED]);
    let app = world.app("bound");
    let cache = world.dir.path().join("bound-cache");
    let options = world.options(
        &cache,
        &[
            ("VCAP_SERVICES", &mirror_binding(&mirror, CANARY)),
            ("BP_DEBUG", "1"),
        ],
    );
    let first = world.push(&app, "first", &options);
    first
        .assert_success()
        .assert_clean_log()
        .assert_log_contains(
            "Channel settings and credentials from the service conda-mirror (tagged conda)",
        )
        .assert_log_contains(&format!(
            "conda-forge from environment.yml (http://alice:-redacted-@127.0.0.1:{}",
            mirror.url().rsplit(':').next().unwrap()
        ));
    assert_eq!(numpy_version(&first), "2.2.6");
    assert_canary_nowhere(CANARY, &first, &cache);

    // The password rotated in the binding: the same environment, restored.
    let options = world.options(
        &cache,
        &[("VCAP_SERVICES", &mirror_binding(&mirror, ROTATED))],
    );
    let second = world.push(&app, "second", &options);
    second
        .assert_success()
        .assert_log_contains("-----> Restoring the conda environment from the cache");
    assert_canary_nowhere(ROTATED, &second, &cache);
    assert_canary_nowhere(CANARY, &second, &cache);
}

#[test]
fn a_channel_alias_with_a_password_or_a_token_stages_and_shows_neither() {
    let Some(world) = World::new() else {
        return;
    };
    let mirror = TlsServer::mirror(&world.root, None, "alice", &[CANARY]);
    for (name, alias) in [
        (
            "userinfo",
            format!("{}/channels", with_password(&mirror, CANARY)),
        ),
        ("token", format!("{}/channels/t/{CANARY}", mirror.url())),
    ] {
        let app = world.app(name);
        let (staging, cache) = world.push_once(
            &app,
            name,
            &[("CONDA_CHANNEL_ALIAS", &alias), ("BP_DEBUG", "1")],
        );
        staging.assert_success();
        assert_eq!(numpy_version(&staging), "2.2.6", "{name}");
        assert_canary_nowhere(CANARY, &staging, &cache);
    }
}

#[test]
fn a_wrong_password_names_the_service_and_how_to_fix_the_binding() {
    let Some(world) = World::new() else {
        return;
    };
    let mirror = TlsServer::mirror(&world.root, None, "alice", &[CANARY]);
    let app = world.app("wrong");
    let vcap = mirror_binding(&mirror, WRONG);
    let (staging, cache) = world.push_once(&app, "wrong", &[("VCAP_SERVICES", &vcap)]);
    staging
        .assert_supply_failed()
        .assert_log_contains("A conda channel refused the staging's credentials")
        .assert_log_contains("The credentials come from the service conda-mirror.")
        .assert_log_contains("cf update-user-provided-service")
        .assert_log_contains("alice:-redacted-@127.0.0.1");
    assert_canary_nowhere(WRONG, &staging, &cache);
}

#[test]
fn a_mirror_signed_by_a_private_ca_stages_with_the_ca_in_cf_system_cert_path_alone() {
    let Some(world) = World::new() else {
        return;
    };
    let signed = CaMirror::start(&world);
    let alias = format!("{}/channels", with_password(&signed.mirror, CANARY));
    let app = world.app("private-ca");

    let (staging, cache) = world.push_once(
        &app,
        "trusted",
        &[
            ("CONDA_CHANNEL_ALIAS", &alias),
            ("CF_SYSTEM_CERT_PATH", &signed.cert_path()),
        ],
    );
    staging.assert_success();
    assert_eq!(numpy_version(&staging), "2.2.6");
    assert_canary_nowhere(CANARY, &staging, &cache);

    let (staging, cache) = world.push_once(&app, "untrusted", &[("CONDA_CHANNEL_ALIAS", &alias)]);
    staging
        .assert_supply_failed()
        .assert_log_contains("conda does not trust a channel's certificate")
        .assert_log_contains("CF_SYSTEM_CERT_PATH");
    assert_canary_nowhere(CANARY, &staging, &cache);
}

/// The issue's goal as one push: a mirror signed by the company's CA and protected by a
/// password stages with one `cf bind-service` and nothing else (the CA is the platform's, in
/// `CF_SYSTEM_CERT_PATH`, as Cloud Foundry installs an operator's trusted CAs).
#[test]
fn a_private_ca_signed_password_protected_mirror_stages_with_one_binding_and_nothing_else() {
    let Some(world) = World::new() else {
        return;
    };
    let signed = CaMirror::start(&world);
    let app = world.app("bound-private-ca");
    let (staging, cache) = world.push_once(
        &app,
        "bound-ca",
        &[
            ("VCAP_SERVICES", &mirror_binding(&signed.mirror, CANARY)),
            ("CF_SYSTEM_CERT_PATH", &signed.cert_path()),
        ],
    );
    staging
        .assert_success()
        .assert_log_contains("from the service conda-mirror (tagged conda)");
    assert_eq!(numpy_version(&staging), "2.2.6");
    assert_canary_nowhere(CANARY, &staging, &cache);
}

#[test]
fn the_apps_condarc_ssl_verify_wins_a_pushed_ca_or_false_with_a_warning() {
    let Some(world) = World::new() else {
        return;
    };
    let signed = CaMirror::start(&world);
    let alias = with_password(&signed.mirror, CANARY);

    // The company's CA pushed with the app and named by a path relative to it.
    let app = world.app("pushed-ca");
    fs::create_dir_all(app.join("certs")).unwrap();
    fs::copy(
        signed.ca.cert_dir.join("corp-ca.pem"),
        app.join("certs/corp-ca.pem"),
    )
    .unwrap();
    fs::write(
        app.join(".condarc"),
        format!("channel_alias: {alias}/channels\nssl_verify: certs/corp-ca.pem\n"),
    )
    .unwrap();
    let (staging, cache) = world.push_once(&app, "pushed-ca", &[]);
    staging
        .assert_success()
        .assert_log_contains("the app's .condarc");
    assert_eq!(numpy_version(&staging), "2.2.6");
    assert_canary_nowhere(CANARY, &staging, &cache);

    // Checking turned off: it stages, and the log says what that costs.
    let app = world.app("no-verify");
    fs::write(
        app.join(".condarc"),
        format!("channel_alias: {alias}/channels\nssl_verify: false\n"),
    )
    .unwrap();
    let (staging, cache) = world.push_once(&app, "no-verify", &[]);
    staging
        .assert_success()
        .assert_log_contains("ssl_verify: false in the app's .condarc");
    assert_canary_nowhere(CANARY, &staging, &cache);
}

#[test]
fn a_bound_services_pip_index_gets_its_credentials_too() {
    let Some(world) = World::new() else {
        return;
    };
    let conda_mirror = TlsServer::mirror(&world.root, None, "alice", &[CANARY]);
    let index_root = support::pip_index::build(world.dir.path(), (3, 11));
    let pip_mirror = TlsServer::mirror(&index_root, None, "alice", &[CANARY]);
    let app = world.app("pip-index");
    fs::write(
        app.join("environment.yml"),
        "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n    - fastcalc==1.0\n",
    )
    .unwrap();
    let vcap = binding(&format!(
        r#"{{"channel_alias":"{}/channels","pip_index_url":"{}/channels/simple","username":"alice","password":"{CANARY}"}}"#,
        conda_mirror.url(),
        pip_mirror.url()
    ));
    let (staging, cache) = world.push_once(
        &app,
        "pip-index",
        &[("VCAP_SERVICES", &vcap), ("BP_DEBUG", "1")],
    );
    staging.assert_success();
    let output = launch(
        &staging.droplet(),
        "python -c 'import fastcalc; print(fastcalc.answer())'",
        &[],
    );
    assert_eq!(stdout(&output).trim(), "42");
    assert_canary_nowhere(CANARY, &staging, &cache);
}
