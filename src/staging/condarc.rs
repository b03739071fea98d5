//! conda's configuration files as staging uses them: the installer's `.condarc` (read to name
//! the channels conda searches), the app's own `.condarc` (read for channel settings, with
//! the keys that would move files or take over what the buildpack controls refused), and
//! the staging's `.condarc`, which carries a bound service's and the app's settings, and
//! their credentials, to conda.
//!
//! Precedence, as conda applies it: `CONDA_*` variables, then the staging's file (a bound
//! service first, then the app's `.condarc`), then the installer's. conda merges lists
//! (`channels`, `default_channels`) across files, the more specific file first; scalar keys
//! come from the most specific file that sets them.
//!
//! The staging file is `HOME/.condarc` of conda's scratch home (inside the cache's work dir,
//! never the droplet), readable by its owner only, and removed as soon as conda is done.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::staging::services::CondaService;

/// What one source says about channels, in conda's `.condarc` terms.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Layer {
    /// Who says it, for the log: `the service conda-mirror`, `the app's .condarc`.
    pub(crate) source: String,
    pub(crate) channels: Vec<String>,
    pub(crate) channel_alias: Option<String>,
    pub(crate) default_channels: Vec<String>,
    pub(crate) custom_channels: BTreeMap<String, String>,
    pub(crate) channel_priority: Option<String>,
    pub(crate) solver: Option<String>,
    /// `false`, or a CA bundle's path.
    pub(crate) ssl_verify: Option<String>,
    pub(crate) allowlist_channels: Vec<String>,
}

/// The keys of the app's `.condarc` the buildpack reads.
const READ: [&str; 8] = [
    "channels",
    "channel_alias",
    "default_channels",
    "custom_channels",
    "channel_priority",
    "solver",
    "ssl_verify",
    "allowlist_channels",
];

/// Keys of the app's `.condarc` that are refused, and why.
const REFUSED: [(&str, &str); 14] = [
    (
        "pkgs_dirs",
        "the buildpack keeps conda's package cache in the app cache, out of the droplet",
    ),
    (
        "envs_dirs",
        "the buildpack decides where the environment is built and run",
    ),
    ("root_prefix", "the buildpack installs conda itself"),
    (
        "always_copy",
        "the buildpack copies files so that later buildpacks cannot corrupt the cache",
    ),
    (
        "always_softlink",
        "links into conda's package cache would point outside the droplet",
    ),
    (
        "allow_softlinks",
        "links into conda's package cache would point outside the droplet",
    ),
    (
        "offline",
        "the buildpack goes offline by itself for a vendored app",
    ),
    ("always_yes", "staging is never interactive"),
    (
        "quiet",
        "the buildpack decides what the staging log shows (BP_DEBUG shows everything)",
    ),
    ("json", "the buildpack reads conda's own output"),
    (
        "auto_update_conda",
        "the installer's conda is the one the manifest pins",
    ),
    (
        "notify_outdated_conda",
        "the installer's conda is the one the manifest pins",
    ),
    (
        "envs_path",
        "the buildpack decides where the environment is built and run",
    ),
    ("changeps1", "staging has no shell prompt"),
];

