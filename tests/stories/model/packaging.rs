//! The operator's zip, as `conda-buildpack package` makes it: Cloud Foundry's packager layout,
//! the same bytes from the same inputs, progress that suits a pipeline or a terminal.
//!
//! Its executable runs on cflinuxfs3 (glibc 2.27) and cflinuxfs4 (glibc 2.35) because it needs
//! no C library at all: it is linked statically. A dynamic build would require the
//! GLIBC_2.34 symbols of the build machine and fail on cflinuxfs3 at the first `detect`.
//! And it is the buildpack alone: the local Cloud Foundry (`stage`, `launch`, the builder
//! model) is the `local-cf` binary, which never goes into a zip.

use crate::support;

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use crate::support::{Packaging, Server, fixtures, package, scratch};
use md5::Digest as _;

const PT_INTERP: u32 = 3;
const PT_DYNAMIC: u32 = 2;

#[test]
fn the_executable_has_no_interpreter_and_no_shared_libraries() {
    let elf = fs::read(env!("CARGO_BIN_EXE_conda-buildpack")).unwrap();
    assert_eq!(&elf[..4], b"\x7fELF", "an ELF executable");
    assert_eq!(elf[4], 2, "64-bit");
    let read_u16 = |offset: usize| u16::from_le_bytes([elf[offset], elf[offset + 1]]);
    let read_u32 = |offset: usize| u32::from_le_bytes(elf[offset..offset + 4].try_into().unwrap());
    let read_u64 = |offset: usize| u64::from_le_bytes(elf[offset..offset + 8].try_into().unwrap());
    let program_headers = usize::try_from(read_u64(0x20)).unwrap();
    let entry_size = usize::from(read_u16(0x36));
    let count = usize::from(read_u16(0x38));
    let mut dynamic_segment = None;
    for index in 0..count {
        let header = program_headers + index * entry_size;
        let kind = read_u32(header);
        assert_ne!(
            kind, PT_INTERP,
            "the executable asks for a dynamic loader (not statically linked)"
        );
        if kind == PT_DYNAMIC {
            dynamic_segment = Some((read_u64(header + 8), read_u64(header + 32)));
        }
    }
    // A static-pie has a dynamic segment for its own relocations, but no DT_NEEDED entries.
    if let Some((offset, size)) = dynamic_segment {
        let start = usize::try_from(offset).unwrap();
        let end = start + usize::try_from(size).unwrap();
        for entry in elf[start..end].chunks_exact(16) {
            let tag = u64::from_le_bytes(entry[..8].try_into().unwrap());
            assert_ne!(tag, 1, "the executable needs a shared library (DT_NEEDED)");
        }
    }
}

