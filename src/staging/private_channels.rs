//! Private channels in one place for `supply`: the staging's channel settings beyond the
//! variables (bound services tagged `conda`, the app's `.condarc`), what the log says about
//! them, and the files and variables that hand their credentials and the platform's CAs to
//! conda and pip for the time conda runs, and no longer.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;

use crate::errors::Error;
use crate::io::scratch::Scratch;
use crate::staging::app::App;
use crate::staging::cache;
use crate::staging::condarc::{self, Layer, StagingCondarc};
use crate::staging::log;
use crate::staging::netrc::{StagingNetrc, StagingTokens};
use crate::staging::secrets;
use crate::staging::services::{self, CondaService};

/// The variables that set conda's channels, ahead of every file.
const CHANNEL_VARIABLES: [&str; 3] = [
    "CONDA_CHANNEL_ALIAS",
    "CONDA_DEFAULT_CHANNELS",
    "CONDA_CHANNELS",
];

pub(crate) struct ChannelConfig {
    pub(crate) services: Vec<CondaService>,
    /// The services' and the app's settings, the more specific first (conda's order).
    pub(crate) layers: Vec<Layer>,
}

impl ChannelConfig {
    /// Reads the bindings and the app's `.condarc`, registers the secrets of the app's files,
    /// and warns about what the app's `.condarc` says that staging ignores or should not.
    pub(crate) fn read(build_dir: &Path, app: &App) -> Result<Self, Error> {
        let services = services::from_env()?;
        // A channel or index URL in the app's files may carry credentials: conda and pip may
        // print them in forms the URL redaction does not recognise.
        if let Some(file) = &app.environment {
            secrets::register_urls_in(&String::from_utf8_lossy(&file.bytes));
        }
        if let Some(lock) = &app.lock {
            secrets::register_urls_in(&lock.content());
        }
        let app_condarc = condarc::read_app(build_dir)?;
        if let Some((_, ignored)) = app_condarc
            .as_ref()
            .filter(|(_, ignored)| !ignored.is_empty())
        {
            log::warning(&format!(
                "The app's .condarc sets {}, which staging does not read; it reads channels, \
                 channel_alias, default_channels, custom_channels, channel_priority, solver, \
                 ssl_verify and allowlist_channels.",
                ignored.join(", ")
            ));
        }
        let layers: Vec<Layer> = services
            .iter()
            .map(Layer::from_service)
            .chain(app_condarc.map(|(layer, _)| layer))
            .collect();
        if condarc::merge(&layers).ssl_verify.as_deref() == Some("false") {
            log::warning(
                "ssl_verify: false in the app's .condarc: conda does not check the channels' \
                 certificates, so anyone on the network path can serve this app's packages. \
                 Name your CA's certificate instead (ssl_verify: certs/ca.pem), or ask the \
                 operator to add it to the platform's trusted certificates.",
            );
        }
        Ok(Self { services, layers })
    }

    /// What a service or the app's `.condarc` says, less its credentials, as fingerprint
    /// inputs: a rotated password keeps the cached environment.
    pub(crate) fn fingerprint_inputs(&self, inputs: &mut BTreeMap<String, String>) {
        for layer in &self.layers {
            let said = format!("{layer:?}");
            inputs.insert(
                layer.source.clone(),
                cache::sha256_bytes(secrets::without_credentials(&said).as_bytes()),
            );
        }
    }

    /// The log lines naming the services by name and the order in which the sources decide.
    pub(crate) fn log_sources(&self) {
        for service in &self.services {
            log::detail(&format!(
                "Channel settings and credentials from the service {} (tagged conda)",
                service.name
            ));
        }
        let deciders: Vec<String> = CHANNEL_VARIABLES
            .iter()
            .filter(|name| std::env::var_os(name).is_some())
            .map(ToString::to_string)
            .chain(self.layers.iter().map(|layer| layer.source.clone()))
            .collect();
        if !deciders.is_empty() {
            log::detail(&format!(
                "Channel settings, the first that sets one wins: {}, then the installer's \
                 .condarc",
                deciders.join(", ")
            ));
        }
    }

