//! Endpoints that cannot be read, and a proxy that wants credentials.

use super::*;

#[test]
fn an_unreachable_endpoint_is_a_clear_error_and_the_manifest_is_untouched() {
    let world = World::new();
    let before = world.text();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let output = world.update_with(
        &["--write"],
        &[],
        &format!("http://127.0.0.1:{closed}/repos/conda-forge/miniforge/releases"),
        &world.index_url(),
    );
    assert!(!output.status.success());
    let stderr = err(&output);
    assert!(
        stderr.contains("Miniforge's release list could not be read"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("could not reach http://127.0.0.1:{closed}/repos")),
        "{stderr}"
    );
    assert!(stderr.contains("The manifest was not changed."), "{stderr}");
    assert_eq!(world.text(), before);

    world.server.fault(
        "/miniconda/",
        Fault::Status {
            status: 404,
            times: 1,
        },
    );
    let missing = world.update(&["--write"]);
    assert!(!missing.status.success());
    assert!(
        err(&missing).contains("Miniconda's index page could not be read"),
        "{}",
        err(&missing)
    );
    assert!(
        err(&missing).contains("answered HTTP 404"),
        "{}",
        err(&missing)
    );
    assert_eq!(world.text(), before);
    assert_eq!(
        world.server.requests_ending_with(".sh"),
        0,
        "nothing was downloaded"
    );
}

#[test]
fn through_a_proxy_credentials_are_redacted_and_never_pinned() {
    let world = World::new();
    let proxy = Proxy::start("alice", "s3cret-Pa55");
    let proxy_url = proxy.url_with("alice", "s3cret-Pa55");
    let index = world
        .index_url()
        .replace("http://", "http://bot:t0ken-XyZ@");
    let output = world.update_with(
        &["--write"],
        &[("HTTP_PROXY", &proxy_url), ("http_proxy", &proxy_url)],
        &world.releases_url(),
        &index,
    );
    assert!(output.status.success(), "{}", both(&output));
    assert!(
        proxy.forwarded() >= 3,
        "the lists and installers came through the proxy"
    );
    let all = both(&output);
    let text = world.text();
    for secret in ["s3cret-Pa55", "t0ken-XyZ"] {
        assert!(!all.contains(secret), "{secret} in the output:\n{all}");
        assert!(!text.contains(secret), "{secret} in the manifest:\n{text}");
    }
    assert!(all.contains("http://bot:-redacted-@127.0.0.1"), "{all}");
    assert!(
        text.contains(&format!(
            "uri: {}/miniconda/Miniconda3-py39_25.9.1-1-Linux-x86_64.sh",
            world.server.url()
        )),
        "{text}"
    );
}
