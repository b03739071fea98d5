//! Bound services that configure conda, the Cloud Foundry way: every service instance in
//! `VCAP_SERVICES` (user-provided or brokered) whose `tags` include `conda`. Its
//! `credentials` name the channels and hold the secrets; the secrets go to conda and pip
//! and are registered with [`crate::staging::secrets`] so they appear nowhere else.
//!
//! ```sh
//! cf create-user-provided-service conda-mirror -t conda \
//!   -p '{"channel_alias":"https://mirror.corp/conda","username":"u","password":"p"}'
//! ```
//!
//! Nothing read here is ever echoed: `VCAP_SERVICES` holds every binding's secrets, not only
//! ours, so errors name a service and a key, never a value.

use std::sync::OnceLock;

use serde_json::{Map, Value};

use crate::staging::secrets;

const TAG: &str = "conda";
const KEYS: [&str; 7] = [
    "channel_alias",
    "channels",
    "default_channels",
    "username",
    "password",
    "token",
    "pip_index_url",
];

/// A `conda` service's settings, its credentials already inside its URLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CondaService {
    pub(crate) name: String,
    pub(crate) channel_alias: Option<String>,
    pub(crate) channels: Vec<String>,
    pub(crate) default_channels: Vec<String>,
    pub(crate) pip_index_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ServiceError {
    #[error("VCAP_SERVICES is not valid JSON ({position})")]
    NotJson { position: String },
    #[error("VCAP_SERVICES is not a JSON object of service lists")]
    NotServices,
    #[error("the service {service} has the unknown credential `{key}`")]
    UnknownKey { service: String, key: String },
    #[error("the credential `{key}` of the service {service} is not {expected}")]
    WrongType {
        service: String,
        key: String,
        expected: &'static str,
    },
    #[error("the service {service} has {problem}")]
    Incomplete {
        service: String,
        problem: &'static str,
    },
    #[error("both services {first} and {second} set `{key}`")]
    Conflict {
        key: &'static str,
        first: String,
        second: String,
    },
}

/// The `conda` services of `VCAP_SERVICES` (none when it is unset or empty).
pub(crate) fn from_env() -> Result<Vec<CondaService>, ServiceError> {
    match std::env::var("VCAP_SERVICES") {
        Ok(text) if !text.trim().is_empty() => parse(&text),
        _ => Ok(Vec::new()),
    }
}

/// The names of this staging's `conda` services, once read: a refused credential's message
/// names them. (The bindings are a fact of the whole process, like its environment.)
pub(crate) fn bound_names() -> &'static [String] {
    BOUND.get().map_or(&[], Vec::as_slice)
}

static BOUND: OnceLock<Vec<String>> = OnceLock::new();

pub(crate) fn parse(text: &str) -> Result<Vec<CondaService>, ServiceError> {
    // serde_json's syntax errors give a position, never the text; its type errors would quote
    // values, so the shape is checked by hand below.
    let value: Value = serde_json::from_str(text).map_err(|error| ServiceError::NotJson {
        position: format!("line {}, column {}", error.line(), error.column()),
    })?;
    let Value::Object(offerings) = value else {
        return Err(ServiceError::NotServices);
    };
    let mut services = Vec::new();
    for instances in offerings.values() {
        let Value::Array(instances) = instances else {
            return Err(ServiceError::NotServices);
        };
        for instance in instances {
            let Value::Object(instance) = instance else {
                return Err(ServiceError::NotServices);
            };
            let tagged = instance
                .get("tags")
                .and_then(Value::as_array)
                .is_some_and(|tags| tags.iter().any(|tag| tag.as_str() == Some(TAG)));
            if tagged {
                services.push(service(instance)?);
            }
        }
    }
    check_conflicts(&services)?;
    let _ = BOUND.set(
        services
            .iter()
            .map(|service| service.name.clone())
            .collect(),
    );
    Ok(services)
}

