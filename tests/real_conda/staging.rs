//! The staging stories on the real programs: Cloud Foundry's real builder and launcher, and
//! real conda 26.7.1 with real packages (`../shared/real`). A data scientist pushes the Flask +
//! numpy sample, pushes it again unchanged, adds a package, pushes a numpy + scipy + pandas +
//! scikit-learn app, a Python 2 app, an exact spec, the environments conda refuses, and a
//! vendored app with the network cut. Without `../shared/real` every story says so and skips.

use crate::support;

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::real_conda::{self, Miniconda};
use crate::support::{
    Packaging, Server, StageOptions, Staging, launch, package, sample_app, scratch, stage,
};

/// One app's pushes against the real-conda world.
struct RealConda {
    dir: tempfile::TempDir,
    server: Server,
    zip: PathBuf,
    cache: PathBuf,
}

impl RealConda {
    /// `None` when `../shared/real` is absent (the world says so on stderr).
    fn new() -> Option<Self> {
        Self::with(Miniconda::Plain)
    }

    fn with(miniconda: Miniconda) -> Option<Self> {
        let world = real_conda::world()?;
        support::world::use_the_real_platform();
        let dir = scratch();
        let server = Server::start(world);
        let packaging = real_conda::packaging(&server, dir.path(), miniconda);
        let zip = package(&server, dir.path(), &packaging);
        let cache = dir.path().join("app-cache");
        Some(Self {
            dir,
            server,
            zip,
            cache,
        })
    }

    /// An app written from `(file, content)` pairs.
    fn app(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        support::write_app(self.dir.path(), name, files)
    }

    fn options(&self) -> StageOptions {
        StageOptions::with_channels(&self.server).cache(&self.cache)
    }

    fn push(&self, app: &Path, name: &str) -> Staging {
        self.push_with(app, name, self.options())
    }

    fn push_with(&self, app: &Path, name: &str, options: StageOptions) -> Staging {
        stage(app, &[&self.zip], &options, &self.dir.path().join(name))
    }
}

use crate::support::run_in_droplet as run;

const WEB_REQUEST: &str =
    "python -c \"import app; print(app.app.test_client().get('/').get_data(as_text=True))\"";

#[test]
fn the_flask_numpy_sample_stages_restages_from_the_cache_and_is_updated_when_changed() {
    let Some(world) = RealConda::new() else {
        return;
    };
    let app = sample_app("flask-numpy", world.dir.path());

    let first = world.push(&app, "first");
    first
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("-----> Using Python 3 (from environment.yml: python=3.11)");
    assert!(run(&first, WEB_REQUEST).contains("\"numpy\":\"2.2.6\""));

    // Pushed again unchanged: restored from the cache after Diego's round trip, conda not run.
    let second = world.push(&app, "second");
    second
        .assert_success()
        .assert_log_contains("-----> Restoring the conda environment from the cache")
        .assert_log_lacks("Discarding")
        .assert_log_lacks("Solving environment");
    assert!(run(&second, WEB_REQUEST).contains("\"mean\":3.0"));

    // A package added: real conda updates the last environment, fetching only what it adds,
    // and the app gets it.
    let environment = fs::read_to_string(app.join("environment.yml")).unwrap();
    fs::write(
        app.join("environment.yml"),
        environment.replace("  - numpy\n", "  - numpy\n  - pandas\n"),
    )
    .unwrap();
    let third = world.push(&app, "third");
    third
        .assert_success()
        .assert_clean_log()
        .assert_log_contains("-----> Updating the cached environment: environment.yml changed")
        .assert_log_contains("Starting from the last environment (");
    for (path, count) in world.server.package_downloads() {
        assert_eq!(count, 1, "{path} was downloaded {count} times");
    }
    assert!(
        run(
            &third,
            "python -c 'import pandas; print(pandas.__version__)'"
        )
        .contains("3.1.1")
    );
    assert!(run(&third, WEB_REQUEST).contains("\"mean\":3.0"));

    // Taken out again: `conda env update --prune` removes it, and the rest still works.
    fs::write(app.join("environment.yml"), &environment).unwrap();
    let fourth = world.push(&app, "fourth");
    fourth
        .assert_success()
        .assert_log_contains("-----> Updating the cached environment: environment.yml changed");
    assert!(
        run(
            &fourth,
            "python -c 'import pandas' 2>&1 || echo pandas is gone"
        )
        .contains("pandas is gone")
    );
    assert!(run(&fourth, WEB_REQUEST).contains("\"numpy\":\"2.2.6\""));
}

