//! The channels conda searches, worked out as conda 26 does for `conda env create -f`, so the
//! log can say which channels were searched and why: the environment file's channels first,
//! then conda's own list (`CONDA_CHANNELS`, or else the installer's `.condarc`), less
//! `defaults` when the file says `nodefaults`. Names become URLs through
//! `CONDA_CHANNEL_ALIAS`, and `defaults` through `CONDA_DEFAULT_CHANNELS`.
//!
//! conda's own error text is no help here: its `PackagesNotFoundInChannelsError` lists only
//! conda's own list, never the file's channels it searched first (measured on 26.7.1).

use std::fmt;
use std::path::Path;

/// Where conda's channel names resolve when no alias is set.
const DEFAULT_ALIAS: &str = "https://conda.anaconda.org";
/// What `defaults` means when `CONDA_DEFAULT_CHANNELS` is not set.
const DEFAULT_CHANNELS: [&str; 2] = [
    "https://repo.anaconda.com/pkgs/main",
    "https://repo.anaconda.com/pkgs/r",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Channel {
    /// As written: `conda-forge`, `defaults`, a URL.
    pub(crate) name: String,
    /// Who named it: `environment.yml`, `CONDA_CHANNELS`, `the installer's .condarc`.
    pub(crate) source: String,
    pub(crate) urls: Vec<String>,
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} from {}", self.name, self.source)?;
        if self.urls.len() != 1 || self.urls[0] != self.name {
            write!(f, " ({})", self.urls.join(", "))?;
        }
        Ok(())
    }
}

/// The channels conda will search, in order, each once.
pub(crate) fn effective(
    file_name: &str,
    file_channels: &[String],
    installer_prefix: &Path,
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<Channel> {
    let alias = lookup("CONDA_CHANNEL_ALIAS")
        .filter(|alias| !alias.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_ALIAS.to_string());
    let defaults: Vec<String> = lookup("CONDA_DEFAULT_CHANNELS")
        .map(|value| split_list(&value))
        .filter(|list| !list.is_empty())
        .unwrap_or_else(|| DEFAULT_CHANNELS.iter().map(ToString::to_string).collect());
    let no_defaults = file_channels.iter().any(|name| name == "nodefaults");
    let (context, context_source) = match lookup("CONDA_CHANNELS").map(|value| split_list(&value)) {
        Some(list) if !list.is_empty() => (list, "CONDA_CHANNELS".to_string()),
        _ => (
            condarc_channels(&installer_prefix.join(".condarc")),
            "the installer's .condarc".to_string(),
        ),
    };
    let mut channels: Vec<Channel> = Vec::new();
    let named = file_channels
        .iter()
        .filter(|name| *name != "nodefaults")
        .map(|name| (name.clone(), file_name.to_string()))
        .chain(
            context
                .into_iter()
                .filter(|name| !(no_defaults && name == "defaults"))
                .map(|name| (name, context_source.clone())),
        );
    for (name, source) in named {
        if channels.iter().any(|known| known.name == name) {
            continue;
        }
        let urls = if name == "defaults" {
            defaults.clone()
        } else if name.contains("://") {
            vec![name.clone()]
        } else {
            vec![format!("{}/{name}", alias.trim_end_matches('/'))]
        };
        channels.push(Channel { name, source, urls });
    }
    channels
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

/// Makes the installer's `.condarc` name exactly `channels`: conda merges the lists of every
/// source (`CONDA_CHANNELS` adds to the `.condarc`'s, it does not replace them), so leaving out
/// `defaults` for `nodefaults` or a vendored channel means editing the base's own file. The base
/// is the buildpack's scratch install, never part of the droplet.
pub(crate) fn restrict_installer_condarc(
    installer_prefix: &Path,
    channels: &[String],
) -> std::io::Result<()> {
    let path = installer_prefix.join(".condarc");
    let mut mapping = match std::fs::read_to_string(&path) {
        Ok(text) => match serde_yaml_ng::from_str(&text) {
            Ok(serde_yaml_ng::Value::Mapping(mapping)) => mapping,
            _ => serde_yaml_ng::Mapping::new(),
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => serde_yaml_ng::Mapping::new(),
        Err(error) => return Err(error),
    };
    mapping.insert(
        "channels".into(),
        serde_yaml_ng::Value::Sequence(channels.iter().cloned().map(Into::into).collect()),
    );
    let text = serde_yaml_ng::to_string(&mapping).map_err(std::io::Error::other)?;
    std::fs::write(&path, text)
}

/// The `channels:` of a `.condarc`; none when it is missing or unreadable (conda would then
/// say `NoChannelsConfiguredError` itself).
fn condarc_channels(path: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let Ok(serde_yaml_ng::Value::Mapping(mapping)) = serde_yaml_ng::from_str(&text) else {
        return Vec::new();
    };
    match mapping.get("channels") {
        Some(serde_yaml_ng::Value::Sequence(items)) => items
            .iter()
            .filter_map(|item| item.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn installer(condarc: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".condarc"), condarc).unwrap();
        dir
    }

    #[test]
    fn the_files_channels_come_first_then_the_installers() {
        let miniconda = installer("channels:\n  - defaults\nsolver: classic\n");
        let env = |name: &str| match name {
            "CONDA_CHANNEL_ALIAS" => Some("http://mirror:1".to_string()),
            _ => None,
        };
        let channels = effective(
            "environment.yml",
            &["conda-forge".into()],
            miniconda.path(),
            env,
        );
        assert_eq!(
            channels.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "conda-forge from environment.yml (http://mirror:1/conda-forge)",
                "defaults from the installer's .condarc (https://repo.anaconda.com/pkgs/main, https://repo.anaconda.com/pkgs/r)"
            ]
        );
    }

    #[test]
    fn the_installers_condarc_is_restricted_keeping_its_other_settings() {
        let miniconda = installer("channels:\n  - defaults\nsolver: classic\n");
        restrict_installer_condarc(miniconda.path(), &["conda-forge".into()]).unwrap();
        assert_eq!(
            condarc_channels(&miniconda.path().join(".condarc")),
            ["conda-forge"]
        );
        let text = std::fs::read_to_string(miniconda.path().join(".condarc")).unwrap();
        assert!(text.contains("solver: classic"), "{text}");
    }

    #[test]
    fn nodefaults_and_conda_channels_change_the_list() {
        let miniconda = installer("channels: [defaults]\n");
        let env = |name: &str| match name {
            "CONDA_DEFAULT_CHANNELS" => Some("http://mirror:1/main".to_string()),
            _ => None,
        };
        let channels = effective(
            "environment.yml",
            &["conda-forge".into(), "nodefaults".into()],
            miniconda.path(),
            env,
        );
        assert_eq!(channels.len(), 1, "{channels:?}");
        let env = |name: &str| match name {
            "CONDA_CHANNELS" => Some("bioconda, defaults".to_string()),
            "CONDA_DEFAULT_CHANNELS" => Some("http://mirror:1/main".to_string()),
            _ => None,
        };
        let channels = effective("environment.yml", &[], miniconda.path(), env);
        assert_eq!(
            channels.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "bioconda from CONDA_CHANNELS (https://conda.anaconda.org/bioconda)",
                "defaults from CONDA_CHANNELS (http://mirror:1/main)"
            ]
        );
    }
}
