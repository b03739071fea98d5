//! The buildpack's `BP_*` settings, `CF_STACK` and `MEMORY_LIMIT`, from the app's environment.

use super::AppError;

/// The conda distribution the app chose with `BP_CONDA_DISTRIBUTION`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Distribution {
    Miniconda,
    Miniforge,
}

impl Distribution {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Miniconda => "miniconda",
            Self::Miniforge => "miniforge",
        }
    }
}

/// The buildpack's settings, from the app's environment (`cf set-env`, manifest `env:`).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `BP_CONDA_DISTRIBUTION`; unset, the manifest's `default_versions` decide.
    pub(crate) distribution: Option<Distribution>,
    /// `BP_CONDA_VERSION`: an exact installer version or a line like `4.12.x`.
    pub(crate) conda_version: Option<String>,
    /// `CF_STACK`, checked against the stacks this buildpack supports.
    pub(crate) stack: &'static crate::stack::Stack,
    /// `CF_STACK` was unset (a local run): the stack is the default one.
    pub(crate) stack_defaulted: bool,
    /// `MEMORY_LIMIT` in MiB, as CF sets it (`1024m`).
    pub(crate) memory_limit_mib: Option<u64>,
    /// `BP_CONDA_CLEAR_CACHE`: start this staging from an empty app cache.
    pub(crate) clear_cache: bool,
    /// `BP_CONDA_SLIM`: leave out of the droplet what no running app needs (default on).
    pub(crate) slim: bool,
}

impl Settings {
    pub(crate) fn from_env() -> Result<Self, AppError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AppError> {
        let distribution_value = lookup("BP_CONDA_DISTRIBUTION")
            .map(|value| value.trim().to_ascii_lowercase())
            .filter(|value| !value.is_empty());
        let distribution = match distribution_value.as_deref() {
            None => None,
            Some("miniconda" | "miniconda3" | "anaconda") => Some(Distribution::Miniconda),
            Some("miniforge" | "miniforge3" | "conda-forge") => Some(Distribution::Miniforge),
            Some(other) => {
                return Err(AppError::InvalidSetting {
                    variable: "BP_CONDA_DISTRIBUTION",
                    value: other.to_string(),
                    reason: "choose `miniconda` or `miniforge`".into(),
                });
            }
        };
        let conda_version = lookup("BP_CONDA_VERSION")
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty());
        if let Some(version) = &conda_version {
            let valid = version
                .split('.')
                .all(|part| part == "x" || part == "*" || part.parse::<u64>().is_ok());
            if !valid {
                return Err(AppError::InvalidSetting {
                    variable: "BP_CONDA_VERSION",
                    value: version.clone(),
                    reason: "write an installer version like `24.7.1` or a line like `4.12.x`"
                        .into(),
                });
            }
        }
        let named_stack = lookup("CF_STACK")
            .map(|value| value.trim().to_string())
            .filter(|value| !value.is_empty());
        let stack_defaulted = named_stack.is_none();
        let stack_name = named_stack.unwrap_or_else(|| crate::stack::DEFAULT.to_string());
        let stack = crate::stack::find(&stack_name)
            .ok_or(AppError::UnsupportedStack { stack: stack_name })?;
        let memory_limit_mib = lookup("MEMORY_LIMIT").and_then(|value| parse_memory_limit(&value));
        let clear_cache = lookup("BP_CONDA_CLEAR_CACHE").is_some_and(|value| {
            matches!(
                value.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes"
            )
        });
        let slim = match lookup("BP_CONDA_SLIM")
            .map(|value| value.trim().to_ascii_lowercase())
            .as_deref()
        {
            None | Some("" | "1" | "true" | "yes" | "on") => true,
            Some("0" | "false" | "no" | "off") => false,
            Some(other) => {
                return Err(AppError::InvalidSetting {
                    variable: "BP_CONDA_SLIM",
                    value: other.to_string(),
                    reason: "write `false` to keep the environment as conda installed it, or \
                             `true` (the default)"
                        .into(),
                });
            }
        };
        Ok(Self {
            distribution,
            conda_version,
            stack,
            stack_defaulted,
            memory_limit_mib,
            clear_cache,
            slim,
        })
    }
}

/// `1024m`, `2g`, `2G` as Cloud Foundry writes `MEMORY_LIMIT`.
pub(crate) fn parse_memory_limit(value: &str) -> Option<u64> {
    let value = value.trim().to_ascii_lowercase();
    let (number, factor) = if let Some(number) = value.strip_suffix('g') {
        (number, 1024)
    } else if let Some(number) = value.strip_suffix('m') {
        (number, 1)
    } else {
        (value.as_str(), 1)
    };
    number.trim().parse::<u64>().ok().map(|n| n * factor)
}
