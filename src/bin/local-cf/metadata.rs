//! What the builder tells Cloud Controller (`result.json`) and the launcher
//! (`staging_info.yml`, JSON despite its name), in the shapes buildpackapplifecycle writes.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::process_types::ProcessTypes;

/// One entry of `lifecycle_metadata.buildpacks`: the key CF staged with, and the name and
/// version the buildpack declared in `DEPS/IDX/config.yml`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct BuildpackMetadata {
    pub(crate) key: String,
    pub(crate) name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) version: String,
}

impl BuildpackMetadata {
    /// Reads `config.yml` from the buildpack's deps directory when it is there and valid,
    /// as CF does; a legacy `bin/compile` buildpack has none (its `DEPS/IDX` was removed).
    pub(crate) fn read(key: &str, deps_index_dir: &Path) -> Self {
        #[derive(Deserialize)]
        struct ConfigYml {
            #[serde(default)]
            name: Option<serde_yaml_ng::Value>,
            #[serde(default)]
            version: Option<serde_yaml_ng::Value>,
        }
        let text = |value: Option<serde_yaml_ng::Value>| match value {
            Some(serde_yaml_ng::Value::String(text)) => text,
            Some(serde_yaml_ng::Value::Number(number)) => number.to_string(),
            _ => String::new(),
        };
        let config = fs::read_to_string(deps_index_dir.join("config.yml"))
            .ok()
            .and_then(|content| serde_yaml_ng::from_str::<ConfigYml>(&content).ok());
        match config {
            Some(config) => Self {
                key: key.to_owned(),
                name: text(config.name),
                version: text(config.version),
            },
            None => Self {
                key: key.to_owned(),
                name: String::new(),
                version: String::new(),
            },
        }
    }
}

#[derive(Serialize)]
struct StagingResult<'a> {
    lifecycle_metadata: LifecycleMetadata<'a>,
    /// `null` after a failed script, as the real builder writes it.
    process_types: Option<BTreeMap<&'a str, &'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    processes: Option<Vec<Process<'a>>>,
    execution_metadata: &'static str,
    lifecycle_type: &'static str,
}

#[derive(Serialize)]
struct LifecycleMetadata<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    buildpack_key: &'a str,
    detected_buildpack: &'a str,
    buildpacks: &'a [BuildpackMetadata],
}

#[derive(Serialize)]
struct Process<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    command: &'a str,
}

#[derive(Serialize)]
struct StagingInfo<'a> {
    detected_buildpack: &'a str,
    start_command: &'a str,
}

/// `result.json`: the last buildpack is the one CF reports as detected. Without process
/// types (a script failed) it is what the real builder writes on failure.
pub(crate) fn result_json(
    buildpacks: &[BuildpackMetadata],
    process_types: Option<&ProcessTypes>,
) -> String {
    let last = buildpacks.last();
    let result = StagingResult {
        lifecycle_metadata: LifecycleMetadata {
            buildpack_key: last.map_or("", |bp| bp.key.as_str()),
            detected_buildpack: last.map_or("", |bp| bp.name.as_str()),
            buildpacks,
        },
        process_types: process_types.map(|types| types.iter().collect()),
        processes: process_types.map(|types| {
            types
                .iter()
                .map(|(kind, command)| Process { kind, command })
                .collect()
        }),
        execution_metadata: "",
        lifecycle_type: "buildpack",
    };
    json_line(&result)
}

/// `staging_info.yml`: what the launcher reads to find the start command.
pub(crate) fn staging_info(
    buildpacks: &[BuildpackMetadata],
    process_types: &ProcessTypes,
) -> String {
    json_line(&StagingInfo {
        detected_buildpack: buildpacks.last().map_or("", |bp| bp.name.as_str()),
        start_command: process_types.get("web").unwrap_or(""),
    })
}

/// Go's `json.Encoder` ends each value with a newline.
fn json_line(value: &impl Serialize) -> String {
    // Serialising these plain structs cannot fail; an empty object keeps the file valid JSON
    // should it ever.
    let mut text = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

/// The start command recorded in a droplet's `staging_info.yml`. CF's launcher reads it
/// with a YAML parser, which accepts the JSON the builder wrote.
pub(crate) fn start_command_from_staging_info(text: &str) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Info {
        #[serde(default)]
        start_command: Option<String>,
    }
    if text.trim().is_empty() {
        return Ok(String::new());
    }
    serde_yaml_ng::from_str::<Info>(text)
        .map(|info| info.start_command.unwrap_or_default())
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process_types::parse_release;

    #[test]
    fn result_json_has_cf_shape() {
        let buildpacks = [BuildpackMetadata {
            key: "conda.zip".to_owned(),
            name: "conda".to_owned(),
            version: "1.2.3".to_owned(),
        }];
        let types = parse_release("default_process_types: {web: run}").unwrap_or_default();
        let json: serde_json::Value =
            serde_json::from_str(&result_json(&buildpacks, Some(&types))).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({
                "lifecycle_metadata": {
                    "buildpack_key": "conda.zip",
                    "detected_buildpack": "conda",
                    "buildpacks": [{"key": "conda.zip", "name": "conda", "version": "1.2.3"}]
                },
                "process_types": {"web": "run"},
                "processes": [{"type": "web", "command": "run"}],
                "execution_metadata": "",
                "lifecycle_type": "buildpack"
            })
        );
    }

    #[test]
    fn staging_info_round_trips_through_the_launcher_reader() {
        let buildpacks = [BuildpackMetadata {
            key: "k".into(),
            name: "n".into(),
            version: String::new(),
        }];
        let types = parse_release("default_process_types: {web: 'python app.py --port $PORT'}")
            .unwrap_or_default();
        let info = staging_info(&buildpacks, &types);
        assert_eq!(
            info,
            "{\"detected_buildpack\":\"n\",\"start_command\":\"python app.py --port $PORT\"}\n"
        );
        assert_eq!(
            start_command_from_staging_info(&info),
            Ok("python app.py --port $PORT".to_owned())
        );
        assert_eq!(start_command_from_staging_info(""), Ok(String::new()));
        assert!(start_command_from_staging_info("[unclosed").is_err());
    }
}