fn service(instance: &Map<String, Value>) -> Result<CondaService, ServiceError> {
    let name = instance
        .get("name")
        .or_else(|| instance.get("instance_name"))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_string();
    let empty = Map::new();
    let credentials = match instance.get("credentials") {
        Some(Value::Object(credentials)) => credentials,
        None | Some(Value::Null) => &empty,
        Some(_) => {
            return Err(ServiceError::WrongType {
                service: name,
                key: "credentials".into(),
                expected: "a JSON object",
            });
        }
    };
    if let Some(key) = credentials.keys().find(|key| !KEYS.contains(&key.as_str())) {
        return Err(ServiceError::UnknownKey {
            service: name,
            key: key.clone(),
        });
    }
    let text = |key: &str| -> Result<Option<String>, ServiceError> {
        match credentials.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) if !text.trim().is_empty() => Ok(Some(text.trim().into())),
            Some(_) => Err(ServiceError::WrongType {
                service: name.clone(),
                key: key.into(),
                expected: "a non-empty string",
            }),
        }
    };
    let list = |key: &str| -> Result<Vec<String>, ServiceError> {
        let wrong = || ServiceError::WrongType {
            service: name.clone(),
            key: key.into(),
            expected: "a list of strings",
        };
        match credentials.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::to_string).ok_or_else(wrong))
                .collect(),
            // A comma-separated string, as the CONDA_* variables take lists.
            Some(Value::String(text)) => Ok(text
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_string)
                .collect()),
            Some(_) => Err(wrong()),
        }
    };
    let username = text("username")?;
    let password = text("password")?;
    let token = text("token")?;
    for secret in [&password, &token].into_iter().flatten() {
        secrets::register(secret);
    }
    let incomplete = |problem| ServiceError::Incomplete {
        service: name.clone(),
        problem,
    };
    let userinfo = match (&username, &password, &token) {
        (Some(user), Some(password), None) => Some(format!(
            "{}:{}",
            crate::staging::secrets::percent_encode(user),
            crate::staging::secrets::percent_encode(password)
        )),
        (None, None, _) => None,
        (Some(_), None, _) => return Err(incomplete("a `username` but no `password`")),
        (None, Some(_), _) => return Err(incomplete("a `password` but no `username`")),
        (Some(_), Some(_), Some(_)) => {
            return Err(incomplete(
                "both a `token` and a `username` with a `password`",
            ));
        }
    };
    let with_credentials = |url: String| {
        if !url.contains("://") {
            return url;
        }
        secrets::register_urls_in(&url);
        authenticated(&url, userinfo.as_deref(), token.as_deref())
    };
    let channel_alias = text("channel_alias")?.map(|alias| {
        let alias = alias.trim_end_matches('/').to_string();
        match (&token, secrets::Credentials::of(&alias)) {
            // conda reads anaconda.org's form: the token after the alias, before the channel.
            (Some(token), None) => format!("{alias}/t/{token}"),
            _ => with_credentials(alias),
        }
    });
    let service = CondaService {
        channel_alias,
        channels: list("channels")?
            .into_iter()
            .map(with_credentials)
            .collect(),
        default_channels: list("default_channels")?
            .into_iter()
            .map(with_credentials)
            .collect(),
        // pip knows no token path: the index gets the user and password only.
        pip_index_url: text("pip_index_url")?.map(|url| {
            secrets::register_urls_in(&url);
            authenticated(&url, userinfo.as_deref(), None)
        }),
        name: name.clone(),
    };
    if service
        == (CondaService {
            name: service.name.clone(),
            ..CondaService::default()
        })
    {
        return Err(incomplete(
            "no `channel_alias`, `channels`, `default_channels` or `pip_index_url`",
        ));
    }
    Ok(service)
}

/// `url` with `userinfo@` (unless it has its own) or the token path after its host.
fn authenticated(url: &str, userinfo: Option<&str>, token: Option<&str>) -> String {
    if secrets::Credentials::of(url).is_some() {
        return url.to_string();
    }
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    if let Some(userinfo) = userinfo {
        return format!("{scheme}{userinfo}@{rest}");
    }
    if let Some(token) = token {
        let host_end = rest.find('/').unwrap_or(rest.len());
        return format!(
            "{scheme}{}/t/{token}{}",
            &rest[..host_end],
            &rest[host_end..]
        );
    }
    url.to_string()
}

