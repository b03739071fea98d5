//! Archives are input too: the conda packages a developer vendors into the app or a channel
//! serves, and the buildpack zip an operator uploads. Entries that climb out with `../` or an absolute path,
//! links (alone or through each other) and hard links that lead out, devices, duplicates and
//! decompression bombs are all refused with the offending entry named, in bounded time and
//! memory, and nothing is ever written outside the target.

use crate::support;

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::support::{Packaging, Server, StageOptions, app, fixtures, package, scratch, stage};

/// Where the hostile entries aim: a directory no test creates, unique to this process.
fn target_outside() -> PathBuf {
    std::env::temp_dir().join(format!("conda-bp-escape-{}", std::process::id()))
}

/// A tar entry: (path, kind), kind being `file:<content>`, `dir`, `symlink:<target>`,
/// `hardlink:<target>`, `chardev`, `fifo` or `longname:<bytes>` (a GNU long-name header of
/// that many real bytes, followed by a small file).
type Entry = (String, String);

fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, kind) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        // set_path refuses `..` and absolute paths; hostile archives need raw names.
        let name = &mut header.as_old_mut().name;
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
        if let Some(content) = kind.strip_prefix("file:") {
            header.set_size(content.len() as u64);
            header.set_cksum();
            builder.append(&header, content.as_bytes()).unwrap();
            continue;
        }
        if let Some(size) = kind.strip_prefix("longname:") {
            let size: u64 = size.parse().unwrap();
            header.set_entry_type(tar::EntryType::GNULongName);
            header.set_size(size);
            header.set_cksum();
            builder
                .append(&header, io::repeat(b'a').take(size))
                .unwrap();
            let mut file = tar::Header::new_gnu();
            file.set_path("short").unwrap();
            file.set_size(0);
            file.set_cksum();
            builder.append(&file, io::empty()).unwrap();
            continue;
        }
        header.set_size(0);
        match kind.split_once(':') {
            Some(("symlink", target)) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
            }
            Some(("hardlink", target)) => {
                header.set_entry_type(tar::EntryType::Link);
                header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
            }
            _ if kind == "dir" => header.set_entry_type(tar::EntryType::Directory),
            _ if kind == "chardev" => header.set_entry_type(tar::EntryType::Char),
            _ if kind == "fifo" => header.set_entry_type(tar::EntryType::Fifo),
            _ => panic!("unknown kind {kind}"),
        }
        header.set_cksum();
        builder.append(&header, io::empty()).unwrap();
    }
    builder.into_inner().unwrap()
}

fn index_json(name: &str) -> Entry {
    (
        "info/index.json".into(),
        format!(
            r#"file:{{"name": "{name}", "version": "1.0", "build": "0", "build_number": 0, "depends": [], "subdir": "linux-64"}}"#
        ),
    )
}

fn tar_bz2(entries: &[Entry]) -> Vec<u8> {
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    encoder.write_all(&tar(entries)).unwrap();
    encoder.finish().unwrap()
}

