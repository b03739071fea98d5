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

use crate::staging::condarc::Layer;

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

/// The channels conda will search, in order, each once. `layers` are conda's configuration
/// files, the most specific first (a bound service's and the app's `.condarc`, then the
/// installer's): conda merges their lists and takes each scalar from the first that sets it.
pub(crate) fn effective(
    file_name: &str,
    file_channels: &[String],
    layers: &[Layer],
    lookup: impl Fn(&str) -> Option<String>,
) -> Vec<Channel> {
    let merged = crate::staging::condarc::merge(layers);
    let alias = lookup("CONDA_CHANNEL_ALIAS")
        .filter(|alias| !alias.trim().is_empty())
        .or(merged.channel_alias)
        .unwrap_or_else(|| DEFAULT_ALIAS.to_string());
    let defaults: Vec<String> = lookup("CONDA_DEFAULT_CHANNELS")
        .map(|value| split_list(&value))
        .filter(|list| !list.is_empty())
        .or_else(|| (!merged.default_channels.is_empty()).then_some(merged.default_channels))
        .unwrap_or_else(|| DEFAULT_CHANNELS.iter().map(ToString::to_string).collect());
    let no_defaults = file_channels.iter().any(|name| name == "nodefaults");
    let context: Vec<(String, String)> =
        match lookup("CONDA_CHANNELS").map(|value| split_list(&value)) {
            Some(list) if !list.is_empty() => list
                .into_iter()
                .map(|name| (name, "CONDA_CHANNELS".to_string()))
                .collect(),
            _ => layers
                .iter()
                .flat_map(|layer| {
                    layer
                        .channels
                        .iter()
                        .map(|name| (name.clone(), layer.source.clone()))
                })
                .collect(),
        };
    let mut channels: Vec<Channel> = Vec::new();
    let named = file_channels
        .iter()
        .filter(|name| *name != "nodefaults")
        .map(|name| (name.clone(), file_name.to_string()))
        .chain(
            context
                .into_iter()
                .filter(|(name, _)| !(no_defaults && name == "defaults")),
        );
    for (name, source) in named {
        if channels.iter().any(|known| known.name == name) {
            continue;
        }
        let urls = if name == "defaults" {
            defaults.clone()
        } else if name.contains("://") {
            vec![name.clone()]
        } else if let Some(custom) = merged.custom_channels.get(&name) {
            vec![format!("{}/{name}", custom.trim_end_matches('/'))]
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

#[cfg(test)]
mod tests {
    use super::*;

    fn installer(condarc: &str) -> Vec<Layer> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".condarc"), condarc).unwrap();
        vec![crate::staging::condarc::read_installer(dir.path())]
    }

    #[test]
    fn the_files_channels_come_first_then_the_installers() {
        let miniconda = installer("channels:\n  - defaults\nsolver: classic\n");
        let env = |name: &str| match name {
            "CONDA_CHANNEL_ALIAS" => Some("http://mirror:1".to_string()),
            _ => None,
        };
        let channels = effective("environment.yml", &["conda-forge".into()], &miniconda, env);
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
        let miniconda = tempfile::tempdir().unwrap();
        std::fs::write(
            miniconda.path().join(".condarc"),
            "channels:\n  - defaults\nsolver: classic\n",
        )
        .unwrap();
        restrict_installer_condarc(miniconda.path(), &["conda-forge".into()]).unwrap();
        assert_eq!(
            crate::staging::condarc::read_installer(miniconda.path()).channels,
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
            &miniconda,
            env,
        );
        assert_eq!(channels.len(), 1, "{channels:?}");
        let env = |name: &str| match name {
            "CONDA_CHANNELS" => Some("bioconda, defaults".to_string()),
            "CONDA_DEFAULT_CHANNELS" => Some("http://mirror:1/main".to_string()),
            _ => None,
        };
        let channels = effective("environment.yml", &[], &miniconda, env);
        assert_eq!(
            channels.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "bioconda from CONDA_CHANNELS (https://conda.anaconda.org/bioconda)",
                "defaults from CONDA_CHANNELS (http://mirror:1/main)"
            ]
        );
    }

    #[test]
    fn a_service_the_apps_condarc_and_the_installers_default_channels_are_shown_as_conda_uses_them()
    {
        let mut layers = vec![
            Layer {
                source: "the service conda-mirror".into(),
                channel_alias: Some("https://u:p@mirror/conda".into()),
                ..Layer::default()
            },
            Layer {
                source: "the app's .condarc".into(),
                channels: vec!["internal".into()],
                custom_channels: [("internal".to_string(), "https://art.corp/c".to_string())]
                    .into(),
                ..Layer::default()
            },
        ];
        layers.extend(installer(
            "channels: [defaults]\ndefault_channels: [https://mirror/pkgs/main]\n",
        ));
        let channels = effective("environment.yml", &["conda-forge".into()], &layers, |_| {
            None
        });
        assert_eq!(
            channels.iter().map(ToString::to_string).collect::<Vec<_>>(),
            [
                "conda-forge from environment.yml (https://u:p@mirror/conda/conda-forge)",
                "internal from the app's .condarc (https://art.corp/c/internal)",
                "defaults from the installer's .condarc (https://mirror/pkgs/main)"
            ]
        );
        let alias = |name: &str| (name == "CONDA_CHANNEL_ALIAS").then(|| "http://env".to_string());
        let channels = effective("environment.yml", &["conda-forge".into()], &layers, alias);
        assert_eq!(channels[0].urls, ["http://env/conda-forge"]);
    }
}
