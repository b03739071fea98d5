use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::entry::{ARCHIVE, METADATA, Metadata};
use super::*;

use super::fingerprint::sample as fingerprint;

fn environment(root: &Path) -> PathBuf {
    let env = root.join("deps/0/conda-env");
    fs::create_dir_all(env.join("bin")).unwrap();
    fs::create_dir_all(env.join("lib/python3.11/site-packages/numpy")).unwrap();
    fs::write(env.join("bin/python"), "#!/bin/sh\n").unwrap();
    fs::set_permissions(env.join("bin/python"), fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(
        env.join("lib/python3.11/site-packages/numpy/__init__.py"),
        "x = 1\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("python", env.join("bin/python3")).unwrap();
    env
}

fn restored(cache: &AppCache, fingerprint: &Fingerprint, target: &Path) -> RestoreStats {
    match cache.restore(fingerprint, target) {
        Restore::Restored(stats) => stats,
        Restore::Corrupt(reason) => panic!("corrupt: {reason}"),
        Restore::Stale { reasons, .. } => panic!("stale: {reasons:?}"),
        Restore::Empty => panic!("empty"),
    }
}

#[test]
fn a_saved_environment_comes_back_identical_with_its_modes_links_and_times() {
    let scratch = tempfile::tempdir().unwrap();
    let env = environment(scratch.path());
    let source_mtime = fs::metadata(env.join("lib/python3.11/site-packages/numpy/__init__.py"))
        .unwrap()
        .mtime();
    let cache = AppCache::open(&scratch.path().join("cache")).unwrap();
    assert!(matches!(
        cache.restore(&fingerprint(), &scratch.path().join("x")),
        Restore::Empty
    ));
    cache.save(&fingerprint(), &env).unwrap();
    let target = scratch.path().join("deps2/0/conda-env");
    fs::create_dir_all(target.parent().unwrap()).unwrap();
    let stats = restored(&cache, &fingerprint(), &target);
    assert_eq!((stats.files, stats.bytes), (2, 16));
    assert_eq!(
        fs::read_link(target.join("bin/python3")).unwrap(),
        Path::new("python")
    );
    assert_eq!(
        fs::metadata(target.join("bin/python")).unwrap().mode() & 0o777,
        0o755
    );
    let init = target.join("lib/python3.11/site-packages/numpy/__init__.py");
    assert_eq!(fs::read_to_string(&init).unwrap(), "x = 1\n");
    // conda's .pyc files name their source's mtime: a restore keeps it.
    assert_eq!(fs::metadata(&init).unwrap().mtime(), source_mtime);
}

#[test]
fn what_a_later_buildpack_writes_into_a_restored_environment_never_reaches_the_cache() {
    let scratch = tempfile::tempdir().unwrap();
    let env = environment(scratch.path());
    let cache = AppCache::open(&scratch.path().join("cache")).unwrap();
    cache.save(&fingerprint(), &env).unwrap();
    let first = scratch.path().join("first");
    restored(&cache, &fingerprint(), &first);
    // A later buildpack, or the app, edits a file in place and adds one.
    fs::set_permissions(first.join("bin/python"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(first.join("bin/python"), "#!/bin/sh\necho changed\n").unwrap();
    fs::write(first.join("bin/extra"), "new").unwrap();
    let second = scratch.path().join("second");
    restored(&cache, &fingerprint(), &second);
    assert_eq!(
        fs::read_to_string(second.join("bin/python")).unwrap(),
        "#!/bin/sh\n"
    );
    assert!(!second.join("bin/extra").exists());
}

#[test]
fn a_changed_input_is_stale_with_every_reason() {
    let scratch = tempfile::tempdir().unwrap();
    let env = environment(scratch.path());
    let cache = AppCache::open(&scratch.path().join("cache")).unwrap();
    cache.save(&fingerprint(), &env).unwrap();
    let mut changed = fingerprint();
    changed.buildpack_version = "1.3.0".into();
    changed
        .inputs
        .insert("environment.yml".into(), "2".repeat(64));
    changed
        .settings
        .insert("CONDA_CHANNEL_ALIAS".into(), "x".into());
    let Restore::Stale {
        reasons,
        can_update,
    } = cache.restore(&changed, &scratch.path().join("t"))
    else {
        panic!("expected stale");
    };
    // Another buildpack version and settings: conda does not update that environment.
    assert!(!can_update);
    assert_eq!(
        reasons,
        [
            "buildpack 1.2.0 -> 1.3.0",
            "environment.yml changed",
            "CONDA_CHANNEL_ALIAS set"
        ]
    );
}

#[test]
fn a_changed_environment_starts_from_the_last_one_only_when_only_the_users_files_differ() {
    let scratch = tempfile::tempdir().unwrap();
    let env = environment(scratch.path());
    let cache = AppCache::open(&scratch.path().join("cache")).unwrap();
    cache.save(&fingerprint(), &env).unwrap();
    let mut one_more_package = fingerprint();
    one_more_package
        .inputs
        .insert("environment.yml".into(), "2".repeat(64));
    let Restore::Stale { can_update, .. } =
        cache.restore(&one_more_package, &scratch.path().join("exact"))
    else {
        panic!("expected stale");
    };
    assert!(can_update, "only environment.yml changed");
    let target = scratch.path().join("start");
    let stats = cache
        .restore_starting_point(&one_more_package, &target)
        .unwrap()
        .expect("the last environment is a starting point");
    assert_eq!(stats.files, 2);
    assert_eq!(
        fs::read_to_string(target.join("bin/python")).unwrap(),
        "#!/bin/sh\n"
    );

    let mut other_buildpack = one_more_package.clone();
    other_buildpack.buildpack_version = "1.3.0".into();
    let mut other_settings = one_more_package.clone();
    other_settings
        .settings
        .insert("CONDA_CHANNEL_ALIAS".into(), "x".into());
    for fingerprint in [other_buildpack, other_settings] {
        let target = scratch.path().join(fingerprint.key());
        assert!(
            cache
                .restore_starting_point(&fingerprint, &target)
                .unwrap()
                .is_none()
        );
        assert!(!target.exists());
    }

    // A damaged starting point is named and dropped, never half unpacked.
    let entry = cache.entries().pop().unwrap();
    let archive = entry.join(ARCHIVE);
    let size = fs::metadata(&archive).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&archive)
        .unwrap()
        .set_len(size / 2)
        .unwrap();
    let target = scratch.path().join("damaged");
    let reason = cache
        .restore_starting_point(&one_more_package, &target)
        .unwrap_err();
    assert!(reason.contains("truncated or replaced"), "{reason}");
    assert!(!target.exists());
    assert!(cache.entries().is_empty());
}

/// What Diego does to the cache between stagings: every file a new copy (hard links
/// broken) with a new mtime, modes through a 022 umask.
fn round_trip_through_diego(dir: &Path) {
    for entry in fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let metadata = fs::symlink_metadata(&path).unwrap();
        if metadata.is_dir() {
            round_trip_through_diego(&path);
        } else if metadata.is_file() {
            let bytes = fs::read(&path).unwrap();
            fs::remove_file(&path).unwrap();
            fs::write(&path, bytes).unwrap();
            let mode = metadata.mode() & 0o7777 & !0o022;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

#[test]
fn an_entry_survives_diegos_round_trip_and_is_restored() {
    let scratch = tempfile::tempdir().unwrap();
    let env = environment(scratch.path());
    fs::set_permissions(env.join("bin/python"), fs::Permissions::from_mode(0o775)).unwrap();
    let cache_dir = scratch.path().join("cache");
    let cache = AppCache::open(&cache_dir).unwrap();
    cache.save(&fingerprint(), &env).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    round_trip_through_diego(&cache_dir);
    let target = scratch.path().join("restored");
    let stats = restored(&cache, &fingerprint(), &target);
    assert!(stats.files > 0);
    assert_eq!(
        fs::read(target.join("bin/python")).unwrap(),
        fs::read(env.join("bin/python")).unwrap()
    );
    // The mode inside the archive is the one it was built with, not the round trip's.
    assert_eq!(
        fs::metadata(target.join("bin/python")).unwrap().mode() & 0o777,
        0o775
    );
}

#[test]
fn every_kind_of_damage_is_caught_before_a_restore() {
    type Damage = fn(&Path);
    let cases: [(&str, Damage, &str); 7] = [
        (
            "no metadata",
            |entry| fs::remove_file(entry.join(METADATA)).unwrap(),
            "its metadata is unreadable",
        ),
        (
            "edited metadata",
            |entry| {
                let text = fs::read_to_string(entry.join(METADATA)).unwrap();
                fs::write(entry.join(METADATA), text.replace("1.2.0", "1.2.1")).unwrap();
            },
            "its metadata was modified",
        ),
        (
            "another format",
            |entry| {
                let text = fs::read_to_string(entry.join(METADATA)).unwrap();
                fs::write(
                    entry.join(METADATA),
                    text.replace("\"format\":3", "\"format\":7"),
                )
                .unwrap();
            },
            "it was written in cache format 7; this buildpack reads format 3",
        ),
        (
            "no archive (a partial entry)",
            |entry| fs::remove_file(entry.join(ARCHIVE)).unwrap(),
            "its archive is missing",
        ),
        (
            "a truncated archive",
            |entry| {
                let bytes = fs::read(entry.join(ARCHIVE)).unwrap();
                fs::write(entry.join(ARCHIVE), &bytes[..bytes.len() / 2]).unwrap();
            },
            "were written (truncated or replaced)",
        ),
        (
            "an edited archive",
            |entry| {
                let mut bytes = fs::read(entry.join(ARCHIVE)).unwrap();
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0xff;
                fs::write(entry.join(ARCHIVE), bytes).unwrap();
            },
            "its archive's content is not what was written (edited)",
        ),
        (
            "garbage metadata",
            |entry| fs::write(entry.join(METADATA), "{not json").unwrap(),
            "its metadata is not valid",
        ),
    ];
    for (what, damage, expected) in cases {
        let scratch = tempfile::tempdir().unwrap();
        let env = environment(scratch.path());
        let cache = AppCache::open(&scratch.path().join("cache")).unwrap();
        cache.save(&fingerprint(), &env).unwrap();
        let entry = cache.entries().pop().unwrap();
        damage(&entry);
        let target = scratch.path().join("restored");
        let Restore::Corrupt(reason) = cache.restore(&fingerprint(), &target) else {
            panic!("{what}: not caught");
        };
        assert!(reason.contains(expected), "{what}: {reason}");
        assert!(
            !target.exists(),
            "{what}: a half-restored environment was left"
        );
        assert!(
            cache.entries().is_empty(),
            "{what}: the damaged entry was kept"
        );
    }
}

#[test]
fn a_foreign_entry_is_not_restored_under_another_name() {
    let scratch = tempfile::tempdir().unwrap();
    let env = environment(scratch.path());
    let cache = AppCache::open(&scratch.path().join("cache")).unwrap();
    let mut other = fingerprint();
    other
        .inputs
        .insert("environment.yml".into(), "9".repeat(64));
    cache.save(&other, &env).unwrap();
    fs::rename(cache.entry_for(&other), cache.entry_for(&fingerprint())).unwrap();
    let Restore::Corrupt(reason) = cache.restore(&fingerprint(), &scratch.path().join("t")) else {
        panic!("a foreign entry was restored");
    };
    assert_eq!(reason, "its fingerprint does not match its name");
}

/// An archive entry: its path and `Ok(link target)` or `Err(file content)`.
type Forged<'a> = (&'a str, Result<&'a str, &'a str>);

/// Rewrites the entry's archive with `entries` and records it in the metadata: nothing about
/// the digest is secret.
fn forge(entry: &Path, entries: &[Forged<'_>]) {
    let archive = entry.join(ARCHIVE);
    let mut builder = tar::Builder::new(
        zstd::stream::write::Encoder::new(fs::File::create(&archive).unwrap(), 1)
            .unwrap()
            .auto_finish(),
    );
    for (path, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o755);
        match content {
            Ok(link) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, path, link).unwrap();
            }
            Err(text) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(text.len() as u64);
                // Written raw: the tar crate refuses `..` in the path it is given.
                let name = path.as_bytes();
                header.as_old_mut().name[..name.len()].copy_from_slice(name);
                header.set_cksum();
                builder.append(&header, text.as_bytes()).unwrap();
            }
        }
    }
    drop(builder.into_inner().unwrap());
    let metadata = Metadata::read(entry).unwrap();
    let mut record = metadata.archive.clone();
    record.size = fs::metadata(&archive).unwrap().len();
    record.digest = super::entry::digest(&archive).unwrap();
    let forged = Metadata::new(&metadata.fingerprint, record);
    fs::write(entry.join(METADATA), serde_json::to_vec(&forged).unwrap()).unwrap();
}

#[test]
fn a_forged_archive_cannot_write_outside_the_environment() {
    let cases: [(&str, &[Forged<'_>], &str); 3] = [
        (
            "a climbing path",
            &[("../../planted", Err("x"))],
            "an entry that escapes: ../../planted",
        ),
        (
            "an absolute path",
            &[("/tmp/planted-by-cache", Err("x"))],
            "an entry that escapes",
        ),
        (
            "a file below a link",
            &[("out", Ok("/tmp")), ("out/planted-by-cache", Err("x"))],
            "an entry that escapes: out/planted-by-cache",
        ),
    ];
    for (what, entries, expected) in cases {
        let scratch = tempfile::tempdir().unwrap();
        let env = environment(scratch.path());
        let cache = AppCache::open(&scratch.path().join("cache")).unwrap();
        cache.save(&fingerprint(), &env).unwrap();
        forge(&cache.entries().pop().unwrap(), entries);
        let target = scratch.path().join("a/b/restored");
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        let Restore::Corrupt(reason) = cache.restore(&fingerprint(), &target) else {
            panic!("{what}: a forged entry was restored");
        };
        assert!(reason.contains(expected), "{what}: {reason}");
        assert!(!scratch.path().join("a/planted").exists(), "{what}");
        assert!(!Path::new("/tmp/planted-by-cache").exists(), "{what}");
        assert!(!target.exists(), "{what}");
    }
}

#[test]
fn an_interrupted_save_leaves_the_old_entry() {
    let scratch = tempfile::tempdir().unwrap();
    let env = environment(scratch.path());
    let root = scratch.path().join("cache");
    let cache = AppCache::open(&root).unwrap();
    cache.save(&fingerprint(), &env).unwrap();
    // A staging killed while writing its entry leaves an incoming dir behind.
    let incoming = root.join(ENVIRONMENT_DIR).join(".incoming-999");
    fs::create_dir_all(&incoming).unwrap();
    fs::write(incoming.join(ARCHIVE), "half").unwrap();
    let cache = AppCache::open(&root).unwrap();
    assert!(!incoming.exists());
    restored(&cache, &fingerprint(), &scratch.path().join("t"));
}

#[test]
fn the_cache_keeps_the_environment_and_nothing_else() {
    let scratch = tempfile::tempdir().unwrap();
    let env = environment(scratch.path());
    let root = scratch.path().join("cache");
    let cache = AppCache::open(&root).unwrap();
    // What this staging and older buildpack versions leave behind.
    for dir in [
        cache.pkgs_dir(),
        cache.pip_dir(),
        cache.installers_dir(),
        root.join("pkgs"),
        root.join("installers"),
    ] {
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("leftover"), vec![0_u8; 4096]).unwrap();
    }
    cache.save(&fingerprint(), &env).unwrap();
    let size = cache.prune();
    let mut left: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["environment"]);
    let entry = cache.entries().pop().unwrap();
    assert_eq!(
        size,
        fs::metadata(entry.join(ARCHIVE)).unwrap().len()
            + fs::metadata(entry.join(METADATA)).unwrap().len()
    );
}
