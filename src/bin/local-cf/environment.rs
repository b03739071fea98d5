//! The environment Cloud Foundry gives to buildpack scripts and apps, shared by `stage` and
//! `launch`: a fixed `PATH`, `VCAP_APPLICATION`, `MEMORY_LIMIT`, and the app's variables
//! (`cf set-env`), later ones winning. Nothing else of the caller's environment gets in.

use super::errors::LifecycleError;
use super::files::md5_hex;

/// The stack's `PATH` in a CF container.
const STACK_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// An environment under construction, in insertion order.
#[derive(Debug, Default)]
pub(crate) struct Environment(Vec<(String, String)>);

impl Environment {
    /// Starts with the stack's `PATH`, followed by the caller's `PATH` so that machines
    /// with tools elsewhere (a pyenv shim, /opt) still work; CF has no such tools to find.
    pub(crate) fn with_stack_path() -> Self {
        let mut path = STACK_PATH.to_owned();
        if let Some(caller_path) = std::env::var_os("PATH").filter(|p| !p.is_empty()) {
            path.push(':');
            path.push_str(&caller_path.to_string_lossy());
        }
        let mut env = Self::default();
        env.set("PATH", path);
        env
    }

    /// Sets or replaces `key`.
    pub(crate) fn set(&mut self, key: &str, value: impl Into<String>) {
        let value = value.into();
        match self.0.iter_mut().find(|(existing, _)| existing == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    /// Copies `key` from the caller's environment when it is set there.
    pub(crate) fn pass_through(&mut self, key: &str) {
        if let Ok(value) = std::env::var(key) {
            self.set(key, value);
        }
    }

    pub(crate) fn into_vec(self) -> Vec<(String, String)> {
        self.0
    }
}

/// `KEY=VALUE`; the value may contain `=` and may be empty, the key may not.
pub(crate) fn parse_env_assignment(assignment: &str) -> Result<(String, String), LifecycleError> {
    match assignment.split_once('=') {
        Some((key, value)) if !key.is_empty() && !key.contains('\0') && !value.contains('\0') => {
            Ok((key.to_owned(), value.to_owned()))
        }
        _ => Err(LifecycleError::InvalidEnvAssignment {
            assignment: assignment.to_owned(),
        }),
    }
}

/// `1024m`, `1024M`, `1g`, `2G` or a plain number of megabytes, as `cf push -m` takes them.
pub(crate) fn parse_memory_mb(value: &str) -> Result<u64, LifecycleError> {
    let invalid = || LifecycleError::InvalidMemory {
        value: value.to_owned(),
    };
    let trimmed = value.trim();
    let (digits, factor) = match trimmed.char_indices().last() {
        Some((at, 'm' | 'M')) => (&trimmed[..at], 1),
        Some((at, 'g' | 'G')) => (&trimmed[..at], 1024),
        _ => (trimmed, 1),
    };
    let amount: u64 = digits.parse().map_err(|_| invalid())?;
    match amount.checked_mul(factor) {
        Some(megabytes) if megabytes > 0 => Ok(megabytes),
        _ => Err(invalid()),
    }
}

/// `VCAP_APPLICATION` as a staging task sees it. The ids are derived from the app name, so
/// they stay the same between stagings like a real app's GUID does.
pub(crate) fn vcap_application(app_name: &str, memory_mb: u64) -> serde_json::Value {
    let id = |salt: &str| uuid_from(&md5_hex(&format!("{salt}:{app_name}")));
    serde_json::json!({
        "application_id": id("app"),
        "application_name": app_name,
        "application_uris": [],
        "application_version": id("version"),
        "cf_api": "https://api.local.invalid",
        "limits": {"disk": 4096, "fds": 16384, "mem": memory_mb},
        "name": app_name,
        "organization_id": id("org"),
        "organization_name": "local",
        "process_id": id("app"),
        "process_type": "web",
        "space_id": id("space"),
        "space_name": "local",
        "uris": [],
        "version": id("version"),
    })
}

/// Formats 32 hex digits as a UUID.
fn uuid_from(hex: &str) -> String {
    let part = |range: std::ops::Range<usize>| hex.get(range).unwrap_or("0");
    format!(
        "{}-{}-{}-{}-{}",
        part(0..8),
        part(8..12),
        part(12..16),
        part(16..20),
        part(20..32)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_read_like_cf_push() {
        assert_eq!(parse_memory_mb("1024m").ok(), Some(1024));
        assert_eq!(parse_memory_mb("512M").ok(), Some(512));
        assert_eq!(parse_memory_mb("2g").ok(), Some(2048));
        assert_eq!(parse_memory_mb("256").ok(), Some(256));
        for invalid in ["", "m", "0m", "-5m", "1.5g", "lots"] {
            assert!(
                parse_memory_mb(invalid).is_err(),
                "{invalid:?} must be refused"
            );
        }
    }

    #[test]
    fn env_assignments_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_env_assignment("A=b=c").ok(),
            Some(("A".to_owned(), "b=c".to_owned()))
        );
        assert_eq!(
            parse_env_assignment("EMPTY=").ok(),
            Some(("EMPTY".to_owned(), String::new()))
        );
        assert!(parse_env_assignment("NOEQUALS").is_err());
        assert!(parse_env_assignment("=value").is_err());
    }

    #[test]
    fn later_values_win() {
        let mut env = Environment::default();
        env.set("A", "1");
        env.set("B", "2");
        env.set("A", "3");
        assert_eq!(
            env.into_vec(),
            vec![
                ("A".to_owned(), "3".to_owned()),
                ("B".to_owned(), "2".to_owned())
            ]
        );
    }

    #[test]
    fn vcap_application_carries_name_and_memory() {
        let json = vcap_application("myapp", 512);
        assert_eq!(json["application_name"], "myapp");
        assert_eq!(json["limits"]["mem"], 512);
        assert_eq!(json["application_id"].as_str().map(str::len), Some(36));
        assert_eq!(
            json,
            vcap_application("myapp", 512),
            "ids are stable between stagings"
        );
    }
}
