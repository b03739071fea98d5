//! The directories Cloud Foundry hands a buildpack and what this one leaves in `DEPS/IDX` for
//! the buildpacks after it and for the app at run time (the multi-buildpack layout that
//! libbuildpack-based final buildpacks read):
//!
//! ```text
//! DEPS/IDX/conda-env/     the conda environment, relocated to its run-time path
//! DEPS/IDX/bin/*          links to the environment's executables (PATH)
//! DEPS/IDX/lib, include   links to its libraries and headers (LD_LIBRARY_PATH, CPATH)
//! DEPS/IDX/pkgconfig      link to its pkg-config files (PKG_CONFIG_PATH)
//! DEPS/IDX/env/NAME       variables for the buildpacks that stage after this one
//! DEPS/IDX/profile.d/     the run-time environment, copied into place by the final buildpack
//! DEPS/IDX/config.yml     name, version and what was installed
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use crate::io::fsutil;
use crate::staging::buildpack;

/// The conda environment's directory inside `DEPS/IDX`. Not `env`: that name belongs to the
/// multi-buildpack environment-variable directory.
pub(crate) const ENV_DIR: &str = "conda-env";

#[derive(Debug, thiserror::Error)]
#[error("cannot write {path}: {source}")]
pub(crate) struct StagerError {
    pub(crate) path: PathBuf,
    pub(crate) source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> StagerError + '_ {
    move |source| StagerError {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Stager {
    pub(crate) build_dir: PathBuf,
    pub(crate) cache_dir: PathBuf,
    pub(crate) deps_dir: PathBuf,
    pub(crate) index: String,
    pub(crate) profile_dir: Option<PathBuf>,
    /// Where `DEPS/IDX` is when the app runs: `/home/vcap/deps/IDX`, or for the legacy
    /// `compile` path `/home/vcap/app/.cloudfoundry/0`.
    pub(crate) runtime_deps_idx: PathBuf,
}

/// What the layout advertises about the environment.
pub(crate) struct Facts<'a> {
    pub(crate) buildpack_version: &'a str,
    pub(crate) python_version: Option<String>,
    pub(crate) installer: String,
    pub(crate) variables: &'a BTreeMap<String, String>,
}

impl Stager {
    pub(crate) fn new(
        build_dir: &Path,
        cache_dir: &Path,
        deps_dir: &Path,
        index: &str,
        profile_dir: Option<&Path>,
    ) -> io::Result<Self> {
        Ok(Self {
            build_dir: std::path::absolute(build_dir)?,
            cache_dir: std::path::absolute(cache_dir)?,
            deps_dir: std::path::absolute(deps_dir)?,
            index: index.to_string(),
            profile_dir: profile_dir.map(std::path::absolute).transpose()?,
            runtime_deps_idx: Path::new("/home/vcap/deps").join(index),
        })
    }

    /// The legacy single-buildpack `compile BUILD CACHE`: deps live inside the app, at
    /// `.cloudfoundry/0`, and the profile scripts go into the app's `.profile.d`.
    pub(crate) fn for_compile(build_dir: &Path, cache_dir: &Path) -> io::Result<Self> {
        let build_dir = std::path::absolute(build_dir)?;
        let mut stager = Self::new(
            &build_dir,
            cache_dir,
            &build_dir.join(".cloudfoundry"),
            "0",
            Some(&build_dir.join(".profile.d")),
        )?;
        stager.runtime_deps_idx = PathBuf::from("/home/vcap/app/.cloudfoundry/0");
        Ok(stager)
    }

    pub(crate) fn deps_idx(&self) -> PathBuf {
        self.deps_dir.join(&self.index)
    }

    pub(crate) fn env_dir(&self) -> PathBuf {
        self.deps_idx().join(ENV_DIR)
    }

    pub(crate) fn runtime_env_dir(&self) -> PathBuf {
        self.runtime_deps_idx.join(ENV_DIR)
    }

    /// Writes everything in `DEPS/IDX` but the environment itself. Idempotent: a restored
    /// environment gets exactly the layout a fresh one gets.
    pub(crate) fn write_layout(&self, facts: &Facts<'_>) -> Result<(), StagerError> {
        let deps_idx = self.deps_idx();
        let env_dir = self.env_dir();

        let bin = deps_idx.join("bin");
        fsutil::remove_if_exists(&bin).map_err(at(&bin))?;
        fs::create_dir_all(&bin).map_err(at(&bin))?;
        let env_bin = env_dir.join("bin");
        if env_bin.is_dir() {
            let mut names: Vec<_> = fs::read_dir(&env_bin)
                .map_err(at(&env_bin))?
                .filter_map(Result::ok)
                .map(|entry| entry.file_name())
                .collect();
            names.sort();
            for name in names {
                let link = bin.join(&name);
                let target = Path::new("..").join(ENV_DIR).join("bin").join(&name);
                symlink(&target, &link).map_err(at(&link))?;
            }
        }
        for (link_name, target) in [
            ("lib", "lib"),
            ("include", "include"),
            ("pkgconfig", "lib/pkgconfig"),
        ] {
            let link = deps_idx.join(link_name);
            fsutil::remove_if_exists(&link).map_err(at(&link))?;
            if env_dir.join(target).is_dir() {
                symlink(Path::new(ENV_DIR).join(target), &link).map_err(at(&link))?;
            }
        }

        // Later buildpacks stage with these (libbuildpack reads DEPS/IDX/env/NAME).
        let env = deps_idx.join("env");
        fsutil::remove_if_exists(&env).map_err(at(&env))?;
        fs::create_dir_all(&env).map_err(at(&env))?;
        let mut staging_variables: BTreeMap<&str, String> = BTreeMap::new();
        staging_variables.insert("CONDA_PREFIX", env_dir.display().to_string());
        for (name, value) in facts.variables {
            staging_variables.insert(name, value.clone());
        }
        for (name, value) in &staging_variables {
            let path = env.join(name);
            fs::write(&path, value).map_err(at(&path))?;
        }

        let profile_d = deps_idx.join("profile.d");
        fs::create_dir_all(&profile_d).map_err(at(&profile_d))?;
        let script = profile_d.join("conda.sh");
        fs::write(&script, self.profile_script(facts.variables)).map_err(at(&script))?;

        let config = deps_idx.join("config.yml");
        fs::write(&config, self.config_yml(facts)).map_err(at(&config))?;
        Ok(())
    }

