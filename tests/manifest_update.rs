//! `conda-buildpack manifest update`, as a release pipeline runs it: against loopback servers
//! that answer like GitHub's releases API (JSON pages linked by `Link: rel="next"`, releases
//! with assets missing) and Anaconda's Miniconda index (an HTML table with rows for other
//! platforms and Pythons), with installers whose bytes do and do not match the stated
//! sha256. The manifest is a copy of the shipped one, comments and all.

mod support;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};
use support::proxy::Proxy;
use support::{BINARY, Fault, Server, repo, scratch};

struct World {
    dir: tempfile::TempDir,
    server: Server,
    manifest: PathBuf,
}

fn installer_bytes(name: &str) -> Vec<u8> {
    let mut bytes = format!("#!/bin/sh\n# {name}\nexit 0\n").into_bytes();
    bytes.extend((0..4096_u32).map(|i| (i % 251) as u8));
    bytes
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// What a tampering mirror (`Fault::Tamper`) serves instead.
fn tampered(mut bytes: Vec<u8>) -> Vec<u8> {
    for byte in bytes.iter_mut().step_by(97) {
        *byte ^= 0x5a;
    }
    bytes
}

fn github_release(tag: &str, prerelease: bool, date: &str, assets: &[String], url: &str) -> String {
    let assets: Vec<String> = assets
        .iter()
        .map(|name| {
            format!(
                r#"{{"name": "{name}", "size": 1, "browser_download_url": "{url}/installers/{tag}/{name}"}}"#
            )
        })
        .collect();
    format!(
        r#"{{"tag_name": "{tag}", "name": "{tag}", "draft": false, "prerelease": {prerelease}, "published_at": "{date}T09:00:00Z", "assets": [{}]}}"#,
        assets.join(", ")
    )
}

/// Miniforge's releases are recent whenever the test runs: a line is reported as stopped
/// when its newest release is over 12 months old.
fn days_ago(days: i64) -> String {
    let today = jiff::Zoned::now().date();
    today
        .checked_sub(jiff::Span::new().days(days))
        .unwrap()
        .to_string()
}

fn anaconda_row(name: &str, date: &str, sha256: &str) -> String {
    format!(
        "<tr>\n    <td><a href=\"{name}\">{name}</a></td>\n    <td class=\"s\">147.3M</td>\n    <td>{date}</td>\n    <td>{sha256}</td>\n  </tr>\n"
    )
}

impl World {
    /// Miniforge: 25.11.0 (builds 0 and 1), 25.9.0 without its .sha256, a 26.1.0
    /// prerelease, then on page 2: 25.7.0, 25.5.0, 24.7.1 (pinned) and an empty release.
    /// Miniconda: py39 25.9.1 (with aarch64 and macOS rows beside it), py313, latest
    /// aliases, and the pinned old ones.
    fn new() -> Self {
        let dir = scratch();
        let root = dir.path().join("www");
        let server = Server::start(&root);
        let url = server.url();
        let installers = root.join("installers");
        let add_installer = |tag: &str, name: &str, with_sha256: bool| -> String {
            let bytes = installer_bytes(name);
            let digest = sha256(&bytes);
            let folder = installers.join(tag);
            fs::create_dir_all(&folder).unwrap();
            fs::write(folder.join(name), &bytes).unwrap();
            if with_sha256 {
                fs::write(
                    folder.join(format!("{name}.sha256")),
                    format!("{digest}  {name}\n"),
                )
                .unwrap();
            }
            digest
        };
        for (tag, with_sha256) in [
            ("25.11.0-1", true),
            ("25.11.0-0", true),
            ("25.9.0-0", false),
            ("26.1.0-0", true),
            ("25.7.0-0", true),
            ("25.5.0-0", true),
            ("24.7.1-0", true),
        ] {
            add_installer(
                tag,
                &format!("Miniforge3-{tag}-Linux-x86_64.sh"),
                with_sha256,
            );
        }
        // Each release: its installer and .sha256, an aarch64 build and the unversioned alias.
        let forge = |tag: &str| {
            let name = format!("Miniforge3-{tag}-Linux-x86_64.sh");
            vec![
                format!("Miniforge3-{tag}-Linux-aarch64.sh"),
                "Miniforge3-Linux-x86_64.sh".to_string(),
                format!("{name}.sha256"),
                name,
            ]
        };
        let page = |releases: Vec<String>| format!("[\n{}\n]\n", releases.join(",\n"));
        let github = root.join("channels/github");
        fs::create_dir_all(&github).unwrap();
        fs::write(
            github.join("releases"),
            page(vec![
                github_release("26.1.0-0", true, &days_ago(20), &forge("26.1.0-0"), &url),
                github_release("25.11.0-1", false, &days_ago(30), &forge("25.11.0-1"), &url),
                github_release("25.11.0-0", false, &days_ago(33), &forge("25.11.0-0"), &url),
                github_release(
                    "25.9.0-0",
                    false,
                    &days_ago(80),
                    &["Miniforge3-25.9.0-0-Linux-x86_64.sh".to_string()],
                    &url,
                ),
            ]),
        )
        .unwrap();
        fs::write(
            github.join("releases.headers"),
            "Link: <http://127.0.0.1:{port}/github/releases-2>; rel=\"next\", <http://127.0.0.1:{port}/github/releases-2>; rel=\"last\"\n",
        )
        .unwrap();
        fs::write(
            github.join("releases-2"),
            page(vec![
                github_release("25.7.0-0", false, &days_ago(150), &forge("25.7.0-0"), &url),
                github_release("25.5.0-0", false, &days_ago(210), &forge("25.5.0-0"), &url),
                github_release("24.7.1-0", false, "2024-08-05", &forge("24.7.1-0"), &url),
                github_release("24.5.0-0", false, "2024-05-05", &[], &url),
            ]),
        )
        .unwrap();

        let miniconda = root.join("channels/miniconda");
        fs::create_dir_all(&miniconda).unwrap();
        let mut rows = String::new();
        for (name, date) in [
            ("Miniconda3-latest-Linux-x86_64.sh", "2025-10-06 11:40:02"),
            (
                "Miniconda3-py313_25.9.1-1-Linux-x86_64.sh",
                "2025-10-06 11:44:38",
            ),
            (
                "Miniconda3-py39_25.9.1-1-Linux-x86_64.sh",
                "2025-10-06 11:45:10",
            ),
            (
                "Miniconda3-py39_25.9.1-1-Linux-aarch64.sh",
                "2025-10-06 11:45:10",
            ),
            (
                "Miniconda3-py39_25.9.1-1-MacOSX-arm64.sh",
                "2025-10-06 11:45:10",
            ),
            (
                "Miniconda3-py39_25.7.0-2-Linux-x86_64.sh",
                "2025-08-01 10:00:00",
            ),
            (
                "Miniconda3-py39_24.7.1-0-Linux-x86_64.sh",
                "2024-08-01 10:00:00",
            ),
            (
                "Miniconda3-py39_4.12.0-Linux-x86_64.sh",
                "2022-05-12 10:00:00",
            ),
            ("Miniconda3-4.7.12.1-Linux-x86_64.sh", "2019-10-25 10:00:00"),
            ("Miniconda2-4.7.12.1-Linux-x86_64.sh", "2019-10-25 10:00:00"),
        ] {
            let bytes = installer_bytes(name);
            fs::write(miniconda.join(name), &bytes).unwrap();
            rows.push_str(&anaconda_row(name, date, &sha256(&bytes)));
        }
        fs::write(
            miniconda.join("index.html"),
            format!(
                "<!DOCTYPE html>\n<html><head><title>Index of /</title></head><body>\n<table>\n<tr>\n    <th>Filename</th>\n    <th>Size</th>\n    <th>Last Modified</th>\n    <th>SHA256</th>\n</tr>\n{rows}</table>\n</body></html>\n"
            ),
        )
        .unwrap();

        let manifest = dir.path().join("buildpack/manifest.yml");
        fs::create_dir_all(manifest.parent().unwrap()).unwrap();
        fs::copy(
            repo().join("fixtures/manifest-update/manifest.yml"),
            &manifest,
        )
        .unwrap();
        Self {
            dir,
            server,
            manifest,
        }
    }

    fn releases_url(&self) -> String {
        format!("{}/github/releases", self.server.url())
    }

    fn index_url(&self) -> String {
        format!("{}/miniconda/", self.server.url())
    }

    fn update(&self, extra: &[&str]) -> Output {
        self.update_with(extra, &[], &self.releases_url(), &self.index_url())
    }

    fn update_with(
        &self,
        extra: &[&str],
        env: &[(&str, &str)],
        releases: &str,
        index: &str,
    ) -> Output {
        let mut command = Command::new(BINARY);
        command
            .args(["manifest", "update", "--manifest"])
            .arg(&self.manifest)
            .args(["--miniforge-releases", releases, "--miniconda-index", index])
            .args(extra)
            .env("BP_DOWNLOAD_TIMEOUT", "5")
            .current_dir(self.dir.path());
        for variable in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
            "NO_PROXY",
            "no_proxy",
        ] {
            command.env_remove(variable);
        }
        command.envs(env.iter().copied());
        command.output().unwrap()
    }

    fn text(&self) -> String {
        fs::read_to_string(&self.manifest).unwrap()
    }

    fn installer_sha256(name: &str) -> String {
        sha256(&installer_bytes(name))
    }
}