/// A `.conda`: a zip of `metadata.json`, `info-*.tar.zst` and `pkg-*.tar.zst`. The package
/// tar is streamed from `pkg` through the zstd command (fast at any build profile), so a
/// bomb of hundreds of megabytes costs a second to make.
fn conda(name: &str, pkg: impl FnOnce(&mut dyn Write)) -> Vec<u8> {
    let zstd = |write: &mut dyn FnMut(&mut dyn Write)| -> Vec<u8> {
        let mut child = Command::new("zstd")
            .args(["-1", "-q", "-c"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the zstd command (ci/setup installs it)");
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut bytes = Vec::new();
            stdout.read_to_end(&mut bytes).unwrap();
            bytes
        });
        write(&mut stdin);
        drop(stdin);
        assert!(child.wait().unwrap().success());
        reader.join().unwrap()
    };
    let info = zstd(&mut |out| out.write_all(&tar(&[index_json(name)])).unwrap());
    let mut pkg = Some(pkg);
    let pkg = zstd(&mut |out| (pkg.take().unwrap())(out));
    let mut zip = zip::ZipWriter::new(io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let dist = format!("{name}-1.0-0");
    zip.start_file("metadata.json", stored).unwrap();
    zip.write_all(br#"{"conda_pkg_format_version": 2}"#)
        .unwrap();
    zip.start_file(format!("info-{dist}.tar.zst"), stored)
        .unwrap();
    zip.write_all(&info).unwrap();
    zip.start_file(format!("pkg-{dist}.tar.zst"), stored)
        .unwrap();
    zip.write_all(&pkg).unwrap();
    zip.finish().unwrap().into_inner()
}

/// Writes a tar of `files` entries of `size` zero bytes each, without holding them in memory.
fn zeros_tar(out: &mut dyn Write, files: usize, size: u64) {
    for number in 0..files {
        let mut header = tar::Header::new_gnu();
        header.set_path(format!("share/zeros-{number}")).unwrap();
        header.set_mode(0o644);
        header.set_size(size);
        header.set_cksum();
        out.write_all(header.as_bytes()).unwrap();
        io::copy(&mut io::repeat(0).take(size), out).unwrap();
        let padding = (512 - size % 512) % 512;
        io::copy(&mut io::repeat(0).take(padding), out).unwrap();
    }
    out.write_all(&[0; 1024]).unwrap();
}

/// Stages `app` through `zip` with the network cut, `stage`'s TMPDIR and the output in `dir`.
fn stage_offline(
    app: &Path,
    zip: &Path,
    server: &Server,
    dir: &Path,
    case: &str,
) -> support::Staging {
    let options = StageOptions::with_channels(server).tmpdir(dir).offline();
    stage(app, &[zip], &options, &dir.join(case).join("out"))
}

#[test]
fn hostile_vendored_packages_are_refused_naming_the_entry_and_nothing_escapes() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(&server, dir.path(), &Packaging::cached());
    let outside = target_outside();
    let absolute = format!("{}/absolute", outside.display());
    let entry = |path: &str, kind: &str| (path.to_string(), kind.to_string());
    let escaping = format!("../../../../../../../..{}/climbed", outside.display());
    let cases: Vec<(&str, Vec<u8>, &str, String)> = vec![
        (
            "dotdot",
            tar_bz2(&[index_json("evil"), entry(&escaping, "file:boom")]),
            "tar.bz2",
            format!("has an entry that escapes the package: {escaping}"),
        ),
        (
            "absolute",
            tar_bz2(&[index_json("evil"), entry(&absolute, "file:boom")]),
            "tar.bz2",
            format!("has an entry that escapes the package: {absolute}"),
        ),
        (
            "symlink",
            tar_bz2(&[index_json("evil"), entry("lib/etc", "symlink:/etc")]),
            "tar.bz2",
            "has a link that points outside the package: lib/etc -> /etc".into(),
        ),
        (
            "symlink-chain",
            tar_bz2(&[
                index_json("evil"),
                entry("lib/up", "symlink:.."),
                entry("lib/out", "symlink:up/.."),
            ]),
            "tar.bz2",
            "has a link that points outside the package: lib/out -> up/..".into(),
        ),
        (
            "through-a-link",
            tar_bz2(&[
                index_json("evil"),
                entry("lib/up", "symlink:.."),
                entry("lib/out", "symlink:up/.."),
                entry("lib/out/planted", "file:boom"),
            ]),
            "tar.bz2",
            "has an entry that escapes the package: lib/out/planted".into(),
        ),
        (
            "hardlink",
            tar_bz2(&[
                index_json("evil"),
                entry("lib/shadow", "hardlink:../../etc/shadow"),
            ]),
            "tar.bz2",
            "has a link that points outside the package: lib/shadow -> ../../etc/shadow".into(),
        ),
        (
            "device",
            tar_bz2(&[index_json("evil"), entry("dev/sda", "chardev")]),
            "tar.bz2",
            "has a device or special file: dev/sda".into(),
        ),
        (
            "fifo",
            tar_bz2(&[index_json("evil"), entry("run/pipe", "fifo")]),
            "tar.bz2",
            "has a device or special file: run/pipe".into(),
        ),
        (
            "duplicate",
            tar_bz2(&[
                index_json("evil"),
                entry("lib/a.py", "file:one"),
                entry("lib/a.py", "file:two"),
            ]),
            "tar.bz2",
            "has the entry lib/a.py twice".into(),
        ),
        (
            "bomb",
            // 600 MiB of zeros in twelve files, a few hundred kilobytes packed.
            conda("evil", |out| zeros_tar(out, 12, 50 * 1024 * 1024)),
            "conda",
            "unpacks to more than 536870912 bytes (a decompression bomb?)".into(),
        ),
        (
            "long-name-bomb",
            // A GNU long name of 200 MiB: read whole, it would take that much memory.
            conda("evil", |out| {
                let mut bytes = tar(&[entry("././@LongLink", "longname:209715200")]);
                out.write_all(&bytes).unwrap();
                bytes.clear();
            }),
            "conda",
            "a tar extension header of 209715200 bytes".into(),
        ),
    ];
    for (case, bytes, extension, expected) in cases {
        let app = app("numpy-web", &dir.path().join(case));
        let vendor = app.join("vendor/linux-64");
        fs::create_dir_all(&vendor).unwrap();
        let file = format!("evil-1.0-0.{extension}");
        fs::write(vendor.join(&file), &bytes).unwrap();
        let staging = stage_offline(&app, &zip, &server, dir.path(), case);
        staging
            .assert_supply_failed()
            .assert_clean_log()
            .assert_bounded(30, 64)
            .assert_log_contains("The vendored packages cannot be used")
            .assert_log_contains(&format!("{file} "))
            .assert_log_contains(&expected)
            .assert_log_lacks("-----> Installing miniconda");
        assert!(!outside.exists(), "{case}: something was written outside");
    }
}

/// Rewrites the uncompressed size of the zip entry `name` (local header and central
/// directory) to `size`: a bomb's announcement without the bomb.
fn announce_size(zip: &Path, name: &str, size: u32) {
    let mut bytes = fs::read(zip).unwrap();
    let mut patched = 0;
    for (signature, size_at, name_length_at, name_at) in
        [(b"PK\x03\x04", 22, 26, 30), (b"PK\x01\x02", 24, 28, 46)]
    {
        let mut at = 0;
        while let Some(found) = bytes[at..]
            .windows(4)
            .position(|window| window == signature)
        {
            let start = at + found;
            let length = usize::from(u16::from_le_bytes([
                bytes[start + name_length_at],
                bytes[start + name_length_at + 1],
            ]));
            if bytes.get(start + name_at..start + name_at + length) == Some(name.as_bytes()) {
                bytes[start + size_at..start + size_at + 4].copy_from_slice(&size.to_le_bytes());
                patched += 1;
            }
            at = start + 4;
        }
    }
    assert_eq!(patched, 2, "the entry {name} is in the zip once");
    fs::write(zip, bytes).unwrap();
}

#[test]
fn a_hostile_buildpack_zip_is_refused_before_anything_is_written_outside() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let app = app("numpy-web", dir.path());
    let outside = target_outside();
    let absolute = format!("{}/planted", outside.display());
    let escaping = format!("../../../../../../../..{}/climbed", outside.display());
    let file = 0o100_644;
    let link = 0o120_777;
    // (case, extra entries as (name, bytes, full mode), what the refusal says)
    type Extra<'a> = Vec<(&'a str, &'a [u8], u32)>;
    let cases: Vec<(&str, Extra, String)> = vec![
        (
            "dotdot",
            vec![(escaping.as_str(), b"x", file)],
            format!("{escaping:?}, which would be written outside the buildpack's directory"),
        ),
        (
            "absolute",
            vec![(absolute.as_str(), b"x", file)],
            format!("{absolute:?}, which would be written outside the buildpack's directory"),
        ),
        (
            "symlink",
            vec![("lib/etc", b"/etc", link)],
            "the symlink \"lib/etc\" to \"/etc\", which points outside".into(),
        ),
        (
            "symlink-chain",
            vec![("lib/up", b"..", link), ("lib/out", b"up/..", link)],
            "the symlink \"lib/out\" to \"up/..\", which points outside".into(),
        ),
        (
            "device",
            vec![("dev/null", b"", 0o020_666)],
            "\"dev/null\", a device, fifo or socket".into(),
        ),
        (
            "duplicate",
            vec![("bin/supply", b"#!/bin/sh\necho replaced\n", 0o100_755)],
            "the entry \"bin/supply\" twice".into(),
        ),
        (
            "duplicate-spelled-differently",
            vec![("./bin//supply", b"#!/bin/sh\necho replaced\n", 0o100_755)],
            "the entry \"./bin//supply\" twice".into(),
        ),
        (
            "bomb",
            vec![("share/zeros", &[0; 4096], file)],
            "would unpack \"share/zeros\" to 3221225472 bytes".into(),
        ),
    ];
    for (case, extra, expected) in cases {
        let case_dir = dir.path().join(case);
        fs::create_dir_all(&case_dir).unwrap();
        let mut buildpack = support::scripted::Buildpack::new("hostile.zip")
            .script("supply", "echo supplied")
            .script("finalize", "true")
            .release_web("python app.py");
        for (name, bytes, mode) in extra {
            buildpack = buildpack.raw_entry(name, bytes, mode);
        }
        let hostile = buildpack.write(&case_dir);
        if case == "bomb" {
            announce_size(&hostile, "share/zeros", 3 << 30);
        }
        let staging = stage(
            &app,
            &[&hostile],
            &StageOptions::with_channels(&server).tmpdir(&case_dir),
            &case_dir.join("out"),
        );
        assert_eq!(staging.code, 1, "{case}:\n{}", staging.log);
        staging
            .assert_bounded(15, 64)
            .assert_log_contains(&expected)
            .assert_log_lacks("supplied")
            .assert_log_lacks("panicked");
        assert!(!outside.exists(), "{case}: something was written outside");
        // The staging root, with the half-unpacked buildpack, is cleaned up.
        let leftovers: Vec<_> = fs::read_dir(&case_dir)
            .unwrap()
            .flatten()
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("conda-buildpack-staging-")
            })
            .collect();
        assert!(leftovers.is_empty(), "{case}: the staging root was left");
    }
}

