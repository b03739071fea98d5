//! `local-cf`: Cloud Foundry's part, played locally for tests and for trying an app on a
//! developer's machine: Diego around a staging (`stage`), our model of the builder it runs
//! (`builder`, hidden) and the launcher (`launch`). It is a binary of its own, built and
//! released beside the buildpack zips but never inside them: the buildpack's executable,
//! `conda-buildpack`, which every foundation runs, has none of this code, and this binary
//! uses nothing of the buildpack's library.
//!
//! `stage` and `launch` read top to bottom in their modules; the others are their parts:
//! unpacking buildpack zips, running scripts, the droplet archive, process types, the
//! metadata files, the environment, and the namespaces (the only unsafe code).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod builder;
mod buildpack_zip;
mod cfignore;
mod droplet;
mod environment;
mod errors;
mod files;
mod launch;
mod metadata;
mod namespace;
mod process_types;
mod script;
mod stage;

#[derive(Parser)]
#[command(
    name = "local-cf",
    version,
    about = "Cloud Foundry's staging and launching, played locally with buildpack zips"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stage an app locally, as Cloud Foundry's builder does, from buildpack zips.
    Stage(stage::StageArgs),
    /// Our model of Cloud Foundry's builder, as `stage` runs it inside the staging container.
    #[command(hide = true)]
    Builder(builder::BuilderArgs),
    /// Start a droplet as Cloud Foundry's launcher does, at /home/vcap.
    Launch(launch::LaunchArgs),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Stage(args) => stage::run(&args),
        Command::Builder(args) => builder::run(&args),
        Command::Launch(args) => launch::run(&args),
    }
}
