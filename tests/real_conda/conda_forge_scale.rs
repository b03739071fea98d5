//! At conda-forge's size: the pydata app (python, numpy, scipy, pandas, scikit-learn, flask)
//! pushed against a channel of conda-forge's shape and format (~445k records, 204 MiB of
//! repodata, `.conda` packages), on Cloud Foundry's real builder and launcher with real conda
//! 26.7.1 and the rattler solver Miniforge 26.5 ships, in a 1 GiB memory cgroup as Cloud
//! Foundry stages by default. First push, unchanged push, one package added; and the classic
//! solver, chosen by hand, meeting the 1 GiB limit. Without `../shared/real` every story says so
//! and skips.

use crate::support;

use std::path::PathBuf;
use std::sync::Arc;

use crate::support::memory_cgroup::MemoryCgroup;
use crate::support::real_conda::{self, Miniconda};
use crate::support::{Server, StageOptions, Staging, launch, package, scratch, stage, stdout};

/// Cloud Foundry's default staging memory.
const QUOTA_MIB: u64 = 1024;

fn assert_under_quota(staging: &Staging) {
    assert!(
        staging.peak_memory_kib < QUOTA_MIB * 1024,
        "the staging peaked at {} MiB:\n{}",
        staging.peak_memory_kib / 1024,
        staging.log
    );
}

/// The pydata app pushed against the conda-forge-sized channel, each staging in a memory
/// cgroup of Cloud Foundry's default quota.
struct CondaForgeSized {
    dir: tempfile::TempDir,
    server: Server,
    zip: PathBuf,
    app: PathBuf,
    cgroup: Arc<MemoryCgroup>,
}

impl CondaForgeSized {
    /// `None`, having said why, without the kit or a memory cgroup to stage in.
    fn new() -> Option<Self> {
        let big = real_conda::conda_forge_sized()?;
        support::world::use_the_real_platform();
        let cgroup = Arc::new(MemoryCgroup::create(QUOTA_MIB)?);
        let dir = scratch();
        let server = Server::start(big);
        let packaging = real_conda::packaging(&server, dir.path(), Miniconda::Plain);
        let zip = package(&server, dir.path(), &packaging);
        let app = real_conda::pydata_app(dir.path());
        Some(Self {
            dir,
            server,
            zip,
            app,
            cgroup,
        })
    }

    /// The staging's memory limit and cgroup, at the quota.
    fn options(&self) -> StageOptions {
        let mut options = StageOptions::with_channels(&self.server);
        options.memory = Some(QUOTA_MIB.to_string());
        options.cgroup = Some(self.cgroup.clone());
        options
    }

    fn push(&self, name: &str, options: &StageOptions) -> Staging {
        stage(
            &self.app,
            &[&self.zip],
            options,
            &self.dir.path().join(name),
        )
    }
}

#[test]
fn the_pydata_app_stages_restages_and_changes_at_conda_forge_size_within_1_gib() {
    let Some(world) = CondaForgeSized::new() else {
        return;
    };
    let app = &world.app;
    let options = world.options().cache(&world.dir.path().join("cache"));

    let cold = world.push("cold", &options);
    cold.assert_success()
        .assert_clean_log()
        .assert_log_contains("       Solver: rattler (the fastest this conda offers: rattler, classic; set CONDA_SOLVER to choose)")
        .assert_log_contains("; MEMORY_LIMIT 1024 MB, ");
    assert_under_quota(&cold);
    // rattler gives Python no pip of its own; the buildpack asks for it, as classic adds it.
    cold.assert_log_contains("with pip (conda's other solvers add it to Python; rattler does not)");
    let run = launch(
        &cold.droplet(),
        "python -c 'import numpy, scipy, pandas, sklearn, flask; print(sklearn.__version__)' && python -m pip --version",
        &[],
    );
    assert!(stdout(&run).contains("1.9.1"), "{}", stdout(&run));
    assert!(stdout(&run).contains("pip 26.3"), "{}", stdout(&run));

    let warm = world.push("warm", &options);
    warm.assert_success()
        .assert_log_contains("-----> Restoring the conda environment from the cache")
        .assert_log_lacks("Solver:");
    assert_under_quota(&warm);

    let mut environment = std::fs::read_to_string(app.join("environment.yml")).unwrap();
    environment.push_str("  - cloudpickle\n");
    std::fs::write(app.join("environment.yml"), environment).unwrap();
    let changed = world.push("changed", &options);
    changed
        .assert_success()
        .assert_log_contains("Updating the cached environment: environment.yml changed")
        .assert_log_contains("       Solver: rattler");
    assert_under_quota(&changed);
    let run = launch(
        &changed.droplet(),
        "python -c 'import cloudpickle, numpy; print(cloudpickle.__version__)'",
        &[],
    );
    assert!(stdout(&run).contains("3.1.3"), "{}", stdout(&run));
}

/// The classic solver, chosen by hand, needs over 4 GiB for this solve: in Cloud Foundry's
/// default 1 GiB the kernel kills it, and the log says so, with the fixes, not as a generic
/// conda failure.
#[test]
fn a_solve_killed_for_memory_says_so_naming_the_solver_the_peak_and_the_fixes() {
    let Some(world) = CondaForgeSized::new() else {
        return;
    };
    let staging = world.push("out", &world.options().env("CONDA_SOLVER", "classic"));
    staging
        .assert_supply_failed()
        .assert_clean_log()
        .assert_log_contains("       Solver: classic (CONDA_SOLVER=classic)")
        .assert_log_contains("conda ran out of memory while solving")
        .assert_log_contains("with the classic solver.")
        .assert_log_contains("against the staging's MEMORY_LIMIT 1024 MB")
        .assert_log_contains("`cf set-env APP CONDA_SOLVER rattler`")
        .assert_log_contains("`cf scale APP -m 2G` then `cf restage APP`")
        .assert_log_contains("spec-file.txt")
        .assert_log_lacks("conda failed to create the environment");
}
