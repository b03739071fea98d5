//! Running conda the way a staging container needs it: non-interactive, quiet, no update
//! nags, its package cache in the buildpack's cache dir (never in the droplet), and its HOME
//! and TMPDIR inside the cache dir so nothing is written outside DEPS/IDX and the cache.
//! Every setting goes through conda's documented `CONDA_*` variables, so the operator's own
//! (`CONDA_CHANNEL_ALIAS` for a mirror, proxies) still apply.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::io::scratch::Scratch;
use crate::staging::log;

pub(crate) struct Conda<'a> {
    pub(crate) executable: PathBuf,
    pub(crate) pkgs_dir: PathBuf,
    pub(crate) pip_cache_dir: PathBuf,
    pub(crate) scratch: &'a Scratch,
    /// Only cached packages and `file://` channels (vendored apps).
    pub(crate) offline: bool,
    /// `vendor/pip/`: pip's only source, with no index (apps with vendored pip files).
    pub(crate) pip_find_links: Option<PathBuf>,
    /// The solver to run (`CONDA_SOLVER`), once the buildpack has chosen one.
    pub(crate) solver: Option<String>,
    /// conda's own channel list (`CONDA_CHANNELS`), when the buildpack must replace it.
    pub(crate) channels: Option<Vec<String>>,
    /// Settings for conda and pip the staging decided (a bound service's pip index, the
    /// platform's CA bundle): each only when the user's environment does not set it.
    pub(crate) env: Vec<(String, std::ffi::OsString)>,
}

impl Conda<'_> {
    pub(crate) fn command(&self) -> Command {
        let mut command = self.command_for(&self.executable);
        if let Some(solver) = &self.solver {
            command.env("CONDA_SOLVER", solver);
        }
        if let Some(channels) = &self.channels {
            command.env("CONDA_CHANNELS", channels.join(","));
        }
        command
    }

    /// Another program of the base (its python), with the environment conda gets.
    pub(crate) fn command_for(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        self.scratch.apply(&mut command);
        let quiet = if log::debug_enabled() {
            "false"
        } else {
            "true"
        };
        command
            .env("CONDA_PKGS_DIRS", &self.pkgs_dir)
            .env("CONDA_QUIET", quiet)
            .env("CONDA_ALWAYS_YES", "true")
            .env("CONDA_NOTIFY_OUTDATED_CONDA", "false")
            .env("CONDA_AUTO_UPDATE_CONDA", "false")
            .env("CONDA_REPORT_ERRORS", "false")
            .env("CONDA_CHANGEPS1", "false")
            // conda hard-links environment files to its package cache by default. The
            // environment is handed to later buildpacks, which may edit files in place; with
            // links those edits would corrupt the cached packages every later build reuses.
            .env("CONDA_ALWAYS_COPY", "true")
            // pip, run by conda for `pip:` entries: no prompts, no bars, no self-update nag,
            // its wheel cache beside conda's.
            .env("PIP_NO_INPUT", "1")
            .env("PIP_PROGRESS_BAR", "off")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .env("PIP_NO_COLOR", "1")
            .env("PIP_CACHE_DIR", &self.pip_cache_dir)
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME")
            .env_remove("CONDA_PREFIX")
            .env_remove("CONDA_DEFAULT_ENV");
        for (name, value) in &self.env {
            command.env(name, value);
        }
        if self.offline {
            command.env("CONDA_OFFLINE", "true");
        }
        if let Some(wheelhouse) = &self.pip_find_links {
            // conda runs pip with a requirements file of its own: pip's settings are the only
            // way to point it at the wheelhouse, and they override the file's index options.
            command
                .env("PIP_NO_INDEX", "1")
                .env("PIP_FIND_LINKS", wheelhouse)
                .env_remove("PIP_INDEX_URL")
                .env_remove("PIP_EXTRA_INDEX_URL");
        }
        command
    }
}