fn out(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn err(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn both(output: &Output) -> String {
    format!("{}\n{}", out(output), err(output))
}

/// The versions of `name`'s entries under `dependencies:`, in file order.
fn entry_versions(text: &str, name: &str) -> Vec<String> {
    let dependencies = in_section(text, "dependencies");
    let lines: Vec<&str> = dependencies.lines().collect();
    lines
        .windows(2)
        .filter(|pair| pair[0].trim() == format!("- name: {name}"))
        .filter_map(|pair| pair[1].trim().strip_prefix("version: ").map(str::to_string))
        .collect()
}

fn in_section(text: &str, key: &str) -> String {
    let start = text.find(&format!("\n{key}:")).unwrap();
    let rest = &text[start + 1..];
    let end = rest[1..].find("\n\n").map_or(rest.len(), |end| end + 2);
    rest[..end].to_string()
}

#[test]
fn without_write_it_prints_the_verified_proposal_as_a_diff_and_changes_nothing() {
    let world = World::new();
    let before = world.text();
    let output = world.update(&[]);
    let stdout = out(&output);
    assert!(output.status.success(), "{}", both(&output));
    assert_eq!(world.text(), before, "nothing is written without --write");

    // The newest build of 25.11.0, found on page 1; 25.7.0 and 25.5.0 come from page 2.
    let newest = "Miniforge3-25.11.0-1-Linux-x86_64.sh";
    for expected in [
        "+  - name: miniforge3".to_string(),
        "+    version: 25.11.0".to_string(),
        format!(
            "+    uri: {}/installers/25.11.0-1/{newest}",
            world.server.url()
        ),
        format!("+    sha256: {}", World::installer_sha256(newest)),
        "+    version: 25.7.0".to_string(),
        "+    version: 25.5.0".to_string(),
        "+    version: 25.9.1".to_string(),
        format!(
            "+    uri: {}/miniconda/Miniconda3-py39_25.9.1-1-Linux-x86_64.sh",
            world.server.url()
        ),
    ] {
        assert!(
            stdout.contains(&expected),
            "missing `{expected}`:\n{stdout}"
        );
    }
    assert!(
        stdout.contains(&format!("--- {}", world.manifest.display())),
        "{stdout}"
    );
    assert!(
        stdout.contains("Nothing was written: run again with --write"),
        "{stdout}"
    );
    // Never a prerelease, another build, another platform, another Python, an alias.
    for absent in [
        "26.1.0",
        "25.11.0-0/",
        "aarch64",
        "MacOSX",
        "py313",
        "latest",
        "Miniforge3-Linux",
    ] {
        assert!(!stdout.contains(absent), "`{absent}` proposed:\n{stdout}");
    }
    // A release without its .sha256 is not pinned, and the output says why.
    assert!(
        stdout.contains("miniforge3 25.9.0: not proposed: release 25.9.0-0 has no Miniforge3-25.9.0-0-Linux-x86_64.sh.sha256"),
        "{stdout}"
    );
    assert!(!stdout.contains("+    version: 25.9.0"), "{stdout}");
    assert_eq!(
        world.server.requests_ending_with("/github/releases-2"),
        1,
        "page 2 was followed"
    );
}

#[test]
fn write_keeps_the_comments_passes_package_and_a_second_run_changes_nothing() {
    let world = World::new();
    let before = world.text();
    let output = world.update(&["--write"]);
    assert!(output.status.success(), "{}", both(&output));
    let after = world.text();
    assert_ne!(after, before);
    for comment in before
        .lines()
        .filter(|line| line.trim_start().starts_with('#'))
    {
        assert!(after.contains(comment), "comment lost: {comment}\n{after}");
    }
    assert_eq!(
        entry_versions(&after, "miniforge3"),
        ["25.11.0", "25.7.0", "25.5.0", "24.7.1"],
        "newest first, above the pinned one; the default's 24.7.1 stays outside the window"
    );
    let sha256_url = format!(
        "{}/installers/25.11.0-1/Miniforge3-25.11.0-1-Linux-x86_64.sh.sha256",
        world.server.url()
    );
    assert!(
        after.contains(&format!(
            "  # sha256: stated by {sha256_url}, verified by download on "
        )),
        "{after}"
    );
    // New entries take the stacks of the line's newest entry.
    assert!(after.contains("    version: 25.11.0\n    uri: "), "{after}");
    let new_entry = &after[after.find("version: 25.11.0").unwrap()..];
    assert!(new_entry.contains("cf_stacks:\n      - cflinuxfs4\n      - cflinuxfs3\n"));

    // What `package` checks: the rewritten manifest packages.
    let zips = world.dir.path().join("zips");
    let packaged = Command::new(BINARY)
        .args(["package", "--stack", "cflinuxfs4", "--manifest"])
        .arg(&world.manifest)
        .arg("--source")
        .arg(repo())
        .arg("--output")
        .arg(&zips)
        .output()
        .unwrap();
    assert!(packaged.status.success(), "{}", both(&packaged));

    let installer_requests = world.server.requests_ending_with(".sh");
    let again = world.update(&["--write"]);
    assert!(again.status.success(), "{}", both(&again));
    assert_eq!(world.text(), after, "a second --write changes nothing");
    assert!(
        out(&again).contains("is up to date: nothing to change"),
        "{}",
        out(&again)
    );
    assert_eq!(
        world.server.requests_ending_with(".sh"),
        installer_requests,
        "nothing is downloaded again"
    );
}

#[test]
fn a_checksum_that_disagrees_is_never_written_and_the_message_names_both() {
    let world = World::new();
    let name = "Miniforge3-25.7.0-0-Linux-x86_64.sh";
    world.server.fault(&format!("/{name}"), Fault::Tamper);
    let output = world.update(&["--write"]);
    assert!(!output.status.success(), "{}", both(&output));
    let stated = World::installer_sha256(name);
    let actual = sha256(&tampered(installer_bytes(name)));
    let stderr = err(&output);
    assert!(
        stderr.contains("1 proposed installers could not be verified"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "miniforge3 25.7.0: the publisher states sha256 {stated}, but {}/installers/25.7.0-0/{name} downloaded with sha256 {actual}",
            world.server.url()
        )),
        "{stderr}"
    );
    let text = world.text();
    assert!(!text.contains(&stated) && !text.contains(&actual), "{text}");
    assert!(!entry_versions(&text, "miniforge3").contains(&"25.7.0".to_string()));
    // The entries that verified were written.
    assert_eq!(
        entry_versions(&text, "miniforge3"),
        ["25.11.0", "25.5.0", "24.7.1"]
    );
}

#[test]
fn the_keep_window_drops_old_entries_but_never_a_default() {
    let world = World::new();
    let output = world.update(&["--write", "--keep", "1"]);
    assert!(output.status.success(), "{}", both(&output));
    let text = world.text();
    assert_eq!(entry_versions(&text, "miniforge3"), ["25.11.0", "24.7.1"]);
    assert_eq!(
        entry_versions(&text, "miniconda3-py39"),
        ["25.9.1", "25.7.0"],
        "24.7.1 and 4.12.0 fall out of the window; 25.7.0 is the default (25.7.x)"
    );
    let stdout = out(&output);
    assert!(
        stdout.contains("miniconda3-py39 4.12.0: removed, older than the newest 1 (--keep)"),
        "{stdout}"
    );
    assert!(in_section(&text, "default_versions").contains("version: 24.7.x"));
}

#[test]
fn a_default_moves_only_when_asked() {
    let world = World::new();
    let output = world.update(&["--write", "--keep", "1", "--default", "miniforge3=25.11.x"]);
    assert!(output.status.success(), "{}", both(&output));
    let text = world.text();
    let defaults = in_section(&text, "default_versions");
    assert!(
        defaults.contains("- name: miniforge3\n    version: 25.11.x\n"),
        "{defaults}"
    );
    assert!(
        defaults.contains("- name: miniconda3-py39\n    version: 25.7.x\n"),
        "{defaults}"
    );
    assert_eq!(entry_versions(&text, "miniforge3"), ["25.11.0"]);

    let unknown = World::new();
    let before = unknown.text();
    let refused = unknown.update(&["--write", "--default", "miniforge3=30.1.x"]);
    assert!(!refused.status.success());
    assert!(
        err(&refused).contains("--default miniforge3=30.1.x cannot be applied"),
        "{}",
        err(&refused)
    );
    assert!(
        err(&refused).contains("no miniforge3 entry matches 30.1.x"),
        "{}",
        err(&refused)
    );
    assert_eq!(unknown.text(), before);
}

#[test]
fn lines_that_stopped_are_reported_and_python_end_of_life_becomes_a_deprecation_date() {
    let world = World::new();
    let output = world.update(&["--write"]);
    assert!(output.status.success(), "{}", both(&output));
    let stdout = out(&output);
    for expected in [
        "miniconda3-py39: the publisher's newest release is 25.9.1 (2025-10-06); Python 3.9 reached its end of life on 2025-10-31; that is over 12 months old: this line has stopped",
        "miniconda2: the publisher's newest release is 4.7.12.1 (2019-10-25); Python 2.7 reached its end of life on 2020-01-01; that is over 12 months old: this line has stopped",
        "miniconda3: the publisher's newest release is 4.7.12.1 (2019-10-25); that is over 12 months old: this line has stopped",
        "miniconda3-py39: deprecation date 2025-10-31 proposed (Python 3.9's end of life, https://devguide.python.org/versions/)",
    ] {
        assert!(stdout.contains(expected), "missing `{expected}`:\n{stdout}");
    }
    assert!(
        !stdout.contains("miniforge3: the publisher's newest"),
        "{stdout}"
    );
    let dates = in_section(&world.text(), "dependency_deprecation_dates");
    assert!(
        dates.ends_with(
            "  - name: miniconda3-py39\n    version_line: x\n    date: \"2025-10-31\"\n    link: https://devguide.python.org/versions/\n"
        ),
        "{dates}"
    );
    assert_eq!(
        dates.matches("name: miniconda2").count(),
        1,
        "miniconda2 has its date already"
    );
}

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