    /// The layers and the installer's `.condarc` behind them: everything conda reads.
    pub(crate) fn with_installer(&self, installer_prefix: &Path) -> Vec<Layer> {
        self.layers
            .iter()
            .cloned()
            .chain([condarc::read_installer(installer_prefix)])
            .collect()
    }

    /// Writes the staging's `.condarc`, `.netrc` and token files into conda's scratch home,
    /// and the CA bundle into its scratch tmp; returns the variables for conda and pip. The
    /// files go when the returned value is dropped. With `without_defaults` the buildpack
    /// names conda's whole channel list, so the staging `.condarc` names none (conda would
    /// merge them back in).
    pub(crate) fn prepare(
        &self,
        app: &App,
        scratch: &Scratch,
        installer_prefix: &Path,
        without_defaults: bool,
    ) -> Result<Prepared, Error> {
        let staged: Vec<Layer> = self
            .layers
            .iter()
            .cloned()
            .map(|mut layer| {
                if without_defaults {
                    layer.channels.clear();
                }
                layer
            })
            .collect();
        let home = &scratch.home;
        let condarc = condarc::write_staging(home, &staged).map_err(Error::io(home))?;
        let credentials = self.credential_sources(app);
        let netrc = crate::staging::netrc::write(home, credentials.iter().map(String::as_str))
            .map_err(Error::io(home))?;
        let binstar = home.join(".binstar");
        let tokens =
            crate::staging::netrc::write_tokens(&binstar, credentials.iter().map(String::as_str))
                .map_err(Error::io(&binstar))?;
        let mut env = Vec::new();
        if let Some(tokens) = &tokens {
            env.push(("BINSTAR_CONFIG_DIR".to_string(), tokens.dir.clone().into()));
        }
        // The platform's CAs for conda and pip, beside the roots they ship.
        if let Some(bundle) = crate::staging::certs::write_bundle(&scratch.tmp, installer_prefix)
            .map_err(Error::io(&scratch.tmp))?
        {
            let ssl_verify = std::env::var("CONDA_SSL_VERIFY")
                .ok()
                .or_else(|| condarc::merge(&self.layers).ssl_verify);
            env.extend(crate::staging::certs::trust_settings(
                &bundle,
                ssl_verify.as_deref(),
                |name| std::env::var_os(name),
            ));
        }
        if std::env::var_os("PIP_INDEX_URL").is_none() {
            if let Some(url) = self
                .services
                .iter()
                .find_map(|service| service.pip_index_url.clone())
            {
                env.push(("PIP_INDEX_URL".to_string(), url.into()));
            }
        }
        Ok(Prepared {
            env,
            _files: (condarc, netrc, tokens),
        })
    }

    /// Every text that may hold a channel's or an index's credentials, the first to win for
    /// a host first: the variables, the bound services, the app's .condarc, its environment
    /// file.
    /// How this staging fetches a locked package's URL: through the mirror the environment,
    /// a bound service or the app's `.condarc` names (as conda would map the channel), with
    /// the credentials they give for that host.
    pub(crate) fn locked_urls(&self, app: &App) -> impl Fn(&str) -> String + Sync {
        // Read once: a lock has hundreds of packages.
        let merged = condarc::merge(&self.layers);
        let setting = |name: &str| {
            std::env::var(name).ok().or_else(|| match name {
                "CONDA_CHANNEL_ALIAS" => merged.channel_alias.clone(),
                _ => {
                    (!merged.default_channels.is_empty()).then(|| merged.default_channels.join(","))
                }
            })
        };
        let alias = setting("CONDA_CHANNEL_ALIAS");
        let defaults = setting("CONDA_DEFAULT_CHANNELS");
        let sources = self.credential_sources(app);
        move |url| {
            let mirrored = crate::staging::locked::mirrored(url, |name| match name {
                "CONDA_CHANNEL_ALIAS" => alias.clone(),
                "CONDA_DEFAULT_CHANNELS" => defaults.clone(),
                _ => None,
            });
            with_credentials(&mirrored, &sources)
        }
    }

