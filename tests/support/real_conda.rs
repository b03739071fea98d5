//! The real-conda world: installers made by `../shared/real/conda/make-installer.sh` around
//! real conda 26.7.1, and its channel of real packages (numpy, scipy, pandas, scikit-learn,
//! flask...), served on loopback by the same test server as the fixtures:
//!
//! ```text
//! target/real-conda/<digest>/
//!   installers/Miniforge3-real.sh       .condarc `channels: [conda-forge]` (Miniforge's), with
//!                                       the rattler solver and conda-lockfiles, as Miniforge
//!                                       26.5 and later ship them
//!   installers/Miniconda3-real.sh       .condarc `channels: [defaults]` (Miniconda's)
//!   installers/Miniconda3-real-tos.sh   the same with Anaconda's Terms of Service plugin
//!   channels/conda-forge -> ../shared/real/conda/channel
//!   channels/main/{linux-64,noarch} -> the same, with the real `terms.json` beside them
//! ```
//!
//! Every manifest entry is pointed at one of these installers (its sha256 the installer's
//! own), so the buildpack's choice of installer, download and verification run as shipped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::world::real_kit;
use super::{FileLock, Packaging, Server, repo};

pub(crate) const MINIFORGE: &str = "Miniforge3-real.sh";
pub(crate) const MINICONDA: &str = "Miniconda3-real.sh";
pub(crate) const MINICONDA_TOS: &str = "Miniconda3-real-tos.sh";

/// The built world, or `None` (after saying so on stderr) when `../shared/real` is absent.
pub(crate) fn world() -> Option<&'static Path> {
    static WORLD: OnceLock<Option<PathBuf>> = OnceLock::new();
    WORLD
        .get_or_init(|| {
            let Some(kit) = real_kit() else {
                eprintln!(
                    "skipped: the real-conda lane needs ../shared/real (real conda 26.7.1 and its \
                     channel), which this machine does not have"
                );
                return None;
            };
            Some(build(&kit.join("conda")))
        })
        .as_deref()
}

fn build(kit: &Path) -> PathBuf {
    let root = repo().join("target/real-conda");
    fs::create_dir_all(&root).unwrap();
    let _lock = FileLock::acquire(&root.join(".lock"));
    // The kit is read-only and versioned by its base tarball; a new kit gets a new world.
    let base = kit.join("conda-26.7.1-base-linux-64.tar.gz");
    let stamp = fs::metadata(&base).map(|m| m.len()).unwrap_or(0);
    // `-forge265`: Miniforge's installer has the rattler solver and lockfile plugins.
    let dir = root.join(format!("conda-26.7.1-{stamp}-forge265"));
    if dir.join("ready").is_file() {
        return dir;
    }
    let _ = fs::remove_dir_all(&dir);
    let installers = dir.join("installers");
    let channels = dir.join("channels");
    fs::create_dir_all(&installers).unwrap();
    fs::create_dir_all(channels.join("main")).unwrap();
    let channel = kit.join("channel");
    std::os::unix::fs::symlink(&channel, channels.join("conda-forge")).unwrap();
    for subdir in ["linux-64", "noarch"] {
        std::os::unix::fs::symlink(channel.join(subdir), channels.join("main").join(subdir))
            .unwrap();
    }
    fs::copy(kit.join("terms.json"), channels.join("main/terms.json")).unwrap();
    let forge_condarc = dir.join("miniforge.condarc");
    fs::write(
        &forge_condarc,
        "channels:\n  - conda-forge\nsolver: classic\n",
    )
    .unwrap();
    for (name, args) in [
        (
            MINIFORGE,
            vec![
                "--condarc".into(),
                forge_condarc.clone(),
                "--rattler".into(),
                "--lockfiles".into(),
            ],
        ),
        (MINICONDA, vec![]),
        (MINICONDA_TOS, vec![PathBuf::from("--tos")]),
    ] {
        let status = Command::new("bash")
            .arg(kit.join("make-installer.sh"))
            .arg(installers.join(name))
            .args(&args)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "make-installer.sh {name} failed");
    }
    fs::write(dir.join("ready"), "").unwrap();
    dir
}

