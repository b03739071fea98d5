//! `conda-buildpack manifest update`, as a release pipeline runs it: against loopback servers
//! that answer like GitHub's releases API (JSON pages linked by `Link: rel="next"`, releases
//! with assets missing) and Anaconda's Miniconda index (an HTML table with rows for other
//! platforms and Pythons), with installers whose bytes do and do not match the stated
//! sha256. The manifest is a copy of the shipped one, comments and all.
//!
//! This file builds that world; `proposals.rs` holds the stories of what is proposed and
//! written, `faults.rs` those of endpoints that fail and proxies that want credentials.

mod faults;
mod proposals;

use std::fs;
use std::path::PathBuf;
use std::process::{Command, Output};

use crate::support::proxy::Proxy;
use crate::support::{BINARY, Fault, Server, repo, scratch};
use sha2::{Digest, Sha256};

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
