//! conda-buildpack: one executable serving Cloud Foundry's buildpack scripts (`detect`,
//! `supply`, `finalize`, `release`, `compile`) and the tools around them (`package`, `stage`,
//! `launch`, `vendor`). This file only dispatches; each phase reads top to bottom in its module.

mod app;
mod archive;
mod buildpack;
mod cache;
mod cli;
mod conda;
mod detect;
mod download;
mod environment;
mod errors;
mod finalize;
mod fsutil;
mod installer;
mod lifecycle;
mod log;
mod manifest;
mod packager;
mod process;
mod python_version;
mod relocate;
mod stager;
mod summary;
mod supply;
mod vendor;

fn main() -> std::process::ExitCode {
    cli::run()
}
