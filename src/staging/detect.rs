//! `detect BUILD_DIR`: a conda app has an environment file (or an `@EXPLICIT` spec file).
//! Exit 0 printing the buildpack's name and version, or exit 1 silently. It runs for every
//! push on a foundation where the buildpack is installed, so it reads nothing but names.

use std::path::Path;
use std::process::ExitCode;

use crate::staging::app::App;
use crate::staging::buildpack;

pub(crate) fn run(build_dir: &Path) -> ExitCode {
    if App::is_conda_app(build_dir) {
        let version = buildpack::own_dir()
            .map(|dir| buildpack::version_in(&dir))
            .unwrap_or_else(|_| env!("CARGO_PKG_VERSION").to_string());
        println!("{} {version}", buildpack::NAME);
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
