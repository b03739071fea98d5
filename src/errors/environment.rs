//! The messages for conda failing to build the environment, from the record conda_failure.rs
//! reads. Split from `errors/mod.rs` only to keep files short;
//! read them as part of it.

use super::{DISK_FULL, Message, disk_fix};
use crate::staging::conda_failure::FailureKind;
use crate::staging::environment::EnvironmentError;
use crate::staging::log;

pub(super) fn environment_message(error: &EnvironmentError) -> Message {
    match error {
        EnvironmentError::Io { path, source } => Message::new(
            "The conda environment could not be prepared",
            vec![format!("{}: {source}", path.display())],
            disk_fix(source),
        ),
        EnvironmentError::Conda {
            failure,
            command,
            status,
            memory_limit_mib,
            vendored,
            channels,
            solver,
            other_solvers,
            peak_memory_kib,
        } => {
            let (kind, output) = (&failure.kind, &failure.output);
            let mut body = vec![match solver {
                Some(solver) => format!("`{command}` failed ({status}) with the {solver} solver."),
                None => format!("`{command}` failed ({status})."),
            }];
            if !output.is_empty() {
                body.push("conda said:".into());
                body.extend(output.iter().map(|line| format!("  {line}")));
            }
            let vendored_gap = *vendored
                && matches!(
                    kind,
                    FailureKind::PackagesNotFound | FailureKind::Unsatisfiable
                );
            let (title, fix) = match kind {
                _ if vendored_gap => (
                    "A package the app needs is not in vendor/",
                    "The app installs offline from vendor/, and conda names above what vendor/ lacks. Run `conda-buildpack vendor APP_DIR` on your machine to fill vendor/ with every package the environment needs, and push again.".to_string(),
                ),
                FailureKind::PackagesNotFound => {
                    let missing = &failure.missing;
                    // conda 26 lists only its own channels, never the file's it searched
                    // first: the buildpack's list is the whole one.
                    let searched = if channels.is_empty() {
                        &failure.searched
                    } else {
                        channels
                    };
                    if !missing.is_empty() {
                        body.insert(1, format!("Not found: {}", missing.join(", ")));
                    }
                    if !searched.is_empty() {
                        body.insert(
                            if missing.is_empty() { 1 } else { 2 },
                            format!("Channels searched: {}", searched.join("; ")),
                        );
                    }
                    (
                        "conda cannot find some of the app's packages",
                        "Check the package names and the channels in environment.yml (conda search NAME -c CHANNEL on your machine), or vendor the packages.".to_string(),
                    )
                }
                FailureKind::InvalidSpec => (
                    "conda cannot read a spec in environment.yml",
                    "conda names the spec above. Write it as a name with an optional version, like `numpy`, `numpy=1.26` or `numpy>=1.26,<2`; `conda env create -f environment.yml` on your machine shows the same error.".to_string(),
                ),
                FailureKind::TermsOfService => {
                    let mut gated = failure.gated.clone();
                    if gated.is_empty() {
                        gated = channels
                            .iter()
                            .filter(|channel| channel.contains("repo.anaconda.com") || channel.starts_with("defaults "))
                            .cloned()
                            .collect();
                    }
                    body.insert(
                        1,
                        format!(
                            "Anaconda's Terms of Service have not been accepted for: {}. Miniconda 25.5 and later ship Anaconda's plugin, which stops any staging that uses these channels until they are.",
                            if gated.is_empty() { "Anaconda's channels".to_string() } else { gated.join(", ") }
                        ),
                    );
                    body.insert(
                        2,
                        "Accepting them is your organisation's decision (commercial use of Anaconda's repository above a size needs a paid licence): the buildpack never accepts them for you.".into(),
                    );
                    (
                        "Anaconda's Terms of Service stop conda at the defaults channel",
                        "Either read the terms (https://www.anaconda.com/legal/terms/terms-of-service) and, if your organisation accepts them, `cf set-env APP CONDA_PLUGINS_AUTO_ACCEPT_TOS yes` (or have the operator set it in the staging environment variable group) and `cf restage APP`; or leave Anaconda's channels: stage with Miniforge (the default for Python 3; `cf unset-env APP BP_CONDA_DISTRIBUTION`) and name conda-forge, not defaults, in the channels of environment.yml (adding `nodefaults` on conda 25 and older).".to_string(),
                    )
                }
                FailureKind::NodefaultsAsChannel => (
                    "conda reads `nodefaults` in environment.yml as a channel",
                    "Remove `nodefaults` from the channels of environment.yml: conda 26 looks for a channel of that name instead of leaving out `defaults`. With Miniforge (the default for Python 3) `defaults` is not searched anyway; with Miniconda, `cf set-env APP CONDA_CHANNELS conda-forge` replaces its `defaults`.".to_string(),
                ),
                FailureKind::NoChannels => (
                    "conda has no channels to install from",
                    "Name the channels in environment.yml (`channels: [conda-forge]`), or set CONDA_CHANNELS with cf set-env: conda 26 no longer adds `defaults` by itself.".to_string(),
                ),
                FailureKind::Unsatisfiable => (
                    "conda cannot satisfy the app's package versions",
                    "The versions in environment.yml cannot be installed together from its channels. Loosen the pins conda lists above, or install from an exact `conda list --explicit` spec-file.txt.".to_string(),
                ),
                FailureKind::CredentialsRefused => {
                    body.insert(1, format!("Channels searched: {}", channels.join("; ")));
                    let credentials_from: Vec<String> = crate::staging::services::bound_names()
                        .iter()
                        .map(|name| format!("the service {name}"))
                        .collect();
                    let fix = if credentials_from.is_empty() {
                        "A channel answered 401 or 403: it wants credentials the staging did not give, or refused them. Bind a service tagged `conda` that holds them (cf create-user-provided-service conda-mirror -t conda -p '{\"channel_alias\":\"https://mirror/conda\",\"username\":\"USER\",\"password\":\"PASSWORD\"}', cf bind-service APP conda-mirror), or correct the user and password in the channel URL you set (CONDA_CHANNEL_ALIAS, CONDA_DEFAULT_CHANNELS, environment.yml, .condarc); then cf restage APP.".to_string()
                    } else {
                        body.insert(2, format!("The credentials come from {}.", credentials_from.join(" and ")));
                        format!(
                            "Update the credentials of {}: for a user-provided service, cf update-user-provided-service NAME -p '{{...}}' with the right `username` and `password` (or `token`); for a brokered one, cf unbind-service and cf bind-service again. Then cf restage APP.",
                            credentials_from.join(" and ")
                        )
                    };
                    ("A conda channel refused the staging's credentials", fix)
                }
                FailureKind::Certificate => {
                    body.insert(1, format!("Channels searched: {}", channels.join("; ")));
                    (
                        "conda does not trust a channel's certificate",
                        "The channel's HTTPS certificate is signed by a certificate authority that neither conda's bundled roots nor the platform's trusted certificates (CF_SYSTEM_CERT_PATH and the system store) contain. Ask the platform operator to add your company's CA to the trusted certificates, or push the CA with the app and name it in the app's .condarc (`ssl_verify: certs/company-ca.pem`). `ssl_verify: false` turns the check off, which lets anyone on the network serve you packages.".to_string(),
                    )
                }
                FailureKind::ChannelUnreachable => (
                    "conda cannot reach the app's channels",
                    "Staging has no route to the conda channels. Set HTTPS_PROXY, point CONDA_CHANNEL_ALIAS at a mirror, or vendor the app's packages with `conda-buildpack vendor`.".to_string(),
                ),
                FailureKind::Pip => (
                    "pip failed to install the app's pip requirements",
                    "See pip's error above; check the `pip:` section of environment.yml. If staging has no route to a package index, vendor the requirements with `conda-buildpack vendor APP_DIR` and push again.".to_string(),
                ),
                FailureKind::PipNotVendored => {
                    let missing = &failure.pip_missing;
                    body.insert(
                        1,
                        format!(
                            "pip installs only from vendor/pip at staging, and it has no file for {}: a dependency added or changed since the app was vendored.",
                            if missing.is_empty() { "a requirement".to_string() } else { missing.join(", ") }
                        ),
                    );
                    (
                        "A pip requirement is not in vendor/pip",
                        "Run `conda-buildpack vendor APP_DIR` on a machine with internet access, so vendor/pip holds every wheel the pip section needs, and push again.".to_string(),
                    )
                }
                FailureKind::OutOfMemory => {
                    let limit = memory_limit_mib
                        .map_or_else(|| "an unknown limit".to_string(), |mib| format!("MEMORY_LIMIT {mib} MB"));
                    let peak = peak_memory_kib
                        .map_or_else(|| "unknown".to_string(), |kib| log::format_size(kib * 1024));
                    body.insert(
                        1,
                        format!("Peak memory seen: {peak}, against the staging's {limit}."),
                    );
                    let rattler = match (solver.as_deref(), other_solvers.iter().any(|s| s == "rattler")) {
                        (Some("rattler"), _) => None,
                        (_, true) => Some("use the rattler solver, which needs a fraction of the memory: `cf set-env APP CONDA_SOLVER rattler` (or `cf unset-env APP CONDA_SOLVER`: the buildpack picks it when conda has it)".to_string()),
                        _ => Some("use an installer whose conda has the rattler solver, which needs a fraction of the memory: `cf set-env APP BP_CONDA_VERSION 26.5.x`".to_string()),
                    };
                    let mut fixes: Vec<String> = rattler.into_iter().collect();
                    fixes.push("give staging more memory: `cf push APP -m 2G`, or `cf scale APP -m 2G` then `cf restage APP`".into());
                    fixes.push("stage from a lockfile, which needs no solve: `conda list --explicit --md5 > spec-file.txt` in a working environment".into());
                    (
                        match solver {
                            Some(_) => "conda ran out of memory while solving",
                            None => "conda ran out of memory",
                        },
                        format!("Either {}.", fixes.join("; or ")),
                    )
                }
                FailureKind::DiskFull => (
                    "conda ran out of disk",
                    DISK_FULL.to_string(),
                ),
                FailureKind::Other => (
                    "conda failed to create the environment",
                    "See conda's error above. `conda env create -f environment.yml` on your machine usually shows the same problem.".to_string(),
                ),
            };
            let fix = match (kind, solver, other_solvers.first()) {
                (FailureKind::Unsatisfiable | FailureKind::Other, Some(solver), Some(other)) => {
                    format!(
                        "{fix} The {solver} solver ran; to try another this conda offers ({}): `cf set-env APP CONDA_SOLVER {other}` and `cf restage APP`.",
                        other_solvers.join(", ")
                    )
                }
                _ => fix,
            };
            Message::new(title, body, fix)
        }
    }
}