#[test]
fn a_cached_zip_whose_installer_was_altered_or_removed_is_never_run() {
    let dir = scratch();
    let server = Server::start(&fixtures().dir);
    let zip = package(&server, dir.path(), &Packaging::cached());
    let app = app("numpy-web", dir.path());
    // A copy of the cached zip with the default installer's bytes altered, or left out.
    let rewrite = |name: &str, alter: bool| -> PathBuf {
        let mut archive = zip::ZipArchive::new(fs::File::open(&zip).unwrap()).unwrap();
        let case_dir = dir.path().join(name);
        fs::create_dir_all(&case_dir).unwrap();
        let path = case_dir.join(zip.file_name().unwrap());
        let mut writer = zip::ZipWriter::new(fs::File::create(&path).unwrap());
        for index in 0..archive.len() {
            let is_installer = archive
                .by_index_raw(index)
                .unwrap()
                .name()
                .ends_with("Miniforge3-26.5.3-0-Linux-x86_64.sh");
            if !is_installer {
                writer
                    .raw_copy_file(archive.by_index_raw(index).unwrap())
                    .unwrap();
                continue;
            }
            if alter {
                let mut entry = archive.by_index(index).unwrap();
                let entry_name = entry.name().to_string();
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0xff;
                let options = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
                writer.start_file(entry_name, options).unwrap();
                writer.write_all(&bytes).unwrap();
            }
        }
        writer.finish().unwrap();
        path
    };
    let cases = [
        (
            "altered",
            rewrite("altered", true),
            "The cached buildpack's copy of miniforge3 26.5.3 is corrupt",
        ),
        (
            "missing",
            rewrite("missing", false),
            "The cached buildpack is missing miniforge3 26.5.3",
        ),
    ];
    for (case, zip, expected) in cases {
        let staging = stage_offline(&app, &zip, &server, dir.path(), case);
        staging
            .assert_supply_failed()
            .assert_bounded(30, 64)
            .assert_log_contains(expected)
            .assert_log_contains("Ask the platform operator to re-upload the cached buildpack zip")
            .assert_log_lacks("-----> Installing the conda environment");
        if case == "altered" {
            staging.assert_log_contains("dependency sha256 mismatch: expected sha256 ");
        }
    }
}