#[test]
fn a_numpy_scipy_pandas_scikit_learn_app_fits_a_model() {
    let Some(world) = RealConda::new() else {
        return;
    };
    let app = world.app(
        "pydata",
        &[
            (
                "environment.yml",
                "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy\n  - scipy\n  - pandas\n  - scikit-learn\n",
            ),
            ("Procfile", "worker: python fit.py\n"),
            (
                "fit.py",
                "import numpy as np, pandas as pd, scipy.linalg\n\
                 from sklearn.linear_model import LinearRegression\n\
                 x = np.arange(10.0).reshape(-1, 1)\n\
                 model = LinearRegression().fit(x, 3 * x.ravel() + 2)\n\
                 print('slope', round(float(model.coef_[0]), 6))\n\
                 print('det', round(float(scipy.linalg.det(np.eye(3) * 2)), 6))\n\
                 print('tz', pd.Timestamp('2026-07-01 12:00', tz='Europe/Paris').tz_convert('UTC'))\n",
            ),
        ],
    );
    // Slimmed by default: no test suites, docs or symbol tables, and everything still works.
    let slim = world.push(&app, "slim");
    slim.assert_success()
        .assert_clean_log()
        .assert_log_contains("       Slimmed: ")
        .assert_log_contains("less in the droplet");
    let printed = run(&slim, "python fit.py");
    assert!(printed.contains("slope 3.0"), "{printed}");
    assert!(printed.contains("det 8.0"), "{printed}");
    assert!(
        printed.contains("tz 2026-07-01 10:00:00+00:00"),
        "{printed}"
    );
    // pandas' own test suite went; the one numpy.testing imports at run time stayed.
    let site = "$DEPS_DIR/0/conda-env/lib/python3.11/site-packages";
    let checked = run(
        &slim,
        &format!(
            "test -d {site}/pandas/tests || echo pandas-tests-gone; \
             test -d {site}/numpy/_core/tests && echo numpy-core-tests-kept"
        ),
    );
    assert!(checked.contains("pandas-tests-gone"), "{checked}");
    assert!(checked.contains("numpy-core-tests-kept"), "{checked}");

    // BP_CONDA_SLIM=false keeps what conda installed, as a new environment.
    let plain = world.push_with(&app, "plain", world.options().env("BP_CONDA_SLIM", "false"));
    plain
        .assert_success()
        .assert_log_contains("Discarding cached environment: BP_CONDA_SLIM set")
        .assert_log_contains("Slimmed: no (BP_CONDA_SLIM=false)");
    assert!(run(&plain, "python fit.py").contains("slope 3.0"));
    let size = |staging: &Staging| fs::metadata(staging.droplet()).unwrap().len();
    assert!(
        size(&slim) < size(&plain),
        "the slim droplet is not smaller: {} vs {}",
        size(&slim),
        size(&plain)
    );
}

#[test]
fn a_python_2_app_from_runtime_txt_gets_python_2() {
    let Some(world) = RealConda::new() else {
        return;
    };
    let app = world.app(
        "legacy",
        &[
            (
                "environment.yml",
                "channels: [conda-forge]\ndependencies: []\n",
            ),
            ("runtime.txt", "python-2.7.18\n"),
            ("Procfile", "web: python app.py\n"),
        ],
    );
    // The kit's channel has no pip for Python 2, which conda adds to every python by default.
    let options = world
        .options()
        .env("CONDA_ADD_PIP_AS_PYTHON_DEPENDENCY", "false");
    let staging = world.push_with(&app, "out", options);
    staging
        .assert_success()
        .assert_log_contains("Using Python 2 (from runtime.txt: python-2.7.18) with miniconda2");
    // The kit's python 2.7.18 is a stand-in that reports 2.7.18.
    let output = launch(&staging.droplet(), "python --version", &[]);
    let reported = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(reported.contains("2.7.18"), "{reported}");
}

#[test]
fn an_explicit_spec_installs_exactly_its_packages() {
    let Some(world) = RealConda::new() else {
        return;
    };
    let channel = format!("{}/conda-forge/linux-64", world.server.url());
    let spec = format!(
        "# platform: linux-64\n@EXPLICIT\n{channel}/python-3.11.7-h0_0.tar.bz2\n{channel}/numpy-2.2.6-py311_0.tar.bz2\n"
    );
    let app = world.app(
        "explicit",
        &[
            ("spec-file.txt", &spec),
            ("Procfile", "web: python app.py\n"),
        ],
    );
    let staging = world.push(&app, "out");
    staging
        .assert_success()
        .assert_log_lacks("Solving environment");
    assert!(
        run(
            &staging,
            "python -c 'import numpy; print(numpy.__version__)'"
        )
        .contains("2.2.6")
    );
    let listed = run(&staging, "ls $DEPS_DIR/0/conda-env/conda-meta");
    assert!(!listed.contains("pandas"), "{listed}");
}