    fn credential_sources(&self, app: &App) -> Vec<String> {
        let mut texts: Vec<String> = CHANNEL_VARIABLES
            .iter()
            .chain(&["PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL"])
            .filter_map(|name| std::env::var(name).ok())
            .collect();
        texts.extend(
            self.services
                .iter()
                .filter_map(|service| service.pip_index_url.clone()),
        );
        for layer in &self.layers {
            texts.extend(layer.channel_alias.iter().cloned());
            texts.extend(layer.channels.iter().cloned());
            texts.extend(layer.default_channels.iter().cloned());
            texts.extend(layer.custom_channels.values().cloned());
        }
        if let Some(environment) = &app.environment {
            texts.push(String::from_utf8_lossy(&environment.bytes).into_owned());
        }
        texts
    }
}

/// What conda and pip get for one staging: variables, and files removed when dropped.
pub(crate) struct Prepared {
    pub(crate) env: Vec<(String, OsString)>,
    _files: (
        Option<StagingCondarc>,
        Option<StagingNetrc>,
        Option<StagingTokens>,
    ),
}

/// The digest of an app file as it reads without the credentials of its URLs: a channel's
/// rotated password or token is the same environment, and must not cost a rebuild.
pub(crate) fn digest_without_credentials(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => cache::sha256_bytes(secrets::without_credentials(text).as_bytes()),
        Err(_) => cache::sha256_bytes(bytes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_password_in_environment_yml_keeps_the_digest() {
        let file = |password: &str| {
            format!(
                "channels:\n  - https://u:{password}@mirror/conda-forge\ndependencies: [numpy]\n"
            )
        };
        assert_eq!(
            digest_without_credentials(file("old").as_bytes()),
            digest_without_credentials(file("new").as_bytes())
        );
        assert_ne!(
            digest_without_credentials(file("old").as_bytes()),
            digest_without_credentials(file("old").replace("numpy", "scipy").as_bytes())
        );
    }
}

/// `url` with the `user:password@` that a configured URL of the same scheme and host carries,
/// unless it has its own.
fn with_credentials(url: &str, sources: &[String]) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority.contains('@') {
        return url.to_string();
    }
    let found = sources
        .iter()
        .flat_map(|text| text.split(|c: char| c.is_whitespace() || c == ',' || c == '"'))
        .filter_map(|token| {
            let (their_scheme, their_rest) = token.split_once("://")?;
            let (userinfo, host) = their_rest.split('/').next()?.rsplit_once('@')?;
            (their_scheme == scheme && host == authority && !userinfo.is_empty())
                .then_some(userinfo)
        })
        .next();
    match found {
        Some(userinfo) => format!("{scheme}://{userinfo}@{rest}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod locked_url_tests {
    use super::with_credentials;

    #[test]
    fn a_locked_url_gets_the_credentials_configured_for_its_host() {
        let sources = vec![
            "https://alice:s3cret@conda.corp.example/artifactory/api/conda".to_string(),
            "channels: [https://other.example/c]".to_string(),
        ];
        assert_eq!(
            with_credentials(
                "https://conda.corp.example/artifactory/api/conda/main/linux-64/a-1-0.conda",
                &sources
            ),
            "https://alice:s3cret@conda.corp.example/artifactory/api/conda/main/linux-64/a-1-0.conda"
        );
        assert_eq!(
            with_credentials("https://other.example/c/linux-64/a-1-0.conda", &sources),
            "https://other.example/c/linux-64/a-1-0.conda"
        );
        assert_eq!(
            with_credentials("http://conda.corp.example/x/linux-64/a-1-0.conda", &sources),
            "http://conda.corp.example/x/linux-64/a-1-0.conda",
            "not over another scheme"
        );
        assert_eq!(
            with_credentials(
                "https://bob:pw@conda.corp.example/x/linux-64/a-1-0.conda",
                &sources
            ),
            "https://bob:pw@conda.corp.example/x/linux-64/a-1-0.conda"
        );
    }
}