/// The sha256 of an installer of the world.
fn sha256(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(fs::read(path).unwrap()))
}

/// Which installer the Miniconda entries of the manifest get.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miniconda {
    /// As Miniconda before 25.5: no Terms of Service plugin.
    Plain,
    /// As Miniconda 25.5 and later: Anaconda's Terms of Service plugin inside.
    WithTermsPlugin,
}

/// The repository's manifest with every entry served by `server` from the real installers:
/// Miniforge's for `miniforge3`, Miniconda's for the others.
pub(crate) fn manifest(server: &Server, into: &Path, miniconda: Miniconda) -> PathBuf {
    let world = world().expect("the real-conda world");
    let text = fs::read_to_string(repo().join("manifest.yml")).unwrap();
    let mut manifest: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    for dependency in manifest["dependencies"].as_sequence_mut().unwrap() {
        let file = match dependency["name"].as_str().unwrap() {
            name if name.starts_with("miniforge") => MINIFORGE,
            _ if miniconda == Miniconda::WithTermsPlugin => MINICONDA_TOS,
            _ => MINICONDA,
        };
        dependency["uri"] = format!("{}/installers/{file}", server.url()).into();
        dependency["sha256"] = sha256(&world.join("installers").join(file)).into();
    }
    fs::create_dir_all(into).unwrap();
    let path = into.join("real-conda-manifest.yml");
    fs::write(&path, serde_yaml_ng::to_string(&manifest).unwrap()).unwrap();
    path
}

/// Packaging with the real installers.
/// The environment.yml of the benchmarks' app: every real package the channel has a use for.
pub(crate) const PYDATA_ENVIRONMENT: &str = "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy\n  - scipy\n  - pandas\n  - scikit-learn\n  - flask\n";

/// The numpy + scipy + pandas + scikit-learn + flask app the benchmarks push, at `into/pydata`.
pub(crate) fn pydata_app(into: &Path) -> PathBuf {
    let app = into.join("pydata");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("environment.yml"), PYDATA_ENVIRONMENT).unwrap();
    std::fs::write(app.join("Procfile"), "web: python -m flask run\n").unwrap();
    app
}

pub(crate) fn packaging(server: &Server, into: &Path, miniconda: Miniconda) -> Packaging {
    Packaging {
        manifest: Some(manifest(server, into, miniconda)),
        ..Packaging::default()
    }
}

