//! The developer's side: a developer's conda, and `conda-buildpack vendor` run as they run it.

use super::*;

/// A developer's own conda: the fixture Miniconda installed into `into`.
pub(crate) fn developer_conda(into: &Path) -> PathBuf {
    let fixtures = fixtures();
    let installer = fixtures.installer("miniconda3-py39", "25.7.0");
    developer_conda_from(
        &fixtures
            .dir
            .join("installers")
            .join(installer["file"].as_str().unwrap()),
        into,
    )
}

/// A developer's own conda from the given installer, installed into `into`.
pub(crate) fn developer_conda_from(installer: &Path, into: &Path) -> PathBuf {
    let prefix = into.join("miniconda3");
    let status = Command::new("bash")
        .arg(installer)
        .args(["-b", "-p"])
        .arg(&prefix)
        .env("HOME", into)
        .env("TMPDIR", std::env::temp_dir())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the developer's conda installs");
    prefix.join("bin/conda")
}

pub(crate) fn vendor(
    app: &Path,
    conda: &Path,
    server: &Server,
    home: &Path,
) -> std::process::Output {
    vendor_command(app, conda, server, home).output().unwrap()
}

/// `conda-buildpack vendor` as a developer runs it, with the test's channels and pip cache.
pub(crate) fn vendor_command(app: &Path, conda: &Path, server: &Server, home: &Path) -> Command {
    let mut command = Command::new(BINARY);
    command
        .arg("vendor")
        .arg(app)
        .arg("--conda")
        .arg(conda)
        .env("CONDA_CHANNEL_ALIAS", server.url())
        .env("CONDA_DEFAULT_CHANNELS", format!("{}/main", server.url()))
        .env("CONDA_PKGS_DIRS", home.join("pkgs"))
        .env("PIP_CACHE_DIR", home.join("pip-cache"))
        .env("HOME", home);
    command
}

/// `conda-buildpack vendor APP ARGS` as a developer runs it, which must succeed; its output.
pub(crate) fn vendor_ok(
    app: &Path,
    conda: &Path,
    server: &Server,
    home: &Path,
    args: &[&str],
) -> Output {
    let vendored = vendor_command(app, conda, server, home)
        .args(args)
        .output()
        .unwrap();
    assert!(
        vendored.status.success(),
        "conda-buildpack vendor failed: {}{}",
        stdout(&vendored),
        String::from_utf8_lossy(&vendored.stderr)
    );
    vendored
}

/// What a developer does before pushing to an offline foundation: install conda, then
/// `conda-buildpack vendor APP`. Returns the developer's conda.
pub(crate) fn vendor_as_developer(app: &Path, server: &Server, home: &Path) -> PathBuf {
    let conda = developer_conda(home);
    let vendored = vendor_ok(app, &conda, server, home, &[]);
    assert!(
        stdout(&vendored).contains("Vendored "),
        "{}",
        stdout(&vendored)
    );
    conda
}
