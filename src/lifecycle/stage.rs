//! `conda-buildpack stage`: what Cloud Foundry's builder does, from buildpack zips.
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub(crate) struct StageArgs {}

pub(crate) fn run(_args: &StageArgs) -> ExitCode {
    ExitCode::FAILURE
}
