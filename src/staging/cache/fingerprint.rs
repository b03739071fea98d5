//! What decides a built environment, compared field by field so the log can say why a cached
//! one was not used, and which cached environment a changed one may start from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::io::digest::hex;

/// Everything that decides a built environment. A field added here takes part in the
/// comparison (and gets a reason line in `differences`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Fingerprint {
    pub(crate) buildpack_version: String,
    pub(crate) stack: String,
    pub(crate) installer: String,
    pub(crate) installer_sha256: String,
    pub(crate) python: String,
    /// `(file name, sha256 of its bytes)` of each input: environment.yml, spec-file.txt, the
    /// pip section's `-r` files, `vendor/pip`.
    pub(crate) inputs: BTreeMap<String, String>,
    /// A digest of `vendor/`: every archive's path, size and sha256.
    pub(crate) vendor: Option<String>,
    /// Where the environment runs, which its embedded paths name.
    pub(crate) runtime_prefix: String,
    /// Digests of the `CONDA_*`, `PIP_*` and `BP_CONDA_*` settings that change a solve.
    /// Values are hashed: a token in `PIP_INDEX_URL` must not be written into the cache.
    pub(crate) settings: BTreeMap<String, String>,
}

impl Fingerprint {
    /// The reasons `self` (this staging) differs from `cached`, in plain words.
    pub(crate) fn differences(&self, cached: &Self) -> Vec<String> {
        let mut reasons = Vec::new();
        let mut changed = |what: &str, old: &str, new: &str| {
            if old != new {
                reasons.push(format!("{what} {old} -> {new}"));
            }
        };
        changed(
            "buildpack",
            &cached.buildpack_version,
            &self.buildpack_version,
        );
        changed("stack", &cached.stack, &self.stack);
        changed("installer", &cached.installer, &self.installer);
        changed("Python", &cached.python, &self.python);
        changed(
            "run-time path",
            &cached.runtime_prefix,
            &self.runtime_prefix,
        );
        if cached.installer == self.installer && cached.installer_sha256 != self.installer_sha256 {
            reasons.push(format!("the sha256 of {} changed", self.installer));
        }
        for (file, digest) in &self.inputs {
            match cached.inputs.get(file) {
                None => reasons.push(format!("{file} added")),
                Some(old) if old != digest => reasons.push(format!("{file} changed")),
                Some(_) => {}
            }
        }
        for file in cached
            .inputs
            .keys()
            .filter(|file| !self.inputs.contains_key(*file))
        {
            reasons.push(format!("{file} removed"));
        }
        match (&cached.vendor, &self.vendor) {
            (None, Some(_)) => reasons.push("vendor/ added".into()),
            (Some(_), None) => reasons.push("vendor/ removed".into()),
            (Some(old), Some(new)) if old != new => reasons.push("vendor/ changed".into()),
            _ => {}
        }
        for (name, digest) in &self.settings {
            match cached.settings.get(name) {
                None => reasons.push(format!("{name} set")),
                Some(old) if old != digest => reasons.push(format!("{name} changed")),
                Some(_) => {}
            }
        }
        for name in cached
            .settings
            .keys()
            .filter(|name| !self.settings.contains_key(*name))
        {
            reasons.push(format!("{name} unset"));
        }
        reasons
    }

    /// Whether an environment built for `cached` can be updated into this one by conda
    /// rather than built from nothing: only what the user's files say differs (the same
    /// buildpack, stack, installer, Python major, run-time path and settings).
    pub(crate) fn can_start_from(&self, cached: &Self) -> bool {
        self.buildpack_version == cached.buildpack_version
            && self.stack == cached.stack
            && self.installer == cached.installer
            && self.installer_sha256 == cached.installer_sha256
            && self.python.split_whitespace().next() == cached.python.split_whitespace().next()
            && self.runtime_prefix == cached.runtime_prefix
            && self.settings == cached.settings
    }

    /// A short stable key naming the entry directory.
    pub(crate) fn key(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex(&Sha256::digest(json))[..16].to_string()
    }
}

