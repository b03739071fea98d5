//! `conda-buildpack launch`: what Cloud Foundry's launcher does with a droplet.
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct LaunchArgs {}

pub(crate) fn run(_args: &LaunchArgs) -> ExitCode {
    ExitCode::FAILURE
}