#[test]
fn a_hostile_package_from_a_channel_is_refused_by_conda_and_reported() {
    let dir = scratch();
    let fixtures = fixtures();
    // A mirror that serves the fixture channels and installers, plus one channel with a
    // package whose entry climbs out of conda's package cache.
    let mirror = dir.path().join("mirror");
    fs::create_dir_all(mirror.join("channels")).unwrap();
    std::os::unix::fs::symlink(fixtures.dir.join("installers"), mirror.join("installers")).unwrap();
    for channel in ["conda-forge", "main"] {
        std::os::unix::fs::symlink(
            fixtures.dir.join("channels").join(channel),
            mirror.join("channels").join(channel),
        )
        .unwrap();
    }
    let outside = target_outside();
    let escaping = format!("../../../../../../../..{}/climbed", outside.display());
    let hostile = tar_bz2(&[index_json("evil"), (escaping.clone(), "file:boom".into())]);
    let sha256 = {
        use sha2::Digest;
        format!("{:x}", sha2::Sha256::digest(&hostile))
    };
    let md5 = {
        use md5::Digest;
        format!("{:x}", md5::Md5::digest(&hostile))
    };
    let channel = mirror.join("channels/evil");
    for subdir in ["linux-64", "noarch"] {
        fs::create_dir_all(channel.join(subdir)).unwrap();
        let packages = if subdir == "linux-64" {
            serde_json::json!({"evil-1.0-0.tar.bz2": {
                "name": "evil", "version": "1.0", "build": "0", "build_number": 0,
                "depends": [], "subdir": "linux-64", "md5": md5, "sha256": sha256,
                "size": hostile.len()}})
        } else {
            serde_json::json!({})
        };
        fs::write(
            channel.join(subdir).join("repodata.json"),
            serde_json::json!({"info": {"subdir": subdir}, "packages": packages,
                               "packages.conda": {}, "repodata_version": 1})
            .to_string(),
        )
        .unwrap();
    }
    fs::write(channel.join("linux-64/evil-1.0-0.tar.bz2"), &hostile).unwrap();
    let server = Server::start(&mirror);
    let zip = package(&server, dir.path(), &Packaging::default());
    let app = app("numpy-web", dir.path());
    fs::write(
        app.join("environment.yml"),
        "channels: [conda-forge, evil]\ndependencies:\n  - python=3.11\n  - numpy=1.26\n  - evil\n",
    )
    .unwrap();
    let staging = stage(
        &app,
        &[&zip],
        &StageOptions::with_channels(&server).tmpdir(dir.path()),
        &dir.path().join("out"),
    );
    staging
        .assert_supply_failed()
        .assert_clean_log()
        .assert_bounded(60, 512)
        .assert_log_contains("conda failed to create the environment")
        .assert_log_contains("CondaVerificationError")
        .assert_log_contains(&escaping);
    assert!(!outside.exists(), "something was written outside");
}
