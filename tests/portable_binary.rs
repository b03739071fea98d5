//! The packaged executable runs on cflinuxfs3 (glibc 2.27) and cflinuxfs4 (glibc 2.35) because
//! it needs no C library at all: it is linked statically. A dynamic build would require the
//! GLIBC_2.34 symbols of the build machine and fail on cflinuxfs3 at the first `detect`.
//! And it is the buildpack alone: the local Cloud Foundry (`stage`, `launch`, the builder
//! model) is the `local-cf` binary, which never goes into a zip.

use std::fs;
use std::io::Read as _;
use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

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
