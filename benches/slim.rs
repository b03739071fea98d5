//! The slim-droplet benchmark (issue 16): the numpy + scipy + pandas + scikit-learn app staged
//! on Cloud Foundry's real builder with real conda 26.7.1 and its real packages, once slimmed
//! (the default) and once with `BP_CONDA_SLIM=false`, side by side in one run. It prints the
//! droplet bytes and the environment's bytes of each and their ratios (goal: slim/plain droplet
//! <= 0.80). Needs `../shared/real`.
//!
//! `cargo bench --bench slim`. `cargo test --all-targets` builds it and runs it without
//! `--bench`: it then returns at once.

mod common;
#[path = "../tests/support/mod.rs"]
mod support;

use std::fs;

use support::real_conda::{self, Miniconda};
use support::{Server, StageOptions, package, scratch, stage};

fn main() {
    let Some(world) = common::real_platform_world() else {
        return;
    };
    let dir = scratch();
    let server = Server::start(world);
    let zip = package(
        &server,
        dir.path(),
        &real_conda::packaging(&server, dir.path(), Miniconda::Plain),
    );
    let app = real_conda::pydata_app(dir.path());
    let measure = |name: &str, slim: bool| {
        let options = StageOptions::with_channels(&server)
            .env("BP_CONDA_SLIM", if slim { "true" } else { "false" });
        let staging = stage(&app, &[&zip], &options, &dir.path().join(name));
        staging.assert_success();
        let droplet = fs::metadata(staging.droplet()).unwrap().len();
        let environment = support::droplet_bytes_under(&staging.droplet(), "deps/0/");
        (droplet, environment)
    };
    let (slim_droplet, slim_env) = measure("slim", true);
    let (plain_droplet, plain_env) = measure("plain", false);
    let mib = |bytes: u64| bytes as f64 / 1024.0 / 1024.0;
    println!("pydata app on the real builder and real conda 26.7.1:");
    println!(
        "  droplet (tgz):        slim {:.1} MiB, plain {:.1} MiB, slim/plain {:.2} (goal <= 0.80)",
        mib(slim_droplet),
        mib(plain_droplet),
        slim_droplet as f64 / plain_droplet as f64
    );
    println!(
        "  environment (bytes):  slim {:.1} MiB, plain {:.1} MiB, slim/plain {:.2}",
        mib(slim_env),
        mib(plain_env),
        slim_env as f64 / plain_env as f64
    );
}