#[derive(Debug, thiserror::Error)]
pub(crate) enum CondarcError {
    #[error("the app's .condarc cannot be read: {0}")]
    Unreadable(String),
    #[error("the app's .condarc is not a YAML mapping of conda settings: {0}")]
    NotAMapping(String),
    #[error("the app's .condarc sets `{key}`, which the buildpack controls: {reason}")]
    Refused { key: String, reason: &'static str },
    #[error("the app's .condarc has `{key}` that is not {expected}")]
    WrongType { key: String, expected: &'static str },
}

/// The app's `.condarc` as a layer, and the keys it sets that staging does not read.
pub(crate) type AppCondarc = Option<(Layer, Vec<String>)>;

/// The app's `.condarc` and the keys it sets that staging does not read (for a warning).
pub(crate) fn read_app(build_dir: &Path) -> Result<AppCondarc, CondarcError> {
    let path = build_dir.join(".condarc");
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(CondarcError::Unreadable(error.to_string())),
    };
    let mapping = match serde_yaml_ng::from_str::<Value>(&text) {
        Ok(Value::Mapping(mapping)) => mapping,
        Ok(Value::Null) => Mapping::new(),
        Ok(_) => return Err(CondarcError::NotAMapping("it is not a mapping".into())),
        // The YAML error names a line and column; values stay out of the log (a .condarc may
        // hold a password) because the log scrubs every URL's credentials anyway.
        Err(error) => return Err(CondarcError::NotAMapping(error.to_string())),
    };
    let mut ignored = Vec::new();
    for key in mapping.keys() {
        let key = key.as_str().unwrap_or("(not a string)");
        if let Some((_, reason)) = REFUSED.iter().find(|(refused, _)| *refused == key) {
            return Err(CondarcError::Refused {
                key: key.to_string(),
                reason,
            });
        }
        if !READ.contains(&key) {
            ignored.push(key.to_string());
        }
    }
    let mut layer = layer("the app's .condarc", &mapping, true)?;
    if let Some(path) = &layer.ssl_verify {
        // A CA bundle in the app is named relative to it.
        if !matches!(path.as_str(), "true" | "false") && !path.starts_with('/') {
            layer.ssl_verify = Some(build_dir.join(path).display().to_string());
        }
    }
    register_secrets(&layer);
    Ok(Some((layer, ignored)))
}

/// The installer's `.condarc` (none, or unreadable: an empty layer, and conda then says
/// `NoChannelsConfiguredError` itself).
pub(crate) fn read_installer(installer_prefix: &Path) -> Layer {
    fs::read_to_string(installer_prefix.join(".condarc"))
        .ok()
        .and_then(|text| serde_yaml_ng::from_str::<Value>(&text).ok())
        .and_then(|value| match value {
            Value::Mapping(mapping) => layer("the installer's .condarc", &mapping, false).ok(),
            _ => None,
        })
        .unwrap_or_else(|| Layer {
            source: "the installer's .condarc".into(),
            ..Layer::default()
        })
}

impl Layer {
    pub(crate) fn from_service(service: &CondaService) -> Self {
        Self {
            source: format!("the service {}", service.name),
            channels: service.channels.clone(),
            channel_alias: service.channel_alias.clone(),
            default_channels: service.default_channels.clone(),
            ..Self::default()
        }
    }
}

fn layer(source: &str, mapping: &Mapping, strict: bool) -> Result<Layer, CondarcError> {
    let wrong = |key: &str, expected| CondarcError::WrongType {
        key: key.into(),
        expected,
    };
    let scalar = |key: &str| -> Result<Option<String>, CondarcError> {
        match mapping.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(Value::Bool(flag)) => Ok(Some(flag.to_string())),
            Some(_) if !strict => Ok(None),
            Some(_) => Err(wrong(key, "a string")),
        }
    };
    let list = |key: &str| -> Result<Vec<String>, CondarcError> {
        match mapping.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Sequence(items)) => items
                .iter()
                .map(|item| match item {
                    Value::String(text) => Ok(text.clone()),
                    _ => Err(wrong(key, "a list of strings")),
                })
                .filter(|item| strict || item.is_ok())
                .collect(),
            Some(_) if !strict => Ok(Vec::new()),
            Some(_) => Err(wrong(key, "a list of strings")),
        }
    };
    let custom_channels = match mapping.get("custom_channels") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Mapping(map)) => map
            .iter()
            .filter_map(|(name, url)| Some((name.as_str()?.to_string(), url.as_str()?.to_string())))
            .collect(),
        Some(_) if !strict => BTreeMap::new(),
        Some(_) => return Err(wrong("custom_channels", "a mapping of names to URLs")),
    };
    Ok(Layer {
        source: source.into(),
        channels: list("channels")?,
        channel_alias: scalar("channel_alias")?,
        default_channels: list("default_channels")?,
        custom_channels,
        channel_priority: scalar("channel_priority")?,
        solver: scalar("solver")?,
        ssl_verify: scalar("ssl_verify")?,
        allowlist_channels: list("allowlist_channels")?,
    })
}

fn register_secrets(layer: &Layer) {
    for url in layer
        .channels
        .iter()
        .chain(&layer.default_channels)
        .chain(&layer.allowlist_channels)
        .chain(layer.channel_alias.iter())
        .chain(layer.custom_channels.values())
    {
        crate::staging::secrets::register_urls_in(url);
    }
}

/// Layers merged as conda merges files: lists concatenated (first layer first, each item
/// once), scalars and custom channels from the first layer that sets them.
pub(crate) fn merge(layers: &[Layer]) -> Layer {
    let mut merged = Layer::default();
    let extend = |into: &mut Vec<String>, items: &[String]| {
        for item in items {
            if !into.contains(item) {
                into.push(item.clone());
            }
        }
    };
    for layer in layers {
        extend(&mut merged.channels, &layer.channels);
        extend(&mut merged.default_channels, &layer.default_channels);
        extend(&mut merged.allowlist_channels, &layer.allowlist_channels);
        for (name, url) in &layer.custom_channels {
            merged
                .custom_channels
                .entry(name.clone())
                .or_insert_with(|| url.clone());
        }
        for (into, from) in [
            (&mut merged.channel_alias, &layer.channel_alias),
            (&mut merged.channel_priority, &layer.channel_priority),
            (&mut merged.solver, &layer.solver),
            (&mut merged.ssl_verify, &layer.ssl_verify),
        ] {
            if into.is_none() {
                into.clone_from(from);
            }
        }
    }
    merged
}

/// The staging's `.condarc`, removed when dropped: it may hold credentials.
pub(crate) struct StagingCondarc {
    path: PathBuf,
}

