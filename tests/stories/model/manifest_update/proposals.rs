//! What the update proposes and writes: the verified diff, comments kept, checksums that
//! disagree, the keep window, defaults, stopped lines and Python's end of life.

use super::*;

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