/// The settings that change what conda installs. Variables the buildpack sets itself for
/// every conda run are left out: the user's value never reaches conda.
pub(crate) fn relevant_settings(
    variables: impl Iterator<Item = (String, String)>,
) -> BTreeMap<String, String> {
    const SET_BY_BUILDPACK: [&str; 15] = [
        "CONDA_PKGS_DIRS",
        "CONDA_QUIET",
        "CONDA_ALWAYS_YES",
        "CONDA_NOTIFY_OUTDATED_CONDA",
        "CONDA_AUTO_UPDATE_CONDA",
        "CONDA_REPORT_ERRORS",
        "CONDA_CHANGEPS1",
        "CONDA_ALWAYS_COPY",
        "CONDA_OFFLINE",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "PIP_NO_INPUT",
        "PIP_PROGRESS_BAR",
        "PIP_DISABLE_PIP_VERSION_CHECK",
        "PIP_CACHE_DIR",
    ];
    variables
        .filter(|(name, _)| {
            (name.starts_with("CONDA_")
                || name.starts_with("PIP_")
                || name.starts_with("BP_CONDA_"))
                && !SET_BY_BUILDPACK.contains(&name.as_str())
                && name != "PIP_NO_COLOR"
                && name != "BP_CONDA_CLEAR_CACHE"
        })
        .map(|(name, value)| {
            // A rotated password or token is the same setting: it must not cost a rebuild.
            let value = crate::staging::secrets::without_credentials(&value);
            let digest = hex(&Sha256::digest(value.as_bytes()))[..16].to_string();
            (name, digest)
        })
        .collect()
}

pub(crate) fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// A fingerprint as a first push of a small app would have it, for tests.
#[cfg(test)]
pub(crate) fn sample() -> Fingerprint {
    Fingerprint {
        buildpack_version: "1.2.0".into(),
        stack: "cflinuxfs4".into(),
        installer: "miniconda3-py39 25.7.0".into(),
        installer_sha256: "a".repeat(64),
        python: "Python 3 (the default)".into(),
        inputs: BTreeMap::from([("environment.yml".into(), "1".repeat(64))]),
        vendor: None,
        runtime_prefix: "/home/vcap/deps/0/conda-env".into(),
        settings: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::sample as fingerprint;
    use super::*;

    #[test]
    fn settings_are_hashed_and_the_buildpacks_own_are_ignored() {
        let settings = relevant_settings(
            [
                (
                    "CONDA_CHANNEL_ALIAS".to_string(),
                    "http://mirror".to_string(),
                ),
                ("CONDA_PKGS_DIRS".to_string(), "/x".to_string()),
                (
                    "PIP_INDEX_URL".to_string(),
                    "https://user:token@pypi".to_string(),
                ),
                ("HOME".to_string(), "/home/vcap".to_string()),
            ]
            .into_iter(),
        );
        assert_eq!(
            settings.keys().collect::<Vec<_>>(),
            ["CONDA_CHANNEL_ALIAS", "PIP_INDEX_URL"]
        );
        assert!(!settings["PIP_INDEX_URL"].contains("token"));
    }

    #[test]
    fn a_rotated_password_or_token_keeps_the_cached_environment() {
        let with = |alias: &str| {
            let mut fingerprint = fingerprint();
            fingerprint.settings = relevant_settings(
                [("CONDA_CHANNEL_ALIAS".to_string(), alias.to_string())].into_iter(),
            );
            fingerprint
        };
        let before = with("https://u:old-secret@mirror/conda");
        assert!(
            with("https://u:new-secret@mirror/conda")
                .differences(&before)
                .is_empty()
        );
        assert!(
            with("https://mirror/t/tok-2/conda")
                .differences(&with("https://mirror/t/tok-1/conda"))
                .is_empty()
        );
        assert_eq!(
            with("https://u:old-secret@other/conda").differences(&before),
            ["CONDA_CHANNEL_ALIAS changed"]
        );
    }

    #[test]
    fn accepting_anacondas_terms_or_slimming_changes_the_fingerprint() {
        let with = |name: &str, value: &str| {
            let mut fingerprint = fingerprint();
            fingerprint.settings =
                relevant_settings([(name.to_string(), value.to_string())].into_iter());
            fingerprint
        };
        for (name, value) in [
            ("CONDA_PLUGINS_AUTO_ACCEPT_TOS", "yes"),
            ("BP_CONDA_SLIM", "false"),
        ] {
            let reasons = with(name, value).differences(&fingerprint());
            assert_eq!(reasons, [format!("{name} set")]);
        }
    }
}
