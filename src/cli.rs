//! The command line: Cloud Foundry's script phases and the tools, dispatched to their modules.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::errors::{self, Error};
use crate::staging::stager::Stager;
use crate::staging::{detect, finalize, supply};
use crate::tools::{manifest_update, packager, vendor};

#[derive(Parser)]
#[command(
    name = "conda-buildpack",
    version,
    about = "A Cloud Foundry buildpack for conda apps"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// bin/detect: exit 0 for an app with environment.yml (or an @EXPLICIT spec-file.txt).
    Detect { build_dir: PathBuf },
    /// bin/supply: install the app's conda environment into DEPS/IDX.
    Supply {
        build_dir: PathBuf,
        cache_dir: PathBuf,
        deps_dir: PathBuf,
        index: String,
    },
    /// bin/finalize: write the launch environment when this is the final buildpack.
    Finalize {
        build_dir: PathBuf,
        cache_dir: PathBuf,
        deps_dir: PathBuf,
        index: String,
        profile_dir: PathBuf,
    },
    /// bin/release: print the default process types as YAML.
    Release { build_dir: PathBuf },
    /// bin/compile: the legacy single-buildpack entry point.
    Compile {
        build_dir: PathBuf,
        cache_dir: PathBuf,
    },
    /// Build the buildpack zip (uncached or cached) as Cloud Foundry's packager does.
    Package(packager::PackageArgs),
    /// Fill an app's vendor/ with every conda package its environment needs, for staging
    /// with no network.
    Vendor(vendor::VendorArgs),
    /// List the Cloud Foundry stacks this buildpack supports (`--names`: one name a line, for
    /// scripts that build a zip per stack).
    Stacks {
        #[arg(long)]
        names: bool,
    },
    /// Tools for the buildpack's manifest.yml.
    #[command(subcommand)]
    Manifest(ManifestCommand),
}

#[derive(Subcommand)]
enum ManifestCommand {
    /// Propose the newest installers from the publishers' release metadata, each verified by
    /// download against the sha256 its publisher states; `--write` applies the proposal.
    Update(manifest_update::UpdateArgs),
}

pub(crate) fn run() -> ExitCode {
    // Before the first line is logged: from here on no credential in a setting is shown.
    crate::staging::secrets::register_environment();
    match Cli::parse().command {
        Command::Detect { build_dir } => detect::run(&build_dir),
        Command::Supply {
            build_dir,
            cache_dir,
            deps_dir,
            index,
        } => report(
            Stager::new(&build_dir, &cache_dir, &deps_dir, &index, None)
                .map_err(Error::io(&deps_dir))
                .and_then(|stager| {
                    supply::check_dirs(&stager.build_dir)?;
                    supply::run(&stager)
                }),
        ),
        Command::Finalize {
            build_dir,
            cache_dir,
            deps_dir,
            index,
            profile_dir,
        } => report(
            Stager::new(
                &build_dir,
                &cache_dir,
                &deps_dir,
                &index,
                Some(&profile_dir),
            )
            .map_err(Error::io(&deps_dir))
            .and_then(|stager| finalize::finalize(&stager)),
        ),
        Command::Release { build_dir } => {
            print!("{}", finalize::release(&build_dir));
            ExitCode::SUCCESS
        }
        Command::Compile {
            build_dir,
            cache_dir,
        } => report(finalize::compile(&build_dir, &cache_dir)),
        Command::Package(args) => packager::run(&args),
        Command::Vendor(args) => vendor::run(&args),
        Command::Stacks { names } => {
            print!("{}", crate::stack::listing(names));
            ExitCode::SUCCESS
        }
        Command::Manifest(ManifestCommand::Update(args)) => manifest_update::run(&args),
    }
}

fn report(result: Result<(), Error>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            errors::report(&error);
            ExitCode::FAILURE
        }
    }
}