fn check_conflicts(services: &[CondaService]) -> Result<(), ServiceError> {
    for (key, set) in [
        (
            "channel_alias",
            (|service: &CondaService| service.channel_alias.is_some()) as fn(&CondaService) -> bool,
        ),
        ("pip_index_url", |service| service.pip_index_url.is_some()),
    ] {
        let mut setting = services.iter().filter(|service| set(service));
        if let (Some(first), Some(second)) = (setting.next(), setting.next()) {
            return Err(ServiceError::Conflict {
                key,
                first: first.name.clone(),
                second: second.name.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vcap(credentials: &str) -> String {
        format!(
            r#"{{"user-provided":[{{"name":"conda-mirror","label":"user-provided","tags":["conda"],"credentials":{credentials}}}],
               "p-mysql":[{{"name":"db","tags":["mysql"],"credentials":{{"password":"not-ours"}}}}]}}"#
        )
    }

    #[test]
    fn a_tagged_service_puts_its_credentials_into_its_urls() {
        let services = parse(&vcap(
            r#"{"channel_alias":"https://mirror.corp/conda/","username":"u","password":"p@ss-svc-1",
                "channels":["conda-forge","https://other.corp/x"],"default_channels":["https://mirror.corp/main"],
                "pip_index_url":"https://mirror.corp/pypi/simple"}"#,
        ))
        .unwrap();
        assert_eq!(
            services,
            [CondaService {
                name: "conda-mirror".into(),
                channel_alias: Some("https://u:p%40ss-svc-1@mirror.corp/conda".into()),
                channels: vec![
                    "conda-forge".into(),
                    "https://u:p%40ss-svc-1@other.corp/x".into()
                ],
                default_channels: vec!["https://u:p%40ss-svc-1@mirror.corp/main".into()],
                pip_index_url: Some("https://u:p%40ss-svc-1@mirror.corp/pypi/simple".into()),
            }]
        );
        assert_eq!(
            secrets::scrub("conda printed p@ss-svc-1"),
            "conda printed -redacted-"
        );
    }

    #[test]
    fn a_token_goes_after_the_alias_and_after_a_urls_host() {
        let services = parse(&vcap(
            r#"{"channel_alias":"https://conda.anaconda.org","token":"tk-svc-2","default_channels":"https://repo.corp/main"}"#,
        ))
        .unwrap();
        assert_eq!(
            services[0].channel_alias.as_deref(),
            Some("https://conda.anaconda.org/t/tk-svc-2")
        );
        assert_eq!(
            services[0].default_channels,
            ["https://repo.corp/t/tk-svc-2/main"]
        );
    }

    #[test]
    fn bad_bindings_are_refused_without_echoing_a_value() {
        let error = parse("{\"x\": [ {\"credentials\": {\"password\": \"leak-me\"").unwrap_err();
        assert!(matches!(error, ServiceError::NotJson { .. }));
        assert!(!error.to_string().contains("leak-me"));
        for (credentials, message) in [
            (
                r#"{"channel_alias":"https://m","pasword":"leak-me"}"#,
                "the service conda-mirror has the unknown credential `pasword`",
            ),
            (
                r#"{"channel_alias":"https://m","password":"leak-me"}"#,
                "the service conda-mirror has a `password` but no `username`",
            ),
        ] {
            assert_eq!(parse(&vcap(credentials)).unwrap_err().to_string(), message);
        }
        let error = parse(&vcap(r#"{"channel_alias":"https://m","password":42}"#)).unwrap_err();
        assert!(!error.to_string().contains("42"), "{error}");
        assert!(matches!(parse("[1]"), Err(ServiceError::NotServices)));
        assert_eq!(
            parse(r#"{"p-mysql":[{"name":"db","tags":[]}]}"#).unwrap(),
            []
        );
    }
}
