//! The platform's trusted certificates. Cloud Foundry installs the operator's CAs into the
//! container: into the system store, and as files in the directory `CF_SYSTEM_CERT_PATH`
//! names. A mirror signed by the company's CA must work with no setting at all, so the
//! installer download (reqwest) adds them to its roots, and conda and pip get one bundle:
//! the roots they ship (the installer's certifi), the system store and the platform's CAs.
//!
//! What the user says still wins: `ssl_verify` in the app's `.condarc`, `CONDA_SSL_VERIFY`,
//! `REQUESTS_CA_BUNDLE`, `PIP_CERT`, `SSL_CERT_FILE`.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where Linux distributions keep the system store as one file (cflinuxfs3 and 4: the first).
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The PEM certificates in the files of `CF_SYSTEM_CERT_PATH` (none when unset).
pub(crate) fn platform_certificates() -> Vec<String> {
    let Some(dir) = std::env::var_os("CF_SYSTEM_CERT_PATH").filter(|dir| !dir.is_empty()) else {
        return Vec::new();
    };
    certificates_in(Path::new(&dir))
}

fn certificates_in(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
    files.sort();
    files
        .iter()
        .filter_map(|file| fs::read_to_string(file).ok())
        .flat_map(|text| pem_blocks(&text))
        .collect()
}

/// The `-----BEGIN CERTIFICATE-----` blocks of a text, each with its end line.
fn pem_blocks(text: &str) -> Vec<String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let Some(length) = rest[start..].find(END) else {
            break;
        };
        let end = start + length + END.len();
        blocks.push(format!("{}\n", &rest[start..end]));
        rest = &rest[end..];
    }
    blocks
}

/// Writes the bundle conda and pip trust into `dir`: the installer's own roots (certifi),
/// the system store and the platform's CAs. `None` when there is nothing to add to what
/// conda already trusts.
pub(crate) fn write_bundle(dir: &Path, installer_prefix: &Path) -> io::Result<Option<PathBuf>> {
    let platform = platform_certificates();
    let system = SYSTEM_BUNDLES
        .iter()
        .find_map(|path| fs::read_to_string(path).ok())
        .map(|text| pem_blocks(&text))
        .unwrap_or_default();
    if platform.is_empty() && system.is_empty() {
        return Ok(None);
    }
    let bundled = certifi(installer_prefix)
        .and_then(|path| fs::read_to_string(path).ok())
        .map(|text| pem_blocks(&text))
        .unwrap_or_default();
    let mut text = String::new();
    for block in bundled.iter().chain(&system).chain(&platform) {
        text.push_str(block);
    }
    fs::create_dir_all(dir)?;
    let path = dir.join("ca-bundle.pem");
    fs::write(&path, text)?;
    Ok(Some(path))
}

/// The installer's certifi bundle: what conda trusts when told nothing.
fn certifi(installer_prefix: &Path) -> Option<PathBuf> {
    let lib = installer_prefix.join("lib");
    fs::read_dir(&lib)
        .ok()?
        .flatten()
        .map(|entry| entry.path().join("site-packages/certifi/cacert.pem"))
        .find(|path| path.is_file())
}

/// The settings that point conda, pip and Python's ssl at `bundle`, less those the user
/// decides. `ssl_verify` is what `CONDA_SSL_VERIFY` or a `.condarc` layer says, if anything.
///
/// conda 26.7.1 (requests 2.34) ignores a CA bundle given as `ssl_verify`: requests lets
/// the per-request default, `REQUESTS_CA_BUNDLE` or certifi, override the session's path
/// (measured). So `REQUESTS_CA_BUNDLE` carries the bundle, or the user's own `ssl_verify`
/// path, which then really wins; `CONDA_SSL_VERIFY` is set too for condas that honour it.
pub(crate) fn trust_settings(
    bundle: &Path,
    ssl_verify: Option<&str>,
    lookup: impl Fn(&str) -> Option<OsString>,
) -> Vec<(String, OsString)> {
    if lookup("REQUESTS_CA_BUNDLE").is_some() {
        return Vec::new();
    }
    let mut settings = Vec::new();
    let conda_bundle = match ssl_verify.map(str::trim) {
        // Checking is off, or left to the system store: any bundle would turn it back on.
        Some("false" | "False" | "no" | "truststore") => return settings,
        None | Some("true" | "True" | "yes") => {
            if lookup("CONDA_SSL_VERIFY").is_none() {
                settings.push((
                    "CONDA_SSL_VERIFY".to_string(),
                    bundle.as_os_str().to_owned(),
                ));
            }
            bundle.as_os_str().to_owned()
        }
        Some(path) => OsString::from(path),
    };
    settings.push(("REQUESTS_CA_BUNDLE".to_string(), conda_bundle));
    for name in ["PIP_CERT", "SSL_CERT_FILE"] {
        if lookup(name).is_none() {
            settings.push((name.to_string(), bundle.as_os_str().to_owned()));
        }
    }
    settings
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";

    #[test]
    fn every_certificate_of_every_file_in_the_directory_is_found() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("b.pem"), format!("{CERT}\nnoise\n{CERT}\n")).unwrap();
        fs::write(dir.path().join("a.crt"), CERT).unwrap();
        fs::write(dir.path().join("README"), "not a certificate").unwrap();
        assert_eq!(certificates_in(dir.path()).len(), 3);
        assert!(certificates_in(&dir.path().join("missing")).is_empty());
    }

    #[test]
    fn the_users_own_trust_settings_win() {
        let bundle = Path::new("/x/ca-bundle.pem");
        let names = |settings: Vec<(String, OsString)>| {
            settings
                .into_iter()
                .map(|(name, _)| name)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(trust_settings(bundle, None, |_| None)),
            [
                "CONDA_SSL_VERIFY",
                "REQUESTS_CA_BUNDLE",
                "PIP_CERT",
                "SSL_CERT_FILE"
            ]
        );
        // An ssl_verify path is what conda uses (through REQUESTS_CA_BUNDLE, which conda
        // honours); `false` turns every bundle off.
        assert_eq!(
            trust_settings(bundle, Some("/app/ca.pem"), |_| None)[0],
            (
                "REQUESTS_CA_BUNDLE".to_string(),
                OsString::from("/app/ca.pem")
            )
        );
        assert!(trust_settings(bundle, Some("false"), |_| None).is_empty());
        assert!(
            trust_settings(bundle, None, |name| (name == "REQUESTS_CA_BUNDLE")
                .then(|| "/mine.pem".into()))
            .is_empty()
        );
    }
}
