//! The command line: Cloud Foundry's script phases and the tools, dispatched to their modules.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::lifecycle;

#[derive(Parser)]
#[command(name = "conda-buildpack", version, about = "A Cloud Foundry buildpack for conda apps")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stage an app locally, as Cloud Foundry's builder does, from buildpack zips.
    Stage(lifecycle::stage::StageArgs),
    /// Start a droplet as Cloud Foundry's launcher does, at /home/vcap.
    Launch(lifecycle::launch::LaunchArgs),
    #[command(hide = true)]
    Detect { build_dir: PathBuf },
}

pub(crate) fn run() -> ExitCode {
    match Cli::parse().command {
        Command::Stage(args) => lifecycle::stage::run(&args),
        Command::Launch(args) => lifecycle::launch::run(&args),
        Command::Detect { build_dir } => {
            let _ = build_dir;
            ExitCode::FAILURE
        }
    }
}