impl Drop for StagingCondarc {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Writes `layers` (the services', the app's) into `home/.condarc`, where conda reads a
/// user's settings; nothing when they say nothing.
pub(crate) fn write_staging(home: &Path, layers: &[Layer]) -> io::Result<Option<StagingCondarc>> {
    let merged = merge(layers);
    let mut mapping = Mapping::new();
    let list =
        |items: &[String]| Value::Sequence(items.iter().cloned().map(Value::String).collect());
    if !merged.channels.is_empty() {
        mapping.insert("channels".into(), list(&merged.channels));
    }
    if !merged.default_channels.is_empty() {
        mapping.insert("default_channels".into(), list(&merged.default_channels));
    }
    if !merged.allowlist_channels.is_empty() {
        mapping.insert(
            "allowlist_channels".into(),
            list(&merged.allowlist_channels),
        );
    }
    if !merged.custom_channels.is_empty() {
        let custom = merged
            .custom_channels
            .iter()
            .map(|(name, url)| (Value::String(name.clone()), Value::String(url.clone())))
            .collect();
        mapping.insert("custom_channels".into(), Value::Mapping(custom));
    }
    for (key, value) in [
        ("channel_alias", &merged.channel_alias),
        ("channel_priority", &merged.channel_priority),
        ("solver", &merged.solver),
    ] {
        if let Some(value) = value {
            mapping.insert(key.into(), Value::String(value.clone()));
        }
    }
    if let Some(verify) = &merged.ssl_verify {
        let value = match verify.as_str() {
            "false" => Value::Bool(false),
            "true" => Value::Bool(true),
            path => Value::String(path.into()),
        };
        mapping.insert("ssl_verify".into(), value);
    }
    if mapping.is_empty() {
        return Ok(None);
    }
    let path = home.join(".condarc");
    let text = serde_yaml_ng::to_string(&Value::Mapping(mapping)).map_err(io::Error::other)?;
    crate::io::fsutil::write_owner_only(&path, text.as_bytes())?;
    Ok(Some(StagingCondarc { path }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(text: &str) -> (tempfile::TempDir, Result<AppCondarc, CondarcError>) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".condarc"), text).unwrap();
        let read = read_app(dir.path());
        (dir, read)
    }

    #[test]
    fn the_apps_condarc_gives_its_channel_settings_and_names_what_it_ignores() {
        let (dir, read) = app(
            "channels: [conda-forge, bioconda]\nchannel_alias: https://mirror/conda\n\
             custom_channels:\n  internal: https://artifacts.corp/conda\n\
             channel_priority: strict\nssl_verify: certs/ca.pem\nshow_channel_urls: true\n",
        );
        let (layer, ignored) = read.unwrap().unwrap();
        assert_eq!(layer.channels, ["conda-forge", "bioconda"]);
        assert_eq!(layer.channel_alias.as_deref(), Some("https://mirror/conda"));
        assert_eq!(
            layer.custom_channels["internal"],
            "https://artifacts.corp/conda"
        );
        assert_eq!(layer.channel_priority.as_deref(), Some("strict"));
        assert_eq!(
            layer.ssl_verify,
            Some(dir.path().join("certs/ca.pem").display().to_string())
        );
        assert_eq!(ignored, ["show_channel_urls"]);
    }

    #[test]
    fn keys_the_buildpack_controls_are_refused_by_name_with_the_reason() {
        let (_dir, read) = app("channels: [conda-forge]\npkgs_dirs: [/home/vcap/pkgs]\n");
        let error = read.unwrap_err();
        assert_eq!(
            error.to_string(),
            "the app's .condarc sets `pkgs_dirs`, which the buildpack controls: the buildpack \
             keeps conda's package cache in the app cache, out of the droplet"
        );
        let (_dir, read) = app("channels: conda-forge\n");
        assert!(matches!(read, Err(CondarcError::WrongType { .. })));
        let (_dir, read) = app("- a list\n");
        assert!(matches!(read, Err(CondarcError::NotAMapping(_))));
    }

    #[test]
    fn the_staging_file_merges_as_conda_does_and_is_removed_when_dropped() {
        let service = Layer {
            source: "the service m".into(),
            channels: vec!["internal".into()],
            channel_alias: Some("https://u:p@mirror/conda".into()),
            ..Layer::default()
        };
        let app = Layer {
            source: "the app's .condarc".into(),
            channels: vec!["conda-forge".into(), "internal".into()],
            channel_alias: Some("https://ignored".into()),
            ssl_verify: Some("false".into()),
            ..Layer::default()
        };
        let home = tempfile::tempdir().unwrap();
        let written = write_staging(home.path(), &[service, app])
            .unwrap()
            .unwrap();
        let path = home.path().join(".condarc");
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "channels:\n- internal\n- conda-forge\nchannel_alias: https://u:p@mirror/conda\nssl_verify: false\n"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        drop(written);
        assert!(!path.exists());
        assert!(write_staging(home.path(), &[]).unwrap().is_none());
    }
}
