//! Private channels, as enterprises run them: credentials in the channel alias, in
//! environment.yml, in a bound service, in the app's .condarc. Whatever the source and
//! whatever the outcome, the canary secret is found in no line of the log, no file of the
//! droplet outside the app's own files, and no file of the app cache.

use crate::support;

use std::fs;

use crate::support::canary::assert_canary_nowhere;
use crate::support::{Packaged, Packaging, StageOptions, Staging, app, fixtures, package, stage};

const CANARY: &str = "Canary-s3cret-26";

/// Pushes the fixture app with an app cache of its own, both named after `name`.
fn push(
    world: &Packaged,
    fixture: &str,
    name: &str,
    options: StageOptions,
) -> (Staging, std::path::PathBuf) {
    let app = app(fixture, &world.dir.path().join(name));
    let cache = world.dir.path().join(format!("{name}-cache"));
    let staging = world.stage(&app, &format!("{name}-out"), &options.cache(&cache));
    (staging, cache)
}

/// The fixture server's URL with `user:password@`.
fn url_with(world: &Packaged, user: &str, password: &str) -> String {
    world
        .server
        .url()
        .replacen("http://", &format!("http://{user}:{password}@"), 1)
}

#[test]
fn a_password_in_the_channel_alias_is_never_shown_even_with_bp_debug() {
    let world = Packaged::new(&Packaging::default());
    let alias = url_with(&world, "alice", CANARY);
    let options = StageOptions::with_channels(&world.server)
        .env("CONDA_CHANNEL_ALIAS", &alias)
        .env("BP_DEBUG", "1");
    let (staging, cache) = push(&world, "numpy-web", "alias", options);
    staging.assert_log_contains("alice:-redacted-@127.0.0.1");
    assert_canary_nowhere(CANARY, &staging, &cache);
}

#[test]
fn a_token_path_and_a_password_in_pip_index_url_are_never_shown() {
    let world = Packaged::new(&Packaging::default());
    let options = StageOptions::with_channels(&world.server)
        .env(
            "CONDA_DEFAULT_CHANNELS",
            &format!("{}/t/{CANARY}/main", world.server.url()),
        )
        .env("PIP_INDEX_URL", &url_with(&world, "bob", CANARY))
        .env("BP_DEBUG", "1");
    let (staging, cache) = push(&world, "pip-requirements", "token", options);
    assert_canary_nowhere(CANARY, &staging, &cache);
}

fn conda_service(credentials: &str) -> String {
    format!(
        r#"{{"user-provided":[{{"name":"conda-mirror","label":"user-provided","tags":["conda"],"credentials":{credentials}}}]}}"#
    )
}

#[test]
fn a_bound_service_is_named_in_the_log_and_its_password_is_nowhere() {
    let world = Packaged::new(&Packaging::default());
    let credentials = format!(
        r#"{{"channel_alias":"{}","username":"alice","password":"{CANARY}"}}"#,
        world.server.url()
    );
    let options = StageOptions::with_channels(&world.server)
        .env("VCAP_SERVICES", &conda_service(&credentials))
        .env("BP_DEBUG", "1");
    let (staging, cache) = push(&world, "numpy-web", "service", options);
    staging
        .assert_log_contains(
            "       Channel settings and credentials from the service conda-mirror (tagged conda)",
        )
        .assert_log_contains("Channel settings, the first that sets one wins: CONDA_CHANNEL_ALIAS, CONDA_DEFAULT_CHANNELS, the service conda-mirror");
    assert_canary_nowhere(CANARY, &staging, &cache);
}

#[test]
fn a_malformed_binding_fails_with_a_clear_message_that_echoes_no_value() {
    let world = Packaged::new(&Packaging::default());
    for (vcap, expected) in [
        (
            format!(
                r#"{{"user-provided":[{{"tags":["conda"],"credentials":{{"password":"{CANARY}""#
            ),
            "VCAP_SERVICES is not valid JSON (line 1, column",
        ),
        (
            conda_service(&format!(
                r#"{{"channel_alias":"https://mirror","username":"u","pasword":"{CANARY}"}}"#
            )),
            "The service conda-mirror has the unknown credential `pasword`.",
        ),
    ] {
        let options = StageOptions::with_channels(&world.server).env("VCAP_SERVICES", &vcap);
        let (staging, _cache) = push(&world, "numpy-web", "malformed", options);
        staging
            .assert_supply_failed()
            .assert_log_contains("A bound conda service cannot be used")
            .assert_log_contains(expected)
            .assert_log_lacks(CANARY);
    }
}