    /// The run-time environment. Paths are the fixed run-time ones the environment was
    /// relocated to, so the script does no work that grows with the environment.
    fn profile_script(&self, variables: &BTreeMap<String, String>) -> String {
        let prefix = self.runtime_env_dir();
        let mut script = format!(
            "# Written by the conda buildpack: the app's conda environment comes first on PATH.\n\
             export CONDA_PREFIX={prefix}\n\
             export CONDA_DEFAULT_ENV=\"$CONDA_PREFIX\"\n\
             export PATH=\"$CONDA_PREFIX/bin:$PATH\"\n",
            prefix = shell_quote(&prefix.display().to_string())
        );
        for (name, value) in variables {
            script.push_str(&format!("export {name}={}\n", shell_quote(value)));
        }
        script
    }

    fn config_yml(&self, facts: &Facts<'_>) -> String {
        let mut config = serde_yaml_ng::Mapping::new();
        config.insert("conda_env".into(), ENV_DIR.into());
        config.insert("installer".into(), facts.installer.clone().into());
        if let Some(version) = &facts.python_version {
            config.insert("python_version".into(), version.clone().into());
        }
        let mut document = serde_yaml_ng::Mapping::new();
        document.insert("name".into(), buildpack::NAME.into());
        document.insert("version".into(), facts.buildpack_version.into());
        document.insert("config".into(), serde_yaml_ng::Value::Mapping(config));
        serde_yaml_ng::to_string(&document).unwrap_or_default()
    }
}

/// Single-quotes a value for sh.
pub(crate) fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_exposes_the_environment_the_multi_buildpack_way() {
        let scratch = tempfile::tempdir().unwrap();
        let deps = scratch.path().join("deps");
        let stager = Stager::new(scratch.path(), scratch.path(), &deps, "3", None).unwrap();
        fs::create_dir_all(stager.env_dir().join("bin")).unwrap();
        fs::create_dir_all(stager.env_dir().join("lib/pkgconfig")).unwrap();
        fs::write(stager.env_dir().join("bin/python"), "").unwrap();
        let variables = BTreeMap::from([("GREETING".to_string(), "it's here".to_string())]);
        stager
            .write_layout(&Facts {
                buildpack_version: "1.2.3",
                python_version: Some("3.11.9".into()),
                installer: "miniconda3-py39 25.7.0".into(),
                variables: &variables,
            })
            .unwrap();
        let idx = deps.join("3");
        assert_eq!(
            fs::read_link(idx.join("bin/python")).unwrap(),
            Path::new("../conda-env/bin/python")
        );
        assert!(idx.join("bin/python").exists(), "the link resolves");
        assert_eq!(
            fs::read_link(idx.join("pkgconfig")).unwrap(),
            Path::new("conda-env/lib/pkgconfig")
        );
        assert!(!idx.join("include").exists());
        assert_eq!(
            fs::read_to_string(idx.join("env/GREETING")).unwrap(),
            "it's here"
        );
        assert_eq!(
            fs::read_to_string(idx.join("env/CONDA_PREFIX")).unwrap(),
            stager.env_dir().display().to_string()
        );
        let profile = fs::read_to_string(idx.join("profile.d/conda.sh")).unwrap();
        assert!(
            profile.contains("export CONDA_PREFIX='/home/vcap/deps/3/conda-env'"),
            "{profile}"
        );
        assert!(
            profile.contains("export GREETING='it'\\''s here'"),
            "{profile}"
        );
        let config: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&fs::read_to_string(idx.join("config.yml")).unwrap()).unwrap();
        assert_eq!(config["name"], "conda");
        assert_eq!(config["version"], "1.2.3");
        assert_eq!(config["config"]["python_version"], "3.11.9");
    }

    #[test]
    fn compile_puts_deps_inside_the_app() {
        let stager = Stager::for_compile(Path::new("/tmp/app"), Path::new("/tmp/cache")).unwrap();
        assert_eq!(
            stager.env_dir(),
            Path::new("/tmp/app/.cloudfoundry/0/conda-env")
        );
        assert_eq!(
            stager.runtime_env_dir(),
            Path::new("/home/vcap/app/.cloudfoundry/0/conda-env")
        );
        assert_eq!(
            stager.profile_dir.as_deref(),
            Some(Path::new("/tmp/app/.profile.d"))
        );
    }
}
