//! Process types as CF's builder collects them: `launch.yml` of the supply buildpacks, then
//! the final buildpack's `launch.yml` or its `bin/release` output, then the app's `Procfile`,
//! each overriding the previous one per process type.
//!
//! CF parses these with Go's yaml.v2 into `map[string]string`, which accepts any scalar as a
//! string (`web: 8080` is the command "8080", `web:` is the empty command) but rejects
//! sequences and mappings. The parsers below keep that leniency so that a buildpack that
//! stages on CF stages here, and the reverse.

use serde::Deserialize;
use serde_yaml_ng::Value;

/// Process types in the order they were first named, which is the order of the `processes`
/// list in CF's `result.json`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ProcessTypes(Vec<(String, String)>);

impl ProcessTypes {
    /// `later` wins for every type it names; new types are appended.
    pub(crate) fn merge(&mut self, later: ProcessTypes) {
        for (kind, command) in later.0 {
            match self.0.iter_mut().find(|(existing, _)| *existing == kind) {
                Some(entry) => entry.1 = command,
                None => self.0.push((kind, command)),
            }
        }
    }

    pub(crate) fn get(&self, kind: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(existing, _)| existing == kind)
            .map(|(_, command)| command.as_str())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(kind, command)| (kind.as_str(), command.as_str()))
    }

    #[cfg(test)]
    fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Self(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }
}

/// The `default_process_types` of a `bin/release` output. The error text is what follows
/// CF's "buildpack's release output invalid: ".
pub(crate) fn parse_release(output: &str) -> Result<ProcessTypes, String> {
    match first_document(output)? {
        Value::Null => Ok(ProcessTypes::default()),
        Value::Mapping(mapping) => match mapping.get("default_process_types") {
            None | Some(Value::Null) => Ok(ProcessTypes::default()),
            Some(types) => string_map(types).map_err(|found| {
                format!("default_process_types must map names to commands, found {found}")
            }),
        },
        other => Err(format!(
            "expected a YAML mapping, found {}",
            describe(&other)
        )),
    }
}

/// The app's `Procfile`. CF clobbers the parse error into "invalid YAML", so there is no
/// detail to return.
pub(crate) fn parse_procfile(text: &str) -> Result<ProcessTypes, ()> {
    let document = first_document(text).map_err(|_| ())?;
    string_map(&document).map_err(|_| ())
}

/// A buildpack's `DEPS/IDX/launch.yml`: `processes: [{type: web, command: ...}, ...]`.
pub(crate) fn parse_launch_yml(text: &str) -> Result<ProcessTypes, String> {
    #[derive(Deserialize)]
    struct LaunchYml {
        #[serde(default)]
        processes: Vec<LaunchProcess>,
    }
    #[derive(Deserialize)]
    struct LaunchProcess {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        command: String,
    }
    if first_document(text)? == Value::Null {
        return Ok(ProcessTypes::default());
    }
    let parsed: LaunchYml = serde_yaml_ng::from_str(text).map_err(|error| error.to_string())?;
    Ok(ProcessTypes(
        parsed
            .processes
            .into_iter()
            .map(|p| (p.kind, p.command))
            .collect(),
    ))
}

/// Only the first YAML document counts, as for yaml.v2's `Unmarshal`.
fn first_document(text: &str) -> Result<Value, String> {
    match serde_yaml_ng::Deserializer::from_str(text).next() {
        None => Ok(Value::Null),
        Some(document) => Value::deserialize(document).map_err(|error| error.to_string()),
    }
}