/// The real-conda world at conda-forge's size and in its format, for the stories and the
/// benchmark that size decides:
///
/// ```text
/// target/real-conda/<world>/conda-forge-sized/
///   installers -> ../installers
///   channels/conda-forge     mkbigchannel.py --scale 0.5 of mkcondachannel.py's `.conda`
///                            copy of the kit's channel: ~395k linux-64 + 50k noarch records
///   small/                   the same packages alone (the `.conda` copy), to compare with
/// ```
///
/// Built once (about a minute) and kept under `target/`, never committed.
pub(crate) fn conda_forge_sized() -> Option<&'static Path> {
    static BIG: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIG.get_or_init(|| {
        let world = world()?;
        let kit = real_kit()?.join("conda");
        let root = world.join("conda-forge-sized");
        fs::create_dir_all(&root).unwrap();
        let _lock = FileLock::acquire(&world.join(".big-lock"));
        if root.join("ready-with-small").is_file() {
            return Some(root);
        }
        // A python with conda-package-streaming for mkcondachannel.py: the kit's own base.
        let tools = root.join("tools");
        let _ = fs::remove_dir_all(&tools);
        let status = Command::new("bash")
            .arg(world.join("installers").join(MINIFORGE))
            .args(["-b", "-p"])
            .arg(&tools)
            .env("HOME", &root)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the kit's base installs");
        let python = tools.join("bin/python3");
        let conda_format = root.join("forge-conda");
        let channel = root.join("channels/conda-forge");
        fs::create_dir_all(root.join("channels")).unwrap();
        for (script, from, to, extra) in [
            (
                "mkcondachannel.py",
                kit.join("channel"),
                &conda_format,
                vec![],
            ),
            (
                "mkbigchannel.py",
                conda_format.clone(),
                &channel,
                vec!["--scale", "0.5"],
            ),
        ] {
            let status = Command::new(&python)
                .arg(kit.join(script))
                .arg(&from)
                .arg(to)
                .args(extra)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "{script} failed");
        }
        let _ = fs::remove_dir_all(&tools);
        let small = root.join("small");
        let _ = fs::remove_dir_all(&small);
        fs::create_dir_all(small.join("channels")).unwrap();
        std::os::unix::fs::symlink("../../forge-conda", small.join("channels/conda-forge"))
            .unwrap();
        std::os::unix::fs::symlink("../../installers", small.join("installers")).unwrap();
        let _ = fs::remove_file(root.join("installers"));
        std::os::unix::fs::symlink("../installers", root.join("installers")).unwrap();
        fs::write(root.join("ready-with-small"), "").unwrap();
        Some(root)
    })
    .as_deref()
}

/// The public channel URL a developer's lock names; a staging's `CONDA_CHANNEL_ALIAS` mirrors
/// it to the loopback server, as an operator's mirror would.
pub(crate) const PUBLIC_CHANNELS: &str = "https://conda.anaconda.org";

/// A developer's home under `dir` with the world's real Miniforge installed in it, as the
/// developer who runs `vendor` has: returns the home and its conda.
pub(crate) fn developer_miniforge(dir: &Path) -> (PathBuf, PathBuf) {
    let home = dir.join("developer");
    fs::create_dir_all(&home).unwrap();
    let installers = world().expect("the real-conda world").join("installers");
    let conda = super::developer_conda_from(&installers.join(MINIFORGE), &home);
    (home, conda)
}

/// A developer's real conda with conda's lockfile plugin (the world's Miniforge), pointed at a
/// server's channels: what builds real environments and writes the lockfiles stories push.
pub(crate) struct LockingDeveloper {
    conda: PathBuf,
    home: PathBuf,
    channels: String,
}

impl LockingDeveloper {
    /// Installs the Miniforge of `installers` into `home`, for channels served at `channels`.
    pub(crate) fn install(installers: &Path, home: &Path, channels: &str) -> Self {
        let conda = super::developer_conda_from(&installers.join(MINIFORGE), home);
        Self {
            conda,
            home: home.to_path_buf(),
            channels: channels.to_string(),
        }
    }

    /// `conda ARGS`, which must succeed.
    pub(crate) fn run(&self, args: &[&std::ffi::OsStr]) {
        let output = self.command().args(args).output().unwrap();
        assert!(
            output.status.success(),
            "conda {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// conda with the developer's HOME, package cache and channels.
    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(&self.conda);
        command
            .env("CONDA_CHANNEL_ALIAS", &self.channels)
            .env("CONDA_PKGS_DIRS", self.home.join("pkgs"))
            .env("HOME", &self.home);
        command
    }

    /// `conda export --format FORMAT` of `prefix`, with the server's URLs written as the
    /// public channel's (what a developer's lock holds).
    pub(crate) fn export(&self, prefix: &Path, format: &str) -> String {
        let file = self.home.join(format!("export-{format}"));
        self.run(&[
            "export".as_ref(),
            "-p".as_ref(),
            prefix.as_os_str(),
            "--format".as_ref(),
            format.as_ref(),
            "-f".as_ref(),
            file.as_os_str(),
        ]);
        fs::read_to_string(&file)
            .unwrap()
            .replace(&self.channels, PUBLIC_CHANNELS)
    }
}