#[test]
fn the_zips_executable_has_no_stage_launch_or_builder_command() {
    let dir = tempfile::tempdir().unwrap();
    let repo = env!("CARGO_MANIFEST_DIR");
    // The uncached zip of the repository's own manifest: nothing is downloaded.
    let packaged = Command::new(env!("CARGO_BIN_EXE_conda-buildpack"))
        .args(["package", "--stack", "cflinuxfs4", "--manifest"])
        .arg(format!("{repo}/manifest.yml"))
        .arg("--source")
        .arg(repo)
        .arg("--output")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        packaged.status.success(),
        "package failed: {}",
        String::from_utf8_lossy(&packaged.stderr)
    );
    let zip_path = String::from_utf8_lossy(&packaged.stdout)
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let mut zip = zip::ZipArchive::new(fs::File::open(&zip_path).unwrap()).unwrap();
    assert!(
        !zip.file_names().any(|name| name.contains("local-cf")),
        "the local Cloud Foundry was packaged: {:?}",
        zip.file_names().collect::<Vec<_>>()
    );
    let executable = dir.path().join("conda-buildpack");
    let mut bytes = Vec::new();
    zip.by_name("bin/conda-buildpack")
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    fs::write(&executable, bytes).unwrap();
    fs::set_permissions(&executable, fs::Permissions::from_mode(0o755)).unwrap();

    let help = Command::new(&executable).arg("--help").output().unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("supply"), "{help}");
    for command in ["stage", "launch", "builder"] {
        assert!(
            !help
                .lines()
                .any(|line| line.trim_start().starts_with(command)),
            "{command} is listed:\n{help}"
        );
        let refused = Command::new(&executable)
            .arg(command)
            .arg("--help")
            .output()
            .unwrap();
        assert_eq!(refused.status.code(), Some(2), "{command} was accepted");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains(&format!("unrecognized subcommand '{command}'")),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn packaging_twice_gives_identical_bytes_and_downloads_once() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let download_cache = dir.path().join("downloads");
    let cached = |into: &str| {
        package(
            &server,
            &dir.path().join(into),
            &Packaging {
                cached: true,
                stack: Some("cflinuxfs4".into()),
                cache_dir: Some(download_cache.clone()),
                ..Packaging::default()
            },
        )
    };
    let first = cached("one");
    let on_stack = {
        let text = fs::read_to_string(support::repo().join("manifest.yml")).unwrap();
        let manifest: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
        manifest["dependencies"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter(|d| {
                d["cf_stacks"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .any(|s| s == "cflinuxfs4")
            })
            .count()
    };
    let installers_fetched = server.requests_ending_with(".sh");
    assert_eq!(
        installers_fetched, on_stack,
        "every installer for the stack is fetched once"
    );
    let second = cached("two");
    assert_eq!(
        server.requests_ending_with(".sh"),
        installers_fetched,
        "the download cache is reused"
    );
    assert_eq!(first.file_name(), second.file_name());
    assert_eq!(
        first.file_name().unwrap().to_string_lossy(),
        format!(
            "conda_buildpack-cached-cflinuxfs4-v{}.zip",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(
        fs::read(&first).unwrap() == fs::read(&second).unwrap(),
        "the two zips differ"
    );
    let sums = fs::read_to_string(first.with_file_name(format!(
        "{}.SHA256SUMS",
        first.file_name().unwrap().to_string_lossy()
    )))
    .unwrap();
    assert!(
        sums.ends_with(&format!(
            "  {}\n",
            first.file_name().unwrap().to_string_lossy()
        )),
        "{sums}"
    );

    // CF's packager layout: dependencies/<md5 of uri>/<file>, `file:` and `stack:` in the
    // manifest, Unix modes stored.
    let mut zip = zip::ZipArchive::new(fs::File::open(&first).unwrap()).unwrap();
    let names: Vec<String> = zip.file_names().map(str::to_string).collect();
    assert_eq!(
        names
            .iter()
            .filter(|name| name.starts_with("dependencies/"))
            .count(),
        on_stack,
        "{names:?}"
    );
    let manifest: serde_yaml_ng::Value = {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut zip.by_name("manifest.yml").unwrap(), &mut text)
            .unwrap();
        serde_yaml_ng::from_str(&text).unwrap()
    };
    assert_eq!(manifest["stack"], "cflinuxfs4");
    for dependency in manifest["dependencies"].as_sequence().unwrap() {
        let uri = dependency["uri"].as_str().unwrap();
        let file = dependency["file"].as_str().unwrap();
        let expected = format!(
            "dependencies/{:x}/{}",
            md5::Md5::digest(uri.as_bytes()),
            uri.rsplit('/').next().unwrap()
        );
        assert_eq!(file, expected);
        assert!(names.contains(&expected));
        assert!(dependency.get("cf_stacks").is_none());
    }
    assert_eq!(
        zip.by_name("bin/supply").unwrap().unix_mode().unwrap() & 0o777,
        0o755
    );

    let uncached = package(&server, &dir.path().join("three"), &Packaging::default());
    let zip = zip::ZipArchive::new(fs::File::open(&uncached).unwrap()).unwrap();
    assert!(
        !zip.file_names()
            .any(|name| name.starts_with("dependencies/")),
        "an uncached zip carries no dependency"
    );
}

#[test]
fn packaging_shows_progress_as_lines_in_a_pipeline_and_as_bars_on_a_terminal() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let manifest = support::fixture_manifest(&server, dir.path());
    let command = |output: &str| {
        format!(
            "{} package --cached --stack cflinuxfs4 --manifest {} --source {} --output {} --cache-dir {}",
            support::BINARY,
            manifest.display(),
            support::repo().display(),
            dir.path().join(output).display(),
            dir.path().join(format!("downloads-{output}")).display(),
        )
    };
    let piped = Command::new("sh")
        .arg("-c")
        .arg(command("piped"))
        .output()
        .unwrap();
    assert!(
        piped.status.success(),
        "{}",
        String::from_utf8_lossy(&piped.stderr)
    );
    let text = String::from_utf8_lossy(&piped.stderr);
    assert!(
        text.contains(&format!(
            "Download [{}/installers/Miniconda2-4.7.12.1-Linux-x86_64.sh]",
            server.url()
        )),
        "{text}"
    );
    assert!(
        text.contains("Miniconda2-4.7.12.1-Linux-x86_64.sh: "),
        "a plain line per download: {text}"
    );
    assert!(
        !text.contains('\r') && !text.contains('\u{1b}'),
        "no bar without a terminal: {text:?}"
    );
    // On a terminal (script(1) gives the command a pseudo-terminal), indicatif draws bars.
    let terminal = Command::new("script")
        .args(["-qec", &command("terminal"), "/dev/null"])
        .output()
        .unwrap();
    assert!(
        terminal.status.success(),
        "{}",
        String::from_utf8_lossy(&terminal.stdout)
    );
    let text = String::from_utf8_lossy(&terminal.stdout);
    assert!(
        text.contains('\r') || text.contains('\u{1b}'),
        "a bar on a terminal: {text:?}"
    );
}