fn string_map(value: &Value) -> Result<ProcessTypes, String> {
    match value {
        Value::Null => Ok(ProcessTypes::default()),
        Value::Mapping(mapping) => {
            let mut types = ProcessTypes::default();
            for (key, command) in mapping {
                let (Some(key), Some(command)) = (scalar_text(key), scalar_text(command)) else {
                    return Err(format!("a {} under a process type", describe(command)));
                };
                types.merge(ProcessTypes(vec![(key, command)]));
            }
            Ok(types)
        }
        other => Err(describe(other)),
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Number(number) => Some(number.to_string()),
        Value::String(text) => Some(text.clone()),
        Value::Tagged(tagged) => scalar_text(&tagged.value),
        Value::Sequence(_) | Value::Mapping(_) => None,
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".to_owned(),
        Value::Bool(_) | Value::Number(_) | Value::String(_) => "a scalar".to_owned(),
        Value::Sequence(_) => "a list".to_owned(),
        Value::Mapping(_) => "a mapping".to_owned(),
        Value::Tagged(tagged) => describe(&tagged.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_output_gives_default_process_types() {
        let output = "---\nconfig_vars: {}\ndefault_process_types:\n  web: python app.py\n  worker: celery\n";
        assert_eq!(
            parse_release(output),
            Ok(ProcessTypes::from_pairs(&[
                ("web", "python app.py"),
                ("worker", "celery")
            ]))
        );
    }

    #[test]
    fn release_output_without_process_types_is_valid_but_empty() {
        assert_eq!(parse_release(""), Ok(ProcessTypes::default()));
        assert_eq!(parse_release("---\n"), Ok(ProcessTypes::default()));
        assert_eq!(parse_release("addons: []\n"), Ok(ProcessTypes::default()));
        assert_eq!(
            parse_release("default_process_types:\n"),
            Ok(ProcessTypes::default())
        );
    }

    #[test]
    fn release_scalars_become_commands_like_yaml_v2_does() {
        assert_eq!(
            parse_release("default_process_types: {web: 8080, check: true, empty: }"),
            Ok(ProcessTypes::from_pairs(&[
                ("web", "8080"),
                ("check", "true"),
                ("empty", "")
            ]))
        );
    }

    #[test]
    fn invalid_release_output_is_refused() {
        assert!(parse_release("default_process_types: [web, worker]").is_err());
        assert!(parse_release("default_process_types: {web: {cmd: x}}").is_err());
        assert!(parse_release("just some log line").is_err());
        assert!(parse_release("- a\n- list\n").is_err());
        assert!(parse_release("default_process_types: {web: 'unterminated").is_err());
    }

    #[test]
    fn only_the_first_document_counts() {
        assert_eq!(
            parse_release("default_process_types: {web: a}\n---\nnot: [valid\n"),
            Ok(ProcessTypes::from_pairs(&[("web", "a")]))
        );
    }

    #[test]
    fn procfile_is_a_yaml_map_of_commands() {
        let procfile = "web: gunicorn app:app --bind 0.0.0.0:$PORT\nworker: python worker.py\n";
        assert_eq!(
            parse_procfile(procfile),
            Ok(ProcessTypes::from_pairs(&[
                ("web", "gunicorn app:app --bind 0.0.0.0:$PORT"),
                ("worker", "python worker.py"),
            ]))
        );
        assert_eq!(parse_procfile(""), Ok(ProcessTypes::default()));
    }

    #[test]
    fn invalid_procfiles_are_refused() {
        assert_eq!(parse_procfile("web python app.py\n"), Err(()));
        assert_eq!(parse_procfile("web: [a, b]\n"), Err(()));
        assert_eq!(parse_procfile("web: 'open\n"), Err(()));
    }

    #[test]
    fn later_sources_override_per_process_type() {
        let mut types = ProcessTypes::from_pairs(&[("web", "from release"), ("worker", "w")]);
        types.merge(ProcessTypes::from_pairs(&[
            ("web", "from Procfile"),
            ("clock", "c"),
        ]));
        assert_eq!(
            types,
            ProcessTypes::from_pairs(&[("web", "from Procfile"), ("worker", "w"), ("clock", "c")])
        );
        assert_eq!(types.get("web"), Some("from Procfile"));
        assert_eq!(types.get("nope"), None);
    }

    #[test]
    fn launch_yml_lists_processes() {
        let text =
            "processes:\n- type: web\n  command: run-web\n- type: task\n  command: run-task\n";
        assert_eq!(
            parse_launch_yml(text),
            Ok(ProcessTypes::from_pairs(&[
                ("web", "run-web"),
                ("task", "run-task")
            ]))
        );
        assert!(parse_launch_yml("processes: {web: x}").is_err());
    }
}
