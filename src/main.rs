//! conda-buildpack: one executable serving Cloud Foundry's buildpack scripts (`detect`,
//! `supply`, `finalize`, `release`, `compile`) and the tools around them (`package`, `stage`,
//! `launch`, `vendor`). This file only dispatches; each phase reads top to bottom in its module.

#[allow(dead_code)] mod app;
#[allow(dead_code)] mod archive;
#[allow(dead_code)] mod buildpack;
#[allow(dead_code)] mod cache;
#[allow(dead_code)] mod cli;
#[allow(dead_code)] mod conda;
#[allow(dead_code)] mod detect;
#[allow(dead_code)] mod download;
#[allow(dead_code)] mod environment;
#[allow(dead_code)] mod errors;
#[allow(dead_code)] mod finalize;
#[allow(dead_code)] mod fsutil;
#[allow(dead_code)] mod installer;
#[allow(dead_code)] mod lifecycle;
#[allow(dead_code)] mod log;
#[allow(dead_code)] mod manifest;
#[allow(dead_code)] mod packager;
#[allow(dead_code)] mod process;
#[allow(dead_code)] mod python_version;
#[allow(dead_code)] mod relocate;
#[allow(dead_code)] mod stager;
#[allow(dead_code)] mod summary;
#[allow(dead_code)] mod supply;
#[allow(dead_code)] mod vendor;

fn main() -> std::process::ExitCode {
    cli::run()
}