#[test]
fn the_apps_condarc_names_channels_and_refuses_what_the_buildpack_controls() {
    let world = Packaged::new(&Packaging::default());
    let app = app("numpy-web", &world.dir.path().join("condarc"));
    fs::write(
        app.join(".condarc"),
        "channels: [conda-forge]\nssl_verify: false\nshow_channel_urls: true\n",
    )
    .unwrap();
    let staging = stage(
        &app,
        &[&world.zip],
        &StageOptions::with_channels(&world.server),
        &world.dir.path().join("condarc-out"),
    );
    staging
        .assert_success()
        .assert_log_contains("ssl_verify: false in the app's .condarc")
        .assert_log_contains(
            "The app's .condarc sets show_channel_urls, which staging does not read",
        )
        .assert_log_contains("the app's .condarc");

    fs::write(app.join(".condarc"), "pkgs_dirs: [/home/vcap/app/pkgs]\n").unwrap();
    let staging = stage(
        &app,
        &[&world.zip],
        &StageOptions::with_channels(&world.server),
        &world.dir.path().join("condarc-refused"),
    );
    staging
        .assert_supply_failed()
        .assert_log_contains("The app's .condarc cannot be used")
        .assert_log_contains("sets `pkgs_dirs`, which the buildpack controls");
}

/// A mirror signed by the company's CA, trusted only through CF_SYSTEM_CERT_PATH: the
/// installer (served over HTTPS by the same mirror) and the channels are reached with no
/// other setting. Without the CA, staging fails with a message about the certificate.
#[test]
fn a_mirror_signed_by_the_platforms_ca_needs_no_setting() {
    let world = Packaged::new(&Packaging::default());
    let visible = support::container_visible_dir();
    let ca = support::tls::PrivateCa::new(visible.path());
    let mirror = support::tls::TlsServer::start(&fixtures().dir, &ca);
    // Installers from the HTTPS mirror too: our own download trusts the platform's CA.
    let manifest = support::fixture_manifest(&world.server, world.dir.path());
    let text = fs::read_to_string(&manifest)
        .unwrap()
        .replace(&world.server.url(), &mirror.url());
    fs::write(&manifest, text).unwrap();
    let zip = package(
        &world.server,
        &world.dir.path().join("tls-zip"),
        &Packaging {
            manifest: Some(manifest),
            ..Packaging::default()
        },
    );
    let options = |trusted: bool| {
        let mut options = StageOptions::with_channels(&world.server)
            .env("CONDA_CHANNEL_ALIAS", &format!("{}/channels", mirror.url()))
            .env(
                "CONDA_DEFAULT_CHANNELS",
                &format!("{}/channels/main", mirror.url()),
            );
        if trusted {
            options = options.env("CF_SYSTEM_CERT_PATH", &ca.cert_dir.display().to_string());
        }
        options
    };
    let app = app("numpy-web", &world.dir.path().join("tls"));
    let staging = stage(
        &app,
        &[&zip],
        &options(true),
        &world.dir.path().join("tls-out"),
    );
    staging
        .assert_success()
        .assert_log_contains(&format!("Download [{}/installers/", mirror.url()));

    let staging = stage(
        &app,
        &[&zip],
        &options(false),
        &world.dir.path().join("tls-untrusted"),
    );
    staging
        .assert_supply_failed()
        .assert_log_contains("certificate");
}

#[test]
fn a_password_in_an_environment_yml_channel_is_never_shown() {
    let world = Packaged::new(&Packaging::default());
    let app = app("numpy-web", &world.dir.path().join("file-channel"));
    let text = fs::read_to_string(app.join("environment.yml")).unwrap();
    fs::write(
        app.join("environment.yml"),
        text.replace(
            "  - conda-forge\n",
            &format!("  - {}/conda-forge\n", url_with(&world, "alice", CANARY)),
        ),
    )
    .unwrap();
    let cache = world.dir.path().join("file-channel-cache");
    let staging = stage(
        &app,
        &[&world.zip],
        &StageOptions::with_channels(&world.server)
            .env("BP_DEBUG", "1")
            .cache(&cache),
        &world.dir.path().join("file-channel-out"),
    );
    staging.assert_log_contains("alice:-redacted-@127.0.0.1");
    assert_canary_nowhere(CANARY, &staging, &cache);
}