#[test]
fn an_environment_with_missing_packages_names_them_and_the_channels() {
    let Some(world) = RealConda::new() else {
        return;
    };
    let app = world.app(
        "missing",
        &[(
            "environment.yml",
            "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy=99\n  - not-a-package\n",
        )],
    );
    // The rattler solver (the default with this Miniforge) names the first package it misses;
    // the classic solver names them all (measured on 26.7.1).
    world
        .push_with(
            &app,
            "classic",
            world.options().env("CONDA_SOLVER", "classic"),
        )
        .assert_supply_failed()
        .assert_log_contains("failed (exit code 1) with the classic solver.")
        .assert_log_contains("Not found: not-a-package, numpy=99");
    let staging = world.push(&app, "out");
    staging
        .assert_supply_failed()
        .assert_clean_log()
        .assert_log_contains("conda cannot find some of the app's packages")
        .assert_log_contains("with the rattler solver.")
        .assert_log_contains("Not found: numpy=99")
        // Every channel searched, from where: Miniforge's .condarc names conda-forge too.
        .assert_log_contains(&format!(
            "Channels searched: conda-forge from environment.yml ({}/conda-forge)",
            world.server.url()
        ))
        // conda's own words, once.
        .assert_log_contains("PackagesNotFoundInChannelsError")
        .assert_log_lacks("report");
}

#[test]
fn a_spec_conda_cannot_parse_is_refused_before_anything_is_downloaded() {
    let Some(world) = RealConda::new() else {
        return;
    };
    let app = world.app(
        "unparsable",
        &[(
            "environment.yml",
            "channels: [conda-forge]\ndependencies:\n  - python=3.11\n  - numpy>=<1\n",
        )],
    );
    let staging = world.push(&app, "out");
    staging
        .assert_supply_failed()
        .assert_log_contains("environment.yml line 4: conda cannot read `numpy>=<1`");
    assert_eq!(
        world.server.requests_ending_with(".sh"),
        0,
        "the installer was downloaded for an environment conda cannot read"
    );
}

#[test]
fn what_conda_accepts_stages_with_its_warnings() {
    let Some(world) = RealConda::new() else {
        return;
    };
    // A conda-lock style `platforms:` key, a sloppy `=>`, a mamba selector, and the file
    // saved as UTF-16 by PowerShell's `conda env export >`.
    let text = "channels: [conda-forge]\r\nplatforms: [linux-64]\r\ndependencies:\r\n  - python=>3.11\r\n  - numpy\r\n  - sel(linux): scipy\r\n";
    let mut utf16 = vec![0xff, 0xfe];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    let app = world.app("sloppy", &[("Procfile", "web: python app.py\n")]);
    fs::write(app.join("environment.yml"), utf16).unwrap();
    let staging = world.push(&app, "out");
    staging
        .assert_success()
        .assert_log_contains("the key `platforms` is not one conda reads")
        .assert_log_contains("scipy will not be installed");
    assert!(
        run(
            &staging,
            "python -c 'import numpy; print(numpy.__version__)'"
        )
        .contains("2.2.6")
    );
}

#[test]
fn a_cached_buildpack_and_a_vendored_app_stage_with_the_network_cut() {
    let Some(world) = RealConda::new() else {
        return;
    };
    let cached = package(
        &world.server,
        &world.dir.path().join("cached"),
        &Packaging {
            cached: true,
            ..real_conda::packaging(&world.server, world.dir.path(), Miniconda::Plain)
        },
    );
    let app = sample_app("flask-numpy", world.dir.path());
    // With a pip section: a platform wheel that needs another, and an sdist-only project,
    // from a loopback index; real pip 26.3 fetches them and installs them offline.
    let index = Server::start(&support::pip_index::build(world.dir.path(), (3, 11)));
    let mut environment = fs::read_to_string(app.join("environment.yml")).unwrap();
    environment.push_str(&format!(
        "  - pip\n  - pip:\n    - --index-url {}/simple\n    - fastcalc==1.0\n    - plainsdist\n",
        index.url()
    ));
    fs::write(app.join("environment.yml"), environment).unwrap();
    let (home, conda) = real_conda::developer_miniforge(world.dir.path());
    support::vendor_ok(&app, &conda, &world.server, &home, &[]);
    let options = StageOptions::with_channels(&world.server).offline();
    let staging = stage(
        &app,
        &[&cached],
        &options,
        &world.dir.path().join("offline"),
    );
    staging
        .assert_success()
        .assert_log_contains("3 files in vendor/pip; pip installs from them alone");
    assert!(run(&staging, WEB_REQUEST).contains("\"numpy\":\"2.2.6\""));
    assert!(
        run(
            &staging,
            "python -c 'import fastcalc, plainsdist; print(fastcalc.PLATFORM, fastcalc.answer(), plainsdist.GREETING)'"
        )
        .contains("manylinux2014 42 built from its sdist")
    );
}

