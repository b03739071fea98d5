//! The messages for the staging's channel configuration: a bound service and the app's
//! `.condarc`. Split from `errors.rs` only to keep files short; read them as part of it.

use super::Message;
use crate::staging::condarc::CondarcError;
use crate::staging::services::ServiceError;

pub(super) fn services_message(error: &ServiceError) -> Message {
    let fix = match error {
        ServiceError::NotJson { .. } | ServiceError::NotServices => {
            "VCAP_SERVICES is written by Cloud Foundry from the app's bindings: check that nothing sets it by hand (cf env APP, the app's manifest.yml, the staging environment variable group)."
        }
        ServiceError::UnknownKey { .. }
        | ServiceError::WrongType { .. }
        | ServiceError::Incomplete { .. } => {
            "A service tagged `conda` may hold `channel_alias` (a URL), `channels` and `default_channels` (lists), `username` with `password` or a `token`, and `pip_index_url`. Correct it with cf update-user-provided-service NAME -p '{...}' (or ask the broker's owner), then cf restage APP."
        }
        ServiceError::Conflict { .. } => {
            "Bind one service tagged `conda` that sets it, or move the setting into one of them; then cf restage APP."
        }
    };
    Message::new(
        "A bound conda service cannot be used",
        vec![
            format!("{}.", capitalised(&error.to_string())),
            "Its values are not shown: they may be secret.".into(),
        ],
        fix,
    )
}

pub(super) fn condarc_message(error: &CondarcError) -> Message {
    let fix = match error {
        CondarcError::Refused { .. } => {
            "Remove that key from the app's .condarc. It may set channels, channel_alias, default_channels, custom_channels, channel_priority, solver, ssl_verify and allowlist_channels."
        }
        _ => {
            "Write .condarc as conda does: a YAML mapping, e.g. `channels: [conda-forge]` and `channel_alias: https://mirror.example.com/conda`."
        }
    };
    Message::new(
        "The app's .condarc cannot be used",
        vec![format!("{}.", capitalised(&error.to_string()))],
        fix,
    )
}

fn capitalised(text: &str) -> String {
    let mut characters = text.chars();
    characters.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(characters).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::staging::conda_failure::{CondaFailure, FailureKind};
    use crate::staging::environment::EnvironmentError;

    #[test]
    fn a_refused_credential_names_the_service_and_how_to_fix_the_binding() {
        crate::staging::services::parse(
            r#"{"user-provided":[{"name":"conda-mirror","tags":["conda"],"credentials":{"channel_alias":"https://m"}}]}"#,
        )
        .unwrap();
        let error: crate::errors::Error = EnvironmentError::Conda {
            failure: CondaFailure {
                kind: FailureKind::CredentialsRefused,
                output: vec!["CondaHTTPError: HTTP 401 Unauthorized for url <http://127.0.0.1:1/conda-forge/noarch/repodata.json>".into()],
                ..CondaFailure::default()
            },
            command: "conda env create".into(),
            status: "exit code 1".into(),
            memory_limit_mib: None,
            vendored: false,
            solver: None,
            other_solvers: vec![],
            peak_memory_kib: None,
            channels: vec!["conda-forge from environment.yml (http://u:-redacted-@127.0.0.1:1/conda-forge)".into()],
        }
        .into();
        let message = crate::errors::message(&error);
        assert_eq!(
            message.title,
            "A conda channel refused the staging's credentials"
        );
        assert!(
            message
                .body
                .iter()
                .any(|line| line == "The credentials come from the service conda-mirror.")
        );
        assert!(
            message.fix.contains("cf update-user-provided-service"),
            "{}",
            message.fix
        );
    }

    #[test]
    fn a_bad_binding_is_named_without_its_values() {
        let message = services_message(&ServiceError::UnknownKey {
            service: "conda-mirror".into(),
            key: "pasword".into(),
        });
        assert_eq!(message.title, "A bound conda service cannot be used");
        assert_eq!(
            message.body[0],
            "The service conda-mirror has the unknown credential `pasword`."
        );
    }
}