/// Anaconda's Terms of Service plugin, as Miniconda >= 25.5 ships it, in front of a `defaults`
/// channel that declares terms: with Miniforge (the default) nothing asks for them; with
/// Miniconda the push stops with the gate explained; with the user's acceptance it stages.
#[test]
fn anacondas_terms_of_service_gate_miniconda_and_not_miniforge() {
    let Some(world) = RealConda::with(Miniconda::WithTermsPlugin) else {
        return;
    };
    let app = sample_app("flask-numpy", world.dir.path());

    let forge = world.push(&app, "miniforge");
    forge
        .assert_success()
        .assert_log_contains("with miniforge3 26.5.3 (the default for Python 3: conda-forge, without Anaconda's Terms of Service)")
        .assert_log_lacks("Terms of Service have not been accepted");
    assert!(run(&forge, WEB_REQUEST).contains("\"mean\":3.0"));

    let gated = world.push_with(
        &app,
        "miniconda",
        world.options().env("BP_CONDA_DISTRIBUTION", "miniconda"),
    );
    gated
        .assert_supply_failed()
        .assert_clean_log()
        .assert_log_contains("Anaconda's Terms of Service stop conda at the defaults channel")
        .assert_log_contains(&format!("{}/main", world.server.url()))
        .assert_log_contains("the buildpack never accepts them for you")
        .assert_log_contains("cf set-env APP CONDA_PLUGINS_AUTO_ACCEPT_TOS yes")
        .assert_log_contains("name conda-forge, not defaults")
        .assert_log_contains("CondaToSNonInteractiveError")
        .assert_log_lacks("report");

    let mut accepted_options = world
        .options()
        .env("BP_CONDA_DISTRIBUTION", "miniconda")
        .env("CONDA_PLUGINS_AUTO_ACCEPT_TOS", "yes");
    accepted_options.keep_staging_dir = true;
    let tmpdir = world.dir.path().join("stage-tmp");
    fs::create_dir_all(&tmpdir).unwrap();
    let accepted = world.push_with(&app, "accepted", accepted_options.tmpdir(&tmpdir));
    accepted.assert_success();
    assert!(run(&accepted, WEB_REQUEST).contains("\"mean\":3.0"));
    // The acceptance record and the plugin's cache stay in the buildpack's private HOME in
    // its cache dir: the staging user's home is untouched, /tmp holds only the platform's.
    let root = accepted.assert_only_the_platform_wrote_home_and_tmp();
    fs::remove_dir_all(&root).unwrap();
}

/// `nodefaults` keeps its documented meaning on conda 26.7.1, whose `env create` no longer
/// drops it (it would ask the channel alias for a channel named `nodefaults`): the
/// environment's channels, and no `defaults`, with Miniforge and with Miniconda, whose
/// `.condarc` names `defaults`.
#[test]
fn nodefaults_means_the_environments_channels_and_no_defaults() {
    let Some(world) = RealConda::new() else {
        return;
    };
    let app = world.app(
        "nodefaults",
        &[
            (
                "environment.yml",
                "channels: [conda-forge, nodefaults]\ndependencies:\n  - python=3.11\n  - numpy\n",
            ),
            ("Procfile", "web: python -c 'import numpy'\n"),
        ],
    );
    let defaults_requests = || {
        world
            .server
            .counts()
            .iter()
            .filter(|(path, _)| path.starts_with("/main/") || path.contains("nodefaults"))
            .map(|(_, count)| count)
            .sum::<usize>()
    };
    for (name, options) in [
        ("miniforge", world.options()),
        (
            "miniconda",
            world.options().env("BP_CONDA_DISTRIBUTION", "miniconda"),
        ),
    ] {
        let staging = world.push_with(&app, name, options);
        staging
            .assert_success()
            .assert_clean_log()
            .assert_log_contains("Channels: conda-forge from environment.yml")
            .assert_log_lacks("defaults from");
        assert!(
            run(
                &staging,
                "python -c 'import numpy; print(numpy.__version__)'"
            )
            .contains("2.2.6")
        );
        assert_eq!(
            defaults_requests(),
            0,
            "{name}: conda asked for defaults or a `nodefaults` channel: {:?}",
            world.server.counts()
        );
    }
}
